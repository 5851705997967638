"""The sweep: a running worker re-enqueues the jobs whose task died with another worker.

A worker killed mid-task leaves its claimed task `RUNNING` for ever; without the sweep the job
would wait for the next worker start. The sweep must pick up exactly those jobs: not a job whose
task is only waiting in a busy queue, not one a live worker is still working on (a long submit),
not one that is merely a little late.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from media_jobs import runner
from media_jobs.models import Job
from studio.accounts.models import WorkerHeartbeat
from studio.management.commands.worker import heartbeat_loop

pytestmark = pytest.mark.django_db(transaction=True)

DALLE = {
    "prompt": "A red kite over the sea",
    "model": "dall-e-3",
    "n": 1,
    "size": "1024x1024",
    "quality": "standard",
    "style": "vivid",
}


@pytest.fixture
def sweep_settings(settings):
    settings.JOBS_STALL_MARGIN_SECONDS = 60
    settings.WORKER_STALE_SECONDS = 60
    return settings


def worker(worker_id: str, *, seen_ago: timedelta) -> str:
    seen = timezone.now() - seen_ago
    WorkerHeartbeat.objects.create(
        worker_id=worker_id, hostname="h", pid=1, started_at=seen, last_seen=seen
    )
    return worker_id


def job_with_task(user, *, overdue: timedelta, claimed_by: str | None = None) -> Job:
    """A job whose step was due `overdue` ago, with its task waiting or claimed by a worker."""
    job = Job.objects.create(user=user, kind="dalle", params=DALLE)
    runner.enqueue(job)
    Job.objects.filter(pk=job.pk).update(next_step_at=timezone.now() - overdue)
    if claimed_by:
        task = DBTaskResult.objects.get(args_kwargs__args__0=str(job.id))
        task.claim(claimed_by)
    return job


def waiting_tasks(job: Job) -> int:
    return DBTaskResult.objects.filter(args_kwargs__args__0=str(job.id), status="READY").count()


def run_queued_tasks() -> None:
    """What a worker does with the queue, without the start-up pickup of `manage.py worker`
    (which would re-enqueue every unfinished job and hide whether the sweep did)."""
    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="survivor",
        excluded_queue_names=[],
    ).run()


def test_a_job_whose_task_died_with_its_worker_is_re_enqueued_and_finishes(
    sweep_settings, relay, user
):
    dead = worker("dead-worker", seen_ago=timedelta(minutes=5))
    job = job_with_task(user, overdue=timedelta(minutes=3), claimed_by=dead)
    assert waiting_tasks(job) == 0  # nothing would ever step it again

    assert runner.sweep_stalled() == [str(job.id)]

    job.refresh_from_db()
    assert waiting_tasks(job) == 1
    assert abs((job.next_step_at - timezone.now()).total_seconds()) < 5
    run_queued_tasks()
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.assets.count() == 1


def test_a_job_that_lost_its_task_altogether_is_re_enqueued(sweep_settings, user):
    job = job_with_task(user, overdue=timedelta(minutes=3))
    DBTaskResult.objects.all().delete()
    assert runner.sweep_stalled() == [str(job.id)]
    assert waiting_tasks(job) == 1


def test_a_second_sweep_adds_nothing(sweep_settings, user):
    dead = worker("dead-worker", seen_ago=timedelta(minutes=5))
    job = job_with_task(user, overdue=timedelta(minutes=3), claimed_by=dead)
    runner.sweep_stalled()
    assert runner.sweep_stalled() == []
    assert waiting_tasks(job) == 1


def test_a_job_waiting_in_a_busy_queue_is_left_alone(sweep_settings, user):
    job = job_with_task(user, overdue=timedelta(minutes=10))
    assert runner.sweep_stalled() == []
    assert waiting_tasks(job) == 1


def test_a_job_a_live_worker_is_still_stepping_is_left_alone(sweep_settings, user):
    busy = worker("busy-worker", seen_ago=timedelta(seconds=5))
    job = job_with_task(user, overdue=timedelta(minutes=4), claimed_by=busy)  # a long submit
    assert runner.sweep_stalled() == []
    assert waiting_tasks(job) == 0


def test_a_job_late_by_less_than_the_margin_is_left_alone(sweep_settings, user):
    dead = worker("dead-worker", seen_ago=timedelta(minutes=5))
    job_with_task(user, overdue=timedelta(seconds=30), claimed_by=dead)
    assert runner.sweep_stalled() == []
    sweep_settings.JOBS_STALL_MARGIN_SECONDS = 10
    assert len(runner.sweep_stalled()) == 1


def test_finished_jobs_are_never_swept(sweep_settings, user):
    dead = worker("dead-worker", seen_ago=timedelta(minutes=5))
    job = job_with_task(user, overdue=timedelta(minutes=3), claimed_by=dead)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.CANCELLED)
    assert runner.sweep_stalled() == []


def test_the_running_worker_sweeps_from_its_heartbeat_thread(sweep_settings, user):
    sweep_settings.WORKER_HEARTBEAT_SECONDS = 0.05
    sweep_settings.JOBS_SWEEP_SECONDS = 0.1
    dead = worker("dead-worker", seen_ago=timedelta(minutes=5))
    job = job_with_task(user, overdue=timedelta(minutes=3), claimed_by=dead)
    alive = worker("alive-worker", seen_ago=timedelta(seconds=0))
    stop = threading.Event()
    thread = threading.Thread(target=heartbeat_loop, args=(alive, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not waiting_tasks(job) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert waiting_tasks(job) == 1
    beat = WorkerHeartbeat.objects.get(worker_id=alive)
    assert beat.last_seen > beat.started_at  # it kept beating too
