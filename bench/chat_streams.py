"""What Studio's chat path costs, measured on a real stack against baselines from the same run.

The script starts its own stack in a temporary data folder: the relay simulator
(`python -m studio.simulator`, SIMULATOR_SPEED=20 so its fixed 0.4 s "thinking" before the first
token is 20 ms; the [[tokens=N]] and [[tps=R]] markers used here are never scaled), one daphne
web process (in-memory channel layer, SQLite), and signed-in users (created with the ORM, logged
in over HTTP with the CSRF token). Conversations are made with `POST /chat/new/` and driven over
`/ws/chat/<uuid>/` exactly as a browser would (Origin header, session cookie); autobahn (installed
with daphne) is the websocket client. Every process started is killed at the end.

Figures, and what each is compared with:

1. Overhead. TTFT (send -> first token) and time to the last token, p50/p95 over sequential
   replies of 50 tokens at 500 tokens/s, through Studio's websocket versus the same request sent
   straight to the simulator with streaming HTTP (httpx, kept-alive connection). The two are
   interleaved so the machine's noise hits both alike. "Added" is Studio minus direct; the
   target is <= 10 ms added TTFT at p50.
2. Concurrency. N simultaneous conversations (one socket each, spread over several users),
   500 tokens each at 50 tokens/s, through the one daphne process; baseline: N simultaneous
   direct streaming requests to the simulator. Per reply: lost / duplicated / out-of-order
   tokens (seq must run 1, 2, 3... and the text must equal the final database row exactly;
   target zero); TTFT; stream delay (each frame's arrival minus when it was due at the
   simulator's pace counted from the first token: first + (k-1)/50 s for a frame ending with
   token k; Studio batches tokens into frames every 50 ms by design, so ~25 ms of it is
   intended); the lag of the last token behind its ideal time from the send (0.02 s +
   499/50 s); and CPU seconds of the daphne process per 1,000 tokens delivered
   (/proc/<pid>/stat) next to the simulator's own CPU per 1,000 tokens in the baseline run
   (the cost of producing the streams, as a yardstick for the cost of relaying them). Each
   process's utilisation and the machine's are shown too: on a small machine the simulator
   and this client share the CPUs with Studio, and a saturated CPU shows up as lag everywhere.
   "upstream conns" is the most TCP connections from daphne to the simulator seen at once.
3. Page weight. A first visit to /chat/ with an empty cache: the page plus every asset it
   references (stylesheets and their url()/@import, module scripts and their imports, favicon).
   In DEBUG WhiteNoise serves files uncompressed, so the compressed size is estimated by gzip
   level 6 of each body (what a gzip/brotli-serving deployment would send, roughly); target
   <= 150 KB. Also a conversation of 200 messages (created in the database): its HTML, the
   JSON embedded in it, and the assets it loads beyond those of /chat/.
4. Database. Writes to one assistant row during a 20 s reply (1,000 tokens at 50 tokens/s),
   counted from outside by polling the row every 10 ms and counting distinct `updated_at`
   values (a lower bound; target <= duration / 0.25 s + 2, about 82 for 20 s). And the number
   of SQL queries to load a conversation (chat.selectors.conversation_data, and the whole page
   through the test client) with 10 and with 200 messages: they must be equal (no query per
   message). That runs in a helper process with Django set up on the same SQLite file.

Exit status is 1 only for a correctness failure (tokens lost, duplicated or out of order, a
reply that did not complete, text differing from the database, a page that fails, a query count
that grows with the messages); slow figures are printed, never fatal.

    python bench/chat_streams.py [--smoke] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import difflib
import gzip
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from support.stack import Stack, django_helper

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SITE_KEY = "sk-sim-bench"
MODEL = "gpt-4o"
SIMULATOR_SPEED = 20.0
FIRST_TOKEN_DELAY = 0.4 / SIMULATOR_SPEED  # the simulator's scaled wait before the first token
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    users: int = 10
    overhead_replies: int = 50
    overhead_tokens: int = 50
    overhead_tps: int = 500
    levels: tuple[int, ...] = (50, 200, 500)
    level_tokens: int = 500
    level_tps: int = 50
    write_tokens: int = 1000
    write_tps: int = 50
    page_messages: tuple[int, int] = (10, 200)


FULL = Plan()
SMOKE = Plan(
    users=2,
    overhead_replies=5,
    levels=(10,),
    level_tokens=50,
    write_tokens=100,
)


# --------------------------------------------------------------------------- processes


# --------------------------------------------------------------------------- CPU accounting


def process_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuWindow:
    """CPU used by the simulator, the web process, this client and the machine over a window."""

    stack: Stack
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        busy, total = machine_ticks()
        return {
            "web": process_cpu(self.stack.pid("web")),
            "sim": process_cpu(self.stack.pid("simulator")),
            "client": own_cpu(),
            "busy": busy,
            "total": total,
            "wall": time.perf_counter(),
        }

    def __enter__(self) -> CpuWindow:
        self.start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.used = {key: end[key] - self.start[key] for key in end}

    def share(self, name: str) -> float:
        """CPU seconds per wall second (1.0 = one core busy)."""
        return self.used[name] / self.used["wall"]

    @property
    def machine_busy(self) -> float:
        return self.used["busy"] / max(1.0, self.used["total"])


# ------------------------------------------------------------------ Django (helper process)


def create_users(names: Iterable[str], password: str) -> None:
    from django.contrib.auth.models import User

    from studio.accounts.models import Profile

    for name in names:
        user = User.objects.create_user(name, password=password)
        Profile.objects.create(user=user, allow_site_key=True)


def seed_conversation(username: str, messages: int) -> str:
    """A conversation of `messages` finished messages (alternating question and reply)."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from chat.models import Conversation, Message
    from studio.simulator.openai import compose_chat_reply

    user = User.objects.get(username=username)
    with transaction.atomic():
        chat = Conversation.objects.create(user=user, model=MODEL, title=f"{messages} messages")
        parent = None
        for index in range(messages):
            question = f"Question {index}: how would you plan a picnic for {index} friends?"
            role, content = ("user", question) if index % 2 == 0 else ("assistant", "")
            if role == "assistant":
                content = compose_chat_reply(parent.content if parent else "", MODEL)
            parent = Message.objects.create(
                conversation=chat,
                parent=parent,
                role=role,
                content=content,
                model=MODEL,
                prompt_tokens=20 if role == "assistant" else None,
                completion_tokens=150 if role == "assistant" else None,
            )
        chat.current_leaf = parent
        chat.save(update_fields=["current_leaf"])
    return str(chat.id)


def query_counts(username: str, conversation_id: str) -> tuple[int, int | str]:
    """Queries for conversation_data, and for the whole page via the test client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from chat.models import Conversation
    from chat.selectors import conversation_data

    chat = Conversation.objects.get(pk=conversation_id)
    with CaptureQueriesContext(connection) as selector:
        conversation_data(chat, {})
    client = Client(HTTP_HOST="127.0.0.1")
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username=username))
    page: int | str
    try:
        with CaptureQueriesContext(connection) as view:
            response = client.get(f"/chat/{conversation_id}/")
        page = (
            len(view.captured_queries)
            if response.status_code == 200
            else (f"HTTP {response.status_code}")
        )
    except Exception as error:  # the page itself is broken: report it, don't crash the bench
        page = f"{type(error).__name__}: {str(error)[:60]}"
    return len(selector.captured_queries), page


# --------------------------------------------------------------------------- HTTP (browser side)


class Browser:
    """A signed-in user over plain HTTP: session cookie, CSRF token, new conversations."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
        self.username = username
        login = self.http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        if token is None:
            raise RuntimeError("no CSRF token on the login page")
        answer = self.http.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        )
        if answer.status_code != 302 or "sessionid" not in self.http.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {answer.status_code}")

    @property
    def cookie(self) -> str:
        return f"sessionid={self.http.cookies['sessionid']}"

    def new_conversation(self) -> str:
        csrf = self.http.cookies["csrftoken"]
        answer = self.http.post("/chat/new/", data={"csrfmiddlewaretoken": csrf})
        location = answer.headers.get("location", "")
        match = re.fullmatch(r"/chat/([0-9a-f-]{36})/", location)
        if answer.status_code != 302 or match is None:
            raise RuntimeError(f"POST /chat/new/ answered {answer.status_code} {location!r}")
        return match[1]

    def close(self) -> None:
        self.http.close()


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One reply as the client saw it: when it asked, and (arrival time, seq, text) per frame."""

    content: str
    started: float
    frames: list[tuple[float, int, str]] = field(default_factory=list)
    message_id: str = ""
    status: str = ""
    errors: list[str] = field(default_factory=list)
    finished: bool = False
    streaming_at: float | None = None  # the assistant message frame saying "streaming" arrived

    @property
    def text(self) -> str:
        return "".join(text for _, _, text in self.frames)

    @property
    def ttft(self) -> float | None:
        return self.frames[0][0] - self.started if self.frames else None

    @property
    def last(self) -> float | None:
        return self.frames[-1][0] - self.started if self.frames else None


def websocket_protocol() -> Any:
    """autobahn's asyncio websocket client, imported on first use (see django_helper)."""
    global _PROTOCOL
    if _PROTOCOL is None:
        import txaio

        txaio.use_asyncio()
        from autobahn.asyncio.websocket import WebSocketClientProtocol

        class Protocol(WebSocketClientProtocol):
            owner: ChatSocket

            def onOpen(self) -> None:
                self.owner.opened(self)

            def onMessage(self, payload: bytes, is_binary: bool) -> None:
                self.owner.received(time.perf_counter(), payload)

            def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:
                self.owner.closed(code, reason)

        _PROTOCOL = Protocol
    return _PROTOCOL


_PROTOCOL: Any = None


class ChatSocket:
    """One browser tab on one conversation: sends a message, collects its reply's frames."""

    def __init__(self, stack: Stack, conversation_id: str, cookie: str) -> None:
        self.stack = stack
        self.conversation_id = conversation_id
        self.cookie = cookie
        self.protocol: Any = None
        self.reply: Reply | None = None
        self._open: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None

    async def connect(self, patience: float = 30) -> None:
        loop = asyncio.get_running_loop()
        self._open = loop.create_future()
        url = f"ws://127.0.0.1:{self.stack.web_port}/ws/chat/{self.conversation_id}/"
        protocol_class = websocket_protocol()
        from autobahn.asyncio.websocket import WebSocketClientFactory

        factory = WebSocketClientFactory(
            url, origin=self.stack.web_url, headers={"Cookie": self.cookie}
        )
        factory.protocol = protocol_class

        def build() -> Any:
            protocol = factory()
            protocol.owner = self
            return protocol

        await loop.create_connection(build, "127.0.0.1", self.stack.web_port)
        await asyncio.wait_for(self._open, patience)

    def opened(self, protocol: Any) -> None:
        self.protocol = protocol
        if self._open and not self._open.done():
            self._open.set_result(None)

    def closed(self, code: int | None, reason: str | None) -> None:
        self.protocol = None
        problem = ConnectionError(f"socket closed: {code} {reason}")
        for waiter in (self._open, self._done):
            if waiter is not None and not waiter.done():
                waiter.set_exception(problem)

    def received(self, now: float, payload: bytes) -> None:
        frame = json.loads(payload)
        reply = self.reply
        if reply is None:
            return
        kind = frame.get("type")
        if kind == "delta" and frame["message_id"] == reply.message_id:
            reply.frames.append((now, frame["seq"], frame["text"]))
        elif kind == "message" and frame["message"]["role"] == "assistant":
            reply.message_id = reply.message_id or frame["message"]["id"]
            if frame["message"]["status"] == "streaming" and reply.streaming_at is None:
                reply.streaming_at = now
        elif kind == "error":
            reply.errors.append(f"{frame.get('code')}: {frame.get('detail')}")
            if frame.get("message_id") is None:  # the send itself was refused
                self._finish()
        elif kind == "done" and frame["message_id"] == reply.message_id:
            reply.status = frame["status"]
            reply.finished = True
            self._finish()

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def send(self, content: str, patience: float) -> Reply:
        if self.protocol is None:
            raise ConnectionError("socket is not open")
        self._done = asyncio.get_running_loop().create_future()
        frame = {
            "type": "send",
            "content": content,
            "model": MODEL,
            "params": {},
            "client_id": str(uuid.uuid4()),
        }
        self.reply = reply = Reply(content=content, started=time.perf_counter())
        self.protocol.sendMessage(json.dumps(frame).encode())
        try:
            await asyncio.wait_for(self._done, patience)
        except (TimeoutError, ConnectionError) as error:
            reply.errors.append(f"client: {type(error).__name__} {error}")
        self.reply = None
        return reply

    def close(self) -> None:
        if self.protocol is not None:
            self.protocol.sendClose(1000)


async def open_sockets(
    stack: Stack, conversations: list[tuple[str, str]], parallel: int = 25
) -> list[ChatSocket]:
    """One socket per (conversation id, cookie), a few handshakes at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(conversation_id: str, cookie: str) -> ChatSocket:
        async with gate:
            chat_socket = ChatSocket(stack, conversation_id, cookie)
            await chat_socket.connect()
            return chat_socket

    return list(await asyncio.gather(*(one(c, k) for c, k in conversations)))


async def direct_reply(client: httpx.AsyncClient, sim_url: str, content: str) -> Reply:
    """The same request Studio makes, straight to the simulator; one frame per SSE token."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True}
    reply = Reply(content=content, started=time.perf_counter())
    headers = {"Authorization": f"Bearer {SITE_KEY}"}
    seq, buffer = 0, b""
    try:
        async with client.stream(
            "POST", f"{sim_url}/v1/chat/completions", json=body, headers=headers
        ) as response:
            async for chunk in response.aiter_raw():
                now = time.perf_counter()
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    if not event.startswith(b"data: {"):
                        continue
                    choices = json.loads(event[6:]).get("choices") or [{}]
                    text = choices[0].get("delta", {}).get("content")
                    if text:
                        seq += 1
                        reply.frames.append((now, seq, text))
        reply.finished, reply.status = True, "complete"
    except httpx.HTTPError as error:
        reply.errors.append(f"client: {type(error).__name__} {error}")
    return reply


def direct_client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, pool=120))


async def warm_direct_pool(client: httpx.AsyncClient, sim_url: str, connections: int) -> None:
    """Open the connections before timing (the simulator's listen backlog is small)."""
    gate = asyncio.Semaphore(25)

    async def one() -> None:
        async with gate:
            await client.get(f"{sim_url}/__health")

    await asyncio.gather(*(one() for _ in range(connections)))


# --------------------------------------------------------------------------- checking


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # correctness failures: exit status 1
    notes: list[str] = field(default_factory=list)  # worth a look, never fatal


@dataclass
class Tally:
    replies: int = 0
    incomplete: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    mismatched: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.incomplete or self.lost or self.duplicated or self.out_of_order or self.mismatched
        )


def tokenize(text: str) -> list[str]:
    from studio.simulator.openai import tokenize as simulator_tokenize

    return simulator_tokenize(text)


def database_rows(stack: Stack, message_ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """message id -> (status, content, seq), read straight from the SQLite file."""
    rows: dict[str, tuple[str, str, int]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{stack.database}?mode=ro", uri=True)) as db:
        for start in range(0, len(message_ids), 500):
            batch = [uuid.UUID(m).hex for m in message_ids[start : start + 500] if m]
            marks = ",".join("?" * len(batch))
            query = f"SELECT id, status, content, seq FROM chat_message WHERE id IN ({marks})"  # noqa: S608
            for pk, status, content, seq in db.execute(query, batch):
                rows[str(uuid.UUID(pk))] = (status, content, seq)
    return rows


def check(replies: list[Reply], expected: dict[str, tuple[str, str, int]] | None) -> Tally:
    """Seq must run 1..n in arrival order, and the text must equal the expected final text.

    `expected` maps message id -> database row; None checks the seq only (direct streams, whose
    text is compared elsewhere).
    """
    tally = Tally(replies=len(replies))
    for reply in replies:
        tally.errors.extend(reply.errors)
        seqs = [seq for _, seq, _ in reply.frames]
        tally.out_of_order += sum(1 for a, b in zip([0, *seqs], seqs, strict=False) if b != a + 1)
        if expected is None:
            tally.incomplete += int(not reply.finished)
            continue
        status, content, last_seq = expected.get(reply.message_id, ("missing", "", 0))
        complete = reply.finished and reply.status == status == "complete"
        tally.incomplete += int(not complete)
        if reply.text != content or (seqs and last_seq != seqs[-1]):
            tally.mismatched += 1
            lost, duplicated = token_diff(content, reply.text)
            tally.lost += lost
            tally.duplicated += duplicated
    return tally


def token_diff(expected: str, received: str) -> tuple[int, int]:
    """(tokens missing from `received`, tokens in it that `expected` does not have there)."""
    matcher = difflib.SequenceMatcher(a=tokenize(expected), b=tokenize(received), autojunk=False)
    lost = duplicated = 0
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            lost += a2 - a1
        if op in ("insert", "replace"):
            duplicated += b2 - b1
    return lost, duplicated


# --------------------------------------------------------------------------- statistics


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def stream_delays(reply: Reply, tps: float) -> list[float]:
    """Per frame after the first: how late it is against the pace the first token set.

    A frame whose text ends with token k is due (k - 1) / tps after the first token arrived;
    TTFT measures the start separately, so this is the delay added while streaming.
    """
    if not reply.frames:
        return []
    ends, total = [], 0
    for piece in tokenize(reply.text):
        total += len(piece)
        ends.append(total)
    first = reply.frames[0][0]
    delays, received = [], 0
    for arrived, _, text in reply.frames:
        received += len(text)
        tokens = bisect.bisect_right(ends, received)
        delays.append(arrived - (first + (max(tokens, 1) - 1) / tps))
    return delays[1:]


def last_token_lag(reply: Reply, tokens: int, tps: float) -> float | None:
    if reply.last is None:
        return None
    return reply.last - (FIRST_TOKEN_DELAY + (tokens - 1) / tps)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None or seconds != seconds else f"{seconds * 1000:.1f}"


# --------------------------------------------------------------------------- 1. overhead


@dataclass
class Overhead:
    direct: list[Reply]
    studio: list[Reply]
    tally: Tally
    texts_differ: int


async def measure_overhead(stack: Stack, plan: Plan, chat_socket: ChatSocket) -> Overhead:
    direct: list[Reply] = []
    studio: list[Reply] = []
    markers = f"[[tokens={plan.overhead_tokens}]] [[tps={plan.overhead_tps}]]"
    async with direct_client(4) as client:
        for index in range(-3, plan.overhead_replies):  # three unrecorded warm-up pairs
            content = f"Overhead sample {index}. {markers}"
            pair = (
                await direct_reply(client, stack.sim_url, content),
                await chat_socket.send(content, patience=60),
            )
            if index >= 0:
                direct.append(pair[0])
                studio.append(pair[1])
    rows = database_rows(stack, [reply.message_id for reply in studio])
    tally = check(studio, rows)
    differ = sum(1 for d, s in zip(direct, studio, strict=True) if d.text != s.text)
    return Overhead(direct, studio, tally, differ)


# --------------------------------------------------------------------------- 2. concurrency


@dataclass
class LevelRun:
    label: str
    conversations: int
    replies: list[Reply]
    tally: Tally
    cpu: CpuWindow
    tokens: int  # delivered
    tps: float
    wanted_tokens: int
    upstream_peak: int = 0  # most connections from daphne to the simulator at once

    def ttfts(self) -> list[float]:
        return [r.ttft for r in self.replies if r.ttft is not None]

    def delays(self) -> list[float]:
        return [d for r in self.replies for d in stream_delays(r, self.tps)]

    def lags(self) -> list[float]:
        lags = (last_token_lag(r, self.wanted_tokens, self.tps) for r in self.replies)
        return [lag for lag in lags if lag is not None]

    def frames_per_reply(self) -> float:
        return statistics.mean(len(r.frames) for r in self.replies) if self.replies else 0.0


async def run_direct_level(stack: Stack, plan: Plan, count: int, round_id: str) -> LevelRun:
    markers = f"[[tokens={plan.level_tokens}]] [[tps={plan.level_tps}]]"
    async with direct_client(count + 8) as client:
        await warm_direct_pool(client, stack.sim_url, count)
        with CpuWindow(stack) as cpu:
            replies = await asyncio.gather(
                *(
                    direct_reply(client, stack.sim_url, f"Direct {round_id} #{i}. {markers}")
                    for i in range(count)
                )
            )
    tally = check(replies, None)
    for reply in replies:
        if reply.finished and len(reply.frames) != plan.level_tokens:
            tally.mismatched += 1
    delivered = sum(len(tokenize(r.text)) for r in replies)
    return LevelRun(
        "direct", count, replies, tally, cpu, delivered, plan.level_tps, plan.level_tokens
    )


def connections_to(port: int) -> int:
    """Established TCP connections whose far end is `port` on this machine."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


async def peak_connections(port: int, peak: list[int]) -> None:
    """Keep peak[0] at the most connections to `port` seen (sampled every 0.25 s)."""
    while True:
        peak[0] = max(peak[0], connections_to(port))
        await asyncio.sleep(0.25)


async def run_studio_level(
    stack: Stack, plan: Plan, sockets: list[ChatSocket], round_id: str
) -> LevelRun:
    markers = f"[[tokens={plan.level_tokens}]] [[tps={plan.level_tps}]]"
    timeout = plan.level_tokens / plan.level_tps + 90
    peak = [0]
    sampler = asyncio.create_task(peak_connections(stack.sim_port, peak))
    with CpuWindow(stack) as cpu:
        replies = await asyncio.gather(
            *(
                chat_socket.send(f"Studio {round_id} #{i}. {markers}", timeout)
                for i, chat_socket in enumerate(sockets)
            )
        )
    sampler.cancel()
    rows = database_rows(stack, [r.message_id for r in replies])
    tally = check(replies, rows)
    delivered = sum(len(tokenize(r.text)) for r in replies)
    run = LevelRun(
        "Studio", len(sockets), replies, tally, cpu, delivered, plan.level_tps, plan.level_tokens
    )
    run.upstream_peak = peak[0]
    return run


async def measure_concurrency(
    stack: Stack, plan: Plan, conversations: list[tuple[str, str]]
) -> list[LevelRun]:
    runs: list[LevelRun] = []
    sockets: list[ChatSocket] = []
    try:
        for level in plan.levels:
            sockets += await open_sockets(stack, conversations[len(sockets) : level])
            await asyncio.sleep(1)  # let titles of the previous round finish
            runs.append(await run_direct_level(stack, plan, level, f"L{level}"))
            await asyncio.sleep(1)
            runs.append(await run_studio_level(stack, plan, sockets[:level], f"L{level}"))
    finally:
        for chat_socket in sockets:
            chat_socket.close()
        await asyncio.sleep(0.5)
    return runs


# --------------------------------------------------------------------------- 4a. writes per reply


@dataclass
class Writes:
    kinds: dict[str, int]  # insert / checkpoint / final -> distinct writes seen
    target: float
    tally: Tally
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


async def measure_writes(stack: Stack, plan: Plan, chat_socket: ChatSocket) -> Writes:
    """Poll the assistant row every 10 ms while it streams; count distinct updated_at values."""
    content = f"A long answer please. [[tokens={plan.write_tokens}]] [[tps={plan.write_tps}]]"
    started = time.monotonic()
    task = asyncio.create_task(chat_socket.send(content, plan.write_tokens / plan.write_tps + 60))
    seen: dict[str, tuple[str, int]] = {}  # updated_at -> (status, seq)
    query = "SELECT updated_at, status, seq FROM chat_message WHERE id = ?"
    db = sqlite3.connect(f"file:{stack.database}?mode=ro", uri=True)
    try:
        while True:
            reply = chat_socket.reply
            if reply is not None and reply.message_id:
                for stamp, status, seq in db.execute(query, [uuid.UUID(reply.message_id).hex]):
                    seen[stamp] = (status, seq)
            if task.done():
                break
            await asyncio.sleep(0.01)
        reply = await task
        for stamp, status, seq in db.execute(query, [uuid.UUID(reply.message_id).hex]):
            seen[stamp] = (status, seq)
    finally:
        db.close()
    # The INSERT (the row is created `streaming` with seq 0) is certain but its stamp may be
    # overwritten before the first poll: count it once whether seen or not.
    kinds = {"insert": 1, "checkpoint": 0, "final": 0}
    for status, seq in seen.values():
        if status in ("pending", "streaming") and not seq:
            continue  # the insert, already counted
        kinds["checkpoint" if status == "streaming" else "final"] += 1
    # The target follows the reply's real duration: one write per 250 ms of streaming, plus 2.
    seconds = time.monotonic() - started
    tally = check([reply], database_rows(stack, [reply.message_id]))
    return Writes(kinds, seconds / 0.25 + 2, tally, seconds)


# --------------------------------------------------------------------------- 3. page weight


@dataclass
class Resource:
    url: str
    status: int
    raw: int
    gzipped: int


ASSET_IN_HTML = re.compile(r"<(?:link|script|img)\b[^>]*?\b(?:href|src)=[\"']([^\"']+)[\"']", re.I)
ASSET_IN_CSS = re.compile(r"url\(\s*[\"']?([^\"')]+)[\"']?\s*\)|@import\s+[\"']([^\"']+)[\"']")
ASSET_IN_JS = re.compile(
    r"(?:\bfrom\s*|\bimport\s*\(?\s*)[\"']([^\"']+\.m?js)[\"']"  # from "x.js", import("x.js")
)


def referenced(url: str, body: str, content_type: str) -> list[str]:
    if "html" in content_type:
        found = ASSET_IN_HTML.findall(body)
    elif "css" in content_type:
        found = [a or b for a, b in ASSET_IN_CSS.findall(body)]
    elif "javascript" in content_type:
        found = ASSET_IN_JS.findall(body)
    else:
        found = []
    links = [urljoin(url, ref) for ref in found if not ref.startswith(("data:", "#"))]
    base = urlsplit(url).netloc
    return [link for link in links if urlsplit(link).netloc == base]


def first_visit(http: httpx.Client, url: str) -> list[Resource]:
    """The page and everything it pulls in, each fetched once as with an empty cache."""
    todo, seen, found = [url], {url}, []
    while todo:
        current = todo.pop(0)
        response = http.get(current, headers={"Accept-Encoding": "gzip"})
        body = response.content
        wire = response.num_bytes_downloaded
        compressed = wire if response.headers.get("content-encoding") else gzip_size(body)
        found.append(Resource(current, response.status_code, wire, compressed))
        if response.status_code != 200:
            continue
        kind = response.headers.get("content-type", "")
        for link in referenced(current, body.decode(errors="replace"), kind):
            if link not in seen:
                seen.add(link)
                todo.append(link)
    return found


def gzip_size(body: bytes) -> int:
    """What gzip level 6 would send (never more than the body itself)."""
    return min(len(body), len(gzip.compress(body, compresslevel=6)))


def embedded_json_bytes(html: str) -> int:
    scripts = re.findall(
        r"<script[^>]*type=[\"']application/json[\"'][^>]*>(.*?)</script>", html, re.S
    )
    return sum(len(s.encode()) for s in scripts)


@dataclass
class Pages:
    index: list[Resource]  # first visit to /chat/: the page, then its assets
    conversation: list[Resource]  # first visit to a long conversation: the page, then its assets
    conversation_json: int  # bytes of JSON embedded in that page


def measure_pages(browser: Browser, conversation_id: str) -> Pages:
    index = first_visit(browser.http, f"{browser.base_url}/chat/")
    conversation = first_visit(browser.http, f"{browser.base_url}/chat/{conversation_id}/")
    page = browser.http.get(f"/chat/{conversation_id}/")
    embedded = embedded_json_bytes(page.text) if page.status_code == 200 else 0
    return Pages(index, conversation, embedded)


# --------------------------------------------------------------------------- report


def section(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}")


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def report_overhead(result: Overhead, plan: Plan, findings: Findings) -> None:
    section(
        f"1. Overhead: {plan.overhead_replies} sequential replies, "
        f"{plan.overhead_tokens} tokens at {plan.overhead_tps} tokens/s"
    )
    rows = []
    for name, metric in (("TTFT", "ttft"), ("last token", "last")):
        for q in (50, 95):
            direct = pct([getattr(r, metric) for r in result.direct if r.frames], q)
            studio = pct([getattr(r, metric) for r in result.studio if r.frames], q)
            rows.append([f"{name} p{q}", ms(direct), ms(studio), ms(studio - direct)])
    table(["ms", "direct HTTP (baseline)", "Studio websocket", "added"], rows)
    direct_ttfts = [r.ttft for r in result.direct if r.ttft is not None]
    added = pct([r.ttft or 0 for r in result.studio], 50) - pct(direct_ttfts, 50)
    verdict = "met" if added <= 0.010 else "NOT met"
    print(f"target: added TTFT <= 10 ms at p50 -> {verdict} ({added * 1000:.1f} ms)")
    before = [r.streaming_at - r.started for r in result.studio if r.streaming_at]
    after = [
        r.ttft - (r.streaming_at - r.started) for r in result.studio if r.streaming_at and r.ttft
    ]
    print(
        f"Studio TTFT split (p50): send -> 'streaming' message frame {ms(pct(before, 50))} ms "
        f"(planning and database writes before the relay is called), then -> first token "
        f"{ms(pct(after, 50))} ms (the relay call; direct TTFT {ms(pct(direct_ttfts, 50))} ms)"
    )
    tenth = max(1, len(result.studio) // 5)
    early = [r.ttft for r in result.studio[:tenth] if r.ttft is not None]
    late = [r.ttft for r in result.studio[-tenth:] if r.ttft is not None]
    print(
        f"Studio TTFT p50 over the first {tenth} replies {ms(pct(early, 50))} ms, over the last "
        f"{tenth} {ms(pct(late, 50))} ms (one conversation: its history grows as it goes)"
    )
    report_tally("overhead", result.tally, findings)
    if result.texts_differ:
        findings.problems.append(
            f"overhead: {result.texts_differ} Studio replies differ from direct ones"
        )


def report_concurrency(runs: list[LevelRun], plan: Plan, findings: Findings) -> None:
    section(
        f"2. Concurrency: N conversations at once, {plan.level_tokens} tokens each at "
        f"{plan.level_tps} tokens/s (ideal {plan.level_tokens / plan.level_tps:.0f} s)"
    )
    header = [
        "N", "path", "done", "lost", "dup", "order", "TTFT p50", "TTFT p95", "stream delay p50",
        "stream delay p95", "last lag p50", "last lag p95", "frames/reply", "server CPU s/1k tok",
        "server core %", "sim core %", "client core %", "machine %", "upstream conns",
    ]  # fmt: skip
    rows = []
    for run in runs:
        server = "web" if run.label == "Studio" else "sim"
        per_k = run.cpu.used[server] / max(1, run.tokens) * 1000
        tally = run.tally
        rows.append(
            [
                str(run.conversations),
                run.label,
                f"{tally.replies - tally.incomplete}/{tally.replies}",
                str(tally.lost),
                str(tally.duplicated),
                str(tally.out_of_order),
                ms(pct(run.ttfts(), 50)),
                ms(pct(run.ttfts(), 95)),
                ms(pct(run.delays(), 50)),
                ms(pct(run.delays(), 95)),
                ms(pct(run.lags(), 50)),
                ms(pct(run.lags(), 95)),
                f"{run.frames_per_reply():.0f}",
                f"{per_k:.3f} ({server})",
                f"{run.cpu.share('web') * 100:.0f}",
                f"{run.cpu.share('sim') * 100:.0f}",
                f"{run.cpu.share('client') * 100:.0f}",
                f"{run.cpu.machine_busy * 100:.0f}",
                str(run.upstream_peak) if run.label == "Studio" else "-",
            ]
        )
        report_tally(f"{run.label} x{run.conversations}", tally, findings)
    table(header, rows)
    print("times in ms; 'server CPU' is daphne for Studio, the simulator for direct;")
    print("core % = CPU seconds per wall second of each process; machine % = all CPUs busy;")
    print("upstream conns = most connections from daphne to the simulator at once (sampled).")
    by_level: dict[int, dict[str, LevelRun]] = {}
    for run in runs:
        by_level.setdefault(run.conversations, {})[run.label] = run
    for level, pair in by_level.items():
        studio, direct = pair.get("Studio"), pair.get("direct")
        if studio and direct:
            web = studio.cpu.used["web"] / max(1, studio.tokens) * 1000
            sim = direct.cpu.used["sim"] / max(1, direct.tokens) * 1000
            later = [pct(studio.lags(), q) - pct(direct.lags(), q) for q in (50, 95)]
            print(
                f"N={level}: daphne spends {web / sim if sim else float('nan'):.1f}x the CPU per "
                f"token that the simulator spends producing it; Studio's last token arrives "
                f"{ms(later[0])} / {ms(later[1])} ms (p50 / p95) later than the direct one"
            )


def report_tally(label: str, tally: Tally, findings: Findings) -> None:
    if not tally.ok:
        findings.problems.append(
            f"{label}: {tally.incomplete} incomplete, {tally.mismatched} texts differ, "
            f"{tally.lost} tokens lost, {tally.duplicated} duplicated, "
            f"{tally.out_of_order} frames out of order"
        )
    if tally.errors:
        counts: dict[str, int] = {}
        for error in tally.errors:
            counts[error[:120]] = counts.get(error[:120], 0) + 1
        listed = "; ".join(f"{n} x {e}" for e, n in sorted(counts.items(), key=lambda i: -i[1]))
        findings.notes.append(f"{label}: error frames: {listed[:600]}")


def report_pages(pages: Pages, messages: int, findings: Findings) -> None:
    section("3. Page weight (gzip level 6 estimated: DEBUG serves uncompressed)")
    rows = [
        [urlsplit(r.url).path, str(r.status), f"{r.raw / 1024:.1f}", f"{r.gzipped / 1024:.1f}"]
        for r in pages.index
    ]
    raw = sum(r.raw for r in pages.index)
    compressed = sum(r.gzipped for r in pages.index)
    rows.append(
        ["total first visit to /chat/", "", f"{raw / 1024:.1f}", f"{compressed / 1024:.1f}"]
    )
    table(["resource", "HTTP", "KB raw", "KB gzip"], rows)
    failed = [r for r in pages.index if r.status != 200]
    verdict = "met" if compressed <= 150 * 1024 else "NOT met"
    print(f"target: <= 150 KB compressed -> {'unknown (failures)' if failed else verdict}")
    for r in failed:
        findings.problems.append(f"first visit to /chat/: {urlsplit(r.url).path} -> {r.status}")
    page, *assets = pages.conversation
    print(
        f"\nconversation of {messages} messages: HTTP {page.status}, HTML "
        f"{page.raw / 1024:.1f} KB raw / {page.gzipped / 1024:.1f} KB gzip, of which embedded "
        f"JSON {pages.conversation_json / 1024:.1f} KB raw"
    )
    seen = {urlsplit(r.url).path for r in pages.index}
    extra = [r for r in assets if urlsplit(r.url).path not in seen]
    rows = [
        [urlsplit(r.url).path, str(r.status), f"{r.raw / 1024:.1f}", f"{r.gzipped / 1024:.1f}"]
        for r in extra
    ]
    raw = sum(r.raw for r in pages.conversation)
    compressed = sum(r.gzipped for r in pages.conversation)
    rows.append(["total first visit to it", "", f"{raw / 1024:.1f}", f"{compressed / 1024:.1f}"])
    print("its assets not already loaded by /chat/ (a first visit straight to it loads all):")
    table(["resource", "HTTP", "KB raw", "KB gzip"], rows)
    for r in pages.conversation:
        if r.status != 200:
            findings.problems.append(f"conversation page: {urlsplit(r.url).path} -> {r.status}")


def report_database(
    writes: Writes, counts: dict[int, tuple[int, int | str]], findings: Findings
) -> None:
    section("4. Database")
    verdict = "met" if writes.total <= writes.target else "NOT met"
    print(
        f"writes to one assistant row during a {writes.seconds:.0f} s reply: "
        f">= {writes.total} distinct updated_at values (polled every 10 ms); "
        f"target <= {writes.target:.0f} -> {verdict}"
    )
    print("  by kind: " + ", ".join(f"{n} {kind}" for kind, n in writes.kinds.items()))
    print("  (insert = the row created `streaming` before the relay call, counted whether the")
    print("   poll saw it or not; checkpoint = a batched text write; final = the finishing write)")
    report_tally("writes reply", writes.tally, findings)
    rows = [[str(n), str(sel), str(page)] for n, (sel, page) in counts.items()]
    table(["messages", "queries: conversation_data", "queries: page (test client)"], rows)
    selectors = {sel for sel, _ in counts.values()}
    pages = {page for _, page in counts.values()}
    if len(selectors) > 1:
        findings.problems.append(f"conversation_data queries grow with messages: {counts}")
    if any(isinstance(p, str) for p in pages):
        findings.problems.append(f"conversation page failed in-process: {sorted(map(str, pages))}")
    elif len(pages) > 1:
        findings.problems.append(f"conversation page queries grow with messages: {counts}")


# --------------------------------------------------------------------------- main


async def streaming_phases(
    stack: Stack, plan: Plan, solo: list[tuple[str, str]], conversations: list[tuple[str, str]]
) -> tuple[Overhead, list[LevelRun], Writes]:
    """1, 2 and 4a; `solo` holds the two conversations of the sequential measurements."""
    overhead_socket, writes_socket = await open_sockets(stack, solo)
    try:
        overhead = await measure_overhead(stack, plan, overhead_socket)
        runs = await measure_concurrency(stack, plan, conversations)
        writes = await measure_writes(stack, plan, writes_socket)
    finally:
        overhead_socket.close()
        writes_socket.close()
        await asyncio.sleep(0.2)
    return overhead, runs, writes


def spread_conversations(browsers: list[Browser], count: int) -> list[tuple[str, str]]:
    """`count` conversations, dealt round-robin to the users: (conversation id, cookie)."""
    return [
        (browser.new_conversation(), browser.cookie)
        for browser in (browsers[i % len(browsers)] for i in range(count))
    ]


def run(plan: Plan, keep: bool) -> int:
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    stack = Stack(data_dir, site_key=SITE_KEY, simulator_speed=SIMULATOR_SPEED)
    findings = Findings()
    browsers: list[Browser] = []
    django = django_helper(stack)
    try:
        stack.start()
        password = uuid.uuid4().hex
        names = [f"bench{i}" for i in range(plan.users)]
        django.submit(create_users, [*names, "reader"], password).result()
        browsers = [Browser(stack.web_url, name, password) for name in [*names, "reader"]]
        reader = browsers[-1]
        solo = spread_conversations(browsers[:1], 2)
        conversations = spread_conversations(browsers[:-1], max(plan.levels))
        setup_seconds = time.monotonic() - started
        overhead, runs, writes = asyncio.run(streaming_phases(stack, plan, solo, conversations))

        seeded = {
            n: django.submit(seed_conversation, "reader", n).result() for n in plan.page_messages
        }
        counts = {n: django.submit(query_counts, "reader", c).result() for n, c in seeded.items()}
        largest = max(plan.page_messages)
        pages = measure_pages(reader, seeded[largest])

        print(f"\nStudio chat streams benchmark ({'smoke' if plan is SMOKE else 'full'})")
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
            f"stack set up in {setup_seconds:.0f} s"
        )
        report_overhead(overhead, plan, findings)
        report_concurrency(runs, plan, findings)
        report_pages(pages, largest, findings)
        report_database(writes, counts, findings)
    finally:
        for browser in browsers:
            browser.close()
        django.shutdown(cancel_futures=True)
        stack.stop()
        findings.notes.extend(stack.log_problems())
        if keep:
            print(f"\nkept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    section("Findings")
    for line in findings.notes:
        print(f"note: {line}")
    for line in findings.problems:
        print(f"FAILURE: {line}")
    verdict = "FAILED" if findings.problems else "OK"
    print(f"{verdict} in {time.monotonic() - started:.0f} s")
    return 1 if findings.problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny version for CI (< 1 min)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    parser.add_argument(
        "--overhead-only",
        action="store_true",
        help="measure the overhead (section 1) with a full sample, and the rest minimally",
    )
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # runs the finally blocks that stop the stack

    signal.signal(signal.SIGTERM, stop)
    plan = SMOKE if args.smoke else FULL
    if args.overhead_only:
        plan = dataclasses.replace(plan, levels=(10,), level_tokens=50, write_tokens=100)
    sys.exit(run(plan, args.keep))


if __name__ == "__main__":
    main()
