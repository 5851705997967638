"""Server-Sent Events, parsed incrementally from raw bytes as they arrive.

`SSEParser` knows nothing about HTTP: network chunks may end anywhere, in the middle of a line
or of a multi-byte UTF-8 character, and it only hands out whole events. `iter_json_events`
adds the relay's conventions on top: JSON payloads, `data: [DONE]` at the end, error objects
in the middle of a stream, and a stream that stops before `[DONE]`.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from typing import Any

from studio.upstream.errors import ProtocolError, UnavailableError, error_from_payload

logger = logging.getLogger(__name__)

DONE_MARKER = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its `data` lines joined with "\\n", and its `event:` type if any."""

    data: str
    event: str | None = None


class SSEParser:
    """Incremental parser following the WHATWG event-stream rules (minus `id:` and `retry:`).

    Feed it byte chunks as they come; each call returns the events completed by that chunk.
    """

    def __init__(self) -> None:
        # errors="replace": a stray invalid byte must not kill a long generation.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text after the last complete line
        self._data: list[str] = []
        self._event: str | None = None
        self._has_data = False
        self._at_start = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse `chunk`; return the events whose terminating blank line it contained."""
        return self._consume(self._decoder.decode(chunk), final=False)

    def close(self) -> list[SSEEvent]:
        """The stream ended: flush what is left, including an event missing its blank line.

        The standard would drop such an event; relays that end with `data: [DONE]` and no
        blank line exist, and a last complete `data:` line is worth keeping on a cut stream.
        """
        events = self._consume(self._decoder.decode(b"", final=True), final=True)
        dispatched = self._dispatch()
        return [*events, dispatched] if dispatched else events

    def _consume(self, text: str, *, final: bool) -> list[SSEEvent]:
        if self._at_start and text:
            text = text.removeprefix("\ufeff")
            self._at_start = False
        buffer = self._pending + text
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = _find_line_end(buffer, start)
            if end < 0:
                break
            line = buffer[start:end]
            if buffer[end] == "\r":
                if end + 1 == len(buffer) and not final:
                    break  # a "\r" at the end may be the first half of "\r\n": wait
                start = end + 2 if buffer.startswith("\r\n", end) else end + 1
            else:
                start = end + 1
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        self._pending = buffer[start:]
        if final and self._pending:
            event = self._process_line(self._pending)
            self._pending = ""
            if event is not None:
                events.append(event)
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment, typically a keep-alive such as ": ping"
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        event = SSEEvent("\n".join(self._data), self._event or None) if self._has_data else None
        self._data = []
        self._event = None
        self._has_data = False
        return event


def _find_line_end(buffer: str, start: int) -> int:
    newline = buffer.find("\n", start)
    carriage = buffer.find("\r", start)
    if carriage < 0:
        return newline
    if newline < 0:
        return carriage
    return min(newline, carriage)


async def iter_json_events(
    byte_chunks: AsyncIterable[bytes],
) -> AsyncGenerator[dict[str, Any]]:
    """Yield each JSON object of an OpenAI-style event stream until `data: [DONE]`.

    Data that is not a JSON object (keep-alives, empty `data:` lines) is skipped. An error
    object in the stream raises the matching UpstreamError, and a stream that ends without
    `[DONE]` raises ProtocolError — in both cases only after every earlier object was yielded,
    so a caller keeps the text received so far.
    """
    parser = SSEParser()
    async for chunk in byte_chunks:
        for event in parser.feed(chunk):
            if _is_done(event):
                return
            payload = _json_payload(event)
            if payload is not None:
                yield payload
    for event in parser.close():
        if _is_done(event):
            return
        payload = _json_payload(event)
        if payload is not None:
            yield payload
    raise ProtocolError("stream ended before [DONE]")


def _is_done(event: SSEEvent) -> bool:
    return event.data.strip() == DONE_MARKER


def _json_payload(event: SSEEvent) -> dict[str, Any] | None:
    """The event's JSON object; raises for an error event; None for anything else."""
    try:
        payload = json.loads(event.data) if event.data.strip() else None
    except ValueError:
        payload = None
    if event.event == "error":
        if isinstance(payload, dict):
            raise error_from_payload(payload)
        raise UnavailableError(event.data.strip() or "error event in stream")
    if not isinstance(payload, dict):
        if event.data.strip():
            logger.debug("Skipping non-JSON stream data: %.80r", event.data)
        return None
    if payload.get("error"):
        raise error_from_payload(payload)
    return payload
