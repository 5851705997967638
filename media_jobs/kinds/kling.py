"""Kling video (upstream-api.md §9): text to video, or an uploaded image brought to life.

Asynchronous: submit, then poll every few seconds until the relay has the video, which is
downloaded as the job's asset. Uploaded images are kept with `services.store_uploads` (as for
speech to text) rather than inlined into the job's params: they can be 10 MB, and a retry or
"use these settings again" reuses the stored file.

Kling polls a task only on the path of the endpoint that made it, so the job's upstream id
names both: `text2video:<task_id>` or `image2video:<task_id>`. Kling reports no percentage; while
a task is processing the progress shown is an estimate from its age (`estimate_progress`).
"""

import base64
import math
import time
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.files.storage import default_storage
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import PNG_OR_JPEG_FORMATS, clean_image_upload
from studio.upstream import BadRequestError, RelayClient, kling

MIN_IMAGE_SIDE = 300
MAX_IMAGE_RATIO = 2.5  # width:height between 1:2.5 and 2.5:1
# A typical render takes a few minutes; the estimate approaches 95 % and never claims more.
TYPICAL_RENDER_SECONDS = 180.0


def read_upload(reference: dict[str, Any]) -> bytes:
    with default_storage.open(reference["path"], "rb") as stored:
        return bytes(stored.read())


class KlingForm(forms.Form):
    # Called `source`, not `mode`: Kling's own `mode` is the std / pro choice below.
    source = forms.ChoiceField(
        label=_("Make the video from"),
        choices=[
            (kling.TEXT2VIDEO, _("Text: a video from a prompt")),
            (kling.IMAGE2VIDEO, _("Image: bring an uploaded picture to life")),
        ],
        initial=kling.TEXT2VIDEO,
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=kling.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "What happens in the video, up to 2,500 characters. Required from text; "
            "optional from an image (it describes the motion)."
        ),
    )
    negative_prompt = forms.CharField(
        label=_("Avoid"),
        max_length=kling.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional: what should not appear, up to 2,500 characters."),
    )
    model_name = forms.ChoiceField(
        label=_("Model"),
        choices=[
            ("kling-v1", "Kling v1"),
            ("kling-v1-5", "Kling v1.5"),
            ("kling-v1-6", "Kling v1.6"),
        ],
        initial="kling-v1",
    )
    mode = forms.ChoiceField(
        label=_("Quality"),
        choices=[
            ("std", _("Standard: faster and cheaper")),
            ("pro", _("Professional: finer detail, takes longer")),
        ],
        initial="std",
    )
    duration = forms.ChoiceField(
        label=_("Length"),
        choices=[("5", _("5 seconds")), ("10", _("10 seconds"))],
        initial="5",
    )
    aspect_ratio = forms.ChoiceField(
        label=_("Shape"),
        choices=[
            ("16:9", _("Landscape 16:9")),
            ("9:16", _("Portrait 9:16")),
            ("1:1", _("Square 1:1")),
        ],
        initial="16:9",
        help_text=_("From text only; a video made from an image keeps the image's shape."),
    )
    cfg_scale = forms.FloatField(
        label=_("Prompt strength"),
        required=False,
        min_value=0.0,
        max_value=1.0,
        initial=0.5,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("From 0 (free) to 1 (follow the prompt closely); 0.5 is Kling's default."),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": PNG_OR_JPEG_FORMATS.accept}),
        help_text=_(
            "Required from an image: the first frame. PNG or JPEG, up to 10 MB, at least "
            "300 x 300 pixels, between 1:2.5 and 2.5:1."
        ),
    )
    image_tail = forms.FileField(
        label=_("End image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": PNG_OR_JPEG_FORMATS.accept}),
        help_text=_("Optional, from an image: the last frame, with the same limits."),
    )

    def clean_image(self) -> Any:
        return self._image("image")

    def clean_image_tail(self) -> Any:
        return self._image("image_tail")

    def _image(self, name: str) -> Any:
        if self.data.get(self.add_prefix("source")) == kling.TEXT2VIDEO:
            return None  # a file left in the form is not sent from text: nothing to check
        return clean_image_upload(
            self.cleaned_data.get(name),
            formats=PNG_OR_JPEG_FORMATS,
            min_side=MIN_IMAGE_SIDE,
            max_ratio=MAX_IMAGE_RATIO,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        if source == kling.TEXT2VIDEO:
            if not (data.get("prompt") or "").strip() and "prompt" not in self.errors:
                self.add_error("prompt", _("Write a prompt: it is all Kling has to go on."))
            # Nothing of an image is sent from text: do not keep files the job will not use.
            data["image"] = data["image_tail"] = None
        elif source == kling.IMAGE2VIDEO:
            if not data.get("image") and "image" not in self.errors:
                self.add_error("image", _("Upload the image to bring to life."))
        return data


def estimate_progress(task: kling.KlingTask, now: float | None = None) -> int:
    """A percentage for the progress bar. Kling says only submitted / processing, so a
    processing task's age (from its `created_at`) stands in, approaching 95 % over a typical
    render; a relay that sends a percentage of its own is believed instead."""
    if task.progress is not None:
        return task.progress
    if task.status == kling.SUBMITTED:
        return 0
    if not task.created_at:
        return 10
    age = max(0.0, (time.time() if now is None else now) - task.created_at / 1000)
    return max(5, min(95, round(95 * (1 - math.exp(-age / TYPICAL_RENDER_SECONDS)))))


def upstream_id(task: kling.KlingTask) -> str:
    return f"{task.endpoint}:{task.task_id}"


def split_upstream_id(value: str) -> tuple[str, str]:
    endpoint, separator, task_id = value.partition(":")
    if not separator or endpoint not in kling.ENDPOINTS or not task_id:
        raise BadRequestError(f"not a Kling task reference: {value!r}")
    return endpoint, task_id


class KlingKind(JobKind):
    slug = "kling"
    family = "kling"
    label = _("Kling video")
    description = _(
        "A 5 or 10 second video from a prompt, or from an uploaded image brought to life."
    )
    form_class = KlingForm
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=8)
    give_up_after = timedelta(minutes=20)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        options = {
            "model_name": params.get("model_name") or None,
            "negative_prompt": params.get("negative_prompt") or None,
            "cfg_scale": params.get("cfg_scale"),
            "mode": params.get("mode") or None,
            "duration": params.get("duration") or None,
        }
        if params.get("source") == kling.IMAGE2VIDEO:
            image = await _base64_of(params["image"])
            tail = await _base64_of(params["image_tail"]) if params.get("image_tail") else None
            task = await kling.image_to_video(
                client, image, image_tail=tail, prompt=params.get("prompt") or None, **options
            )
        else:
            task = await kling.text_to_video(
                client,
                params["prompt"],
                aspect_ratio=params.get("aspect_ratio") or None,
                **options,
            )
        return Outcome(upstream_id=upstream_id(task), progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        endpoint, task_id = split_upstream_id(upstream_id)
        task = await kling.fetch_video(client, endpoint, task_id)
        if task.failed:
            return Outcome(failure=task.status_msg or gettext("Kling could not make the video."))
        if not task.succeeded:
            return Outcome(progress=estimate_progress(task))
        if not task.videos:
            return Outcome(failure=gettext("The relay reported success but sent no video."))
        video = task.videos[0]
        return Outcome(
            done=True,
            files=[ResultFile(url=video.url, name="video.mp4")],
            result={"video_duration": video.duration, "task_id": task.task_id},
        )


async def _base64_of(reference: dict[str, Any]) -> str:
    content = await sync_to_async(read_upload)(reference)
    return base64.b64encode(content).decode("ascii")
