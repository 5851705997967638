"""Studio in the scaled mode (PostgreSQL + Redis): one process against two, ratios in one run.

The script makes a scratch PostgreSQL database (`studio_bench_<random>` on SCALE_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/postgres; dropped at the end) and takes an empty
Redis database (on SCALE_REDIS_URL, default redis://127.0.0.1:6379; flushed at the end, nothing
else touched), then starts its processes (bench/support/stack.py): two relay simulators
(SIMULATOR_SPEED=20), daphne web processes and `manage.py worker` processes, all on that
database and that Redis, and a helper process with Django set up on the same database. Without
PostgreSQL or Redis it says so and exits 0 (1 under CI=true). Every process is stopped at the end.

1. Chat throughput, 1 web process against 2. C conversations at once (one socket each, spread
   over U users), each a reply of T tokens streamed by the relay as fast as it can
   ([[tps=R]], R high), the sockets dealt round-robin over the web processes in use, after a
   small warm-up. Rounds alternate (web1 alone, web1 + web2, ...) and their medians are
   compared, so that the machine's noise hits both alike. Each web process has its own
   simulator: a real relay serves every web process, so one simulator process must not be the
   shared bottleneck being measured. Throughput = tokens delivered / (last frame - first send);
   a burst of sends is part of it (each send's database work runs on its process's one
   database thread: "replies started/s"). Every reply is checked: seq runs 1..n and the text
   equals the PostgreSQL row (zero lost, duplicated or out-of-order tokens). Target: two
   processes >= 1.7x one on 2 cores; CPU per process, PostgreSQL's, Redis's and the machine's
   show what bounds it (here the simulators, this client, PostgreSQL and Redis share the cores).
2. Job throughput, 1 worker against 2. J DALL·E jobs enqueued at once (ORM + runner.enqueue, as
   the form does; the per-user running limit and rate limits are off), the relay taking its
   usual (scaled) 0.5 s per image. jobs/s = J / (last finished_at - first created_at). All must
   succeed and reach the relay's submit endpoint exactly once (simulator request log); the
   share of tasks each worker ran is shown (django-tasks-db records the worker on each task).

Exit status 1 only for a correctness failure (tokens lost, duplicated or out of order, a reply
not complete, a job not succeeded or submitted twice); slow figures are printed, never fatal.

    python bench/scale.py [--smoke] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from chat_streams import (
    Browser,
    ChatSocket,
    Findings,
    Reply,
    Tally,
    check,
    create_users,
    machine_ticks,
    ms,
    pct,
    process_cpu,
    report_tally,
    section,
    table,
    tokenize,
)
from support.stack import (
    Stack,
    django_helper,
    relay_requests,
    scratch_postgres,
    scratch_redis,
)

SITE_KEY = "sk-sim-bench-scale"
SIMULATOR_SPEED = 20.0
PASSWORD = "bench-scale-password-1"  # noqa: S105 - a throw-away user of a throw-away stack
POSTGRES_URL = os.environ.get("SCALE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Measured here, not the limits: the per-user chat and job rate limits are turned off.
UNLIMITED = {"RATELIMIT_CHAT": "off", "RATELIMIT_JOBS": "off", "DJANGO_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Plan:
    users: int = 10
    conversations: int = 100
    tokens: int = 500
    tps: int = 2000
    warmup: int = 10
    rounds: int = 3  # of each configuration, alternating: the machine's noise hits both alike
    jobs: int = 60


FULL = Plan()
SMOKE = Plan(users=2, conversations=10, tokens=60, tps=1000, warmup=2, rounds=1, jobs=8)


# ------------------------------------------------------------------ Django (helper process)


def create_dalle_jobs(username: str, tag: str, count: int) -> list[str]:
    from django.contrib.auth.models import User
    from django.db import transaction

    from media_jobs import runner
    from media_jobs.models import Job

    user = User.objects.get(username=username)
    ids = []
    for index in range(count):
        params = {
            "prompt": f"{tag}-{index} a red kite over the sea",
            "model": "dall-e-3",
            "n": 1,
            "size": "1024x1024",
            "quality": "standard",
            "style": "vivid",
        }
        with transaction.atomic():
            job = Job.objects.create(user=user, kind="dalle", params=params)
            runner.enqueue(job)
        ids.append(str(job.id))
    return ids


# --------------------------------------------------------------------------- CPU

SERVERS = {"postgres": "postgres", "redis": "redis-server"}  # label -> process name


def servers_cpu(command: str) -> dict[int, float]:
    """pid -> CPU seconds of every process of this name (PostgreSQL's backends come and go)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command:
                found[int(entry.name)] = process_cpu(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


@dataclass
class Cpu:
    """CPU seconds of named processes of the stack, and the machine's load, over a window."""

    stack: Stack
    names: list[str]
    used: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0  # share of all CPUs busy

    def _read(self) -> dict[str, float]:
        busy, total = machine_ticks()
        values = {name: process_cpu(self.stack.pid(name)) for name in self.names}
        return {**values, "client": time.process_time(), "busy": busy, "total": total}

    def __enter__(self) -> Cpu:
        self._start = self._read()
        self._servers = {label: servers_cpu(command) for label, command in SERVERS.items()}
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.wall = time.perf_counter() - self._began
        self.used = {key: end[key] - self._start[key] for key in end}
        for label, command in SERVERS.items():
            # A process that ended meanwhile is missed; one that started counts from zero.
            before = self._servers[label]
            after = servers_cpu(command)
            self.used[label] = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        self.busy = self.used["busy"] / max(1.0, self.used["total"])

    def share(self, name: str) -> float:
        return self.used[name] / self.wall


# --------------------------------------------------------------------------- 1. chat


@dataclass
class ChatRun:
    webs: int
    replies: list[Reply]
    tally: Tally
    cpu: Cpu
    tokens: int
    seconds: float
    unfinished: Counter[str] = field(default_factory=Counter)  # database status -> replies

    @property
    def throughput(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def starts(self) -> float:
        """Replies started per second: all of them over the time to the last first token."""
        ttfts = [r.ttft for r in self.replies if r.ttft is not None]
        return len(ttfts) / max(ttfts) if ttfts else 0.0


def database_rows(database_url: str, message_ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """message id -> (status, content, seq), from PostgreSQL."""
    ids = [uuid.UUID(m) for m in message_ids if m]
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT id, status, content, seq FROM chat_message WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {str(pk): (status, content, seq) for pk, status, content, seq in rows}


async def open_on(stack: Stack, web: str, conversation: str, cookie: str) -> ChatSocket:
    # ChatSocket connects to its stack's web_port: give it a view of the stack on this process.
    port = stack.ports[web]
    chat_socket = ChatSocket(dataclasses.replace(stack, web_port=port), conversation, cookie)
    await chat_socket.connect()
    return chat_socket


async def chat_round(
    stack: Stack, plan: Plan, webs: list[str], conversations: list[tuple[str, str]], label: str
) -> ChatRun:
    gate = asyncio.Semaphore(20)

    async def one(index: int, conversation: str, cookie: str) -> ChatSocket:
        async with gate:
            return await open_on(stack, webs[index % len(webs)], conversation, cookie)

    sockets = list(await asyncio.gather(*(one(i, c, k) for i, (c, k) in enumerate(conversations))))
    markers = f"[[tokens={plan.tokens}]] [[tps={plan.tps}]]"
    patience = 60 + plan.conversations * plan.tokens / 2000
    try:
        # Warm-up: every web process has served a reply (connections, caches) before timing.
        warming = sockets[: max(plan.warmup, len(webs))]
        await asyncio.gather(
            *(s.send(f"Warm-up {label} #{i}. [[tokens=20]]", 60) for i, s in enumerate(warming))
        )
        await asyncio.sleep(1)
        names = [*webs, *(f"sim{web.removeprefix('web')}" for web in webs)]
        with Cpu(stack, names) as cpu:
            began = time.perf_counter()
            replies = await asyncio.gather(
                *(s.send(f"Scale {label} #{i}. {markers}", patience) for i, s in enumerate(sockets))
            )
    finally:
        for chat_socket in sockets:
            chat_socket.close()
        await asyncio.sleep(0.3)
    assert stack.database_url
    rows = database_rows(stack.database_url, [r.message_id for r in replies])
    tally = check(replies, rows)
    # What became of the replies this client saw no end of, as the database tells it.
    unfinished = Counter(
        rows.get(r.message_id, ("no row" if r.message_id else "never announced",))[0]
        for r in replies
        if not r.finished
    )
    ends = [r.frames[-1][0] for r in replies if r.frames]
    tokens = sum(len(tokenize(r.text)) for r in replies)
    seconds = (max(ends) if ends else began) - began
    return ChatRun(len(webs), replies, tally, cpu, tokens, seconds, unfinished)


def new_conversations(browsers: list[Browser], count: int) -> list[tuple[str, str]]:
    return [
        (browser.new_conversation(), browser.cookie)
        for browser in (browsers[i % len(browsers)] for i in range(count))
    ]


# --------------------------------------------------------------------------- 2. jobs


@dataclass
class JobsRun:
    workers: int
    jobs: int
    succeeded: int
    seconds: float
    submits: Counter[int]  # times sent -> how many jobs
    tasks_by_worker: Counter[str]
    cpu: Cpu

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def wait_for_workers(stack: Stack, count: int, timeout: float = 60) -> None:
    assert stack.database_url
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        while True:
            fresh = db.execute(
                "SELECT count(*) FROM accounts_workerheartbeat "
                "WHERE last_seen > now() - interval '30 seconds'"
            ).fetchone()
            if fresh and fresh[0] >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not start")
            time.sleep(0.2)


def jobs_round(stack: Stack, helper: Any, plan: Plan, workers: list[str], tag: str) -> JobsRun:
    assert stack.database_url
    with Cpu(stack, workers) as cpu:
        ids = helper.submit(create_dalle_jobs, "bench0", tag, plan.jobs).result()
        deadline = time.monotonic() + 60 + plan.jobs * 3
        with psycopg.connect(stack.database_url, autocommit=True) as db:
            while True:
                rows = db.execute(
                    "SELECT status, created_at, finished_at FROM media_jobs_job WHERE id = ANY(%s)",
                    ([uuid.UUID(i) for i in ids],),
                ).fetchall()
                if all(status in ("succeeded", "failed", "cancelled") for status, _, _ in rows):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            tasks = db.execute(
                "SELECT worker_ids FROM django_tasks_database_dbtaskresult "
                "WHERE args_kwargs->'args'->>0 = ANY(%s) AND status = 'SUCCESSFUL'",
                (ids,),
            ).fetchall()
    finished = [f for _, _, f in rows if f is not None]
    seconds = (max(finished) - min(c for _, c, _ in rows)).total_seconds() if finished else 0.0
    sent = Counter(
        str(r.get("prompt", "")).split(" ", 1)[0]
        for r in relay_requests(stack.data_dir / "sim1.jsonl")
        if r.get("path") == "/v1/images/generations"
    )
    per_job = Counter(sent.get(f"{tag}-{i}", 0) for i in range(plan.jobs))
    names = {name: stack.children[name].pid for name in workers}
    by_worker: Counter[str] = Counter()
    for (worker_ids,) in tasks:
        pid = int(worker_ids[-1].split("-")[-2]) if worker_ids else 0
        by_worker[next((n for n, p in names.items() if p == pid), f"pid {pid}")] += 1
    succeeded = sum(1 for status, _, _ in rows if status == "succeeded")
    return JobsRun(len(workers), len(ids), succeeded, seconds, per_job, by_worker, cpu)


# --------------------------------------------------------------------------- report


def report_chat(runs: list[ChatRun], plan: Plan, findings: Findings) -> None:
    section(
        f"1. Chat: {plan.conversations} replies at once, {plan.tokens} tokens each "
        f"([[tps={plan.tps}]]), 1 web process against 2, {plan.rounds} round(s) of each"
    )
    header = [
        "web processes", "done", "lost", "dup", "order", "tokens", "seconds", "tokens/s",
        "replies started/s", "TTFT p50", "TTFT p95", "last token p50", "last token p95",
        "web core %", "sim core %", "client core %", "postgres core %", "redis core %",
        "machine %",
    ]  # fmt: skip
    rows = []
    for run in runs:
        tally = run.tally
        webs = [f"web{i + 1}" for i in range(run.webs)]
        sims = [f"sim{i + 1}" for i in range(run.webs)]
        ttfts = [r.ttft for r in run.replies if r.ttft is not None]
        lasts = [r.last for r in run.replies if r.last is not None]
        rows.append(
            [
                str(run.webs),
                f"{tally.replies - tally.incomplete}/{tally.replies}",
                str(tally.lost),
                str(tally.duplicated),
                str(tally.out_of_order),
                str(run.tokens),
                f"{run.seconds:.2f}",
                f"{run.throughput:.0f}",
                f"{run.starts:.1f}",
                ms(pct(ttfts, 50)),
                ms(pct(ttfts, 95)),
                ms(pct(lasts, 50)),
                ms(pct(lasts, 95)),
                " + ".join(f"{run.cpu.share(w) * 100:.0f}" for w in webs),
                " + ".join(f"{run.cpu.share(s) * 100:.0f}" for s in sims),
                f"{run.cpu.share('client') * 100:.0f}",
                f"{run.cpu.share('postgres') * 100:.0f}",
                f"{run.cpu.share('redis') * 100:.0f}",
                f"{run.cpu.busy * 100:.0f}",
            ]
        )
        report_tally(f"chat with {run.webs} web process(es)", tally, findings)
        if run.unfinished:
            findings.notes.append(
                f"chat with {run.webs} web process(es): replies the client saw no end of, by "
                f"their status in the database: {dict(run.unfinished)}"
            )
    table(header, rows)
    print("times in ms; core % = CPU seconds per wall second of each process (100 = one core);")
    print(
        f"machine % = all {os.cpu_count()} CPUs busy (whatever else runs on the machine too); "
        "postgres and redis: every process of those servers."
    )
    one = [run for run in runs if run.webs == 1]
    two = [run for run in runs if run.webs == 2]
    if one and two:
        base = statistics.median(run.throughput for run in one)
        ratio = statistics.median(run.throughput for run in two) / max(base, 1e-9)
        verdict = "met" if ratio >= 1.7 else "NOT met"
        print(
            f"throughput ratio, 2 web processes / 1 (medians): {ratio:.2f}x "
            f"(target >= 1.7x -> {verdict})"
        )
        starts = statistics.median(r.starts for r in two) / max(
            statistics.median(r.starts for r in one), 1e-9
        )
        print(
            f"replies started per second, 2 / 1 (medians): {starts:.2f}x (a send's database work "
            "runs on its process's one database thread)"
        )


def report_jobs(runs: list[JobsRun], plan: Plan, findings: Findings) -> None:
    section(f"2. Jobs: {plan.jobs} DALL·E jobs at once, 1 worker against 2")
    header = [
        "workers", "succeeded", "submitted once", "seconds", "jobs/s", "tasks per worker",
        "worker core %",
    ]  # fmt: skip
    rows = []
    for run in runs:
        workers = [f"worker{i + 1}" for i in range(run.workers)]
        rows.append(
            [
                str(run.workers),
                f"{run.succeeded}/{run.jobs}",
                f"{run.submits.get(1, 0)}/{run.jobs}",
                f"{run.seconds:.2f}",
                f"{run.rate:.2f}",
                ", ".join(f"{name} {n}" for name, n in sorted(run.tasks_by_worker.items())),
                " + ".join(f"{run.cpu.share(w) * 100:.0f}" for w in workers),
            ]
        )
        if run.succeeded != run.jobs:
            findings.problems.append(
                f"jobs with {run.workers} worker(s): {run.jobs - run.succeeded} did not succeed"
            )
        if set(run.submits) != {1}:
            findings.problems.append(
                f"jobs with {run.workers} worker(s): submits per job {dict(run.submits)}"
            )
        if run.workers > 1 and len(run.tasks_by_worker) < run.workers:
            findings.notes.append(f"only {len(run.tasks_by_worker)} of {run.workers} workers ran")
    table(header, rows)
    if len(runs) == 2 and runs[0].rate:
        print(f"jobs/s ratio, 2 workers / 1: {runs[1].rate / runs[0].rate:.2f}x")
        print("(a job's time is mostly the relay's: a second worker overlaps those waits)")


# --------------------------------------------------------------------------- main


def run(plan: Plan, database_url: str, redis_url: str, keep: bool) -> int:
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="studio-bench-scale-"))
    stack = Stack(
        data_dir,
        site_key=SITE_KEY,
        simulator_speed=SIMULATOR_SPEED,
        extra_env=UNLIMITED,
        database_url=database_url,
        redis_url=redis_url,
    )
    findings = Findings()
    browsers: list[Browser] = []
    try:
        stack.migrate()
        sims = [
            stack.start_simulator(name, {"SIMULATOR_REQUEST_LOG": str(data_dir / f"{name}.jsonl")})
            for name in ("sim1", "sim2")
        ]
        names = [f"bench{i}" for i in range(plan.users)]
        with django_helper(stack) as helper:
            helper.submit(create_users, names, PASSWORD).result()
            stack.start_web("web1", sims[0])
            stack.start_web("web2", sims[1])  # idle while the rounds use web1 alone
            browsers = [Browser(stack.url("web1"), name, PASSWORD) for name in names]
            chat_runs = []
            for index in range(plan.rounds):
                for webs in (["web1"], ["web1", "web2"]):
                    conversations = new_conversations(browsers, plan.conversations)
                    label = f"r{index}w{len(webs)}"
                    run = chat_round(stack, plan, webs, conversations, label)
                    chat_runs.append(asyncio.run(run))
            for web in ("web1", "web2"):
                stack.stop_process(web)
            jobs_runs = []
            for workers in (["worker1"], ["worker1", "worker2"]):
                for name in workers:
                    if name not in stack.children:
                        stack.start_worker(name, sims[0])
                wait_for_workers(stack, len(workers))
                jobs_runs.append(jobs_round(stack, helper, plan, workers, f"w{len(workers)}"))
        print(f"\nStudio scaled-mode benchmark ({'smoke' if plan is SMOKE else 'full'})")
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; PostgreSQL "
            f"{POSTGRES_URL.rsplit('@', 1)[-1]}, Redis {redis_url.rsplit('/', 1)[0]}"
        )
        report_chat(chat_runs, plan, findings)
        report_jobs(jobs_runs, plan, findings)
    finally:
        for browser in browsers:
            browser.close()
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
    print(f"{'FAILED' if findings.problems else 'OK'} in {time.monotonic() - started:.0f} s")
    return 1 if findings.problems else 0


def services_answer() -> str | None:
    """Why the scaled mode cannot run here, or None when PostgreSQL and Redis answer."""
    import redis

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} does not answer ({error})"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        return f"Redis at {REDIS_URL} does not answer ({error})"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny version for CI (< 1 min)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # runs the finally blocks that stop the stack

    signal.signal(signal.SIGTERM, stop)
    if missing := services_answer():
        print(f"scaled-mode benchmark not run: {missing}" + (" (CI=true: a failure)" * IN_CI))
        sys.exit(1 if IN_CI else 0)
    plan = SMOKE if args.smoke else FULL
    with scratch_postgres(POSTGRES_URL) as database_url, scratch_redis(REDIS_URL) as redis_url:
        status = run(plan, database_url, redis_url, args.keep)
    sys.exit(status)


if __name__ == "__main__":
    main()
