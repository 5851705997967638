"""CogVideoX video (upstream-api.md §14, Zhipu's format): a video from a prompt, an image, or both.

Asynchronous: submit, then poll the task until Zhipu has the video, which is downloaded with its
cover image as the job's assets. The image (image to video) is kept with
`services.store_uploads` and sent as a data URI; Zhipu takes PNG or JPEG up to 5 MB.

The models differ in what they take (`cogvideox.MODEL_OPTIONS`): the form refuses a choice the
chosen model would not honour rather than drop it silently. Zhipu reports no percentage, so the
job's upstream id carries the creation time (`<task id>@<unix seconds>`) for an estimate.
"""

import math
import time
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import PNG_OR_JPEG_FORMATS, clean_image_upload, read_upload
from studio.upstream import RelayClient, cogvideox

TYPICAL_RENDER_SECONDS = 90.0
MODEL_LABELS = {
    "cogvideox": _("CogVideoX"),
    "cogvideox-flash": _("CogVideoX Flash"),
    "cogvideox-3": _("CogVideoX-3"),
}


class CogVideoXForm(forms.Form):
    model = forms.ChoiceField(
        label=_("Model"),
        choices=[
            ("cogvideox-flash", _("CogVideoX Flash: quick, with sound, size and frame rate")),
            ("cogvideox-3", _("CogVideoX-3: the newest, adds the speed or quality choice")),
            ("cogvideox", _("CogVideoX: the first model, prompt and image only")),
        ],
        initial="cogvideox-flash",
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=cogvideox.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "What happens in the video, up to 500 characters. Optional with an image "
            "(it then describes the motion)."
        ),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": PNG_OR_JPEG_FORMATS.accept}),
        help_text=_(
            "Optional: a picture to set in motion (image to video). PNG or JPEG, up to 5 MB."
        ),
    )
    quality = forms.ChoiceField(
        label=_("Priority"),
        choices=[
            ("speed", _("Speed: faster, a little less detail")),
            ("quality", _("Quality: finer, takes longer")),
        ],
        initial="speed",
        help_text=_("CogVideoX-3 only."),
    )
    with_audio = forms.BooleanField(
        label=_("Add AI sound effects"),
        required=False,
        help_text=_("CogVideoX Flash and CogVideoX-3."),
    )
    size = forms.ChoiceField(
        label=_("Size"),
        choices=[("", _("The model's default")), *((size, size) for size in cogvideox.SIZES)],
        required=False,
        help_text=_("Width x height. CogVideoX Flash and CogVideoX-3."),
    )
    fps = forms.TypedChoiceField(
        label=_("Frame rate"),
        choices=[
            ("", _("The model's default")),
            (30, _("30 frames a second")),
            (60, _("60 frames a second")),
        ],
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("CogVideoX Flash and CogVideoX-3."),
    )

    def clean_image(self) -> Any:
        return clean_image_upload(
            self.cleaned_data.get("image"),
            formats=PNG_OR_JPEG_FORMATS,
            max_bytes=cogvideox.MAX_IMAGE_BYTES,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            not (data.get("prompt") or "").strip()
            and not data.get("image")
            and not {"prompt", "image"} & set(self.errors)
        ):
            self.add_error("prompt", _("Write a prompt, upload an image, or both."))
        model = data.get("model")
        if model:
            self._check_options(model, data)
        return data

    def _check_options(self, model: str, data: dict[str, Any]) -> None:
        """A choice away from the default that `model` does not take is an error on its field."""
        chosen = {
            "quality": data.get("quality") not in (None, "", "speed"),
            "with_audio": bool(data.get("with_audio")),
            "size": bool(data.get("size")),
            "fps": data.get("fps") is not None,
        }
        for option, used in chosen.items():
            if used and not cogvideox.takes(model, option) and option not in self.errors:
                self.add_error(
                    option,
                    gettext("%(model)s does not take this option: choose another model.")
                    % {"model": MODEL_LABELS.get(model, model)},
                )


def estimate_progress(created_at: float | None, now: float | None = None) -> int:
    """Zhipu says only PROCESSING: the task's age stands in, approaching 95 %."""
    if created_at is None:
        return 10
    age = max(0.0, (time.time() if now is None else now) - created_at)
    return max(5, min(95, round(95 * (1 - math.exp(-age / TYPICAL_RENDER_SECONDS)))))


def upstream_id(task_id: str, created_at: float) -> str:
    return f"{task_id}@{int(created_at)}"


def split_upstream_id(value: str) -> tuple[str, float | None]:
    task_id, separator, created = value.rpartition("@")
    if separator and task_id and created.isdigit():
        return task_id, float(created)
    return value, None


class CogVideoXKind(JobKind):
    slug = "cogvideox"
    family = "cogvideox"
    label = _("CogVideoX video")
    description = _(
        "Zhipu's video model: a short video from a prompt, from an image, or from both."
    )
    form_class = CogVideoXForm
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=6)
    give_up_after = timedelta(minutes=20)
    image_uses = (ImageUse(form_field="image", label=_("CogVideoX video from this image")),)
    # By model: the options only some models take (cogvideox.MODEL_OPTIONS, which clean()
    # and cogvideox.generate follow too).
    mode_field = "model"
    field_modes = {
        option: tuple(model for model in cogvideox.MODELS if cogvideox.takes(model, option))
        for option in ("quality", "with_audio", "size", "fps")
    }

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        model = params.get("model") or "cogvideox-flash"
        image_url = None
        if isinstance(reference := params.get("image"), dict) and reference.get("path"):
            content = await sync_to_async(read_upload)(reference)
            image_url = cogvideox.data_uri(content, str(reference.get("mime") or "image/png"))
        fps = params.get("fps")
        task = await cogvideox.generate(
            client,
            model,
            prompt=params.get("prompt") or None,
            image_url=image_url,
            quality=params.get("quality") or None,
            with_audio=bool(params.get("with_audio")) or None,
            size=params.get("size") or None,
            fps=int(fps) if fps else None,
        )
        return Outcome(upstream_id=upstream_id(task.id, time.time()), progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        task_id, created_at = split_upstream_id(upstream_id)
        task = await cogvideox.get_result(client, task_id)
        if task.failed:
            return Outcome(failure=task.failure or gettext("CogVideoX could not make the video."))
        if not task.succeeded:
            return Outcome(progress=task.progress or estimate_progress(created_at))
        if not task.videos:
            return Outcome(failure=gettext("The relay reported success but sent no video."))
        files: list[ResultFile] = []
        for number, video in enumerate(task.videos, start=1):
            suffix = "" if number == 1 else f"-{number}"
            files.append(ResultFile(url=video.url, name=f"video{suffix}.mp4"))
            if video.cover_image_url:
                files.append(ResultFile(url=video.cover_image_url, name=f"cover{suffix}.png"))
        return Outcome(done=True, files=files, result={"task_id": task.id, "model": task.model})
