"""A job's files go with its row, however the row is deleted: the job's own Delete, a user
deleted from the staff pages or the Django admin (a cascade that never calls our services)."""

from collections.abc import Iterable
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from media_jobs.models import Asset, Job


@receiver(post_delete, sender=Asset, dispatch_uid="media-jobs-asset-files")
def delete_asset_files(sender: type[Asset], instance: Asset, **kwargs: Any) -> None:
    names = [stored.name for stored in (instance.file, instance.thumbnail) if stored.name]
    # After the commit: a rolled-back delete must not lose the files.
    transaction.on_commit(lambda: _delete(names))


@receiver(post_delete, sender=Job, dispatch_uid="media-jobs-upload-files")
def delete_job_uploads(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    paths = instance.upload_paths()
    if not paths:
        return

    def delete_unused() -> None:
        # A retry or "use these settings again" shares the uploads of the job it came from.
        others = Job.objects.filter(user_id=instance.user_id).only("params")
        still_used = {path for other in others for path in other.upload_paths()}
        _delete(paths - still_used)

    transaction.on_commit(delete_unused)


def _delete(names: Iterable[str]) -> None:
    for name in names:
        default_storage.delete(name)
