"""RelayClient and the OpenAI family against a fake transport: what goes out, what comes back."""

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from django.test import override_settings

from studio.upstream import openai
from studio.upstream.client import (
    RelayClient,
    RelayCredentials,
    aclose_http_clients,
    get_http_client,
)
from studio.upstream.errors import (
    AuthError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
)
from studio.upstream.openai import ChatDelta, ModelInfo, Usage
from studio.upstream.paths import DEFAULT_PATHS, path

KEY = "sk-testSecret0123456789abcdEFGH"
SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 - the relay's own punctuation
BASE_URL = "https://relay.test"

Handler = Callable[[httpx.Request], httpx.Response]


class Relay:
    """A fake relay: records each request (body read) and answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return self.handler(request)

    def client(self, base_url: str = BASE_URL) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(base_url, KEY), http_client=http)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> dict:
        return json.loads(self.last.content)


class ChunkStream(httpx.AsyncByteStream):
    """A response body delivered in pieces; it may then fail, or hang until closed."""

    def __init__(
        self, chunks: list[bytes], *, then_raise: Exception | None = None, hang: bool = False
    ) -> None:
        self.chunks = chunks
        self.then_raise = then_raise
        self.hang = hang
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.then_raise is not None:
            raise self.then_raise
        if self.hang:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def reply(status: int = 200, body: object = None, **kwargs) -> Handler:
    return lambda request: httpx.Response(status, json=body, **kwargs)


def sse(*payloads: object) -> list[bytes]:
    return [
        f"data: {p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)}\n\n".encode()
        for p in payloads
    ]


def event_stream(stream: ChunkStream) -> Handler:
    return lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=stream
    )


def chat_chunk(content: str | None = None, finish: str | None = None, role: str | None = None):
    delta = {"role": role} if role else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"delta": delta, "finish_reason": finish}],
    }


USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
CHAT_STREAM = [
    chat_chunk(role="assistant"),
    chat_chunk("你"),
    chat_chunk("好"),
    chat_chunk("", finish="stop"),
    {"object": "chat.completion.chunk", "choices": [], "usage": USAGE},
    "[DONE]",
]


async def drain(stream: AsyncIterator[ChatDelta]) -> tuple[list[ChatDelta], Exception | None]:
    received: list[ChatDelta] = []
    try:
        async for delta in stream:
            received.append(delta)
    except Exception as exc:
        return received, exc
    return received, None


def read_timeout(request: httpx.Request) -> float:
    return request.extensions["timeout"]["read"]


# --- credentials, URLs, headers -------------------------------------------------------------


def test_credentials_and_client_repr_mask_the_key():
    credentials = RelayCredentials(BASE_URL, KEY)
    for text in (repr(credentials), str(credentials), repr(RelayClient(credentials))):
        assert KEY not in text
        assert "sk-…EFGH" in text


@pytest.mark.asyncio
async def test_list_models_sends_bearer_key_to_v1_models():
    relay = Relay(
        reply(
            body={
                "object": "list",
                "data": [
                    {"id": "gpt-4-all", "object": "model", "owned_by": "openai", "extra": 1},
                    {"id": "dall-e-3"},
                    {"object": "model"},
                ],
            }
        )
    )
    models = await openai.list_models(relay.client())
    assert models == [ModelInfo("gpt-4-all", "openai"), ModelInfo("dall-e-3", None)]
    assert relay.last.method == "GET"
    assert str(relay.last.url) == "https://relay.test/v1/models"
    assert relay.last.headers["authorization"] == f"Bearer {KEY}"
    assert read_timeout(relay.last) == 30
    assert relay.last.extensions["timeout"]["connect"] == 10


@pytest.mark.asyncio
async def test_base_url_with_a_path_prefix_and_trailing_slash():
    relay = Relay(reply(body={"data": []}))
    await openai.list_models(relay.client("https://relay.test/api/"))
    assert str(relay.last.url) == "https://relay.test/api/v1/models"


@pytest.mark.asyncio
async def test_path_override_from_settings_is_used():
    relay = Relay(reply(body={"data": []}))
    with override_settings(UPSTREAM_PATHS={"models": "/openai/v1/models"}):
        await openai.list_models(relay.client())
    assert relay.last.url.path == "/openai/v1/models"


def test_path_fills_placeholders_url_quoted():
    assert path("mj_fetch", id="1730621718151844") == "/mj/task/1730621718151844/fetch"
    assert path("luma_task", id="a/b c") == "/luma/generations/a%2Fb%20c"
    assert path("flux_get_result", id="x&y=1") == "/flux/v1/get_result?id=x%26y%3D1"


def test_path_override_with_placeholder_and_without_leading_slash():
    with override_settings(UPSTREAM_PATHS={"mj_fetch": "mj-relax/mj/task/{id}/fetch"}):
        assert path("mj_fetch", id="42") == "/mj-relax/mj/task/42/fetch"


def test_unknown_path_name_and_missing_placeholder_raise_key_error():
    with pytest.raises(KeyError):
        path("no_such_endpoint")
    with pytest.raises(KeyError):
        path("mj_fetch")


def test_every_default_path_is_absolute():
    assert all(template.startswith("/") for template in DEFAULT_PATHS.values())
    assert DEFAULT_PATHS["mj_swap_face"] == "/mj/insight-face/swap"
    assert DEFAULT_PATHS["chat_completions"] == "/v1/chat/completions"


# --- transport failures ---------------------------------------------------------------------


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.asyncio
async def test_connection_refused_is_unavailable_naming_the_host_not_the_key():
    relay = Relay(raising(httpx.ConnectError("[Errno 111] Connection refused")))
    with pytest.raises(UnavailableError) as caught:
        await openai.list_models(relay.client())
    assert "relay.test" in caught.value.message
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("base_url", ["", "relay.test", "http://[::1"])
async def test_unusable_base_url_is_unavailable(base_url):
    with pytest.raises(UnavailableError) as caught:
        await openai.list_models(Relay(reply(body={"data": []})).client(base_url))
    assert KEY not in str(caught.value)


@pytest.mark.asyncio
async def test_read_timeout_is_upstream_timeout():
    relay = Relay(raising(httpx.ReadTimeout("timed out")))
    with pytest.raises(UpstreamTimeout) as caught:
        await openai.chat(relay.client(), "gpt-4-all", [{"role": "user", "content": "draw"}])
    assert "300" in caught.value.message  # chat waits as long as a gpt-4-all drawing takes


@pytest.mark.asyncio
async def test_http_error_status_is_mapped_with_retry_after():
    relay = Relay(
        reply(
            429,
            {"error": {"message": SATURATED, "type": "new_api_error"}},
            headers={"Retry-After": "12"},
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        await openai.list_models(relay.client())
    assert caught.value.retry_after == 12
    assert caught.value.message == SATURATED


@pytest.mark.asyncio
async def test_non_json_success_body_is_protocol_error():
    relay = Relay(lambda request: httpx.Response(200, text="<html>login page</html>"))
    with pytest.raises(ProtocolError) as caught:
        await openai.list_models(relay.client())
    assert "login page" in caught.value.message


@pytest.mark.asyncio
async def test_error_object_in_a_200_reply_raises():
    relay = Relay(reply(body={"error": {"message": "该令牌额度已用尽", "type": "one_api_error"}}))
    with pytest.raises(QuotaError):
        await openai.list_models(relay.client())


# --- chat -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_sends_model_messages_and_params_and_parses_the_reply():
    relay = Relay(
        reply(
            body={
                "id": "chatcmpl-1",
                "model": "gpt-4-all",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "![img](https://f/a.png)"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            }
        )
    )
    messages = [{"role": "user", "content": "draw a cat"}]
    result = await openai.chat(relay.client(), "gpt-4-all", messages, temperature=0.2, stream=True)
    assert relay.last.url.path == "/v1/chat/completions"
    assert relay.last_json() == {"model": "gpt-4-all", "messages": messages, "temperature": 0.2}
    assert result.content == "![img](https://f/a.png)"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(9, 3, 12)
    assert result.model == "gpt-4-all"
    assert read_timeout(relay.last) == 300


@pytest.mark.asyncio
async def test_chat_tolerates_missing_usage_and_content_parts():
    relay = Relay(
        reply(
            body={
                "choices": [
                    {"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}
                ]
            }
        )
    )
    result = await openai.chat(relay.client(), "m", [])
    assert (result.content, result.finish_reason, result.usage, result.model) == (
        "ab",
        None,
        None,
        None,
    )


@pytest.mark.asyncio
async def test_chat_without_choices_is_protocol_error():
    relay = Relay(reply(body={"id": "x", "choices": []}))
    with pytest.raises(ProtocolError):
        await openai.chat(relay.client(), "m", [])


@pytest.mark.asyncio
async def test_stream_chat_request_and_deltas():
    relay = Relay(event_stream(ChunkStream([b": ping\n\n", *sse(*CHAT_STREAM)])))
    deltas, error = await drain(
        openai.stream_chat(relay.client(), "gpt-4o", [{"role": "user", "content": "hi"}], seed=1)
    )
    assert error is None
    assert deltas == [
        ChatDelta("你"),
        ChatDelta("好"),
        ChatDelta("", finish_reason="stop"),
        ChatDelta("", usage=Usage(9, 3, 12)),
    ]
    body = relay.last_json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["model"], body["seed"]) == ("gpt-4o", 1)
    assert read_timeout(relay.last) == 60  # the longest gap between two chunks


@pytest.mark.asyncio
async def test_stream_chat_split_inside_a_character():
    data = b"".join(sse(*CHAT_STREAM))
    pieces = [data[i : i + 5] for i in range(0, len(data), 5)]
    deltas, error = await drain(
        openai.stream_chat(Relay(event_stream(ChunkStream(pieces))).client(), "m", [])
    )
    assert error is None
    assert "".join(d.text for d in deltas) == "你好"


@pytest.mark.asyncio
async def test_stream_chat_error_status_before_the_stream():
    relay = Relay(reply(401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}))
    deltas, error = await drain(openai.stream_chat(relay.client(), "m", []))
    assert deltas == []
    assert isinstance(error, AuthError)
    assert error.message == "无效的令牌"


@pytest.mark.asyncio
async def test_stream_chat_error_mid_stream_after_earlier_text():
    stream = ChunkStream(
        sse(
            chat_chunk("partial"), {"error": {"message": "upstream died", "type": "upstream_error"}}
        )
    )
    deltas, error = await drain(openai.stream_chat(Relay(event_stream(stream)).client(), "m", []))
    assert [d.text for d in deltas] == ["partial"]
    assert isinstance(error, UnavailableError)
    assert error.message == "upstream died"


@pytest.mark.asyncio
async def test_stream_chat_ending_before_done_keeps_text_then_raises():
    stream = ChunkStream(sse(chat_chunk("kept"), chat_chunk(" all")))
    deltas, error = await drain(openai.stream_chat(Relay(event_stream(stream)).client(), "m", []))
    assert "".join(d.text for d in deltas) == "kept all"
    assert isinstance(error, ProtocolError)


@pytest.mark.asyncio
async def test_stream_chat_connection_dropped_mid_body_keeps_text_then_raises():
    stream = ChunkStream(
        sse(chat_chunk("kept")),
        then_raise=httpx.RemoteProtocolError(
            "peer closed connection without sending complete body"
        ),
    )
    deltas, error = await drain(openai.stream_chat(Relay(event_stream(stream)).client(), "m", []))
    assert [d.text for d in deltas] == ["kept"]
    assert isinstance(error, ProtocolError)
    assert "[DONE]" in error.message


@pytest.mark.asyncio
async def test_stream_chat_read_timeout_between_chunks_is_upstream_timeout():
    stream = ChunkStream(sse(chat_chunk("first")), then_raise=httpx.ReadTimeout("timed out"))
    deltas, error = await drain(openai.stream_chat(Relay(event_stream(stream)).client(), "m", []))
    assert [d.text for d in deltas] == ["first"]
    assert isinstance(error, UpstreamTimeout)
    assert stream.closed


@pytest.mark.asyncio
async def test_cancelling_the_consumer_closes_the_http_response():
    stream = ChunkStream(sse(chat_chunk("first")), hang=True)
    client = Relay(event_stream(stream)).client()
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _delta in openai.stream_chat(client, "m", []):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed


@pytest.mark.asyncio
async def test_closing_the_generator_closes_the_http_response():
    stream = ChunkStream(sse(chat_chunk("first")), hang=True)
    deltas = openai.stream_chat(Relay(event_stream(stream)).client(), "m", [])
    assert (await anext(deltas)).text == "first"
    await deltas.aclose()
    assert stream.closed


# --- completions ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_complete():
    relay = Relay(
        reply(
            body={
                "object": "text_completion",
                "choices": [
                    {"text": " world", "index": 0, "logprobs": None, "finish_reason": "length"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2},
            }
        )
    )
    result = await openai.complete(relay.client(), "gpt-3.5-turbo-instruct", "hello", max_tokens=2)
    assert relay.last.url.path == "/v1/completions"
    assert relay.last_json() == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "hello",
        "max_tokens": 2,
    }
    assert (result.text, result.finish_reason) == (" world", "length")
    assert result.usage == Usage(1, 2, 3)


@pytest.mark.asyncio
async def test_stream_complete_reads_choice_text():
    chunks = sse(
        {"choices": [{"text": "Once", "finish_reason": None}]},
        {"choices": [{"text": " upon", "finish_reason": "stop"}]},
        "[DONE]",
    )
    relay = Relay(event_stream(ChunkStream(chunks)))
    deltas, error = await drain(openai.stream_complete(relay.client(), "m", "Tell"))
    assert error is None
    assert deltas == [ChatDelta("Once"), ChatDelta(" upon", finish_reason="stop")]
    assert relay.last.url.path == "/v1/completions"
    assert relay.last_json()["prompt"] == "Tell"


# --- images and embeddings ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generate_images_sends_only_given_options():
    relay = Relay(
        reply(
            body={
                "created": 1,
                "data": [{"url": "https://f/1.png", "revised_prompt": "a red cat"}],
            }
        )
    )
    images = await openai.generate_images(
        relay.client(), "dall-e-3", "a cat", size="1792x1024", quality="hd"
    )
    assert relay.last.url.path == "/v1/images/generations"
    assert relay.last_json() == {
        "model": "dall-e-3",
        "prompt": "a cat",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
    }
    assert images == [openai.GeneratedImage("https://f/1.png", None, "a red cat")]
    assert read_timeout(relay.last) == 120


@pytest.mark.asyncio
async def test_generate_images_b64_and_empty_reply():
    relay = Relay(reply(body={"data": [{"b64_json": "aGk="}]}))
    images = await openai.generate_images(relay.client(), "m", "p", response_format="b64_json")
    assert images[0].b64_json == "aGk=" and images[0].url is None
    empty = Relay(reply(body={"created": 1, "data": []}))
    with pytest.raises(ProtocolError):
        await openai.generate_images(empty.client(), "m", "p")


@pytest.mark.asyncio
async def test_embed_orders_vectors_by_index():
    relay = Relay(
        reply(
            body={
                "data": [
                    {"index": 1, "embedding": [0.5, 1]},
                    {"index": 0, "embedding": [0.25, -1]},
                ],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        )
    )
    result = await openai.embed(relay.client(), "text-embedding-3-small", ["a", "b"], dimensions=2)
    assert relay.last_json() == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "dimensions": 2,
    }
    assert result.vectors == [[0.25, -1.0], [0.5, 1.0]]
    assert result.usage == Usage(4, 0, 4)


@pytest.mark.asyncio
async def test_embed_accepts_base64_floats():
    packed = base64.b64encode(struct.pack("<2f", 0.5, -2.0)).decode()
    relay = Relay(reply(body={"data": [{"index": 0, "embedding": packed}]}))
    result = await openai.embed(relay.client(), "m", ["a"])
    assert result.vectors == [[0.5, -2.0]]


# --- audio ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_speech_returns_audio_bytes():
    relay = Relay(
        lambda request: httpx.Response(
            200, headers={"content-type": "audio/mpeg"}, content=b"ID3.."
        )
    )
    audio = await openai.speech(relay.client(), "tts-1", "你好", "alloy", speed=1.5)
    assert relay.last.url.path == "/v1/audio/speech"
    assert relay.last_json() == {
        "model": "tts-1",
        "input": "你好",
        "voice": "alloy",
        "response_format": "mp3",
        "speed": 1.5,
    }
    assert audio == openai.AudioResult(b"ID3..", "audio/mpeg")


@pytest.mark.asyncio
async def test_speech_error_status_with_json_body_raises():
    relay = Relay(reply(403, {"error": {"message": "用户额度不足", "type": "new_api_error"}}))
    with pytest.raises(QuotaError):
        await openai.speech(relay.client(), "tts-1", "hi", "alloy")


@pytest.mark.asyncio
async def test_speech_json_error_body_with_200_is_never_audio():
    relay = Relay(reply(200, {"error": {"message": "bad voice", "type": "invalid_request_error"}}))
    with pytest.raises(UpstreamError) as caught:
        await openai.speech(relay.client(), "tts-1", "hi", "nobody")
    assert caught.value.message == "bad voice"


@pytest.mark.asyncio
async def test_speech_html_or_empty_body_is_protocol_error():
    html = Relay(lambda request: httpx.Response(200, html="<title>Login</title>"))
    with pytest.raises(ProtocolError):
        await openai.speech(html.client(), "tts-1", "hi", "alloy")
    empty = Relay(lambda request: httpx.Response(200, headers={"content-type": "audio/mpeg"}))
    with pytest.raises(ProtocolError):
        await openai.speech(empty.client(), "tts-1", "hi", "alloy")


@pytest.mark.asyncio
async def test_transcribe_json_sends_multipart_form():
    relay = Relay(reply(body={"text": "你好世界"}))
    result = await openai.transcribe(
        relay.client(), "clip.mp3", b"\xff\xfbaudio", "audio/mpeg", language="zh", temperature=0
    )
    body = relay.last.content
    assert relay.last.url.path == "/v1/audio/transcriptions"
    assert relay.last.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="clip.mp3"' in body and b"\xff\xfbaudio" in body
    assert b'name="model"\r\n\r\nwhisper-1' in body
    assert b'name="language"\r\n\r\nzh' in body
    assert b'name="temperature"\r\n\r\n0' in body
    assert b'name="prompt"' not in body
    assert result.text == "你好世界"
    assert result.response_format == "json"


@pytest.mark.asyncio
async def test_transcribe_verbose_json_gives_language_and_duration():
    relay = Relay(
        reply(body={"task": "transcribe", "language": "chinese", "duration": "3.5", "text": "嗨"})
    )
    result = await openai.transcribe(
        relay.client(), "a.wav", b"x", "audio/wav", response_format="verbose_json"
    )
    assert (result.text, result.language, result.duration) == ("嗨", "chinese", 3.5)


@pytest.mark.asyncio
async def test_transcribe_srt_is_plain_text():
    srt = "1\n00:00:00,000 --> 00:00:01,000\n你好\n"
    relay = Relay(lambda request: httpx.Response(200, text=srt))
    result = await openai.transcribe(
        relay.client(), "a.wav", b"x", "audio/wav", response_format="srt"
    )
    assert b'name="response_format"\r\n\r\nsrt' in relay.last.content
    assert result.text == srt and result.raw == srt


@pytest.mark.asyncio
async def test_transcribe_json_format_with_text_body_is_protocol_error():
    relay = Relay(lambda request: httpx.Response(200, text="plain words"))
    with pytest.raises(ProtocolError):
        await openai.transcribe(relay.client(), "a.wav", b"x", "audio/wav")


@pytest.mark.asyncio
async def test_translate_posts_to_translations_without_language():
    relay = Relay(reply(body={"text": "Hello"}))
    result = await openai.translate(relay.client(), "a.mp3", b"x", "audio/mpeg", prompt="greeting")
    assert relay.last.url.path == "/v1/audio/translations"
    assert b'name="language"' not in relay.last.content
    assert b'name="prompt"\r\n\r\ngreeting' in relay.last.content
    assert result.text == "Hello"


# --- the shared pooled client ---------------------------------------------------------------


def test_one_shared_client_per_event_loop():
    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return get_http_client(), get_http_client()

    async def grab_and_close() -> httpx.AsyncClient:
        client = get_http_client()
        await aclose_http_clients()
        return client

    first, again = asyncio.run(grab())
    other, _ = asyncio.run(grab())
    assert first is again
    assert other is not first
    assert asyncio.run(grab_and_close()).is_closed


# --- the same endpoints as RelayClient methods ----------------------------------------------
