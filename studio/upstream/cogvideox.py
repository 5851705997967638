"""The CogVideoX family (`/cogvideox/v4/*`, Zhipu's official format, upstream-api.md §14).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. A generation is a
task: `generate` answers `{id, request_id, model, task_status: "PROCESSING"}`, and
`get_result` answers the task with `task_status` `PROCESSING`, `SUCCESS` (with
`video_result: [{url, cover_image_url}]`, URLs that expire) or `FAIL`.

Zhipu's errors are `{"error": {"code": "1301", "message": "..."}}` with a business code as a
string. The HTTP status alone misleads (an account in arrears, 1113, comes with HTTP 429, as do
concurrency limits), so the code decides the UpstreamError class: see `error_class_for`.

Which optional fields a model takes (`MODEL_OPTIONS`) follows Zhipu's model pages: the first
`cogvideox` takes only a prompt and an image; `cogvideox-flash` adds sound, size and frame rate;
`cogvideox-3` adds the speed / quality choice as well. Fields a model does not take are not
sent.
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
    body_excerpt,
    error_from_payload,
)
from studio.upstream.lenient import as_str
from studio.upstream.progress import parse_progress

PROCESSING: Final = "PROCESSING"
SUCCESS: Final = "SUCCESS"
FAIL: Final = "FAIL"

MODELS: Final = ("cogvideox", "cogvideox-flash", "cogvideox-3")
MODEL_OPTIONS: Final[dict[str, frozenset[str]]] = {
    "cogvideox": frozenset(),
    "cogvideox-flash": frozenset({"with_audio", "size", "fps"}),
    "cogvideox-3": frozenset({"quality", "with_audio", "size", "fps"}),
}
QUALITIES: Final = ("speed", "quality")
SIZES: Final = (
    "1280x720",
    "720x1280",
    "1024x1024",
    "1920x1080",
    "1080x1920",
    "2048x1080",
    "3840x2160",
)
FPS: Final = (30, 60)
MAX_PROMPT_CHARS: Final = 500
MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024


@dataclass(frozen=True)
class CogVideo:
    url: str
    cover_image_url: str = ""


@dataclass(frozen=True)
class CogVideoTask:
    id: str
    status: str = PROCESSING
    model: str = ""
    request_id: str = ""
    videos: tuple[CogVideo, ...] = ()
    failure: str = ""  # a reason, when an upstream gives one with FAIL
    progress: int | None = None  # only when a relay adds one: Zhipu has none

    @property
    def finished(self) -> bool:
        return self.status in (SUCCESS, FAIL)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def data_uri(content: bytes, mime: str) -> str:
    """An image's bytes as a data URI, which `image_url` takes as well as an https URL."""
    return f"data:{mime or 'image/png'};base64,{base64.b64encode(content).decode('ascii')}"


def takes(model: str, option: str) -> bool:
    """Whether `model` accepts the optional field `option` (quality, with_audio, size, fps)."""
    return option in MODEL_OPTIONS.get(model, frozenset())


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient,
    model: str,
    *,
    prompt: str | None = None,
    image_url: str | None = None,
    quality: str | None = None,
    with_audio: bool | None = None,
    size: str | None = None,
    fps: int | None = None,
    request_id: str | None = None,
) -> CogVideoTask:
    """Start a video task (§14): from a prompt, an image (`image_url`: an https URL or a data
    URI, for image to video) or both. Options the model does not take are left out."""
    options = {"quality": quality, "with_audio": with_audio, "size": size, "fps": fps}
    body: dict[str, Any] = {"model": model}
    if prompt:
        body["prompt"] = prompt
    if image_url:
        body["image_url"] = image_url
    if request_id:
        body["request_id"] = request_id
    for name, value in options.items():
        if value is not None and value != "" and takes(model, name):
            body[name] = value
    payload = await _call(client, "POST", "cogvideox_generate", json=body, timeout=MEDIA_TIMEOUT)
    task = parse_task(payload)
    if not task.id:
        raise ProtocolError("the relay accepted the CogVideoX task but sent no id")
    return task


async def get_result(client: RelayClient, task_id: str) -> CogVideoTask:
    """The task's state (§14, async-result)."""
    payload = await _call(
        client, "GET", "cogvideox_result", path_params={"id": task_id}, timeout=QUICK_TIMEOUT
    )
    return parse_task(payload, task_id=task_id)


async def _call(
    client: RelayClient, method: str, path_name: str, **kwargs: Any
) -> Mapping[str, Any]:
    try:
        response = await client._request(method, path_name, **kwargs)
    except UpstreamError as error:
        raise with_zhipu_class(error) from None
    try:
        payload = response.json()
    except ValueError:
        raise ProtocolError(
            f"expected JSON from CogVideoX, got "
            f"{response.headers.get('content-type') or 'no type'}: {body_excerpt(response.text)}",
            status=response.status_code,
        ) from None
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"expected a JSON object, got {type(payload).__name__}")
    if isinstance(payload.get("error"), Mapping) and not payload.get("task_status"):
        # A Zhipu error inside a 2xx reply (relays pass some on that way).
        inside = error_from_payload(
            payload, status=response.status_code, secret=client.credentials.api_key
        )
        raise with_zhipu_class(inside)
    return payload


# --- reading replies ------------------------------------------------------------------------

# Zhipu's business codes -> what they mean for Studio. Ranges: 1000s authentication, 1100s
# account, 1200s the call itself, 1300s policy (content safety, limits).
_CODE_CLASSES: Final[dict[int, type[UpstreamError]]] = {
    500: UnavailableError,  # internal error
    1113: QuotaError,  # account in arrears: recharge
    1120: UnavailableError,  # account could not be reached: try later
    1234: UnavailableError,  # network error
    1302: RateLimitedError,  # concurrency too high
    1303: RateLimitedError,  # requests too frequent
    1304: QuotaError,  # the API's daily call limit is reached: no use retrying today
    1305: RateLimitedError,  # rate limit triggered
}
_RANGE_CLASSES: Final[tuple[tuple[range, type[UpstreamError]], ...]] = (
    (range(1000, 1100), AuthError),
    (range(1100, 1200), AuthError),  # inactive, missing or locked account
    (range(1200, 1300), BadRequestError),
    (range(1300, 1400), BadRequestError),  # blocked by policy, unsafe content (1301)
)


def error_class_for(code: int) -> type[UpstreamError] | None:
    """The UpstreamError subclass for a Zhipu code; None for a code Zhipu does not list."""
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code]
    for codes, error_class in _RANGE_CLASSES:
        if code in codes:
            return error_class
    return None


def with_zhipu_class(error: UpstreamError) -> UpstreamError:
    """The error re-classed by its Zhipu code (the relay's own errors, whose codes are words
    such as "insufficient_quota", keep the class their status and words gave them)."""
    code = _int(error.relay_code)
    error_class = error_class_for(code) if code is not None else None
    if error_class is None or type(error) is error_class:
        return error
    return error_class(
        error.message,
        status=error.status,
        relay_code=error.relay_code,
        retry_after=error.retry_after,
    )


def parse_task(payload: Mapping[str, Any], *, task_id: str = "") -> CogVideoTask:
    status = as_str(payload.get("task_status") or payload.get("status")).strip().upper()
    return CogVideoTask(
        id=as_str(payload.get("id") or payload.get("task_id")).strip() or task_id,
        status=status or PROCESSING,
        model=as_str(payload.get("model")).strip(),
        request_id=as_str(payload.get("request_id")).strip(),
        videos=_videos(payload.get("video_result")),
        failure=_failure(payload),
        progress=parse_progress(payload.get("progress")),
    )


def _videos(value: object) -> tuple[CogVideo, ...]:
    if isinstance(value, Mapping | str):
        value = [value]
    if not isinstance(value, list):
        return ()
    videos = []
    for item in value:
        if isinstance(item, Mapping) and (url := as_str(item.get("url")).strip()):
            cover = as_str(item.get("cover_image_url") or item.get("cover_url")).strip()
            videos.append(CogVideo(url, cover))
        elif isinstance(item, str) and item.strip():
            videos.append(CogVideo(item.strip()))
    return tuple(videos)


def _failure(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    if isinstance(error, Mapping):
        message = as_str(error.get("message")).strip()
        code = as_str(error.get("code")).strip()
        return f"{message} ({code})" if message and code else message
    for key in ("fail_reason", "message", "msg"):
        if text := as_str(payload.get(key)).strip():
            return text
    return ""


def _int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None
