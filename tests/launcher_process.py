"""Run `python -m studio.launcher demo` in a throw-away data folder (launcher and browser tests)."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DemoStack:
    data_dir: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    simulator_url: str = ""
    admin_password: str = ""

    @property
    def env(self) -> dict[str, str]:
        return demo_env(self.data_dir)

    def manage(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """manage.py against the demo's database (as the launcher configured it)."""
        env = {**self.env, "UPSTREAM_BASE_URL": self.simulator_url}
        env["UPSTREAM_ALLOWED_BASE_URLS"] = self.simulator_url
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def descendants(self) -> list[int]:
        """Every live process started for this demo (found by its data folder)."""
        marker = f"STUDIO_DATA_DIR={self.data_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.process.pid:
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def demo_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "UPSTREAM_", "DATABASE_URL", "REDIS_URL", "PORT"))
    }
    env.update(
        DJANGO_DOTENV="0",
        STUDIO_DATA_DIR=str(data_dir),
        PORT="0",
        SIMULATOR_SPEED="20",
        # Browser tests share one demo user and send faster than a person: no per-user limits
        # (tests/integration/test_ratelimit*.py cover them).
        RATELIMIT_CHAT="off",
        RATELIMIT_JOBS="off",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_demo(data_dir: Path, timeout: float = 120) -> DemoStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "studio.launcher", "demo"],
        cwd=ROOT,
        env=demo_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = DemoStack(data_dir=data_dir, process=process)
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line)
            if match := re.search(r"Studio is running: (\S+)", line):
                stack.url = match.group(1).rstrip("/")
            if match := re.search(r"Relay simulator:\s+(\S+)", line):
                stack.simulator_url = match.group(1)
            if match := re.search(r"with password: (\S+)", line):
                stack.admin_password = match.group(1)
            if "Press Ctrl-C to stop." in line:
                ready.set()

    threading.Thread(target=read_output, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError("the demo did not start:\n" + "".join(stack.lines[-40:]))
    return stack
