"""The stack the benchmarks run against, in a throw-away data folder: the relay simulator, one
daphne web process, optionally the background worker, and a helper process with Django set up
on the same SQLite file. Every process started is killed by `Stack.stop()` (and dies with us).

The scaled mode (bench/scale.py) sets `database_url` and `redis_url` (a scratch PostgreSQL
database and an empty Redis database, see `scratch_postgres` / `scratch_redis`) and starts more
named processes: simulators, web processes and workers, each web process or worker pointed at
the relay it is given."""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Stack:
    """Simulator + one daphne web process in a throw-away data folder."""

    data_dir: Path
    site_key: str
    simulator_speed: float
    extra_env: dict[str, str] = field(default_factory=dict)
    sim_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    database_url: str = ""  # empty: SQLite in the data folder
    redis_url: str = ""  # empty: the in-memory channel layer (one web process)
    ports: dict[str, int] = field(default_factory=dict)  # of the extra named processes
    stopped: set[str] = field(default_factory=set)  # stopped on purpose by stop_process

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "studio.sqlite3"

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "UPSTREAM_", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            DJANGO_DOTENV="0",
            DJANGO_LOG_LEVEL="WARNING",
            STUDIO_DATA_DIR=str(self.data_dir),
            UPSTREAM_BASE_URL=self.sim_url,
            UPSTREAM_ALLOWED_BASE_URLS=self.sim_url,
            UPSTREAM_API_KEY=self.site_key,
            SIMULATOR_SPEED=str(self.simulator_speed),
            PYTHONUNBUFFERED="1",
            # Benchmarks send far faster than people: Studio's per-user limits would refuse them.
            RATELIMIT_CHAT="off",
            RATELIMIT_JOBS="off",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def relay_env(self, relay_url: str) -> dict[str, str]:
        """The environment of a process whose relay is `relay_url` (the site key is kept)."""
        return {**self.env, "UPSTREAM_BASE_URL": relay_url, "UPSTREAM_ALLOWED_BASE_URLS": relay_url}

    def log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        with self.log(name).open("wb") as out:
            self.children[name] = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one below
                preexec_fn=_die_with_parent,
            )

    def start(self) -> None:
        self.spawn("simulator", [PYTHON, "-m", "studio.simulator", "--port", str(self.sim_port)])
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.wait_http(f"{self.sim_url}/__health")
        daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port)]
        self.spawn("web", [*daphne, "studio.asgi:application"])
        self.wait_http(f"{self.web_url}/accounts/login/")

    def start_worker(self, name: str = "worker", relay_url: str = "") -> None:
        """The background worker as `make demo` runs it."""
        env = self.relay_env(relay_url) if relay_url else None
        self.spawn(name, [PYTHON, "manage.py", "worker"], env)

    # -- named extra processes (the scaled mode) ------------------------------------------------

    def migrate(self) -> None:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start_simulator(self, name: str, extra_env: dict[str, str] | None = None) -> str:
        """Another relay simulator; returns its URL."""
        port = self.ports[name] = free_port()
        env = {**self.env, **(extra_env or {})}
        self.spawn(name, [PYTHON, "-m", "studio.simulator", "--port", str(port)], env)
        url = f"http://127.0.0.1:{port}"
        self.wait_http(f"{url}/__health")
        return url

    def start_web(self, name: str, relay_url: str) -> str:
        """Another daphne web process talking to `relay_url`; returns its URL."""
        port = self.ports[name] = free_port()
        daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        self.spawn(name, [*daphne, "studio.asgi:application"], self.relay_env(relay_url))
        url = f"http://127.0.0.1:{port}"
        self.wait_http(f"{url}/accounts/login/")
        return url

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop_process(self, name: str, timeout: float = 15) -> None:
        """SIGTERM one process (a worker finishes its task first), SIGKILL if it lingers. It
        stays listed, so that `log_problems` still reads its log."""
        child = self.children[name]
        self.stopped.add(name)
        if child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, child in self.children.items():
                if child.poll() is not None and name not in self.stopped:
                    raise RuntimeError(f"{name} exited:\n{self.log(name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local
                    if response.status < 500:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")

    def pid(self, name: str) -> int:
        return self.children[name].pid

    def stop(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # anything left in its group
            child.wait()

    def log_problems(self) -> list[str]:
        """What the processes logged as errors, with their distinct exceptions (evidence)."""
        found = []
        exception = re.compile(r"^[\w.]+(?:Error|Exception|DoesNotExist|Exit)\b.*")
        for name in self.children:
            lines = self.log(name).read_text(errors="replace").splitlines()
            records = [line for line in lines if "ERROR" in line or "Internal Server Error" in line]
            if not records and not any(line.startswith("Traceback") for line in lines):
                continue
            kinds = dict.fromkeys(m[0][:140] for line in lines if (m := exception.match(line)))
            found.append(
                f"{name} log: {len(records)} error records; exceptions: "
                + " | ".join(list(kinds)[:5])
            )
        return found


# ------------------------------------------------------------------ scratch services


@contextlib.contextmanager
def scratch_postgres(server_url: str, prefix: str = "studio_bench") -> Iterator[str]:
    """A new PostgreSQL database on `server_url` (e.g. postgres://postgres@127.0.0.1:5432/postgres)
    for the block, dropped after it (with whatever is still connected to it)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_redis(server_url: str) -> Iterator[str]:
    """The URL of an empty Redis database on `server_url` (e.g. redis://127.0.0.1:6379), the
    highest-numbered one free (others usually use 0), flushed after the block: only it."""
    import redis

    for number in range(15, 0, -1):
        store = redis.Redis.from_url(f"{server_url}/{number}", socket_connect_timeout=3)
        if store.dbsize() == 0:
            try:
                yield f"{server_url}/{number}"
            finally:
                store.flushdb()
                store.close()
            return
        store.close()
    raise RuntimeError(f"Redis at {server_url} has no empty database")


def relay_requests(log: Path) -> list[dict[str, object]]:
    """The requests a simulator with SIMULATOR_REQUEST_LOG=log received."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ Django (helper process)


def django_helper(stack: Stack) -> ProcessPoolExecutor:
    """A child process with Django set up against the stack's SQLite file.

    Not this process: daphne's app (in INSTALLED_APPS) loads autobahn's Twisted flavour, and
    this process uses autobahn's asyncio flavour as its websocket client; one process cannot
    have both.
    """
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_django_setup,
        initargs=(stack.env,),
    )


def _django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "studio.settings"
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)  # a failing page is reported in the table, not dumped
