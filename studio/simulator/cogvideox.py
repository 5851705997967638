# ruff: noqa: RUF001 - Zhipu's messages are Chinese, with full-width punctuation
"""CogVideoX (Zhipu's official format, §14): video tasks and their async results.

A task answers ``task_status: PROCESSING`` for ten steps (wall time at SIMULATOR_SPEED, or one
step per fetch, whichever is ahead), then ``SUCCESS`` with ``video_result: [{url,
cover_image_url}]``: the real sample clip and a PNG cover drawn from the prompt (or, for image
to video, tinted by the image's colour), both on the fake CDN; or ``FAIL``.

Errors are Zhipu's: ``{"error": {"code": "<business code>", "message": "..."}}``, with the HTTP
status Zhipu pairs with the code (1113 "account in arrears" comes with 429). The models and the
optional fields each one takes mirror Zhipu's model pages: ``cogvideox`` takes a prompt and an
image only, ``cogvideox-flash`` adds ``with_audio``, ``size`` and ``fps``, ``cogvideox-3`` also
``quality``; a field the model does not take is refused (1214).

Markers in ``prompt`` (the relay-level ones of specials.py answer in the relay's shape):
  [[video:fail]]       the task ends in FAIL (with an ``error`` object naming why)
  [[video:refuse]]     400, code 1301: unsafe or sensitive content
  [[cogvideox:quota]]  429, code 1113: the account is in arrears
  [[expire]], [[sleep=N]], [[slow]] as everywhere.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from studio.simulator import media
from studio.simulator.specials import openai_special_error, parse_markers, pause, strip_markers
from studio.simulator.state import Context
from studio.simulator.video import STEPS, sample_video
from studio.simulator.web import BadRequestBody, Request, Response, json_response

MODEL_OPTIONS: dict[str, frozenset[str]] = {
    "cogvideox": frozenset(),
    "cogvideox-flash": frozenset({"with_audio", "size", "fps"}),
    "cogvideox-3": frozenset({"quality", "with_audio", "size", "fps"}),
}
SIZES = ("1280x720", "720x1280", "1024x1024", "1920x1080", "1080x1920", "2048x1080", "3840x2160")
MAX_PROMPT = 500
MAX_IMAGE_BYTES = 5 * 1024 * 1024
FAIL_AT_STEP = 5
RENDER_SECONDS = 90.0
COVER_SIZE = (320, 180)

_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|jpg));base64,(.*)$", re.DOTALL)


@dataclass
class CogTask:
    id: str
    owner: str
    model: str
    request_id: str
    prompt: str
    seconds: float
    doomed: bool = False
    expire_files: bool = False
    image_colour: tuple[int, int, int] | None = None
    step: int = 0
    failed: bool = False
    video_file: str = ""
    cover_file: str = ""
    clock_start: float = field(default_factory=time.monotonic)


TASKS: dict[str, CogTask] = {}


def zhipu_error(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def _task_id() -> str:
    # Zhipu's ids: a number, a dash and a long random number, as a string.
    return f"{secrets.randbelow(10**4)}-{10**17 + secrets.randbelow(9 * 10**17)}"


def _image_colour(value: str) -> tuple[int, int, int] | str | None:
    """The image's average colour, or a refusal message (str) when it is not a usable image."""
    text = value.strip()
    if text.startswith(("http://", "https://")):
        return None
    match = _DATA_URI.match(text)
    raw = match.group(2) if match else text
    try:
        data = base64.b64decode(re.sub(r"\s+", "", raw), validate=True)
    except (binascii.Error, ValueError):
        return "image_url参数非法：不是 URL，也不是有效的 Base64 图片"
    if len(data) > MAX_IMAGE_BYTES:
        return "image_url参数非法：图片大小不能超过 5M"
    info = media.image_info(data)
    if info is None:
        return "image_url参数非法：图片仅支持 .png、.jpeg、.jpg 格式"
    return info[2]


def _problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) of the first thing Zhipu would refuse, or None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "1213", "未正常接收到model参数 (model is required)"
    if model not in MODEL_OPTIONS:
        return "1211", f"模型不存在，请检查模型代码。(model {model!r} does not exist)"
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "1214", "prompt参数非法 (prompt must be a string)"
    if isinstance(prompt, str) and len(prompt) > MAX_PROMPT:
        return "1214", f"prompt参数非法：长度不能超过 {MAX_PROMPT} 个字符"
    image = body.get("image_url")
    if image is not None and not isinstance(image, str):
        return "1214", "image_url参数非法 (image_url must be a string)"
    if not (prompt or "").strip() and not (image or "").strip():
        return "1213", "未正常接收到prompt参数 (prompt or image_url is required)"
    for name in ("quality", "with_audio", "size", "fps"):
        if name in body and name not in MODEL_OPTIONS[model]:
            return "1214", f"{name}参数非法：模型 {model} 不支持该参数"
    if "quality" in body and body["quality"] not in ("speed", "quality"):
        return "1214", "quality参数非法：可选 speed 或 quality"
    if "with_audio" in body and not isinstance(body["with_audio"], bool):
        return "1214", "with_audio参数非法：应为布尔值"
    if "size" in body and body["size"] not in SIZES:
        return "1214", f"size参数非法：可选 {', '.join(SIZES)}"
    fps = body.get("fps")
    if "fps" in body and (isinstance(fps, bool) or fps not in (30, 60)):
        return "1214", "fps参数非法：可选 30 或 60"
    return None


async def generate(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return zhipu_error(400, "1210", f"API 调用参数有误，请检查文档。({exc})")
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    markers = parse_markers(str(prompt or ""))
    error = openai_special_error(markers, str(body.get("model") or "cogvideox"))
    if error is not None:
        return error
    if markers.has("cogvideox:quota"):
        return zhipu_error(429, "1113", "您的账户已欠费，请充值后重试。")
    if (problem := _problem(body)) is not None:
        return zhipu_error(400, *problem)
    colour: tuple[int, int, int] | None = None
    if isinstance(body.get("image_url"), str) and body["image_url"].strip():
        found = _image_colour(body["image_url"])
        if isinstance(found, str):
            return zhipu_error(400, "1214", found)
        colour = found
    if markers.has("video:refuse"):
        message = (
            "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，"
            "感谢您的配合。"
        )
        return zhipu_error(400, "1301", message)
    await pause(req, markers, ctx.config)
    task = CogTask(
        id=_task_id(),
        owner=req.token,
        model=str(body["model"]),
        request_id=str(body.get("request_id") or secrets.token_hex(10)),
        prompt=strip_markers(str(prompt or "")),
        seconds=RENDER_SECONDS,
        doomed=markers.has("video:fail"),
        expire_files=markers.has("expire"),
        image_colour=colour,
    )
    TASKS[task.id] = task
    return json_response(
        {
            "id": task.id,
            "request_id": task.request_id,
            "model": task.model,
            "task_status": "PROCESSING",
        }
    )


def _sync(task: CogTask, ctx: Context) -> None:
    if task.failed:
        return
    per_step = ctx.config.scaled(task.seconds) / STEPS
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else STEPS
    task.step = min(STEPS, max(task.step, by_time))
    if task.doomed and task.step >= FAIL_AT_STEP:
        task.step, task.failed = FAIL_AT_STEP, True
        return
    if task.step >= STEPS and not task.video_file:
        expired = task.expire_files
        task.video_file = ctx.files.add(sample_video(), "mp4", "video/mp4", expired=expired)
        label = f"cogvideox · {task.model}"
        if task.image_colour is not None:
            label += f" · from a {media.colour_name(task.image_colour)} image"
        cover = media.draw_picture(task.prompt or "image to video", *COVER_SIZE, label=label)
        task.cover_file = ctx.files.add(media.png(cover), "png", "image/png", expired=expired)


def _task_json(task: CogTask, base_url: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": task.model, "request_id": task.request_id, "id": task.id}
    if task.failed:
        payload["task_status"] = "FAIL"
        payload["error"] = {
            "code": "500",
            "message": "视频生成失败：模型未能完成渲染 (simulated failure)",
        }
    elif task.step >= STEPS:
        payload["task_status"] = "SUCCESS"
        payload["video_result"] = [
            {
                "url": f"{base_url}/files/{task.video_file}",
                "cover_image_url": f"{base_url}/files/{task.cover_file}",
            }
        ]
    else:
        payload["task_status"] = "PROCESSING"
    return payload


async def result(req: Request, ctx: Context) -> Response:
    task = TASKS.get(req.params["task_id"].strip())
    if task is None or task.owner != req.token:
        return zhipu_error(400, "1214", f"id参数非法：任务不存在 (no task {req.params['task_id']})")
    _sync(task, ctx)
    payload = _task_json(task, req.base_url)
    if not task.failed and task.step < STEPS:
        task.step += 1
    return json_response(payload)
