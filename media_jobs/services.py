"""Creating, retrying and deleting jobs."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from media_jobs import runner
from media_jobs.models import Job
from media_jobs.selectors import running_count
from studio.accounts.services import MissingCredential, relay_credentials_for

MAX_RUNNING_JOBS = 4


class JobRefused(Exception):
    """Shown on the form, with everything the user typed kept."""


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
        job = Job.objects.create(user=user, kind=kind, params=params, parent=parent)
        runner.enqueue(job)  # the task row commits with the job row
    return job


def retry_job(job: Job) -> Job:
    """A failed or cancelled job, tried again as a new job (the old one stays, for its reason)."""
    return create_job(job.user, job.kind, job.params, parent=job.parent)


def delete_job(job: Job) -> None:
    for asset in job.assets.all():
        asset.file.delete(save=False)
        if asset.thumbnail:
            asset.thumbnail.delete(save=False)
    job.delete()
