"""Recraft (upstream-api.md §13): synchronous image jobs in six modes.

* generate: 1-6 images from a prompt, in a Recraft style (raster, or SVG for the vector
  styles) or in a custom style made here (`style_id`);
* create_style: a custom style from 1-5 reference images; the result is its id, which the job
  page offers to generate with;
* vectorize (to SVG), remove_background, clarity_upscale, generative_upscale: one uploaded image.

Every result is fetched here rather than by the runner, because an SVG must be made safe
(`media_jobs.svg`) BEFORE it is stored: Studio serves results from its own origin, and an SVG
can carry scripts. Raster results are kept only when Pillow recognises them; an SVG that cannot
be read fails the job with the reason.

A style's reference images are kept like any upload (`services.store_uploads`), one params
entry each (`files_1` ... `files_5`), since a params value holds one upload.
"""

import io
import re
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from media_jobs.downloads import DownloadRefused, download
from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.midjourney import MultipleFileField
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from media_jobs.svg import SVG_MIME, UnsafeSvg, looks_like_svg, sanitize_svg
from studio.upstream import BadRequestError, RelayClient, recraft

GENERATE = "generate"
CREATE_STYLE = "create_style"
IMAGE_MODES = tuple(recraft.OPERATIONS)  # vectorize, remove_background, clarity/generative upscale
MODES = (GENERATE, CREATE_STYLE, *IMAGE_MODES)

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_STYLE_BYTES = 10 * 1024 * 1024  # all reference images together
STYLE_FILE_PREFIX = "files_"
# What a result download may be labelled: the bytes decide what it is (see `checked_result`).
RESULT_MIME_PREFIXES = ("image/", "text/xml", "application/xml", "application/octet-stream")
RASTER_MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

_SUBSTYLE = re.compile(r"^[a-z0-9_]{1,64}$")
_STYLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

STYLE_CHOICES = [
    ("realistic_image", _("Realistic image")),
    ("digital_illustration", _("Digital illustration")),
    ("vector_illustration", _("Vector illustration (SVG)")),
    ("icon", _("Icon (SVG)")),
    ("any", _("Any: Recraft chooses")),
]
SIZE_LABELS = {
    "1024x1024": _("Square"),
    "1365x1024": _("Landscape 4:3"),
    "1024x1365": _("Portrait 3:4"),
    "1536x1024": _("Landscape 3:2"),
    "1024x1536": _("Portrait 2:3"),
    "1820x1024": _("Landscape 16:9"),
    "1024x1820": _("Portrait 9:16"),
    "1024x2048": _("Portrait 1:2"),
    "2048x1024": _("Landscape 2:1"),
    "1434x1024": _("Landscape 7:5"),
    "1024x1434": _("Portrait 5:7"),
    "1024x1280": _("Portrait 4:5"),
    "1280x1024": _("Landscape 5:4"),
    "1024x1707": _("Portrait 3:5"),
    "1707x1024": _("Landscape 5:3"),
}


class ResultRefused(Exception):
    """A result file that Studio will not keep; the message says why, for the job page."""


class RecraftForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            (GENERATE, _("Generate: images from a prompt")),
            (CREATE_STYLE, _("Create a style: from 1 to 5 reference images")),
            ("vectorize", _("Vectorize: turn an image into an SVG")),
            ("remove_background", _("Remove background: a PNG with transparency")),
            ("clarity_upscale", _("Clarity upscale: a sharper, larger image")),
            ("generative_upscale", _("Generative upscale: larger, with new detail")),
        ],
        initial=GENERATE,
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=recraft.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For Generate: what to draw, up to 1,000 characters."),
    )
    style = forms.ChoiceField(
        label=_("Style"),
        choices=[("", _("Recraft's default (realistic image)")), *STYLE_CHOICES],
        required=False,
        help_text=_(
            "For Generate, or the base of a new style. The vector styles make SVG files. "
            "Leave it on the default when you use a custom style id."
        ),
    )
    substyle = forms.CharField(
        label=_("Substyle"),
        max_length=64,
        required=False,
        help_text=_(
            "Optional, for Generate with a style: a Recraft substyle name such as hand_drawn, "
            "pixel_art or line_art."
        ),
    )
    style_id = forms.CharField(
        label=_("Custom style id"),
        max_length=64,
        required=False,
        help_text=_("Optional, for Generate: the id of a style you created (instead of a style)."),
    )
    model = forms.ChoiceField(
        label=_("Model"),
        choices=[("recraftv3", "Recraft V3"), ("recraft20b", "Recraft 20B")],
        initial="recraftv3",
    )
    size = forms.ChoiceField(
        label=_("Size"),
        choices=[
            (size, f"{SIZE_LABELS[size]} {size.replace('x', ' x ')}") for size in recraft.SIZES
        ],
        initial="1024x1024",
    )
    n = forms.IntegerField(
        label=_("Images"),
        min_value=1,
        max_value=recraft.MAX_IMAGES,
        initial=1,
        help_text=_("For Generate: 1 to 6 images."),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_(
            "For Vectorize, Remove background and the upscales. PNG, JPEG or WebP, up to 5 MB."
        ),
    )
    # Named like the relay's field. Django moves declared fields into `base_fields`, so the
    # form's own `files` (the request's uploads) is not shadowed; only mypy sees a clash.
    files = MultipleFileField(  # type: ignore[assignment]
        label=_("Reference images"),
        required=False,
        help_text=_(
            "For Create a style: 1 to 5 images in the look you want. PNG, JPEG or WebP, "
            "up to 10 MB together."
        ),
    )

    def _mode(self) -> str:
        return str(self.data.get(self.add_prefix("mode")) or "")

    def clean_substyle(self) -> str:
        substyle = (self.cleaned_data.get("substyle") or "").strip()
        if substyle and not _SUBSTYLE.match(substyle):
            raise forms.ValidationError(
                _("Write a substyle name in lower case with _ between words, such as hand_drawn.")
            )
        return substyle

    def clean_style_id(self) -> str:
        style_id = (self.cleaned_data.get("style_id") or "").strip()
        if style_id and not _STYLE_ID.match(style_id):
            raise forms.ValidationError(
                _("A style id is the code a created style got, such as 229b2a75-05e4-4580-85f9.")
            )
        return style_id

    def clean_image(self) -> Any:
        if self._mode() not in IMAGE_MODES:
            return None  # a file left in the form is not sent in this mode: nothing to check
        return clean_image_upload(
            self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS, max_bytes=MAX_IMAGE_BYTES
        )

    def clean_files(self) -> list[UploadedFile]:
        if self._mode() != CREATE_STYLE:
            return []
        uploads: list[UploadedFile] = self.cleaned_data.get("files") or []
        if len(uploads) > recraft.MAX_STYLE_FILES:
            raise forms.ValidationError(_("Upload at most five reference images."))
        checked = [
            clean_image_upload(upload, formats=STILL_IMAGE_FORMATS, max_bytes=MAX_STYLE_BYTES)
            for upload in uploads
        ]
        if sum(upload.size or 0 for upload in checked) > MAX_STYLE_BYTES:
            raise forms.ValidationError(
                gettext("The reference images are larger than %(limit)s together.")
                % {"limit": filesizeformat(MAX_STYLE_BYTES)}
            )
        return checked

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode")
        if mode == GENERATE:
            self._check_generate(data)
        elif mode == CREATE_STYLE:
            self._check_create_style(data)
        elif mode in IMAGE_MODES:
            if not data.get("image") and "image" not in self.errors:
                self.add_error("image", _("Upload the image to work on."))
            data.update(prompt="", style="", substyle="", style_id="")
        # Only what the mode sends is kept: no uploads a job will not use.
        if mode != CREATE_STYLE:
            data.pop("files", None)
        if mode not in IMAGE_MODES:
            data["image"] = None
        return data

    def _check_generate(self, data: dict[str, Any]) -> None:
        if not (data.get("prompt") or "").strip() and "prompt" not in self.errors:
            self.add_error("prompt", _("Write a prompt: it is all Recraft has to go on."))
        style, style_id = data.get("style") or "", data.get("style_id") or ""
        if style and style_id:
            self.add_error(
                "style_id",
                _("Use either a style or a custom style id, not both: clear one of them."),
            )
        substyle = data.get("substyle") or ""
        if substyle and not style_id and style in ("", "any"):
            self.add_error("substyle", _("Pick the style this substyle belongs to."))
        if substyle and style_id:
            self.add_error("substyle", _("A custom style takes no substyle: clear it."))

    def _check_create_style(self, data: dict[str, Any]) -> None:
        if (data.get("style") or "") not in recraft.BASE_STYLES:
            self.add_error(
                "style", _("Pick the style the new one builds on (any style but “Any”).")
            )
        uploads = data.get("files") or []
        if "files" not in self.errors and not 1 <= len(uploads) <= recraft.MAX_STYLE_FILES:
            self.add_error("files", _("Upload 1 to 5 reference images."))
        for index, upload in enumerate(uploads, start=1):
            data[f"{STYLE_FILE_PREFIX}{index}"] = upload
        data.pop("files", None)
        data.update(prompt="", substyle="", style_id="")


# --- results --------------------------------------------------------------------------------


def checked_result(content: bytes, declared_mime: str, stem: str) -> ResultFile:
    """A result as Studio keeps it: an SVG sanitised, a raster image as Pillow reads it.
    Raises ResultRefused (with UnsafeSvg's reason for an SVG that cannot be read)."""
    if declared_mime == SVG_MIME or looks_like_svg(content):
        try:
            clean = sanitize_svg(content)
        except UnsafeSvg as error:
            raise ResultRefused(
                gettext("Recraft's SVG could not be made safe to show: %(why)s") % {"why": error}
            ) from error
        return ResultFile(content=clean, mime=SVG_MIME, name=f"{stem}.svg")
    mime = raster_mime(content)
    if not mime:
        raise ResultRefused(gettext("The relay sent a file that is neither an image nor an SVG."))
    return ResultFile(content=content, mime=mime, name=f"{stem}.{EXTENSIONS[mime]}")


def raster_mime(content: bytes) -> str:
    """The media type of a PNG / JPEG / WebP / GIF that Pillow can read, else ""."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            image_format = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return ""
    return RASTER_MIMES.get(image_format, "")


def fetch_result(image: recraft.RecraftImage, stem: str) -> ResultFile:
    """The image's bytes (inline base64 or downloaded under the guarded downloader), checked.
    Synchronous: the downloader must not run on an event loop."""
    if image.b64_json:
        return checked_result(image.content(), "", stem)
    try:
        fetched = download(image.url, allowed_mime_prefixes=RESULT_MIME_PREFIXES)
    except DownloadRefused as refused:
        raise ResultRefused(
            gettext("The result could not be kept: %(why)s") % {"why": refused}
        ) from refused
    return checked_result(fetched.content, fetched.mime, stem)


def _upload_file(reference: dict[str, Any]) -> recraft.UploadFile:
    content = read_upload(reference)
    mime = str(reference.get("mime") or "image/png")
    extension = EXTENSIONS.get(mime, "png")
    return recraft.UploadFile(name=f"image.{extension}", content=content, mime=mime)


def _style_references(params: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(
        (key for key in params if key.startswith(STYLE_FILE_PREFIX)),
        key=lambda key: int(key.removeprefix(STYLE_FILE_PREFIX) or 0),
    )
    return [params[key] for key in keys if isinstance(params[key], dict)]


_fetch_result = sync_to_async(fetch_result)
_read_upload_file = sync_to_async(_upload_file)


class RecraftKind(JobKind):
    slug = "recraft"
    family = "recraft"
    label = _("Recraft images")
    description = _(
        "Generate images (also as SVG) in Recraft's styles or your own, create a style from "
        "reference images, vectorize an image, remove its background or upscale it."
    )
    form_class = RecraftForm
    result_template = "media_jobs/results/recraft.html"
    image_uses = (
        ImageUse(form_field="image", label=_("Vectorize (Recraft)"), initial={"mode": "vectorize"}),
        ImageUse(
            form_field="image",
            label=_("Remove background (Recraft)"),
            initial={"mode": "remove_background"},
        ),
        ImageUse(
            form_field="image",
            label=_("Clarity upscale (Recraft)"),
            initial={"mode": "clarity_upscale"},
        ),
        ImageUse(
            form_field="image",
            label=_("Generative upscale (Recraft)"),
            initial={"mode": "generative_upscale"},
        ),
    )
    # Only generate sends the prompt, substyle, custom style, model, size and count
    # (recraft.generate); a new style takes its base style and the reference images; the image
    # operations take the one image (recraft.process_image).
    field_modes = {
        "prompt": (GENERATE,),
        "style": (GENERATE, CREATE_STYLE),
        "substyle": (GENERATE,),
        "style_id": (GENERATE,),
        "model": (GENERATE,),
        "size": (GENERATE,),
        "n": (GENERATE,),
        "image": IMAGE_MODES,
        "files": (CREATE_STYLE,),
    }

    def make_form(
        self,
        user: Any,
        data: Any = None,
        files: Any = None,
        *,
        initial: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> forms.Form:
        """The form, prefilled from the page's query by links such as a created style's
        "Generate with this style" (`?mode=generate&style_id=...`)."""
        initial = dict(initial or {})
        query = query or {}
        if (mode := str(query.get("mode") or "")) in MODES and not query.get("input"):
            initial["mode"] = mode
        if style_id := str(query.get("style_id") or "").strip()[:64]:
            initial.update(style_id=style_id, style="", substyle="")
        return self.form_class(data, files, initial=initial)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or GENERATE
        try:
            if mode == GENERATE:
                return await _generate(client, params)
            if mode == CREATE_STYLE:
                return await _create_style(client, params)
            if mode in IMAGE_MODES:
                return await _process(client, mode, params)
        except ResultRefused as refused:
            return Outcome(failure=str(refused))
        raise BadRequestError(f"unknown Recraft mode {mode!r}")


async def _generate(client: RelayClient, params: dict[str, Any]) -> Outcome:
    images = await recraft.generate(
        client,
        params["prompt"],
        style=params.get("style") or None,
        substyle=params.get("substyle") or None,
        style_id=params.get("style_id") or None,
        model=params.get("model") or None,
        size=params.get("size") or None,
        n=int(params.get("n") or 1),
    )
    files = [await _fetch_result(image, f"image-{index}") for index, image in enumerate(images, 1)]
    return Outcome(
        done=True,
        files=files,
        result={
            "image_ids": [image.image_id for image in images if image.image_id],
            "svg_cleaned": any(item.mime == SVG_MIME for item in files),
        },
    )


async def _create_style(client: RelayClient, params: dict[str, Any]) -> Outcome:
    references = [await _read_upload_file(ref) for ref in _style_references(params)]
    style = str(params.get("style") or "")
    style_id = await recraft.create_style(client, style, references)
    return Outcome(done=True, result={"style_id": style_id, "base_style": style})


async def _process(client: RelayClient, mode: str, params: dict[str, Any]) -> Outcome:
    upload = await _read_upload_file(params["image"])
    image = await recraft.process_image(client, mode, upload)
    stem = {"vectorize": "vector", "remove_background": "cutout"}.get(mode, "upscaled")
    kept = await _fetch_result(image, stem)
    if mode == "vectorize" and kept.mime != SVG_MIME:
        return Outcome(failure=gettext("Recraft answered the vectorize request without an SVG."))
    return Outcome(done=True, files=[kept], result={"svg_cleaned": kept.mime == SVG_MIME})
