"""The OpenAI-compatible family (`/v1/*`): chat, completions, images, embeddings, audio.

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Replies are read
leniently: fields the relay adds are ignored, optional fields may be missing, numbers may come
as strings. What a caller cannot do without (a chat reply's choices, an image) raises
ProtocolError instead of turning into an empty result.
"""

from __future__ import annotations

import array
import base64
import binascii
import json
import sys
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from studio.upstream.client import (
    LONG_TIMEOUT,
    MEDIA_TIMEOUT,
    QUICK_TIMEOUT,
    STREAM_TIMEOUT,
    RelayClient,
)
from studio.upstream.errors import ProtocolError, body_excerpt, error_from_payload
from studio.upstream.sse import iter_json_events

Message = Mapping[str, Any]
TextOf = Callable[[Mapping[str, Any]], str]  # where a chunk's choice keeps its text


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class ModelInfo:
    id: str
    owned_by: str | None = None


@dataclass(frozen=True)
class ChatResult:
    content: str
    finish_reason: str | None
    usage: Usage | None
    model: str | None


@dataclass(frozen=True)
class ChatDelta:
    """One piece of a streamed reply. The last pieces may carry only a finish reason or usage."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class CompletionResult:
    text: str
    finish_reason: str | None
    usage: Usage | None


@dataclass(frozen=True)
class GeneratedImage:
    """One image: a short-lived `url` (download it soon) or inline base64 data."""

    url: str | None
    b64_json: str | None = field(default=None, repr=False)
    revised_prompt: str | None = None


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]] = field(repr=False)
    model: str | None
    usage: Usage | None


@dataclass(frozen=True)
class AudioResult:
    content: bytes = field(repr=False)
    content_type: str


@dataclass(frozen=True)
class TranscriptionResult:
    """`text` is the transcript (or the subtitles, for srt/vtt); `raw` the body as received."""

    text: str
    raw: str = field(repr=False)
    response_format: str
    language: str | None = None
    duration: float | None = None


# --- models ---------------------------------------------------------------------------------


async def list_models(client: RelayClient) -> list[ModelInfo]:
    """The models the key may use, in the relay's order (GET /v1/models)."""
    payload = await client._request_json("GET", "models", timeout=QUICK_TIMEOUT)
    models = []
    for entry in _list(payload.get("data")):
        if isinstance(entry, Mapping) and entry.get("id") not in (None, ""):
            models.append(
                ModelInfo(id=str(entry["id"]), owned_by=_str_or_none(entry.get("owned_by")))
            )
    return models


# --- chat and completions -------------------------------------------------------------------


async def chat(
    client: RelayClient, model: str, messages: Sequence[Message], **params: Any
) -> ChatResult:
    """One non-streamed chat completion. `params` are passed through (temperature, ...).

    Uses the long timeout: gpt-4-all style models take minutes when they draw images.
    """
    body = {**_without_stream(params), "model": model, "messages": list(messages)}
    payload = await client._request_json(
        "POST", "chat_completions", json=body, timeout=LONG_TIMEOUT
    )
    choice = _first_choice(payload)
    message = choice.get("message")
    content = _content_text(message.get("content")) if isinstance(message, Mapping) else ""
    return ChatResult(
        content=content,
        finish_reason=_str_or_none(choice.get("finish_reason")),
        usage=parse_usage(payload.get("usage")),
        model=_str_or_none(payload.get("model")),
    )


async def stream_chat(
    client: RelayClient,
    model: str,
    messages: Sequence[Message],
    *,
    timeout: httpx.Timeout = STREAM_TIMEOUT,  # noqa: ASYNC109 - read = gap between chunks
    **params: Any,
) -> AsyncGenerator[ChatDelta]:
    """Stream a chat completion as ChatDeltas, ending with the usage when the relay sends it.

    Raises the matching UpstreamError for an error in the stream and ProtocolError when it ends
    before `[DONE]`, each after yielding everything received until then. Closing the generator
    (or cancelling its task) closes the HTTP response. `timeout.read` is the longest allowed
    silence between two chunks.
    """
    body = _streaming_request_body(params, model=model, messages=list(messages))
    deltas = _stream_deltas(client, "chat_completions", body, timeout, _chat_text)
    async with aclosing(deltas):  # closing us must close the HTTP response now, not at GC
        async for delta in deltas:
            yield delta


async def complete(client: RelayClient, model: str, prompt: str, **params: Any) -> CompletionResult:
    """One non-streamed legacy completion (POST /v1/completions)."""
    body = {**_without_stream(params), "model": model, "prompt": prompt}
    payload = await client._request_json("POST", "completions", json=body, timeout=LONG_TIMEOUT)
    choice = _first_choice(payload)
    return CompletionResult(
        text=_str_or_none(choice.get("text")) or "",
        finish_reason=_str_or_none(choice.get("finish_reason")),
        usage=parse_usage(payload.get("usage")),
    )


async def stream_complete(
    client: RelayClient,
    model: str,
    prompt: str,
    *,
    timeout: httpx.Timeout = STREAM_TIMEOUT,  # noqa: ASYNC109 - read = gap between chunks
    **params: Any,
) -> AsyncGenerator[ChatDelta]:
    """Stream a legacy completion; same contract as `stream_chat`."""
    body = _streaming_request_body(params, model=model, prompt=prompt)
    deltas = _stream_deltas(client, "completions", body, timeout, _completion_text)
    async with aclosing(deltas):
        async for delta in deltas:
            yield delta


def _without_stream(params: Mapping[str, Any]) -> dict[str, Any]:
    # The non-streamed functions parse one JSON body; a stray stream=True would break that.
    return {key: value for key, value in params.items() if key not in ("stream", "stream_options")}


def _streaming_request_body(params: Mapping[str, Any], **required: Any) -> dict[str, Any]:
    stream_options = {"include_usage": True, **(params.get("stream_options") or {})}
    return {**params, **required, "stream": True, "stream_options": stream_options}


async def _stream_deltas(
    client: RelayClient,
    path_name: str,
    body: dict[str, Any],
    timeout: httpx.Timeout,  # noqa: ASYNC109 - httpx's per-phase limits
    text_of: TextOf,
) -> AsyncGenerator[ChatDelta]:
    async with client._stream("POST", path_name, json=body, timeout=timeout) as response:
        # aclosing: when our caller stops early, the generators are closed now, not at GC.
        async with (
            aclosing(client._stream_body(response)) as body_chunks,
            aclosing(iter_json_events(body_chunks)) as events,
        ):
            async for chunk in events:
                delta = _delta(chunk, text_of)
                if delta is not None:
                    yield delta


def _delta(chunk: Mapping[str, Any], text_of: TextOf) -> ChatDelta | None:
    """A ChatDelta, or None for a chunk that carries nothing (such as the role-only first one)."""
    choices = _list(chunk.get("choices"))
    choice = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    text = text_of(choice)
    finish_reason = _str_or_none(choice.get("finish_reason"))
    usage = parse_usage(chunk.get("usage"))
    if not text and finish_reason is None and usage is None:
        return None
    return ChatDelta(text=text, finish_reason=finish_reason, usage=usage)


def _chat_text(choice: Mapping[str, Any]) -> str:
    delta = choice.get("delta")
    return _content_text(delta.get("content")) if isinstance(delta, Mapping) else ""


def _completion_text(choice: Mapping[str, Any]) -> str:
    return _str_or_none(choice.get("text")) or ""


def _first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = _list(payload.get("choices"))
    if not choices or not isinstance(choices[0], Mapping):
        raise ProtocolError("the reply has no choices")
    return choices[0]


def _content_text(content: Any) -> str:
    """Message content is a string, or (from some providers) a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, Mapping) and part.get("type") in (None, "text", "output_text")
        )
    return ""


# --- images and embeddings ------------------------------------------------------------------


async def generate_images(
    client: RelayClient,
    model: str,
    prompt: str,
    *,
    n: int = 1,
    size: str | None = None,
    quality: str | None = None,
    style: str | None = None,
    response_format: str | None = None,
) -> list[GeneratedImage]:
    """Generate images (POST /v1/images/generations). URLs expire in about an hour."""
    optional = {
        "size": size,
        "quality": quality,
        "style": style,
        "response_format": response_format,
    }
    body = {"model": model, "prompt": prompt, "n": n}
    body.update({key: value for key, value in optional.items() if value is not None})
    payload = await client._request_json(
        "POST", "images_generations", json=body, timeout=MEDIA_TIMEOUT
    )
    images = [
        GeneratedImage(
            url=_str_or_none(entry.get("url")),
            b64_json=_str_or_none(entry.get("b64_json")),
            revised_prompt=_str_or_none(entry.get("revised_prompt")),
        )
        for entry in _list(payload.get("data"))
        if isinstance(entry, Mapping) and (entry.get("url") or entry.get("b64_json"))
    ]
    if not images:
        raise ProtocolError("the reply has no images")
    return images


async def embed(
    client: RelayClient, model: str, inputs: list[str], *, dimensions: int | None = None
) -> EmbeddingResult:
    """One vector per input, in input order (POST /v1/embeddings)."""
    body: dict[str, Any] = {"model": model, "input": inputs}
    if dimensions is not None:
        body["dimensions"] = dimensions
    payload = await client._request_json("POST", "embeddings", json=body, timeout=QUICK_TIMEOUT)
    entries = [entry for entry in _list(payload.get("data")) if isinstance(entry, Mapping)]
    entries.sort(key=lambda entry: _int(entry.get("index")))
    vectors = [_vector(entry.get("embedding")) for entry in entries]
    if len(vectors) != len(inputs):
        raise ProtocolError(f"asked for {len(inputs)} embeddings, got {len(vectors)}")
    return EmbeddingResult(
        vectors=vectors,
        model=_str_or_none(payload.get("model")),
        usage=parse_usage(payload.get("usage")),
    )


def _vector(value: Any) -> list[float]:
    if isinstance(value, list):
        try:
            return [float(number) for number in value]
        except (TypeError, ValueError):
            raise ProtocolError("an embedding holds something other than numbers") from None
    if isinstance(value, str):  # encoding_format=base64: little-endian float32
        try:
            floats = array.array("f", base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise ProtocolError("an embedding is neither numbers nor base64 floats") from None
        if sys.byteorder == "big":
            floats.byteswap()
        return floats.tolist()
    raise ProtocolError("an embedding is missing")


# --- audio ----------------------------------------------------------------------------------

_AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/L16",
}


async def speech(
    client: RelayClient,
    model: str,
    input: str,
    voice: str,
    *,
    response_format: str = "mp3",
    speed: float | None = None,
) -> AudioResult:
    """Text to speech (POST /v1/audio/speech). Returns audio bytes, never an error body."""
    body: dict[str, Any] = {
        "model": model,
        "input": input,
        "voice": voice,
        "response_format": response_format,
    }
    if speed is not None:
        body["speed"] = speed
    response = await client._request("POST", "audio_speech", json=body, timeout=MEDIA_TIMEOUT)
    content_type = _media_type(response)
    if content_type == "application/json" or content_type.endswith("+json"):
        payload = _loads(response.text)
        if isinstance(payload, Mapping) and payload.get("error"):
            raise error_from_payload(
                payload, status=response.status_code, secret=client.credentials.api_key
            )
        raise ProtocolError("expected audio, got JSON", status=response.status_code)
    if content_type.startswith("text/"):
        raise ProtocolError(
            f"expected audio, got {content_type}: {body_excerpt(response.text)}",
            status=response.status_code,
        )
    if not response.content:
        raise ProtocolError("the audio reply is empty", status=response.status_code)
    fallback = _AUDIO_TYPES.get(response_format, "application/octet-stream")
    return AudioResult(content=response.content, content_type=content_type or fallback)


async def transcribe(
    client: RelayClient,
    file_name: str,
    file_bytes: bytes,
    content_type: str,
    *,
    model: str = "whisper-1",
    language: str | None = None,
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float | None = None,
) -> TranscriptionResult:
    """Speech to text in its own language (POST /v1/audio/transcriptions, multipart).

    json / verbose_json come back as JSON; text, srt and vtt as a plain body, kept as is.
    """
    return await _audio_to_text(
        client,
        "audio_transcriptions",
        (file_name, file_bytes, content_type),
        {
            "model": model,
            "language": language,
            "prompt": prompt,
            "response_format": response_format,
            "temperature": temperature,
        },
    )


async def translate(
    client: RelayClient,
    file_name: str,
    file_bytes: bytes,
    content_type: str,
    *,
    model: str = "whisper-1",
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float | None = None,
) -> TranscriptionResult:
    """Speech to English text (POST /v1/audio/translations, multipart); see `transcribe`."""
    return await _audio_to_text(
        client,
        "audio_translations",
        (file_name, file_bytes, content_type),
        {
            "model": model,
            "prompt": prompt,
            "response_format": response_format,
            "temperature": temperature,
        },
    )


async def _audio_to_text(
    client: RelayClient,
    path_name: str,
    upload: tuple[str, bytes, str],
    fields: Mapping[str, Any],
) -> TranscriptionResult:
    form = {key: str(value) for key, value in fields.items() if value is not None}
    response_format = form["response_format"]
    response = await client._request(
        "POST", path_name, files={"file": upload}, data=form, timeout=MEDIA_TIMEOUT
    )
    raw = response.text
    wants_json = response_format in ("json", "verbose_json")
    # Some relays answer JSON whatever format was asked for; take the text out of it then.
    payload = _loads(raw) if wants_json or _media_type(response) == "application/json" else None
    if isinstance(payload, Mapping):
        if payload.get("error"):
            raise error_from_payload(
                payload, status=response.status_code, secret=client.credentials.api_key
            )
        if "text" in payload:
            return TranscriptionResult(
                text=str(payload.get("text") or ""),
                raw=raw,
                response_format=response_format,
                language=_str_or_none(payload.get("language")),
                duration=_float_or_none(payload.get("duration")),
            )
    if wants_json:
        raise ProtocolError(
            f"expected a JSON transcript, got: {body_excerpt(raw)}", status=response.status_code
        )
    if _media_type(response) == "text/html":
        raise ProtocolError(
            f"expected text, got HTML: {body_excerpt(raw)}", status=response.status_code
        )
    return TranscriptionResult(text=raw, raw=raw, response_format=response_format)


# --- lenient readers ------------------------------------------------------------------------


def parse_usage(value: Any) -> Usage | None:
    """Token usage from a reply's `usage` object; None when absent. Missing counts are 0."""
    if not isinstance(value, Mapping):
        return None
    prompt = _int(value.get("prompt_tokens", value.get("input_tokens")))
    completion = _int(value.get("completion_tokens", value.get("output_tokens")))
    total = _int(value.get("total_tokens")) or prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value)


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
