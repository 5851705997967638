"""A media job and its results. The Job row, not the task queue, is the truth about a job:
tasks only advance it (ARCHITECTURE.md §2, §5)."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from media_jobs.svg import SVG_MIME

# A gallery page shows 24 covers: an SVG bigger than this is not sent whole as a thumbnail.
GALLERY_SVG_MAX_BYTES = 256 * 1024


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SUBMITTED = "submitted", _("Submitted")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=32, db_index=True)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    upstream_id = models.CharField(max_length=128, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Set (and committed) just before the submit request goes out: a job found with this set
    # but no upstream id may or may not exist on the relay, so it is never submitted again.
    submit_started_at = models.DateTimeField(null=True, blank=True)
    # When the next step is due: a task that arrives earlier (a duplicate) does nothing.
    next_step_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    deadline_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)  # kind-specific: revised prompt, text…
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def prompt(self) -> str:
        """What to call the job in lists: its prompt, else the name of the file it was given."""
        if text := str(self.params.get("prompt") or ""):
            return text
        return next((str(v["name"]) for v in self.params.values() if _is_upload(v)), "")

    @property
    def cover(self) -> "Asset | None":
        """What the gallery shows of the job (from the prefetched assets, no query): the first
        asset with a thumbnail (a song's cover art, not its audio), else a small SVG, shown as
        it is since no thumbnail can be made of it."""
        assets = list(self.assets.all())
        return next((asset for asset in assets if asset.thumbnail), None) or next(
            (a for a in assets if a.mime == SVG_MIME and a.bytes <= GALLERY_SVG_MAX_BYTES), None
        )

    def upload_paths(self) -> set[str]:
        return {str(v["path"]) for v in self.params.values() if _is_upload(v)}


def _is_upload(value: object) -> bool:
    # media_jobs.services.store_uploads keeps each uploaded file as {path, name, mime, bytes}.
    return isinstance(value, dict) and {"path", "name"} <= value.keys()


def asset_path(asset: "Asset", filename: str) -> str:
    # Generated names only: nothing of the relay's URL or an upload's name reaches the disk.
    return f"assets/{asset.job.user_id}/{asset.job_id}/{uuid.uuid4().hex}{_extension(filename)}"


def _extension(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return f".{suffix}" if suffix.isalnum() and len(suffix) <= 5 else ""


class Asset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="assets")
    file = models.FileField(upload_to=asset_path, max_length=300)
    thumbnail = models.FileField(upload_to=asset_path, max_length=300, blank=True)
    mime = models.CharField(max_length=100)
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.mime} {self.bytes} B"
