"""Video families: Kling (official format, §9, with its image generation) and Runway (§8).

Tasks advance over ten steps: Kling ``submitted`` → ``processing`` → ``succeed``, Runway
``PENDING`` → ``RUNNING`` (``progress`` 0.1…0.9) → ``SUCCEEDED``. As for Midjourney two clocks
drive them, whichever is ahead: wall time (a realistic render length divided by
SIMULATOR_SPEED) and polling (every fetch moves a task one step). The result is always the same
real clip, ``assets/sample.mp4`` (2 s, 320x180, H.264), stored per task on the fake CDN so that
its link expires like any other (``SIMULATOR_FILE_TTL``, ``[[expire]]``). Kling image generations
(``/kling/v1/images/generations``) finish with ``n`` real PNG pictures of the prompt in the
asked aspect ratio (a reference image tints their label with its colour); as Kling does, they
refuse a ``negative_prompt`` together with a reference image.

Kling answers its envelope ``{code, message, request_id, data}``; bad input is ``code`` 1201
with HTTP 400, and a task asked for on the other endpoint's path is 1203 with HTTP 404, as Kling
does. Runway wants ``X-Runway-Version: 2024-11-06`` and answers ``{"error": ...}``; the first
fetch of a new task answers the relay's ``task_not_exist`` (HTTP 400), as relays do for a few
seconds after creation.

Markers, read from ``prompt`` and ``negative_prompt`` (Kling) or ``promptText`` (Runway); the
relay-level ones of specials.py (``[[error:429]]``, ``[[error:401]]``, ``[[error:503]]``,
``[[error:quota]]``…) answer in the relay's OpenAI shape, as on every path:
  [[video:fail]]          the task fails half-way (Kling ``task_status_msg``, Runway ``failure``)
  [[video:refuse]]        refused at submit: Kling 1301 (content safety), Runway HTTP 400
  [[video:lost]]          Runway: the task is never found (``task_not_exist`` on every fetch)
  [[video:not-exist=N]]   Runway: the first N fetches answer ``task_not_exist`` (default 1)
  [[video:throttled]]     Runway: THROTTLED instead of PENDING before the task starts
  [[kling:quota]]         Kling 1102 "resource pack used up" with HTTP 429, as Kling sends it
  [[kling:http200]]       Kling errors come with HTTP 200 (as some relays pass them on)
  [[expire]], [[sleep=N]], [[slow]] as everywhere.

Video tasks live in this module's store (one simulator per process) and are scoped to the
token that made them.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from studio.simulator import media
from studio.simulator.specials import (
    Markers,
    openai_special_error,
    parse_markers,
    pause,
    strip_markers,
)
from studio.simulator.state import Context
from studio.simulator.web import BadRequestBody, Request, Response, json_response

SAMPLE_VIDEO = Path(__file__).resolve().parent / "assets" / "sample.mp4"
SAMPLE_SECONDS = "2.0"  # the clip's real length, whatever duration was asked for
STEPS = 10
FAIL_AT_STEP = 5

KLING_MAX_PROMPT = 2500
KLING_MODES = ("std", "pro")
KLING_RATIOS = ("16:9", "9:16", "1:1")
KLING_DURATIONS = ("5", "10")
KLING_MIN_SIDE = 300
KLING_IMAGE_MODELS = ("kling-v1", "kling-v1-5")
KLING_IMAGE_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
KLING_IMAGE_MAX_PROMPT = 500
KLING_IMAGE_MAX_NEGATIVE = 200
KLING_IMAGE_MAX_N = 9
KLING_IMAGE_LONG_SIDE = 1024
KLING_MAX_IMAGE_BYTES = 10 * 1024 * 1024
RUNWAY_VERSION = "2024-11-06"
RUNWAY_MODELS = ("gen3a_turbo",)
RUNWAY_RATIOS = ("1280:768", "768:1280")
RUNWAY_MAX_PROMPT = 512
RUNWAY_MAX_DATA_URI = 5 * 1024 * 1024
RUNWAY_MAX_SEED = 4_294_967_295

_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|webp));base64,(.*)$", re.DOTALL)


@cache
def sample_video() -> bytes:
    return SAMPLE_VIDEO.read_bytes()


@dataclass
class VideoTask:
    id: str
    owner: str
    family: str  # kling | runway
    endpoint: str  # text2video | image2video | images | image_to_video
    prompt: str
    seconds: float  # realistic render length at SIMULATOR_SPEED=1
    doomed: bool = False
    expire_files: bool = False
    hidden_fetches: int = 0  # Runway: fetches still to answer task_not_exist (-1: forever)
    throttled: bool = False
    external_task_id: str = ""
    step: int = 0
    status: str = ""
    failure: str = ""
    failure_code: str = ""
    video_file: str = ""
    # Kling image generations: how many, which shape, and what the reference image looked like
    count: int = 1
    aspect: tuple[int, int] = (16, 9)
    reference: str = ""
    image_files: list[str] = field(default_factory=list)
    clock_start: float = field(default_factory=time.monotonic)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    updated_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def finished(self) -> bool:
        return bool(self.failure) or self.step >= STEPS


class VideoTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, VideoTask] = {}

    def add(self, task: VideoTask) -> VideoTask:
        self._tasks[task.id] = task
        return task

    def get(self, task_id: str, owner: str) -> VideoTask | None:
        task = self._tasks.get(task_id.strip())
        return task if task is not None and task.owner == owner else None


TASKS = VideoTasks()


def sync(task: VideoTask, ctx: Context) -> None:
    """Bring a task up to date with the wall clock (the polling clock moves in ``fetched``)."""
    if task.failure:
        return
    per_step = ctx.config.scaled(task.seconds) / STEPS
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else STEPS
    step = min(STEPS, max(task.step, by_time))
    if step != task.step:
        task.updated_ms = int(time.time() * 1000)
    if task.doomed and step >= FAIL_AT_STEP:
        task.step = FAIL_AT_STEP
        if task.family == "kling":
            task.failure = "Failure to pass the risk control system (simulated failure)"
        else:
            task.failure = "The task failed to generate a video (simulated failure)."
            task.failure_code = "INTERNAL.BAD_OUTPUT.CODE01"
        return
    task.step = step
    if step >= STEPS and task.endpoint == "images":
        if not task.image_files:
            task.image_files = _draw_images(task, ctx)
    elif step >= STEPS and not task.video_file:
        task.video_file = ctx.files.add(
            sample_video(), "mp4", "video/mp4", expired=task.expire_files
        )


def _draw_images(task: VideoTask, ctx: Context) -> list[str]:
    size = media.aspect_size(task.aspect, KLING_IMAGE_LONG_SIDE)
    label = f"kling · ref {task.reference}" if task.reference else "kling"
    names = []
    for index in range(task.count):
        picture = media.draw_picture(task.prompt, *size, variant=index, label=f"{label} #{index}")
        expired = task.expire_files
        names.append(ctx.files.add(media.png(picture), "png", "image/png", expired=expired))
    return names


def fetched(task: VideoTask) -> None:
    if not task.finished:
        task.step += 1


def _duration_factor(duration: object, pro: bool = False) -> float:
    factor = 2.0 if str(duration) == "10" else 1.0
    return factor * (1.5 if pro else 1.0)


def _decode_image(raw: str) -> bytes | None:
    try:
        data = base64.b64decode(re.sub(r"\s+", "", raw), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data or None


# ---------------------------------------------------------------- Kling


def _request_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def kling_error(code: int, message: str, status: int, markers: Markers) -> Response:
    if markers.has("kling:http200"):
        status = 200
    payload = {"code": code, "message": message, "request_id": _request_id()}
    return json_response(payload, status)


def _kling_invalid(message: str, markers: Markers) -> Response:
    return kling_error(1201, f"Invalid parameter: {message}", 400, markers)


def _kling_task_json(task: VideoTask, base_url: str) -> dict[str, Any]:
    if task.failure:
        status = "failed"
    elif task.step >= STEPS:
        status = "succeed"
    elif task.step == 0:
        status = "submitted"
    else:
        status = "processing"
    data: dict[str, Any] = {
        "task_id": task.id,
        "task_status": status,
        "task_status_msg": task.failure,
        "task_info": {"external_task_id": task.external_task_id} if task.external_task_id else {},
        "created_at": task.created_ms,
        "updated_at": task.updated_ms,
    }
    if status == "succeed" and task.endpoint == "images":
        data["task_result"] = {
            "images": [
                {"index": index, "url": f"{base_url}/files/{name}"}
                for index, name in enumerate(task.image_files)
            ]
        }
    elif status == "succeed":
        data["task_result"] = {
            "videos": [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, task.id)),
                    "url": f"{base_url}/files/{task.video_file}",
                    "duration": SAMPLE_SECONDS,
                }
            ]
        }
    return {"code": 0, "message": "SUCCEED", "request_id": _request_id(), "data": data}


def _kling_image_problem(name: str, value: object) -> str | None:
    """Why Kling would refuse this image, or None. URLs are taken as they are."""
    if not isinstance(value, str) or not value.strip():
        return f"{name} is required"
    text = value.strip()
    if text.startswith(("http://", "https://")):
        return None
    if text.startswith("data:"):
        return f"{name} must be a URL or raw Base64 without the data: prefix"
    data = _decode_image(text)
    if data is None:
        return f"{name} is not valid Base64"
    if len(data) > KLING_MAX_IMAGE_BYTES:
        return f"{name} is larger than 10MB"
    info = media.image_info(data)
    if info is None:
        return f"{name} is not a JPG or PNG image"
    width, height, _rgb = info
    if min(width, height) < KLING_MIN_SIDE:
        return f"{name} must be at least {KLING_MIN_SIDE}x{KLING_MIN_SIDE}px, got {width}x{height}"
    if not 1 / 2.5 <= width / height <= 2.5:
        return f"{name} aspect ratio must be between 1:2.5 and 2.5:1"
    return None


def _kling_problem(body: dict[str, Any], endpoint: str) -> str | None:
    """The first thing Kling's validation would refuse in this body, or None."""
    model = body.get("model_name", body.get("model"))
    if model is not None and not (isinstance(model, str) and model.startswith("kling-")):
        return f"model_name {model!r} is not supported"
    prompt = body.get("prompt")
    if endpoint == "text2video" and (not isinstance(prompt, str) or not prompt.strip()):
        return "prompt is required"
    for key in ("prompt", "negative_prompt"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} must be a string"
        if isinstance(value, str) and len(value) > KLING_MAX_PROMPT:
            return f"{key} must not exceed {KLING_MAX_PROMPT} characters"
    cfg = body.get("cfg_scale")
    if cfg is not None and (
        isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1
    ):
        return "cfg_scale must be a number between 0 and 1"
    if body.get("mode") is not None and body.get("mode") not in KLING_MODES:
        return "mode must be std or pro"
    if body.get("duration") is not None and str(body.get("duration")) not in KLING_DURATIONS:
        return 'duration must be "5" or "10"'
    if endpoint == "text2video":
        ratio = body.get("aspect_ratio")
        if ratio is not None and ratio not in KLING_RATIOS:
            return "aspect_ratio must be one of 16:9, 9:16, 1:1"
    else:
        problem = _kling_image_problem("image", body.get("image"))
        if problem is None and body.get("image_tail") not in (None, ""):
            problem = _kling_image_problem("image_tail", body.get("image_tail"))
        if problem:
            return problem
    return None


async def _kling_submit(req: Request, ctx: Context, endpoint: str) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return _kling_invalid(f"request body is not a JSON object ({exc})", Markers())
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    negative = body.get("negative_prompt")
    markers = parse_markers(str(prompt or ""), negative if isinstance(negative, str) else "")
    error = openai_special_error(markers, str(body.get("model_name") or "kling-v1"))
    if error is not None:
        return error
    if markers.has("kling:quota"):
        return kling_error(1102, "资源包已用完或已过期 (resource pack exhausted)", 429, markers)
    problem = _kling_problem(body, endpoint)
    if problem is not None:
        return _kling_invalid(problem, markers)
    if markers.has("video:refuse"):
        message = "Failure to pass the risk control system: the content was flagged (simulated)"
        return kling_error(1301, message, 400, markers)
    await pause(req, markers, ctx.config)
    pro = body.get("mode") == "pro"
    task = TASKS.add(
        VideoTask(
            id=str(10**17 + secrets.randbelow(9 * 10**17)),  # 18 digits, like Kling's ids
            owner=req.token,
            family="kling",
            endpoint=endpoint,
            prompt=strip_markers(str(prompt or "")),
            seconds=120.0 * _duration_factor(body.get("duration"), pro),
            doomed=markers.has("video:fail"),
            expire_files=markers.has("expire"),
            external_task_id=str(body.get("external_task_id") or ""),
        )
    )
    return json_response(_kling_task_json(task, req.base_url))


async def kling_text2video(req: Request, ctx: Context) -> Response:
    return await _kling_submit(req, ctx, "text2video")


async def kling_image2video(req: Request, ctx: Context) -> Response:
    return await _kling_submit(req, ctx, "image2video")


async def _kling_fetch(req: Request, ctx: Context, endpoint: str) -> Response:
    task = TASKS.get(req.params["task_id"], req.token)
    if task is None or task.family != "kling" or task.endpoint != endpoint:
        # Kling keeps text2video and image2video tasks apart: the path must match.
        return kling_error(1203, f"task not found: {req.params['task_id']}", 404, Markers())
    sync(task, ctx)
    payload = _kling_task_json(task, req.base_url)
    fetched(task)
    return json_response(payload)


async def kling_text2video_task(req: Request, ctx: Context) -> Response:
    return await _kling_fetch(req, ctx, "text2video")


async def kling_image2video_task(req: Request, ctx: Context) -> Response:
    return await _kling_fetch(req, ctx, "image2video")


def _kling_images_problem(body: dict[str, Any]) -> str | None:
    """The first thing Kling's image generation would refuse in this body, or None (§9.1)."""
    model = body.get("model_name", body.get("model"))
    if model is not None and model not in KLING_IMAGE_MODELS:
        return f"model_name {model!r} is not supported for image generation"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    if len(prompt) > KLING_IMAGE_MAX_PROMPT:
        return f"prompt must not exceed {KLING_IMAGE_MAX_PROMPT} characters"
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        return "negative_prompt must be a string"
    if isinstance(negative, str) and len(negative) > KLING_IMAGE_MAX_NEGATIVE:
        return f"negative_prompt must not exceed {KLING_IMAGE_MAX_NEGATIVE} characters"
    n = body.get("n")
    if n is not None and (
        isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= KLING_IMAGE_MAX_N
    ):
        return f"n must be an integer from 1 to {KLING_IMAGE_MAX_N}"
    ratio = body.get("aspect_ratio")
    if ratio is not None and ratio not in KLING_IMAGE_RATIOS:
        return f"aspect_ratio must be one of {', '.join(KLING_IMAGE_RATIOS)}"
    image = body.get("image")
    if image not in (None, ""):
        if problem := _kling_image_problem("image", image):
            return problem
        if isinstance(negative, str) and negative.strip():
            return "negative_prompt is not supported when image is provided"
    for key in ("image_fidelity", "human_fidelity"):
        value = body.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            return f"{key} must be a number between 0 and 1"
    reference = body.get("image_reference")
    if reference is not None and reference not in ("subject", "face"):
        return "image_reference must be subject or face"
    return None


def _reference_colour(image: object) -> str:
    if not isinstance(image, str) or not image.strip() or image.startswith(("http://", "https://")):
        return ""
    data = _decode_image(image.strip())
    info = media.image_info(data) if data else None
    return media.colour_name(info[2]) if info else ""


async def kling_images(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return _kling_invalid(f"request body is not a JSON object ({exc})", Markers())
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    negative = body.get("negative_prompt")
    markers = parse_markers(str(prompt or ""), negative if isinstance(negative, str) else "")
    error = openai_special_error(markers, str(body.get("model_name") or "kling-v1"))
    if error is not None:
        return error
    if markers.has("kling:quota"):
        return kling_error(1102, "资源包已用完或已过期 (resource pack exhausted)", 429, markers)
    problem = _kling_images_problem(body)
    if problem is not None:
        return _kling_invalid(problem, markers)
    if markers.has("video:refuse"):
        message = "Failure to pass the risk control system: the content was flagged (simulated)"
        return kling_error(1301, message, 400, markers)
    await pause(req, markers, ctx.config)
    width, _, height = str(body.get("aspect_ratio") or "16:9").partition(":")
    task = TASKS.add(
        VideoTask(
            id=str(10**17 + secrets.randbelow(9 * 10**17)),
            owner=req.token,
            family="kling",
            endpoint="images",
            prompt=strip_markers(str(prompt or "")),
            seconds=25.0,
            doomed=markers.has("video:fail"),
            expire_files=markers.has("expire"),
            count=int(body.get("n") or 1),
            aspect=(int(width), int(height)),
            reference=_reference_colour(body.get("image")),
        )
    )
    return json_response(_kling_task_json(task, req.base_url))


async def kling_images_task(req: Request, ctx: Context) -> Response:
    return await _kling_fetch(req, ctx, "images")


# ---------------------------------------------------------------- Runway


def runway_error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _task_not_exist() -> Response:
    # The relay's task-relay envelope (§2.4), not Runway's own shape: the relay answers it.
    return json_response({"code": "task_not_exist", "message": "task_not_exist", "data": None}, 400)


def _runway_image_problem(value: object) -> str | None:
    if isinstance(value, list):
        if not value or not all(isinstance(item, dict) for item in value):
            return "promptImage: expected a URI or a list of {uri, position}"
        positions = [item.get("position") for item in value]
        if any(p not in ("first", "last") for p in positions) or len(set(positions)) != len(value):
            return "promptImage: each position must be first or last, once"
        for item in value:
            if problem := _runway_image_problem(item.get("uri")):
                return problem
        return None
    if not isinstance(value, str) or not value.strip():
        return "promptImage: Required"
    text = value.strip()
    if text.startswith("https://"):
        return None
    if text.startswith("http://"):
        return "promptImage: URLs must use HTTPS"
    if len(text) > RUNWAY_MAX_DATA_URI:
        return "promptImage: data URIs must be at most 5MB"
    match = _DATA_URI.match(text)
    if not match:
        return "promptImage: expected an HTTPS URL or a data URI of a JPEG, PNG or WebP image"
    data = _decode_image(match.group(2))
    if data is None or media.image_info(data) is None:
        return "promptImage: the data URI does not contain a readable image"
    return None


def _runway_problem(body: dict[str, Any]) -> str | None:
    if problem := _runway_image_problem(body.get("promptImage")):
        return problem
    model = body.get("model")
    if model not in RUNWAY_MODELS:
        return f"model: expected one of {', '.join(RUNWAY_MODELS)}"
    text = body.get("promptText")
    if text is not None and (not isinstance(text, str) or len(text) > RUNWAY_MAX_PROMPT):
        return f"promptText: must be a string of at most {RUNWAY_MAX_PROMPT} characters"
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= RUNWAY_MAX_SEED
    ):
        return f"seed: must be an integer from 0 to {RUNWAY_MAX_SEED}"
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or duration not in (5, 10)):
        return "duration: must be 5 or 10"
    if body.get("ratio") is not None and body.get("ratio") not in RUNWAY_RATIOS:
        return f"ratio: expected one of {', '.join(RUNWAY_RATIOS)}"
    return None


def _runway_version_error(req: Request) -> Response | None:
    version = req.headers.get("x-runway-version", "").strip()
    if version == RUNWAY_VERSION:
        return None
    if not version:
        return runway_error(400, "The X-Runway-Version header is required (use 2024-11-06).")
    return runway_error(400, f"Unsupported X-Runway-Version {version!r}.")


def _runway_task_json(task: VideoTask, base_url: str) -> dict[str, Any]:
    created = datetime.fromtimestamp(task.created_ms / 1000, UTC)
    payload: dict[str, Any] = {
        "id": task.id,
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if task.failure:
        payload.update(status="FAILED", failure=task.failure, failureCode=task.failure_code)
    elif task.step >= STEPS:
        payload.update(
            status="SUCCEEDED", output=[f"{base_url}/files/{task.video_file}"], progress=1
        )
    elif task.step == 0:
        payload["status"] = "THROTTLED" if task.throttled else "PENDING"
    else:
        payload.update(status="RUNNING", progress=round(task.step / STEPS, 2))
    return payload


def _hidden_fetches(markers: Markers) -> int:
    if markers.has("video:lost"):
        return -1
    count = markers.number("video:not-exist")
    return max(0, int(count)) if count is not None else 1


async def runway_image_to_video(req: Request, ctx: Context) -> Response:
    if (error := _runway_version_error(req)) is not None:
        return error
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return runway_error(400, f"Invalid JSON body: {exc}")
    text = body.get("promptText") if isinstance(body.get("promptText"), str) else ""
    markers = parse_markers(str(text or ""))
    error = openai_special_error(markers, str(body.get("model") or "gen3a_turbo"))
    if error is not None:
        return error
    if problem := _runway_problem(body):
        return runway_error(400, f"Validation of body failed: {problem}")
    if markers.has("video:refuse"):
        return runway_error(400, "Our moderation system flagged your input (simulated).")
    await pause(req, markers, ctx.config)
    duration = body.get("duration", 10)  # Runway's default length is 10 s
    task = TASKS.add(
        VideoTask(
            id=str(uuid.uuid4()),
            owner=req.token,
            family="runway",
            endpoint="image_to_video",
            prompt=strip_markers(str(text or "")),
            seconds=35.0 * _duration_factor(duration),
            doomed=markers.has("video:fail"),
            expire_files=markers.has("expire"),
            hidden_fetches=_hidden_fetches(markers),
            throttled=markers.has("video:throttled"),
        )
    )
    return json_response({"id": task.id})


async def runway_task(req: Request, ctx: Context) -> Response:
    if (error := _runway_version_error(req)) is not None:
        return error
    task = TASKS.get(req.params["task_id"], req.token)
    if task is None or task.family != "runway":
        return _task_not_exist()
    if task.hidden_fetches != 0:
        # The relay has not caught up with a task it just created (-1: it never will).
        if task.hidden_fetches > 0:
            task.hidden_fetches -= 1
        return _task_not_exist()
    sync(task, ctx)
    payload = _runway_task_json(task, req.base_url)
    fetched(task)
    return json_response(payload)
