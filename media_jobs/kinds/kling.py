"""Kling (upstream-api.md §9): text to video, an uploaded image brought to life, or images
from a prompt (§9.1, `source` "text2image", optionally guided by a reference image).

Asynchronous: submit, then poll every few seconds until the relay has the video or the images,
which are downloaded as the job's assets. Uploaded images are kept with `services.store_uploads`
(as for speech to text) rather than inlined into the job's params: they can be 10 MB, and a
retry or "use these settings again" reuses the stored file.

Kling polls a task only on the path of the endpoint that made it, so the job's upstream id
names both: `text2video:<task_id>`, `image2video:<task_id>` or `images:<task_id>`. Kling reports
no percentage; while a task is processing the progress shown is an estimate from its age
(`estimate_progress`).
"""

import base64
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
from studio.upstream import BadRequestError, RelayClient, kling

MIN_IMAGE_SIDE = 300
MAX_IMAGE_RATIO = 2.5  # width:height between 1:2.5 and 2.5:1
# A typical render takes a few minutes; the estimate approaches 95 % and never claims more.
TYPICAL_RENDER_SECONDS = 180.0
TYPICAL_IMAGES_SECONDS = 30.0
# The form's `source` for image generation (the task's endpoint is kling.IMAGES).
TEXT2IMAGE = "text2image"
VIDEO_ASPECT_RATIOS = frozenset(kling.ASPECT_RATIOS)


class KlingForm(forms.Form):
    # Called `source`, not `mode`: Kling's own `mode` is the std / pro choice below.
    source = forms.ChoiceField(
        label=_("Make the video from"),
        choices=[
            (kling.TEXT2VIDEO, _("Text: a video from a prompt")),
            (kling.IMAGE2VIDEO, _("Image: bring an uploaded picture to life")),
            (TEXT2IMAGE, _("Or make images instead: 1 to 9 pictures from a prompt")),
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
            "optional from an image (it describes the motion). For images: what they show, "
            "up to 500 characters."
        ),
    )
    negative_prompt = forms.CharField(
        label=_("Avoid"),
        max_length=kling.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Optional: what should not appear, up to 2,500 characters (200 for images, and "
            "none with a reference image)."
        ),
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
            ("4:3", _("Classic 4:3 (images only)")),
            ("3:4", _("Classic portrait 3:4 (images only)")),
            ("3:2", _("Photo 3:2 (images only)")),
            ("2:3", _("Photo portrait 2:3 (images only)")),
        ],
        initial="16:9",
        help_text=_(
            "For a video from text, and for images; a video made from an image keeps the "
            "image's shape."
        ),
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
            "Required from an image: the first frame. For images: an optional reference "
            "picture to follow. PNG or JPEG, up to 10 MB, at least 300 x 300 pixels, between "
            "1:2.5 and 2.5:1."
        ),
    )
    image_tail = forms.FileField(
        label=_("End image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": PNG_OR_JPEG_FORMATS.accept}),
        help_text=_("Optional, from an image: the last frame, with the same limits."),
    )
    n = forms.IntegerField(
        label=_("Number of images"),
        required=False,
        min_value=1,
        max_value=kling.MAX_IMAGES,
        initial=1,
        help_text=_("For images: how many pictures to make, 1 to 9."),
    )
    image_fidelity = forms.FloatField(
        label=_("Reference strength"),
        required=False,
        min_value=0.0,
        max_value=1.0,
        initial=0.5,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_(
            "For images with a reference picture: from 0 (loosely) to 1 (closely) it is followed."
        ),
    )
    image_reference = forms.ChoiceField(
        label=_("Follow the reference's"),
        choices=[("subject", _("Subject")), ("face", _("Face"))],
        initial="subject",
        required=False,
        help_text=_("For images with a reference picture, Kling v1.5 only."),
    )

    def clean_image(self) -> Any:
        return self._image("image")

    def clean_image_tail(self) -> Any:
        return self._image("image_tail")

    def _image(self, name: str) -> Any:
        source = self.data.get(self.add_prefix("source"))
        if source == kling.TEXT2VIDEO or (source == TEXT2IMAGE and name == "image_tail"):
            return None  # a file left in the form is not sent: nothing to check
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
            self._check_video_shape(data)
        elif source == kling.IMAGE2VIDEO:
            if not data.get("image") and "image" not in self.errors:
                self.add_error("image", _("Upload the image to bring to life."))
        elif source == TEXT2IMAGE:
            self._check_images(data)
            data["image_tail"] = None
        return data

    def _check_video_shape(self, data: dict[str, Any]) -> None:
        if data.get("aspect_ratio") and data["aspect_ratio"] not in VIDEO_ASPECT_RATIOS:
            self.add_error(
                "aspect_ratio",
                _("Kling videos are 16:9, 9:16 or 1:1; the other shapes are for images."),
            )

    def _check_images(self, data: dict[str, Any]) -> None:
        """Kling's limits for image generation (§9.1), tighter than for video."""
        prompt = (data.get("prompt") or "").strip()
        if not prompt and "prompt" not in self.errors:
            self.add_error("prompt", _("Write a prompt: it says what the images show."))
        elif len(prompt) > kling.MAX_IMAGE_PROMPT_CHARS:
            self.add_error(
                "prompt",
                _("For images the prompt has at most 500 characters (it has %(count)d).")
                % {"count": len(prompt)},
            )
        negative = (data.get("negative_prompt") or "").strip()
        if len(negative) > kling.MAX_IMAGE_NEGATIVE_CHARS:
            self.add_error(
                "negative_prompt",
                _("For images, “Avoid” has at most 200 characters (it has %(count)d).")
                % {"count": len(negative)},
            )
        elif negative and data.get("image"):
            self.add_error(
                "negative_prompt",
                _("Kling takes no “Avoid” text with a reference image: leave one of them out."),
            )
        if data.get("model_name") and data["model_name"] not in kling.IMAGE_MODELS:
            self.add_error("model_name", _("Kling makes images with v1 or v1.5 only."))


def estimate_progress(task: kling.KlingTask, now: float | None = None) -> int:
    """A percentage for the progress bar. Kling says only submitted / processing, so a
    processing task's age (from its `created_at`) stands in, approaching 95 % over a typical
    render (images are quicker than videos); a relay that sends a percentage of its own is
    believed instead."""
    if task.progress is not None:
        return task.progress
    if task.status == kling.SUBMITTED:
        return 0
    if not task.created_at:
        return 10
    typical = TYPICAL_IMAGES_SECONDS if task.endpoint == kling.IMAGES else TYPICAL_RENDER_SECONDS
    age = max(0.0, (time.time() if now is None else now) - task.created_at / 1000)
    return max(5, min(95, round(95 * (1 - math.exp(-age / typical)))))


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
    label = _("Kling video and images")
    description = _(
        "A 5 or 10 second video from a prompt, or from an uploaded image brought to life; "
        "or 1 to 9 images from a prompt."
    )
    form_class = KlingForm
    image_uses = (
        ImageUse(
            form_field="image",
            label=_("Kling video from this image"),
            initial={"source": kling.IMAGE2VIDEO},
        ),
        ImageUse(
            form_field="image",
            label=_("Kling images with this reference"),
            initial={"source": TEXT2IMAGE},
        ),
    )
    # By `source`: the std / pro quality (Kling's own `mode`), length and prompt strength go to
    # the video endpoints only; the shape to text to video and images (a video from an image
    # keeps the image's); the first-frame image to image to video and as the images' reference;
    # the end frame to image to video; the count and reference options to images only.
    mode_field = "source"
    field_modes = {
        "mode": (kling.TEXT2VIDEO, kling.IMAGE2VIDEO),
        "duration": (kling.TEXT2VIDEO, kling.IMAGE2VIDEO),
        "aspect_ratio": (kling.TEXT2VIDEO, TEXT2IMAGE),
        "cfg_scale": (kling.TEXT2VIDEO, kling.IMAGE2VIDEO),
        "image": (kling.IMAGE2VIDEO, TEXT2IMAGE),
        "image_tail": (kling.IMAGE2VIDEO,),
        "n": (TEXT2IMAGE,),
        "image_fidelity": (TEXT2IMAGE,),
        "image_reference": (TEXT2IMAGE,),
    }
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=8)
    give_up_after = timedelta(minutes=20)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        if params.get("source") == TEXT2IMAGE:
            return await _submit_images(client, params)
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
        task = await kling.fetch_task(client, endpoint, task_id)
        if task.failed:
            if endpoint == kling.IMAGES:
                reason = gettext("Kling could not make the images.")
            else:
                reason = gettext("Kling could not make the video.")
            return Outcome(failure=task.status_msg or reason)
        if not task.succeeded:
            return Outcome(progress=estimate_progress(task))
        if endpoint == kling.IMAGES:
            return _images_outcome(task)
        if not task.videos:
            return Outcome(failure=gettext("The relay reported success but sent no video."))
        video = task.videos[0]
        return Outcome(
            done=True,
            files=[ResultFile(url=video.url, name="video.mp4")],
            result={"video_duration": video.duration, "task_id": task.task_id},
        )


async def _submit_images(client: RelayClient, params: dict[str, Any]) -> Outcome:
    model_name = params.get("model_name") or None
    image = await _base64_of(params["image"]) if params.get("image") else None
    fidelity = params.get("image_fidelity")
    task = await kling.generate_images(
        client,
        params["prompt"],
        model_name=model_name,
        negative_prompt=params.get("negative_prompt") or None,
        image=image,
        image_fidelity=fidelity if image and fidelity is not None else None,
        # Kling v1.5 wants to know what to follow in a reference: the subject or the face.
        image_reference=(params.get("image_reference") or "subject")
        if image and model_name == "kling-v1-5"
        else None,
        n=int(params.get("n") or 1),
        aspect_ratio=params.get("aspect_ratio") or None,
    )
    return Outcome(upstream_id=upstream_id(task), progress=0)


def _images_outcome(task: kling.KlingTask) -> Outcome:
    if not task.images:
        return Outcome(failure=gettext("The relay reported success but sent no images."))
    return Outcome(
        done=True,
        files=[
            ResultFile(url=image.url, name=f"image-{number}.png")
            for number, image in enumerate(task.images, start=1)
        ],
        result={"task_id": task.task_id, "images": len(task.images)},
    )


async def _base64_of(reference: dict[str, Any]) -> str:
    content = await sync_to_async(read_upload)(reference)
    return base64.b64encode(content).decode("ascii")
