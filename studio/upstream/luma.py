"""The Luma family (`/luma/generations*`, Luma's "reverse" web API, upstream-api.md §10).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. A generation moves
`pending` (also `queued`) → `processing` (also `dreaming`) → `completed` or `failed`. A
completed generation carries `video: {url, download_url, width, height, thumbnail}`; Luma may
answer `completed` a moment before `download_url` is set, so a generation is `ready` only once
it is (the caller keeps polling until then). `extend` continues a completed generation as a new
one, with the same body as `generate`.

Errors come in the relay's OpenAI shape or in Luma's own FastAPI shape (`{"detail": "..."}`, or
a list of `{loc, msg}` for validation), both read by `error_from_response`. Some upstreams answer
a create with a list holding the one new generation rather than the object: both are read.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import ProtocolError, body_excerpt, error_from_payload
from studio.upstream.lenient import as_str
from studio.upstream.progress import parse_progress

PENDING: Final = "pending"
QUEUED: Final = "queued"
PROCESSING: Final = "processing"
DREAMING: Final = "dreaming"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
WAITING_STATES: Final = frozenset({PENDING, QUEUED})
WORKING_STATES: Final = frozenset({PROCESSING, DREAMING})

ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
MAX_PROMPT_CHARS: Final = 5000


@dataclass(frozen=True)
class LumaVideo:
    url: str = ""
    download_url: str = ""
    width: int | None = None
    height: int | None = None
    thumbnail: str = ""


@dataclass(frozen=True)
class LumaGeneration:
    id: str
    state: str = PENDING
    prompt: str = ""
    created_at: str = ""  # ISO 8601, as Luma sends it
    video: LumaVideo | None = None
    thumbnail: str = ""  # the generation's own thumbnail URL (else the video's)
    failure: str = ""
    estimate_wait_seconds: int | None = None
    progress: int | None = None  # only when an upstream adds one: Luma itself has none

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def completed(self) -> bool:
        return self.state == COMPLETED

    @property
    def ready(self) -> bool:
        """Completed with a video that can be downloaded."""
        return self.completed and self.video is not None and bool(self.video.download_url)

    @property
    def thumbnail_url(self) -> str:
        return self.thumbnail or (self.video.thumbnail if self.video else "")

    def created_timestamp(self) -> float | None:
        """`created_at` as seconds since the epoch, or None when absent or unreadable."""
        text = self.created_at.strip()
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None  # a naive time could be any zone: better no estimate than a wrong one
        return moment.timestamp()


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient,
    prompt: str,
    *,
    aspect_ratio: str | None = None,
    expand_prompt: bool | None = None,
    loop: bool | None = None,
    image_url: str | None = None,
    image_end_url: str | None = None,
) -> LumaGeneration:
    """Start a generation (§10.1). `image_url` / `image_end_url` are the first and last frames,
    as https URLs or data URIs (`data_uri`). Returns the new generation (pending)."""
    body = _body(prompt, aspect_ratio, expand_prompt, loop, image_url, image_end_url)
    payload = await _send(client, "POST", "luma_generate", json=body, timeout=MEDIA_TIMEOUT)
    return _created(payload)


async def extend(
    client: RelayClient,
    generation_id: str,
    prompt: str,
    *,
    aspect_ratio: str | None = None,
    expand_prompt: bool | None = None,
    loop: bool | None = None,
    image_url: str | None = None,
    image_end_url: str | None = None,
) -> LumaGeneration:
    """Continue the completed generation `generation_id` as a new generation, which is
    returned (pending); the body is the one `generate` sends."""
    body = _body(prompt, aspect_ratio, expand_prompt, loop, image_url, image_end_url)
    payload = await _send(
        client,
        "POST",
        "luma_extend",
        json=body,
        path_params={"id": generation_id},
        timeout=MEDIA_TIMEOUT,
    )
    return _created(payload)


async def get_generation(client: RelayClient, generation_id: str) -> LumaGeneration:
    """The generation's state (§10.2)."""
    payload = await _send(
        client, "GET", "luma_task", path_params={"id": generation_id}, timeout=QUICK_TIMEOUT
    )
    return parse_generation(_one(payload), generation_id=generation_id)


def data_uri(content: bytes, mime: str) -> str:
    """An image's bytes as the data URI Luma takes for `image_url` / `image_end_url`."""
    return f"data:{mime or 'image/png'};base64,{base64.b64encode(content).decode('ascii')}"


def _body(
    prompt: str,
    aspect_ratio: str | None,
    expand_prompt: bool | None,
    loop: bool | None,
    image_url: str | None,
    image_end_url: str | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "expand_prompt": expand_prompt,
        "loop": loop,
        "image_url": image_url,
        "image_end_url": image_end_url,
    }
    return {key: value for key, value in fields.items() if value is not None and value != ""}


async def _send(client: RelayClient, method: str, path_name: str, **kwargs: Any) -> object:
    """The reply's JSON, object or list (client._request_json takes objects only)."""
    response = await client._request(method, path_name, **kwargs)
    try:
        payload = response.json()
    except ValueError:
        raise ProtocolError(
            f"expected JSON from Luma, got {response.headers.get('content-type') or 'no type'}: "
            f"{body_excerpt(response.text)}",
            status=response.status_code,
        ) from None
    if (
        isinstance(payload, Mapping)
        and isinstance(payload.get("error"), Mapping)
        and not payload.get("id")
    ):
        # An error object instead of a generation inside a 2xx reply, as relays send when the
        # upstream failed.
        raise error_from_payload(
            payload, status=response.status_code, secret=client.credentials.api_key
        )
    return payload


def _one(payload: object) -> Mapping[str, Any]:
    if isinstance(payload, list):
        payload = next((item for item in payload if isinstance(item, Mapping)), None)
    if not isinstance(payload, Mapping):
        raise ProtocolError("the relay's Luma reply holds no generation object")
    return payload


def _created(payload: object) -> LumaGeneration:
    generation = parse_generation(_one(payload))
    if not generation.id:
        raise ProtocolError("the relay accepted the Luma generation but sent no id")
    return generation


# --- reading replies ------------------------------------------------------------------------


def parse_generation(data: Mapping[str, Any], *, generation_id: str = "") -> LumaGeneration:
    """A generation object, read leniently: unknown fields ignored, missing ones defaulted."""
    wait = data.get("estimate_wait_seconds")
    return LumaGeneration(
        id=as_str(data.get("id")).strip() or generation_id,
        state=as_str(data.get("state") or data.get("status")).strip().lower() or PENDING,
        prompt=as_str(data.get("prompt") or data.get("user_prompt")),
        created_at=as_str(data.get("created_at")),
        video=_video(data.get("video")),
        thumbnail=_url(data.get("thumbnail")),
        failure=_failure(data),
        estimate_wait_seconds=_whole_number(wait),
        progress=parse_progress(data.get("progress")),
    )


def _whole_number(value: object) -> int | None:
    """A whole number (seconds, pixels), or None; not a percentage, so no 0-1 scaling."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return max(0, round(float(str(value).strip())))
    except ValueError:
        return None


def _video(value: object) -> LumaVideo | None:
    if isinstance(value, str) and value.strip():
        return LumaVideo(url=value.strip())
    if not isinstance(value, Mapping):
        return None
    url = as_str(value.get("url")).strip()
    download_url = as_str(value.get("download_url")).strip()
    if not url and not download_url:
        return None
    return LumaVideo(
        url=url,
        download_url=download_url,
        width=_whole_number(value.get("width")),
        height=_whole_number(value.get("height")),
        thumbnail=_url(value.get("thumbnail")),
    )


def _url(value: object) -> str:
    """A URL given as a string or as an object with a `url` ({url, width, height})."""
    if isinstance(value, Mapping):
        value = value.get("url")
    return as_str(value).strip()


def _failure(data: Mapping[str, Any]) -> str:
    for key in ("failure_reason", "fail_reason", "failure", "error", "message"):
        value = data.get(key)
        if isinstance(value, Mapping):
            value = value.get("message") or value.get("detail")
        if text := as_str(value).strip():
            return text
    return ""
