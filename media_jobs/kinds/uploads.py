"""Uploaded images as the relay's families want them, checked in one place for every kind that
takes pictures (Midjourney's describe/blend/reference images, face swap, Kling, Runway).

An image is judged by its content (never by its name or the type the browser claims), against
the family's limits: a set of formats, a byte limit (10 MB unless the family says less), and
optionally a smallest side and a widest aspect ratio. Every refusal names the file, so a field
holding several images (Midjourney's blend) says which one is wrong.
"""

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django import forms
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise  # what gettext_lazy returns, for mypy

MAX_IMAGE_BYTES = 10 * 1024 * 1024


def read_upload(reference: Mapping[str, Any]) -> bytes:
    """The bytes of an upload kept with `services.store_uploads` (its reference's `path`)."""
    with default_storage.open(str(reference["path"]), "rb") as stored:
        return bytes(stored.read())


@dataclass(frozen=True, eq=False)
class ImageFormats:
    """The formats a family takes (Pillow's name -> media type), with the refusal that lists
    them: kept together so that the message never drifts from what is checked."""

    mimes: Mapping[str, str]
    refusal: "str | _StrPromise"  # with %(name)s for the file

    @property
    def accept(self) -> str:
        """For a file input's `accept` attribute."""
        return ",".join(self.mimes.values())


_MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def _formats(names: tuple[str, ...], refusal: "str | _StrPromise") -> ImageFormats:
    return ImageFormats({name: _MIMES[name] for name in names}, refusal)


# Midjourney.
IMAGE_FORMATS = _formats(
    ("PNG", "JPEG", "WEBP", "GIF"), _("%(name)s is not a PNG, JPEG, WebP or GIF image.")
)
# Face swap and Runway: no GIF.
STILL_IMAGE_FORMATS = _formats(
    ("PNG", "JPEG", "WEBP"), _("%(name)s is not a PNG, JPEG or WebP image.")
)
# Kling.
PNG_OR_JPEG_FORMATS = _formats(("PNG", "JPEG"), _("%(name)s is not a PNG or JPEG image."))


class ReadableFile(Protocol):
    """An upload or a stored file: what the check reads from."""

    name: str | None

    @property
    def size(self) -> int | None: ...

    def read(self, size: int = -1) -> bytes: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...


@dataclass(frozen=True)
class CheckedImage:
    content: bytes
    mime: str
    width: int
    height: int

    @property
    def data_uri(self) -> str:
        """`data:<mime>;base64,…`, as the Midjourney, face swap and Runway bodies take it."""
        return f"data:{self.mime};base64,{base64.b64encode(self.content).decode('ascii')}"


def check_image(
    upload: ReadableFile,
    *,
    formats: ImageFormats = IMAGE_FORMATS,
    max_bytes: int = MAX_IMAGE_BYTES,
    min_side: int = 0,
    max_ratio: float = 0.0,
) -> CheckedImage:
    """The image read and judged by Pillow, or a ValidationError naming the file and what is
    wrong. `min_side` (pixels) and `max_ratio` (longer side : shorter side) are checked when
    given. Reads at most `max_bytes` + 1 bytes, whatever size the file claims."""
    name = upload.name or ""
    too_large = forms.ValidationError(
        gettext("%(name)s is larger than %(limit)s.")
        % {"name": name, "limit": filesizeformat(max_bytes)}
    )
    if upload.size is not None and upload.size > max_bytes:
        raise too_large
    upload.seek(0)
    content = upload.read(max_bytes + 1)
    upload.seek(0)
    if len(content) > max_bytes:
        raise too_large
    try:
        with Image.open(io.BytesIO(content)) as image:
            image_format = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        image_format, width, height = "", 0, 0
    mime = formats.mimes.get(image_format)
    if mime is None or width <= 0 or height <= 0:
        raise forms.ValidationError(formats.refusal, params={"name": name})
    if min_side and min(width, height) < min_side:
        raise forms.ValidationError(
            gettext(
                "%(name)s is %(width)d x %(height)d pixels; each side must be at least %(min)d."
            )
            % {"name": name, "width": width, "height": height, "min": min_side}
        )
    if max_ratio and not 1 / max_ratio <= width / height <= max_ratio:
        raise forms.ValidationError(
            gettext(
                "%(name)s is too narrow or too wide: keep it between 1:%(ratio)s and %(ratio)s:1."
            )
            % {"name": name, "ratio": f"{max_ratio:g}"}
        )
    return CheckedImage(content=content, mime=mime, width=width, height=height)


def clean_image_upload(
    value: Any,
    *,
    formats: ImageFormats = IMAGE_FORMATS,
    max_bytes: int = MAX_IMAGE_BYTES,
    min_side: int = 0,
    max_ratio: float = 0.0,
) -> Any:
    """A form field's value: a new upload is checked (as `check_image`) and labelled with its
    real media type, which `services.store_uploads` keeps. Anything else (nothing, or a stored
    reference from "use these settings again", checked when it was uploaded) passes unchanged."""
    if not isinstance(value, UploadedFile):
        return value
    checked = check_image(
        value, formats=formats, max_bytes=max_bytes, min_side=min_side, max_ratio=max_ratio
    )
    value.content_type = checked.mime
    return value
