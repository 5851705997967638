"""The Suno music family (upstream-api.md §6): generate, extend, concat, fetch, in two formats.

Relays speak one of two incompatible Suno protocols; staff choose which with the family option
`suno_format` (`client.credentials.options`), and every call here can also be told explicitly
(a task is polled in the format that made it, even if the option changed meanwhile):

* Format "a", the reseller's template ("reverse" v3.0 / v3.5, GoAPI-like), the default:
  `POST /suno/v1/v3.0/music` (or `/v3.5/` for chirp-v3-5) with `{custom_mode, input: {...}}`,
  `GET .../music/{task_id}`, `POST /suno/v1/v3.0/music/concat`; replies are the envelope
  `{code: 200, message, data}`, a task's `status` is pending / processing / completed / failed
  and its `clips` an object keyed by clip id. Errors are `{code: <int != 200>, message,
  error_message}`, with HTTP 200 or a failing status.
* Format "b", new-api's native task relay: `POST /suno/submit/music`, `POST /suno/submit/concat`,
  `GET /suno/fetch/{task_id}`; replies are `{code: "success", message, data}`, statuses
  NOT_START … SUCCESS / FAILURE, `progress` "NN%", `data.data` a list of clips. Errors are
  `{code: "<token>", message, data: null}` with a failing status (quota_not_enough → 403).

Both come back as the same frozen dataclasses, with the task status normalised to PENDING,
PROCESSING, COMPLETED or FAILED. Parsing is lenient: clips as an object or a list, ids as
strings, durations as numbers or strings, unknown fields ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import (
    BadRequestError,
    ProtocolError,
    UpstreamError,
    error_from_payload,
)
from studio.upstream.lenient import as_int
from studio.upstream.progress import parse_progress

FORMAT_A: Final = "a"
FORMAT_B: Final = "b"
FORMATS: Final = (FORMAT_A, FORMAT_B)
FORMAT_OPTION: Final = "suno_format"

MV_V30: Final = "chirp-v3-0"
MV_V35: Final = "chirp-v3-5"
MODEL_VERSIONS: Final = (MV_V30, MV_V35)

# Format a's path families: v3.0 and v3.5 (concat tasks are polled on v3.0, §6.1).
ROUTE_V30: Final = "v30"
ROUTE_V35: Final = "v35"
ROUTE_B: Final = "b"
_A_GENERATE: Final = {ROUTE_V30: "suno_v30_generate", ROUTE_V35: "suno_v35_generate"}
_A_FETCH: Final = {ROUTE_V30: "suno_v30_fetch", ROUTE_V35: "suno_v35_fetch"}

# Normalised task statuses.
PENDING: Final = "pending"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
FAILED: Final = "failed"

# Suno's own limits (its web app enforces the same).
MAX_DESCRIPTION_CHARS: Final = 200
MAX_LYRICS_CHARS: Final = 3000
MAX_TAGS_CHARS: Final = 200
MAX_TITLE_CHARS: Final = 80

_STATUS_WORDS: Final[dict[str, str]] = {
    # format a
    "pending": PENDING,
    "submitted": PENDING,
    "queued": PENDING,
    "starting": PENDING,
    "processing": PROCESSING,
    "running": PROCESSING,
    "streaming": PROCESSING,
    "completed": COMPLETED,
    "complete": COMPLETED,
    "succeeded": COMPLETED,
    "success": COMPLETED,
    "failed": FAILED,
    "failure": FAILED,
    "error": FAILED,
    # format b (new-api task statuses)
    "not_start": PENDING,
    "in_progress": PROCESSING,
    "unknown": PROCESSING,
}


@dataclass(frozen=True)
class SunoClip:
    id: str
    title: str = ""
    status: str = ""  # submitted | queued | streaming | complete | error, as Suno sends it
    audio_url: str = ""
    video_url: str = ""
    image_url: str = ""
    image_large_url: str = ""
    lyrics: str = ""
    tags: str = ""
    duration: float | None = None  # seconds; Suno knows it once the clip is complete
    model_name: str = ""
    error_message: str = ""

    @property
    def cover_url(self) -> str:
        return self.image_large_url or self.image_url


@dataclass(frozen=True)
class SunoSubmission:
    """A task the relay accepted: its id, and how to poll it (format and route)."""

    task_id: str
    format: str
    route: str  # v30 | v35 (format a), b (format b)


@dataclass(frozen=True)
class SunoTask:
    task_id: str
    format: str
    status: str = PENDING  # normalised: pending | processing | completed | failed
    raw_status: str = ""  # the relay's word
    progress: int | None = None  # format b says; format a does not
    fail_reason: str = ""
    clips: tuple[SunoClip, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED)

    @property
    def succeeded(self) -> bool:
        return self.status == COMPLETED

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def playable_clips(self) -> tuple[SunoClip, ...]:
        return tuple(clip for clip in self.clips if clip.audio_url and clip.status != "error")

    def clip(self, clip_id: str) -> SunoClip | None:
        return next((clip for clip in self.clips if clip.id == clip_id), None)


# --- calls ----------------------------------------------------------------------------------


def format_of(client: RelayClient, fmt: str | None = None) -> str:
    """The format to speak: `fmt` when given, else the family option, else "a"."""
    chosen = (fmt or client.credentials.options.get(FORMAT_OPTION) or FORMAT_A).strip().lower()
    if chosen not in FORMATS:
        raise BadRequestError(f"unknown Suno format {chosen!r} (expected a or b)")
    return chosen


def route_for(mv: str | None) -> str:
    """Format a's path family for a model version: v3.5 has its own paths."""
    return ROUTE_V35 if mv == MV_V35 else ROUTE_V30


async def generate(
    client: RelayClient,
    *,
    gpt_description_prompt: str | None = None,
    prompt: str | None = None,
    title: str | None = None,
    tags: str | None = None,
    make_instrumental: bool = False,
    mv: str = MV_V30,
    continue_clip_id: str | None = None,
    continue_at: float | None = None,
    task_id: str | None = None,
    fmt: str | None = None,
) -> SunoSubmission:
    """Start a music task (§6.2, §6.4). Inspiration mode: `gpt_description_prompt` only (Suno
    writes lyrics, title and style). Custom mode (no description): `prompt` holds the lyrics,
    with `title` and `tags`. With `continue_clip_id` and `continue_at` it extends that clip;
    format b also takes the `task_id` the clip came from."""
    chosen = format_of(client, fmt)
    custom_mode = not (gpt_description_prompt or "").strip()
    fields = _fields(
        gpt_description_prompt=None if custom_mode else gpt_description_prompt,
        prompt=prompt if custom_mode else None,
        title=title if custom_mode else None,
        tags=tags if custom_mode else None,
        make_instrumental=bool(make_instrumental),
        mv=mv or MV_V30,
        continue_clip_id=continue_clip_id,
        continue_at=_seconds(continue_at),
    )
    if chosen == FORMAT_B:
        if custom_mode and "prompt" not in fields:
            fields["prompt"] = ""  # new-api binds lyrics as a plain string
        body = {**fields, **_fields(task_id=task_id if continue_clip_id else None)}
        payload = await _call(client, "POST", "suno_submit_music", json=body)
        return SunoSubmission(_task_id(read_envelope_b(payload)), FORMAT_B, ROUTE_B)
    route = route_for(mv)
    body = {"custom_mode": custom_mode, "input": fields}
    payload = await _call(client, "POST", _A_GENERATE[route], json=body)
    return SunoSubmission(_task_id(read_envelope_a(payload)), FORMAT_A, route)


async def extend(
    client: RelayClient,
    clip_id: str,
    continue_at: float,
    *,
    prompt: str = "",
    title: str | None = None,
    tags: str | None = None,
    make_instrumental: bool = False,
    mv: str = MV_V30,
    task_id: str | None = None,
    fmt: str | None = None,
) -> SunoSubmission:
    """Continue clip `clip_id` from `continue_at` seconds (custom mode: `prompt` holds the
    lyrics of the continuation, empty to let the music go on)."""
    if not clip_id.strip():
        raise BadRequestError("the clip to continue is missing")
    return await generate(
        client,
        prompt=prompt,
        title=title,
        tags=tags,
        make_instrumental=make_instrumental,
        mv=mv,
        continue_clip_id=clip_id.strip(),
        continue_at=continue_at,
        task_id=task_id,
        fmt=fmt,
    )


async def concat(client: RelayClient, clip_id: str, *, fmt: str | None = None) -> SunoSubmission:
    """Join an extension clip with what it continues into one song (§6.1); `clip_id` is the
    EXTENSION's id. The result is a task with one clip, polled like any other."""
    if not clip_id.strip():
        raise BadRequestError("the clip to join is missing")
    chosen = format_of(client, fmt)
    if chosen == FORMAT_B:
        body = {"clip_id": clip_id.strip(), "is_infill": False}
        payload = await _call(client, "POST", "suno_submit_concat", json=body)
        return SunoSubmission(_task_id(read_envelope_b(payload)), FORMAT_B, ROUTE_B)
    payload = await _call(client, "POST", "suno_concat", json={"clip_id": clip_id.strip()})
    return SunoSubmission(_task_id(read_envelope_a(payload)), FORMAT_A, ROUTE_V30)


async def fetch(
    client: RelayClient, task_id: str, *, fmt: str | None = None, route: str = ROUTE_V30
) -> SunoTask:
    """The task's state and clips. Format a polls on the path family `route` that made it."""
    chosen = format_of(client, fmt)
    params = {"task_id": task_id}
    if chosen == FORMAT_B:
        payload = await _call(client, "GET", "suno_fetch", path_params=params)
        return parse_task_b(read_envelope_b(payload), task_id=task_id)
    path_name = _A_FETCH.get(route, _A_FETCH[ROUTE_V30])
    payload = await _call(client, "GET", path_name, path_params=params)
    return parse_task_a(read_envelope_a(payload), task_id=task_id)


async def _call(client: RelayClient, method: str, path_name: str, **kwargs: Any) -> dict[str, Any]:
    timeout = MEDIA_TIMEOUT if method == "POST" else QUICK_TIMEOUT
    return await client._request_json(method, path_name, timeout=timeout, **kwargs)


def _fields(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def _seconds(value: float | None) -> float | int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


# --- reading replies ------------------------------------------------------------------------


def read_envelope_a(payload: Mapping[str, Any]) -> Any:
    """Format a's `data`; any code but 200 raises the matching UpstreamError (a relay on this
    path may also answer in the task-relay shape, `{"code": "<token>", ...}`)."""
    code = payload.get("code")
    if _is_success(code):
        return payload.get("data")
    if code is None and "data" in payload:
        return payload.get("data")  # no envelope code at all: read what is there
    raise envelope_error(payload)


def read_envelope_b(payload: Mapping[str, Any]) -> Any:
    """Format b's `data`; a `code` other than "success" raises the matching UpstreamError."""
    code = payload.get("code")
    if _is_success(code) or (code is None and "data" in payload):
        return payload.get("data")
    raise envelope_error(payload)


def envelope_error(payload: Mapping[str, Any]) -> UpstreamError:
    """The error an envelope with a failing code stands for, though it came with HTTP 200.

    GoAPI's numeric codes read like HTTP statuses (400 refused, 401/403 key, 429 busy, 5xx
    upstream), so they classify the error as that status would; tokens and other codes are
    classified by their words (quota_not_enough → quota)."""
    code = as_int(payload.get("code"))
    as_status = code if code is not None and 400 <= code < 600 else 200
    found = error_from_payload(payload, status=as_status)
    return type(found)(found.message, status=200, relay_code=found.relay_code)


def _is_success(code: object) -> bool:
    if isinstance(code, bool):
        return False
    if isinstance(code, int | float):
        return int(code) == 200
    return isinstance(code, str) and code.strip().lower() in ("success", "200", "ok")


def _task_id(data: Any) -> str:
    """The new task's id: `data.task_id` (format a) or `data` itself (format b)."""
    task_id = _str(data.get("task_id")) if isinstance(data, Mapping) else _str(data)
    if not task_id.strip():
        raise ProtocolError("the relay accepted the Suno task but sent no task id")
    return task_id.strip()


def parse_task_a(data: Any, *, task_id: str = "") -> SunoTask:
    """Format a's task object: `{task_id, status, input, clips: {id: clip}}`."""
    if not isinstance(data, Mapping):
        raise ProtocolError("the relay's Suno reply has no task object")
    raw = _str(data.get("status")).strip()
    clips = parse_clips(data.get("clips"))
    status = normalise_status(raw, clips)
    return SunoTask(
        task_id=_str(data.get("task_id")).strip() or task_id,
        format=FORMAT_A,
        status=status,
        raw_status=raw,
        progress=parse_progress(data.get("progress")),
        fail_reason=_fail_reason(data, clips) if status == FAILED else "",
        clips=clips,
    )


def parse_task_b(data: Any, *, task_id: str = "") -> SunoTask:
    """Format b's task object: `{task_id, action, status, fail_reason, progress, data: [clips]}`."""
    if isinstance(data, list):  # POST /suno/fetch answers a list; take the task asked for
        matches = [item for item in data if isinstance(item, Mapping)]
        data = next((item for item in matches if _str(item.get("task_id")) == task_id), None) or (
            matches[0] if matches else None
        )
    if not isinstance(data, Mapping):
        raise ProtocolError("the relay's Suno reply has no task object")
    raw = _str(data.get("status")).strip()
    clips = parse_clips(data.get("data"))
    status = normalise_status(raw, clips)
    return SunoTask(
        task_id=_str(data.get("task_id")).strip() or task_id,
        format=FORMAT_B,
        status=status,
        raw_status=raw,
        progress=parse_progress(data.get("progress")),
        fail_reason=_fail_reason(data, clips) if status == FAILED else "",
        clips=clips,
    )


def normalise_status(raw: str, clips: tuple[SunoClip, ...] = ()) -> str:
    """PENDING, PROCESSING, COMPLETED or FAILED from the relay's word. A task without a word
    is judged by its clips: all complete → completed, any error → failed."""
    word = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if word in _STATUS_WORDS:
        return _STATUS_WORDS[word]
    if clips and all(clip.status == "complete" for clip in clips):
        return COMPLETED
    if clips and any(clip.status == "error" for clip in clips):
        return FAILED
    if any(clip.status == "streaming" for clip in clips):
        return PROCESSING
    return PENDING


def parse_clips(value: object) -> tuple[SunoClip, ...]:
    """Clips as an object keyed by id (format a) or a list (format b)."""
    if isinstance(value, Mapping):
        items: list[tuple[str, object]] = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        items = [("", item) for item in value]
    else:
        return ()
    clips = []
    for key, item in items:
        if isinstance(item, Mapping) and (clip := parse_clip(item, clip_id=key)) is not None:
            clips.append(clip)
    return tuple(clips)


def parse_clip(item: Mapping[str, Any], *, clip_id: str = "") -> SunoClip | None:
    metadata = item.get("metadata")
    meta: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else {}
    identifier = _str(item.get("id") or item.get("clip_id")).strip() or clip_id
    if not identifier:
        return None

    def either(key: str) -> object:
        return meta.get(key) if meta.get(key) not in (None, "") else item.get(key)

    return SunoClip(
        id=identifier,
        title=_str(item.get("title")).strip(),
        status=_str(item.get("status")).strip().lower(),
        audio_url=_str(item.get("audio_url")).strip(),
        video_url=_str(item.get("video_url")).strip(),
        image_url=_str(item.get("image_url")).strip(),
        image_large_url=_str(item.get("image_large_url")).strip(),
        lyrics=_str(either("prompt") or item.get("lyric")).strip(),
        tags=_str(either("tags")).strip(),
        duration=_float(either("duration")),
        model_name=_str(item.get("model_name") or item.get("mv")).strip(),
        error_message=_str(either("error_message")).strip(),
    )


def _fail_reason(data: Mapping[str, Any], clips: tuple[SunoClip, ...]) -> str:
    """The relay's words for a failed task: its fail_reason / error, else a clip's error."""
    error = data.get("error")
    candidates = [
        data.get("fail_reason"),
        error.get("message") if isinstance(error, Mapping) else error,
        data.get("error_message"),
        data.get("message"),
        *(clip.error_message for clip in clips),
    ]
    return next((text for value in candidates if (text := _str(value).strip())), "")


def _str(value: object) -> str:
    if value is None or isinstance(value, Mapping | list | bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
