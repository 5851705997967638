"""The SSE parser and the JSON event stream on top of it, fed the way networks deliver bytes."""

import json
from collections.abc import AsyncIterator, Iterable

import pytest

from studio.upstream.errors import (
    BadRequestError,
    ProtocolError,
    QuotaError,
    UnavailableError,
)
from studio.upstream.sse import SSEEvent, SSEParser, iter_json_events


def parse_all(chunks: Iterable[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def chunk_event(text: str) -> bytes:
    payload = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": text}}]}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def from_chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def collect(stream: AsyncIterator[dict]) -> tuple[list[dict], Exception | None]:
    """Everything the stream yielded, and the error it ended with (if any)."""
    received: list[dict] = []
    try:
        async for item in stream:
            received.append(item)
    except Exception as exc:
        return received, exc
    return received, None


def texts(payloads: list[dict]) -> list[str]:
    return [p["choices"][0]["delta"]["content"] for p in payloads if p.get("choices")]


# --- SSEParser ------------------------------------------------------------------------------


def test_event_is_dispatched_only_at_the_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: hel") == []
    assert parser.feed(b"lo\n") == []
    assert parser.feed(b"\n") == [SSEEvent("hello")]


def test_chunk_split_inside_a_multibyte_character():
    data = "data: 你好\n\n".encode()
    cut = data.index("你".encode()) + 1  # in the middle of the first character
    assert parse_all([data[:cut], data[cut:]]) == [SSEEvent("你好")]


def test_one_byte_at_a_time_gives_the_same_events_as_all_at_once():
    stream = (
        ": ping\r\n\r\n"
        'event: message\r\ndata: {"a": "你好世界"}\r\n\r\n'
        "data: line one\ndata: line two\n\n"
        "data:\n\n"
        "data: 🎉 emoji\r\rdata: [DONE]\n\n"
    ).encode()
    whole = parse_all([stream])
    assert parse_all(one_byte_at_a_time(stream)) == whole
    assert whole == [
        SSEEvent('{"a": "你好世界"}', "message"),
        SSEEvent("line one\nline two"),
        SSEEvent(""),
        SSEEvent("🎉 emoji"),
        SSEEvent("[DONE]"),
    ]


def test_crlf_line_endings():
    assert parse_all([b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"]) == [
        SSEEvent("a\nb"),
        SSEEvent("c"),
    ]


def test_cr_split_from_its_lf_across_chunks_is_one_line_ending():
    # "\r" then "\n" in the next chunk must not count as two line endings (= a blank line).
    assert parse_all([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent("a\nb")]


def test_comment_keep_alives_are_ignored():
    assert parse_all([b": ping\n\n: keep-alive\ndata: x\n\n:\n\n"]) == [SSEEvent("x")]


def test_empty_data_line_is_an_event_with_empty_data():
    assert parse_all([b"data:\n\n"]) == [SSEEvent("")]


def test_only_one_space_after_the_colon_is_stripped():
    assert parse_all([b"data:  two spaces\ndata:none\n\n"]) == [SSEEvent(" two spaces\nnone")]


def test_byte_order_mark_at_start_is_dropped():
    assert parse_all([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [SSEEvent("x")]


def test_close_flushes_a_last_event_without_its_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.close() == [SSEEvent("[DONE]")]


def test_lines_without_data_dispatch_nothing():
    assert parse_all([b"event: ping\n\nid: 7\nretry: 1000\n\n"]) == []


# --- iter_json_events -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_json_events_until_done_skipping_keep_alives():
    stream = iter_json_events(
        from_chunks(
            b": ping\n\n",
            chunk_event("Hel"),
            b"data:\n\n",
            b"data: not json\n\n",
            chunk_event("lo"),
            b"data: [DONE]\n\n",
            chunk_event("after done is ignored"),
        )
    )
    received, error = await collect(stream)
    assert error is None
    assert texts(received) == ["Hel", "lo"]


@pytest.mark.asyncio
async def test_json_split_mid_line_and_mid_character():
    data = chunk_event("你好") + b"data: [DONE]\n\n"
    received, error = await collect(iter_json_events(from_chunks(*one_byte_at_a_time(data))))
    assert error is None
    assert texts(received) == ["你好"]


@pytest.mark.asyncio
async def test_usage_only_final_chunk_is_yielded():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    final = f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
    received, error = await collect(
        iter_json_events(from_chunks(chunk_event("hi"), final, b"data: [DONE]\n\n"))
    )
    assert error is None
    assert received[-1] == {"choices": [], "usage": usage}


@pytest.mark.asyncio
async def test_error_object_mid_stream_raises_after_earlier_chunks():
    quota = {"error": {"message": "额度不足", "type": "insufficient_quota", "code": None}}
    error_event = f"data: {json.dumps(quota, ensure_ascii=False)}\n\n".encode()
    received, error = await collect(
        iter_json_events(from_chunks(chunk_event("partial "), error_event, chunk_event("never")))
    )
    assert texts(received) == ["partial "]
    assert isinstance(error, QuotaError)
    assert error.message == "额度不足"
    assert error.relay_code == "insufficient_quota"


@pytest.mark.asyncio
async def test_upstream_failure_mid_stream_is_unavailable():
    event = b'data: {"error": {"message": "upstream failed", "type": "upstream_error"}}\n\n'
    _, error = await collect(iter_json_events(from_chunks(chunk_event("a"), event)))
    assert isinstance(error, UnavailableError)
    assert error.status is None


@pytest.mark.asyncio
async def test_invalid_request_mid_stream_is_bad_request():
    event = b'data: {"error": {"message": "bad tool", "type": "invalid_request_error"}}\n\n'
    _, error = await collect(iter_json_events(from_chunks(event)))
    assert isinstance(error, BadRequestError)


@pytest.mark.asyncio
async def test_named_error_event_raises():
    _, error = await collect(
        iter_json_events(from_chunks(b"event: error\ndata: channel exploded\n\n"))
    )
    assert isinstance(error, UnavailableError)
    assert error.message == "channel exploded"


@pytest.mark.asyncio
async def test_cut_before_done_keeps_earlier_chunks_then_raises_protocol_error():
    received, error = await collect(
        iter_json_events(from_chunks(chunk_event("kept "), chunk_event("too"), b'data: {"cho'))
    )
    assert texts(received) == ["kept ", "too"]
    assert isinstance(error, ProtocolError)
    assert "before [DONE]" in error.message


@pytest.mark.asyncio
async def test_cut_after_a_complete_data_line_still_yields_it():
    last = chunk_event("last")[:-1]  # the blank line never arrived
    received, error = await collect(iter_json_events(from_chunks(chunk_event("a"), last)))
    assert texts(received) == ["a", "last"]
    assert isinstance(error, ProtocolError)


@pytest.mark.asyncio
async def test_done_without_trailing_blank_line_ends_cleanly():
    received, error = await collect(
        iter_json_events(from_chunks(chunk_event("a"), b"data: [DONE]\n"))
    )
    assert error is None
    assert texts(received) == ["a"]
