"""studio.upstream against the simulator over real HTTP: two independent readings of the protocol
(they share no code) must agree."""

import io
import wave

import httpx
import pytest
from PIL import Image

from studio.upstream import (
    AuthError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    RelayClient,
    RelayCredentials,
    UnavailableError,
    UpstreamTimeout,
    openai,
)
from tests.simulator_fixture import NOQUOTA_KEY

pytestmark = pytest.mark.asyncio


def relay(simulator, key=None) -> RelayClient:
    return RelayClient(RelayCredentials(base_url=simulator.url, api_key=key or simulator.key))


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def collect(stream) -> tuple[str, list]:
    text, deltas = "", []
    async for delta in stream:
        text += delta.text
        deltas.append(delta)
    return text, deltas


async def test_streamed_chat_matches_the_non_streamed_reply(simulator):
    client = relay(simulator)
    whole = await openai.chat(client, "gpt-4o", user("hello [[tokens=30]]"))
    text, deltas = await collect(openai.stream_chat(client, "gpt-4o", user("hello [[tokens=30]]")))
    assert text == whole.content
    assert len(deltas) > 5  # it really streamed
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens > 0
    assert any(delta.finish_reason == "stop" for delta in deltas)


async def test_gpt4_all_reply_carries_a_downloadable_image(simulator):
    reply = await openai.chat(relay(simulator), "gpt-4-all", user("draw a cat"))
    url = reply.content.split("](", 1)[1].split(")", 1)[0]
    async with httpx.AsyncClient() as http:
        image = await http.get(url)
    assert Image.open(io.BytesIO(image.content)).format == "PNG"


async def test_a_stream_cut_before_done_keeps_the_text_so_far(simulator):
    received = ""
    with pytest.raises(ProtocolError):
        async for delta in openai.stream_chat(relay(simulator), "gpt-4o", user("hi [[die]]")):
            received += delta.text
    assert received  # what arrived before the cut is not lost


async def test_an_error_in_the_middle_of_a_stream(simulator):
    received = ""
    with pytest.raises(UnavailableError):
        stream = openai.stream_chat(relay(simulator), "gpt-4o", user("hi [[error:midstream]]"))
        async for delta in stream:
            received += delta.text
    assert received


async def test_rate_limit_keeps_the_chinese_message_and_retry_after(simulator):
    with pytest.raises(RateLimitedError) as caught:
        await openai.chat(relay(simulator), "gpt-4o", user("[[error:429]]"))
    assert "饱和" in caught.value.message
    assert caught.value.retry_after == 7


async def test_no_channel_is_unavailable(simulator):
    with pytest.raises(UnavailableError) as caught:
        await openai.chat(relay(simulator), "gpt-4o", user("[[error:503]]"))
    assert "no available channel" in caught.value.message


async def test_html_error_page_is_read_as_an_error_not_a_crash(simulator):
    with pytest.raises(UnavailableError) as caught:
        await openai.chat(relay(simulator), "gpt-4o", user("[[error:500-html]]"))
    assert caught.value.status == 502


async def test_wrong_key_and_empty_quota(simulator):
    with pytest.raises(AuthError) as caught:
        await openai.list_models(relay(simulator, "sk-not-a-real-key"))
    assert "无效的令牌" in caught.value.message
    assert "sk-not-a-real-key" not in str(caught.value)
    with pytest.raises(QuotaError):
        await openai.list_models(relay(simulator, NOQUOTA_KEY))


async def test_silence_between_chunks_longer_than_the_read_timeout(simulator):
    timeout = httpx.Timeout(connect=5, read=0.5, write=5, pool=5)
    with pytest.raises(UpstreamTimeout):
        stream = openai.stream_chat(
            relay(simulator), "gpt-4o", user("hi [[sleep=3]]"), timeout=timeout
        )
        await collect(stream)


async def test_streamed_completion(simulator):
    text, _ = await collect(
        openai.stream_complete(relay(simulator), "gpt-3.5-turbo-instruct", "Say hi", max_tokens=8)
    )
    assert text.strip()


async def test_dalle_image_is_a_real_png_of_the_requested_size(simulator):
    images = await openai.generate_images(
        relay(simulator), "dall-e-3", "a lighthouse", size="1792x1024"
    )
    assert images[0].revised_prompt
    async with httpx.AsyncClient() as http:
        png = (await http.get(images[0].url)).content
    assert Image.open(io.BytesIO(png)).size == (1792, 1024)


async def test_embeddings_honour_dimensions(simulator):
    result = await openai.embed(
        relay(simulator), "text-embedding-3-small", ["one", "two"], dimensions=64
    )
    assert [len(vector) for vector in result.vectors] == [64, 64]
    assert result.vectors[0] != result.vectors[1]


async def test_speech_is_playable_audio_and_transcription_reads_it_back(simulator):
    audio = await openai.speech(relay(simulator), "tts-1", "Hello there", "alloy")
    with wave.open(io.BytesIO(audio.content)) as sound:
        assert sound.getnframes() > 0
    plain = await openai.transcribe(
        relay(simulator), "hello.wav", audio.content, audio.content_type, response_format="text"
    )
    structured = await openai.transcribe(
        relay(simulator), "hello.wav", audio.content, audio.content_type, response_format="json"
    )
    assert plain.text.strip() and plain.text.strip() == structured.text.strip()
    srt = await openai.translate(
        relay(simulator), "hello.wav", audio.content, audio.content_type, response_format="srt"
    )
    assert "-->" in srt.raw
