"""OpenAI-compatible text endpoints: models, chat completions, legacy completions, embeddings.

Replies are deterministic functions of the last user message (same prompt, same answer), paced
token by token at ``SIMULATOR_TOKENS_PER_SECOND * SIMULATOR_SPEED`` unless the prompt says
``[[tps=N]]``. Streaming follows §3.1 of upstream-api.md: a role-only first chunk, one content
fragment per chunk, ``finish_reason`` on the last content chunk, an optional usage chunk with
empty ``choices``, then ``data: [DONE]``; ``: ping`` comments appear now and then.
"""

from __future__ import annotations

import array
import base64
import functools
import json
import math
import random
import re
import secrets
import struct
import time
from collections.abc import Callable
from typing import Any

from studio.simulator import media
from studio.simulator.specials import (
    MARKER,
    Markers,
    initial_delay,
    openai_special_error,
    parse_markers,
    pause,
    strip_markers,
)
from studio.simulator.state import Context
from studio.simulator.web import (
    BadRequestBody,
    ClientGone,
    EventStream,
    Request,
    Response,
    cut_connection,
    json_response,
    openai_error,
)

MODELS: list[tuple[str, str]] = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("gpt-4-all", "openai"),
    ("gpt-4o-all", "openai"),
    ("gpt-4-turbo", "openai"),
    ("gpt-3.5-turbo", "openai"),
    ("gpt-3.5-turbo-instruct", "openai"),
    ("o1-mini", "openai"),
    ("claude-3-5-sonnet-20241022", "anthropic"),
    ("deepseek-chat", "deepseek"),
    ("dall-e-2", "openai"),
    ("dall-e-3", "openai"),
    ("tts-1", "openai"),
    ("tts-1-hd", "openai"),
    ("whisper-1", "openai"),
    ("text-embedding-ada-002", "openai"),
    ("text-embedding-3-small", "openai"),
    ("text-embedding-3-large", "openai"),
    ("midjourney", "midjourney"),
    ("mj_imagine", "midjourney"),
    ("mj_upscale", "midjourney"),
    ("mj_variation", "midjourney"),
    ("mj_describe", "midjourney"),
    ("mj_blend", "midjourney"),
    ("swap_face", "midjourney"),
]

_SENTENCES = [
    "This answer comes from the local simulator, so it is deterministic and free.",
    "The same question will always produce the same words, which keeps tests stable.",
    "Streaming arrives one token at a time, just like a real relay would send it.",
    "Nothing here was produced by a language model; it is a template with your words in it.",
    "Markdown rendering, code highlighting and lists can all be checked with this text.",
    "Long replies can be requested with a tokens marker when you need to test scrolling.",
    "Errors are triggered on purpose with markers such as error:429 or die.",
    "Every number in this paragraph is made up, including the 42 that you just read.",
    "A calm reply is a good reply, even when it has nothing to say.",
    "The relay would normally charge for this; the simulator keeps no accounts.",
]
_TITLES = ["Overview", "Key points", "A closer look", "Summary", "What to know", "In short"]

_TOKEN = re.compile(
    r"(?:[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]|[^\s\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]+)\s*"
)


def tokenize(text: str) -> list[str]:
    """Word-ish pieces whose concatenation is exactly ``text`` (CJK: one character each)."""
    pieces = _TOKEN.findall(text)
    lead = text[: len(text) - len(text.lstrip())]
    if pieces and lead:
        pieces[0] = lead + pieces[0]
    return pieces or ([text] if text else [])


def _pick(h: bytes, k: int) -> str:
    return _SENTENCES[h[k % len(h)] % len(_SENTENCES)]


def compose_chat_reply(prompt: str, model: str) -> str:
    h = media.digest(prompt, model)
    echo = prompt if len(prompt) <= 300 else prompt[:299] + "…"
    shown = echo or "(no text)"
    snippet = json.dumps((prompt or "hello")[:40], ensure_ascii=False)
    return (
        f'You said: "{shown}"\n\n'
        f"## {_TITLES[h[0] % len(_TITLES)]}\n\n"
        f"{_pick(h, 1)} {_pick(h, 2)}\n\n"
        f"- **First**, {_pick(h, 3).lower()}\n"
        f"- **Second**, {_pick(h, 4).lower()}\n"
        f"- **Third**, {_pick(h, 5).lower()}\n\n"
        "```python\n"
        f"def answer_{h.hex()[:6]}() -> str:\n"
        f"    return {snippet}\n"
        "```\n\n"
        f"{_pick(h, 6)}"
    )


def compose_completion(prompt: str, model: str) -> str:
    h = media.digest(prompt, model, "completion")
    return " " + " ".join(_pick(h, k) for k in range(1, 9))


def resize_pieces(pieces: list[str], wanted: int, seed: str) -> list[str]:
    """Cut or pad a reply to exactly ``wanted`` tokens (the ``[[tokens=N]]`` marker)."""
    if wanted <= len(pieces):
        return pieces[:wanted]
    extra: list[str] = [] if not pieces or pieces[-1].endswith("\n") else ["\n\n"]
    h = media.digest(seed, "filler")
    k = 0
    while len(pieces) + len(extra) < wanted:
        extra.extend(tokenize(_pick(h, k) + " "))
        k += 1
    pieces = pieces + extra
    if pieces and pieces[0] == "\n\n":
        pieces = pieces[1:]
    return pieces[:wanted]


def message_text(content: Any) -> str:
    """Text of a message whose content is a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def count_tokens(texts: list[str]) -> int:
    return sum(len(tokenize(t)) for t in texts)


def bad_body(exc: Exception) -> Response:
    return openai_error(
        400,
        f"bind_request_body_failed: {exc}",
        type_="new_api_error",
        code="bind_request_body_failed",
    )


def invalid(message: str, param: str = "", code: str | None = None) -> Response:
    return openai_error(400, message, type_="invalid_request_error", param=param, code=code)


async def list_models(req: Request, ctx: Context) -> Response:
    created = 1_700_000_000
    data = [
        {
            "id": mid,
            "object": "model",
            "created": created,
            "owned_by": owner,
            "root": mid,
            "parent": None,
        }
        for mid, owner in MODELS
    ]
    return json_response({"object": "list", "data": data})


# ---------------------------------------------------------------- streaming machinery

Plan = list[str | float]  # a str is one token; a float is a pause (seconds) inside the reply


def _tps(markers: Markers, ctx: Context) -> float:
    explicit = markers.number("tps")
    if explicit and explicit > 0:
        return explicit
    return ctx.config.tokens_per_second * ctx.config.speed


async def stream_plan(
    req: Request,
    ctx: Context,
    markers: Markers,
    plan: Plan,
    make_chunk: Callable[[str | None, str | None], dict[str, Any]],
    finish_reason: str,
    usage: dict[str, int] | None,
    first_chunk: dict[str, Any] | None = None,
) -> None:
    """Send ``plan`` as SSE. ``make_chunk(text, finish_reason)`` builds one chunk object."""
    stream = EventStream(req)
    await stream.start()
    delay = 1.0 / _tps(markers, ctx)
    tokens = [i for i, item in enumerate(plan) if isinstance(item, str)]
    last_token = tokens[-1] if tokens else -1
    # Where [[die]] / [[error:midstream]] strike: after a few chunks, but always before the end.
    trouble_at = tokens[min(3, len(tokens) - 1)] if tokens else 0
    try:
        await stream.sleep(initial_delay(markers, ctx.config))  # [[slow]]: headers, then silence
        await stream.sleep(ctx.config.scaled(0.4))  # time to first token
        if first_chunk is not None:
            await stream.data(first_chunk)
        sent = 0
        for i, item in enumerate(plan):
            if i == trouble_at and markers.has("die"):
                await stream.cut()
                return
            if i == trouble_at and markers.has("error:midstream"):
                await stream.data(
                    {
                        "error": {
                            "message": "upstream stream interrupted: context deadline exceeded",
                            "type": "upstream_error",
                            "param": "",
                            "code": "stream_error",
                        }
                    }
                )
                await stream.finish()
                return
            if isinstance(item, float):
                await _keepalive_pause(stream, item)
                continue
            await stream.data(make_chunk(item, finish_reason if i == last_token else None))
            sent += 1
            if sent % 24 == 0:
                await stream.comment("ping")
            await stream.sleep(delay)
        if not tokens:
            await stream.data(make_chunk("", finish_reason))
        if usage is not None:
            await stream.data({**make_chunk(None, None), "choices": [], "usage": usage})
        await stream.data("[DONE]")
        await stream.finish()
    except ClientGone:
        return


async def _keepalive_pause(stream: EventStream, seconds: float) -> None:
    # Like a relay waiting on a slow upstream with keep-alive on: ": ping" while nothing happens.
    interval = max(0.05, min(1.0, seconds / 3))
    waited = 0.0
    while waited < seconds:
        step = min(interval, seconds - waited)
        await stream.sleep(step)
        waited += step
        await stream.comment("ping")


async def wait_plan(req: Request, markers: Markers, ctx: Context, plan: Plan) -> None:
    """What a non-streamed call waits before answering: the time streaming would have taken."""
    await pause(req, markers, ctx.config)
    tokens = sum(1 for item in plan if isinstance(item, str))
    pauses = sum(item for item in plan if isinstance(item, float))
    await req.sleep(ctx.config.scaled(0.4) + pauses + tokens / _tps(markers, ctx))


# ---------------------------------------------------------------- chat completions


def _gpt4all_plan(
    req: Request, ctx: Context, prompt: str, markers: Markers, body_pieces: list[str]
) -> Plan:
    if markers.has("gpt4:no-image"):
        # The image tool declined: words only, no link (what Studio must report, not store).
        refusal = (
            "抱歉，我无法根据这个描述生成图片。"  # noqa: RUF001 - the model's own words
            "I can't create that image: the request may violate the content policy.\n\n"
        )
        return [*tokenize(refusal), *body_pieces]
    expire = markers.has("expire")
    img = media.draw_picture(prompt or "gpt-4-all", 1024, 1024, label="gpt-4-all · simulated")
    name = ctx.files.add(media.png(img), "png", "image/png", expired=expire)
    url = f"{req.base_url}/files/{name}"
    intro = (
        "```\n"
        + json.dumps({"prompt": prompt, "size": "1024x1024"}, ensure_ascii=False)
        + "\n```\n\n> 正在生成图片，请稍候…\n\n"  # noqa: RUF001
    )
    outro = f"![image]({url})\n\n[下载链接]({url})\n\n"
    return [*tokenize(intro), ctx.config.scaled(15.0), *tokenize(outro), *body_pieces]


async def chat_completions(req: Request, ctx: Context) -> Response | None:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return bad_body(exc)
    model = str(body.get("model") or "")
    messages = body.get("messages")
    if not model:
        return invalid("model is required", "model")
    if not isinstance(messages, list) or not messages:
        return invalid("messages is required and must be a non-empty array", "messages")
    texts = [message_text(m.get("content")) for m in messages if isinstance(m, dict)]
    last_user = next(
        (
            message_text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    markers = parse_markers(last_user)
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    prompt = strip_markers(last_user)
    # [[echo]]: the reply is the user's text verbatim (tests feed hostile markdown/HTML this way).
    reply = MARKER.sub("", last_user) if markers.has("echo") else compose_chat_reply(prompt, model)
    pieces = tokenize(reply)
    wanted = markers.number("tokens")
    if wanted is not None and wanted >= 1:
        pieces = resize_pieces(pieces, int(wanted), prompt)
    finish = "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(pieces):
        pieces, finish = pieces[:limit], "length"
    plan: Plan = list(pieces)
    if model.startswith(("gpt-4-all", "gpt-4o-all")):
        plan = _gpt4all_plan(req, ctx, prompt, markers, pieces)
    completion_tokens = sum(1 for item in plan if isinstance(item, str))
    prompt_tokens = count_tokens(texts) + 3 * len(messages)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    cid = "chatcmpl-" + secrets.token_urlsafe(18).replace("-", "").replace("_", "")[:24]
    created = int(time.time())

    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def make_chunk(text: str | None, finish_reason: str | None) -> dict[str, Any]:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "delta": {} if text is None else {"content": text},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
            if include_usage:
                chunk["usage"] = None
            return chunk

        first = make_chunk(None, None)
        first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
        usage_or_none = usage if include_usage else None
        await stream_plan(req, ctx, markers, plan, make_chunk, finish, usage_or_none, first)
        return None

    await wait_plan(req, markers, ctx, plan)
    if markers.has("die"):
        await cut_connection(req.send)
        return None
    content = "".join(item for item in plan if isinstance(item, str))
    return json_response(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
        }
    )


# ---------------------------------------------------------------- legacy completions


async def completions(req: Request, ctx: Context) -> Response | None:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return bad_body(exc)
    model = str(body.get("model") or "")
    raw_prompt = body.get("prompt")
    if not model:
        return invalid("model is required", "model")
    if isinstance(raw_prompt, list):
        raw_prompt = raw_prompt[0] if raw_prompt and isinstance(raw_prompt[0], str) else ""
    if not isinstance(raw_prompt, str):
        return invalid("prompt is required", "prompt")
    markers = parse_markers(raw_prompt)
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    prompt = strip_markers(raw_prompt)
    pieces = tokenize(compose_completion(prompt, model))
    wanted = markers.number("tokens")
    if wanted is not None and wanted >= 1:
        pieces = resize_pieces(pieces, int(wanted), prompt)
    limit = body.get("max_tokens", 16)  # OpenAI's default for this endpoint really is 16
    finish = "stop"
    if isinstance(limit, int) and 0 < limit < len(pieces):
        pieces, finish = pieces[:limit], "length"
    if body.get("echo"):
        pieces = [prompt, *pieces]
    prompt_tokens = count_tokens([prompt])
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(pieces),
        "total_tokens": prompt_tokens + len(pieces),
    }
    cid = "cmpl-" + secrets.token_hex(12)
    created = int(time.time())

    def make_chunk(text: str | None, finish_reason: str | None) -> dict[str, Any]:
        choices = (
            []
            if text is None
            else [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        )
        return {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
        }

    plan: Plan = list(pieces)
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        await stream_plan(
            req, ctx, markers, plan, make_chunk, finish, usage if include_usage else None
        )
        return None
    await wait_plan(req, markers, ctx, plan)
    result = make_chunk("".join(pieces), finish)
    result["usage"] = usage
    return json_response(result)


# ---------------------------------------------------------------- embeddings

_EMBED_DIMS = {"text-embedding-3-large": 3072}
_WORD = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+")  # a CJK character is a word


@functools.lru_cache(maxsize=1024)  # doubles: at most 1024 * 3072 * 8 bytes = 24 MB
def _random_direction(dims: int, *seed: str) -> array.array[float]:
    rng = random.Random(media.digest(*seed))
    return array.array("d", (rng.gauss(0.0, 1.0) for _ in range(dims)))


def embed(text: str, model: str, dims: int) -> list[float]:
    """A unit vector made of one random direction per word of the text plus a little of its own.

    Equal texts give equal vectors, texts that share words point the same way (the more they
    share, the closer), and unrelated texts are nearly orthogonal, like real embeddings.
    """
    words = _WORD.findall(text.casefold()) or [text]
    vec = [0.0] * dims
    for word in words:
        direction = _random_direction(dims, model, "word", word)
        vec = [v + w for v, w in zip(vec, direction, strict=True)]
    own = _random_direction(dims, model, text)
    vec = [v + 0.5 * w for v, w in zip(vec, own, strict=True)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 8) for v in vec]


async def embeddings(req: Request, ctx: Context) -> Response:
    try:
        body = req.json_object()
    except BadRequestBody as exc:
        return bad_body(exc)
    model = str(body.get("model") or "")
    raw = body.get("input")
    if not model:
        return invalid("model is required", "model")
    inputs: list[str]
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        inputs = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        inputs = [" ".join(map(str, raw))]  # one pre-tokenised input
    elif isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
        inputs = [" ".join(map(str, x)) for x in raw]
    else:
        return invalid("'input' must be a non-empty string or array", "input")
    if any(not text for text in inputs):
        return invalid("'input' cannot contain empty strings", "input")
    markers = parse_markers(*inputs)
    error = openai_special_error(markers, model)
    if error is not None:
        return error
    await pause(req, markers, ctx.config)
    dims = _EMBED_DIMS.get(model, 1536)
    requested = body.get("dimensions")
    if requested is not None:
        if not model.startswith("text-embedding-3"):
            return invalid("This model does not support specifying dimensions.", "dimensions")
        if not isinstance(requested, int) or not 1 <= requested <= dims:
            return invalid(f"'dimensions' must be between 1 and {dims}", "dimensions")
        dims = requested
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        return invalid("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    data = []
    for index, text in enumerate(inputs):
        vec = embed(text, model, dims)
        value: Any = vec
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = count_tokens(inputs)
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
