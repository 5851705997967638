"""Stability AI, official format (upstream-api.md §12): Stable Image Ultra / Core / SD3
(``POST /v2beta/stable-image/generate/{ultra|core|sd3}``, multipart) and SDXL / SD 1.6
(``POST /v1/generation/{engine_id}/text-to-image``, JSON).

Every call answers synchronously after a scaled "render" time, with real images drawn by
media.py. v2beta: one image in the requested ``output_format`` (PNG, JPEG or WebP) at
Stability's resolution for the ``aspect_ratio`` (1:1 → 1024x1024, 16:9 → 1344x768 …); image to
image (Ultra with ``image`` + ``strength``, SD3 with ``mode=image-to-image``) keeps the input's
proportions and blends the drawing over it by ``strength``. With ``Accept: application/json``
the reply is ``{"image": <base64>, "finish_reason", "seed"}``; with ``Accept: image/*`` (or none)
the bytes themselves, with ``finish-reason`` and ``seed`` headers. v1: ``samples`` PNGs at
``width`` x ``height`` as ``{"artifacts": [{"base64", "seed", "finishReason"}]}`` (or, with
``Accept: image/png``, the first image's bytes).

Errors are Stability's own: v2beta ``{"id", "name", "errors": [...]}`` (400 ``bad_request`` for
bad input, 403 ``content_moderation``, 402 ``payment_required``, 500 ``internal_error``),
v1 ``{"id", "name", "message"}`` (400 ``bad_request`` / ``invalid_prompts``, 404 ``not_found``
for an unknown engine, 402 ``insufficient_balance``).

Markers, read from the prompt(s) and the negative prompt; the relay-level ones of specials.py
(``[[error:429]]``, ``[[error:503]]``, ``[[error:401]]``, ``[[error:quota]]``…) answer in the
relay's OpenAI shape:
  [[stability:filtered]]     the image comes back blurred, finish reason CONTENT_FILTERED
  [[stability:filtered=N]]   v1: the first N images do
  [[stability:moderation]]   refused: v2beta 403 content_moderation, v1 400 invalid_prompts
  [[stability:credits]]      402: v2beta payment_required, v1 insufficient_balance
  [[stability:500]]          500 internal_error / server_error
  [[sleep=N]], [[slow]] as everywhere.
"""

from __future__ import annotations

import base64
import io
import math
import secrets
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
from studio.simulator.web import BadRequestBody, Request, Response, UploadedFile, json_response

ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
OUTPUT_FORMATS = {
    "ultra": ("png", "jpeg", "webp"),
    "core": ("png", "jpeg", "webp"),
    "sd3": ("png", "jpeg"),
}
SD3_MODELS = (
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3-large",
    "sd3-large-turbo",
    "sd3-medium",
)
STYLE_PRESETS = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
MAX_PROMPT = 10_000
MAX_SEED_V2 = 4_294_967_294
MAX_SEED_V1 = 4_294_967_295
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 64
RENDER_SECONDS = {"ultra": 9.0, "core": 4.0, "sd3": 6.0}
# v1
ENGINES = ("stable-diffusion-xl-1024-v1-0", "stable-diffusion-v1-6")
SDXL_SIZES = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)
SAMPLERS = (
    "DDIM",
    "DDPM",
    "K_DPMPP_2M",
    "K_DPMPP_2S_ANCESTRAL",
    "K_DPM_2",
    "K_DPM_2_ANCESTRAL",
    "K_EULER",
    "K_EULER_ANCESTRAL",
    "K_HEUN",
    "K_LMS",
)
CLIP_PRESETS = ("FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST")
V1_SECONDS = 3.0  # plus a second per extra sample


class Refusal(Exception):
    """Stability refuses the request: the response to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _error_id() -> str:
    return secrets.token_hex(16)


def v2_error(status: int, name: str, *errors: str) -> Response:
    return json_response({"id": _error_id(), "name": name, "errors": list(errors)}, status)


def v1_error(status: int, name: str, message: str) -> Response:
    return json_response({"id": _error_id(), "name": name, "message": message}, status)


def _bad(*errors: str) -> Refusal:
    return Refusal(v2_error(400, "bad_request", *errors))


def _encode(picture: Image.Image, output_format: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if output_format == "jpeg":
        picture.convert("RGB").save(out, "JPEG", quality=90)
        return out.getvalue(), "image/jpeg"
    if output_format == "webp":
        picture.save(out, "WEBP", quality=85)
        return out.getvalue(), "image/webp"
    picture.save(out, "PNG", compress_level=1)
    return out.getvalue(), "image/png"


def _seed(value: int | None) -> int:
    return value if value else secrets.randbelow(MAX_SEED_V2) + 1  # 0 means "random"


# ---------------------------------------------------------------- v2beta checks


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[-1] if values else None


def _int_field(fields: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    raw = _one(fields, name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise _bad(f"{name}: must be between {low} and {high}")
    return value


def _choice(fields: dict[str, list[str]], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _one(fields, name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise _bad(f"{name}: must be one of {', '.join(allowed)}")
    return value


def _input_image(files: dict[str, UploadedFile]) -> Image.Image | None:
    upload = files.get("image")
    if upload is None or not upload.data:
        return None
    if len(upload.data) > MAX_IMAGE_BYTES:
        raise Refusal(v2_error(413, "payload_too_large", "image: must be at most 10MB"))
    try:
        with Image.open(io.BytesIO(upload.data)) as opened:
            if opened.format not in ("PNG", "JPEG", "WEBP"):
                raise _bad("image: must be a JPEG, PNG or WebP image")
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise _bad("image: could not be decoded as an image") from None
    if min(picture.size) < MIN_IMAGE_SIDE:
        raise _bad(f"image: each side must be at least {MIN_IMAGE_SIDE} pixels")
    return picture


def check_v2(
    endpoint: str, fields: dict[str, list[str]], files: dict[str, UploadedFile]
) -> dict[str, Any]:
    """What Stability makes of a v2beta form (defaults filled), or a Refusal."""
    prompt = _one(fields, "prompt")
    if prompt is None or not prompt.strip():
        raise _bad("prompt: cannot be empty")
    if len(prompt) > MAX_PROMPT:
        raise _bad(f"prompt: must be at most {MAX_PROMPT} characters")
    checked: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": _one(fields, "negative_prompt") or "",
        "aspect_ratio": _choice(fields, "aspect_ratio", tuple(ASPECT_SIZES)) or "1:1",
        "seed": _int_field(fields, "seed", 0, MAX_SEED_V2),
        "output_format": _choice(fields, "output_format", OUTPUT_FORMATS[endpoint]) or "png",
        "style_preset": None,
        "model": None,
        "image": None,
        "strength": None,
    }
    if endpoint == "core":
        checked["style_preset"] = _choice(fields, "style_preset", STYLE_PRESETS)
    if endpoint == "sd3":
        checked["model"] = _choice(fields, "model", SD3_MODELS) or "sd3.5-large"
    image = _input_image(files) if endpoint in ("ultra", "sd3") else None
    mode = _choice(fields, "mode", ("text-to-image", "image-to-image")) if endpoint == "sd3" else ""
    if endpoint == "sd3" and mode == "image-to-image" and image is None:
        raise _bad("image: is required when mode is image-to-image")
    if endpoint == "sd3" and image is not None and mode != "image-to-image":
        raise _bad("mode: must be image-to-image when an image is sent")
    if image is not None:
        raw = _one(fields, "strength")
        if raw is None or raw == "":
            raise _bad("strength: is required when an image is sent")
        try:
            strength = float(raw)
        except ValueError:
            raise _bad("strength: must be a number") from None
        if not 0 <= strength <= 1:
            raise _bad("strength: must be between 0 and 1")
        checked.update(image=image, strength=strength)
    return checked


def _image_size(image: Image.Image) -> tuple[int, int]:
    """About a megapixel, in the input's proportions, sides multiples of 64."""
    scale = math.sqrt(1024 * 1024 / (image.width * image.height))
    return (
        max(64, round(image.width * scale / 64) * 64),
        max(64, round(image.height * scale / 64) * 64),
    )


def _accepts_json(req: Request) -> bool | None:
    """True for JSON, False for raw image bytes, None for an Accept Stability refuses."""
    accept = req.headers.get("accept", "").strip().lower()
    if not accept or accept in ("*/*", "image/*") or accept.startswith("image/"):
        return False
    if "application/json" in accept:
        return True
    return None


# ---------------------------------------------------------------- v2beta endpoint


def _v2_special(markers: Markers, endpoint: str) -> Response | None:
    error = openai_special_error(markers, f"stable-image-{endpoint}")
    if error is not None:
        return error
    if markers.has("stability:moderation"):
        message = (
            "Your request was flagged by our content moderation system, as a result your "
            "request was denied and you were not charged. (simulated)"
        )
        return v2_error(403, "content_moderation", message)
    if markers.has("stability:credits"):
        message = "You lack sufficient credits to make this request. Please purchase more credits."
        return v2_error(402, "payment_required", message)
    if markers.has("stability:500"):
        return v2_error(500, "internal_error", "An unexpected server error has occurred.")
    return None


async def _generate(req: Request, ctx: Context, endpoint: str) -> Response:
    as_json = _accepts_json(req)
    if as_json is None:
        return v2_error(400, "bad_request", "accept: must be image/* or application/json")
    try:
        fields, files = req.multipart()
    except BadRequestBody:
        return v2_error(400, "bad_request", "content-type: must be multipart/form-data")
    markers = parse_markers(_one(fields, "prompt") or "", _one(fields, "negative_prompt") or "")
    if (error := _v2_special(markers, endpoint)) is not None:
        return error
    try:
        checked = check_v2(endpoint, fields, files)
    except Refusal as refusal:
        return refusal.response
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(RENDER_SECONDS[endpoint]))
    seed = _seed(checked["seed"])
    source: Image.Image | None = checked["image"]
    width, height = _image_size(source) if source else ASPECT_SIZES[checked["aspect_ratio"]]
    label = f"Stable Image {endpoint}" + (f" · {checked['model']}" if checked["model"] else "")
    picture = media.draw_picture(strip_markers(checked["prompt"]), width, height, seed, label)
    if source is not None:
        picture = Image.blend(ImageOps.fit(source, (width, height)), picture, checked["strength"])
    reason = "SUCCESS"
    if markers.has("stability:filtered"):
        picture, reason = media.blurred(picture), "CONTENT_FILTERED"
    content, content_type = _encode(picture, checked["output_format"])
    if not as_json:
        headers = [("finish-reason", reason), ("seed", str(seed))]
        return Response(200, content, content_type, headers)
    encoded = base64.b64encode(content).decode("ascii")
    return json_response({"image": encoded, "finish_reason": reason, "seed": seed})


async def generate_ultra(req: Request, ctx: Context) -> Response:
    return await _generate(req, ctx, "ultra")


async def generate_core(req: Request, ctx: Context) -> Response:
    return await _generate(req, ctx, "core")


async def generate_sd3(req: Request, ctx: Context) -> Response:
    return await _generate(req, ctx, "sd3")


# ---------------------------------------------------------------- v1 text-to-image


def _v1_bad(message: str) -> Refusal:
    return Refusal(v1_error(400, "bad_request", message))


def _v1_number(body: dict[str, Any], name: str, low: float, high: float, *, integer: bool) -> Any:
    value = body.get(name)
    if value is None:
        return None
    valid = not isinstance(value, bool) and isinstance(value, int | float)
    if integer and valid and isinstance(value, float):
        valid = value.is_integer()
    if not valid:
        raise _v1_bad(f"{name}: expected {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise _v1_bad(f"{name}: must be between {low:g} and {high:g}")
    return int(value) if integer else float(value)


def _v1_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise _v1_bad(f"{name}: must be one of {', '.join(allowed)}")
    return str(value)


def _text_prompts(body: dict[str, Any]) -> list[tuple[str, float]]:
    prompts = body.get("text_prompts")
    if not isinstance(prompts, list) or not prompts:
        raise _v1_bad("text_prompts: must contain at least one prompt")
    parsed = []
    for index, item in enumerate(prompts):
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise _v1_bad(f"text_prompts[{index}].text: cannot be empty")
        if len(text) > 2000:
            raise _v1_bad(f"text_prompts[{index}].text: must be at most 2000 characters")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise _v1_bad(f"text_prompts[{index}].weight: expected a number")
        parsed.append((text, float(weight)))
    if not any(weight > 0 for _text, weight in parsed):
        raise _v1_bad("text_prompts: at least one prompt must have a positive weight")
    return parsed


def _v1_size(engine: str, body: dict[str, Any]) -> tuple[int, int]:
    sdxl = engine == ENGINES[0]
    default = 1024 if sdxl else 512
    width = _v1_number(body, "width", 128, 2048, integer=True) or default
    height = _v1_number(body, "height", 128, 2048, integer=True) or default
    if sdxl:
        if (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
            raise _v1_bad(
                f"for {engine} the allowed dimensions are {allowed}, got {width}x{height}"
            )
    else:
        for name, side in (("width", width), ("height", height)):
            if not 320 <= side <= 1536 or side % 64:
                raise _v1_bad(f"{name}: must be a multiple of 64 between 320 and 1536")
    return width, height


def check_v1(engine: str, body: dict[str, Any]) -> dict[str, Any]:
    prompts = _text_prompts(body)
    width, height = _v1_size(engine, body)
    return {
        "prompts": prompts,
        "width": width,
        "height": height,
        "cfg_scale": _v1_number(body, "cfg_scale", 0, 35, integer=False),
        "samples": _v1_number(body, "samples", 1, 10, integer=True) or 1,
        "steps": _v1_number(body, "steps", 10, 50, integer=True),
        "seed": _v1_number(body, "seed", 0, MAX_SEED_V1, integer=True),
        "sampler": _v1_choice(body, "sampler", SAMPLERS),
        "clip_guidance_preset": _v1_choice(body, "clip_guidance_preset", CLIP_PRESETS),
        "style_preset": _v1_choice(body, "style_preset", STYLE_PRESETS),
    }


def _v1_special(markers: Markers, engine: str) -> Response | None:
    error = openai_special_error(markers, engine)
    if error is not None:
        return error
    if markers.has("stability:moderation"):
        return v1_error(400, "invalid_prompts", "One or more prompts contains filtered words.")
    if markers.has("stability:credits"):
        message = "You do not have enough balance to make this request (simulated)."
        return v1_error(402, "insufficient_balance", message)
    if markers.has("stability:500"):
        return v1_error(500, "server_error", "An unexpected server error occurred.")
    return None


def _filtered_count(markers: Markers) -> int:
    if not markers.has("stability:filtered"):
        return 0
    count = markers.number("stability:filtered")
    return max(0, int(count)) if count is not None else 1


async def text_to_image(req: Request, ctx: Context) -> Response:
    engine = req.params["engine_id"]
    if engine not in ENGINES:
        return v1_error(404, "not_found", f"engine: {engine} does not exist")
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return v1_error(400, "bad_request", f"invalid JSON body: {exc}")
    prompts = body.get("text_prompts")
    items = prompts if isinstance(prompts, list) else []
    texts = [str(item.get("text") or "") for item in items if isinstance(item, dict)]
    markers = parse_markers(*texts)
    if (error := _v1_special(markers, engine)) is not None:
        return error
    try:
        checked = check_v1(engine, body)
    except Refusal as refusal:
        return refusal.response
    count = checked["samples"]
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(V1_SECONDS + 1.0 * (count - 1)))
    positive = " ".join(strip_markers(text) for text, weight in checked["prompts"] if weight > 0)
    first_seed = _seed(checked["seed"])
    filtered = _filtered_count(markers)
    label = "SDXL 1.0" if engine == ENGINES[0] else "SD 1.6"
    artifacts = []
    for index in range(count):
        seed = (first_seed + index) % (MAX_SEED_V1 + 1)
        picture = media.draw_picture(positive, checked["width"], checked["height"], seed, label)
        reason = "SUCCESS"
        if index < filtered:
            picture, reason = media.blurred(picture), "CONTENT_FILTERED"
        artifacts.append((media.png(picture), seed, reason))
    accept = req.headers.get("accept", "").strip().lower()
    if accept == "image/png":
        content, seed, reason = artifacts[0]
        return Response(200, content, "image/png", [("finish-reason", reason), ("seed", str(seed))])
    return json_response(
        {
            "artifacts": [
                {
                    "base64": base64.b64encode(content).decode("ascii"),
                    "seed": seed,
                    "finishReason": r,
                }
                for content, seed, r in artifacts
            ]
        }
    )
