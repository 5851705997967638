"""The Viggle family (`/viggle/*`, a reverse-engineered web API, upstream-api.md §15).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Every Viggle reply
is the envelope `{code, message, data}`; `code` 0 is success and anything else an error, raised
as the matching UpstreamError with the relay's message, whether it came with HTTP 200 or a
failing status. "Insufficient credits" (in English or Chinese) is a QuotaError.

How a dance is made: the character image is uploaded as an asset (`upload_image` → its id); the
motion comes from an official template (`templates`, filtered by `template_tags`) or from a
video uploaded as an asset for that image (`upload_video`); `create_task` starts the render and
`get_tasks` asks how it is doing, until `status` 0 brings the `result` video and its cover.

What is seen elsewhere and what is guessed (grade C throughout; every path is overridable):

* Seen on another reseller: the upload paths and their multipart `file`; the tag list; the
  template list with `page`, `pageSize`, `searchKeyword`, `tagID`, `type=0` for Mix; the Mix
  task body `{imageID, videoID | templateID, bgMode, modelInfoID, watermark}` answered by
  `{taskID, mqType}`; the query `POST .../by-ids {ids}` answered by a list of tasks with
  `status` (0 = finished), `result`, `resultCover`, `videoDuration`. A Mix request is sent in
  exactly that shape.
* Guessed: `type=1` lists the Multi templates; Multi and Move are created on the same path
  (own path names, so staff can move them) with `type` 1 / 2 in the body, and Multi sends every
  character as `imageIDs` (the first one also as `imageID`, the image its video is uploaded
  for); Move sends no `bgMode` (it keeps the still image's own scene); a template may tell how
  many characters it takes (`characterCount` or similar); a task that failed has a negative
  `status` or a failure text (`errMsg`, `failReason`…); statuses other than 0 that are not
  failures mean queued / rendering; the credits query `GET /viggle/credits` answers a number or
  an object of credit buckets (`freeCredits`, `planCredits`, `purchasedCredits` as in the task
  objects seen elsewhere, or a total). The YIAPI index calls the task query a GET; the POST
  seen elsewhere is used, its path overridable.
* `bgMode`: 0 white, 1 green screen, 2 the motion video's background, 3 the character image's.
  `modelInfoID`: 2 and 3 (V2, V2 Turbo) are seen elsewhere; 4 is a newer model (a guess).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx

from studio.upstream.client import (
    MEDIA_TIMEOUT,
    QUICK_TIMEOUT,
    RelayClient,
    RelayCredentials,
    tls_context,
)
from studio.upstream.errors import (
    ProtocolError,
    QuotaError,
    UpstreamError,
    error_from_payload,
    user_message,
)
from studio.upstream.progress import parse_progress

MIX: Final = "mix"
MULTI: Final = "multi"
MOVE: Final = "move"
MODES: Final = (MIX, MULTI, MOVE)

# The `type` of the template list (0 seen elsewhere for Mix; 1 for Multi is a guess) and of a
# Multi / Move task body (guesses; a Mix body carries no type, as seen elsewhere).
TEMPLATE_TYPES: Final = {MIX: 0, MULTI: 1}
TASK_TYPES: Final = {MULTI: 1, MOVE: 2}
_CREATE_PATHS: Final = {
    MIX: "viggle_video_task",
    MULTI: "viggle_video_task_multi",
    MOVE: "viggle_video_task_move",
}

BG_MODES: Final = (0, 1, 2, 3)
MODEL_INFO_IDS: Final = (2, 3, 4)
PAGE_SIZE: Final = 48
MAX_CHARACTERS: Final = 3  # Multi: the most character images a request carries

FINISHED_STATUS: Final = 0

# The form page waits for these calls: fail fast rather than hold the page for a minute.
CATALOG_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)


@dataclass(frozen=True)
class ViggleAsset:
    """An uploaded image or video as Viggle keeps it."""

    id: str
    url: str = ""
    cover_url: str = ""  # videos: a still of the video
    name: str = ""
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class ViggleTag:
    id: str
    name: str
    sort: int = 0


@dataclass(frozen=True)
class ViggleTemplate:
    id: str
    description: str = ""
    command: str = ""
    video_url: str = ""  # processedURL: the dance itself
    cover_url: str = ""  # processedCoverURL
    gif_url: str = ""
    display_url: str = ""
    width: int = 0
    height: int = 0
    characters: int = 0  # how many characters a Multi template takes; 0 when not said

    @property
    def preview_url(self) -> str:
        """The best thing to look at: the video, else its animation, else its still."""
        return self.video_url or self.display_url or self.gif_url or self.cover_url


@dataclass(frozen=True)
class ViggleSubmitted:
    task_id: str
    mq_type: str = ""


@dataclass(frozen=True)
class ViggleTask:
    task_id: str
    status: int | None = None  # 0 = finished; None when the relay sent none
    result: str = ""  # the video's URL
    result_cover: str = ""
    video_duration: str = ""  # seconds, as sent
    failure: str = ""  # the relay's words when the task failed
    failed_status: bool = False  # a status that says "failed" outright
    progress: int | None = None  # only when a relay adds one
    created_at: float = 0.0  # seconds since the epoch; 0 when not sent

    @property
    def failed(self) -> bool:
        if self.failed_status:
            return True
        return self.status == FINISHED_STATUS and not self.result and bool(self.failure)

    @property
    def succeeded(self) -> bool:
        return self.status == FINISHED_STATUS and bool(self.result) and not self.failed_status

    @property
    def finished(self) -> bool:
        return self.status == FINISHED_STATUS or self.failed


@dataclass(frozen=True)
class ViggleCredits:
    """Remaining credits: the total, and the buckets when the relay sends them apart."""

    total: float
    free: float | None = None
    plan: float | None = None
    purchased: float | None = None

    @property
    def display(self) -> str:
        return f"{self.total:g}" if math.isfinite(self.total) else "?"


@dataclass(frozen=True)
class ViggleCatalog:
    """What a form shows: the credits, the tags and both template lists, each part with the
    user-facing reason it is missing when its call failed (the others still come)."""

    credits: ViggleCredits | None = None
    credits_error: str = ""
    tags: tuple[ViggleTag, ...] = ()
    tags_error: str = ""
    templates: Mapping[str, tuple[ViggleTemplate, ...]] = field(default_factory=dict)
    templates_error: str = ""


# --- calls ----------------------------------------------------------------------------------


async def upload_image(
    client: RelayClient, filename: str, content: bytes, mime: str = "image/png"
) -> ViggleAsset:
    """Upload a character image to the image asset library (multipart `file`)."""
    payload = await _call(
        client,
        "POST",
        "viggle_asset_image",
        files={"file": (filename or "character.png", content, mime)},
        timeout=MEDIA_TIMEOUT,
    )
    return _uploaded(read_envelope(payload), "image")


async def upload_video(
    client: RelayClient,
    image_id: str,
    filename: str,
    content: bytes,
    mime: str = "video/mp4",
) -> ViggleAsset:
    """Upload a motion video to the video asset library, for the character image `image_id`."""
    payload = await _call(
        client,
        "POST",
        "viggle_asset_video",
        files={"file": (filename or "motion.mp4", content, mime)},
        path_params={"image_id": image_id},
        timeout=MEDIA_TIMEOUT,
    )
    return _uploaded(read_envelope(payload), "video")


async def template_tags(
    client: RelayClient,
    *,
    timeout: httpx.Timeout = QUICK_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
) -> list[ViggleTag]:
    """The tags the official templates are filed under, in the relay's order (`sort`)."""
    payload = await _call(client, "GET", "viggle_template_tags", timeout=timeout)
    return parse_tags(read_envelope(payload))


async def templates(
    client: RelayClient,
    *,
    template_type: int = TEMPLATE_TYPES[MIX],
    tag_id: str = "",
    search: str = "",
    page: int = 1,
    page_size: int = PAGE_SIZE,
    timeout: httpx.Timeout = QUICK_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
) -> list[ViggleTemplate]:
    """One page of official templates of a type (0 Mix, 1 Multi), of a tag, matching `search`."""
    params = {
        "page": max(1, page),
        "pageSize": page_size,
        "searchKeyword": search,
        "tagID": tag_id,
        "type": template_type,
    }
    payload = await _call(client, "GET", "viggle_templates", params=params, timeout=timeout)
    return parse_templates(read_envelope(payload))


async def create_task(
    client: RelayClient,
    mode: str,
    image_ids: Sequence[str],
    *,
    video_id: str = "",
    template_id: str = "",
    bg_mode: int = 2,
    model_info_id: int = 3,
    watermark: bool = False,
) -> ViggleSubmitted:
    """Start a render. `image_ids` are uploaded character images (one for Mix and Move, two or
    more for Multi); the motion is `video_id` (an uploaded video) or `template_id`."""
    body = task_body(
        mode,
        image_ids,
        video_id=video_id,
        template_id=template_id,
        bg_mode=bg_mode,
        model_info_id=model_info_id,
        watermark=watermark,
    )
    payload = await _call(client, "POST", _CREATE_PATHS[mode], json=body, timeout=MEDIA_TIMEOUT)
    data = read_envelope(payload)
    submitted = parse_submitted(data)
    if not submitted.task_id:
        raise ProtocolError("the relay accepted the Viggle task but sent no taskID")
    return submitted


def task_body(
    mode: str,
    image_ids: Sequence[str],
    *,
    video_id: str = "",
    template_id: str = "",
    bg_mode: int = 2,
    model_info_id: int = 3,
    watermark: bool = False,
) -> dict[str, Any]:
    """The JSON body of a render request (see the module docstring for what is a guess)."""
    if mode not in MODES:
        raise ValueError(f"unknown Viggle mode {mode!r}")
    ids = [str(image_id) for image_id in image_ids if str(image_id)]
    if not ids:
        raise ValueError("a Viggle task needs a character image")
    if bool(video_id) == bool(template_id):
        raise ValueError("a Viggle task needs a motion video or a template, not both")
    body: dict[str, Any] = {"imageID": ids[0]}
    if mode == MULTI:
        body["imageIDs"] = ids
    if video_id:
        body["videoID"] = str(video_id)
    else:
        body["templateID"] = str(template_id)
    if mode != MOVE:
        body["bgMode"] = int(bg_mode)
    body["modelInfoID"] = int(model_info_id)
    body["watermark"] = 1 if watermark else 0
    if mode in TASK_TYPES:
        body["type"] = TASK_TYPES[mode]
    return body


async def get_tasks(client: RelayClient, task_ids: Sequence[str]) -> list[ViggleTask]:
    """The state of several tasks in one call (those the relay knows; unknown ids are left out)."""
    payload = await _call(
        client,
        "POST",
        "viggle_video_task_by_ids",
        json={"ids": [str(task_id) for task_id in task_ids]},
        timeout=QUICK_TIMEOUT,
    )
    return parse_tasks(read_envelope(payload))


async def get_task(client: RelayClient, task_id: str) -> ViggleTask | None:
    """The state of one task, or None when the relay's answer does not list it."""
    for task in await get_tasks(client, [task_id]):
        if task.task_id == str(task_id):
            return task
    return None


async def credits(
    client: RelayClient,
    *,
    timeout: httpx.Timeout = QUICK_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
) -> ViggleCredits:
    """The account's remaining Viggle credits (the credits query, a guessed path)."""
    payload = await _call(client, "GET", "viggle_credits", timeout=timeout)
    return parse_credits(read_envelope(payload))


async def load_catalog(
    client: RelayClient,
    *,
    tag_id: str = "",
    search: str = "",
    page: int = 1,
    timeout: httpx.Timeout = CATALOG_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
) -> ViggleCatalog:
    """Credits, tags and the Mix and Multi template lists, asked at once. A part that fails
    is left empty with the reason to show; the other parts still come."""

    async def call(coro: Any) -> Any:
        try:
            return await coro
        except UpstreamError as error:
            return error

    async def page_of(mode: str) -> list[ViggleTemplate]:
        return await templates(
            client,
            template_type=TEMPLATE_TYPES[mode],
            tag_id=tag_id,
            search=search,
            page=page,
            timeout=timeout,
        )

    found_credits, found_tags, mix, multi = await asyncio.gather(
        call(credits(client, timeout=timeout)),
        call(template_tags(client, timeout=timeout)),
        call(page_of(MIX)),
        call(page_of(MULTI)),
    )
    lists = {MIX: mix, MULTI: multi}
    failed = [value for value in (mix, multi) if isinstance(value, UpstreamError)]
    return ViggleCatalog(
        credits=found_credits if isinstance(found_credits, ViggleCredits) else None,
        credits_error=_reason(found_credits),
        tags=tuple(found_tags) if isinstance(found_tags, list) else (),
        tags_error=_reason(found_tags),
        templates={mode: tuple(value) for mode, value in lists.items() if isinstance(value, list)},
        templates_error=_reason(failed[0]) if failed else "",
    )


def _reason(value: object) -> str:
    return user_message(value) if isinstance(value, UpstreamError) else ""


@asynccontextmanager
async def own_connection(credentials: RelayCredentials) -> AsyncIterator[RelayClient]:
    """A RelayClient on a connection of its own, closed on the way out: for a synchronous
    caller (a form page) whose event loop may end with the call, and which must not close the
    process's shared pool that other requests on the server's loop are using."""
    async with httpx.AsyncClient(
        timeout=CATALOG_TIMEOUT, verify=tls_context(), follow_redirects=False, trust_env=False
    ) as http:
        yield RelayClient(credentials, http_client=http)


async def _call(client: RelayClient, method: str, path_name: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return await client._request_json(method, path_name, **kwargs)
    except UpstreamError as error:
        raise _with_viggle_class(error) from None


# --- reading replies ------------------------------------------------------------------------

_OK_CODES: Final = frozenset({"0", "200", "ok", "success"})
_CREDIT_SHORTAGE = re.compile(
    r"(insufficient|not enough|no more|run out of|out of|exhausted)\W+(\w+\W+)?credit"
    r"|credits?\W+(\w+\W+)?(insufficient|not enough|exhausted|used up)"
    r"|积分不足|积分已用完|积分余额不足|点数不足",
    re.IGNORECASE,
)


def is_credit_shortage(message: str) -> bool:
    """Whether the relay's words say the account has too few Viggle credits."""
    return bool(_CREDIT_SHORTAGE.search(message or ""))


def read_envelope(payload: Mapping[str, Any]) -> Any:
    """The envelope's `data`; a non-zero `code` raises the matching UpstreamError."""
    code = payload.get("code")
    if code is None:
        if "data" in payload:
            return payload["data"]  # a relay that drops the code on success
        raise ProtocolError(f"the relay's Viggle reply has no result code: {_keys(payload)}")
    if str(code).strip().lower() not in _OK_CODES:
        raise error_from_envelope(payload, status=200)
    return payload.get("data")


def error_from_envelope(payload: Mapping[str, Any], *, status: int | None) -> UpstreamError:
    """The UpstreamError for a Viggle envelope whose `code` is not 0."""
    message = _str(payload.get("message") or payload.get("msg")).strip()
    code = _str(payload.get("code")).strip()
    if is_credit_shortage(message):
        return QuotaError(message, status=status, relay_code=code or None)
    error = error_from_payload(
        {"code": payload.get("code"), "message": message or f"Viggle error {code}"},
        status=status,
    )
    return error


def _with_viggle_class(error: UpstreamError) -> UpstreamError:
    """A failing HTTP status was classified by its status; "insufficient credits" in the body
    (HTTP 400 or 403) is a quota, not a bad request or a rejected key."""
    if isinstance(error, QuotaError) or not is_credit_shortage(error.message):
        return error
    return QuotaError(
        error.message,
        status=error.status,
        relay_code=error.relay_code,
        retry_after=error.retry_after,
    )


def _uploaded(data: Any, what: str) -> ViggleAsset:
    if not isinstance(data, Mapping):
        raise ProtocolError(f"the relay's Viggle {what} upload sent no asset object")
    asset = parse_asset(data)
    if not asset.id:
        raise ProtocolError(f"the relay accepted the Viggle {what} but sent no id")
    return asset


def parse_asset(data: Mapping[str, Any]) -> ViggleAsset:
    return ViggleAsset(
        id=_id(data.get("id", data.get("assetID"))),
        url=_str(data.get("url")).strip(),
        cover_url=_str(data.get("coverURL") or data.get("coverUrl")).strip(),
        name=_str(data.get("name")).strip(),
        width=_int(data.get("width")) or 0,
        height=_int(data.get("height")) or 0,
    )


def parse_tags(data: Any) -> list[ViggleTag]:
    tags = []
    for item in _items(data):
        if not isinstance(item, Mapping):
            continue
        tag_id, name = _id(item.get("id")), _str(item.get("name")).strip()
        if tag_id and name:
            tags.append(ViggleTag(tag_id, name, _int(item.get("sort")) or 0))
    return sorted(tags, key=lambda tag: tag.sort)


def parse_templates(data: Any) -> list[ViggleTemplate]:
    found = []
    for item in _items(data):
        if not isinstance(item, Mapping) or not (template_id := _id(item.get("id"))):
            continue
        characters = next(
            (
                count
                for key in ("characterCount", "peopleCount", "personCount", "roleCount")
                if (count := _int(item.get(key)))
            ),
            0,
        )
        found.append(
            ViggleTemplate(
                id=template_id,
                description=_str(item.get("description")).strip(),
                command=_str(item.get("webCommand") or item.get("command")).strip(),
                video_url=_str(item.get("processedURL") or item.get("processedHdURL")).strip(),
                cover_url=_str(
                    item.get("processedCoverURL") or item.get("displayCoverURL")
                ).strip(),
                gif_url=_str(item.get("gifURL") or item.get("webPURL")).strip(),
                display_url=_str(item.get("displayURL") or item.get("displayHdURL")).strip(),
                width=_int(item.get("width")) or 0,
                height=_int(item.get("height")) or 0,
                characters=max(0, characters),
            )
        )
    return found


def parse_submitted(data: Any) -> ViggleSubmitted:
    if isinstance(data, Mapping):
        task_id = _id(data.get("taskID", data.get("taskId", data.get("id"))))
        return ViggleSubmitted(task_id, _str(data.get("mqType")))
    return ViggleSubmitted(_id(data))  # a bare id


_FAILED_WORDS: Final = frozenset({"failed", "fail", "failure", "error", "cancelled", "canceled"})
_FAILURE_KEYS: Final = ("errMsg", "errorMsg", "failReason", "failedReason", "failMsg", "reason")


def parse_tasks(data: Any) -> list[ViggleTask]:
    return [parse_task(item) for item in _items(data) if isinstance(item, Mapping)]


def parse_task(data: Mapping[str, Any]) -> ViggleTask:
    raw_status = data.get("status")
    status = _int(raw_status)
    words = _str(raw_status).strip().lower()
    failed_status = (status is not None and status < 0) or words in _FAILED_WORDS
    if words in ("success", "succeeded", "finished", "done", "completed"):
        status = FINISHED_STATUS
    failure = next((text for key in _FAILURE_KEYS if (text := _str(data.get(key)).strip())), "")
    return ViggleTask(
        task_id=_id(data.get("taskID", data.get("taskId", data.get("id")))),
        status=status,
        result=_str(data.get("result") or data.get("resultURL")).strip(),
        result_cover=_str(data.get("resultCover") or data.get("resultCoverURL")).strip(),
        video_duration=_str(data.get("videoDuration")).strip(),
        failure=failure,
        failed_status=failed_status,
        progress=parse_progress(data.get("progress")),
        created_at=_timestamp(data.get("createdAt")),
    )


_CREDIT_TOTAL_KEYS: Final = (
    "credits",
    "remainingCredits",
    "remaining",
    "totalCredits",
    "total",
    "balance",
    "credit",
)


def parse_credits(data: Any) -> ViggleCredits:
    """A number, or an object with a total or the free / plan / purchased buckets."""
    number = _number(data)
    if number is not None:
        return ViggleCredits(number)
    if not isinstance(data, Mapping):
        raise ProtocolError("the relay's Viggle credits reply holds no number")
    free, plan, purchased = (
        _number(data.get(key)) for key in ("freeCredits", "planCredits", "purchasedCredits")
    )
    total = next(
        (value for key in _CREDIT_TOTAL_KEYS if (value := _number(data.get(key))) is not None),
        None,
    )
    if total is None:
        buckets = [value for value in (free, plan, purchased) if value is not None]
        if not buckets:
            raise ProtocolError(f"the relay's Viggle credits reply holds no number: {_keys(data)}")
        total = sum(buckets)
    return ViggleCredits(total, free, plan, purchased)


def _items(data: Any) -> list[Any]:
    """A list as sent, or the list inside a page object (`list`, `items`, `records`…)."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in ("list", "items", "records", "rows", "data", "templates", "tags", "tasks"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return []


def _timestamp(value: object) -> float:
    """Seconds since the epoch from an ISO 8601 string or a number (seconds or milliseconds)."""
    number = _number(value)
    if number is not None:
        return number / 1000 if number > 1e11 else number
    text = _str(value).strip()
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _keys(payload: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(key) for key in payload)) or "empty object"


def _id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _str(value).strip()


def _str(value: object) -> str:
    if value is None or isinstance(value, Mapping | list | bool):
        return ""
    return str(value)


def _int(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None
