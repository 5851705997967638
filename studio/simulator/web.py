"""Minimal ASGI plumbing: the request object, responses, error envelopes and an SSE writer.

Written by hand (no framework) so the simulator stays a plain ASGI 3 app with no dependencies
beyond what the project already pins, and so every byte on the wire is under our control:
the point of the simulator is to reproduce the relay's exact shapes, including the broken ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 64 * 1024 * 1024  # the relay caps uploads too; this only guards the simulator's memory


class BadRequestBody(Exception):
    """The body could not be parsed (the relay answers bind_request_body_failed)."""


def request_id() -> str:
    # new-api request ids: a timestamp followed by random characters.
    alphabet = string.ascii_letters + string.digits
    return time.strftime("%Y%m%d%H%M%S") + "".join(secrets.choice(alphabet) for _ in range(8))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(status, body, "application/json; charset=utf-8", list(headers or []))


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "new_api_error",
    code: str | None = None,
    param: str = "",
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """The §2.1 envelope. The relay appends its request id to every message it writes."""
    rid = request_id()
    payload = {
        "error": {
            "message": f"{message} (request id: {rid})",
            "type": type_,
            "param": param,
            "code": code,
        }
    }
    return json_response(payload, status, [("X-Oneapi-Request-Id", rid), *(headers or [])])


def mj_wrapper_error(description: str, status: int = 400, code: int = 4) -> Response:
    """The §2.3 envelope the relay uses when it rejects an MJ call itself."""
    return json_response(
        {"description": description, "type": "upstream_error", "code": code}, status
    )


def mj_result(
    code: int,
    description: str,
    result: str | None = None,
    properties: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The §2.2 submit-result envelope (HTTP 200 even for codes 3/4/23/24, like the proxy)."""
    return json_response(
        {
            "code": code,
            "description": description,
            "result": result,
            "properties": properties or {},
        },
        status,
    )


def html_error(status: int, title: str) -> Response:
    # What an nginx in front of a sick relay sends: HTML, not JSON.
    body = (
        f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(status, body.encode(), "text/html")


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    receive: Receive
    send: Send
    params: dict[str, str] = field(default_factory=dict)
    token: str = ""
    started: bool = False  # a streaming handler already sent the response head

    async def sleep(self, seconds: float) -> None:
        """Sleep, but give up (raise ClientGone) as soon as the client disconnects.

        Without this a client that times out leaves a handler asleep until daphne kills it
        (with a warning) after its application close timeout.
        """
        if seconds <= 0:
            return
        waiter = asyncio.ensure_future(self._wait_disconnect())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=seconds)
        except TimeoutError:
            return
        finally:
            waiter.cancel()
        raise ClientGone

    async def _wait_disconnect(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass

    def json(self) -> Any:
        if not self.body.strip():
            raise BadRequestBody("empty body")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestBody(str(exc)) from exc

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequestBody("body must be a JSON object")
        return data

    def multipart(self) -> tuple[dict[str, list[str]], dict[str, UploadedFile]]:
        return parse_multipart(self.headers.get("content-type", ""), self.body)


async def read_request(scope: Scope, receive: Receive, send: Send, public_url: str) -> Request:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequestBody("request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        headers[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
    query = dict(
        parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    )
    if public_url:
        base_url = public_url
    else:
        host = headers.get("host")
        if not host:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        base_url = f"{scope.get('scheme', 'http')}://{host}"
    return Request(
        method=scope["method"].upper(),
        path=scope["path"],
        query=query,
        headers=headers,
        body=b"".join(chunks),
        base_url=base_url,
        receive=receive,
        send=send,
    )


async def send_response(send: Send, response: Response, *, head_only: bool = False) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})


_DISPOSITION_PARAM = re.compile(r';\s*([a-zA-Z*]+)="?([^";]*)"?')


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, UploadedFile]]:
    """Parse multipart/form-data by hand: the stdlib email parser mangles binary parts."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise BadRequestBody("expected multipart/form-data")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, list[str]] = {}
    files: dict[str, UploadedFile] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data.removesuffix(b"\r\n")
        part_headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip().lower()] = value.strip()
        params = dict(_DISPOSITION_PARAM.findall(part_headers.get("content-disposition", "")))
        name = params.get("name", "")
        if not name:
            continue
        if "filename" in params:
            files[name] = UploadedFile(
                params["filename"],
                part_headers.get("content-type", "application/octet-stream"),
                data,
            )
        else:
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return fields, files


async def cut_connection(send: Send) -> None:
    """Drop the TCP connection, like a relay that crashed or a proxy that gave up.

    ASGI has no "abort" message. Under daphne, ``send`` is ``partial(server.handle_reply,
    protocol)`` and the protocol is a Twisted request owning the transport, so we close that
    (after flushing what was already written). Under any other server we raise, which every
    ASGI server answers by closing the connection.
    """
    protocol = next(iter(getattr(send, "args", ())), None)
    transport = getattr(protocol, "transport", None)
    if transport is not None and hasattr(transport, "loseConnection"):
        transport.loseConnection()
        return
    raise ConnectionAbortedError("simulated connection cut")


class ClientGone(Exception):
    """The client hung up; stop producing output for it."""


class EventStream:
    """Writes a text/event-stream response and notices when the client disconnects.

    The body was fully read before the handler ran, so the next ``receive()`` only returns
    when the server reports ``http.disconnect``: a background watcher turns that into a flag,
    so a long stream stops generating once nobody listens.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._gone = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                self._gone.set()
                return

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    async def start(self, status: int = 200) -> None:
        self._watcher = asyncio.ensure_future(self._watch())
        self._request.started = True
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            (b"x-oneapi-request-id", request_id().encode()),
        ]
        await self._request.send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )

    async def write(self, raw: bytes) -> None:
        if self.gone:
            raise ClientGone
        await self._request.send({"type": "http.response.body", "body": raw, "more_body": True})

    async def data(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        await self.write(f"data: {text}\n\n".encode())

    async def comment(self, text: str = "ping") -> None:
        await self.write(f": {text}\n\n".encode())

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up early (and raise) if the client leaves."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._gone.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise ClientGone

    async def finish(self) -> None:
        self._stop_watcher()
        if not self.gone:
            await self._request.send(
                {"type": "http.response.body", "body": b"", "more_body": False}
            )

    async def cut(self) -> None:
        """Drop the connection mid-body: the client sees a truncated chunked body."""
        self._stop_watcher()
        await cut_connection(self._request.send)

    def _stop_watcher(self) -> None:
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
