"""Luma video (upstream-api.md §10): a video from a prompt, optionally between a first and a
last frame, and the extension of a finished Luma video.

Asynchronous: submit, then poll the generation until Luma has the video, which is downloaded
with its thumbnail as the job's assets. Luma may say `completed` a moment before the download
link exists; such a generation is still polled (at 99 %) until it does.

Extending: a finished Luma job offers "Extend" twice over. Its button (an action, like
Midjourney's) makes a child job that continues the video with the same prompt; the form on its
page ("Extend with a new prompt", `luma_result.html`) posts to this kind's form with
`mode=extend` and the generation id, so a new prompt can say what happens next, and a bad one
comes back on the full form with everything kept. Either way the new job's upstream id is the
new generation's, so an extension can be extended again.

Uploaded frames are kept with `services.store_uploads` and sent as data URIs.
"""

import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django import forms
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.upstream import BadRequestError, RelayClient, luma

if TYPE_CHECKING:
    from media_jobs.models import Job

GENERATE = "generate"
EXTEND = "extend"
ACTION = "action"  # the Extend button of a finished job (views.action makes the child job)
EXTEND_ACTION = "luma::extend"
MAX_GENERATION_ID_CHARS = 100
TYPICAL_RENDER_SECONDS = 120.0
_GENERATION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class LumaForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            (GENERATE, _("New video: from a prompt, optionally between two frames")),
            (EXTEND, _("Extend: continue a finished Luma video")),
        ],
        initial=GENERATE,
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=luma.MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What happens in the video; to extend, what happens next."),
        error_messages={"required": _("Write a prompt: Luma needs one, even with frames.")},
    )
    generation_id = forms.CharField(
        label=_("Luma video to extend"),
        required=False,
        max_length=MAX_GENERATION_ID_CHARS,
        help_text=_(
            "For Extend: the Luma generation id shown on a finished Luma job's page "
            "(its Extend form fills it in)."
        ),
    )
    aspect_ratio = forms.ChoiceField(
        label=_("Shape"),
        choices=[
            ("16:9", _("Landscape 16:9")),
            ("9:16", _("Portrait 9:16")),
            ("1:1", _("Square 1:1")),
            ("4:3", _("Classic 4:3")),
            ("3:4", _("Classic portrait 3:4")),
            ("21:9", _("Cinema 21:9")),
        ],
        initial="16:9",
        help_text=_("For a new video; an extension keeps the shape of the video it continues."),
    )
    expand_prompt = forms.BooleanField(
        label=_("Let Luma enhance the prompt"),
        required=False,
        initial=True,
        help_text=_("Luma rewrites a short prompt into a more detailed one."),
    )
    loop = forms.BooleanField(
        label=_("Loop"),
        required=False,
        help_text=_("The end of the video flows back into its start."),
    )
    image = forms.FileField(
        label=_("First frame"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_(
            "Optional, for a new video: the picture it starts from. PNG, JPEG or WebP, up to 10 MB."
        ),
    )
    image_end = forms.FileField(
        label=_("Last frame"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_("Optional: the picture it ends on, with the same limits."),
    )

    def clean_image(self) -> Any:
        if self.data.get(self.add_prefix("mode")) == EXTEND:
            return None  # an extension starts where the video it extends ends
        return clean_image_upload(self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS)

    def clean_image_end(self) -> Any:
        return clean_image_upload(self.cleaned_data.get("image_end"), formats=STILL_IMAGE_FORMATS)

    def clean_generation_id(self) -> str:
        value = str(self.cleaned_data.get("generation_id") or "").strip()
        if value and not _GENERATION_ID.match(value):
            raise forms.ValidationError(
                _("A Luma generation id has only letters, digits, dashes and underscores.")
            )
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == EXTEND:
            if not data.get("generation_id") and "generation_id" not in self.errors:
                self.add_error("generation_id", _("Give the id of the Luma video to extend."))
            data["image"] = None
        else:
            data["generation_id"] = ""
        return data


def estimate_progress(generation: luma.LumaGeneration, now: float | None = None) -> int:
    """A percentage for the progress bar: Luma says only which state a generation is in, so a
    working generation's age stands in, approaching 95 % over a typical render; one that is
    completed but has no download link yet is at 99."""
    if generation.progress is not None:
        return generation.progress
    if generation.completed:
        return 99
    if generation.state in luma.WAITING_STATES:
        return 0
    created = generation.created_timestamp()
    if created is None:
        return 10
    age = max(0.0, (time.time() if now is None else now) - created)
    return max(5, min(95, round(95 * (1 - 2 ** (-age / (TYPICAL_RENDER_SECONDS / 2))))))


class LumaKind(JobKind):
    slug = "luma"
    family = "luma"
    label = _("Luma video")
    description = _(
        "A 5 second video from a prompt, optionally from a first and to a last frame; "
        "a finished Luma video can be extended."
    )
    form_class = LumaForm
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=6)
    give_up_after = timedelta(minutes=20)
    result_template = "media_jobs/luma_result.html"
    image_uses = (
        ImageUse(
            form_field="image", label=_("Luma video from this image"), initial={"mode": GENERATE}
        ),
    )
    # An extension names its generation and keeps that video's shape and first frame; the
    # last frame, prompt enhancement and loop go with both modes.
    field_modes = {
        "generation_id": (EXTEND,),
        "aspect_ratio": (GENERATE,),
        "image": (GENERATE,),
    }

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or GENERATE
        options: dict[str, Any] = {
            "expand_prompt": params.get("expand_prompt"),
            "loop": params.get("loop"),
            "image_end_url": await _data_uri(params.get("image_end")),
        }
        if mode in (EXTEND, ACTION):
            # An action child has the parent's upstream id as task_id (views.action).
            generation_id = str(params.get("generation_id") or params.get("task_id") or "")
            if not generation_id:
                raise BadRequestError("no Luma generation to extend")
            generation = await luma.extend(client, generation_id, params["prompt"], **options)
        elif mode == GENERATE:
            # An extension keeps the shape of the video it continues: only a new one has a choice.
            generation = await luma.generate(
                client,
                params["prompt"],
                aspect_ratio=params.get("aspect_ratio") or None,
                image_url=await _data_uri(params.get("image")),
                **options,
            )
        else:
            raise BadRequestError(f"unknown Luma mode {mode!r}")
        return Outcome(upstream_id=generation.id, progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        generation = await luma.get_generation(client, upstream_id)
        if generation.failed:
            return Outcome(failure=generation.failure or gettext("Luma could not make the video."))
        if not generation.ready or generation.video is None:
            return Outcome(progress=estimate_progress(generation))
        files = [ResultFile(url=generation.video.download_url, name="video.mp4")]
        if thumbnail := generation.thumbnail_url:
            files.append(ResultFile(url=thumbnail, name="thumbnail.jpg"))
        return Outcome(
            done=True,
            files=files,
            result={
                "generation_id": generation.id,
                "video_width": generation.video.width,
                "video_height": generation.video.height,
            },
        )

    def actions(self, job: "Job") -> list[dict[str, Any]]:
        """ "Extend" on a finished job: a child job continuing the video with its prompt."""
        if job.status != "succeeded" or not job.upstream_id:
            return []
        return [
            {
                "custom_id": EXTEND_ACTION,
                "label": gettext("Extend"),
                "title": gettext("Extend: continue this video with the same prompt"),
                "url": reverse("media_jobs:action", kwargs={"job_id": job.id}),
                "dialog": "",
            }
        ]


async def _data_uri(reference: object) -> str | None:
    if not isinstance(reference, dict) or not reference.get("path"):
        return None
    content = await sync_to_async(read_upload)(reference)
    return luma.data_uri(content, str(reference.get("mime") or "image/png"))
