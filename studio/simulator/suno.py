"""Suno music (§6) in both of the relay's formats.

Format "a", the reseller's template (GoAPI-like): ``POST /suno/v1/v3.0/music`` (and ``/v3.5/``,
which takes only ``mv: chirp-v3-5`` while v3.0 takes only ``chirp-v3-0``), ``GET
/suno/v1/v3.x/music/{task_id}``, ``POST /suno/v1/v3.0/music/concat``; envelope ``{code: 200,
message, data}``; errors ``{code: <int>, message, error_message}`` (HTTP 400/404, or 200 with
``[[suno:http200]]``); clips an object keyed by clip id.

Format "b", new-api's task relay: ``POST /suno/submit/music``, ``POST /suno/submit/concat``,
``GET /suno/fetch/{task_id}``, ``POST /suno/fetch``; envelope ``{code: "success", message,
data}``; errors ``{code: "<token>", message, data: null}`` with a failing status; clips a list.

A task advances over six steps, driven by wall time (a minute at SIMULATOR_SPEED=1) and by
polling (every fetch moves it one step), whichever is ahead: pending → processing, its clips
``queued`` then ``streaming`` (audio and cover already there, as Suno streams) → completed with
two clips, each a real WAV song of a few seconds (a little melody, length = the reported
``duration``), a real JPEG cover, an MP4 video (the sample clip), lyrics and style tags. A concat
task has one clip: the original's audio up to ``continue_at`` followed by the extension's.

Markers, read from the description, lyrics, title and tags (the relay-level ones of
specials.py answer in the OpenAI shape, as on every path):
  [[suno:fail]]     the task fails half-way (task failed, clips ``error`` with a reason)
  [[suno:refuse]]   refused at submit with the format's native error body (sensitive words)
  [[suno:quota]]    the relay's task-relay answer: 403 ``quota_not_enough``
  [[suno:http200]]  format a errors come with HTTP 200 (the code inside says what went wrong)
  [[expire]], [[sleep=N]], [[slow]] as everywhere.

Tasks and clips live in this module's store and are scoped to the token that made them.
"""

from __future__ import annotations

import io
import json
import math
import struct
import time
import uuid
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from studio.simulator import media
from studio.simulator.specials import (
    Markers,
    openai_special_error,
    parse_markers,
    pause,
    strip_markers,
)
from studio.simulator.state import Context
from studio.simulator.video import sample_video
from studio.simulator.web import BadRequestBody, Request, Response, json_response

STEPS = 6
STREAM_AT = 3  # from this step the clips stream: audio and cover are there
FAIL_AT = 3
TASK_SECONDS = 60.0  # a realistic song task at SIMULATOR_SPEED=1
SAMPLE_RATE = 22_050
COVER_SIDE = 400

MV_V30 = "chirp-v3-0"
MV_V35 = "chirp-v3-5"
PATH_MV = {"v3.0": MV_V30, "v3.5": MV_V35}
MAX_DESCRIPTION = 200
MAX_LYRICS = 3000
MAX_TAGS = 200
MAX_TITLE = 80

STYLE_WORDS = (
    "indie pop",
    "lo-fi",
    "acoustic folk",
    "synthwave",
    "dreamy",
    "upbeat",
    "melancholic",
    "piano ballad",
    "jazz",
    "electronic",
    "city pop",
    "soft rock",
)
# A major pentatonic scale over two octaves, in semitones from the root.
SCALE = (0, 2, 4, 7, 9, 12, 14, 16)


@dataclass
class Clip:
    id: str
    owner: str
    title: str
    tags: str
    lyrics: str
    description: str
    mv: str
    seconds: float  # the length of its audio
    continue_clip_id: str = ""  # an extension: the clip it continues …
    continue_at: float = 0.0  # … from this second
    joined_from: str = ""  # a concat clip: the extension it joins to its original
    audio_file: str = ""
    image_file: str = ""
    video_file: str = ""
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )


@dataclass
class Task:
    id: str
    owner: str
    fmt: str  # a | b
    action: str  # MUSIC | CONCAT
    mv: str
    request: dict[str, Any]
    clip_ids: list[str]
    seconds: float = TASK_SECONDS
    doomed: bool = False
    expire_files: bool = False
    step: int = 0
    failure: str = ""
    clock_start: float = field(default_factory=time.monotonic)
    submit_time: int = field(default_factory=lambda: int(time.time()))
    start_time: int = 0
    finish_time: int = 0

    @property
    def finished(self) -> bool:
        return bool(self.failure) or self.step >= STEPS


class Store:
    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.clips: dict[str, Clip] = {}

    def task(self, task_id: str, owner: str, fmt: str) -> Task | None:
        task = self.tasks.get(task_id.strip())
        return task if task is not None and task.owner == owner and task.fmt == fmt else None

    def clip(self, clip_id: str, owner: str) -> Clip | None:
        clip = self.clips.get(clip_id.strip())
        return clip if clip is not None and clip.owner == owner else None

    def task_of(self, clip_id: str) -> Task | None:
        return next((t for t in self.tasks.values() if clip_id in t.clip_ids), None)


STORE = Store()


# ---------------------------------------------------------------- media


@lru_cache(maxsize=64)
def song_pcm(seed: str, seconds: float) -> bytes:
    """A little tune, 16-bit mono PCM: a melody on a pentatonic scale over a bass line, notes
    and tempo chosen by `seed`, exactly `seconds` long."""
    h = media.digest(seed)
    root = 220.0 * 2 ** ((h[0] % 7) / 12)
    beat = 0.22 + (h[1] % 4) * 0.04
    total = int(seconds * SAMPLE_RATE)
    note_len = int(beat * SAMPLE_RATE)
    ramp = SAMPLE_RATE // 200  # 5 ms fades avoid clicks
    samples = array("h")
    index = 0
    while len(samples) < total:
        step = SCALE[media.digest(seed, index)[0] % len(SCALE)]
        melody = 2 * math.pi * root * 2 ** (step / 12) / SAMPLE_RATE
        bass = 2 * math.pi * (root / 2) * 2 ** (SCALE[(index // 4) % 4] / 12) / SAMPLE_RATE
        n = min(note_len, total - len(samples))
        samples.extend(
            int(
                min(1.0, i / ramp, (n - i) / ramp)
                * (6500 * math.sin(melody * i) + 2500 * math.sin(bass * i))
            )
            for i in range(n)
        )
        index += 1
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()
    return samples.tobytes()


def clip_pcm(clip: Clip) -> bytes:
    """A clip's audio; a concat clip is its original up to `continue_at`, then the extension."""
    if clip.joined_from:
        extension = STORE.clips.get(clip.joined_from)
        original = STORE.clips.get(extension.continue_clip_id) if extension else None
        if extension is not None and original is not None:
            cut = int(extension.continue_at * SAMPLE_RATE) * 2
            return clip_pcm(original)[:cut] + clip_pcm(extension)
    return song_pcm(clip.id, clip.seconds)


def cover_jpeg(clip: Clip) -> bytes:
    picture = media.draw_picture(
        clip.title or "Suno", COVER_SIDE, COVER_SIDE, variant=media.hash_int(clip.id)
    )
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=82)
    return out.getvalue()


def ensure_files(task: Task, ctx: Context) -> None:
    for clip_id in task.clip_ids:
        clip = STORE.clips[clip_id]
        expired = task.expire_files
        if not clip.audio_file:
            wav = media.wav_bytes(clip_pcm(clip), SAMPLE_RATE)
            clip.audio_file = ctx.files.add(wav, "wav", "audio/wav", expired=expired)
        if not clip.image_file:
            clip.image_file = ctx.files.add(cover_jpeg(clip), "jpeg", "image/jpeg", expired=expired)
        if not clip.video_file and task.step >= STEPS:
            clip.video_file = ctx.files.add(sample_video(), "mp4", "video/mp4", expired=expired)


# ---------------------------------------------------------------- task clock


def sync(task: Task, ctx: Context) -> None:
    """Bring a task up to date with the wall clock (the polling clock moves in `fetched`)."""
    if task.failure:
        return
    per_step = ctx.config.scaled(task.seconds) / STEPS
    by_time = int((time.monotonic() - task.clock_start) / per_step) if per_step > 0 else STEPS
    step = min(STEPS, max(task.step, by_time))
    if task.doomed and step >= FAIL_AT:
        task.step = FAIL_AT
        task.failure = "Song generation failed: the audio model returned no output (simulated)"
        task.finish_time = int(time.time())
        return
    task.step = step
    if step >= 1 and not task.start_time:
        task.start_time = int(time.time())
    if step >= STREAM_AT:
        ensure_files(task, ctx)
    if step >= STEPS and not task.finish_time:
        task.finish_time = int(time.time())


def fetched(task: Task) -> None:
    if not task.finished:
        task.step += 1


def _clip_status(task: Task) -> str:
    if task.failure:
        return "error"
    if task.step >= STEPS:
        return "complete"
    if task.step >= STREAM_AT:
        return "streaming"
    return "submitted" if task.step == 0 else "queued"


def clip_json(clip: Clip, task: Task, base_url: str) -> dict[str, Any]:
    status = _clip_status(task)
    playable = status in ("streaming", "complete")
    major = "v3.5" if clip.mv == MV_V35 else "v3"
    return {
        "id": clip.id,
        "title": clip.title,
        "status": status,
        "audio_url": f"{base_url}/files/{clip.audio_file}" if playable else "",
        "video_url": f"{base_url}/files/{clip.video_file}" if clip.video_file else "",
        "image_url": f"{base_url}/files/{clip.image_file}" if playable else None,
        "image_large_url": f"{base_url}/files/{clip.image_file}" if playable else None,
        "model_name": "chirp-v3-5" if clip.mv == MV_V35 else "chirp-v3",
        "major_model_version": major,
        "created_at": clip.created_at,
        "metadata": {
            "tags": clip.tags,
            "prompt": clip.lyrics,
            "gpt_description_prompt": clip.description or None,
            "type": "concat" if clip.joined_from else "gen",
            "duration": round(clip.seconds, 2) if status == "complete" else None,
            "error_type": "generation_failed" if task.failure else None,
            "error_message": task.failure or None,
            "audio_prompt_id": None,
            "history": (
                [{"id": clip.continue_clip_id, "continue_at": clip.continue_at}]
                if clip.continue_clip_id
                else None
            ),
        },
    }


def task_status_a(task: Task) -> str:
    if task.failure:
        return "failed"
    if task.step >= STEPS:
        return "completed"
    return "processing" if task.step else "pending"


def task_json_a(task: Task, base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": task.id,
        "status": task_status_a(task),
        "input": json.dumps(task.request, ensure_ascii=False),
        "clips": {cid: clip_json(STORE.clips[cid], task, base_url) for cid in task.clip_ids},
        "created_at": datetime.fromtimestamp(task.submit_time, UTC).isoformat(),
    }
    if task.failure:
        data["error"] = {"code": 10000, "message": task.failure}
    return data


def task_json_b(task: Task, base_url: str) -> dict[str, Any]:
    if task.failure:
        status, progress = "FAILURE", f"{round(100 * task.step / STEPS)}%"
    elif task.step >= STEPS:
        status, progress = "SUCCESS", "100%"
    elif task.step == 0:
        status, progress = "SUBMITTED", "0%"
    else:
        status, progress = "IN_PROGRESS", f"{round(100 * task.step / STEPS)}%"
    return {
        "task_id": task.id,
        "action": task.action,
        "status": status,
        "fail_reason": task.failure,
        "submit_time": task.submit_time,
        "start_time": task.start_time,
        "finish_time": task.finish_time,
        "progress": progress,
        "data": [clip_json(STORE.clips[cid], task, base_url) for cid in task.clip_ids],
    }


# ---------------------------------------------------------------- errors


def goapi_error(code: int, message: str, markers: Markers, detail: str = "") -> Response:
    """Format a's native error: `{code, message, error_message}`."""
    status = 200 if markers.has("suno:http200") else (code if 400 <= code < 600 else 400)
    payload = {"code": code, "message": message, "error_message": detail or message}
    return json_response(payload, status)


def relay_error(token: str, message: str, status: int) -> Response:
    """The task relay's envelope (§2.4), format b's and the relay's own."""
    return json_response({"code": token, "message": message, "data": None}, status)


def _fail(fmt: str, message: str, markers: Markers) -> Response:
    if fmt == "a":
        return goapi_error(400, message, markers)
    return relay_error("invalid_request", message, 400)


def _special(fmt: str, markers: Markers) -> Response | None:
    error = openai_special_error(markers, "suno")
    if error is not None:
        return error
    if markers.has("suno:quota"):
        return relay_error("quota_not_enough", "quota_not_enough", 403)
    if markers.has("suno:refuse"):
        message = "Your lyrics or description contain words Suno does not allow (simulated)"
        if fmt == "a":
            return goapi_error(400, "prompt rejected by moderation", markers, message)
        return relay_error("invalid_request", message, 400)
    return None


# ---------------------------------------------------------------- making songs


def _title_from(description: str) -> str:
    words = strip_markers(description).replace("\n", " ").split()[:4]
    return " ".join(word.strip(",.;:!?").capitalize() for word in words) or "Untitled"


def _tags_from(seed: str) -> str:
    h = media.digest(seed, "tags")
    picked = dict.fromkeys(STYLE_WORDS[h[i] % len(STYLE_WORDS)] for i in range(3))
    return ", ".join(picked)


def _lyrics_from(description: str) -> str:
    words = [w.strip(",.;:!?") for w in strip_markers(description).split() if len(w) > 2][:6]
    theme = " ".join(words) or "the night"
    return (
        f"[Verse]\nI keep thinking of {theme}\nEvery street light hums along\n"
        f"[Chorus]\nOh, {theme}\nStay with me until the dawn"
    )


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _problem(fields: dict[str, Any], custom: bool, owner: str) -> str | None:
    """What Suno would refuse in these fields, or None."""
    description = _text(fields, "gpt_description_prompt")
    lyrics = _text(fields, "prompt")
    for key, limit in (("prompt", MAX_LYRICS), ("tags", MAX_TAGS), ("title", MAX_TITLE)):
        if len(_text(fields, key)) > limit:
            return f"{key} must be at most {limit} characters"
    if fields.get("continue_clip_id"):
        source = STORE.clip(str(fields["continue_clip_id"]), owner)
        if source is None:
            return f"clip {fields['continue_clip_id']} not found"
        task = STORE.task_of(source.id)
        if task is None or task.failure or task.step < STEPS:
            return f"clip {source.id} is not complete yet"
        at = fields.get("continue_at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            return "continue_at is required to continue a clip"
        if not 0 < at <= source.seconds:
            return f"continue_at must be between 0 and {source.seconds:g} seconds"
        return None
    if not custom:
        if not description.strip():
            return "gpt_description_prompt is required"
        if len(description) > MAX_DESCRIPTION:
            return f"gpt_description_prompt must be at most {MAX_DESCRIPTION} characters"
    elif not lyrics.strip() and not fields.get("make_instrumental"):
        return "prompt (lyrics) is required in custom mode unless make_instrumental is true"
    return None


def make_music_task(
    fmt: str, owner: str, fields: dict[str, Any], custom: bool, mv: str, markers: Markers
) -> Task:
    description = "" if custom else _text(fields, "gpt_description_prompt")
    source = STORE.clip(str(fields.get("continue_clip_id") or ""), owner)
    instrumental = bool(fields.get("make_instrumental"))
    if custom:
        title = strip_markers(_text(fields, "title")) or (source.title if source else "Untitled")
        tags = strip_markers(_text(fields, "tags")) or (source.tags if source else "")
        lyrics = "" if instrumental else strip_markers(_text(fields, "prompt"))
    else:
        title = _title_from(description)
        tags = _tags_from(description)
        lyrics = "" if instrumental else _lyrics_from(description)
    task_id = str(uuid.uuid4())
    clips = []
    for take in range(2):
        clip_id = str(uuid.uuid4())
        seconds = (5.0 if source else 6.0) + media.hash_int(clip_id) % 3
        clips.append(
            Clip(
                id=clip_id,
                owner=owner,
                title=title,
                tags=tags or _tags_from(f"{task_id}{take}"),
                lyrics=lyrics,
                description=strip_markers(description),
                mv=mv,
                seconds=seconds,
                continue_clip_id=source.id if source else "",
                continue_at=float(fields.get("continue_at") or 0) if source else 0.0,
            )
        )
    for clip in clips:
        STORE.clips[clip.id] = clip
    request = {"custom_mode": custom, **{k: v for k, v in fields.items() if v not in (None, "")}}
    task = Task(
        id=task_id,
        owner=owner,
        fmt=fmt,
        action="MUSIC",
        mv=mv,
        request=request,
        clip_ids=[clip.id for clip in clips],
        doomed=markers.has("suno:fail"),
        expire_files=markers.has("expire"),
    )
    STORE.tasks[task.id] = task
    return task


def make_concat_task(fmt: str, extension: Clip) -> Task:
    original = STORE.clips[extension.continue_clip_id]
    clip = Clip(
        id=str(uuid.uuid4()),
        owner=extension.owner,
        title=extension.title,
        tags=extension.tags,
        lyrics="\n".join(part for part in (original.lyrics, extension.lyrics) if part),
        description=original.description,
        mv=extension.mv,
        seconds=round(extension.continue_at + extension.seconds, 3),
        joined_from=extension.id,
    )
    STORE.clips[clip.id] = clip
    task = Task(
        id=str(uuid.uuid4()),
        owner=extension.owner,
        fmt=fmt,
        action="CONCAT",
        mv=extension.mv,
        request={"clip_id": extension.id},
        clip_ids=[clip.id],
        seconds=TASK_SECONDS / 3,
    )
    STORE.tasks[task.id] = task
    return task


def _concat_problem(clip_id: str, owner: str) -> str | None:
    if not clip_id.strip():
        return "clip_id is required"
    extension = STORE.clip(clip_id, owner)
    if extension is None:
        return f"clip {clip_id} not found"
    task = STORE.task_of(extension.id)
    if task is None or task.failure or task.step < STEPS:
        return f"clip {clip_id} is not complete yet"
    if not extension.continue_clip_id or extension.continue_clip_id not in STORE.clips:
        return f"clip {clip_id} is not an extension: only an extended clip can be concatenated"
    return None


def _markers(fields: dict[str, Any]) -> Markers:
    return parse_markers(
        *(_text(fields, key) for key in ("gpt_description_prompt", "prompt", "title", "tags"))
    )


# ---------------------------------------------------------------- format a


async def _a_generate(req: Request, ctx: Context, version: str) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return goapi_error(400, "invalid request body", Markers(), str(exc))
    fields = body.get("input")
    if not isinstance(fields, dict):
        return goapi_error(400, "input is required", Markers())
    markers = _markers(fields)
    if (error := _special("a", markers)) is not None:
        return error
    custom = body.get("custom_mode")
    if not isinstance(custom, bool):
        return goapi_error(400, "custom_mode must be true or false", markers)
    mv = _text(fields, "mv") or PATH_MV[version]
    if mv != PATH_MV[version]:
        return goapi_error(400, f"mv {mv} is not available on /suno/v1/{version}", markers)
    custom = custom or bool(fields.get("continue_clip_id"))  # an extension is custom mode
    if problem := _problem(fields, custom, req.token):
        return goapi_error(400, "invalid request", markers, problem)
    await pause(req, markers, ctx.config)
    task = make_music_task("a", req.token, fields, custom, mv, markers)
    return json_response({"code": 200, "data": {"task_id": task.id}, "message": "success"})


async def a_generate_v30(req: Request, ctx: Context) -> Response:
    return await _a_generate(req, ctx, "v3.0")


async def a_generate_v35(req: Request, ctx: Context) -> Response:
    return await _a_generate(req, ctx, "v3.5")


async def a_fetch(req: Request, ctx: Context) -> Response:
    task = STORE.task(req.params["task_id"], req.token, "a")
    if task is None:
        message = f"task {req.params['task_id']} does not exist"
        return goapi_error(404, "task not found", Markers(), message)
    sync(task, ctx)
    payload = {"code": 200, "message": "success", "data": task_json_a(task, req.base_url)}
    fetched(task)
    return json_response(payload)


async def a_concat(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return goapi_error(400, "invalid request body", Markers(), str(exc))
    clip_id = _text(body, "clip_id")
    if problem := _concat_problem(clip_id, req.token):
        return goapi_error(400, "invalid request", Markers(), problem)
    task = make_concat_task("a", STORE.clips[clip_id.strip()])
    return json_response({"code": 200, "data": {"task_id": task.id}, "message": "success"})


# ---------------------------------------------------------------- format b


async def b_submit_music(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody:
        return relay_error("bind_request_body_failed", "bind_request_body_failed", 400)
    markers = _markers(body)
    if (error := _special("b", markers)) is not None:
        return error
    mv = _text(body, "mv") or MV_V35
    if mv not in (MV_V30, MV_V35):
        return relay_error("invalid_request", f"mv {mv} is not supported", 400)
    custom = not _text(body, "gpt_description_prompt").strip()
    if problem := _problem(body, custom, req.token):
        return _fail("b", problem, markers)
    await pause(req, markers, ctx.config)
    task = make_music_task("b", req.token, body, custom, mv, markers)
    return json_response({"code": "success", "message": "", "data": task.id})


async def b_submit_concat(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody:
        return relay_error("bind_request_body_failed", "bind_request_body_failed", 400)
    clip_id = _text(body, "clip_id")
    if problem := _concat_problem(clip_id, req.token):
        return relay_error("invalid_request", problem, 400)
    task = make_concat_task("b", STORE.clips[clip_id.strip()])
    return json_response({"code": "success", "message": "", "data": task.id})


async def b_fetch(req: Request, ctx: Context) -> Response:
    task = STORE.task(req.params["task_id"], req.token, "b")
    if task is None:
        return relay_error("task_not_exist", "task_not_exist", 400)
    sync(task, ctx)
    payload = {"code": "success", "message": "", "data": task_json_b(task, req.base_url)}
    fetched(task)
    return json_response(payload)


async def b_fetch_batch(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody:
        return relay_error("bind_request_body_failed", "bind_request_body_failed", 400)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        return relay_error("invalid_request", "ids is required", 400)
    found = []
    for task_id in ids:
        task = STORE.task(str(task_id), req.token, "b")
        if task is not None:
            sync(task, ctx)
            found.append(task_json_b(task, req.base_url))
            fetched(task)
    return json_response({"code": "success", "message": "", "data": found})
