"""The job state machine: submit once, poll until done or the deadline, keep the results.

`advance(job_id)` is the only entry point (the task calls it). It is safe to run twice, at any
moment, in any number of workers: each step happens under the job's row lock, a submit is
recorded as started before it is sent and never sent again, and a poll that is not due yet does
nothing. A worker that starts re-enqueues every unfinished job (`resume_unfinished`), and every
running worker re-enqueues, now and then, the jobs whose task died with another worker
(`sweep_stalled`).
"""

import hashlib
import io
import logging
from datetime import timedelta
from uuid import UUID

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks_db.models import DBTaskResult
from PIL import Image, UnidentifiedImageError

from media_jobs.downloads import DownloadRefused, download
from media_jobs.kinds import JobKind, Outcome, ResultFile, get_kind
from media_jobs.models import Asset, Job
from studio.accounts.models import WorkerHeartbeat
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.upstream import (
    RateLimitedError,
    RelayClient,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
    aclose_http_clients,
    user_message,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
THUMBNAIL_SIZE = (384, 384)
EARLY = timedelta(seconds=1)


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(300, 5 * 2 ** max(0, attempt - 1)))


def enqueue(job: Job, *, delay: timedelta | None = None) -> None:
    """Schedule the job's next step (in the caller's transaction: they commit together)."""
    from media_jobs.tasks import run_job

    due = timezone.now() + (delay or timedelta(0))
    Job.objects.filter(pk=job.pk).update(next_step_at=due)
    job.next_step_at = due
    run_job.using(run_after=due).enqueue(str(job.id))


def resume_unfinished() -> int:
    """Re-enqueue every unfinished job (a worker starting after a crash or a deploy). A task
    that was still queued for a job just finds the step done, or not yet due, and stops."""
    from media_jobs.tasks import run_job

    count = 0
    for job in Job.objects.exclude(status__in=Job.FINISHED).only("id", "next_step_at"):
        due = max(job.next_step_at or timezone.now(), timezone.now())
        run_job.using(run_after=due).enqueue(str(job.id))
        count += 1
    return count


def sweep_stalled(*, limit: int = 500) -> list[str]:
    """Re-enqueue the unfinished jobs whose task was lost; return their ids.

    With several workers, one killed mid-task (SIGKILL, a lost machine) leaves its claimed task
    `RUNNING` for ever, and nothing else would step the job until some worker restarts. Every
    worker calls this every JOBS_SWEEP_SECONDS: a job whose step is overdue by more than
    JOBS_STALL_MARGIN_SECONDS is re-enqueued unless a task will still take it (one waiting in the
    queue, or one running on a worker whose heartbeat is fresh: a long submit is not a stall).
    The queue lives in the jobs' database by design (ARCHITECTURE.md §2), so it can be asked.
    Running it in several workers at once is harmless: rows another sweep holds are skipped,
    and advance() tolerates a duplicate task anyway.
    """
    from media_jobs.tasks import run_job

    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOBS_STALL_MARGIN_SECONDS)
    overdue = Job.objects.exclude(status__in=Job.FINISHED).filter(
        Q(next_step_at__lt=cutoff) | Q(next_step_at__isnull=True, updated_at__lt=cutoff)
    )
    alive = set(
        WorkerHeartbeat.objects.filter(
            last_seen__gte=now - timedelta(seconds=settings.WORKER_STALE_SECONDS)
        ).values_list("worker_id", flat=True)
    )
    swept: list[str] = []
    with transaction.atomic():
        jobs = list(
            overdue.select_for_update(skip_locked=True).order_by("next_step_at").only("id")[:limit]
        )
        if not jobs:
            return swept
        taken = _jobs_with_a_live_task(run_job.module_path, [str(job.id) for job in jobs], alive)
        for job in jobs:
            if str(job.id) not in taken:
                enqueue(job)
                swept.append(str(job.id))
    if swept:
        logger.warning("re-enqueued %d stalled job(s) whose task was lost: %s", len(swept), swept)
    return swept


def _jobs_with_a_live_task(task_path: str, job_ids: list[str], alive: set[str]) -> set[str]:
    """Which of these jobs have a task waiting, or running on a live worker."""
    tasks = DBTaskResult.objects.filter(
        task_path=task_path,
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
        args_kwargs__args__0__in=job_ids,
    ).values_list("args_kwargs", "status", "worker_ids")
    taken = set()
    for args_kwargs, status, worker_ids in tasks:
        if status == TaskResultStatus.READY or (worker_ids and worker_ids[-1] in alive):
            taken.add(str(args_kwargs["args"][0]))
    return taken


def advance(job_id: str) -> None:
    """Take the job one step further, whatever state it is in."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.finished:
            return
        if job.next_step_at and timezone.now() < job.next_step_at - EARLY:
            return  # a duplicate task: the task scheduled for that moment will do the step
        kind = get_kind(job.kind)
        if kind is None:
            _fail(job, "unknown_kind", _("This kind of job is no longer available."))
            return
        if job.status == Job.Status.QUEUED:
            if job.submit_started_at is not None:
                grace = timedelta(seconds=settings.JOBS_SUBMIT_GRACE_SECONDS)
                if timezone.now() - job.submit_started_at < grace:
                    enqueue(job, delay=job.submit_started_at + grace - timezone.now())
                    return  # another worker may still be sending it
                # The submit may have reached the relay before the worker died: sending it again
                # could make (and bill) the job twice, so the user decides with Retry.
                message = _("The worker stopped while sending this job. Retry it.")
                _fail(job, "interrupted", message)
                return
            job.submit_started_at = timezone.now()
            job.deadline_at = timezone.now() + kind.give_up_after
            job.save(update_fields=["submit_started_at", "deadline_at", "updated_at"])
            step = "submit"
        elif job.deadline_at and timezone.now() > job.deadline_at:
            minutes = int(kind.give_up_after.total_seconds() // 60)
            message = _("The relay did not finish within %(minutes)d minutes.") % {
                "minutes": minutes
            }
            _fail(job, "deadline", message)
            return
        else:
            step = "poll"
    try:
        credentials = relay_credentials_for(job.user)
    except MissingCredential as missing:
        _finish_failed(job.pk, "no_key", str(missing))
        return
    client = RelayClient(credentials)
    try:
        outcome = _call(kind, client, job, step)
    except UpstreamError as error:
        _handle_upstream_error(job, step, error)
        return
    _apply(job, kind, outcome)


def _call(kind: JobKind, client: RelayClient, job: Job, step: str) -> Outcome:
    async def call() -> Outcome:
        try:
            if step == "submit":
                return await kind.submit(client, job.params)
            return await kind.poll(client, job.upstream_id)
        finally:
            await aclose_http_clients()  # this loop ends with the call

    return async_to_sync(call)()


def _handle_upstream_error(job: Job, step: str, error: UpstreamError) -> None:
    # A submit is retried only when it certainly did not reach the relay (no connection) or was
    # refused for load; a poll may always be retried, until the deadline.
    transient = isinstance(error, UnavailableError | RateLimitedError) or (
        step == "poll" and isinstance(error, UpstreamTimeout)
    )
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job.pk)
        if fresh.finished:
            return
        if transient and fresh.attempts + 1 < MAX_ATTEMPTS:
            fresh.attempts += 1
            if step == "submit":
                fresh.submit_started_at = None  # it did not get through: sending again is safe
            fresh.error = user_message(error)
            fresh.save(update_fields=["attempts", "submit_started_at", "error", "updated_at"])
            delay = backoff(fresh.attempts)
            if error.retry_after:
                delay = max(delay, timedelta(seconds=error.retry_after))
            enqueue(fresh, delay=delay)
            return
        _fail(fresh, error.code, user_message(error))


def _apply(job: Job, kind: JobKind, outcome: Outcome) -> None:
    if outcome.failure:
        _finish_failed(job.pk, "relay_failed", outcome.failure)
        return
    if outcome.done:
        _store_results(job, outcome)
        return
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job.pk)
        if fresh.finished:
            return  # cancelled meanwhile
        fresh.status = Job.Status.RUNNING if outcome.progress else Job.Status.SUBMITTED
        fresh.upstream_id = outcome.upstream_id or fresh.upstream_id
        if outcome.progress is not None:
            fresh.progress = max(0, min(99, outcome.progress))
        fresh.error = ""
        fresh.save()
        first = job.status == Job.Status.QUEUED
        enqueue(fresh, delay=kind.first_poll if first else kind.poll_every)


def _store_results(job: Job, outcome: Outcome) -> None:
    stored: list[tuple[ResultFile, bytes, str, str]] = []
    try:
        for item in outcome.files:
            if item.content:
                stored.append((item, item.content, item.mime, ""))
            else:
                fetched = download(item.url)
                stored.append((item, fetched.content, fetched.mime, fetched.final_url))
    except DownloadRefused as refused:
        message = _("The result could not be kept: %(why)s") % {"why": refused}
        _finish_failed(job.pk, "download", message)
        return
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job.pk)
        if fresh.finished:
            return
        for item, content, mime, source in stored:
            _save_asset(fresh, item.name, content, mime, source)
        fresh.status = Job.Status.SUCCEEDED
        fresh.progress = 100
        fresh.result = {**fresh.result, **outcome.result}
        fresh.error = ""
        fresh.finished_at = timezone.now()
        fresh.save()


def _save_asset(job: Job, name: str, content: bytes, mime: str, source: str) -> Asset:
    asset = Asset(
        job=job,
        mime=mime or "application/octet-stream",
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        source_url=source[:2000],
    )
    asset.file.save(name, ContentFile(content), save=False)
    if mime.startswith("image/"):
        _add_thumbnail(asset, content)
    asset.save()
    return asset


def _add_thumbnail(asset: Asset, content: bytes) -> None:
    try:
        with Image.open(io.BytesIO(content)) as image:
            asset.width, asset.height = image.size
            image.thumbnail(THUMBNAIL_SIZE)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "WEBP", quality=80)
    except (UnidentifiedImageError, OSError) as error:
        logger.info("no thumbnail for asset of job %s: %s", asset.job_id, error)
        return
    asset.thumbnail.save("thumb.webp", ContentFile(buffer.getvalue()), save=False)


def _fail(job: Job, code: str, message: str) -> None:
    job.status = Job.Status.FAILED
    job.error_code = code
    job.error = message
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error_code", "error", "finished_at", "updated_at"])


def _finish_failed(job_id: UUID, code: str, message: str) -> None:
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job_id)
        if not fresh.finished:
            _fail(fresh, code, message)


def cancel(job: Job) -> bool:
    """Stop caring about the job (results arriving later are discarded)."""
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job.pk)
        if fresh.finished:
            return False
        fresh.status = Job.Status.CANCELLED
        fresh.finished_at = timezone.now()
        fresh.save(update_fields=["status", "finished_at", "updated_at"])
        return True
