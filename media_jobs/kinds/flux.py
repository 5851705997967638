"""Flux, Black Forest Labs' official format (upstream-api.md §7): FLUX1.1 [pro], FLUX.1 [pro]
and FLUX.1 [dev], optionally guided by an uploaded image (`image_prompt`).

Asynchronous but quick: submit, poll every second or two (§1.3: first poll after 1 s, give up
after 3 minutes), and download the sample at once: BFL's links expire within minutes. Moderated
tasks and errors fail with BFL's reason. The uploaded image is kept with
`services.store_uploads` (as for Kling and Runway) and sent as raw base64.

Right after creation a relay may not know the task yet ("Task not found"): that reads as still
pending for the first 30 seconds, which needs the task's age, so the job's upstream id carries
the creation time: `<task id>@<unix seconds>`.
"""

import math
import posixpath
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.upstream import RelayClient, flux

MAX_PROMPT_CHARS = 4000
NOT_YET_VISIBLE_GRACE = 30.0  # seconds
TYPICAL_RENDER_SECONDS = 10.0
UPSAMPLED = "upsampled"

_MODEL_NAMES = {
    flux.FLUX_PRO_1_1: "FLUX1.1 [pro]",
    flux.FLUX_PRO: "FLUX.1 [pro]",
    flux.FLUX_DEV: "FLUX.1 [dev]",
}
_SIDE_HELP = _("256 to 1440 pixels, a multiple of 32.")


def _side_field(label: Any, initial: int) -> forms.IntegerField:
    low, high = flux.SIDE_RANGE
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        initial=initial,
        widget=forms.NumberInput(attrs={"step": flux.SIDE_STEP}),
        help_text=_SIDE_HELP,
    )


class FluxForm(forms.Form):
    model = forms.ChoiceField(
        label=_("Model"),
        choices=[
            (flux.FLUX_PRO_1_1, _("FLUX1.1 [pro]: fastest, best quality")),
            (flux.FLUX_PRO, _("FLUX.1 [pro]: with steps, guidance and interval")),
            (flux.FLUX_DEV, _("FLUX.1 [dev]: with steps and guidance, cheaper")),
        ],
        initial=flux.FLUX_PRO_1_1,
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Describe the picture, up to 4,000 characters."),
    )
    image_prompt = forms.FileField(
        label=_("Image prompt"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_(
            "Optional: an image whose look and composition guide the result. PNG, JPEG or WebP, "
            "up to 10 MB."
        ),
    )
    width = _side_field(_("Width"), flux.DEFAULT_WIDTH)
    height = _side_field(_("Height"), flux.DEFAULT_HEIGHT)
    output_format = forms.ChoiceField(
        label=_("File format"),
        choices=[("jpeg", "JPEG"), ("png", "PNG")],
        initial="jpeg",
    )
    prompt_upsampling = forms.BooleanField(
        label=_("Let Flux enrich the prompt"),
        required=False,
        help_text=_("Flux rewrites the prompt with more detail before drawing."),
    )
    safety_tolerance = forms.IntegerField(
        label=_("Safety tolerance"),
        min_value=flux.SAFETY_RANGE[0],
        max_value=flux.SAFETY_RANGE[1],
        initial=flux.DEFAULT_SAFETY,
        help_text=_("From 0 (strictest moderation) to 6 (most permissive); 2 by default."),
    )
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=0,
        max_value=2**32 - 1,
        help_text=_("Optional: the same seed and settings give the same image again."),
    )
    steps = forms.IntegerField(
        label=_("Steps"),
        required=False,
        min_value=flux.STEPS_RANGE[0],
        max_value=flux.STEPS_RANGE[1],
        help_text=_(
            "FLUX.1 [pro] and [dev] only: 1 to 50 denoising steps (defaults 40 and 28). "
            "Leave empty for the default."
        ),
    )
    guidance = forms.FloatField(
        label=_("Guidance"),
        required=False,
        min_value=flux.GUIDANCE_RANGE[0],
        max_value=flux.GUIDANCE_RANGE[1],
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text=_(
            "FLUX.1 [pro] and [dev] only: 1.5 to 5, how closely to follow the prompt "
            "(defaults 2.5 and 3)."
        ),
    )
    interval = forms.FloatField(
        label=_("Interval"),
        required=False,
        min_value=flux.INTERVAL_RANGE[0],
        max_value=flux.INTERVAL_RANGE[1],
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text=_("FLUX.1 [pro] only: 1 to 4, more variety at higher values (default 2)."),
    )

    def clean_image_prompt(self) -> Any:
        return clean_image_upload(
            self.cleaned_data.get("image_prompt"), formats=STILL_IMAGE_FORMATS
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("width", "height"):
            value = data.get(name)
            if value is not None and value % flux.SIDE_STEP:
                lower = value - value % flux.SIDE_STEP
                self.add_error(
                    name,
                    _("Flux needs a multiple of 32 pixels: try %(lower)d or %(upper)d.")
                    % {"lower": lower, "upper": lower + flux.SIDE_STEP},
                )
        model = data.get("model")
        if model:
            for name in ("steps", "guidance", "interval"):
                if data.get(name) is not None and not flux.takes(model, name):
                    self.add_error(
                        name,
                        _("%(model)s does not take this setting: leave it empty.")
                        % {"model": _MODEL_NAMES[model]},
                    )
        return data


def upstream_id(task_id: str, created_at: float, *, upsampled: bool = False) -> str:
    """`<task id>@<unix seconds>`, plus `@upsampled` when Flux was asked to rewrite the prompt
    (the poll then shows the prompt it used as a rewrite)."""
    value = f"{task_id}@{int(created_at)}"
    return f"{value}@{UPSAMPLED}" if upsampled else value


def split_upstream_id(value: str) -> tuple[str, float | None, bool]:
    """The task id, its creation time (None for an id without one) and whether the prompt
    was to be upsampled."""
    upsampled = value.endswith(f"@{UPSAMPLED}")
    rest = value.removesuffix(f"@{UPSAMPLED}") if upsampled else value
    task_id, separator, created = rest.rpartition("@")
    if separator and task_id and created.isdigit():
        return task_id, float(created), upsampled
    return rest, None, upsampled


def estimate_progress(result: flux.FluxResult, created_at: float | None, now: float) -> int:
    """The relay's percentage when it sends one, else an estimate from the task's age that
    approaches 95 % over a typical render."""
    if result.progress is not None:
        return max(1, min(99, result.progress))
    if created_at is None:
        return 5
    age = max(0.0, now - created_at)
    return max(1, min(95, round(95 * (1 - math.exp(-age / TYPICAL_RENDER_SECONDS)))))


def sample_name(url: str) -> str:
    """A file name for the sample with its extension from the URL (BFL: `.../sample.jpeg`)."""
    suffix = posixpath.splitext(urlsplit(url).path)[1].lower()
    return f"image{suffix}" if suffix in (".jpeg", ".jpg", ".png", ".webp") else "image.jpg"


def failure_reason(result: flux.FluxResult) -> str:
    """Why a finished task has no image, with BFL's own words when it gave any."""
    if result.status == flux.REQUEST_MODERATED:
        reason = gettext("Flux's moderation refused the request.")
    elif result.status == flux.CONTENT_MODERATED:
        reason = gettext("Flux's moderation withheld the image it made.")
    else:
        reason = gettext("Flux could not make the image (status: %(status)s).") % {
            "status": result.status
        }
    return f"{reason} {result.details}" if result.details else reason


class FluxKind(JobKind):
    slug = "flux"
    family = "flux"
    label = _("Flux image")
    description = _(
        "An image from a prompt with Black Forest Labs' FLUX models, optionally guided by an "
        "image, at any size from 256 to 1440 pixels."
    )
    form_class = FluxForm
    result_template = "media_jobs/results/flux.html"
    image_uses = (ImageUse(form_field="image_prompt", label=_("Flux with this image as prompt")),)
    # By model: the settings only some models take (flux.MODEL_DEFAULTS, which clean() and
    # flux.generate follow too).
    mode_field = "model"
    field_modes = {
        name: tuple(model for model in flux.MODELS if flux.takes(model, name))
        for name in ("steps", "guidance", "interval")
    }
    first_poll = timedelta(seconds=1)
    poll_every = timedelta(seconds=2)
    give_up_after = timedelta(minutes=3)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        model = params.get("model") or flux.FLUX_PRO_1_1
        image = params.get("image_prompt")
        content = await sync_to_async(read_upload)(image) if image else None
        submission = await flux.generate(
            client,
            model,
            params["prompt"],
            image_prompt=content,
            width=_int(params.get("width")),
            height=_int(params.get("height")),
            prompt_upsampling=bool(params.get("prompt_upsampling")),
            seed=_int(params.get("seed")),
            safety_tolerance=_int(params.get("safety_tolerance")),
            output_format=params.get("output_format") or None,
            steps=_int(params.get("steps")),
            guidance=_float(params.get("guidance")),
            interval=_float(params.get("interval")),
        )
        upsampled = bool(params.get("prompt_upsampling"))
        return Outcome(
            upstream_id=upstream_id(submission.id, time.time(), upsampled=upsampled), progress=0
        )

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        task_id, created_at, upsampled = split_upstream_id(upstream_id)
        result = await flux.get_result(client, task_id)
        now = time.time()
        if result.status == flux.TASK_NOT_FOUND:
            if created_at is not None and now - created_at < NOT_YET_VISIBLE_GRACE:
                return Outcome(progress=0)  # the relay has not caught up with a new task yet
            return Outcome(
                failure=gettext("The relay does not know this Flux task (Task not found).")
            )
        if result.ready:
            if not result.sample:
                return Outcome(failure=gettext("The relay reported success but sent no image."))
            return Outcome(
                done=True,
                files=[ResultFile(url=result.sample, name=sample_name(result.sample))],
                result={
                    "task_id": result.id,
                    "seed": result.seed,
                    "duration": result.duration,
                    "revised_prompt": result.prompt if upsampled else "",
                },
            )
        if result.finished:
            return Outcome(failure=failure_reason(result))
        return Outcome(progress=estimate_progress(result, created_at, now))


def _int(value: Any) -> int | None:
    return int(value) if value is not None and value != "" else None


def _float(value: Any) -> float | None:
    return float(value) if value is not None and value != "" else None
