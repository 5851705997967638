"""The scaled mode on real services: PostgreSQL, Redis, two daphne processes, two workers.

One stack for the module, in a PostgreSQL database made for it (`studio_scaled_<random>`,
dropped at the end) and an empty Redis database (flushed at the end, nothing else touched):
the relay simulator logging every request (SIMULATOR_REQUEST_LOG), two `daphne` web processes
and two `manage.py worker` processes. The workers reach the relay through a small TCP relay in
this process that can hold back a Midjourney poll, so a worker can be killed while it waits on
one. Everything runs as it would in production, over real connections; nothing is faked.

Marked `postgres` (not `django_db`): it runs once, in the plain integration run, against its
own database. Without PostgreSQL or Redis it is skipped, except under CI=true where it fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import skip_or_fail
from tests.simulator_fixture import KEY, free_port, start_simulator

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("SCALED_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SCALED_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "scaled-mode-password-1"
SIMULATOR_SPEED = 20.0  # a Midjourney render takes 2 s, a DALL·E image 0.5 s
JOBS = 50
# Short periods so that a killed worker's task is swept up within seconds (defaults 10/60/30/60).
WORKER_TIMINGS = {
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_STALE_SECONDS": "3",
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_STALL_MARGIN_SECONDS": "2",
}
MJ_FETCH = re.compile(rb"^GET /mj/task/[^/ ]+/fetch ")


# --------------------------------------------------------------------------- the stack


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ScaledStack:
    data_dir: Path
    database_url: str
    redis_url: str
    relay_url: str
    proxy: HoldingProxy
    request_log: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def env(self, relay: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "UPSTREAM_", "DATABASE_URL", "REDIS_URL", "JOBS_"))
        }
        env.update(
            DJANGO_DOTENV="0",
            DJANGO_DEBUG="1",
            DJANGO_LOG_LEVEL="WARNING",
            STUDIO_DATA_DIR=str(self.data_dir),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            UPSTREAM_BASE_URL=relay,
            UPSTREAM_ALLOWED_BASE_URLS=relay,
            UPSTREAM_API_KEY=KEY,
            PYTHONUNBUFFERED="1",
            **WORKER_TIMINGS,
        )
        return env

    def log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def manage(self, *args: str, stdin: str = "") -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(self.relay_url),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def spawn(self, name: str, argv: list[str], relay: str) -> subprocess.Popen[bytes]:
        with self.log(name).open("ab") as out:
            child = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env(relay),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.children[name] = child
        return child

    def start_web(self, name: str) -> None:
        port = self.ports[name] = free_port()
        daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        self.spawn(name, [*daphne, "studio.asgi:application"], self.relay_url)

    def start_worker(self, name: str) -> None:
        # The workers' relay is the holding proxy (the web processes talk to the simulator).
        command = ["manage.py", "worker", "--no-startup-delay", "--interval", "0.1"]
        self.spawn(name, [sys.executable, *command], self.proxy.url)

    def web_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in self.ports:
            while True:
                self.check_alive()
                try:
                    if httpx.get(f"{self.web_url(name)}/accounts/login/").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not answer"
                time.sleep(0.1)
        while len(self.worker_ids()) < sum(1 for n in self.children if n.startswith("worker")):
            self.check_alive()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None and not name.endswith("-killed"):
                raise AssertionError(f"{name} exited:\n{self.log(name).read_text()[-3000:]}")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def worker_ids(self) -> dict[str, int]:
        """worker id -> pid, from the workers' heartbeats."""
        return dict(self.query("SELECT worker_id, pid FROM accounts_workerheartbeat"))

    def worker_name(self, worker_id: str) -> str:
        pid = self.worker_ids()[worker_id]
        return next(name for name, child in self.children.items() if child.pid == pid)

    def stop(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


class HoldingProxy:
    """A TCP relay from the workers to the simulator. While `hold` has a pattern, a request
    whose first bytes match it is never forwarded and `held` is set: the worker that sent it
    stays blocked in that poll, where the test can kill it. `release` drops held requests."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.pattern: re.Pattern[bytes] | None = None
        self.held = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._released: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    async def _listen(self) -> None:
        self._released = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    def hold(self, pattern: re.Pattern[bytes]) -> None:
        self.held.clear()
        self.pattern = pattern

    def release(self) -> None:
        self.pattern = None
        if self._released is not None:
            self.loop.call_soon_threadsafe(self._released.set)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    async def _connection(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter):
        relay, to_relay = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def upstream() -> None:
            while data := await client.read(65536):
                if self.pattern is not None and self.pattern.search(data):
                    self.held.set()
                    assert self._released is not None
                    await self._released.wait()
                    return  # dropped, never forwarded
                to_relay.write(data)
                await to_relay.drain()

        async def downstream() -> None:
            while data := await relay.read(65536):
                to_client.write(data)
                await to_client.drain()

        pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        with contextlib.suppress(ConnectionError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for writer in (to_client, to_relay):
            writer.close()


def services_or_skip() -> tuple[psycopg.Connection[Any], redis.Redis]:
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        skip_or_fail(f"PostgreSQL at {POSTGRES_URL} does not answer: {error}")
    for number in range(15, 0, -1):  # the highest empty database: others start at 0
        store = redis.Redis.from_url(f"{REDIS_URL}/{number}", socket_connect_timeout=3)
        try:
            if store.dbsize() == 0:
                return admin, store
        except redis.RedisError as error:
            admin.close()
            skip_or_fail(f"Redis at {REDIS_URL} does not answer: {error}")
    admin.close()
    skip_or_fail(f"Redis at {REDIS_URL} has no empty database left")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledStack]:
    admin, store = services_or_skip()
    name = f"studio_scaled_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    database_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    redis_url = f"{REDIS_URL}/{store.connection_pool.connection_kwargs['db']}"
    data_dir = tmp_path_factory.mktemp("scaled")
    request_log = data_dir / "relay-requests.jsonl"
    log_env = {"SIMULATOR_REQUEST_LOG": str(request_log)}
    try:
        with start_simulator(speed=SIMULATOR_SPEED, env=log_env) as simulator:
            proxy = HoldingProxy(int(simulator.url.rsplit(":", 1)[1]))
            proxy.start()
            scaled = ScaledStack(
                data_dir, database_url, redis_url, simulator.url, proxy, request_log
            )
            try:
                scaled.manage("migrate", "--no-input")
                scaled.manage("adduser", "scaled", "--allow-site-key", stdin=f"{PASSWORD}\n\n")
                for process in ("web1", "web2"):
                    scaled.start_web(process)
                for process in ("worker1", "worker2"):
                    scaled.start_worker(process)
                scaled.wait_ready()
                yield scaled
            finally:
                scaled.stop()
                proxy.release()
                proxy.stop()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        store.flushdb()
        store.close()


@pytest.fixture
def stack(running_stack: ScaledStack) -> Iterator[ScaledStack]:
    """The module's stack; a test fails if a process logged a traceback meanwhile."""
    logs = sorted(running_stack.data_dir.glob("*.log"))
    start = {log: log.stat().st_size for log in logs}
    yield running_stack
    for log in logs:
        with log.open(errors="replace") as text:
            text.seek(start[log])
            added = text.read()
        assert "Traceback" not in added, f"{log.name}:\n{added[-4000:]}"


# --------------------------------------------------------------------------- (a) chat


class WebSocket:
    """A bare RFC 6455 client (text frames, JSON). Not autobahn's: its asyncio flavour cannot
    load in a process where Django (daphne, in INSTALLED_APPS) already chose Twisted's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, web_url: str, path: str, cookie: str) -> WebSocket:
        host = web_url.removeprefix("http://")
        reader, writer = await asyncio.open_connection(*host.split(":"))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {web_url}\r\nCookie: {cookie}\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101"), head
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()  # noqa: S324 - the protocol's
        ).decode()
        assert accept in head, head
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            length = bytes([0x80 | size])
        elif size < 65536:
            length = bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            length = bytes([0x80 | 127]) + size.to_bytes(8, "big")
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        return bytes([0x80 | opcode]) + length + mask + masked

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.writer.write(self._frame(0x1, json.dumps(frame).encode()))
        await self.writer.drain()

    async def receive_json(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size >= 126:
                size = int.from_bytes(await self.reader.readexactly(2 if size == 126 else 8))
            payload = await self.reader.readexactly(size)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {payload[:2].hex()}")
            if opcode == 0x9:
                self.writer.write(self._frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            message += payload
            if first & 0x80:
                return dict(json.loads(message))

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError):
            self.writer.write(self._frame(0x8, (1000).to_bytes(2, "big")))
            self.writer.close()


def sign_in(web_url: str) -> httpx.Client:
    http = httpx.Client(base_url=web_url, timeout=30)
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', http.get("/accounts/login/").text
    )
    assert token is not None
    answer = http.post(
        "/accounts/login/",
        data={"username": "scaled", "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
    )
    assert answer.status_code == 302 and "sessionid" in http.cookies
    return http


def new_conversation(http: httpx.Client) -> str:
    answer = http.post("/chat/new/", data={"csrfmiddlewaretoken": http.cookies["csrftoken"]})
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["location"].strip("/").rsplit("/", 1)[-1]


@dataclass
class Reading:
    """The frames one socket received for one reply."""

    message_id: str = ""
    snapshot: dict[str, Any] | None = None
    deltas: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    others: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return [delta["seq"] for delta in self.deltas]

    @property
    def text(self) -> str:
        return (self.snapshot or {}).get("content", "") + "".join(d["text"] for d in self.deltas)


async def read_reply(socket: WebSocket, reading: Reading, seen: asyncio.Event | None) -> None:
    """Collect frames until the reply is done; `seen` is set once 30 deltas have arrived."""
    while reading.done is None:
        frame = await socket.receive_json()
        kind = frame["type"]
        if kind == "message" and frame["message"]["role"] == "assistant":
            reading.message_id = frame["message"]["id"]
        elif kind == "snapshot":
            reading.message_id = reading.message_id or frame["message_id"]
            reading.snapshot = frame
        elif kind == "delta" and frame["message_id"] == reading.message_id:
            reading.deltas.append(frame)
            if seen is not None and len(reading.deltas) >= 30:
                seen.set()
        elif kind == "done" and frame["message_id"] == reading.message_id:
            reading.done = frame
        else:
            reading.others.append(frame)


async def resume_elsewhere(
    stack: ScaledStack, conversation: str, cookie: str
) -> tuple[Reading, Reading, int]:
    """Start a long reply through web1; mid-stream, resume it through web2. Returns what each
    socket read and the last seq the first socket had seen when the second asked."""
    path = f"/ws/chat/{conversation}/"
    first = await WebSocket.connect(stack.web_url("web1"), path, cookie)
    await first.send_json(
        {
            "type": "send",
            "content": "[[tokens=400]] [[tps=50]] Tell me about lighthouses.",
            "model": "gpt-4o",
            "params": {},
            "client_id": str(uuid.uuid4()),
        }
    )
    origin, seen = Reading(), asyncio.Event()
    reading_origin = asyncio.create_task(read_reply(first, origin, seen))
    await asyncio.wait_for(seen.wait(), 30)
    asked_at = origin.seqs[-1]
    second = await WebSocket.connect(stack.web_url("web2"), path, cookie)
    await second.send_json(
        {"type": "resume", "message_id": origin.message_id, "after_seq": asked_at}
    )
    resumed = Reading(message_id=origin.message_id)
    await asyncio.wait_for(asyncio.gather(reading_origin, read_reply(second, resumed, None)), 60)
    await first.close()
    await second.close()
    return origin, resumed, asked_at


def test_a_reply_started_in_one_web_process_resumes_mid_stream_in_the_other(stack):
    http = sign_in(stack.web_url("web1"))
    conversation = new_conversation(http)
    cookie = f"sessionid={http.cookies['sessionid']}"

    origin, resumed, asked_at = asyncio.run(resume_elsewhere(stack, conversation, cookie))

    [(content, status, seq)] = stack.query(
        "SELECT content, status, seq FROM chat_message WHERE id = %s", origin.message_id
    )
    assert status == "complete" and len(content) > 1000
    # The first socket saw the whole reply, frame by frame.
    assert origin.seqs == list(range(1, seq + 1)) and origin.text == content
    # The second got a snapshot from the owner in web1 (a snapshot from the database would say
    # "interrupted": no owner answered), taken mid-stream...
    assert resumed.snapshot is not None
    snapshot_seq = resumed.snapshot["seq"]
    assert resumed.snapshot["status"] == "streaming"
    assert asked_at <= snapshot_seq < seq
    assert resumed.snapshot["content"] == "".join(d["text"] for d in origin.deltas[:snapshot_seq])
    # ...then every later delta once, in order, and the same end.
    assert resumed.seqs == list(range(snapshot_seq + 1, seq + 1))
    assert resumed.text == content
    assert resumed.done is not None and resumed.done["status"] == "complete"
    assert resumed.done["seq"] == seq


async def fast_replies(stack: ScaledStack, conversations: list[str], cookie: str) -> list[Reading]:
    """One reply per conversation at once, streamed by the relay as fast as it can, each read
    on a socket of the web process that runs it (web1 and web2 in turn)."""

    async def one(index: int, conversation: str) -> Reading:
        web = stack.web_url(f"web{index % 2 + 1}")
        socket = await WebSocket.connect(web, f"/ws/chat/{conversation}/", cookie)
        frame = {
            "type": "send",
            "content": f"[[tokens=150]] [[tps=3000]] Fast reply {index}.",
            "model": "gpt-4o",
            "params": {},
            "client_id": str(uuid.uuid4()),
        }
        await socket.send_json(frame)
        reading = Reading()
        await asyncio.wait_for(read_reply(socket, reading, None), 60)
        await socket.close()
        return reading

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(conversations))))


def test_fast_replies_lose_no_frame_over_redis(stack):
    # Over Redis a frame takes a round trip to send; a reply that ends while one is in flight
    # must still deliver it, before its `done`.
    http = sign_in(stack.web_url("web1"))
    conversations = [new_conversation(http) for _ in range(8)]
    cookie = f"sessionid={http.cookies['sessionid']}"

    readings = asyncio.run(fast_replies(stack, conversations, cookie))

    for reading in readings:
        [(content, status, seq)] = stack.query(
            "SELECT content, status, seq FROM chat_message WHERE id = %s", reading.message_id
        )
        assert status == "complete"
        assert reading.seqs == list(range(1, seq + 1)), reading.seqs
        assert reading.text == content
        assert reading.done is not None and reading.done["seq"] == seq


# --------------------------------------------------------------------------- (b), (c) jobs

CREATE_JOBS = """
import sys
from django.contrib.auth.models import User
from django.db import transaction
from media_jobs import runner
from media_jobs.models import Job

user = User.objects.get(username="scaled")
for tag, kind in (line.split() for line in sys.stdin.read().splitlines()):
    if kind == "midjourney":
        params = {"mode": "imagine", "prompt": tag + " a harbour at dusk",
                  "bot_type": "MID_JOURNEY", "images": []}
    else:
        params = {"prompt": tag + " a red kite", "model": "dall-e-3", "n": 1,
                  "size": "1024x1024", "quality": "standard", "style": "vivid"}
    with transaction.atomic():
        runner.enqueue(Job.objects.create(user=user, kind=kind, params=params))
"""


def create_jobs(stack: ScaledStack, jobs: dict[str, str]) -> None:
    """Create and enqueue jobs (tag -> kind) as the form does, the per-user limit aside."""
    lines = "".join(f"{tag} {kind}\n" for tag, kind in jobs.items())
    stack.manage("shell", "-c", CREATE_JOBS, stdin=lines)


def job_rows(stack: ScaledStack, tags: list[str]) -> dict[str, tuple[str, str, str]]:
    """tag -> (job id, status, error), for the jobs whose prompt starts with one of the tags."""
    rows = stack.query("SELECT id, params->>'prompt', status, error FROM media_jobs_job")
    wanted = set(tags)
    return {
        prompt.split()[0]: (str(pk), status, error)
        for pk, prompt, status, error in rows
        if prompt.split()[0] in wanted
    }


def wait_finished(
    stack: ScaledStack, tags: list[str], timeout: float
) -> dict[str, tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = job_rows(stack, tags)
        unfinished = [t for t, (_, s, _) in jobs.items() if s not in ("succeeded", "failed")]
        if len(jobs) == len(tags) and not unfinished:
            return jobs
        stack.check_alive()
        assert time.monotonic() < deadline, f"unfinished after {timeout:.0f} s: {unfinished}"
        time.sleep(0.3)


def submits(stack: ScaledStack) -> Counter[str]:
    """How many times each prompt tag reached a submit endpoint of the relay."""
    counts: Counter[str] = Counter()
    for line in stack.request_log.read_text().splitlines():
        request = json.loads(line)
        if request["path"] in ("/v1/images/generations", "/mj/submit/imagine"):
            counts[request["prompt"].split()[0]] += 1
    return counts


def task_runs(stack: ScaledStack, job_ids: list[str]) -> list[tuple[str, str, list[str]]]:
    """(job id, status, worker ids) of every run_job task of these jobs."""
    rows = stack.query(
        "SELECT args_kwargs->'args'->>0, status, worker_ids "
        "FROM django_tasks_database_dbtaskresult WHERE task_path = 'media_jobs.tasks.run_job' "
        "AND args_kwargs->'args'->>0 = ANY(%s)",
        job_ids,
    )
    return [(job, status, workers) for job, status, workers in rows]


def test_fifty_jobs_run_across_both_workers_each_submitted_once(stack):
    batch = secrets.token_hex(3)
    jobs = {f"b{batch}-{i}": ("midjourney" if i % 2 else "dalle") for i in range(JOBS)}
    create_jobs(stack, jobs)

    finished = wait_finished(stack, list(jobs), timeout=180)

    failed = {tag: error for tag, (_, status, error) in finished.items() if status != "succeeded"}
    assert not failed
    sent = submits(stack)
    assert {tag: sent[tag] for tag in jobs} == dict.fromkeys(jobs, 1)
    assets = stack.query(
        "SELECT count(DISTINCT job_id) FROM media_jobs_asset WHERE job_id = ANY(%s)",
        [uuid.UUID(pk) for pk, _, _ in finished.values()],
    )
    assert assets == [(JOBS,)]
    runs = task_runs(stack, [pk for pk, _, _ in finished.values()])
    by_worker = Counter(workers[-1] for _, status, workers in runs if status == "SUCCESSFUL")
    live = {stack.worker_name(worker_id) for worker_id in by_worker}
    assert live == {"worker1", "worker2"}, by_worker
    assert all(status == "SUCCESSFUL" for _, status, _ in runs)


def test_a_worker_killed_while_polling_midjourney_leaves_the_job_to_the_other(stack):
    tag = f"k{secrets.token_hex(3)}"
    stack.proxy.hold(MJ_FETCH)
    try:
        create_jobs(stack, {tag: "midjourney"})
        assert stack.proxy.held.wait(60), "no worker polled the job"
        [(job_id, status, submitted, upstream_id)] = stack.query(
            "SELECT id, status, submit_started_at, upstream_id FROM media_jobs_job "
            "WHERE params->>'prompt' LIKE %s",
            f"{tag} %",
        )
        # Polling, not submitting: the submit went through and was recorded.
        assert status in ("submitted", "running") and submitted and upstream_id
        [(_, _, claimed_by)] = [
            run for run in task_runs(stack, [str(job_id)]) if run[1] == "RUNNING"
        ]
        victim = stack.worker_name(claimed_by[-1])
        stack.children[victim].send_signal(signal.SIGKILL)
        stack.children[victim].wait(timeout=10)
        stack.children[f"{victim}-killed"] = stack.children.pop(victim)
    finally:
        stack.proxy.release()

    [(_, status, _)] = wait_finished(stack, [tag], timeout=60).values()

    assert status == "succeeded"
    assert submits(stack)[tag] == 1
    runs = task_runs(stack, [str(job_id)])
    survivor = "worker2" if victim == "worker1" else "worker1"
    # The killed worker's task is still "running" for ever; the survivor's sweep re-enqueued
    # the job (no worker started in between), and the survivor finished it.
    assert [(s, w[-1]) for _, s, w in runs if s == "RUNNING"] == [("RUNNING", claimed_by[-1])]
    finishing = [w[-1] for _, s, w in runs if s == "SUCCESSFUL"]
    assert finishing and stack.worker_name(finishing[-1]) == survivor
    assert "re-enqueued 1 stalled job" in stack.log(survivor).read_text()
    stack.start_worker(victim)  # back to two workers for whatever runs next
