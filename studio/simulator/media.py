"""Real media produced by the simulator: PNG pictures drawn with Pillow and WAV speech.

The files are real so that the app's download, storage, thumbnail and playback paths are
exercised for real: a PNG opens in Pillow at the size that was asked for, a WAV opens with
``wave`` and plays a sequence of tones (one per word, pitch by voice) whose length follows the text.
Pictures are deterministic: the same prompt gives the same colours and layout.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import os
import struct
import wave
from array import array
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont

_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


@cache
def _font(size: int, cjk: bool) -> FontT:
    for path in (_CJK_FONTS if cjk else ()) + _LATIN_FONTS:
        if os.path.exists(path):
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def font_for(text: str, size: int) -> FontT:
    return _font(size, any(ord(ch) > 0x2E7F for ch in text))


def colour_for(text: str, variant: int = 0) -> tuple[int, int, int]:
    h = digest(text, variant)
    hue = h[0] / 255
    r, g, b = colorsys.hsv_to_rgb(hue, 0.45 + h[1] / 255 * 0.35, 0.65 + h[2] / 255 * 0.3)
    return int(r * 255), int(g * 255), int(b * 255)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: FontT, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    # Break on spaces for Latin text, anywhere for CJK (which has no spaces).
    tokens = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    for token in tokens:
        candidate = f"{line}{joiner}{token}" if line else token
        if draw.textlength(candidate, font=font) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = token
    if line:
        lines.append(line)
    return lines


def draw_picture(
    prompt: str, width: int, height: int, variant: int = 0, label: str = ""
) -> Image.Image:
    """A picture "about" the prompt: gradient in the prompt's colour, shapes, the prompt text."""
    base = colour_for(prompt, variant)
    img = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(img)
    dark = tuple(int(c * 0.35) for c in base)
    for y in range(0, height, 4):  # 4-pixel bands: smooth enough, four times cheaper
        t = y / max(1, height - 1)
        colour = tuple(int(base[i] * (1 - t) + dark[i] * t) for i in range(3))
        draw.rectangle((0, y, width, y + 3), fill=colour)
    h = digest(prompt, variant, "shapes")
    for i in range(5):
        cx, cy = h[i * 4] / 255 * width, h[i * 4 + 1] / 255 * height
        radius = (0.08 + h[i * 4 + 2] / 255 * 0.22) * min(width, height)
        tint = colour_for(prompt, variant * 10 + i + 1)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if h[i * 4 + 3] % 2:
            draw.ellipse(box, fill=tint)
        else:
            draw.rounded_rectangle(box, radius=radius / 4, fill=tint)
    text = prompt.strip() or "(empty prompt)"
    font = font_for(text, max(12, min(width, height) // 18))
    lines = _wrap(draw, text, font, int(width * 0.8))[:6]
    line_h = int(font.size * 1.3) if isinstance(font, ImageFont.FreeTypeFont) else 14
    block_h = line_h * len(lines)
    top = (height - block_h) // 2
    pad = line_h // 2
    draw.rounded_rectangle(
        (width * 0.07, top - pad, width * 0.93, top + block_h + pad), radius=pad, fill=(20, 20, 24)
    )
    for n, text_line in enumerate(lines):
        w = draw.textlength(text_line, font=font)
        draw.text(((width - w) / 2, top + n * line_h), text_line, fill=(245, 245, 245), font=font)
    if label:
        small = font_for(label, max(10, min(width, height) // 28))
        draw.text((width * 0.03, height * 0.03), label, fill=(255, 255, 255), font=small)
    return img


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)  # speed over size: these are throw-away test images
    return out.getvalue()


def aspect_size(aspect: tuple[int, int], long_side: int) -> tuple[int, int]:
    aw, ah = aspect
    if aw >= ah:
        return long_side, max(16, round(long_side * ah / aw))
    return max(16, round(long_side * aw / ah)), long_side


def draw_grid(
    prompt: str, cell: tuple[int, int], seed: str
) -> tuple[Image.Image, list[Image.Image]]:
    """A Midjourney-style 2x2 grid and its four cells (what plus proxies return as imageUrls)."""
    cw, ch = cell
    cells = [
        draw_picture(prompt, cw, ch, variant=hash_int(seed, i), label=str(i + 1)) for i in range(4)
    ]
    grid = Image.new("RGB", (cw * 2, ch * 2))
    for i, im in enumerate(cells):
        grid.paste(im, ((i % 2) * cw, (i // 2) * ch))
    return grid, cells


def blurred(img: Image.Image) -> Image.Image:
    # A cheap "preview" blur: shrink hard and scale back up.
    small = img.resize(
        (max(1, img.width // 24), max(1, img.height // 24)), Image.Resampling.BILINEAR
    )
    return small.resize(img.size, Image.Resampling.BILINEAR)


def hash_int(*parts: object) -> int:
    return int.from_bytes(digest(*parts)[:4], "big")


def image_info(data: bytes) -> tuple[int, int, tuple[int, int, int]] | None:
    """Size and average colour of an uploaded image, or None when it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
            avg = rgb.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
            assert isinstance(avg, tuple)
            return rgb.width, rgb.height, (int(avg[0]), int(avg[1]), int(avg[2]))
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def colour_name(rgb: tuple[int, int, int]) -> str:
    r, g, b = (c / 255 for c in rgb)
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    if sat < 0.15:
        return "white" if light > 0.8 else "black" if light < 0.2 else "grey"
    names = ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"]
    return names[int(hue * len(names) + 0.5) % len(names)]


def image_comment(data: bytes) -> str:
    """The text comments of an image (PNG text chunks, a JPEG comment), joined; "" if none.
    Face swaps have no prompt, so tests steer them with markers written there."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            info = dict(img.info)
    except (UnidentifiedImageError, OSError, ValueError):
        return ""
    texts = []
    for key in ("Comment", "comment", "Description"):
        value = info.get(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            texts.append(value)
    return " ".join(texts)


def swap_face(source: bytes, target: bytes) -> bytes | None:
    """The target picture with a round crop of the source pasted in the middle."""
    try:
        with Image.open(io.BytesIO(target)) as t, Image.open(io.BytesIO(source)) as s:
            canvas = t.convert("RGB")
            size = max(8, min(canvas.size) // 2)
            face = ImageOps.fit(s.convert("RGB"), (size, size))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    canvas.paste(face, ((canvas.width - size) // 2, (canvas.height - size) // 2), mask)
    return png(canvas)


SAMPLE_RATE = 24_000  # OpenAI's raw "pcm" format is 24 kHz, 16-bit, mono; WAV uses the same
MAX_SPEECH_SECONDS = 30.0
_VOICE_PITCH = {"alloy": 220, "echo": 180, "fable": 260, "onyx": 140, "nova": 300, "shimmer": 340}


def synth_speech(text: str, voice: str, speed: float = 1.0) -> bytes:
    """Raw 16-bit PCM: one short tone per word, so duration follows the text and the speed."""
    base = _VOICE_PITCH.get(voice, 150 + hash_int(voice) % 200)
    samples = array("h")
    limit = int(MAX_SPEECH_SECONDS * SAMPLE_RATE)
    gap = array("h", bytes(2 * int(0.06 / speed * SAMPLE_RATE)))
    for word in text.split() or ["…"]:
        freq = base * (1 + (hash_int(word) % 7) / 14)
        n = int((0.12 + 0.045 * min(len(word), 20)) / speed * SAMPLE_RATE)
        ramp = max(1, min(n // 4, SAMPLE_RATE // 100))  # 10 ms fades avoid clicks
        step = 2 * math.pi * freq / SAMPLE_RATE
        samples.extend(
            int(9000 * min(1.0, i / ramp, (n - i) / ramp) * math.sin(step * i)) for i in range(n)
        )
        samples.extend(gap)
        if len(samples) >= limit:
            del samples[limit:]
            break
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()  # PCM on the wire is little-endian
    return samples.tobytes()


def wav_bytes(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def wav_duration(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (wave.Error, EOFError, ValueError):
        return None
