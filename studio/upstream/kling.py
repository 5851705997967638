"""The Kling family (`/kling/v1/videos/*` and `/kling/v1/images/*`, Kling's official format,
upstream-api.md §9).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Every Kling reply is
the envelope `{code, message, request_id, data: {task_id, task_status, task_status_msg,
task_result: {videos: [{url, duration}], images: [{index, url}]}}}`; `code != 0` is an error,
raised as the matching UpstreamError with the relay's message whether it came with HTTP 200 or a
failing status.

A task is polled on the path of the endpoint that made it (`text2video` tasks under
`.../text2video/{id}`, `image2video` under `.../image2video/{id}`, image generations under
`/kling/v1/images/generations/{id}`): Kling does not find a task asked for on another path.
Kling reports no percentage; `progress` is None unless a relay adds one of its own (read
leniently).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
    error_from_payload,
)
from studio.upstream.lenient import as_int, as_str
from studio.upstream.progress import parse_progress

TEXT2VIDEO: Final = "text2video"
IMAGE2VIDEO: Final = "image2video"
IMAGES: Final = "images"  # image generation (§9.1)
VIDEO_ENDPOINTS: Final = (TEXT2VIDEO, IMAGE2VIDEO)
ENDPOINTS: Final = (*VIDEO_ENDPOINTS, IMAGES)
# endpoint -> (submit path name, poll path name) in paths.py
_PATHS: Final = {
    TEXT2VIDEO: ("kling_text2video", "kling_text2video_task"),
    IMAGE2VIDEO: ("kling_image2video", "kling_image2video_task"),
    IMAGES: ("kling_images", "kling_images_task"),
}

SUBMITTED: Final = "submitted"
PROCESSING: Final = "processing"
SUCCEED: Final = "succeed"
FAILED: Final = "failed"

MODES: Final = ("std", "pro")
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
DURATIONS: Final = ("5", "10")
MAX_PROMPT_CHARS: Final = 2500
# Image generation (§9.1)
IMAGE_MODELS: Final = ("kling-v1", "kling-v1-5")
IMAGE_ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3")
IMAGE_REFERENCES: Final = ("subject", "face")  # kling-v1-5 with a reference image
MAX_IMAGE_PROMPT_CHARS: Final = 500
MAX_IMAGE_NEGATIVE_CHARS: Final = 200
MAX_IMAGES: Final = 9


@dataclass(frozen=True)
class KlingVideo:
    url: str
    id: str = ""
    duration: str = ""  # seconds, as Kling sends it ("5.1")


@dataclass(frozen=True)
class KlingImage:
    url: str
    index: int = 0


@dataclass(frozen=True)
class KlingTask:
    task_id: str
    endpoint: str
    status: str = SUBMITTED
    status_msg: str = ""
    videos: tuple[KlingVideo, ...] = ()
    images: tuple[KlingImage, ...] = ()
    created_at: int = 0  # milliseconds since the epoch (§1.2); 0 when not sent
    updated_at: int = 0
    progress: int | None = None  # only when a relay adds one: Kling itself has none

    @property
    def finished(self) -> bool:
        return self.status in (SUCCEED, FAILED)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEED

    @property
    def failed(self) -> bool:
        return self.status == FAILED


# --- calls ----------------------------------------------------------------------------------


async def text_to_video(
    client: RelayClient,
    prompt: str,
    *,
    model_name: str | None = None,
    negative_prompt: str | None = None,
    cfg_scale: float | None = None,
    mode: str | None = None,
    aspect_ratio: str | None = None,
    duration: str | int | None = None,
    camera_control: Mapping[str, Any] | None = None,
    callback_url: str | None = None,
    external_task_id: str | None = None,
) -> KlingTask:
    """Start a text-to-video task (§9.2). Empty optional values are left out of the request,
    so Kling's defaults apply (kling-v1, std, 16:9, 5 s, cfg_scale 0.5)."""
    body = _body(
        model_name=model_name,
        prompt=prompt,
        negative_prompt=negative_prompt,
        cfg_scale=cfg_scale,
        mode=mode,
        aspect_ratio=aspect_ratio,
        duration=str(duration) if duration is not None else None,
        camera_control=dict(camera_control) if camera_control else None,
        callback_url=callback_url,
        external_task_id=external_task_id,
    )
    return await _submit(client, TEXT2VIDEO, body)


async def image_to_video(
    client: RelayClient,
    image: str | bytes,
    *,
    image_tail: str | bytes | None = None,
    prompt: str | None = None,
    model_name: str | None = None,
    negative_prompt: str | None = None,
    cfg_scale: float | None = None,
    mode: str | None = None,
    duration: str | int | None = None,
    callback_url: str | None = None,
    external_task_id: str | None = None,
) -> KlingTask:
    """Start an image-to-video task (§9.3). `image` (and the optional end frame `image_tail`)
    is an http(s) URL, the image's bytes, or base64; Kling wants raw base64, so bytes are
    encoded and a `data:` prefix is dropped."""
    body = _body(
        model_name=model_name,
        image=image_value(image),
        image_tail=image_value(image_tail) if image_tail else None,
        prompt=prompt,
        negative_prompt=negative_prompt,
        cfg_scale=cfg_scale,
        mode=mode,
        duration=str(duration) if duration is not None else None,
        callback_url=callback_url,
        external_task_id=external_task_id,
    )
    return await _submit(client, IMAGE2VIDEO, body)


async def generate_images(
    client: RelayClient,
    prompt: str,
    *,
    model_name: str | None = None,
    negative_prompt: str | None = None,
    image: str | bytes | None = None,
    image_fidelity: float | None = None,
    image_reference: str | None = None,
    human_fidelity: float | None = None,
    n: int | None = None,
    aspect_ratio: str | None = None,
    callback_url: str | None = None,
) -> KlingTask:
    """Start an image generation task (§9.1): `n` (1-9) pictures from a prompt, optionally
    guided by a reference `image` (URL, bytes or base64; sent as raw base64) followed with
    strength `image_fidelity` (0-1). Empty optional values are left to Kling's defaults."""
    body = _body(
        model_name=model_name,
        prompt=prompt,
        negative_prompt=negative_prompt,
        image=image_value(image) if image else None,
        image_fidelity=image_fidelity,
        image_reference=image_reference,
        human_fidelity=human_fidelity,
        n=n,
        aspect_ratio=aspect_ratio,
        callback_url=callback_url,
    )
    return await _submit(client, IMAGES, body)


async def fetch_video(client: RelayClient, endpoint: str, task_id: str) -> KlingTask:
    """A video task's state, asked on the path of the endpoint that made it (§9.4)."""
    if endpoint not in VIDEO_ENDPOINTS:
        raise BadRequestError(f"not a Kling video endpoint: {endpoint!r}")
    return await fetch_task(client, endpoint, task_id)


async def fetch_images(client: RelayClient, task_id: str) -> KlingTask:
    """An image generation task's state (§9.1)."""
    return await fetch_task(client, IMAGES, task_id)


async def fetch_task(client: RelayClient, endpoint: str, task_id: str) -> KlingTask:
    """Any task's state, asked on the path of the endpoint that made it."""
    _submit_path, poll_path = _paths(endpoint)
    payload = await _call(
        client, "GET", poll_path, path_params={"task_id": task_id}, timeout=QUICK_TIMEOUT
    )
    return parse_task(read_envelope(payload), endpoint=endpoint, task_id=task_id)


def image_value(image: str | bytes) -> str:
    """What Kling accepts for an image: a URL as it is, else raw base64 without `data:`."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode("ascii")
    text = image.strip()
    if text.startswith("data:") and "," in text:
        return text.split(",", 1)[1]
    return text


async def _submit(client: RelayClient, endpoint: str, body: dict[str, Any]) -> KlingTask:
    submit_path, _poll_path = _paths(endpoint)
    payload = await _call(client, "POST", submit_path, json=body, timeout=MEDIA_TIMEOUT)
    task = parse_task(read_envelope(payload), endpoint=endpoint)
    if not task.task_id:
        raise ProtocolError("the relay accepted the Kling task but sent no task_id")
    return task


async def _call(client: RelayClient, method: str, path_name: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return await client._request_json(method, path_name, **kwargs)
    except UpstreamError as error:
        raise _with_kling_class(error) from None


def _paths(endpoint: str) -> tuple[str, str]:
    try:
        return _PATHS[endpoint]
    except KeyError:
        raise BadRequestError(f"unknown Kling endpoint {endpoint!r}") from None


def _body(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None and value != ""}


# --- reading replies ------------------------------------------------------------------------

# Kling's documented error codes -> what they mean for Studio. Ranges: 1000s authentication,
# 1100s account, 1200s request, 1300s policy, 5000s server.
_CODE_CLASSES: Final[dict[int, type[UpstreamError]]] = {
    1101: QuotaError,  # account in arrears
    1102: QuotaError,  # resource pack used up or expired
    1302: RateLimitedError,  # requests too fast
    1303: RateLimitedError,  # concurrency / QPS above the resource pack's limit
    1304: AuthError,  # IP allow-list
    5002: UpstreamTimeout,
}
_RANGE_CLASSES: Final[tuple[tuple[range, type[UpstreamError]], ...]] = (
    (range(1000, 1100), AuthError),
    (range(1100, 1200), AuthError),  # account abnormal, no permission for the resource
    (range(1200, 1300), BadRequestError),
    (range(1300, 1400), BadRequestError),  # platform or content-safety policy
    (range(5000, 6000), UnavailableError),
)


def error_class_for(code: int) -> type[UpstreamError] | None:
    """The UpstreamError subclass for a Kling error code; None for a code Kling does not list."""
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code]
    for codes, error_class in _RANGE_CLASSES:
        if code in codes:
            return error_class
    return None


def read_envelope(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The envelope's `data` object; `code != 0` raises the matching UpstreamError."""
    code = as_int(payload.get("code"))
    if code is None:
        raise ProtocolError(f"the relay's Kling reply has no result code: {_keys(payload)}")
    if code != 0:
        message = as_str(payload.get("message")).strip() or f"Kling error {code}"
        error_class = error_class_for(code)
        if error_class is None:
            # A code Kling does not document: let the message's words decide.
            raise error_from_payload(payload, status=200)
        raise error_class(message, relay_code=str(code))
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise ProtocolError("the relay's Kling reply has no data object")
    return data


def parse_task(data: Mapping[str, Any], *, endpoint: str, task_id: str = "") -> KlingTask:
    result = data.get("task_result")
    videos = result.get("videos") if isinstance(result, Mapping) else None
    images = result.get("images") if isinstance(result, Mapping) else None
    progress = data.get("progress", data.get("task_progress"))
    return KlingTask(
        task_id=as_str(data.get("task_id")).strip() or task_id,
        endpoint=endpoint,
        status=as_str(data.get("task_status")).strip().lower() or SUBMITTED,
        status_msg=as_str(data.get("task_status_msg")).strip(),
        videos=_videos(videos),
        images=_images(images),
        created_at=as_int(data.get("created_at")) or 0,
        updated_at=as_int(data.get("updated_at")) or 0,
        progress=parse_progress(progress),
    )


def _videos(value: object) -> tuple[KlingVideo, ...]:
    if not isinstance(value, list):
        return ()
    videos = []
    for item in value:
        if isinstance(item, Mapping) and (url := as_str(item.get("url")).strip()):
            videos.append(KlingVideo(url, as_str(item.get("id")), as_str(item.get("duration"))))
        elif isinstance(item, str) and item.strip():
            videos.append(KlingVideo(item.strip()))
    return tuple(videos)


def _images(value: object) -> tuple[KlingImage, ...]:
    if not isinstance(value, list):
        return ()
    images = []
    for position, item in enumerate(value):
        if isinstance(item, Mapping) and (url := as_str(item.get("url")).strip()):
            index = as_int(item.get("index"))
            images.append(KlingImage(url, position if index is None else index))
        elif isinstance(item, str) and item.strip():
            images.append(KlingImage(item.strip(), position))
    return tuple(sorted(images, key=lambda image: image.index))


def _with_kling_class(error: UpstreamError) -> UpstreamError:
    """A failing HTTP status was classified by the status alone; a Kling code in the body
    (HTTP 400 with 1102 "resource pack used up", say) knows better."""
    code = as_int(error.relay_code)
    error_class = error_class_for(code) if code is not None else None
    if error_class is None or type(error) is error_class:
        return error
    return error_class(
        error.message,
        status=error.status,
        relay_code=error.relay_code,
        retry_after=error.retry_after,
    )


def _keys(payload: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(key) for key in payload)) or "empty object"
