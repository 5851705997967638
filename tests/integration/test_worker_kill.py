"""The worker is killed with SIGKILL at random moments and started again, several times.

A real `manage.py worker` process runs against a real SQLite database and the relay simulator,
which writes every submit it receives to a log. Whatever moment the kill lands on (mid-submit,
mid-poll, mid-download, between tasks), every job must end in a final state, no job may reach
the relay twice, and a job may only fail as "interrupted" (the user is told to retry) when its
submit was cut off before its answer was recorded.

The random moments come from a seed printed on failure; KILL_TEST_SEED=<n> replays a run.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.simulator_fixture import KEY, start_simulator

ROOT = Path(__file__).resolve().parents[2]
JOBS = 12  # half DALL·E (answers in the submit), half Midjourney (submit, then polls)
KILLS = 8
FINISH_TIMEOUT = 120.0
# Slow enough that submits and Midjourney renders take seconds, so kills land inside them.
SIMULATOR_SPEED = 8.0

CREATE_JOBS = """
from django.contrib.auth.models import User
from django.db import transaction
from media_jobs import runner
from media_jobs.models import Job

user = User.objects.get(username="killtest")
for index in range({jobs}):
    tag = f"kill-test-{{index}}"
    if index % 2:
        kind, params = "midjourney", {{"mode": "imagine", "prompt": tag + " a harbour at dusk",
                                       "bot_type": "MID_JOURNEY", "images": []}}
    else:
        kind, params = "dalle", {{"prompt": tag + " a red kite", "model": "dall-e-3", "n": 1,
                                  "size": "1024x1024", "quality": "standard", "style": "vivid"}}
    with transaction.atomic():
        runner.enqueue(Job.objects.create(user=user, kind=kind, params=params))
"""


def test_sigkill_at_random_moments_loses_no_job_and_sends_no_submit_twice(tmp_path):
    seed = int(os.environ.get("KILL_TEST_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    request_log = tmp_path / "relay-requests.jsonl"
    simulator_env = {"SIMULATOR_REQUEST_LOG": str(request_log)}
    with start_simulator(speed=SIMULATOR_SPEED, env=simulator_env) as simulator:
        env = studio_env(tmp_path, simulator.url)
        manage(env, "migrate", "--no-input")
        manage(env, "adduser", "killtest", "--relay", simulator.url, stdin=f"pw-kill-1\n{KEY}\n")
        manage(env, "shell", "-c", CREATE_JOBS.format(jobs=JOBS))

        kill_moments = [round(rng.uniform(0.2, 3.0), 2) for _ in range(KILLS)]
        log_path = tmp_path / "worker.log"
        for moment in kill_moments:
            worker = start_worker(env, log_path)
            time.sleep(moment)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)

        worker = start_worker(env, log_path)
        try:
            jobs = wait_until_finished(tmp_path / "studio.sqlite3", worker, log_path)
        finally:
            worker.terminate()
            worker.wait(timeout=20)

    context = f"seed={seed} kills at {kill_moments}s"
    submits = submits_per_tag(request_log)
    assert max(submits.values(), default=0) <= 1, f"a job reached the relay twice ({context})"
    for tag, status, error_code in jobs:
        if status == "succeeded":
            assert submits[tag] == 1, f"{tag} succeeded without a submit ({context})"
        else:
            # Only a submit cut off by a kill may end a job, and the user is told to retry.
            assert (status, error_code) == ("failed", "interrupted"), (tag, status, context)
    succeeded = sum(1 for _, status, _ in jobs if status == "succeeded")
    print(
        f"{context}: {succeeded} succeeded, {JOBS - succeeded} interrupted, {submits.total()} sent"
    )
    # The worker runs one task at a time, so one kill can cut off at most one submit.
    assert JOBS - succeeded <= KILLS, f"only {succeeded} of {JOBS} jobs succeeded ({context})"


def studio_env(data_dir: Path, relay_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        {
            "DJANGO_DOTENV": "0",
            "DJANGO_DEBUG": "1",
            "STUDIO_DATA_DIR": str(data_dir),
            "UPSTREAM_BASE_URL": relay_url,
            "UPSTREAM_ALLOWED_BASE_URLS": relay_url,
            # Short, so that jobs whose submit a kill cut off end within the test.
            "JOBS_SUBMIT_GRACE_SECONDS": "3",
        }
    )
    return env


def manage(env: dict[str, str], *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
        check=True,
    )


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--no-startup-delay", "--interval", "0.1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_finished(
    database: Path, worker: subprocess.Popen[bytes], log_path: Path
) -> list[tuple[str, str, str]]:
    """(prompt tag, status, error code) of every job, once none is unfinished."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        with sqlite3.connect(database, timeout=20) as db:
            rows = db.execute("SELECT params, status, error_code FROM media_jobs_job").fetchall()
        jobs = [(json.loads(p)["prompt"].split()[0], s, c) for p, s, c in rows]
        unfinished = [job for job in jobs if job[1] not in ("succeeded", "failed", "cancelled")]
        if len(jobs) == JOBS and not unfinished:
            return jobs
        assert worker.poll() is None, f"the worker died:\n{log_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"jobs never finished: {unfinished}"
        time.sleep(0.5)


def submits_per_tag(request_log: Path) -> Counter[str]:
    """How many times each job's prompt reached a submit endpoint of the relay."""
    counts: Counter[str] = Counter()
    for line in request_log.read_text().splitlines():
        request = json.loads(line)
        if request["path"] in ("/v1/images/generations", "/mj/submit/imagine"):
            counts[request["prompt"].split()[0]] += 1
    return counts
