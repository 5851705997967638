"""Luma ("reverse" web API, §10): generations, their state, and extensions.

A generation advances over ten steps: ``pending`` → ``queued`` → ``processing`` / ``dreaming``
→ ``completed`` (or ``failed``), driven like the other video families by wall time (a realistic
render length divided by SIMULATOR_SPEED) and by polling (every fetch moves it one step). A
completed generation carries the real sample clip (``assets/sample.mp4``) and a JPEG thumbnail
drawn from the prompt, both on the fake CDN (they expire like any file). As the real upstream
does, the first answer that says ``completed`` has ``video.download_url`` still empty; it is set
from the next fetch on.

``POST /luma/generations/{id}/extend`` takes the body of a create and continues a completed
generation of the same token as a new generation (``extend_of`` names the parent).

Errors are Luma's FastAPI shapes: ``{"detail": "..."}`` (400 refusal, 402 credits, 404 unknown
generation) and 422 ``{"detail": [{"loc", "msg", "type"}]}`` for a body that fails validation.

Markers in ``user_prompt`` (the relay-level ones of specials.py answer in the relay's shape):
  [[video:fail]]    the generation fails half-way (``state: failed``, ``failure_reason``)
  [[video:refuse]]  400 ``{"detail": ...}``: the prompt is refused by moderation
  [[luma:quota]]    402 ``{"detail": "Insufficient credits ..."}``
  [[expire]], [[sleep=N]], [[slow]] as everywhere.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from studio.simulator import media
from studio.simulator.specials import openai_special_error, parse_markers, pause, strip_markers
from studio.simulator.state import Context
from studio.simulator.video import STEPS, sample_video
from studio.simulator.web import BadRequestBody, Request, Response, json_response

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
MAX_PROMPT = 5000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
FAIL_AT_STEP = 5
RENDER_SECONDS = 120.0
SAMPLE_SIZE = (320, 180)  # the sample clip's real frame size

_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|webp));base64,(.*)$", re.DOTALL)


@dataclass
class Generation:
    id: str
    owner: str
    prompt: str
    aspect_ratio: str
    seconds: float
    doomed: bool = False
    expire_files: bool = False
    extend_of: str = ""
    step: int = 0
    failure: str = ""
    video_file: str = ""
    thumbnail_file: str = ""
    completed_answers: int = 0  # "completed" answers given so far (the first lacks download_url)
    clock_start: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def finished(self) -> bool:
        return bool(self.failure) or self.step >= STEPS


GENERATIONS: dict[str, Generation] = {}


def find(generation_id: str, owner: str) -> Generation | None:
    generation = GENERATIONS.get(generation_id.strip())
    return generation if generation is not None and generation.owner == owner else None


def detail(status: int, message: str) -> Response:
    return json_response({"detail": message}, status)


def invalid(field_name: str, message: str, kind: str) -> Response:
    return json_response(
        {"detail": [{"loc": ["body", field_name], "msg": message, "type": kind}]}, 422
    )


def sync(generation: Generation, ctx: Context) -> None:
    """Bring a generation up to date with the wall clock (fetches move it in ``fetch``)."""
    if generation.failure:
        return
    per_step = ctx.config.scaled(generation.seconds) / STEPS
    by_time = int((time.monotonic() - generation.clock_start) / per_step) if per_step > 0 else STEPS
    step = min(STEPS, max(generation.step, by_time))
    if generation.doomed and step >= FAIL_AT_STEP:
        generation.step = FAIL_AT_STEP
        generation.failure = "The generation failed: the model could not render it (simulated)"
        return
    generation.step = step
    if step >= STEPS and not generation.video_file:
        expired = generation.expire_files
        generation.video_file = ctx.files.add(sample_video(), "mp4", "video/mp4", expired=expired)
        picture = media.draw_picture(generation.prompt, *SAMPLE_SIZE, label="luma")
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85)
        generation.thumbnail_file = ctx.files.add(
            buffer.getvalue(), "jpg", "image/jpeg", expired=expired
        )


def _state(generation: Generation) -> str:
    if generation.failure:
        return "failed"
    if generation.step >= STEPS:
        return "completed"
    if generation.step == 0:
        return "pending"
    if generation.step == 1:
        return "queued"
    return "dreaming" if generation.step % 2 else "processing"


def generation_json(generation: Generation, ctx: Context, base_url: str) -> dict[str, Any]:
    state = _state(generation)
    created = generation.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload: dict[str, Any] = {
        "id": generation.id,
        "prompt": generation.prompt,
        "state": state,
        "created_at": created,
        "aspect_ratio": generation.aspect_ratio,
        "video": None,
        "liked": None,
        "estimate_wait_seconds": None,
        "thumbnail": None,
        "last_frame": None,
        "failure_reason": generation.failure or None,
    }
    if generation.extend_of:
        payload["extend_of"] = generation.extend_of
    if state in ("pending", "queued"):
        remaining = ctx.config.scaled(generation.seconds) * (STEPS - generation.step) / STEPS
        payload["estimate_wait_seconds"] = max(1, round(remaining))
    if state == "completed":
        width, height = SAMPLE_SIZE
        thumbnail = f"{base_url}/files/{generation.thumbnail_file}"
        video_url = f"{base_url}/files/{generation.video_file}"
        payload["video"] = {
            "url": video_url,
            "width": width,
            "height": height,
            "thumbnail": thumbnail,
            # The upstream says "completed" a moment before the download link exists.
            "download_url": video_url if generation.completed_answers > 0 else None,
        }
        payload["thumbnail"] = {"url": thumbnail, "width": width, "height": height}
        payload["last_frame"] = {"url": thumbnail, "width": width, "height": height}
    return payload


def _image_problem(name: str, value: object) -> Response | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return invalid(name, "str type expected", "type_error.str")
    text = value.strip()
    if text.startswith(("http://", "https://")):
        return None
    match = _DATA_URI.match(text)
    if not match:
        return invalid(name, "expected an http(s) URL or an image data URI", "value_error.url")
    try:
        data = base64.b64decode(re.sub(r"\s+", "", match.group(2)), validate=True)
    except (binascii.Error, ValueError):
        return invalid(name, "the data URI is not valid base64", "value_error")
    if len(data) > MAX_IMAGE_BYTES:
        return invalid(name, "the image is larger than 10 MB", "value_error")
    if media.image_info(data) is None:
        return invalid(name, "the data URI does not hold a readable image", "value_error")
    return None


def _problem(body: dict[str, Any]) -> Response | None:
    prompt = body.get("user_prompt")
    if prompt is None:
        return invalid("user_prompt", "field required", "value_error.missing")
    if not isinstance(prompt, str):
        return invalid("user_prompt", "str type expected", "type_error.str")
    if len(prompt) > MAX_PROMPT:
        return invalid(
            "user_prompt",
            f"ensure this value has at most {MAX_PROMPT} characters",
            "value_error.any_str.max_length",
        )
    ratio = body.get("aspect_ratio")
    if ratio is not None and ratio not in ASPECT_RATIOS:
        permitted = ", ".join(f"'{item}'" for item in ASPECT_RATIOS)
        return invalid(
            "aspect_ratio",
            f"value is not a valid enumeration member; permitted: {permitted}",
            "type_error.enum",
        )
    for name in ("expand_prompt", "loop"):
        if body.get(name) is not None and not isinstance(body.get(name), bool):
            return invalid(name, "value could not be parsed to a boolean", "type_error.bool")
    for name in ("image_url", "image_end_url"):
        if (problem := _image_problem(name, body.get(name))) is not None:
            return problem
    return None


async def _start(req: Request, ctx: Context, *, extend_of: str = "") -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return invalid("body", f"value is not a valid dict ({exc})", "type_error.dict")
    prompt = body.get("user_prompt") if isinstance(body.get("user_prompt"), str) else ""
    markers = parse_markers(str(prompt or ""))
    error = openai_special_error(markers, "luma")
    if error is not None:
        return error
    if markers.has("luma:quota"):
        return detail(402, "Insufficient credits: your plan's generations are used up")
    if (problem := _problem(body)) is not None:
        return problem
    if markers.has("video:refuse"):
        return detail(400, "Your prompt was flagged by our moderation system (simulated)")
    await pause(req, markers, ctx.config)
    generation = Generation(
        id=str(uuid.uuid4()),
        owner=req.token,
        prompt=strip_markers(str(prompt or "")),
        aspect_ratio=str(body.get("aspect_ratio") or "16:9"),
        seconds=RENDER_SECONDS,
        doomed=markers.has("video:fail"),
        expire_files=markers.has("expire"),
        extend_of=extend_of,
    )
    GENERATIONS[generation.id] = generation
    return json_response(generation_json(generation, ctx, req.base_url), 201)


async def create(req: Request, ctx: Context) -> Response:
    return await _start(req, ctx)


async def extend(req: Request, ctx: Context) -> Response:
    parent = find(req.params["generation_id"], req.token)
    if parent is None:
        return detail(404, "Generation not found")
    sync(parent, ctx)
    if _state(parent) != "completed":
        return detail(400, f"Only a completed generation can be extended (it is {_state(parent)})")
    return await _start(req, ctx, extend_of=parent.id)


async def fetch(req: Request, ctx: Context) -> Response:
    generation = find(req.params["generation_id"], req.token)
    if generation is None:
        return detail(404, "Generation not found")
    sync(generation, ctx)
    payload = generation_json(generation, ctx, req.base_url)
    if payload["state"] == "completed":
        generation.completed_answers += 1
    elif not generation.finished:
        generation.step += 1
    return json_response(payload)
