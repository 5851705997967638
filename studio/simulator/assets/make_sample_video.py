"""One-off generator of ``sample.mp4``, the clip the simulator serves as every video result.

Not run by the app or the tests: the clip is committed next to this script. The machines have no
ffmpeg and the project wants no runtime dependency for video, so the clip was made once with
PyAV (which bundles its own FFmpeg) in a throw-away virtualenv:

    python3 -m venv /tmp/avenv && /tmp/avenv/bin/pip install av pillow
    /tmp/avenv/bin/python studio/simulator/assets/make_sample_video.py

What it writes: 2 s at 24 fps, 320x180, H.264 (libx264, main profile) in MP4, yuv420p, with the
``moov`` atom first (faststart) so a browser can start playing before the whole file arrived,
and no audio track. It plays in Debian's chromium (checked by tests/browser/test_video.py).
"""

from __future__ import annotations

import colorsys
import math
import sys
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 320, 180
FPS = 24
SECONDS = 2
OUT = Path(__file__).resolve().parent / "sample.mp4"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def frame_image(index: int, total: int) -> Image.Image:
    """A sky that shifts colour, a sun crossing it and the time stamp: motion a viewer notices."""
    t = index / total
    top = colorsys.hsv_to_rgb(0.58 - 0.12 * t, 0.55, 0.95)
    bottom = colorsys.hsv_to_rgb(0.08 + 0.05 * t, 0.6, 0.9)
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):
        mix = y / (HEIGHT - 1)
        colour = tuple(
            int(255 * (a * (1 - mix) + b * mix)) for a, b in zip(top, bottom, strict=True)
        )
        draw.line([(0, y), (WIDTH, y)], fill=colour)
    x = int(30 + (WIDTH - 60) * t)
    y = int(HEIGHT * 0.62 - 70 * math.sin(math.pi * t))
    draw.ellipse([x - 18, y - 18, x + 18, y + 18], fill=(255, 236, 140))
    draw.polygon([(0, HEIGHT), (90, 110), (170, HEIGHT)], fill=(60, 80, 90))
    draw.polygon([(120, HEIGHT), (230, 95), (WIDTH, HEIGHT)], fill=(45, 62, 74))
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(FONT, 16)
    except OSError:
        font = ImageFont.load_default()
    draw.text((10, 8), f"Studio simulator  {index / FPS:4.2f}s", fill=(255, 255, 255), font=font)
    return image


def main() -> int:
    total = FPS * SECONDS
    with av.open(str(OUT), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "30", "preset": "veryslow", "profile": "main", "tune": "animation"}
        for index in range(total):
            frame = av.VideoFrame.from_image(frame_image(index, total))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
