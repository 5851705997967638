"""Flux, Black Forest Labs' official format (upstream-api.md §7): flux-pro-1.1, flux-pro and
flux-dev submits, and ``GET /flux/v1/get_result?id=…``.

A submit answers ``{"id", "polling_url"}``; the task is then ``Pending`` (with a 0-1
``progress``) for five steps and ends ``Ready`` with ``result.sample``: a real JPEG or PNG (as
``output_format`` asked) at the requested width and height, drawn by media.py (blended with the
``image_prompt`` when one was sent), served from ``/files/`` and expiring like BFL's signed
links (``SIMULATOR_FILE_TTL``, ``[[expire]]``). As for the video families two clocks drive a
task, whichever is ahead: wall time (a realistic render length divided by SIMULATOR_SPEED) and
polling (every fetch moves a task one step). With ``prompt_upsampling`` the result's prompt is
a rewritten one. An id the relay does not know (or another key's task) answers
``Task not found``.

BFL is a FastAPI service: validation errors are HTTP 422 ``{"detail": [{"loc", "msg",
"type"}]}`` (a width that is not a multiple of 32, a safety tolerance above 6...), other
refusals ``{"detail": "..."}``.

Markers, read from ``prompt``; the relay-level ones of specials.py (``[[error:429]]``,
``[[error:503]]``, ``[[error:401]]``, ``[[error:quota]]``…) answer in the relay's OpenAI shape:
  [[flux:moderate-request]]  the task is ``Request Moderated`` from the start
  [[flux:moderate]]          the task ends ``Content Moderated`` (the image failed moderation)
  [[flux:error]]             the task ends ``Error``
  [[flux:422]]               HTTP 422 with a FastAPI ``detail`` list at submit
  [[flux:credits]]           HTTP 402 ``{"detail": "Insufficient credits..."}`` at submit
  [[flux:lost]]              get_result never finds the task (``Task not found``)
  [[expire]], [[sleep=N]], [[slow]] as everywhere.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

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

STEPS = 5
MODELS = ("flux-pro-1.1", "flux-pro", "flux-dev")
# Seconds a task takes for real at SIMULATOR_SPEED=1.
RENDER_SECONDS = {"flux-pro-1.1": 6.0, "flux-pro": 12.0, "flux-dev": 9.0}
SIDE_MIN, SIDE_MAX, SIDE_STEP = 256, 1440, 32
MAX_SEED = 2**32 - 1
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Model-specific fields: (low, high, integer?)
MODEL_FIELDS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "flux-pro-1.1": {},
    "flux-pro": {"steps": (1, 50, True), "guidance": (1.5, 5, False), "interval": (1, 4, False)},
    "flux-dev": {"steps": (1, 50, True), "guidance": (1.5, 5, False)},
}


class Refusal(Exception):
    """BFL refuses the request: the response to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def field_error(name: str, msg: str, kind: str, value: Any = None, **ctx: Any) -> Refusal:
    item: dict[str, Any] = {"type": kind, "loc": ["body", name], "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return Refusal(json_response({"detail": [item]}, 422))


@dataclass
class FluxTask:
    id: str
    owner: str
    model: str
    prompt: str  # markers stripped
    used_prompt: str  # what BFL "used": rewritten with prompt_upsampling
    width: int
    height: int
    output_format: str
    seed: int
    seconds: float
    image: bytes = b""
    ending: str = "Ready"  # Ready | Content Moderated | Error
    moderated_at_once: bool = False
    lost: bool = False
    expire_files: bool = False
    step: int = 0
    sample_file: str = ""
    clock_start: float = field(default_factory=time.monotonic)
    start_time: float = field(default_factory=time.time)
    end_time: float = 0.0

    @property
    def status(self) -> str:
        if self.moderated_at_once:
            return "Request Moderated"
        return self.ending if self.step >= STEPS else "Pending"


class FluxTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, FluxTask] = {}

    def add(self, task: FluxTask) -> FluxTask:
        self._tasks[task.id] = task
        return task

    def get(self, task_id: str, owner: str) -> FluxTask | None:
        task = self._tasks.get(task_id.strip())
        return task if task is not None and task.owner == owner else None


TASKS = FluxTasks()


# ---------------------------------------------------------------- request checks


def _integer(body: dict[str, Any], name: str, low: float, high: float) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error(name, "Input should be a valid integer", "int_type", value)
    _bounds(name, value, low, high)
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_error(name, "Input should be a valid number", "float_type", value)
    _bounds(name, value, low, high)
    return float(value)


def _bounds(name: str, value: float, low: float, high: float) -> None:
    if value < low:
        msg = f"Input should be greater than or equal to {low:g}"
        raise field_error(name, msg, "greater_than_equal", value, ge=low)
    if value > high:
        msg = f"Input should be less than or equal to {high:g}"
        raise field_error(name, msg, "less_than_equal", value, le=high)


def _side(body: dict[str, Any], name: str, default: int) -> int:
    value = _integer(body, name, SIDE_MIN, SIDE_MAX)
    if value is None:
        return default
    if value % SIDE_STEP:
        msg = f"Input should be a multiple of {SIDE_STEP}"
        raise field_error(name, msg, "multiple_of", value, multiple_of=SIDE_STEP)
    return value


def _image_prompt(body: dict[str, Any]) -> bytes:
    value = body.get("image_prompt")
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise field_error("image_prompt", "Input should be a valid string", "string_type", None)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", value), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data or len(data) > MAX_IMAGE_BYTES or media.image_info(data) is None:
        raise Refusal(json_response({"detail": "Invalid image_prompt: not a readable image."}, 400))
    return data


def check_body(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """What BFL's request model makes of the body (defaults filled), or a Refusal (422)."""
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise field_error("prompt", "Input should be a valid string", "string_type", prompt)
    image = _image_prompt(body)
    if not (prompt or "").strip() and not image:
        raise field_error("prompt", "Field required: give a prompt or an image_prompt", "missing")
    upsampling = body.get("prompt_upsampling", False)
    if not isinstance(upsampling, bool):
        raise field_error(
            "prompt_upsampling", "Input should be a valid boolean", "bool_type", upsampling
        )
    output_format = body.get("output_format") or "jpeg"
    if output_format not in ("jpeg", "png"):
        raise field_error("output_format", "Input should be 'jpeg' or 'png'", "enum", output_format)
    checked: dict[str, Any] = {
        "prompt": prompt or "",
        "image": image,
        "width": _side(body, "width", 1024),
        "height": _side(body, "height", 768),
        "prompt_upsampling": upsampling,
        "seed": _integer(body, "seed", 0, MAX_SEED),
        "safety_tolerance": _integer(body, "safety_tolerance", 0, 6),
        "output_format": output_format,
    }
    for name, (low, high, integer) in MODEL_FIELDS[model].items():
        checked[name] = (_integer if integer else _number)(body, name, low, high)
    return checked


# ---------------------------------------------------------------- tasks


def sync(task: FluxTask, ctx: Context) -> None:
    """Bring a task up to date with the wall clock, and draw its image when it is done."""
    if task.moderated_at_once:
        return
    per_step = ctx.config.scaled(task.seconds) / STEPS
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else STEPS
    task.step = min(STEPS, max(task.step, by_time))
    if task.step >= STEPS and not task.end_time:
        task.end_time = time.time()
        if task.ending == "Ready":
            task.sample_file = _draw(task, ctx)


def _draw(task: FluxTask, ctx: Context) -> str:
    label = f"FLUX {task.model.removeprefix('flux-')} · seed {task.seed}"
    picture = media.draw_picture(
        task.used_prompt or "(image prompt)", task.width, task.height, task.seed, label
    )
    if task.image:
        try:
            with Image.open(io.BytesIO(task.image)) as opened:
                source = ImageOps.fit(opened.convert("RGB"), (task.width, task.height))
            picture = Image.blend(picture, source, 0.4)
        except (UnidentifiedImageError, OSError, ValueError):
            pass  # checked at submit; a picture without the blend is still a picture
    out = io.BytesIO()
    if task.output_format == "png":
        picture.save(out, "PNG", compress_level=1)
        ext, content_type = "png", "image/png"
    else:
        picture.save(out, "JPEG", quality=90)
        ext, content_type = "jpeg", "image/jpeg"
    return ctx.files.add(out.getvalue(), ext, content_type, expired=task.expire_files)


def _upsampled(prompt: str, seed: int) -> str:
    look = ("cinematic lighting", "soft morning light", "dramatic shadows")[seed % 3]
    return f"{prompt.rstrip('.')}, rendered in fine detail with {look} (simulated upsampling)"


def task_json(task: FluxTask, base_url: str) -> dict[str, Any]:
    status = task.status
    payload: dict[str, Any] = {
        "id": task.id,
        "status": status,
        "result": None,
        "progress": None,
        "details": None,
    }
    if status == "Pending":
        payload["progress"] = round(task.step / STEPS, 2)
    elif status == "Ready":
        payload["progress"] = 1
        payload["result"] = {
            "sample": f"{base_url}/files/{task.sample_file}",
            "prompt": task.used_prompt,
            "seed": task.seed,
            "start_time": round(task.start_time, 2),
            "end_time": round(task.end_time, 2),
            "duration": round(task.end_time - task.start_time, 2),
        }
    elif status in ("Request Moderated", "Content Moderated"):
        reason = "Derivative Works Filter" if status == "Request Moderated" else "NSFW"
        payload["details"] = {"Moderation Reasons": [f"{reason} (simulated)"]}
    else:  # Error
        payload["details"] = {"error": "The generation failed on the inference server (simulated)"}
    return payload


def _not_found(task_id: str) -> Response:
    return json_response({"id": task_id, "status": "Task not found", "result": None})


# ---------------------------------------------------------------- endpoints


def _special_error(markers: Markers, model: str) -> Response | None:
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    if markers.has("flux:credits"):
        message = "Insufficient credits. Add credits to your account to continue (simulated)."
        return json_response({"detail": message}, 402)
    if markers.has("flux:422"):
        item = {
            "type": "value_error",
            "loc": ["body", "prompt"],
            "msg": "Value error, the prompt could not be processed (simulated)",
            "input": "…",
        }
        return json_response({"detail": [item]}, 422)
    return None


async def _submit(req: Request, ctx: Context, model: str) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        item = {"type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error: {exc}"}
        return json_response({"detail": [item]}, 422)
    raw_prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    markers = parse_markers(str(raw_prompt or ""))
    if (error := _special_error(markers, model)) is not None:
        return error
    try:
        checked = check_body(model, body)
    except Refusal as refusal:
        return refusal.response
    await pause(req, markers, ctx.config)
    prompt = strip_markers(checked["prompt"])
    seed = checked["seed"] if checked["seed"] is not None else secrets.randbelow(MAX_SEED)
    steps = checked.get("steps")
    seconds = RENDER_SECONDS[model] * (steps / 40 if steps else 1.0)
    ending = "Ready"
    if markers.has("flux:moderate"):
        ending = "Content Moderated"
    elif markers.has("flux:error"):
        ending = "Error"
    task = TASKS.add(
        FluxTask(
            id=str(uuid.uuid4()),
            owner=req.token,
            model=model,
            prompt=prompt,
            used_prompt=_upsampled(prompt, seed) if checked["prompt_upsampling"] else prompt,
            width=checked["width"],
            height=checked["height"],
            output_format=checked["output_format"],
            seed=seed,
            seconds=seconds,
            image=checked["image"],
            ending=ending,
            moderated_at_once=markers.has("flux:moderate-request"),
            lost=markers.has("flux:lost"),
            expire_files=markers.has("expire"),
        )
    )
    # BFL answers a polling URL on its own (regional) host; a relay passes it on unchanged.
    polling_url = f"https://api.us1.bfl.ai/v1/get_result?id={task.id}"
    return json_response({"id": task.id, "polling_url": polling_url})


async def flux_pro_1_1(req: Request, ctx: Context) -> Response:
    return await _submit(req, ctx, "flux-pro-1.1")


async def flux_pro(req: Request, ctx: Context) -> Response:
    return await _submit(req, ctx, "flux-pro")


async def flux_dev(req: Request, ctx: Context) -> Response:
    return await _submit(req, ctx, "flux-dev")


async def get_result(req: Request, ctx: Context) -> Response:
    task_id = req.query.get("id", "").strip()
    if not task_id:
        item = {"type": "missing", "loc": ["query", "id"], "msg": "Field required", "input": None}
        return json_response({"detail": [item]}, 422)
    task = TASKS.get(task_id, req.token)
    if task is None or task.lost:
        return _not_found(task_id)
    sync(task, ctx)
    payload = task_json(task, req.base_url)
    if task.step < STEPS:
        task.step += 1  # the polling clock
    return json_response(payload)
