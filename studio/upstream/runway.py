"""The Runway family (`/runwayml/v1/*`, Runway's official format, upstream-api.md §8).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Every call carries
`X-Runway-Version`. A task moves PENDING / THROTTLED → RUNNING (with a 0-1 `progress`) →
SUCCEEDED (`output`: URLs that expire) or FAILED (`failure`, `failureCode`) or CANCELLED.
Errors are `{"error": "..."}` bodies, read by `error_from_response` already.

Right after creation some relays do not know the task yet and answer `task_not_exist` for a few
seconds. `get_task` reads that as "still pending" while the task is younger than
`NOT_YET_VISIBLE_GRACE` (when the caller says when it was created), and as the error it is after.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import ProtocolError, UpstreamError
from studio.upstream.lenient import as_str
from studio.upstream.progress import parse_progress

API_VERSION: Final = "2024-11-06"
HEADERS: Final = {"X-Runway-Version": API_VERSION}

PENDING: Final = "PENDING"
THROTTLED: Final = "THROTTLED"
RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
STATUSES: Final = (PENDING, THROTTLED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED: Final = frozenset({SUCCEEDED, FAILED, CANCELLED})

MODELS: Final = ("gen3a_turbo",)
RATIOS: Final = ("1280:768", "768:1280")
DURATIONS: Final = (5, 10)
MAX_PROMPT_CHARS: Final = 512
MAX_SEED: Final = 4_294_967_295
# Runway takes an image as a data URI of at most 5 MB (the URI itself, base64 and all).
MAX_DATA_URI_BYTES: Final = 5 * 1024 * 1024

NOT_YET_VISIBLE_GRACE: Final = 30.0  # seconds
_NOT_YET_VISIBLE_TOKENS: Final = ("task_not_exist",)


@dataclass(frozen=True)
class RunwayTask:
    id: str
    status: str = PENDING
    progress: int | None = None  # 0-100, while RUNNING (Runway sends a 0-1 fraction)
    output: tuple[str, ...] = ()
    failure: str = ""
    failure_code: str = ""
    created_at: str = ""  # ISO 8601, as Runway sends it
    not_yet_visible: bool = False  # the relay said task_not_exist within the grace period

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


async def image_to_video(
    client: RelayClient,
    prompt_image: str | Sequence[Mapping[str, str]],
    *,
    model: str = "gen3a_turbo",
    prompt_text: str | None = None,
    seed: int | None = None,
    duration: int | None = None,
    ratio: str | None = None,
    watermark: bool | None = None,
) -> RunwayTask:
    """Start an image-to-video task (§8.2). `prompt_image` is an https URL or a data URI, or a
    list of `{uri, position: "first" | "last"}` frames. Returns the new task (PENDING)."""
    image: str | list[dict[str, str]] = (
        prompt_image if isinstance(prompt_image, str) else [dict(item) for item in prompt_image]
    )
    body: dict[str, Any] = {"promptImage": image, "model": model}
    if prompt_text:
        body["promptText"] = prompt_text
    if seed is not None:
        body["seed"] = seed
    if duration is not None:
        body["duration"] = duration
    if ratio:
        body["ratio"] = ratio
    if watermark is not None:
        body["watermark"] = watermark
    payload = await client._request_json(
        "POST", "runway_image_to_video", json=body, headers=HEADERS, timeout=MEDIA_TIMEOUT
    )
    task = parse_task(payload)
    if not task.id:
        raise ProtocolError("the relay accepted the Runway task but sent no id")
    return task


async def get_task(
    client: RelayClient,
    task_id: str,
    *,
    created_at: float | None = None,
    now: float | None = None,
) -> RunwayTask:
    """The task's detail (§8.3). `created_at` (seconds since the epoch) is when the caller
    created the task: a `task_not_exist` answer before `NOT_YET_VISIBLE_GRACE` has passed
    since then is a task the relay has not caught up with, returned as PENDING."""
    try:
        payload = await client._request_json(
            "GET",
            "runway_task",
            path_params={"id": task_id},
            headers=HEADERS,
            timeout=QUICK_TIMEOUT,
        )
    except UpstreamError as error:
        if created_at is not None and is_not_yet_visible(error):
            age = (time.time() if now is None else now) - created_at
            if age < NOT_YET_VISIBLE_GRACE:
                return RunwayTask(id=task_id, status=PENDING, not_yet_visible=True)
        raise
    return parse_task(payload, task_id=task_id)


def is_not_yet_visible(error: UpstreamError) -> bool:
    """Whether the relay answered that it does not know the task (yet)."""
    words = f"{error.relay_code or ''} {error.message}".casefold()
    return any(token in words for token in _NOT_YET_VISIBLE_TOKENS)


def parse_task(payload: Mapping[str, Any], *, task_id: str = "") -> RunwayTask:
    status = as_str(payload.get("status")).strip().upper() or PENDING
    return RunwayTask(
        id=as_str(payload.get("id")).strip() or task_id,
        status=status,
        progress=parse_progress(payload.get("progress")),
        output=_output(payload.get("output")),
        failure=as_str(payload.get("failure")).strip(),
        failure_code=as_str(payload.get("failureCode")).strip(),
        created_at=as_str(payload.get("createdAt")),
    )


def _output(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    urls = []
    for item in value:
        url = (
            as_str(item.get("url") or item.get("uri"))
            if isinstance(item, Mapping)
            else as_str(item)
        )
        if url.strip():
            urls.append(url.strip())
    return tuple(urls)
