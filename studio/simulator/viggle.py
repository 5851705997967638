"""Viggle (a reverse-engineered web API behind the relay, upstream-api.md §15, grade C).

Every answer is the envelope ``{code, message, data}``: ``code`` 0 with ``message`` "ok" on
success; a native error is a non-zero ``code`` (sent with HTTP 200 by default, as such web
APIs do; ``[[viggle:http4xx]]`` sends it with a 4xx status instead):

  40001  invalid parameter (missing file, not an image / video, bad field)
  40002  no character found in the image (``[[viggle:refuse]]`` on an image upload)
  40004  asset, template or task not found
  40013  insufficient credits (the account's balance, or ``[[viggle:no-credits]]``)

What it keeps, per token (the relay's account): uploaded image and video assets (a video is
uploaded *for* an image: ``/viggle/asset/video/{imageID}``), render tasks, and credits (300 to
start: 100 free, 200 from a plan; a render costs 10, 5 more per extra character, taken free
first and given back when the render fails).

Official templates: a handful of Mix ones (``type`` 0) and Multi ones (``type`` 1) under three
tags, each with a real cover PNG, an animated GIF and an MP4 (the sample clip) served without
auth at ``/viggle/media/...``. The list honours ``page``, ``pageSize``, ``tagID``, ``type`` and
``searchKeyword``.

Render requests (``POST /viggle/video-task``): Mix ``{imageID, videoID | templateID, bgMode,
modelInfoID, watermark}``; Multi adds ``type`` 1 and ``imageIDs`` (2 or 3 characters, the
first also as ``imageID``) and takes Multi templates; Move is ``type`` 2 and needs no
``bgMode``. A task is queued (``status`` 1), rendering (2), then finished (0) with ``result``
(the sample MP4, an expiring link) and ``resultCover`` (the motion's cover with the first
character pasted in); a failed task has ``status`` -1 and ``errMsg``. As for the other video
families, wall time (150 s at SIMULATOR_SPEED=1) and polling (each query moves a task one
step) both advance it.

Markers go where a Viggle caller controls text: an uploaded file's name, or an image's text
comment, remembered with the asset and applied to every render that uses it; and the template
list's ``searchKeyword``:
  [[viggle:fail]]        the render fails half-way (``status`` -1, ``errMsg``)
  [[viggle:refuse]]      an image upload is refused: no character found (40002)
  [[viggle:no-credits]]  the render is refused for insufficient credits (40013)
  [[viggle:http4xx]]     native errors come with HTTP 400 (403 for credits) instead of 200
  [[viggle:busy-once]]   the account's first render request answers the relay's 503 (no
                         channel); later ones go through (a submit sent again after it)
  [[expire]]             the result's links are expired from the start
  relay-level ones of specials.py ([[error:503]], [[error:429]]…), [[sleep=N]], [[slow]].
"""

from __future__ import annotations

import io
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from PIL import Image

from studio.simulator import media
from studio.simulator.specials import (
    Markers,
    no_channel,
    openai_special_error,
    parse_markers,
    pause,
    strip_markers,
)
from studio.simulator.state import Context
from studio.simulator.video import sample_video
from studio.simulator.web import BadRequestBody, Request, Response, json_response

INVALID = 40001
NO_CHARACTER = 40002
NOT_FOUND = 40004
NO_CREDITS = 40013

STEPS = 10
FAIL_AT_STEP = 5
QUEUED, RENDERING, FINISHED, FAILED = 1, 2, 0, -1

START_FREE_CREDITS = 100
START_PLAN_CREDITS = 200
TASK_COST = 10
EXTRA_CHARACTER_COST = 5

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_VIDEO_BYTES = 50 * 1024 * 1024
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
BG_MODES = (0, 1, 2, 3)
MODEL_INFO_IDS = (2, 3, 4)
MAX_PAGE_SIZE = 100
MIX, MULTI, MOVE = 0, 1, 2
MAX_CHARACTERS = 3
# A processed motion video, as Viggle reports it (portrait), whatever was uploaded.
VIDEO_SIZE = (720, 1280)
SAMPLE_SIZE = (320, 180)  # the sample clip every template and result is


# ------------------------------------------------------------------ templates


@dataclass(frozen=True)
class Template:
    id: str
    type: int  # 0 Mix, 1 Multi
    tag: str
    description: str
    command: str
    sort: int
    characters: int = 1


TAGS = (
    {"id": "1", "name": "Dance", "sort": 1},
    {"id": "2", "name": "Meme", "sort": 2},
    {"id": "3", "name": "Sports", "sort": 3},
)

TEMPLATES = (
    Template("1001", MIX, "2", "Stage walk-out", "/mix --template stage-walk-out", 1),
    Template("1002", MIX, "1", "Hip-hop shuffle", "/mix --template hiphop-shuffle", 2),
    Template("1003", MIX, "1", "Ballet pirouette", "/mix --template ballet-pirouette", 3),
    Template("1004", MIX, "3", "Victory celebration", "/mix --template victory", 4),
    Template("1005", MIX, "3", "Penalty kick", "/mix --template penalty-kick", 5),
    Template("1006", MIX, "1", "Running-man dance", "/mix --template running-man", 6),
    Template("2001", MULTI, "1", "Duet waltz", "/multi --template duet-waltz", 1, 2),
    Template("2002", MULTI, "3", "Team high-five", "/multi --template team-high-five", 2, 3),
    Template("2003", MULTI, "2", "Dance-off battle", "/multi --template dance-off", 3, 2),
)
TEMPLATES_BY_ID = {template.id: template for template in TEMPLATES}


@cache
def template_cover(template_id: str) -> bytes:
    template = TEMPLATES_BY_ID[template_id]
    return media.png(media.draw_picture(template.description, *SAMPLE_SIZE, label="Viggle"))


@cache
def template_gif(template_id: str) -> bytes:
    """A short animation of the template: a few frames of its picture in other colours."""
    template = TEMPLATES_BY_ID[template_id]
    frames = [
        media.draw_picture(template.description, 160, 90, variant=n).convert("P") for n in range(3)
    ]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=300, loop=0)
    return out.getvalue()


def _template_json(template: Template, base_url: str) -> dict[str, Any]:
    stem = f"{base_url}/viggle/media/template-{template.id}"
    width, height = SAMPLE_SIZE
    return {
        "id": template.id,
        "command": template.command,
        "webCommand": template.command,
        "description": template.description,
        "processedURL": f"{stem}.mp4",
        "processedHdURL": f"{stem}.mp4",
        "processedCoverURL": f"{stem}-cover.png",
        "displayURL": f"{stem}.mp4",
        "displayCoverURL": f"{stem}-cover.png",
        "gifURL": f"{stem}.gif",
        "webStatus": 1,
        "sort": template.sort,
        "width": width,
        "height": height,
        "characterCount": template.characters,
        "type": template.type,
    }


async def serve_media(req: Request, ctx: Context) -> Response:
    """Template media, public like a CDN's: template-<id>.mp4 / -cover.png / .gif."""
    name = req.params["name"]
    for suffix, content_type, make in (
        ("-cover.png", "image/png", template_cover),
        (".gif", "image/gif", template_gif),
        (".mp4", "video/mp4", lambda _id: sample_video()),
    ):
        template_id = name.removeprefix("template-").removesuffix(suffix)
        if name.startswith("template-") and name.endswith(suffix):
            if template_id in TEMPLATES_BY_ID:
                headers = [("Cache-Control", "public, max-age=86400")]
                return Response(200, make(template_id), content_type, headers)
    return Response(404, b"404 page not found", "text/plain; charset=utf-8")


# ------------------------------------------------------------------ accounts


@dataclass
class Asset:
    id: str
    kind: str  # image | video
    name: str
    data: bytes
    url: str
    markers: Markers
    image_id: str = ""  # a video: the image it was uploaded for
    cover: bytes = b""


@dataclass
class Task:
    id: str
    mode: int
    image_ids: list[str]
    video_id: str
    template_id: str
    bg_mode: int
    model_info_id: int
    watermark: int
    seconds: float
    cost_free: int
    cost_plan: int
    cost_purchased: int
    doomed: bool = False
    expire_files: bool = False
    step: int = 0
    failure: str = ""
    refunded: bool = False
    result_file: str = ""
    cover_file: str = ""
    clock_start: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return bool(self.failure) or self.step >= STEPS


@dataclass
class Account:
    free: int = START_FREE_CREDITS
    plan: int = START_PLAN_CREDITS
    purchased: int = 0
    assets: dict[str, Asset] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    was_busy: bool = False

    @property
    def total(self) -> int:
        return self.free + self.plan + self.purchased

    def charge(self, cost: int) -> tuple[int, int, int]:
        """Take `cost` credits, free ones first; return what came from each bucket."""
        taken = []
        for bucket in ("free", "plan", "purchased"):
            part = min(cost, getattr(self, bucket))
            setattr(self, bucket, getattr(self, bucket) - part)
            cost -= part
            taken.append(part)
        return taken[0], taken[1], taken[2]


ACCOUNTS: dict[str, Account] = {}


def account(token: str) -> Account:
    return ACCOUNTS.setdefault(token, Account())


# ------------------------------------------------------------------ envelopes


def ok(data: Any) -> Response:
    return json_response({"code": 0, "message": "ok", "data": data})


def native_error(code: int, message: str, markers: Markers) -> Response:
    status = 200
    if markers.has("viggle:http4xx"):
        status = {NO_CREDITS: 403, NOT_FOUND: 404}.get(code, 400)
    return json_response({"code": code, "message": message, "data": None}, status)


def _now_iso(moment: float | None = None) -> str:
    when = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _video_kind(head: bytes) -> str:
    """The container of a motion video by its first bytes: mp4, mov, webm, or ""."""
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in head[:64]:
        return "webm"
    return ""


# ------------------------------------------------------------------ assets


async def upload_image(req: Request, ctx: Context) -> Response:
    try:
        _fields, files = req.multipart()
    except BadRequestBody as exc:
        return native_error(INVALID, f"invalid multipart body: {exc}", Markers())
    upload = files.get("file")
    if upload is None or not upload.data:
        return native_error(INVALID, "file is required", Markers())
    markers = parse_markers(upload.filename, media.image_comment(upload.data))
    if (error := openai_special_error(markers, "viggle")) is not None:
        return error
    if len(upload.data) > MAX_IMAGE_BYTES:
        return native_error(INVALID, "the image must be at most 10MB", markers)
    image_format = _image_format(upload.data)
    if image_format not in IMAGE_FORMATS:
        return native_error(INVALID, "file must be a JPG, PNG, WebP or GIF image", markers)
    if markers.has("viggle:refuse"):
        message = "No character detected: use a clear full-body picture of one person (simulated)"
        return native_error(NO_CHARACTER, message, markers)
    await pause(req, markers, ctx.config)
    info = media.image_info(upload.data)
    width, height = (info[0], info[1]) if info else (0, 0)
    ext = IMAGE_FORMATS[image_format]
    name = ctx.files.add(upload.data, ext, f"image/{'jpeg' if ext == 'jpg' else ext}")
    asset = Asset(
        id=str(uuid.uuid4()),
        kind="image",
        name=upload.filename,
        data=upload.data,
        url=f"{req.base_url}/files/{name}",
        markers=markers,
    )
    account(req.token).assets[asset.id] = asset
    return ok(
        {
            "id": asset.id,
            "name": asset.name,
            "url": asset.url,
            "width": width,
            "height": height,
            "createdAt": _now_iso(),
        }
    )


def _image_format(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or ""
    except (OSError, ValueError, Image.DecompressionBombError):
        return ""


async def upload_video(req: Request, ctx: Context) -> Response:
    owner = account(req.token)
    image = owner.assets.get(req.params["image_id"])
    try:
        _fields, files = req.multipart()
    except BadRequestBody as exc:
        return native_error(INVALID, f"invalid multipart body: {exc}", Markers())
    upload = files.get("file")
    markers = parse_markers(upload.filename if upload else "")
    if (error := openai_special_error(markers, "viggle")) is not None:
        return error
    if image is None or image.kind != "image":
        return native_error(NOT_FOUND, f"image asset not found: {req.params['image_id']}", markers)
    if upload is None or not upload.data:
        return native_error(INVALID, "file is required", markers)
    if len(upload.data) > MAX_VIDEO_BYTES:
        return native_error(INVALID, "the video must be at most 50MB", markers)
    kind = _video_kind(upload.data[:64])
    if not kind:
        return native_error(INVALID, "file must be an MP4, MOV or WebM video", markers)
    await pause(req, markers, ctx.config)
    cover = media.png(media.draw_picture(f"motion: {upload.filename}", *SAMPLE_SIZE))
    video_name = ctx.files.add(upload.data, kind, f"video/{'quicktime' if kind == 'mov' else kind}")
    cover_name = ctx.files.add(cover, "png", "image/png")
    asset = Asset(
        id=str(uuid.uuid4()),
        kind="video",
        name=upload.filename,
        data=upload.data,
        url=f"{req.base_url}/files/{video_name}",
        markers=markers,
        image_id=image.id,
        cover=cover,
    )
    owner.assets[asset.id] = asset
    width, height = VIDEO_SIZE
    return ok(
        {
            "id": asset.id,
            "name": asset.name,
            "url": asset.url,
            "coverURL": f"{req.base_url}/files/{cover_name}",
            "width": width,
            "height": height,
        }
    )


# ------------------------------------------------------------------ templates


async def template_tags(req: Request, ctx: Context) -> Response:
    return ok([dict(tag) for tag in TAGS])


async def templates(req: Request, ctx: Context) -> Response:
    keyword = req.query.get("searchKeyword", "")
    markers = parse_markers(keyword)
    if (error := openai_special_error(markers, "viggle")) is not None:
        return error
    try:
        page = int(req.query.get("page") or 1)
        size = int(req.query.get("pageSize") or 48)
        kind = int(req.query.get("type") or 0)
    except ValueError:
        return native_error(INVALID, "page, pageSize and type must be integers", markers)
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return native_error(INVALID, f"page must be ≥ 1, pageSize 1-{MAX_PAGE_SIZE}", markers)
    if kind not in (MIX, MULTI):
        return native_error(INVALID, "type must be 0 (mix) or 1 (multi)", markers)
    await pause(req, markers, ctx.config)
    tag = req.query.get("tagID", "").strip()
    words = strip_markers(keyword).casefold()
    chosen = [
        template
        for template in sorted(TEMPLATES, key=lambda item: item.sort)
        if template.type == kind
        and (not tag or template.tag == tag)
        and (not words or words in f"{template.description} {template.command}".casefold())
    ]
    start = (page - 1) * size
    return ok([_template_json(template, req.base_url) for template in chosen[start : start + size]])


# ------------------------------------------------------------------ tasks


def _int_field(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _task_problem(body: dict[str, Any], owner: Account) -> tuple[int, str] | None:
    """The native error for a render request this account cannot make, or None."""
    mode = _int_field(body, "type", MIX)
    if mode not in (MIX, MULTI, MOVE):
        return INVALID, "type must be 0 (mix), 1 (multi) or 2 (move)"
    image_ids = _image_ids(body, mode)
    if not image_ids:
        return INVALID, "imageID is required"
    if mode == MULTI and not 2 <= len(image_ids) <= MAX_CHARACTERS:
        return INVALID, f"multi takes 2 to {MAX_CHARACTERS} characters in imageIDs"
    for image_id in image_ids:
        image = owner.assets.get(image_id)
        if image is None or image.kind != "image":
            return NOT_FOUND, f"image asset not found: {image_id}"
    video_id = str(body.get("videoID") or "").strip()
    template_id = str(body.get("templateID") or "").strip()
    if bool(video_id) == bool(template_id):
        return INVALID, "give either videoID or templateID"
    if video_id:
        video = owner.assets.get(video_id)
        if video is None or video.kind != "video":
            return NOT_FOUND, f"video asset not found: {video_id}"
        if video.image_id != image_ids[0]:
            return INVALID, "the video was uploaded for another image"
    else:
        template = TEMPLATES_BY_ID.get(template_id)
        wanted = MULTI if mode == MULTI else MIX
        if template is None or template.type != wanted:
            return NOT_FOUND, f"template not found: {template_id}"
        if mode == MULTI and len(image_ids) > template.characters:
            return INVALID, f"this template has room for {template.characters} characters"
    bg_mode = _int_field(body, "bgMode", 2 if mode == MOVE else None)
    if bg_mode not in BG_MODES:
        return INVALID, "bgMode must be 0, 1, 2 or 3"
    if _int_field(body, "modelInfoID") not in MODEL_INFO_IDS:
        return INVALID, "modelInfoID must be 2, 3 or 4"
    if _int_field(body, "watermark", 0) not in (0, 1):
        return INVALID, "watermark must be 0 or 1"
    return None


def _image_ids(body: dict[str, Any], mode: int | None) -> list[str]:
    if mode == MULTI and isinstance(body.get("imageIDs"), list):
        return [str(item).strip() for item in body["imageIDs"] if str(item).strip()]
    image_id = str(body.get("imageID") or "").strip()
    return [image_id] if image_id else []


async def create_task(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return native_error(INVALID, f"request body is not a JSON object ({exc})", Markers())
    owner = account(req.token)
    mode = _int_field(body, "type", MIX)
    used = [owner.assets[i] for i in _image_ids(body, mode) if i in owner.assets]
    if (video := owner.assets.get(str(body.get("videoID") or ""))) is not None:
        used.append(video)
    markers = Markers()
    for asset in used:
        markers.flags |= asset.markers.flags
        markers.values.update(asset.markers.values)
    if (error := openai_special_error(markers, "viggle")) is not None:
        return error
    if markers.has("viggle:busy-once") and not owner.was_busy:
        owner.was_busy = True
        return no_channel("viggle")
    if (problem := _task_problem(body, owner)) is not None:
        return native_error(*problem, markers)
    image_ids = _image_ids(body, mode)
    cost = TASK_COST + EXTRA_CHARACTER_COST * (len(image_ids) - 1)
    if markers.has("viggle:no-credits") or owner.total < cost:
        left = 0 if markers.has("viggle:no-credits") else owner.total
        message = f"Insufficient credits: this video needs {cost}, {left} left (积分不足)"
        return native_error(NO_CREDITS, message, markers)
    await pause(req, markers, ctx.config)
    free, plan, purchased = owner.charge(cost)
    model = _int_field(body, "modelInfoID") or 3
    task = Task(
        id=str(uuid.uuid4()),
        mode=mode or MIX,
        image_ids=image_ids,
        video_id=str(body.get("videoID") or ""),
        template_id=str(body.get("templateID") or ""),
        bg_mode=_int_field(body, "bgMode", 2) or 0,
        model_info_id=model,
        watermark=_int_field(body, "watermark", 0) or 0,
        seconds=(90.0 if model == 3 else 150.0) * (1.5 if mode == MULTI else 1.0),
        cost_free=free,
        cost_plan=plan,
        cost_purchased=purchased,
        doomed=markers.has("viggle:fail"),
        expire_files=markers.has("expire"),
    )
    owner.tasks[task.id] = task
    return ok({"taskID": task.id, "mqType": 1 + secrets.randbelow(2)})


def _sync(task: Task, owner: Account, ctx: Context) -> None:
    """Bring a task up to date with the wall clock (polling moves it in `by_ids`)."""
    if task.failure:
        return
    per_step = ctx.config.scaled(task.seconds) / STEPS
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else STEPS
    step = min(STEPS, max(task.step, by_time))
    if task.doomed and step >= FAIL_AT_STEP:
        task.step = FAIL_AT_STEP
        task.failure = "Character recognition failed: the pose could not be tracked (simulated)"
        if not task.refunded:  # a failed render gives its credits back
            owner.free += task.cost_free
            owner.plan += task.cost_plan
            owner.purchased += task.cost_purchased
            task.refunded = True
        return
    task.step = step
    if step >= STEPS and not task.result_file:
        expired = task.expire_files
        task.result_file = ctx.files.add(sample_video(), "mp4", "video/mp4", expired=expired)
        task.cover_file = ctx.files.add(_result_cover(task, owner), "png", "image/png")


def _result_cover(task: Task, owner: Account) -> bytes:
    """The motion's cover with the first character pasted in the middle."""
    if task.template_id:
        background = template_cover(task.template_id)
    else:
        background = owner.assets[task.video_id].cover
    character = owner.assets[task.image_ids[0]].data
    return media.swap_face(character, background) or background


def _task_json(task: Task, base_url: str) -> dict[str, Any]:
    if task.failure:
        status = FAILED
    elif task.step >= STEPS:
        status = FINISHED
    else:
        status = QUEUED if task.step == 0 else RENDERING
    payload: dict[str, Any] = {
        "taskID": task.id,
        "name": f"viggle-{task.id[:8]}",
        "status": status,
        "videoDuration": 2 if status == FINISHED else 0,
        "bgMode": task.bg_mode,
        "modelInfoID": task.model_info_id,
        "optimize": False,
        "watermark": task.watermark,
        "freeCredits": task.cost_free,
        "planCredits": task.cost_plan,
        "purchasedCredits": task.cost_purchased,
        "mqType": 1,
        "result": f"{base_url}/files/{task.result_file}" if status == FINISHED else "",
        "resultCover": f"{base_url}/files/{task.cover_file}" if status == FINISHED else "",
        "createdAt": _now_iso(task.created),
    }
    if task.failure:
        payload["errMsg"] = task.failure
    return payload


async def tasks_by_ids(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return native_error(INVALID, f"request body is not a JSON object ({exc})", Markers())
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        return native_error(INVALID, "ids must be a non-empty list", Markers())
    owner = account(req.token)
    found = []
    for task_id in ids:
        task = owner.tasks.get(str(task_id).strip())
        if task is None:
            continue  # unknown ids are left out, as the list endpoints do
        _sync(task, owner, ctx)
        found.append(_task_json(task, req.base_url))
        if not task.finished:
            task.step += 1
    return ok(found)


async def remaining_credits(req: Request, ctx: Context) -> Response:
    owner = account(req.token)
    return ok(
        {
            "freeCredits": owner.free,
            "planCredits": owner.plan,
            "purchasedCredits": owner.purchased,
            "totalCredits": owner.total,
        }
    )
