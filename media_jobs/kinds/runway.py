"""Runway image to video (upstream-api.md §8): an uploaded image set in motion.

Asynchronous: submit, then poll the task until Runway has the video, which is downloaded as the
job's asset. The image is kept with `services.store_uploads` (as for speech to text and Kling)
and sent as a data URI, which Runway takes up to 5 MB.

Right after creation a relay may not know the task yet (`task_not_exist`): the poll reads that
as "still pending" for the first 30 seconds, which needs the task's age, so the job's upstream
id carries the creation time: `<task id>@<unix seconds>`.
"""

import base64
import time
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.upstream import RelayClient, runway

# The largest image whose data URI ("data:image/webp;base64," + base64) stays within 5 MB.
MAX_IMAGE_BYTES = (runway.MAX_DATA_URI_BYTES - 64) // 4 * 3


def _image_help() -> str:
    return gettext("The first frame of the video. PNG, JPEG or WebP, up to %(limit)s.") % {
        "limit": filesizeformat(MAX_IMAGE_BYTES)
    }


class RunwayForm(forms.Form):
    image = forms.FileField(
        label=_("Image"),
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=lazy(_image_help, str)(),
    )
    prompt = forms.CharField(
        label=_("Motion"),
        max_length=runway.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional: how things should move, up to 512 characters."),
    )
    model = forms.ChoiceField(label=_("Model"), choices=[("gen3a_turbo", "Gen-3 Alpha Turbo")])
    duration = forms.TypedChoiceField(
        label=_("Length"),
        choices=[(5, _("5 seconds")), (10, _("10 seconds"))],
        coerce=int,
        initial=5,
    )
    ratio = forms.ChoiceField(
        label=_("Shape"),
        choices=[
            ("1280:768", _("Landscape 1280 x 768")),
            ("768:1280", _("Portrait 768 x 1280")),
        ],
        initial="1280:768",
    )
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=0,
        max_value=runway.MAX_SEED,
        help_text=_("Optional: the same seed, image and motion give the same video again."),
    )

    def clean_image(self) -> Any:
        return clean_image_upload(
            self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS, max_bytes=MAX_IMAGE_BYTES
        )


def upstream_id(task_id: str, created_at: float) -> str:
    return f"{task_id}@{int(created_at)}"


def split_upstream_id(value: str) -> tuple[str, float | None]:
    """The task id and its creation time (None for an id without one)."""
    task_id, separator, created = value.rpartition("@")
    if separator and task_id and created.isdigit():
        return task_id, float(created)
    return value, None


class RunwayKind(JobKind):
    slug = "runway"
    family = "runway"
    label = _("Runway video")
    description = _("A 5 or 10 second video that sets an uploaded image in motion.")
    form_class = RunwayForm
    image_uses = (ImageUse(form_field="image", label=_("Runway video from this image")),)
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=8)
    give_up_after = timedelta(minutes=20)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        reference = params["image"]
        content = await sync_to_async(read_upload)(reference)
        data_uri = f"data:{reference.get('mime') or 'image/png'};base64,"
        data_uri += base64.b64encode(content).decode("ascii")
        seed = params.get("seed")
        task = await runway.image_to_video(
            client,
            data_uri,
            model=params.get("model") or "gen3a_turbo",
            prompt_text=params.get("prompt") or None,
            seed=int(seed) if seed is not None else None,
            duration=int(params.get("duration") or 5),
            ratio=params.get("ratio") or None,
        )
        return Outcome(upstream_id=upstream_id(task.id, time.time()), progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        task_id, created_at = split_upstream_id(upstream_id)
        task = await runway.get_task(client, task_id, created_at=created_at)
        if task.status == runway.FAILED:
            reason = task.failure or gettext("Runway could not make the video.")
            if task.failure_code:
                reason = f"{reason} ({task.failure_code})"
            return Outcome(failure=reason)
        if task.status == runway.CANCELLED:
            return Outcome(failure=gettext("The task was cancelled on the relay."))
        if task.status != runway.SUCCEEDED:
            running = task.status == runway.RUNNING
            return Outcome(progress=max(1, task.progress or 0) if running else 0)
        if not task.output:
            return Outcome(failure=gettext("The relay reported success but sent no video."))
        return Outcome(
            done=True,
            files=[ResultFile(url=task.output[0], name="video.mp4")],
            result={"task_id": task.id},
        )
