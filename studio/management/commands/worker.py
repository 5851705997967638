"""manage.py worker [db_worker options]: the background-task worker with a heartbeat.

It is django-tasks-db's `db_worker` plus a thread that records a heartbeat every
WORKER_HEARTBEAT_SECONDS, which /healthz reads to tell whether any worker is alive, and sends
`worker_sweep` every JOBS_SWEEP_SECONDS: with several workers, one that is killed mid-task takes
its claimed task with it, and the survivors' sweeps re-enqueue that work (see
media_jobs.runner.sweep_stalled). The sweep runs in this thread, not between tasks, so a worker
busy with a long task still sweeps.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.crypto import get_random_string

from studio.accounts.models import WorkerHeartbeat
from studio.signals import worker_started, worker_sweep

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the background-task worker (db_worker) with a heartbeat for /healthz."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", action="store_true")
        parser.add_argument("--no-startup-delay", action="store_true")
        parser.add_argument("--interval", type=float, default=1.0)
        parser.add_argument("--queue-name", default="*")

    def handle(self, *args: Any, **options: Any) -> None:
        worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(6)}"
        stop = threading.Event()
        beat(worker_id, started=True)
        worker_started.send(sender=self.__class__, worker_id=worker_id)
        thread = threading.Thread(target=heartbeat_loop, args=(worker_id, stop), daemon=True)
        thread.start()
        try:
            call_command(
                "db_worker",
                worker_id=worker_id,
                batch=options["batch"],
                startup_delay=not options["no_startup_delay"],
                interval=options["interval"],
                queue_name=options["queue_name"],
                reload=False,
                verbosity=options["verbosity"],
            )
        finally:
            stop.set()
            thread.join(timeout=2)


def beat(worker_id: str, *, started: bool = False) -> None:
    now = timezone.now()
    defaults: dict[str, Any] = {
        "last_seen": now,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
    if started:
        defaults["started_at"] = now
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id, defaults=defaults, create_defaults={**defaults, "started_at": now}
    )


def heartbeat_loop(worker_id: str, stop: threading.Event) -> None:
    beat_every = settings.WORKER_HEARTBEAT_SECONDS
    sweep_every = settings.JOBS_SWEEP_SECONDS
    next_beat = time.monotonic() + beat_every
    # The first sweep waits a full period: the start itself re-enqueued every unfinished job.
    next_sweep = time.monotonic() + sweep_every
    try:
        while not stop.wait(max(0.0, min(next_beat, next_sweep) - time.monotonic())):
            close_old_connections()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + beat_every
                _guarded("worker heartbeat failed", beat, worker_id)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_every
                _guarded("worker sweep failed", sweep, worker_id)
    finally:
        connection.close()


def sweep(worker_id: str) -> None:
    worker_sweep.send(sender=Command, worker_id=worker_id)


def _guarded(failure: str, step: Callable[[str], None], worker_id: str) -> None:
    try:
        step(worker_id)
    except Exception:
        # A missed beat or sweep (database busy or briefly down) must not stop the worker.
        logger.warning(failure, exc_info=True)
