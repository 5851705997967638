"""What Studio's media jobs cost, measured on a real stack against baselines from the same run.

The script starts its own stack in a temporary data folder (bench/support/stack.py): the relay
simulator writing every request it receives to a log (SIMULATOR_REQUEST_LOG), one daphne web
process, ONE background worker (`manage.py worker`, as `make demo` runs it) and a helper process
with Django set up on the same SQLite file. Jobs are created with the ORM and enqueued exactly as
the create form does (the form's per-user limit of 4 running jobs is the only thing skipped).

Figures, and what each is compared with:

1. Load. N Midjourney imagine jobs enqueued at once. All must finish, each must reach the relay's
   submit endpoint exactly once (counted in the simulator's log). Relay fetches per job are
   compared with what the polling schedule implies for that job: the kind polls 5 s after the
   submit, then every 3 s, so a task the relay finished d seconds after its submit needs
   1 + floor((d - 5) / 3) fetches (target: ratio <= 1; a worker that falls behind polls less, never
   more). How far the one worker lags is shown as the time from the relay's finish to the job's
   `finished_at`.
2. Database. Queries per runner step (a submit, a poll that finds the task still running, the
   poll that stores the results) measured in the helper process; and the time of one poll step
   against the bare relay fetch it makes (httpx GET of the same task), interleaved.
3. Status latency. Jobs followed in Chromium (one tab each, the real status page): the moment a
   tab first receives the finished status (its status.json response) minus the moment the relay
   reported SUCCESS (the task's `finishTime`). Target: p95 under one Midjourney polling interval
   (3 s) plus 1 s. Needs Debian's chromium (CHROMIUM_PATH); skipped without it unless CI=true.
4. Gallery. A user with 5,000 finished jobs, each with a stored original image and thumbnail:
   queries for the first, a middle and the last page (must be equal), render time against a
   light page of the same app (the DALL·E form), and the bytes of a first view (HTML plus every
   image it loads) against what the same page would weigh with the originals instead.

Exit status 1 only for a correctness failure (a job not finished or submitted twice, a page that
fails, a query count that grows with the page); slow figures are printed, never fatal.

    python bench/jobs.py [--smoke] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from chat_streams import create_users
from support.stack import Stack, django_helper

SITE_KEY = "sk-sim-bench-jobs"
# Midjourney in the simulator takes ~40 s at speed 1; at 4 a task needs a few polls.
SIMULATOR_SPEED = 4.0
FIRST_POLL, POLL_EVERY = 5.0, 3.0  # media_jobs.kinds.midjourney.MidjourneyKind
PASSWORD = "bench-jobs-password-1"  # noqa: S105 - a throw-away user of a throw-away stack
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@dataclass(frozen=True)
class Plan:
    load_jobs: int = 200
    latency_jobs: int = 30
    gallery_jobs: int = 5000
    timing_rounds: int = 20


FULL = Plan()
SMOKE = Plan(load_jobs=12, latency_jobs=4, gallery_jobs=300, timing_rounds=5)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def spread(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {statistics.median(values):.2f} {unit}, p95 {percentile(values, 0.95):.2f} {unit}, "
        f"max {max(values):.2f} {unit}"
    )


# ------------------------------------------------------------------ Django (helper process)


def create_midjourney_jobs(username: str, tag: str, count: int) -> list[str]:
    from django.contrib.auth.models import User
    from django.db import transaction

    from media_jobs import runner
    from media_jobs.models import Job

    user = User.objects.get(username=username)
    ids = []
    for index in range(count):
        params = {
            "mode": "imagine",
            "prompt": f"{tag}-{index} a lighthouse on a cliff at dawn",
            "bot_type": "MID_JOURNEY",
            "images": [],
        }
        with transaction.atomic():
            job = Job.objects.create(user=user, kind="midjourney", params=params)
            runner.enqueue(job)
        ids.append(str(job.id))
    return ids


def step_costs(username: str, rounds: int) -> dict[str, Any]:
    """Queries per runner step, and one poll step's time against the bare fetch it makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from media_jobs import runner
    from media_jobs.models import Job
    from studio.accounts.services import relay_credentials_for

    job_id = create_midjourney_jobs(username, "steps", 1)[0]
    job = Job.objects.get(pk=job_id)
    Job.objects.filter(pk=job_id).update(next_step_at=None)
    with CaptureQueriesContext(connection) as submit:
        runner.advance(job_id)
    job.refresh_from_db()
    credentials = relay_credentials_for(job.user)
    fetch_url = f"{credentials.base_url}/mj/task/{job.upstream_id}/fetch"
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    poll_queries: list[int] = []
    final_queries = 0
    step_times: list[float] = []
    fetch_times: list[float] = []
    with httpx.Client(timeout=30) as http:
        for _ in range(rounds * 10):
            Job.objects.filter(pk=job_id).update(next_step_at=None)
            began = time.perf_counter()
            with CaptureQueriesContext(connection) as poll:
                runner.advance(job_id)
            elapsed = time.perf_counter() - began
            job.refresh_from_db()
            if job.finished:
                final_queries = len(poll.captured_queries)
                break
            poll_queries.append(len(poll.captured_queries))
            step_times.append(elapsed)
            began = time.perf_counter()
            http.get(fetch_url, headers=headers).raise_for_status()
            fetch_times.append(time.perf_counter() - began)
    return {
        "submit": len(submit.captured_queries),
        "poll": sorted(set(poll_queries)),
        "final": final_queries,
        "final_status": job.status,
        "step": statistics.median(step_times) if step_times else float("nan"),
        "fetch": statistics.median(fetch_times) if fetch_times else float("nan"),
        "samples": len(step_times),
    }


def seed_gallery(username: str, count: int) -> dict[str, int]:
    """`count` finished DALL·E jobs, each with a stored original and thumbnail (shared files)."""
    from django.contrib.auth.models import User
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image, ImageDraw

    from media_jobs.models import Asset, Job

    # Shapes plus grain: the PNG weighs what a generated picture weighs (1-2 MB).
    image = Image.new("RGB", (1024, 1024))
    draw = ImageDraw.Draw(image)
    for index in range(0, 512, 6):
        draw.ellipse(
            (index, index // 2, 1024 - index, 1024 - index // 3),
            outline=(index % 256, 90, 200 - index % 200),
        )
    grain = Image.effect_noise((1024, 1024), 30).convert("RGB")
    image = Image.blend(image, grain, 0.25)
    original = io.BytesIO()
    image.save(original, "PNG")
    image.thumbnail((384, 384))
    thumbnail = io.BytesIO()
    image.save(thumbnail, "WEBP", quality=80)
    original_name = default_storage.save("bench/original.png", ContentFile(original.getvalue()))
    thumb_name = default_storage.save("bench/thumb.webp", ContentFile(thumbnail.getvalue()))

    user = User.objects.get(username=username)
    jobs = Job.objects.bulk_create(
        Job(
            user=user,
            kind="dalle",
            status=Job.Status.SUCCEEDED,
            progress=100,
            params={"prompt": f"Gallery picture {index}: a kite over the sea", "model": "dall-e-3"},
        )
        for index in range(count)
    )
    Asset.objects.bulk_create(
        Asset(
            job=job,
            file=original_name,
            thumbnail=thumb_name,
            mime="image/png",
            bytes=len(original.getvalue()),
            sha256="0" * 64,
            width=1024,
            height=1024,
        )
        for job in jobs
    )
    return {"original": len(original.getvalue()), "thumbnail": len(thumbnail.getvalue())}


def gallery_costs(username: str, pages: int, rounds: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from media_jobs.models import Asset

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(username=username))
    queries: dict[str, int | str] = {}
    for label, number in (("first", 1), ("middle", max(1, pages // 2)), ("last", pages)):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/jobs/?page={number}")
        queries[label] = (
            len(captured.captured_queries)
            if response.status_code == 200
            else f"HTTP {response.status_code}"
        )

    gallery_times, baseline_times = [], []
    for _ in range(rounds):  # interleaved, so the machine's noise hits both alike
        began = time.perf_counter()
        client.get("/jobs/")
        gallery_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        client.get("/jobs/new/dalle/")
        baseline_times.append(time.perf_counter() - began)

    html = client.get("/jobs/").content
    sources = re.findall(rb'<img[^>]+src="([^"]+)"', html)
    image_bytes = 0
    for source in sources:
        response = client.get(source.decode())
        image_bytes += len(response.getvalue())  # a FileResponse: read the whole file
    asset_ids = re.findall(rb"/jobs/assets/([0-9a-f-]{36})/thumbnail/", html)
    originals = sum(
        Asset.objects.filter(pk__in=[a.decode() for a in asset_ids]).values_list("bytes", flat=True)
    )
    return {
        "queries": queries,
        "gallery": statistics.median(gallery_times),
        "baseline": statistics.median(baseline_times),
        "html": len(html),
        "images": len(sources),
        "image_bytes": image_bytes,
        "original_bytes": originals,
    }


# --------------------------------------------------------------------------- measurements


def wait_finished(database: Path, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Each job's row once all are finished (or the timeout passed)."""
    wanted = {job_id.replace("-", "") for job_id in ids}
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(database, timeout=20) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT id, status, error, upstream_id, params, created_at, finished_at "
                "FROM media_jobs_job"
            ).fetchall()
        jobs = {row["id"]: dict(row) for row in rows if row["id"] in wanted}
        unfinished = [
            j for j in jobs.values() if j["status"] not in ("succeeded", "failed", "cancelled")
        ]
        if not unfinished or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def relay_requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def relay_tasks(stack: Stack, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The relay's own record of each task (submit and finish times), in one batch call."""
    response = httpx.post(
        f"{stack.sim_url}/mj/task/list-by-condition",
        json={"ids": task_ids},
        headers={"Authorization": f"Bearer {SITE_KEY}"},
        timeout=60,
    )
    response.raise_for_status()
    return {str(task["id"]): task for task in response.json()}


def implied_fetches(relay_seconds: float) -> int:
    """Fetches the polling schedule makes up to the one that saw the task finish, `relay_seconds`
    after the submit: one at FIRST_POLL, then one every POLL_EVERY."""
    return 1 + max(0, math.floor((relay_seconds - FIRST_POLL) / POLL_EVERY))


def measure_load(stack: Stack, helper, plan: Plan, problems: list[str]) -> None:
    print(f"\n1. Load: {plan.load_jobs} Midjourney jobs enqueued at once, one worker")
    print("-" * 60)
    began = time.time()
    ids = helper.submit(create_midjourney_jobs, "bench-load", "load", plan.load_jobs).result()
    jobs = wait_finished(stack.database, ids, timeout=120 + plan.load_jobs * 2.0)
    wall = time.time() - began
    requests = relay_requests(stack.data_dir / "relay.jsonl")
    submits = Counter(
        str(r["prompt"]).split()[0] for r in requests if r["path"] == "/mj/submit/imagine"
    )
    fetches = Counter(
        str(r["path"]).split("/")[3] for r in requests if str(r["path"]).endswith("/fetch")
    )
    statuses = Counter(str(job["status"]) for job in jobs.values())
    unfinished = plan.load_jobs - sum(statuses[s] for s in ("succeeded", "failed", "cancelled"))
    twice = [tag for tag, count in submits.items() if tag.startswith("load-") and count > 1]
    never = plan.load_jobs - sum(1 for tag in submits if tag.startswith("load-"))
    print(f"finished: {dict(statuses)} in {wall:.1f} s; unfinished: {unfinished}")
    print(
        f"submits: {sum(submits[t] for t in submits if t.startswith('load-'))} "
        f"for {plan.load_jobs} jobs; "
        f"submitted twice: {len(twice)}; never submitted: {never}"
    )
    if unfinished or twice or never or statuses["succeeded"] != plan.load_jobs:
        problems.append(
            f"load: {unfinished} unfinished, {len(twice)} submitted twice, {never} never "
            f"submitted, statuses {dict(statuses)}"
        )
    task_ids = [str(job["upstream_id"]) for job in jobs.values() if job["upstream_id"]]
    tasks = relay_tasks(stack, task_ids)
    ratios, lags, relay_times = [], [], []
    actual_total = implied_total = 0
    for job in jobs.values():
        task = tasks.get(str(job["upstream_id"]))
        if not task or not job["finished_at"]:
            continue
        relay_seconds = (int(task["finishTime"]) - int(task["submitTime"])) / 1000
        implied = implied_fetches(relay_seconds)
        actual = fetches[str(job["upstream_id"])]
        actual_total += actual
        implied_total += implied
        ratios.append(actual / implied)
        relay_times.append(relay_seconds)
        finished_at = _epoch(str(job["finished_at"]))
        lags.append(finished_at - int(task["finishTime"]) / 1000)
    if ratios:
        print(f"relay time per task (submit -> SUCCESS on the relay): {spread(relay_times)}")
        print(
            f"relay fetches: {actual_total} made, {implied_total} implied by the schedule "
            f"-> ratio {actual_total / implied_total:.2f} (per job max {max(ratios):.2f}; "
            f"target <= 1.00 -> {'met' if max(ratios) <= 1.0 else 'NOT met'})"
        )
        print(f"relay finish -> job finished in Studio: {spread(lags)}")
        print(
            f"throughput: {len(ratios) / wall:.1f} jobs/s, "
            f"{actual_total / wall:.1f} relay fetches/s"
        )


def _epoch(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace(" ", "T")).timestamp()


def measure_steps(helper, plan: Plan) -> None:
    print("\n2. Database: queries per runner step (helper process)")
    print("-" * 60)
    costs = helper.submit(step_costs, "bench-steps", plan.timing_rounds).result()
    print(
        f"submit step: {costs['submit']} queries; poll while running: {costs['poll']} queries; "
        f"poll that stores the results: {costs['final']} queries ({costs['final_status']})"
    )
    step, fetch = float(costs["step"]), float(costs["fetch"])
    print(
        f"one poll step {step * 1000:.1f} ms vs the bare relay fetch {fetch * 1000:.1f} ms "
        f"-> {step / fetch:.1f}x (median of {costs['samples']})"
    )


def measure_latency(stack: Stack, helper, plan: Plan, problems: list[str]) -> None:
    print(f"\n3. Status latency: {plan.latency_jobs} job pages open in Chromium")
    print("-" * 60)
    executable = next(
        (
            p
            for p in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium")
            if p and shutil.which(p)
        ),
        None,
    )
    if executable is None:
        message = "no chromium (apt-get install -y chromium): latency not measured"
        if os.environ.get("CI") == "true":
            problems.append(message)
        print(message)
        return
    from playwright.sync_api import sync_playwright

    seen: dict[str, float] = {}

    def on_status(route) -> None:
        """Pass each status.json through, noting when a tab first gets the finished job."""
        response = route.fetch()
        job_id = route.request.url.split("/jobs/")[1].split("/")[0]
        if job_id not in seen and response.json().get("status") == "succeeded":
            seen[job_id] = time.time()
        route.fulfill(response=response)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=stack.web_url)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", "bench-latency")
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/chat/")
        context.route("**/status.json", on_status)
        ids = helper.submit(
            create_midjourney_jobs, "bench-latency", "latency", plan.latency_jobs
        ).result()
        tabs = []
        for job_id in ids:
            tab = context.new_page()
            tab.goto(f"/jobs/{job_id}/")
            tabs.append(tab)
        deadline = time.monotonic() + 180
        while len(seen) < len(ids) and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        browser.close()
    jobs = wait_finished(stack.database, ids, timeout=10)
    tasks = relay_tasks(stack, [str(job["upstream_id"]) for job in jobs.values()])
    latencies = []
    for job_id in ids:
        job = jobs[job_id.replace("-", "")]
        task = tasks.get(str(job["upstream_id"]))
        if job_id in seen and task:
            latencies.append(seen[job_id] - int(task["finishTime"]) / 1000)
    missing = len(ids) - len(latencies)
    if missing:
        problems.append(f"latency: {missing} status pages never showed the finished job")
    target = POLL_EVERY + 1.0
    verdict = "met" if latencies and percentile(latencies, 0.95) < target else "NOT met"
    print(
        f"relay reports SUCCESS -> the page has it: {spread(latencies)} "
        f"(target p95 < {target:.0f} s -> {verdict})"
    )


def measure_gallery(helper, plan: Plan, problems: list[str]) -> None:
    print(f"\n4. Gallery with {plan.gallery_jobs} jobs")
    print("-" * 60)
    sizes = helper.submit(seed_gallery, "bench-gallery", plan.gallery_jobs).result()
    pages = math.ceil(plan.gallery_jobs / 24)
    costs = helper.submit(gallery_costs, "bench-gallery", pages, plan.timing_rounds).result()
    queries = costs["queries"]
    print(
        f"queries: first page {queries['first']}, page {max(1, pages // 2)} {queries['middle']}, "
        f"last page ({pages}) {queries['last']}"
    )
    if len(set(queries.values())) != 1 or not all(isinstance(q, int) for q in queries.values()):
        problems.append(f"gallery queries differ between pages: {queries}")
    gallery, baseline = float(costs["gallery"]), float(costs["baseline"])
    print(
        f"render: gallery {gallery * 1000:.1f} ms vs the DALL·E form {baseline * 1000:.1f} ms "
        f"-> {gallery / baseline:.1f}x"
    )
    first_view = int(costs["html"]) + int(costs["image_bytes"])
    with_originals = int(costs["html"]) + int(costs["original_bytes"])
    print(
        f"first view: HTML {int(costs['html']) / 1024:.0f} KB + {costs['images']} images "
        f"{int(costs['image_bytes']) / 1024:.0f} KB = {first_view / 1024:.0f} KB; with the "
        f"originals it would be {with_originals / 1024:.0f} KB "
        f"-> {first_view / with_originals:.2f}x (one original {sizes['original'] / 1024:.0f} KB, "
        f"one thumbnail {sizes['thumbnail'] / 1024:.0f} KB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a quick pass with small numbers")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    data_dir = Path(tempfile.mkdtemp(prefix="studio-bench-jobs-"))
    stack = Stack(
        data_dir,
        site_key=SITE_KEY,
        simulator_speed=SIMULATOR_SPEED,
        extra_env={"SIMULATOR_REQUEST_LOG": str(data_dir / "relay.jsonl")},
    )
    problems: list[str] = []
    began = time.monotonic()
    try:
        stack.start()
        stack.start_worker()
        with django_helper(stack) as helper:
            users = ["bench-load", "bench-steps", "bench-latency", "bench-gallery"]
            helper.submit(create_users, users, PASSWORD).result()
            measure_load(stack, helper, plan, problems)
            measure_steps(helper, plan)
            measure_latency(stack, helper, plan, problems)
            measure_gallery(helper, plan, problems)
        problems += stack.log_problems()
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\nFindings\n--------")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"{'PROBLEMS' if problems else 'OK'} in {time.monotonic() - began:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
