"""OpenAI-compatible media endpoints: image generation, text to speech, transcription.

Images are PNGs drawn with Pillow at the requested size and served from ``/files/`` (URLs expire
after ``SIMULATOR_FILE_TTL``), or returned inline as base64.

Speech is always synthesised as 24 kHz 16-bit mono PCM. ``wav`` returns it in a WAV container
(``audio/wav``) and ``pcm`` returns the raw samples (``audio/pcm``), both honestly. The simulator
has no MP3/Opus/AAC/FLAC encoder and will not label WAV bytes as something else, so for
``mp3`` (the default), ``opus``, ``aac`` and ``flac`` it answers the WAV file with
``Content-Type: audio/wav``: callers must trust the response's content type rather than the
format they asked for — which is what they should do with the real relay too.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from studio.simulator import media
from studio.simulator.openai import bad_body, invalid
from studio.simulator.specials import openai_special_error, parse_markers, pause, strip_markers
from studio.simulator.state import Context
from studio.simulator.web import BadRequestBody, Request, Response, json_response

_DALLE3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
_DALLE2_SIZES = ("256x256", "512x512", "1024x1024")


def _parse_size(size: str) -> tuple[int, int] | None:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        return None
    return (w, h) if 16 <= w <= 4096 and 16 <= h <= 4096 else None


async def images_generations(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return bad_body(exc)
    model = str(body.get("model") or "dall-e-2")  # OpenAI's own default
    raw_prompt = body.get("prompt")
    if not isinstance(raw_prompt, str) or not raw_prompt.strip():
        return invalid("prompt is required", "prompt")
    markers = parse_markers(raw_prompt)
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    n = body.get("n", 1)
    size = str(body.get("size") or "1024x1024")
    fmt = body.get("response_format") or "url"
    if fmt not in ("url", "b64_json"):
        return invalid(
            f"'{fmt}' is not one of ['url', 'b64_json'] - 'response_format'", "response_format"
        )
    if not isinstance(n, int) or n < 1:
        return invalid("'n' must be a positive integer", "n")
    if model == "dall-e-3":
        if len(raw_prompt) > 4000:
            return invalid("'prompt' is too long: maximum 4000 characters for dall-e-3", "prompt")
        if n != 1:
            return invalid("You must provide n=1 for this model.", "n")
        if size not in _DALLE3_SIZES:
            return invalid(f"'{size}' is not one of {list(_DALLE3_SIZES)} - 'size'", "size")
        if body.get("quality", "standard") not in ("standard", "hd"):
            return invalid("'quality' must be 'standard' or 'hd'", "quality")
        if body.get("style", "vivid") not in ("vivid", "natural"):
            return invalid("'style' must be 'vivid' or 'natural'", "style")
    elif model == "dall-e-2":
        if n > 10:
            return invalid("'n' must be at most 10", "n")
        if size not in _DALLE2_SIZES:
            return invalid(f"'{size}' is not one of {list(_DALLE2_SIZES)} - 'size'", "size")
    elif n > 4:
        return invalid("'n' must be at most 4", "n")
    dims = _parse_size(size)
    if dims is None:
        return invalid(f"invalid size '{size}'", "size")
    await pause(req, markers, ctx.config)
    # DALL·E 3 takes ~10-20 s for real; hd is slower.
    await req.sleep(ctx.config.scaled(18.0 if body.get("quality") == "hd" else 10.0))
    prompt = strip_markers(raw_prompt)
    revised = f"A richly detailed, simulated rendering of: {prompt}"
    data: list[dict[str, Any]] = []
    for i in range(n):
        img = media.draw_picture(prompt, dims[0], dims[1], variant=i, label=f"{model} · simulated")
        raw = media.png(img)
        item: dict[str, Any] = {}
        if fmt == "b64_json":
            item["b64_json"] = base64.b64encode(raw).decode()
        else:
            name = ctx.files.add(raw, "png", "image/png", expired=markers.has("expire"))
            item["url"] = f"{req.base_url}/files/{name}"
        if model == "dall-e-3":
            item["revised_prompt"] = revised
        data.append(item)
    return json_response({"created": int(time.time()), "data": data})


_SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


async def audio_speech(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return bad_body(exc)
    model = str(body.get("model") or "")
    text = body.get("input")
    voice = body.get("voice")
    if not model:
        return invalid("model is required", "model")
    if not isinstance(text, str) or not text.strip():
        return invalid("input is required", "input")
    if len(text) > 4096:
        return invalid("'input' is too long: maximum 4096 characters", "input")
    if not isinstance(voice, str) or not voice:
        return invalid("voice is required", "voice")
    fmt = body.get("response_format") or "mp3"
    if fmt not in _SPEECH_FORMATS:
        return invalid(
            f"'{fmt}' is not one of {list(_SPEECH_FORMATS)} - 'response_format'", "response_format"
        )
    speed = body.get("speed", 1.0)
    if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return invalid("'speed' must be between 0.25 and 4.0", "speed")
    markers = parse_markers(text)
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(1.5))
    pcm = media.synth_speech(strip_markers(text) or text, voice, float(speed))
    if fmt == "pcm":
        return Response(200, pcm, "audio/pcm")
    return Response(200, media.wav_bytes(pcm), "audio/wav")


_TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_LANGUAGES = {"en": "english", "zh": "chinese", "ja": "japanese", "fr": "french", "de": "german"}
_PHRASES = [
    "Hello, and welcome to the simulated transcription service.",
    "This text was not heard; it was chosen from a short list by a hash of your file.",
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to save your work before the meeting ends.",
    "Thank you for listening, and have a pleasant day.",
]


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


async def _audio_text(req: Request, ctx: Context, task: str) -> Response:
    try:
        fields, files = req.multipart()
    except BadRequestBody as exc:
        return bad_body(exc)

    def field(name: str, default: str = "") -> str:
        return (fields.get(name) or [default])[0]

    upload = files.get("file")
    if upload is None or not upload.data:
        return invalid("1 validation error for Request: body -> file: field required", "file")
    model = field("model")
    if not model:
        return invalid("1 validation error for Request: body -> model: field required", "model")
    fmt = field("response_format", "json")
    if fmt not in _TRANSCRIPT_FORMATS:
        return invalid(
            f"'{fmt}' is not one of {list(_TRANSCRIPT_FORMATS)} - 'response_format'",
            "response_format",
        )
    markers = parse_markers(field("prompt"))
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    await pause(req, markers, ctx.config)
    await req.sleep(ctx.config.scaled(2.0))

    h = media.digest(upload.data)
    duration = media.wav_duration(upload.data) or round(2.0 + len(upload.data) / 16000, 2)
    sentences = [_PHRASES[(h[0] + k) % len(_PHRASES)] for k in range(2)]
    if task == "translate":
        sentences[0] = "(Translated to English) " + sentences[0]
    text = " ".join(sentences)
    half = round(duration / 2, 2)
    cues: list[tuple[float, float, str]] = [
        (0.0, half, sentences[0]),
        (half, duration, sentences[1]),
    ]
    segments = [
        {
            "id": k,
            "seek": 0,
            "start": start,
            "end": end,
            "text": " " + sentence,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": -0.2,
            "compression_ratio": 1.2,
            "no_speech_prob": 0.01,
        }
        for k, (start, end, sentence) in enumerate(cues)
    ]
    if fmt == "json":
        return json_response({"text": text})
    if fmt == "text":
        return Response(200, (text + "\n").encode(), "text/plain; charset=utf-8")
    if fmt == "srt":
        srt = "\n".join(
            f"{k}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{sentence}\n"
            for k, (start, end, sentence) in enumerate(cues, 1)
        )
        return Response(200, srt.encode(), "application/x-subrip; charset=utf-8")
    if fmt == "vtt":
        vtt = "\n".join(
            f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{sentence}\n"
            for start, end, sentence in cues
        )
        return Response(200, ("WEBVTT\n\n" + vtt).encode(), "text/vtt; charset=utf-8")
    language = (
        "english" if task == "translate" else _LANGUAGES.get(field("language", "en"), "english")
    )
    verbose: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": duration,
        "text": text,
        "segments": segments,
    }
    if "word" in fields.get("timestamp_granularities[]", []):
        words = text.split()
        per = duration / max(1, len(words))
        verbose["words"] = [
            {"word": w.strip(".,"), "start": round(i * per, 2), "end": round((i + 1) * per, 2)}
            for i, w in enumerate(words)
        ]
    return Response(200, json.dumps(verbose, ensure_ascii=False).encode(), "application/json")


async def audio_transcriptions(req: Request, ctx: Context) -> Response:
    return await _audio_text(req, ctx, "transcribe")


async def audio_translations(req: Request, ctx: Context) -> Response:
    return await _audio_text(req, ctx, "translate")
