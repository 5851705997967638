"""The Recraft family (`/recraft/v1/*`, Recraft's official format, upstream-api.md §13).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Every call is
synchronous on the relay: the result (or its URL, which expires) is in the reply.

* `generate`: JSON to `/images/generations`, answered OpenAI-like
  `{"created", "data": [{"url" | "b64_json", "image_id"}]}`. Vector styles answer SVG files.
* `create_style`: multipart `style` + 1-5 reference images, answered `{"id"}`: a style id for
  `generate(style_id=...)`.
* `vectorize`, `remove_background`, `clarity_upscale`, `generative_upscale`: multipart `file`,
  answered `{"image": {"url"}}` (or `b64_json`).

Errors come in two shapes: the relay's own OpenAI-style `{"error": {...}}` (auth, quota,
channels, unknown routes) and Recraft's, passed through, `{"code": "<token>", "message": "..."}`
with a 4xx/5xx status (Recraft sometimes answers plain text, e.g. `request unauthorized`).
`errors.error_from_response` reads both; Recraft's code tokens then refine the class (a spent
balance is a quota error whatever the status).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, RelayClient
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    error_from_payload,
)
from studio.upstream.lenient import as_str

STYLES: Final = (
    "realistic_image",
    "digital_illustration",
    "vector_illustration",
    "icon",
    "any",
)
# A custom style is built on one of these ("any" is no base).
BASE_STYLES: Final = STYLES[:4]
# Styles whose images Recraft draws as vectors: the results are SVG files.
VECTOR_STYLES: Final = frozenset({"vector_illustration", "icon"})
MODELS: Final = ("recraftv3", "recraft20b")
SIZES: Final = (
    "1024x1024",
    "1365x1024",
    "1024x1365",
    "1536x1024",
    "1024x1536",
    "1820x1024",
    "1024x1820",
    "1024x2048",
    "2048x1024",
    "1434x1024",
    "1024x1434",
    "1024x1280",
    "1280x1024",
    "1024x1707",
    "1707x1024",
)
RESPONSE_FORMATS: Final = ("url", "b64_json")
MAX_PROMPT_CHARS: Final = 1000
MAX_IMAGES: Final = 6
MAX_STYLE_FILES: Final = 5
# The multipart field the reference images travel in (repeated once per image), as the relay's
# documentation names it (§13.2); Recraft's own API calls it `images`. Overridable per call.
STYLE_FILES_FIELD: Final = "files"

# image operation -> path name in paths.py
OPERATIONS: Final = {
    "vectorize": "recraft_vectorize",
    "remove_background": "recraft_remove_background",
    "clarity_upscale": "recraft_clarity_upscale",
    "generative_upscale": "recraft_generative_upscale",
}


@dataclass(frozen=True)
class RecraftImage:
    """One result: a URL to download (it expires) or the bytes as base64."""

    url: str = ""
    b64_json: str = ""
    image_id: str = ""

    def content(self) -> bytes:
        """The decoded base64 bytes ("" when the result is a URL); ProtocolError if unreadable."""
        if not self.b64_json:
            return b""
        data = self.b64_json
        if data.startswith("data:") and "," in data:
            data = data.split(",", 1)[1]
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("the relay sent a Recraft image whose base64 is broken") from None


@dataclass(frozen=True)
class UploadFile:
    """A file to send: its name, bytes and media type."""

    name: str
    content: bytes
    mime: str = "image/png"


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient,
    prompt: str,
    *,
    style: str | None = None,
    substyle: str | None = None,
    style_id: str | None = None,
    model: str | None = None,
    size: str | None = None,
    n: int | None = None,
    response_format: str | None = None,
    colors: Sequence[tuple[int, int, int]] = (),
    background_color: tuple[int, int, int] | None = None,
) -> tuple[RecraftImage, ...]:
    """Generate 1-6 images from a prompt (§13.1). `style_id` (a custom style) and `style` are
    mutually exclusive; empty optional values are left out so Recraft's defaults apply."""
    if style and style_id:
        raise BadRequestError("Recraft takes either a style or a style_id, not both")
    body: dict[str, Any] = {"prompt": prompt}
    for key, value in (
        ("style", style),
        ("substyle", substyle),
        ("style_id", style_id),
        ("model", model),
        ("size", size),
        ("n", n),
        ("response_format", response_format),
    ):
        if value is not None and value != "":
            body[key] = value
    controls = _controls(colors, background_color)
    if controls:
        body["controls"] = controls
    payload = await _call(client, "recraft_generate", json=body)
    images = parse_generation(payload)
    if not images:
        raise ProtocolError("the relay answered the Recraft generation without any image")
    return images


async def create_style(
    client: RelayClient,
    style: str,
    files: Sequence[UploadFile],
    *,
    field_name: str = STYLE_FILES_FIELD,
) -> str:
    """Create a custom style from 1-5 reference images (§13.2); returns its id."""
    parts = [(field_name, (item.name, item.content, item.mime)) for item in files]
    payload = await _call(client, "recraft_styles", data={"style": style}, files=parts)
    style_id = parse_style_id(payload)
    if not style_id:
        raise ProtocolError("the relay created the Recraft style but sent no id")
    return style_id


async def process_image(
    client: RelayClient,
    operation: str,
    file: UploadFile,
    *,
    response_format: str | None = None,
) -> RecraftImage:
    """One of the image operations of §13.3 (`vectorize`, `remove_background`,
    `clarity_upscale`, `generative_upscale`) on an uploaded image."""
    try:
        path_name = OPERATIONS[operation]
    except KeyError:
        raise BadRequestError(f"unknown Recraft image operation {operation!r}") from None
    data = {"response_format": response_format} if response_format else None
    payload = await _call(
        client, path_name, data=data, files=[("file", (file.name, file.content, file.mime))]
    )
    image = parse_image_result(payload)
    if not image.url and not image.b64_json:
        raise ProtocolError("the relay answered the Recraft image operation without an image")
    return image


async def vectorize(client: RelayClient, file: UploadFile) -> RecraftImage:
    return await process_image(client, "vectorize", file)


async def remove_background(client: RelayClient, file: UploadFile) -> RecraftImage:
    return await process_image(client, "remove_background", file)


async def clarity_upscale(client: RelayClient, file: UploadFile) -> RecraftImage:
    return await process_image(client, "clarity_upscale", file)


async def generative_upscale(client: RelayClient, file: UploadFile) -> RecraftImage:
    return await process_image(client, "generative_upscale", file)


async def _call(client: RelayClient, path_name: str, **kwargs: Any) -> dict[str, Any]:
    try:
        payload = await client._request_json("POST", path_name, timeout=MEDIA_TIMEOUT, **kwargs)
    except UpstreamError as error:
        raise with_recraft_class(error) from None
    if is_error_payload(payload):
        # A Recraft error passed on with HTTP 200 by a lenient relay.
        raise with_recraft_class(
            error_from_payload(payload, status=200, secret=client.credentials.api_key)
        )
    return payload


def _controls(
    colors: Sequence[tuple[int, int, int]], background: tuple[int, int, int] | None
) -> dict[str, Any]:
    controls: dict[str, Any] = {}
    if colors:
        controls["colors"] = [{"rgb": list(rgb)} for rgb in colors]
    if background is not None:
        controls["background_color"] = {"rgb": list(background)}
    return controls


# --- reading replies ------------------------------------------------------------------------


def parse_generation(payload: Mapping[str, Any]) -> tuple[RecraftImage, ...]:
    """The images of a generation: `data` as a list of objects (or bare URL strings)."""
    data = payload.get("data")
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        data = payload.get("images") if isinstance(payload.get("images"), list) else []
    images = []
    for item in data or []:
        image = _image(item)
        if image.url or image.b64_json:
            images.append(image)
    return tuple(images)


def parse_image_result(payload: Mapping[str, Any]) -> RecraftImage:
    """`{"image": {"url"}}` as Recraft sends it; also `{"image": "<url>"}`, a top-level `url`
    / `b64_json`, or an OpenAI-like `data` list, as relays reshape it."""
    image = payload.get("image")
    if image is not None:
        return _image(image)
    if payload.get("url") or payload.get("b64_json"):
        return _image(payload)
    images = parse_generation(payload)
    return images[0] if images else RecraftImage()


def parse_style_id(payload: Mapping[str, Any]) -> str:
    """`{"id"}`; also `{"style_id"}` or either inside `data`."""
    for source in (payload, payload.get("data")):
        if isinstance(source, Mapping):
            for key in ("id", "style_id"):
                if value := as_str(source.get(key)).strip():
                    return value
    return ""


def is_error_payload(payload: Mapping[str, Any]) -> bool:
    """A Recraft error object (`code` + `message`, no result) inside a 2xx reply."""
    has_result = any(key in payload for key in ("data", "image", "id", "style_id", "url"))
    return not has_result and bool(payload.get("code")) and bool(payload.get("message"))


def _image(item: object) -> RecraftImage:
    if isinstance(item, str):
        return RecraftImage(url=item.strip())
    if not isinstance(item, Mapping):
        return RecraftImage()
    return RecraftImage(
        url=as_str(item.get("url")).strip(),
        b64_json=as_str(item.get("b64_json")).strip(),
        image_id=as_str(item.get("image_id") or item.get("id")).strip(),
    )


# Recraft's error code tokens (and words relays use for them) -> what they mean for Studio.
_TOKEN_CLASSES: Final[tuple[tuple[str, type[UpstreamError]], ...]] = (
    ("not_enough_credits", QuotaError),
    ("insufficient_credits", QuotaError),
    ("insufficient_balance", QuotaError),
    ("rate_limit", RateLimitedError),
    ("too_many_requests", RateLimitedError),
    ("unauthorized", AuthError),
    ("invalid_token", AuthError),
    ("internal_error", UnavailableError),
    ("internal_server_error", UnavailableError),
    ("service_unavailable", UnavailableError),
)


def error_class_for(token: str) -> type[UpstreamError] | None:
    """The class a Recraft error code token stands for; None for a token it does not list."""
    token = token.casefold()
    return next((cls for word, cls in _TOKEN_CLASSES if word in token), None)


def with_recraft_class(error: UpstreamError) -> UpstreamError:
    """The error reclassified by its Recraft code token when the HTTP status alone misled
    (a 400 `not_enough_credits` is a spent balance, not a bad request)."""
    error_class = error_class_for(error.relay_code or "")
    if error_class is None or type(error) is error_class:
        return error
    if error_class is UnavailableError and error.status is not None and error.status < 500:
        return error  # a 4xx says the request itself was refused: not worth a retry
    return error_class(
        error.message,
        status=error.status,
        relay_code=error.relay_code,
        retry_after=error.retry_after,
    )
