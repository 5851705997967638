"""Start Studio's processes together and stop them together.

    python -m studio.launcher demo   web + worker + relay simulator, demo admin, embedded defaults
    python -m studio.launcher run    web + worker against the relay configured in the environment

Each process runs in its own session so that Ctrl-C reaches only this launcher, which then stops
every child (SIGTERM, then SIGKILL after a grace period) and leaves nothing behind. On Linux the
children are also told to die with the launcher if it is killed outright.
"""

import argparse
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEMO_SITE_KEY = "sk-sim-demo-site-key"
DEMO_ADMIN = "admin"
GRACE_SECONDS = 8


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if preferred:
            try:
                sock.bind((host, preferred))
                return preferred
            except OSError:
                pass
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None

    def set_pdeathsig() -> None:
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_pdeathsig


class ProcessGroup:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(  # noqa: S603 - fixed argv built by this module
            argv,
            cwd=BASE_DIR,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        self.children[name] = child
        return child

    def exited(self) -> str | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # whatever is left in its session
            child.wait()


def wait_http(url: str, timeout: float, group: ProcessGroup) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (name := group.exited()) is not None:
            raise RuntimeError(f"{name} exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {args[0]} failed")
    return result.stdout


def ensure_demo_admin(env: dict[str, str]) -> str | None:
    """Create the demo admin once; return its new password, or None if it already exists."""
    password = secrets.token_urlsafe(12)
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "adduser", DEMO_ADMIN, "--staff", "--allow-site-key"],
        cwd=BASE_DIR,
        env=env,
        input=f"{password}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return password
    if "already exists" in result.stderr:
        return None
    sys.stderr.write(result.stdout + result.stderr)
    raise SystemExit("could not create the demo admin")


def serve(mode: str) -> int:
    env = dict(os.environ)
    if mode == "run":
        # PORT and STUDIO_BIND may live in .env too (the environment wins, as in settings.py).
        env = {
            **{k: v for k, v in dotenv_values(BASE_DIR / ".env").items() if v is not None},
            **env,
        }
    env.setdefault("PYTHONUNBUFFERED", "1")
    group = ProcessGroup(env)
    host = env.get("STUDIO_BIND", "127.0.0.1")
    web_port = free_port(int(env.get("PORT", "8000")), host)

    if mode == "demo":
        env["DJANGO_DOTENV"] = "0"  # the demo never uses a real relay or database from .env
        env.setdefault("STUDIO_DATA_DIR", str(BASE_DIR / "var" / "demo"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        env.update(
            UPSTREAM_BASE_URL=sim_url,
            UPSTREAM_API_KEY=DEMO_SITE_KEY,
            UPSTREAM_ALLOWED_BASE_URLS=sim_url,
        )

    print("Preparing the database…", flush=True)
    manage(env, "migrate", "--noinput")
    password = ensure_demo_admin(env) if mode == "demo" else None
    if mode == "run":
        manage(env, "collectstatic", "--noinput")

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if mode == "demo":
            group.start("simulator", [PYTHON, "-m", "studio.simulator", "--port", str(sim_port)])
            wait_http(f"{sim_url}/__health", 30, group)
        group.start(
            "web",
            [PYTHON, "-m", "daphne", "-b", host, "-p", str(web_port), "studio.asgi:application"],
        )
        group.start("worker", [PYTHON, "manage.py", "worker"])
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{web_port}/"  # noqa: S104
        wait_http(url + "accounts/login/", 60, group)
        print("\n" + "=" * 64, flush=True)
        print(f"  Studio is running: {url}", flush=True)
        if mode == "demo":
            print(f"  Relay simulator:   {sim_url}", flush=True)
            if password:
                print(f"  Sign in as {DEMO_ADMIN!r} with password: {password}", flush=True)
                print("  (shown only this once; change it under Settings)", flush=True)
            else:
                print(
                    f"  Sign in as {DEMO_ADMIN!r} (its password was printed on the first run;"
                    f" reset it with: .venv/bin/python manage.py changepassword {DEMO_ADMIN})",
                    flush=True,
                )
        print("  Press Ctrl-C to stop.", flush=True)
        print("=" * 64 + "\n", flush=True)
        while not stopping:
            if (name := group.exited()) is not None:
                print(f"{name} stopped unexpectedly; stopping the others.", file=sys.stderr)
                return 1
            time.sleep(0.3)
        return 0
    except RuntimeError as error:
        print(f"Start-up failed: {error}", file=sys.stderr)
        return 1
    finally:
        print("Stopping…", flush=True)
        group.stop()
        print("Stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m studio.launcher")
    parser.add_argument("mode", choices=["demo", "run"])
    sys.exit(serve(parser.parse_args().mode))


if __name__ == "__main__":
    main()
