"""Reading jobs: one user's job, the gallery, and the status JSON of ARCHITECTURE.md §3."""

from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from media_jobs.models import Asset, Job


def job_for(user: User, job_id: UUID | str) -> Job:
    """The user's own job, or 404 (someone else's looks like no job at all)."""
    job = Job.objects.filter(pk=job_id, user=user).first()
    if job is None:
        raise Http404("No such job")
    return job


def asset_for(user: User, asset_id: UUID | str) -> Asset:
    asset = Asset.objects.select_related("job").filter(pk=asset_id, job__user=user).first()
    if asset is None:
        raise Http404("No such file")
    return asset


def gallery(user: User, *, kind: str = "", status: str = "", query: str = "") -> QuerySet[Job]:
    jobs = Job.objects.filter(user=user).prefetch_related("assets")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    if query:
        jobs = jobs.filter(params__prompt__icontains=query)
    return jobs


def running_count(user: User) -> int:
    return Job.objects.filter(user=user).exclude(status__in=Job.FINISHED).count()


def status_data(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "progress": job.progress,
        "error": job.error or None,
        "result": job.result,
        "assets": [
            {
                "url": reverse("media_jobs:asset", kwargs={"asset_id": asset.id}),
                "thumbnail": reverse("media_jobs:thumbnail", kwargs={"asset_id": asset.id})
                if asset.thumbnail
                else None,
                "mime": asset.mime,
                "bytes": asset.bytes,
                "width": asset.width,
                "height": asset.height,
            }
            for asset in job.assets.all()
        ],
        "actions": _actions(job),
        "next_check_ms": next_check_ms(job),
    }


def next_check_ms(job: Job) -> int | None:
    """When the status page should look again: just after the worker's next step, whose time
    the job records, rather than on a blind backoff that drifts away from it."""
    if job.finished:
        return None
    if job.next_step_at is None:
        return 1000
    wait = (job.next_step_at - timezone.now()).total_seconds()
    if wait <= 0:
        return 500  # the step is due or running: its outcome lands any moment
    return int(min(wait + 0.5, 10.0) * 1000)


def _actions(job: Job) -> list[dict[str, Any]]:
    from media_jobs.kinds import get_kind

    kind = get_kind(job.kind)
    return kind.actions(job) if kind is not None else []
