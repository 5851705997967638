"""The Midjourney family (`/mj/*`, midjourney-proxy "plus" protocol, upstream-api.md §2.2, §4).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Submits answer
HTTP 200 with a result code (§2.2): anything but an accepted task raises the matching
UpstreamError; the relay's own rejections (HTTP 400 `{"description", "type", "code"}`, §2.3)
are mapped by `error_from_response` already. Task objects are read leniently: numbers may be
strings, lists may be missing, `imageUrls` items may be strings or `{"url": ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import (
    BadRequestError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
)
from studio.upstream.lenient import as_str

BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
BLEND_DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
FINISHED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCEL"})

# Result codes of the submit-result envelope (§2.2).
ACCEPTED = 1
EXISTS_OR_MODAL = 21
QUEUED = 22
QUEUE_FULL = 23
BANNED_PROMPT = 24
NOT_FOUND = 3
VALIDATION = 4
SYSTEM_ERROR = 9

_PERCENT = re.compile(r"-?\d+(?:\.\d+)?")


class MidjourneyError(UpstreamError):
    """The Midjourney proxy reported a failure of its own (code 9 or an unknown code)."""

    code = "midjourney"


@dataclass(frozen=True)
class SubmitResult:
    """An accepted submit: the task to poll, and whether it waits for a modal confirmation."""

    task_id: str
    code: int = ACCEPTED
    description: str = ""
    needs_modal: bool = False
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    custom_id: str
    label: str = ""
    emoji: str = ""


@dataclass(frozen=True)
class MJTask:
    id: str
    action: str = ""
    status: str = ""
    progress: int = 0
    image_url: str = ""
    image_urls: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    fail_reason: str = ""
    final_prompt: str = ""
    prompt: str = ""
    description: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def needs_modal(self) -> bool:
        return self.status == "MODAL"


# --- submits --------------------------------------------------------------------------------


async def imagine(
    client: RelayClient,
    prompt: str,
    *,
    bot_type: str = "MID_JOURNEY",
    base64_array: Sequence[str] | None = None,
    state: str | None = None,
) -> SubmitResult:
    body: dict[str, Any] = {"prompt": prompt, "botType": bot_type}
    if base64_array:
        body["base64Array"] = list(base64_array)
    if state:
        body["state"] = state
    return await _submit(client, "mj_imagine", body)


async def blend(
    client: RelayClient,
    images_base64: Sequence[str],
    *,
    dimensions: str = "SQUARE",
    bot_type: str = "MID_JOURNEY",
    state: str | None = None,
) -> SubmitResult:
    body: dict[str, Any] = {
        "base64Array": list(images_base64),
        "dimensions": dimensions,
        "botType": bot_type,
    }
    if state:
        body["state"] = state
    return await _submit(client, "mj_blend", body)


async def describe(
    client: RelayClient,
    image_base64: str,
    *,
    bot_type: str = "MID_JOURNEY",
    state: str | None = None,
) -> SubmitResult:
    body: dict[str, Any] = {"base64": image_base64, "botType": bot_type}
    if state:
        body["state"] = state
    return await _submit(client, "mj_describe", body)


async def shorten(
    client: RelayClient, prompt: str, *, bot_type: str = "MID_JOURNEY"
) -> SubmitResult:
    return await _submit(client, "mj_shorten", {"prompt": prompt, "botType": bot_type})


async def action(client: RelayClient, task_id: str, custom_id: str) -> SubmitResult:
    """Press a button of a finished task; the result is a new task."""
    return await _submit(client, "mj_action", {"taskId": task_id, "customId": custom_id})


async def modal(
    client: RelayClient, task_id: str, *, prompt: str = "", mask_base64: str = ""
) -> SubmitResult:
    body: dict[str, Any] = {"taskId": task_id}
    if prompt:
        body["prompt"] = prompt
    if mask_base64:
        body["maskBase64"] = mask_base64
    return await _submit(client, "mj_modal", body)


async def swap_face(client: RelayClient, source_base64: str, target_base64: str) -> SubmitResult:
    """InsightFace face swap (§5): put the face of `source_base64` into `target_base64`, both
    data URIs. Poll the task with `fetch` (action SWAP_FACE, no buttons). A missing image is
    refused by the relay with code 4 `sour_base64_and_target_base64_is_required`."""
    body = {"sourceBase64": source_base64, "targetBase64": target_base64}
    return await _submit(client, "mj_swap_face", body)


async def fetch(client: RelayClient, task_id: str) -> MJTask:
    payload = await client._request_json(
        "GET", "mj_fetch", path_params={"id": task_id}, timeout=QUICK_TIMEOUT
    )
    return parse_task(payload, task_id=task_id)


async def image_seed(client: RelayClient, task_id: str) -> str:
    """The seed of a finished task (§4.11): the submit-result envelope with the seed, a string
    of digits, in `result`. Codes 3 / 4 (task missing, not finished) raise BadRequestError."""
    payload = await client._request_json(
        "GET", "mj_image_seed", path_params={"id": task_id}, timeout=QUICK_TIMEOUT
    )
    if _int(payload.get("code"), default=-1) == ACCEPTED and not as_str(payload.get("result")):
        raise ProtocolError("the relay sent no seed", relay_code=str(ACCEPTED))
    return read_submit_result(payload).task_id


async def _submit(client: RelayClient, path_name: str, body: dict[str, Any]) -> SubmitResult:
    payload = await client._request_json("POST", path_name, json=body, timeout=MEDIA_TIMEOUT)
    return read_submit_result(payload)


# --- reading replies ------------------------------------------------------------------------


def read_submit_result(payload: Mapping[str, Any]) -> SubmitResult:
    """The §2.2 envelope: an accepted task, or the matching UpstreamError."""
    code = _int(payload.get("code"), default=-1)
    description = as_str(payload.get("description")).strip()
    properties = payload.get("properties")
    props: dict[str, Any] = dict(properties) if isinstance(properties, Mapping) else {}
    task_id = as_str(payload.get("result")).strip()
    relay_code = str(code) if code != -1 else as_str(payload.get("code")) or None
    if code in (ACCEPTED, EXISTS_OR_MODAL, QUEUED):
        if not task_id:
            raise ProtocolError(
                f"the relay accepted the task but sent no task id ({description or code})",
                relay_code=relay_code,
            )
        needs_modal = code == EXISTS_OR_MODAL and (
            as_str(props.get("status")).upper() == "MODAL"
            or "window confirm" in description.casefold()
        )
        return SubmitResult(task_id, code, description, needs_modal, props)
    if code == QUEUE_FULL:
        raise RateLimitedError(
            f"the Midjourney queue is full, try again later ({description or 'queue full'})",
            relay_code=relay_code,
        )
    if code == BANNED_PROMPT:
        word = as_str(props.get("bannedWord")).strip()
        message = description or "the prompt contains a banned word"
        if word:
            message = f"{message} — banned word: {word}"
        raise BadRequestError(message, relay_code=relay_code)
    if code == NOT_FOUND:
        lowered = description.casefold()
        if "账号" in description or "account" in lowered or "instance" in lowered:
            # "No available account instance": nothing was created; trying later is safe.
            raise UnavailableError(description, relay_code=relay_code)
        raise BadRequestError(description or "not found", relay_code=relay_code)
    if code == VALIDATION:
        raise BadRequestError(description or "validation error", relay_code=relay_code)
    raise MidjourneyError(description or f"result code {code}", relay_code=relay_code)


def parse_task(payload: Mapping[str, Any], *, task_id: str = "") -> MJTask:
    properties = payload.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    final_prompt = as_str(props.get("finalPrompt")) or as_str(payload.get("finalPrompt"))
    return MJTask(
        id=as_str(payload.get("id")) or task_id,
        action=as_str(payload.get("action")).upper(),
        status=as_str(payload.get("status")).upper(),
        progress=parse_progress(payload.get("progress")),
        image_url=as_str(payload.get("imageUrl")),
        image_urls=_image_urls(payload.get("imageUrls")),
        buttons=_buttons(payload.get("buttons")),
        fail_reason=as_str(payload.get("failReason")),
        final_prompt=final_prompt,
        prompt=as_str(payload.get("prompt")),
        description=as_str(payload.get("description")),
    )


def parse_progress(value: object) -> int:
    """A percentage: "45%" → 45; bare numbers (45, 45.5, "45") too; clamped to 0-100."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _PERCENT.search(str(value))
        if not match:
            return 0
        number = float(match.group(0))
    return max(0, min(100, int(number)))


def _image_urls(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    urls: list[str] = []
    for item in value:
        url = as_str(item.get("url")) if isinstance(item, Mapping) else as_str(item)
        if url:
            urls.append(url)
    return tuple(urls)


def _buttons(value: object) -> tuple[Button, ...]:
    if not isinstance(value, list):
        return ()
    buttons = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        custom_id = as_str(item.get("customId") or item.get("custom_id"))
        if custom_id:
            buttons.append(Button(custom_id, as_str(item.get("label")), as_str(item.get("emoji"))))
    return tuple(buttons)


def _int(value: object, *, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return default
