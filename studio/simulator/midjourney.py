"""Midjourney (midjourney-proxy "plus" protocol behind a new-api relay), §4 and §5.

Tasks advance along NOT_START → SUBMITTED → IN_PROGRESS 10 %…90 % → SUCCESS 100 %. Two clocks
drive them, whichever is ahead: wall time (a realistic job length divided by SIMULATOR_SPEED)
and polling (every fetch moves the task at least one step). So a demo polled every 3 s looks
real, and a test reaches SUCCESS in twelve fetches whatever the speed.

Markers (see specials.py) are read from ``prompt`` and also from ``state``, so that submits
without a prompt (blend, describe, face swap) can be steered too.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from studio.simulator import media
from studio.simulator.config import Config
from studio.simulator.specials import Markers, mj_special_error, parse_markers, pause, strip_markers
from studio.simulator.state import (
    FAIL_AT_STEP,
    LAST_STEP,
    STEP_PROGRESS,
    STEP_STATUS,
    Context,
    MjTask,
)
from studio.simulator.web import (
    BadRequestBody,
    Request,
    Response,
    json_response,
    mj_result,
    mj_wrapper_error,
)

# Realistic job lengths in seconds at SIMULATOR_SPEED=1.
DURATIONS = {"UPSCALE": 12.0, "DESCRIBE": 10.0, "SHORTEN": 8.0, "SWAP_FACE": 15.0}
DEFAULT_DURATION = 45.0
GRID_CELL = 512  # long side of one grid cell; upscales are twice that
KEYCAPS = [f"{n}\ufe0f\u20e3" for n in range(1, 10)]  # 1️⃣ 2️⃣ …
ACCEPTED = "提交成功"
_ASPECT = re.compile(r"--(?:ar|aspect)\s+(\d+)\s*:\s*(\d+)", re.IGNORECASE)
_DATA_URI = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w=.+-]+)*;base64,(.*)$", re.DOTALL)
_BLEND_ASPECT = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}


def decode_data_uri(value: object) -> bytes | None:
    """Bytes of a ``data:<mime>;base64,…`` URI; None when the value is not one (§4.3)."""
    if not isinstance(value, str):
        return None
    match = _DATA_URI.match(value.strip())
    if not match:
        return None
    try:
        data = base64.b64decode(re.sub(r"\s+", "", match.group(1)), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data or None


def _aspect(prompt: str) -> tuple[int, int]:
    match = _ASPECT.search(prompt)
    if not match:
        return (1, 1)
    w, h = int(match.group(1)), int(match.group(2))
    return (w, h) if 0 < w <= 10 * h and 0 < h <= 10 * w else (1, 1)


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def grid_buttons(h: str) -> list[dict[str, Any]]:
    ups = [_button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)]
    reroll = _button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄")
    variations = [_button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)]
    return [*ups, reroll, *variations]


def upscaled_buttons(h: str) -> list[dict[str, Any]]:
    return [
        _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)"),
        _button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", "Upscale (Creative)"),
        _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        _button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
        _button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
        _button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        _button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
        _button(f"MJ::JOB::pan_left::1::{h}::SOLO", emoji="⬅️"),
        _button(f"MJ::JOB::pan_right::1::{h}::SOLO", emoji="➡️"),
        _button(f"MJ::JOB::pan_up::1::{h}::SOLO", emoji="⬆️"),
        _button(f"MJ::JOB::pan_down::1::{h}::SOLO", emoji="⬇️"),
    ]


@dataclass
class ParsedAction:
    action: str
    kind: str  # what the new task produces: grid | single
    index: int
    modal: bool = False
    pick: bool = False  # describe / shorten pick: imagine from the n-th suggestion


def parse_custom_id(custom_id: str, config: Config) -> ParsedAction | None:
    """Map a button's customId to an action the way new-api does (§4.9); None = unknown_action."""
    parts = custom_id.split("::")
    if custom_id.startswith("MJ::JOB::") and len(parts) >= 4:
        name = parts[2]
        index = int(parts[3]) if parts[3].isdigit() else 1
        if "upsample" in name:
            return ParsedAction("UPSCALE", "single", max(1, index))
        if name == "low_variation":
            return ParsedAction("LOW_VARIATION", "grid", index)
        if name == "high_variation":
            return ParsedAction("HIGH_VARIATION", "grid", index)
        if "variation" in name:
            return ParsedAction("VARIATION", "grid", index)
        if name.startswith("pan"):
            return ParsedAction("PAN", "grid", index)
        if name == "reroll":
            return ParsedAction("REROLL", "grid", index)
        return None
    if custom_id.startswith("MJ::Outpaint::"):
        return ParsedAction("ZOOM", "grid", 1)
    if custom_id.startswith("MJ::CustomZoom::"):
        return ParsedAction("CUSTOM_ZOOM", "grid", 1, modal=True)
    if custom_id.startswith("MJ::Inpaint::"):
        return ParsedAction("INPAINT", "grid", 1, modal=True)
    picks = ("MJ::Job::PicReader::", "MJ::Job::PromptAnalyzer::")
    if config.mj_pick_actions and custom_id.startswith(picks) and parts[-1].isdigit():
        return ParsedAction("IMAGINE", "grid", int(parts[-1]), pick=True)
    return None


# ---------------------------------------------------------------- task lifecycle


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_task(
    req: Request,
    ctx: Context,
    action: str,
    kind: str,
    prompt: str,
    markers: Markers,
    body: dict[str, Any],
) -> MjTask:
    task = MjTask(
        id=ctx.tasks.new_id(),
        owner=req.token,
        action=action,
        prompt=prompt,
        prompt_en=strip_markers(prompt),
        kind=kind,
        duration=DURATIONS.get(action, DEFAULT_DURATION),
        hash=str(uuid.uuid4()),
        bot_type=str(body.get("botType") or ""),
        state=str(body.get("state") or ""),
        doomed=markers.has("mj:fail"),
        expire_files=markers.has("expire"),
        aspect=_aspect(prompt),
    )
    return ctx.tasks.add(task)


def _fail(task: MjTask, reason: str) -> None:
    task.status = "FAILURE"
    task.fail_reason = reason
    task.finish_time = _now_ms()
    task.buttons = []


def _store_png(ctx: Context, task: MjTask, raw: bytes) -> str:
    return ctx.files.add(raw, "png", "image/png", expired=task.expire_files)


def _draw_grid(task: MjTask) -> tuple[Any, list[Any]]:
    text = task.prompt_en or "midjourney"
    cell = media.aspect_size(task.aspect, GRID_CELL)
    # The task id seeds the cells, so a reroll or variation really looks different.
    return media.draw_grid(text, cell, task.id)


def _describe_prompts(task: MjTask) -> str:
    info = media.image_info(task.inputs[0]) if task.inputs else None
    w, h, rgb = info if info else (1024, 1024, (128, 128, 128))
    colour = media.colour_name(rgb)
    g = math.gcd(w, h) or 1
    ar = f"--ar {w // g}:{h // g}" if (w // g) <= 32 and (h // g) <= 32 else ""
    subjects = [
        f"a {colour} landscape bathed in soft morning light, wide angle, highly detailed",
        f"an abstract composition dominated by {colour} tones, minimalism, studio lighting",
        f"a dreamy illustration with {colour} hues, watercolor texture, gentle gradients",
        f"a cinematic still, {colour} colour grading, shallow depth of field, 35mm film",
    ]
    return "\n\n".join(f"{KEYCAPS[i]} {s} {ar}".rstrip() for i, s in enumerate(subjects))


def _shorten_prompts(task: MjTask) -> str:
    words = re.sub(r"--\w+(\s+[^-\s]\S*)?", "", task.prompt_en).split()
    words = words or ["image"]
    important = (
        ", ".join(dict.fromkeys(w.strip(",.").lower() for w in words if len(w) > 3)) or words[0]
    )
    options = []
    for i, share in enumerate((0.8, 0.6, 0.45, 0.3, 0.2)):
        options.append(f"{KEYCAPS[i]} {' '.join(words[: max(1, round(len(words) * share))])}")
    return "**IMPORTANT TOKENS**\n" + important + "\n\n**SHORTENED OPTIONS**\n" + "\n".join(options)


def _complete(task: MjTask, ctx: Context) -> None:
    """Produce the task's results the moment it reaches SUCCESS."""
    task.final_prompt = task.prompt_en
    if task.kind == "grid":
        grid, cells = _draw_grid(task)
        task.image_file = _store_png(ctx, task, media.png(grid))
        task.image_files = [_store_png(ctx, task, media.png(c)) for c in cells]
        task.buttons = grid_buttons(task.hash)
    elif task.kind == "single":
        size = media.aspect_size(task.aspect, GRID_CELL * 2)
        # Same colours as the grid cell it came from: the parent's id seeded that cell.
        variant = media.hash_int(task.parent_id, task.index - 1)
        text = task.prompt_en or "midjourney"
        img = media.draw_picture(text, size[0], size[1], variant=variant, label=f"U{task.index}")
        task.image_file = _store_png(ctx, task, media.png(img))
        task.buttons = upscaled_buttons(task.hash)
    elif task.kind == "describe":
        task.final_prompt = _describe_prompts(task)
        task.prompt = task.prompt_en = task.final_prompt
        task.buttons = [_button(f"MJ::Job::PicReader::{i}", str(i)) for i in range(1, 5)]
    elif task.kind == "shorten":
        task.final_prompt = _shorten_prompts(task)
        task.buttons = [_button(f"MJ::Job::PromptAnalyzer::{i}", str(i)) for i in range(1, 6)]
    elif task.kind == "swap":
        swapped = media.swap_face(task.inputs[0], task.inputs[1])
        if swapped is None:
            _fail(task, "[InsightFace] no face detected in the source or target image")
            return
        task.image_file = _store_png(ctx, task, swapped)
    task.inputs = [] if task.kind != "describe" else task.inputs
    task.status = "SUCCESS"
    task.step = LAST_STEP
    task.finish_time = _now_ms()
    task.seed = str(media.hash_int(task.hash, "seed"))


def sync(task: MjTask, ctx: Context) -> None:
    """Bring a task up to date with the wall clock (the polling clock moves in ``fetched``)."""
    if task.status in ("MODAL", "SUCCESS", "FAILURE", "CANCEL"):
        return
    per_step = ctx.config.scaled(task.duration) / LAST_STEP
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else LAST_STEP
    step = min(LAST_STEP, max(task.step, by_time))
    if task.doomed and step >= FAIL_AT_STEP:
        _fail(
            task,
            "[Invalid parameter] simulated failure: the job was rejected by the Midjourney bot",
        )
        return
    task.step = step
    task.status = STEP_STATUS[step]
    if step >= 2 and not task.start_time:
        task.start_time = _now_ms()
    if task.kind == "grid" and step >= 6 and step < LAST_STEP and not task.preview_file:
        grid, _ = _draw_grid(task)
        task.preview_file = _store_png(ctx, task, media.png(media.blurred(grid)))
    if step == LAST_STEP:
        _complete(task, ctx)


def fetched(task: MjTask) -> None:
    """Polling clock: each fetch moves an unfinished task one step on."""
    if task.status not in ("MODAL", "SUCCESS", "FAILURE", "CANCEL") and task.step < LAST_STEP:
        task.step += 1


def task_json(task: MjTask, base_url: str) -> dict[str, Any]:
    def url(name: str) -> str:
        return f"{base_url}/files/{name}" if name else ""

    image_url = task.image_link or url(task.image_file) or url(task.preview_file)
    if task.status == "FAILURE":
        progress = "100%"
    elif task.status == "MODAL":
        progress = "0%"
    else:
        progress = STEP_PROGRESS[task.step]
    return {
        "id": task.id,
        "action": task.action,
        "customId": task.custom_id,
        "botType": task.bot_type,
        "prompt": task.prompt,
        "promptEn": task.prompt_en,
        "description": task.description,
        "state": task.state,
        "submitTime": task.submit_time,
        "startTime": task.start_time,
        "finishTime": task.finish_time,
        "imageUrl": image_url,
        "imageUrls": [{"url": url(name)} for name in task.image_files],
        "videoUrl": "",
        "videoUrls": [],
        "status": task.status,
        "progress": progress,
        "failReason": task.fail_reason,
        "buttons": task.buttons,
        "maskBase64": task.mask,  # what the modal confirmation sent (Vary Region)
        "properties": {"finalPrompt": task.final_prompt, "finalZhPrompt": ""},
    }


# ---------------------------------------------------------------- submit helpers


def _json_body(req: Request) -> dict[str, Any] | Response:
    try:
        return req.json_object()
    except BadRequestBody:
        return mj_wrapper_error("bind_request_body_failed")


def _refusal(markers: Markers, prompt_en: str) -> Response | None:
    """Proxy-level refusals (HTTP 200 with a non-1 code) chosen by markers."""
    if markers.has("mj:banned"):
        return mj_result(24, "可能包含敏感词", None, {"promptEn": prompt_en, "bannedWord": "nsfw"})
    if markers.has("mj:queue-full"):
        return mj_result(
            23,
            "队列已满，请稍后尝试",  # noqa: RUF001
            None,
            {"numberOfQueues": 10, "discordInstanceId": "sim-1"},
        )
    if markers.has("mj:no-instance"):
        return mj_result(3, "无可用的账号实例")
    if markers.has("mj:system-error"):
        return mj_result(9, "系统异常: simulated upstream failure")
    return None


async def _gate(
    req: Request, ctx: Context, body: dict[str, Any], prompt: str
) -> tuple[Markers, Response | None]:
    markers = parse_markers(prompt, str(body.get("state") or ""))
    error = mj_special_error(markers) or _refusal(markers, strip_markers(prompt))
    await pause(req, markers, ctx.config)
    return markers, error


def _accepted(task: MjTask, markers: Markers) -> Response:
    if markers.has("mj:queued"):
        return mj_result(
            22,
            "排队中，前面还有2个任务",  # noqa: RUF001
            task.id,
            {"numberOfQueues": 2, "discordInstanceId": "sim-1"},
        )
    return mj_result(1, ACCEPTED, task.id, {"discordInstanceId": "sim-1"})


def _decode_all(values: list[Any]) -> list[bytes] | None:
    decoded = [decode_data_uri(v) for v in values]
    return None if any(d is None for d in decoded) else [d for d in decoded if d is not None]


# ---------------------------------------------------------------- submit endpoints


async def imagine(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return mj_wrapper_error("prompt_is_required")
    refs = body.get("base64Array") or []
    if not isinstance(refs, list) or _decode_all(refs) is None:
        return mj_result(4, "base64格式错误")
    markers, error = await _gate(req, ctx, body, prompt)
    if error is not None:
        return error
    task = _new_task(req, ctx, "IMAGINE", "grid", prompt, markers, body)
    return _accepted(task, markers)


async def blend(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    images = body.get("base64Array")
    if not isinstance(images, list) or not 2 <= len(images) <= 5:
        return mj_result(4, "base64List参数错误: 需要 2-5 张图片")
    decoded = _decode_all(images)
    if decoded is None:
        return mj_result(4, "base64格式错误")
    dims = str(body.get("dimensions") or "SQUARE").upper()
    if dims not in _BLEND_ASPECT:
        return mj_result(4, "dimensions参数错误")
    markers, error = await _gate(req, ctx, body, "")
    if error is not None:
        return error
    aw, ah = _BLEND_ASPECT[dims]
    task = _new_task(req, ctx, "BLEND", "grid", "", markers, body)
    task.prompt_en = f"blend of {len(decoded)} images --ar {aw}:{ah}"
    task.aspect = (aw, ah)
    task.inputs = decoded
    return _accepted(task, markers)


async def describe(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    raw, link = body.get("base64"), body.get("link")
    data = decode_data_uri(raw) if raw else None
    if raw and data is None:
        return mj_result(4, "base64格式错误")
    if data is None and not (isinstance(link, str) and link.startswith(("http://", "https://"))):
        return mj_result(4, "base64不能为空")
    markers, error = await _gate(req, ctx, body, "")
    if error is not None:
        return error
    task = _new_task(req, ctx, "DESCRIBE", "describe", "", markers, body)
    if data is not None:
        task.inputs = [data]
        mime = str(raw).split(";", 1)[0].removeprefix("data:")
        ext = mime.split("/")[-1] if mime.startswith("image/") else "bin"
        task.image_file = ctx.files.add(data, ext, mime, expired=task.expire_files)
    else:
        task.image_link = str(link)
    return _accepted(task, markers)


async def shorten(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return mj_wrapper_error("prompt_is_required")
    markers, error = await _gate(req, ctx, body, prompt)
    if error is not None:
        return error
    task = _new_task(req, ctx, "SHORTEN", "shorten", prompt, markers, body)
    return _accepted(task, markers)


async def swap_face(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    source, target = body.get("sourceBase64"), body.get("targetBase64")
    if not source or not target:
        return mj_wrapper_error("sour_base64_and_target_base64_is_required")
    decoded = _decode_all([source, target])
    if decoded is None:
        return mj_result(4, "base64格式错误")
    hints = " ".join(media.image_comment(raw) for raw in decoded)  # markers without a prompt
    markers, error = await _gate(req, ctx, body, hints)
    if error is not None:
        return error
    task = _new_task(req, ctx, "SWAP_FACE", "swap", "", markers, body)
    task.inputs = decoded
    return _accepted(task, markers)


async def action(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    task_id, custom_id = str(body.get("taskId") or ""), str(body.get("customId") or "")
    if not custom_id:
        return mj_wrapper_error("custom_id_is_required")
    if not task_id:
        return mj_wrapper_error("task_id_is_required")
    parsed = parse_custom_id(custom_id, ctx.config)
    if parsed is None:
        return mj_wrapper_error(f"unknown_action:{custom_id}")
    parent = ctx.tasks.get(task_id, req.token)
    if parent is None:
        return mj_wrapper_error("task_not_found")
    sync(parent, ctx)
    if parent.status != "SUCCESS":
        return mj_wrapper_error("task_status_not_success")
    pressed = next((b for b in parent.buttons if b["customId"] == custom_id), None)
    if pressed is None:
        return mj_result(4, f"该任务没有此按钮: {custom_id}")
    markers, error = await _gate(req, ctx, body, parent.prompt)
    if error is not None:
        return error
    prompt = parent.prompt
    if parsed.pick:
        lines = [ln for ln in parent.final_prompt.splitlines() if ln[:1].isdigit()]
        if parsed.index > len(lines):
            return mj_result(4, f"该任务没有此按钮: {custom_id}")
        prompt = lines[parsed.index - 1].split(" ", 1)[-1]
    task = _new_task(req, ctx, parsed.action, parsed.kind, prompt, markers, body)
    task.custom_id = custom_id
    task.parent_id = parent.id
    task.index = parsed.index
    task.aspect = _aspect(prompt) if parsed.pick else parent.aspect
    if not task.prompt_en:
        task.prompt_en = parent.prompt_en  # e.g. a blend's synthetic prompt
    pressed["style"] = 1  # Discord highlights a used U button; plus proxies pass that through
    if parsed.modal or body.get("enableRemix") is True:
        task.status = "MODAL"
        return mj_result(
            21,
            "Waiting for window confirm",
            task.id,
            {"status": "MODAL", "finalPrompt": task.prompt_en, "remix": True},
        )
    return mj_result(1, ACCEPTED, task.id, {"discordInstanceId": "sim-1"})


async def modal(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    task_id = str(body.get("taskId") or "")
    if not task_id:
        return mj_wrapper_error("task_id_is_required")
    task = ctx.tasks.get(task_id, req.token)
    if task is None:
        return mj_wrapper_error("task_not_found")
    if task.status != "MODAL":
        return mj_result(4, "任务状态错误: 该任务不在等待确认窗口 (not MODAL)")
    prompt = body.get("prompt")
    prompt = prompt if isinstance(prompt, str) else ""
    if task.action == "CUSTOM_ZOOM" and not prompt.strip():
        return mj_result(4, "prompt不能为空")
    mask = body.get("maskBase64")
    if task.action == "INPAINT":
        if not mask:
            return mj_result(4, "maskBase64不能为空")
        if decode_data_uri(mask) is None:
            return mj_result(4, "base64格式错误")
    markers, error = await _gate(req, ctx, body, prompt)
    if error is not None:
        return error
    if prompt.strip():
        task.prompt = prompt
        task.prompt_en = strip_markers(prompt)
        task.aspect = _aspect(prompt) if _ASPECT.search(prompt) else task.aspect
        task.doomed = task.doomed or markers.has("mj:fail")
        task.expire_files = task.expire_files or markers.has("expire")
    task.mask = str(mask or "")
    task.status, task.step, task.clock_start = "NOT_START", 0, time.monotonic()
    return mj_result(1, ACCEPTED, task.id, {"discordInstanceId": "sim-1"})


# ---------------------------------------------------------------- task queries


def _task_no_found() -> Response:
    # Sic: the relay's token really is "task_no_found" with a trailing space.
    return mj_wrapper_error("task_no_found ")


async def fetch(req: Request, ctx: Context) -> Response:
    task = ctx.tasks.get(req.params["task_id"], req.token)
    if task is None:
        return _task_no_found()
    sync(task, ctx)
    payload = task_json(task, req.base_url)
    fetched(task)
    return json_response(payload)


async def list_by_condition(req: Request, ctx: Context) -> Response:
    body = _json_body(req)
    if isinstance(body, Response):
        return body
    ids = body.get("ids")
    out = []
    for task_id in ids if isinstance(ids, list) else []:
        task = ctx.tasks.get(str(task_id), req.token)
        if task is not None:
            sync(task, ctx)
            out.append(task_json(task, req.base_url))
            fetched(task)
    return json_response(out)


async def image_seed(req: Request, ctx: Context) -> Response:
    task = ctx.tasks.get(req.params["task_id"], req.token)
    if task is None:
        return _task_no_found()
    sync(task, ctx)
    if task.status != "SUCCESS" or not task.seed:
        return mj_result(4, "关联任务状态错误", status=400)
    return mj_result(1, "成功", task.seed)


def task_image_name(ctx: Context, task_id: str) -> str | None:
    """File behind the relay's unauthenticated image proxy ``/mj/image/{id}``."""
    task = ctx.tasks.any_owner(task_id)
    if task is None:
        return None
    return task.image_file or task.preview_file or None
