"""pytest plugin: a real simulator process for tests that talk HTTP to "the relay".

Register it once in tests/conftest.py with ``pytest_plugins = ["tests.simulator_fixture"]``.

    def test_something(simulator):
        httpx.get(f"{simulator.url}/v1/models", headers=simulator.headers())

``simulator`` is session scoped: one process (``python -m studio.simulator``) on a free port,
running with ``SIMULATOR_SPEED=50`` so simulated jobs take a fiftieth of their realistic time.
For a simulator with other settings (a short file TTL, extra keys…), use ``start_simulator()``
as a context manager. Both stop the process when done: no orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: A valid token (anything "sk-sim-…" is valid; the relay strips "sk-").
KEY = "sk-sim-test-0001"
#: A second valid token: its tasks are invisible to KEY and vice versa.
OTHER_KEY = "sk-sim-test-0002"
#: Valid, but every call answers "quota exhausted" (403 on /v1, 400 quota_not_enough on /mj).
NOQUOTA_KEY = "sk-sim-noquota-0001"
#: Valid, but the user is banned (403 on every call).
BANNED_KEY = "sk-sim-banned-0001"
#: Not a simulator token: 401 invalid_api_key.
INVALID_KEY = "sk-invalid-0001"
#: Accepted because the session simulator lists it in SIMULATOR_KEYS.
EXTRA_KEY = "sk-extra-studio-key"

TEST_SPEED = 50.0


@dataclass
class RunningSimulator:
    url: str
    key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"simulator exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/__health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"simulator did not become healthy in {timeout}s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def start_simulator(
    *, speed: float = TEST_SPEED, env: dict[str, str] | None = None, key: str = KEY
) -> Iterator[RunningSimulator]:
    """Run ``python -m studio.simulator`` on a free port until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child_env = {**os.environ, "SIMULATOR_SPEED": str(speed), **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    # The log goes to a file, not a pipe: an undrained pipe would block the server once full.
    log_file = tempfile.NamedTemporaryFile(prefix="simulator-", suffix=".log", delete=False)
    log_path = Path(log_file.name)
    process = subprocess.Popen(
        [sys.executable, "-m", "studio.simulator", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=child_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()
    try:
        _wait_healthy(url, process, log_path, timeout=20)
        yield RunningSimulator(url=url, key=key, process=process, log_path=log_path, env=child_env)
    finally:
        stop(process)
        with contextlib.suppress(OSError):
            log_path.unlink()


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    with start_simulator(env={"SIMULATOR_KEYS": EXTRA_KEY}) as running:
        yield running
