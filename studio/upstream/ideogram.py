"""The Ideogram family (`/ideogram/*`, upstream-api.md §11), in two request formats.

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Staff choose the
format with the family option `ideogram_format` (`client.credentials.options`, read by
`format_of`): "official" (the default) or "web".

Official format (§11.1): every call is synchronous, the reply carries the result.

* generate: JSON `{"image_request": {...}}`.
* remix and upscale: multipart, `image_request` as a JSON *string* plus the `image_file`.
* describe: multipart `image_file` only; the reply is `{"descriptions": [{"text"}]}`.

Image replies are `{"created", "data": [{url, prompt, resolution, is_image_safe, seed,
style_type}]}`. An image Ideogram flags `is_image_safe: false` comes without a usable URL (or
with one that must not be shown): it is never handed out, only counted (`withheld`).

Errors: Ideogram's own 4xx bodies (`{"detail": "..."}`, a FastAPI list of `{loc, msg}` for
validation, or `{"error": "..."}` when a relay rewrites them) and the relay's OpenAI shape are
read by `error_from_response`; a 2xx reply that carries such an error instead of `data` raises
the same way.

Web format, the relay's "reverse" group (§11.2: 文生图, 合成图, 放大图片, 图片描述 and
ideogram任务查询), grade C throughout: only the task query was ever seen. The `web_*` calls
send the same bodies as the official ones to their own paths (`ideogram_web_*`, guesses,
overridable): a guess too, resting only on the reseller copying shapes. A submit is read leniently
(`parse_submission`): a `request_id` (top level or in `data`, string or number) means the
work is queued and is polled with `web_task` (POST `{"request_id"}` to the task query); a
reply already in the official shape (`data: [{url…}]`, `descriptions`) is the result. The
task query answers the Ideogram web app's structure, `{"sampling_requests": [{request_id,
is_completed, completion_percentage, has_started, width, height, seed, user_prompt,
responses: [{response_id, url?}]}]}` (also inside `data`), read by `parse_task`. Errors are
read as in the official format.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Unpack

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import BadRequestError, ProtocolError, error_from_payload
from studio.upstream.lenient import as_str

FORMAT_OFFICIAL: Final = "official"
FORMAT_WEB: Final = "web"
FORMATS: Final = (FORMAT_OFFICIAL, FORMAT_WEB)
FORMAT_OPTION: Final = "ideogram_format"
MAX_REQUEST_ID_CHARS: Final = 100  # a job keeps it with a short prefix in 128 characters

ASPECT_RATIOS: Final = (
    "ASPECT_1_1",
    "ASPECT_16_9",
    "ASPECT_9_16",
    "ASPECT_4_3",
    "ASPECT_3_4",
    "ASPECT_3_2",
    "ASPECT_2_3",
    "ASPECT_16_10",
    "ASPECT_10_16",
    "ASPECT_3_1",
    "ASPECT_1_3",
)
MODELS: Final = ("V_2", "V_2_TURBO", "V_1", "V_1_TURBO")
DEFAULT_MODEL: Final = "V_2"  # what Ideogram uses when no model is sent
# Style types and colour palettes exist from V_2 on.
STYLE_MODELS: Final = frozenset({"V_2", "V_2_TURBO"})
MAGIC_PROMPT_OPTIONS: Final = ("AUTO", "ON", "OFF")
STYLE_TYPES: Final = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME")
COLOR_PALETTES: Final = (
    "EMBER",
    "FRESH",
    "JUNGLE",
    "MAGIC",
    "MELON",
    "MOSAIC",
    "PASTEL",
    "ULTRAMARINE",
)
MAX_SEED: Final = 2_147_483_647
MAX_NUM_IMAGES: Final = 8
WEIGHT_RANGE: Final = (1, 100)  # image_weight, resemblance and detail; 50 by default
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024

type ImageUpload = tuple[str, bytes, str]  # (file name, bytes, media type), as httpx takes it


@dataclass(frozen=True)
class IdeogramImage:
    url: str
    prompt: str = ""  # the prompt Ideogram used: with Magic Prompt on, its own rewrite
    resolution: str = ""  # "1312x736"
    seed: int | None = None
    style_type: str = ""


@dataclass(frozen=True)
class IdeogramResult:
    """The images of one call that may be shown, and how many Ideogram withheld as unsafe."""

    images: tuple[IdeogramImage, ...]
    withheld: int = 0
    created: str = ""  # ISO 8601, as Ideogram sends it


@dataclass(frozen=True)
class WebSubmission:
    """What a web-format submit answered: the `request_id` to poll, or (a relay that answers
    at once, in the official shape) the result itself: `result` for images, `descriptions`
    for describe."""

    request_id: str = ""
    result: IdeogramResult | None = None
    descriptions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class IdeogramTask:
    """One sampling request of the web format's task query."""

    request_id: str
    started: bool = False
    completed: bool = False
    progress: int = 0  # 0-100
    prompt: str = ""  # user_prompt: what was typed
    result: IdeogramResult = IdeogramResult(())  # the images with a link, and those withheld
    unlinked: int = 0  # responses without a link (and not flagged unsafe): not kept
    descriptions: tuple[str, ...] = ()  # a describe's texts


def format_of(client: RelayClient, fmt: str | None = None) -> str:
    """The format to speak: `fmt` when given, else the family option, else "official"."""
    chosen = (fmt or client.credentials.options.get(FORMAT_OPTION) or FORMAT_OFFICIAL).strip()
    chosen = chosen.lower()
    if chosen not in FORMATS:
        raise BadRequestError(f"unknown Ideogram format {chosen!r} (expected official or web)")
    return chosen


def supports_style(model: str | None) -> bool:
    """Whether `model` takes `style_type` and `color_palette` (V_2 and later; no model = V_2)."""
    return (model or DEFAULT_MODEL) in STYLE_MODELS


class ImageOptions(TypedDict, total=False):
    """The `image_request` fields of generate and remix (besides the prompt)."""

    aspect_ratio: str | None
    model: str | None
    magic_prompt_option: str | None
    style_type: str | None
    negative_prompt: str | None
    seed: int | None
    color_palette: str | None
    num_images: int | None


class RemixOptions(ImageOptions, total=False):
    image_weight: int | None  # 1-100, Ideogram's default 50: how closely to follow the image


class UpscaleOptions(TypedDict, total=False):
    prompt: str | None
    resemblance: int | None  # 1-100, default 50: faithfulness against new detail
    detail: int | None
    magic_prompt_option: str | None
    seed: int | None


def image_request(prompt: str | None = None, **fields: Any) -> dict[str, Any]:
    """The `image_request` object: empty values left out so Ideogram's defaults apply, a
    palette preset as `{"name": ...}`."""
    if fields.get("color_palette"):
        fields["color_palette"] = {"name": fields["color_palette"]}
    fields = {"prompt": prompt, **fields}
    return {key: value for key, value in fields.items() if value is not None and value != ""}


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient, prompt: str, **options: Unpack[ImageOptions]
) -> IdeogramResult:
    """Images from a prompt (POST /ideogram/generate, JSON)."""
    payload = await _post_json(client, "ideogram_generate", image_request(prompt, **options))
    return parse_images(payload, secret=client.credentials.api_key)


async def remix(
    client: RelayClient, image: ImageUpload, prompt: str, **options: Unpack[RemixOptions]
) -> IdeogramResult:
    """New images from an uploaded image and a prompt (POST /ideogram/remix, multipart)."""
    request = image_request(prompt, **options)
    payload = await _post_multipart(client, "ideogram_remix", image, request)
    return parse_images(payload, secret=client.credentials.api_key)


async def upscale(
    client: RelayClient, image: ImageUpload, **options: Unpack[UpscaleOptions]
) -> IdeogramResult:
    """A larger, sharper copy of an uploaded image (POST /ideogram/upscale, multipart)."""
    request = image_request(**options)
    payload = await _post_multipart(client, "ideogram_upscale", image, request)
    return parse_images(payload, secret=client.credentials.api_key)


async def describe(client: RelayClient, image: ImageUpload) -> tuple[str, ...]:
    """Prompts that describe an uploaded image (POST /ideogram/describe, multipart)."""
    payload = await _post_image(client, "ideogram_describe", image)
    return parse_descriptions(payload, secret=client.credentials.api_key)


async def _post_json(
    client: RelayClient, path_name: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    return await client._request_json(
        "POST", path_name, json={"image_request": request}, timeout=MEDIA_TIMEOUT
    )


async def _post_image(client: RelayClient, path_name: str, image: ImageUpload) -> dict[str, Any]:
    return await client._request_json(
        "POST", path_name, files={"image_file": image}, timeout=MEDIA_TIMEOUT
    )


async def _post_multipart(
    client: RelayClient, path_name: str, image: ImageUpload, request: Mapping[str, Any]
) -> dict[str, Any]:
    return await client._request_json(
        "POST",
        path_name,
        files={"image_file": image},
        # A JSON string in a form field, as Ideogram's multipart endpoints take it.
        data={"image_request": json.dumps(request, ensure_ascii=False)},
        timeout=MEDIA_TIMEOUT,
    )


# --- calls, web format (§11.2; paths and bodies are guesses) -------------------------------


async def web_generate(
    client: RelayClient, prompt: str, **options: Unpack[ImageOptions]
) -> WebSubmission:
    """文生图: queue images from a prompt (JSON `{"image_request"}`, as `generate` sends)."""
    payload = await _post_json(client, "ideogram_web_generate", image_request(prompt, **options))
    return parse_submission(payload, secret=client.credentials.api_key)


async def web_remix(
    client: RelayClient, image: ImageUpload, prompt: str, **options: Unpack[RemixOptions]
) -> WebSubmission:
    """合成图: queue new images from an uploaded image and a prompt (multipart, as `remix`)."""
    request = image_request(prompt, **options)
    payload = await _post_multipart(client, "ideogram_web_remix", image, request)
    return parse_submission(payload, secret=client.credentials.api_key)


async def web_upscale(
    client: RelayClient, image: ImageUpload, **options: Unpack[UpscaleOptions]
) -> WebSubmission:
    """放大图片: queue a larger copy of an uploaded image (multipart, as `upscale`)."""
    request = image_request(**options)
    payload = await _post_multipart(client, "ideogram_web_upscale", image, request)
    return parse_submission(payload, secret=client.credentials.api_key)


async def web_describe(client: RelayClient, image: ImageUpload) -> WebSubmission:
    """图片描述: describe an uploaded image (multipart `image_file`, as `describe`)."""
    payload = await _post_image(client, "ideogram_web_describe", image)
    return parse_submission(payload, secret=client.credentials.api_key, describe=True)


async def web_task(client: RelayClient, request_id: str) -> IdeogramTask | None:
    """ideogram任务查询: how a queued request is doing; None when the answer does not list it
    (the relay does not know it)."""
    payload = await client._request_json(
        "POST", "ideogram_web_task", json={"request_id": request_id}, timeout=QUICK_TIMEOUT
    )
    return parse_task(payload, request_id=request_id, secret=client.credentials.api_key)


# --- parsing --------------------------------------------------------------------------------


def parse_images(payload: Mapping[str, Any], *, secret: str | None = None) -> IdeogramResult:
    """The images of a generate / remix / upscale reply. Unsafe images are counted, not kept;
    a reply with an error instead of `data` raises it."""
    data = payload.get("data")
    if not isinstance(data, list):
        _raise_embedded_error(payload, secret)
        raise ProtocolError("Ideogram's reply has no image list (data)")
    images: list[IdeogramImage] = []
    withheld = 0
    for item in data:
        if not isinstance(item, Mapping):
            continue
        if not _is_safe(item.get("is_image_safe")):
            withheld += 1
            continue
        url = as_str(item.get("url")).strip()
        if not url:
            continue  # safe but without a link: nothing to keep
        images.append(
            IdeogramImage(
                url=url,
                prompt=as_str(item.get("prompt")).strip(),
                resolution=as_str(item.get("resolution")).strip(),
                seed=_int(item.get("seed")),
                style_type=as_str(item.get("style_type")).strip(),
            )
        )
    return IdeogramResult(tuple(images), withheld, as_str(payload.get("created")))


def parse_descriptions(payload: Mapping[str, Any], *, secret: str | None = None) -> tuple[str, ...]:
    """The texts of a describe reply (`{"descriptions": [{"text": ...}]}`; plain strings too)."""
    descriptions = payload.get("descriptions")
    if not isinstance(descriptions, list):
        _raise_embedded_error(payload, secret)
        raise ProtocolError("Ideogram's reply has no descriptions")
    texts = []
    for item in descriptions:
        text = as_str(item.get("text") if isinstance(item, Mapping) else item).strip()
        if text:
            texts.append(text)
    return tuple(texts)


def parse_submission(
    payload: Mapping[str, Any], *, secret: str | None = None, describe: bool = False
) -> WebSubmission:
    """A web-format submit reply: a `request_id` (top level, in `data`, or in a first
    sampling request; string or number) to poll, else a result in the official shape
    (`descriptions` when `describe`, else `data: [...]`). Anything else raises: the error
    it carries, or ProtocolError."""
    request_id = _request_id(payload)
    if request_id:
        if len(request_id) > MAX_REQUEST_ID_CHARS:
            raise ProtocolError("the relay's Ideogram request id is too long to keep")
        return WebSubmission(request_id=request_id)
    if describe and isinstance(payload.get("descriptions"), list):
        return WebSubmission(descriptions=parse_descriptions(payload, secret=secret))
    if not describe and isinstance(payload.get("data"), list):
        return WebSubmission(result=parse_images(payload, secret=secret))
    _raise_embedded_error(payload, secret)
    raise ProtocolError("the relay accepted the Ideogram request but sent no request_id")


def parse_task(
    payload: Mapping[str, Any], *, request_id: str = "", secret: str | None = None
) -> IdeogramTask | None:
    """The task query's sampling request for `request_id` (or its first one). None when the
    answer lists none; an answer without `sampling_requests` raises its error or
    ProtocolError.

    Progress is `completion_percentage`; the request is done when `is_completed` or at 100.
    Each response with a `url` is an image (`is_image_safe: false` ones are withheld, as in
    the official format); a response without one is counted in `unlinked`. A describe's
    texts are read from `descriptions` (of the request or the reply) or from the responses'
    `description` / `text`."""
    body: Mapping[str, Any] = payload
    if not isinstance(body.get("sampling_requests"), list) and isinstance(
        body.get("data"), Mapping
    ):
        body = body["data"]
    requests = body.get("sampling_requests")
    if not isinstance(requests, list):
        _raise_embedded_error(payload, secret)
        raise ProtocolError("the relay's Ideogram task reply has no sampling_requests")
    listed = [item for item in requests if isinstance(item, Mapping)]
    item = next((i for i in listed if _id(i.get("request_id")) == request_id), None) or (
        listed[0] if listed else None
    )
    if item is None:
        return None
    progress = _percentage(item.get("completion_percentage"))
    completed = _flag(item.get("is_completed")) or progress == 100
    if completed:
        progress = 100
    prompt = as_str(item.get("user_prompt")).strip()
    images, withheld, unlinked, texts = _responses(item, prompt)
    for source in (item, body, payload):
        if texts:
            break
        if isinstance(source.get("descriptions"), list):
            texts = list(parse_descriptions(source))
    return IdeogramTask(
        request_id=_id(item.get("request_id")) or request_id,
        started=_flag(item.get("has_started")) or completed or bool(progress),
        completed=completed,
        progress=progress or 0,
        prompt=prompt,
        result=IdeogramResult(tuple(images), withheld, as_str(item.get("created_at"))),
        unlinked=unlinked,
        descriptions=tuple(texts),
    )


def _responses(
    item: Mapping[str, Any], prompt: str
) -> tuple[list[IdeogramImage], int, int, list[str]]:
    """A sampling request's responses: its images, how many were withheld as unsafe, how
    many came without a link, and the texts of a describe."""
    width, height = _int(item.get("width")), _int(item.get("height"))
    resolution = f"{width}x{height}" if width and height else ""
    images: list[IdeogramImage] = []
    withheld = unlinked = 0
    texts: list[str] = []
    responses = item.get("responses")
    for response in responses if isinstance(responses, list) else ():
        if not isinstance(response, Mapping):
            continue
        url = as_str(response.get("url")).strip()
        text = as_str(response.get("description") or response.get("text")).strip()
        if text and not url:
            texts.append(text)  # a describe's answer
            continue
        if not _is_safe(response.get("is_image_safe")):
            withheld += 1
            continue
        if not url:
            unlinked += 1
            continue
        seed = _int(response.get("seed"))
        images.append(
            IdeogramImage(
                url=url,
                prompt=as_str(response.get("prompt")).strip() or prompt,
                resolution=resolution,
                seed=seed if seed is not None else _int(item.get("seed")),
                style_type=as_str(response.get("style_type") or item.get("style_type")).strip(),
            )
        )
    return images, withheld, unlinked, texts


def _request_id(payload: Mapping[str, Any]) -> str:
    data = payload.get("data")
    for source in (payload, data if isinstance(data, Mapping) else {}):
        found = _id(source.get("request_id"))
        if found:
            return found
    for source in (payload, data if isinstance(data, Mapping) else {}):
        requests = source.get("sampling_requests")
        if isinstance(requests, list) and requests and isinstance(requests[0], Mapping):
            return _id(requests[0].get("request_id"))
    return ""


def _id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value).strip()


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _percentage(value: object) -> int | None:
    """`completion_percentage`: 45, "45", "45%"; only a number strictly between 0 and 1 is
    taken as a fraction (the field is a percentage, so 1 means 1 %)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _NUMBER.search(str(value))
        if not match:
            return None
        number = float(match.group(0))
    if math.isnan(number) or math.isinf(number):
        return None
    if 0 < number < 1 and "%" not in str(value):
        number *= 100
    return max(0, min(100, round(number)))


def _flag(value: object) -> bool:
    """A boolean read leniently (`true`, "true", 1, "1", "yes"); missing means false."""
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1", "yes")
    return bool(value) if isinstance(value, bool | int | float) else False


def _raise_embedded_error(payload: Mapping[str, Any], secret: str | None) -> None:
    """A 2xx reply carrying an error body (some relays answer 200 with Ideogram's error)."""
    if any(payload.get(key) for key in ("error", "detail", "message")):
        raise error_from_payload(payload, status=200, secret=secret)


def _is_safe(value: object) -> bool:
    """`is_image_safe` read leniently; missing means safe (older replies lack the field)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().casefold() not in ("false", "0", "no", "")
    return bool(value)


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
