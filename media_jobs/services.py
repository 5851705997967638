"""Creating, retrying and deleting jobs, and what a finished job can still ask the relay."""

import uuid
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from media_jobs import runner
from media_jobs.models import Job
from media_jobs.selectors import running_count
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.upstream import BadRequestError, RelayClient, UpstreamError, midjourney, user_message

MAX_RUNNING_JOBS = 4


class JobRefused(Exception):
    """Shown on the form, with everything the user typed kept."""


def store_uploads(user: User, params: dict[str, Any]) -> dict[str, Any]:
    """Uploaded files are kept on our disk under generated names; the job's params hold a
    reference {path, name, mime, bytes} that a kind opens with `default_storage.open(path)`."""
    stored = dict(params)
    for key, value in params.items():
        if isinstance(value, UploadedFile):
            suffix = Path(value.name or "").suffix.lower()[:6]
            safe_suffix = suffix if suffix[1:].isalnum() else ""
            path = default_storage.save(f"uploads/{user.pk}/{uuid.uuid4().hex}{safe_suffix}", value)
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
    if running_count(user) >= MAX_RUNNING_JOBS:
        raise JobRefused(
            _("You already have %(count)d jobs running; wait for one to finish.")
            % {"count": MAX_RUNNING_JOBS}
        )
    with transaction.atomic():
        job = Job.objects.create(
            user=user, kind=kind, params=store_uploads(user, params), parent=parent
        )
        runner.enqueue(job)  # the task row commits with the job row
    return job


def retry_job(job: Job) -> Job:
    """A failed or cancelled job, tried again as a new job (the old one stays, for its reason)."""
    return create_job(job.user, job.kind, job.params, parent=job.parent)


def delete_job(job: Job) -> None:
    """Delete the job, its results, and the files it was given unless another job (a retry, a
    "use these settings again") still refers to them."""
    others = Job.objects.filter(user=job.user).exclude(pk=job.pk)
    still_used = {path for other in others.only("params") for path in other.upload_paths()}
    for path in job.upload_paths() - still_used:
        default_storage.delete(path)
    for asset in job.assets.all():
        asset.file.delete(save=False)
        if asset.thumbnail:
            asset.thumbnail.delete(save=False)
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
