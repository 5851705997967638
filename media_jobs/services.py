"""Creating, retrying and deleting jobs, and what a finished job can still ask the relay."""

import uuid
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from media_jobs import runner
from media_jobs.kinds import get_kind
from media_jobs.models import Job
from media_jobs.selectors import running_count
from studio.accounts import families, quotas, usage
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.ratelimit import limiter
from studio.upstream import BadRequestError, RelayClient, UpstreamError, midjourney, user_message


class JobRefused(Exception):
    """Shown on the form, with everything the user typed kept."""


# The extension a kept upload gets, from the media type its form found in its bytes: never the
# name's, so "shell.php" or "page.html" holding a real PNG is kept as <random>.png.
UPLOAD_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/webm": ".webm",
}


def store_uploads(user: User, params: dict[str, Any]) -> dict[str, Any]:
    """Uploaded files are kept on our disk under generated names; the job's params hold a
    reference {path, name, mime, bytes} that a kind opens with `default_storage.open(path)`.
    Forms check each upload's content and set its content_type to what they found."""
    stored = dict(params)
    for key, value in params.items():
        if isinstance(value, UploadedFile):
            suffix = UPLOAD_SUFFIXES.get(value.content_type or "", "")
            path = default_storage.save(f"uploads/{user.pk}/{uuid.uuid4().hex}{suffix}", value)
            stored[key] = {
                "path": path,
                "name": Path(value.name or "upload").name[:200],
                "mime": value.content_type or "application/octet-stream",
                "bytes": value.size,
            }
    return stored


def create_job(user: User, kind: str, params: dict[str, Any], *, parent: Job | None = None) -> Job:
    try:
        relay_credentials_for(user)
    except MissingCredential as missing:
        raise JobRefused(str(missing)) from missing
    job_kind = get_kind(kind)
    label = str(job_kind.label) if job_kind else ""
    if job_kind is not None and not families.is_enabled(job_kind.family):
        raise JobRefused(
            _("%(kind)s is switched off by the administrator: the relay does not offer it now.")
            % {"kind": label}
        )
    try:  # kinds allowed, jobs at once (default accounts.models.DEFAULT_JOBS_AT_ONCE), per day
        quotas.check_job_allowed(user, kind, running=running_count(user), label=label)
    except quotas.QuotaRefused as refused:
        raise JobRefused(str(refused)) from refused
    verdict = limiter.hit_user(user, "jobs", settings.RATELIMIT_JOBS)
    if isinstance(verdict, limiter.Limited):
        raise JobRefused(
            _("You are starting jobs too quickly. Try again in %(wait)s.")
            % {"wait": limiter.wait_text(verdict.retry_after)}
        )
    with transaction.atomic():
        job = Job.objects.create(
            user=user, kind=kind, params=store_uploads(user, params), parent=parent
        )
        model = str(params.get("model") or "")
        usage.record_job(user.pk, kind=kind, model=model, ref=str(job.id))  # counts per day
        runner.enqueue(job)  # the task row commits with the job row
    return job


def retry_job(job: Job) -> Job:
    """A failed or cancelled job, tried again as a new job (the old one stays, for its reason)."""
    return create_job(job.user, job.kind, job.params, parent=job.parent)


def delete_job(job: Job) -> None:
    """Delete the job and its results; its files go too (media_jobs.signals), except uploads
    another job (a retry, a "use these settings again") still refers to."""
    job.delete()


async def fetch_image_seed(user: User, job: Job) -> str:
    """Ask the relay for the seed of a finished Midjourney image (upstream-api.md §4.11) and keep
    it in `job.result["seed"]`; asking again for a kept seed costs no relay call. Raises
    JobRefused with what to tell the user when the relay has none to give."""
    if seed := str(job.result.get("seed") or ""):
        return seed
    try:
        credentials = await sync_to_async(relay_credentials_for)(user)
    except MissingCredential as missing:
        raise JobRefused(str(missing)) from missing
    try:
        seed = await midjourney.image_seed(RelayClient(credentials), job.upstream_id)
    except BadRequestError as error:
        # Codes 3 / 4: the task is unknown to the relay or not finished there (§4.11).
        raise JobRefused(
            _("The relay has no seed for this image: %(message)s")
            % {"message": error.message or user_message(error)}
        ) from error
    except UpstreamError as error:
        raise JobRefused(user_message(error)) from error
    await sync_to_async(_keep_seed)(job, seed)
    return seed


def _keep_seed(job: Job, seed: str) -> None:
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(pk=job.pk)
        fresh.result = {**fresh.result, "seed": seed}
        fresh.save(update_fields=["result", "updated_at"])
    job.result = fresh.result
