"""Ideogram (upstream-api.md §11): generate, remix, upscale, describe, in both formats.

Official format (§11.1), ``/ideogram/{generate,remix,upscale,describe}``: every call answers
synchronously after a scaled "render" time. Images are real PNGs at the
resolution Ideogram gives each aspect ratio (``ASPECT_16_9`` → 1312x736 …), drawn by media.py,
served from ``/files/`` and expiring like Ideogram's ephemeral links (``SIMULATOR_FILE_TTL``,
``[[expire]]``). Remix blends the drawing with the uploaded image by ``image_weight``; upscale
returns the upload at twice its size (the long side capped at 2048 px); describe answers
``{"descriptions": [{"text"}]}`` from the image's size and colour.

Bodies: generate takes JSON ``{"image_request": {...}}``; remix and upscale take multipart with
``image_request`` as a JSON string and ``image_file``; describe takes ``image_file`` alone.
Ideogram is a FastAPI service, so its validation errors are HTTP 422
``{"detail": [{"loc", "msg", "type"}]}``; the rules it checks itself (a style type or colour
palette on a V_1 model, an unreadable image) answer HTTP 400 ``{"detail": "..."}``.

Markers, read from ``prompt`` and ``negative_prompt`` of the image request and, for uploads
(describe and upscale need no prompt), from a text comment of the image (a PNG ``Comment``
chunk, a JPEG comment). The relay-level ones of specials.py (``[[error:429]]``,
``[[error:503]]``, ``[[error:401]]``, ``[[error:quota]]``…) answer in the relay's OpenAI shape:
  [[ideogram:unsafe]]         the first image comes back ``is_image_safe: false``, without a URL
  [[ideogram:unsafe=N]]       the first N images do
  [[ideogram:unsafe-prompt]]  HTTP 422 ``{"detail": "Prompt failed the safety check."}``
  [[ideogram:error]]          HTTP 400 ``{"error": "..."}``, as some relays rewrite a refusal
  [[ideogram:5xx]]            HTTP 500 ``{"detail": "Internal Server Error"}`` from Ideogram
  [[expire]], [[sleep=N]], [[slow]] as everywhere.

Web format, the relay's "reverse" group (§11.2), at Studio's guessed paths
``/ideogram/web/{generate,remix,upscale,describe}`` (the same bodies, checks and markers as the
official ones) and the task query ``POST /ideogram/task-request`` ``{"request_id"}``. A submit
draws at once and answers ``{"request_id": "..."}``; the request lives in memory (``WEB_TASKS``,
scoped to the token) and each task query advances it: ``completion_percentage`` 0, then 40,
then 100 with ``is_completed`` and its ``responses``. The answer is the web app's
``{"sampling_requests": [{request_id, is_completed, completion_percentage, has_started,
can_upscale, aspect_ratio, width, height, model_version, user_prompt, seed, responses}]}``;
a response is ``{response_id, url, seed}``, an unsafe image's ``{response_id, seed,
is_image_safe: false}`` without a link, a describe's ``{response_id, description}``. An
unknown request id lists nothing (``{"sampling_requests": []}``). One more marker:
  [[ideogram:no-url]]         web format: the finished request's responses carry no link
"""

from __future__ import annotations

import io
import json
import math
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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

# The resolution Ideogram renders each aspect ratio at (about one megapixel, multiples of 16).
ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "ASPECT_1_1": (1024, 1024),
    "ASPECT_16_9": (1312, 736),
    "ASPECT_9_16": (736, 1312),
    "ASPECT_4_3": (1152, 864),
    "ASPECT_3_4": (864, 1152),
    "ASPECT_3_2": (1248, 832),
    "ASPECT_2_3": (832, 1248),
    "ASPECT_16_10": (1280, 800),
    "ASPECT_10_16": (800, 1280),
    "ASPECT_3_1": (1536, 512),
    "ASPECT_1_3": (512, 1536),
}
MODELS = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO")
STYLE_MODELS = ("V_2", "V_2_TURBO")
MAGIC_OPTIONS = ("AUTO", "ON", "OFF")
STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME")
PALETTES = ("EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE")
MAX_SEED = 2_147_483_647
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 10 * 1024 * 1024
UPSCALE_MAX_SIDE = 2048
# The web format's task, query after query.
WEB_PROGRESS = (0, 40, 100)
# Seconds a call takes for real at SIMULATOR_SPEED=1.
RENDER_SECONDS = {"V_1": 6.0, "V_1_TURBO": 3.0, "V_2": 10.0, "V_2_TURBO": 5.0}
UPSCALE_SECONDS = 12.0
DESCRIBE_SECONDS = 3.0


class Refusal(Exception):
    """Ideogram refuses the request: the response to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def detail_error(status: int, detail: Any) -> Response:
    return json_response({"detail": detail}, status)


def field_error(loc: list[str | int], msg: str, kind: str, value: Any = None) -> Refusal:
    """A FastAPI/pydantic validation error (HTTP 422) for one field."""
    item: dict[str, Any] = {"type": kind, "loc": ["body", *loc], "msg": msg}
    if value is not None:
        item["input"] = value
    return Refusal(detail_error(422, [item]))


# ---------------------------------------------------------------- request checks


def _enum(request: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> None:
    value = request.get(key)
    if value is None:
        return
    if value not in allowed:
        listed = ", ".join(f"'{item}'" for item in allowed)
        raise field_error([where, key], f"Input should be {listed}", "enum", value)


def _integer(request: dict[str, Any], key: str, low: int, high: int, where: str) -> None:
    value = request.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error([where, key], "Input should be a valid integer", "int_type", value)
    if value < low:
        msg = f"Input should be greater than or equal to {low}"
        raise field_error([where, key], msg, "greater_than_equal", value)
    if value > high:
        msg = f"Input should be less than or equal to {high}"
        raise field_error([where, key], msg, "less_than_equal", value)


def _text(request: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = request.get(key)
    if value is None:
        if required:
            raise field_error([where, key], "Field required", "missing")
        return ""
    if not isinstance(value, str):
        raise field_error([where, key], "Input should be a valid string", "string_type", value)
    if required and not value.strip():
        msg = "String should have at least 1 character"
        raise field_error([where, key], msg, "string_too_short", value)
    return value


def check_image_request(request: dict[str, Any], *, upscale: bool = False) -> None:
    """Raise Refusal for what Ideogram would refuse in an image request."""
    where = "image_request"
    _text(request, "prompt", where, required=not upscale)
    _integer(request, "seed", 0, MAX_SEED, where)
    _enum(request, "magic_prompt_option", MAGIC_OPTIONS, where)
    if upscale:
        _integer(request, "resemblance", 1, 100, where)
        _integer(request, "detail", 1, 100, where)
        return
    _text(request, "negative_prompt", where, required=False)
    _enum(request, "aspect_ratio", tuple(ASPECT_SIZES), where)
    _enum(request, "model", MODELS, where)
    _enum(request, "style_type", STYLE_TYPES, where)
    _integer(request, "num_images", 1, MAX_IMAGES, where)
    _integer(request, "image_weight", 1, 100, where)
    palette = request.get("color_palette")
    if palette is not None:
        if not isinstance(palette, dict) or not (palette.get("name") or palette.get("members")):
            msg = "Input should be a valid dictionary with a name or members"
            raise field_error([where, "color_palette"], msg, "model_type", palette)
        if palette.get("name") is not None:
            _enum(palette, "name", PALETTES, f"{where}.color_palette")
    resolution = request.get("resolution")
    if resolution is not None:
        if request.get("aspect_ratio") is not None:
            raise Refusal(detail_error(400, "Cannot specify both aspect_ratio and resolution."))
        if _resolution_size(resolution) is None:
            msg = "Input should be a valid resolution such as 'RESOLUTION_1024_1024'"
            raise field_error([where, "resolution"], msg, "enum", resolution)
    model = request.get("model") or "V_2"
    if model not in STYLE_MODELS:
        for key, what in (("style_type", "Style type"), ("color_palette", "Color palette")):
            if request.get(key) is not None:
                message = f"{what} is only supported for models V_2 and V_2_TURBO, not {model}."
                raise Refusal(detail_error(400, message))
        if resolution is not None:
            raise Refusal(detail_error(400, f"Resolution is not supported for model {model}."))


def _resolution_size(value: object) -> tuple[int, int] | None:
    if not isinstance(value, str) or not value.startswith("RESOLUTION_"):
        return None
    try:
        width, height = (int(part) for part in value.removeprefix("RESOLUTION_").split("_"))
    except ValueError:
        return None
    return (width, height) if 256 <= width <= 2048 and 256 <= height <= 2048 else None


def _image_request_field(fields: dict[str, list[str]], *, required: bool) -> dict[str, Any]:
    raw = (fields.get("image_request") or [""])[0]
    if not raw.strip():
        if required:
            raise field_error(["image_request"], "Field required", "missing")
        return {}
    try:
        request = json.loads(raw)
    except ValueError as exc:
        raise field_error(["image_request"], f"Invalid JSON: {exc}", "json_invalid", raw) from exc
    if not isinstance(request, dict):
        msg = "Input should be a valid dictionary"
        raise field_error(["image_request"], msg, "dict_type", raw)
    return request


def _image_file(files: dict[str, UploadedFile]) -> tuple[Image.Image, bytes]:
    upload = files.get("image_file")
    if upload is None or not upload.data:
        raise field_error(["image_file"], "Field required", "missing")
    if len(upload.data) > MAX_IMAGE_BYTES:
        raise Refusal(detail_error(400, "Image file is too large: the limit is 10MB."))
    try:
        with Image.open(io.BytesIO(upload.data)) as opened:
            if opened.format not in ("PNG", "JPEG", "WEBP"):
                raise Refusal(detail_error(400, "Image file must be a JPEG, PNG or WebP image."))
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Refusal(detail_error(400, "Invalid image file: it could not be read.")) from exc
    return picture, upload.data


# ---------------------------------------------------------------- markers and errors


def _special_error(markers: Markers, model: str, *, has_prompt: bool = True) -> Response | None:
    error = openai_special_error(markers, f"ideogram-{model}".lower())
    if error is not None:
        return error
    if markers.has("ideogram:5xx"):
        return detail_error(500, "Internal Server Error")
    if markers.has("ideogram:unsafe-prompt"):
        what = "Prompt" if has_prompt else "Image"
        return detail_error(422, f"{what} failed the safety check.")
    if markers.has("ideogram:error"):
        message = "Ideogram rejected the image request: unable to process this input (simulated)"
        return json_response({"error": message}, 400)
    return None


def _unsafe_count(markers: Markers) -> int:
    if not markers.has("ideogram:unsafe"):
        return 0
    count = markers.number("ideogram:unsafe")
    return max(0, int(count)) if count is not None else 1


def _markers(request: dict[str, Any], image: bytes = b"") -> Markers:
    texts = [str(request.get(key) or "") for key in ("prompt", "negative_prompt")]
    if image:
        texts.append(media.image_comment(image))
    return parse_markers(*texts)


# ---------------------------------------------------------------- results


def _magic(prompt: str, option: str, style: str) -> str:
    """What Magic Prompt makes of a prompt: ON always rewrites, AUTO rewrites short prompts."""
    if option == "OFF" or not prompt or (option == "AUTO" and len(prompt.split()) >= 12):
        return prompt
    look = style.lower().replace("_", " ") if style and style != "AUTO" else "vivid"
    return (
        f"{prompt.rstrip('.')}. A {look} composition with carefully balanced light, crisp "
        "typography where text appears, and rich detail throughout (simulated Magic Prompt)."
    )


def _style(request: dict[str, Any], model: str, seed: int) -> str | None:
    if model not in STYLE_MODELS:
        return None
    chosen = request.get("style_type")
    if chosen and chosen not in ("AUTO", "GENERAL"):
        return str(chosen)
    return ("GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME")[seed % 5]


def _seeds(request: dict[str, Any], count: int) -> list[int]:
    seed = request.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return [(seed + index) % (MAX_SEED + 1) for index in range(count)]
    return [secrets.randbelow(MAX_SEED + 1) for _ in range(count)]


def _created() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _image_item(
    req: Request,
    ctx: Context,
    picture: Image.Image,
    *,
    prompt: str,
    seed: int,
    style: str | None,
    unsafe: bool,
    markers: Markers,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "prompt": prompt,
        "resolution": f"{picture.width}x{picture.height}",
        "is_image_safe": not unsafe,
        "seed": seed,
    }
    if style is not None:
        item["style_type"] = style
    if not unsafe:  # Ideogram sends no link to an image that failed its safety check
        name = ctx.files.add(media.png(picture), "png", "image/png", expired=markers.has("expire"))
        item["url"] = f"{req.base_url}/files/{name}"
    return item


def _nearest_aspect(width: int, height: int) -> str:
    ratio = math.log(width / height)
    return min(ASPECT_SIZES, key=lambda name: abs(math.log(_ratio(name)) - ratio))


def _ratio(name: str) -> float:
    width, height = ASPECT_SIZES[name]
    return width / height


def _target_size(request: dict[str, Any], default_aspect: str) -> tuple[int, int]:
    resolution = _resolution_size(request.get("resolution"))
    if resolution is not None:
        return resolution
    return ASPECT_SIZES[str(request.get("aspect_ratio") or default_aspect)]


@dataclass
class Asked:
    """A request Ideogram accepted: the image request, its markers, the uploaded picture."""

    request: dict[str, Any]
    markers: Markers
    source: Image.Image | None = None


def _draw(req: Request, ctx: Context, asked: Asked) -> list[dict[str, Any]]:
    """Draw the images of a generate or remix request: Ideogram's `data` items."""
    request, markers, source = asked.request, asked.markers, asked.source
    model = str(request.get("model") or "V_2")
    prompt = strip_markers(str(request.get("prompt") or ""))
    default_aspect = "ASPECT_1_1" if source is None else _nearest_aspect(*source.size)
    width, height = _target_size(request, default_aspect)
    weight = int(request.get("image_weight") or 50) / 100
    unsafe = _unsafe_count(markers)
    data = []
    for index, seed in enumerate(_seeds(request, int(request.get("num_images") or 1))):
        style = _style(request, model, seed)
        used = _magic(prompt, str(request.get("magic_prompt_option") or "AUTO"), style or "")
        picture = media.draw_picture(used, width, height, variant=seed, label=f"Ideogram {model}")
        if source is not None:
            picture = Image.blend(picture, ImageOps.fit(source, (width, height)), weight)
        item = _image_item(
            req,
            ctx,
            picture,
            prompt=used,
            seed=seed,
            style=style,
            unsafe=index < unsafe,
            markers=markers,
        )
        data.append(item)
    return data


def _render_seconds(request: dict[str, Any]) -> float:
    count = int(request.get("num_images") or 1)
    return RENDER_SECONDS[str(request.get("model") or "V_2")] + 1.0 * (count - 1)


def _upscaled(req: Request, ctx: Context, asked: Asked) -> dict[str, Any]:
    """The upload at twice its size (the long side capped): Ideogram's one `data` item."""
    request, markers, source = asked.request, asked.markers, asked.source
    assert source is not None
    factor = min(2.0, UPSCALE_MAX_SIDE / max(source.size))
    size = (max(1, round(source.width * factor)), max(1, round(source.height * factor)))
    picture = source.resize(size, Image.Resampling.LANCZOS) if factor > 1 else source
    (seed,) = _seeds(request, 1)
    prompt = strip_markers(str(request.get("prompt") or ""))
    magic = str(request.get("magic_prompt_option") or "AUTO")
    used = _magic(prompt, magic, "") if prompt else _description(source)
    return _image_item(
        req,
        ctx,
        picture,
        prompt=used,
        seed=seed,
        style=None,
        unsafe=_unsafe_count(markers) > 0,
        markers=markers,
    )


def _description(picture: Image.Image) -> str:
    average = picture.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(average, tuple)
    colour = media.colour_name((int(average[0]), int(average[1]), int(average[2])))
    width, height = picture.size
    shape = "square" if width == height else "wide" if width > height else "tall"
    return (
        f"A {shape} {colour}-toned picture of {width}x{height} pixels with soft gradients and "
        "bold geometric shapes, evenly lit, in a clean graphic style (simulated description)."
    )


# ---------------------------------------------------------------- reading requests


def _multipart_error(exc: BadRequestBody) -> Refusal:
    return Refusal(detail_error(422, [{"type": "multipart", "loc": ["body"], "msg": str(exc)}]))


def _refuse_special(markers: Markers, model: str, *, has_prompt: bool = True) -> None:
    if (error := _special_error(markers, model, has_prompt=has_prompt)) is not None:
        raise Refusal(error)


def _read_generate(req: Request) -> Asked:
    """Generate's JSON body, checked; raises Refusal with Ideogram's (or the relay's) answer."""
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        error = [{"type": "json_invalid", "loc": ["body"], "msg": str(exc)}]
        raise Refusal(detail_error(422, error)) from exc
    request = body.get("image_request")
    if not isinstance(request, dict):
        msg = "Field required" if request is None else "Input should be a valid dictionary"
        error = [{"type": "missing", "loc": ["body", "image_request"], "msg": msg}]
        raise Refusal(detail_error(422, error))
    markers = _markers(request)
    _refuse_special(markers, str(request.get("model") or "V_2"))
    check_image_request(request)
    return Asked(request, markers)


def _read_remix(req: Request) -> Asked:
    try:
        fields, files = req.multipart()
        request = _image_request_field(fields, required=True)
        source, raw = _image_file(files)
    except BadRequestBody as exc:
        raise _multipart_error(exc) from exc
    markers = _markers(request, raw)
    _refuse_special(markers, str(request.get("model") or "V_2"))
    check_image_request(request)
    return Asked(request, markers, source)


def _read_upscale(req: Request) -> Asked:
    try:
        fields, files = req.multipart()
        request = _image_request_field(fields, required=False)
        source, raw = _image_file(files)
    except BadRequestBody as exc:
        raise _multipart_error(exc) from exc
    markers = _markers(request, raw)
    prompt = strip_markers(str(request.get("prompt") or ""))
    _refuse_special(markers, "upscale", has_prompt=bool(prompt))
    check_image_request(request, upscale=True)
    return Asked(request, markers, source)


def _read_describe(req: Request) -> Asked:
    try:
        _fields, files = req.multipart()
        source, raw = _image_file(files)
    except BadRequestBody as exc:
        raise _multipart_error(exc) from exc
    markers = _markers({}, raw)
    _refuse_special(markers, "describe", has_prompt=False)
    return Asked({}, markers, source)


# ---------------------------------------------------------------- endpoints, official format


async def generate(req: Request, ctx: Context) -> Response:
    try:
        asked = _read_generate(req)
    except Refusal as refusal:
        return refusal.response
    await pause(req, asked.markers, ctx.config)
    await req.sleep(ctx.config.scaled(_render_seconds(asked.request)))
    return json_response({"created": _created(), "data": _draw(req, ctx, asked)})


async def remix(req: Request, ctx: Context) -> Response:
    try:
        asked = _read_remix(req)
    except Refusal as refusal:
        return refusal.response
    await pause(req, asked.markers, ctx.config)
    await req.sleep(ctx.config.scaled(_render_seconds(asked.request)))
    return json_response({"created": _created(), "data": _draw(req, ctx, asked)})


async def upscale(req: Request, ctx: Context) -> Response:
    try:
        asked = _read_upscale(req)
    except Refusal as refusal:
        return refusal.response
    await pause(req, asked.markers, ctx.config)
    await req.sleep(ctx.config.scaled(UPSCALE_SECONDS))
    return json_response({"created": _created(), "data": [_upscaled(req, ctx, asked)]})


async def describe(req: Request, ctx: Context) -> Response:
    try:
        asked = _read_describe(req)
    except Refusal as refusal:
        return refusal.response
    assert asked.source is not None
    await pause(req, asked.markers, ctx.config)
    await req.sleep(ctx.config.scaled(DESCRIBE_SECONDS))
    return json_response({"descriptions": [{"text": _description(asked.source)}]})


# ---------------------------------------------------------------- web format ("reverse")


@dataclass
class WebTask:
    """A queued web-format request: what its task query shows, advanced by each query."""

    id: str
    owner: str
    user_prompt: str
    model: str
    width: int
    height: int
    seed: int | None
    responses: list[dict[str, Any]]  # shown once the request is complete
    queries: int = 0


class WebTasks:
    def __init__(self, max_tasks: int = 2000) -> None:
        self.max_tasks = max_tasks
        self._tasks: OrderedDict[str, WebTask] = OrderedDict()

    def add(self, task: WebTask) -> WebTask:
        self._tasks[task.id] = task
        while len(self._tasks) > self.max_tasks:
            self._tasks.popitem(last=False)
        return task

    def get(self, request_id: str, owner: str) -> WebTask | None:
        task = self._tasks.get(request_id.strip())
        # Requests are scoped to the token that made them, like the relay scopes them to a user.
        return task if task is not None and task.owner == owner else None


WEB_TASKS = WebTasks()


def _web_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, like the web app's ids


def _web_responses(items: list[dict[str, Any]], markers: Markers) -> list[dict[str, Any]]:
    """Official `data` items as the web app's responses: an id and the link; an unsafe image
    has no link and says `is_image_safe: false`; `[[ideogram:no-url]]` drops every link."""
    responses = []
    for item in items:
        response: dict[str, Any] = {"response_id": _web_id(), "seed": item["seed"]}
        if not item["is_image_safe"]:
            response["is_image_safe"] = False
        elif not markers.has("ideogram:no-url"):
            response["url"] = item["url"]
        responses.append(response)
    return responses


def _start(
    req: Request,
    asked: Asked,
    responses: list[dict[str, Any]],
    size: tuple[int, int],
    seed: int | None,
) -> Response:
    task = WEB_TASKS.add(
        WebTask(
            id=_web_id(),
            owner=req.token,
            user_prompt=strip_markers(str(asked.request.get("prompt") or "")),
            model=str(asked.request.get("model") or "V_2"),
            width=size[0],
            height=size[1],
            seed=seed,
            responses=responses,
        )
    )
    return json_response({"request_id": task.id})


def _size_of(items: list[dict[str, Any]]) -> tuple[int, int]:
    width, height = str(items[0]["resolution"]).split("x")
    return int(width), int(height)


async def web_generate(req: Request, ctx: Context) -> Response:
    return await _web_images(req, ctx, _read_generate, _draw)


async def web_remix(req: Request, ctx: Context) -> Response:
    return await _web_images(req, ctx, _read_remix, _draw)


async def web_upscale(req: Request, ctx: Context) -> Response:
    return await _web_images(req, ctx, _read_upscale, lambda r, c, a: [_upscaled(r, c, a)])


async def _web_images(
    req: Request,
    ctx: Context,
    read: Callable[[Request], Any],
    draw: Callable[[Request, Context, Any], list[dict[str, Any]]],
) -> Response:
    """A web-format submit: the official endpoint's checks and drawing, queued as a task."""
    try:
        asked = read(req)
    except Refusal as refusal:
        return refusal.response
    await pause(req, asked.markers, ctx.config)
    items = draw(req, ctx, asked)
    responses = _web_responses(items, asked.markers)
    return _start(req, asked, responses, _size_of(items), items[0]["seed"])


async def web_describe(req: Request, ctx: Context) -> Response:
    try:
        asked = _read_describe(req)
    except Refusal as refusal:
        return refusal.response
    assert asked.source is not None
    await pause(req, asked.markers, ctx.config)
    text = _description(asked.source)
    responses = [{"response_id": _web_id(), "description": text}]
    return _start(req, asked, responses, asked.source.size, None)


async def web_task(req: Request, ctx: Context) -> Response:
    """The task query: POST ``{"request_id"}``; each query advances the request 0 → 40 → 100."""
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return detail_error(422, [{"type": "json_invalid", "loc": ["body"], "msg": str(exc)}])
    request_id = body.get("request_id")
    if request_id is None or not str(request_id).strip():
        return detail_error(
            422, [{"type": "missing", "loc": ["body", "request_id"], "msg": "Field required"}]
        )
    task = WEB_TASKS.get(str(request_id), req.token)
    if task is None:
        return json_response({"sampling_requests": []})  # the web app lists what it knows
    percent = WEB_PROGRESS[min(task.queries, len(WEB_PROGRESS) - 1)]
    task.queries += 1
    done = percent == 100
    divisor = math.gcd(task.width, task.height)
    sampling: dict[str, Any] = {
        "request_id": task.id,
        "is_completed": done,
        "completion_percentage": percent,
        "has_started": percent > 0,
        "can_upscale": done,
        "aspect_ratio": f"{task.width // divisor}:{task.height // divisor}",
        "width": task.width,
        "height": task.height,
        "model_version": task.model,
        "user_prompt": task.user_prompt,
        "seed": task.seed,
        "responses": task.responses if done else [],
    }
    return json_response({"sampling_requests": [sampling]})
