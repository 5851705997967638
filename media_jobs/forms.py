"""The dialogs of follow-up actions that need more than a press (Midjourney's Vary Region and
Custom Zoom, upstream-api.md §4.8): what the user gives, checked here before a child job exists,
so that a bad mask or prompt leaves nothing half-made."""

import base64
import binascii
import io
import math
import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from media_jobs.models import Job

MAX_PROMPT_CHARS = 4000
MAX_MASK_BYTES = 5 * 1024 * 1024
# Midjourney's largest upscales are about 4096 px a side, and Studio's never more than that
# squared: a PNG that claims more pixels is refused before it is decoded (a "zip bomb").
MAX_MASK_PIXELS = 8192 * 8192
PNG_DATA_URI_PREFIX = "data:image/png;base64,"
# Midjourney's Custom Zoom factor: above 1 (no zoom) and at most 2.
MIN_ZOOM, MAX_ZOOM = 1.0, 2.0
DEFAULT_ZOOM = "2"

# "--zoom 1.5" (also "--zoom=1.5"); a following "--ar" is the next parameter, not the factor.
_ZOOM = re.compile(r"--zoom\b(?:\s*=?\s*(?!--)(\S+))?", re.IGNORECASE)


class ActionDialogForm(forms.Form):
    """A dialog's form, bound to the job whose button opens it."""

    name = "dialog"  # the dialog's name on the page; also keeps field ids apart between dialogs

    def __init__(
        self,
        data: Any = None,
        *,
        job: Job,
        image_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.job = job
        self.image_size = image_size
        kwargs.setdefault("initial", {"prompt": self.initial_prompt(job)})
        kwargs.setdefault("auto_id", f"id_{self.name}_%s")
        super().__init__(data, **kwargs)

    def initial_prompt(self, job: Job) -> str:
        return job.prompt

    def job_params(self) -> dict[str, Any]:
        """What the child job's params take from the dialog (once the form is valid)."""
        return {"prompt": self.cleaned_data["prompt"]}


class VaryRegionForm(ActionDialogForm):
    name = "vary_region"
    prompt = forms.CharField(
        label=_("Prompt (optional)"),
        max_length=MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What to put in the painted region. Left empty, the image's prompt is used."),
    )
    mask = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_prompt(self) -> str:
        prompt = str(self.cleaned_data.get("prompt") or "").strip()
        return prompt or self.job.prompt

    def clean_mask(self) -> str:
        return check_mask(str(self.cleaned_data.get("mask") or ""), self.image_size)

    def job_params(self) -> dict[str, Any]:
        return {"prompt": self.cleaned_data["prompt"], "mask": self.cleaned_data["mask"]}


class CustomZoomForm(ActionDialogForm):
    name = "custom_zoom"
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "End it with --zoom and a factor above 1 and up to 2: --zoom 2 zooms out as far as "
            "Zoom Out 2x, --zoom 1.5 as far as Zoom Out 1.5x."
        ),
        error_messages={"required": _("Write a prompt ending with --zoom and a factor.")},
    )

    def initial_prompt(self, job: Job) -> str:
        return with_zoom(job.prompt)

    def clean_prompt(self) -> str:
        prompt = str(self.cleaned_data.get("prompt") or "").strip()
        check_zoom(prompt)
        return prompt


DIALOG_FORMS: dict[str, type[ActionDialogForm]] = {
    form.name: form for form in (VaryRegionForm, CustomZoomForm)
}


def with_zoom(prompt: str, zoom: str = DEFAULT_ZOOM) -> str:
    """The prompt with its --zoom (if any) replaced by `--zoom <zoom>` at the end."""
    bare = " ".join(_ZOOM.sub(" ", prompt).split())
    return f"{bare} --zoom {zoom}".strip()


def check_zoom(prompt: str) -> float:
    """The prompt's --zoom factor, or a ValidationError saying what is wrong with it."""
    found = list(_ZOOM.finditer(prompt))
    if not found:
        raise forms.ValidationError(
            _("Add --zoom and a factor above 1 and up to 2, for example --zoom 1.5."),
            code="zoom_missing",
        )
    if len(found) > 1:
        raise forms.ValidationError(_("Give --zoom only once."), code="zoom_twice")
    written = found[0].group(1) or ""
    try:
        zoom = float(written)
    except ValueError:
        zoom = math.nan
    if not (math.isfinite(zoom) and MIN_ZOOM < zoom <= MAX_ZOOM):
        raise forms.ValidationError(
            _("The --zoom factor must be above 1 and at most 2 (it is “%(value)s”)."),
            code="zoom_range",
            params={"value": written[:20]},
        )
    return zoom


def check_mask(value: str, image_size: tuple[int, int] | None) -> str:
    """A region mask as the relay wants it (§4.8): a PNG data URI, white where to redraw and
    black where to keep, as large as the image. Returns it without stray whitespace."""
    value = value.strip()
    if not value:
        raise forms.ValidationError(_("Paint the region to redraw first."), code="mask_missing")
    if not value[: len(PNG_DATA_URI_PREFIX)].lower() == PNG_DATA_URI_PREFIX:
        raise forms.ValidationError(_("The mask must be a PNG image."), code="mask_format")
    encoded = re.sub(r"\s+", "", value[len(PNG_DATA_URI_PREFIX) :])
    if len(encoded) > math.ceil(MAX_MASK_BYTES / 3) * 4:
        raise forms.ValidationError(_("The mask is larger than 5 MB."), code="mask_size")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    width, height = _png_size(raw)
    if image_size and (width, height) != tuple(image_size):
        raise forms.ValidationError(
            _(
                "The mask must be as large as the image, %(width)d by %(height)d pixels; "
                "it is %(mask_width)d by %(mask_height)d."
            ),
            code="mask_dimensions",
            params={
                "width": image_size[0],
                "height": image_size[1],
                "mask_width": width,
                "mask_height": height,
            },
        )
    if not _has_white(raw):
        raise forms.ValidationError(
            _("The mask is empty: paint the region to redraw."), code="mask_empty"
        )
    return PNG_DATA_URI_PREFIX + encoded


def _png_size(raw: bytes) -> tuple[int, int]:
    unreadable = forms.ValidationError(_("The mask could not be read."), code="mask_unreadable")
    if not raw:
        raise unreadable
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG":
                raise forms.ValidationError(_("The mask must be a PNG image."), code="mask_format")
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise unreadable from error
    except Image.DecompressionBombError as error:
        raise unreadable from error
    if width < 1 or height < 1 or width * height > MAX_MASK_PIXELS:
        raise unreadable
    return width, height


def _has_white(raw: bytes) -> bool:
    """Whether any pixel is light (white = redraw); decoding errors mean an unreadable mask."""
    try:
        with Image.open(io.BytesIO(raw)) as image:
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise forms.ValidationError(
            _("The mask could not be read."), code="mask_unreadable"
        ) from None
    return gray.point(lambda level: 255 if level >= 128 else 0).getbbox() is not None
