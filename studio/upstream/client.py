"""The one place that sends HTTP to the relay: pooled connections, auth, timeouts, errors.

Family modules (`openai.py`, ...) implement the endpoints as functions taking a `RelayClient`
(`await openai.list_models(client)`), built on its `_request*` / `_stream` helpers, which are
private to this package.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from studio.upstream import paths
from studio.upstream.errors import (
    ProtocolError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
    body_excerpt,
    error_from_payload,
    error_from_response,
)
from studio.upstream.masking import mask_key

logger = logging.getLogger(__name__)

# Explicit timeouts per kind of call. `read` is the longest silence between two reads, so for
# a stream it is the gap between chunks, not the length of the whole reply.
QUICK_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
MEDIA_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=10.0)
LONG_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=10.0)
STREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)

# A streamed chat reply holds its connection for the whole reply, so the pool must be as large
# as the number of replies one process streams at once (hundreds), not a typical API pool.
POOL_LIMITS = httpx.Limits(max_connections=2000, max_keepalive_connections=50, keepalive_expiry=30)

# httpx clients are bound to the event loop that opened their connections; a client reused on
# another loop fails in confusing ways. So: one shared client per loop, dropped with the loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process: building one loads the CA bundle, which
    costs ~30 ms, more than a whole poll of the relay (bench/jobs.py)."""
    return httpx.create_ssl_context()


def get_http_client() -> httpx.AsyncClient:
    """The shared pooled client of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            http1=True,
            http2=False,
            limits=POOL_LIMITS,
            timeout=QUICK_TIMEOUT,
            verify=tls_context(),
            # Never follow a redirect with the user's key; a 3xx becomes an error instead.
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


async def aclose_http_clients() -> None:
    """Close the shared client of the running loop (call on shutdown, or at the end of a
    short-lived loop such as one made by async_to_sync). Clients of loops that are gone are
    only forgotten: their connections went with their loop.
    """
    loop = asyncio.get_running_loop()
    for owner, client in list(_clients.items()):
        if owner is loop:
            await client.aclose()
        if owner is loop or owner.is_closed():
            _clients.pop(owner, None)


@dataclass(frozen=True, repr=False)
class RelayCredentials:
    """Where the relay is and which key to use. The key shows only masked in repr."""

    base_url: str
    api_key: str
    # Run-time settings staff keep in the database (studio.upstream.families): relay paths
    # that replace the defaults, and per-family options such as {"suno_format": "b"}.
    path_overrides: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RelayCredentials(base_url={self.base_url!r}, api_key={mask_key(self.api_key)!r})"

    __str__ = __repr__


class RelayClient:
    """An authenticated view on the relay for one set of credentials. Cheap to create per call
    site; connections come from the shared pool unless a test hands in its own `http_client`.
    """

    def __init__(
        self, credentials: RelayCredentials, *, http_client: httpx.AsyncClient | None = None
    ) -> None:
        self.credentials = credentials
        self._http_client = http_client

    def __repr__(self) -> str:
        return f"RelayClient({self.credentials!r})"

    @property
    def host(self) -> str:
        """The relay's host name, safe to show in messages."""
        try:
            return httpx.URL(self.credentials.base_url).host or self.credentials.base_url
        except httpx.InvalidURL:
            return "the relay"

    # --- transport helpers for the family modules -------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        return self._http_client or get_http_client()

    def _url(self, path_name: str, path_params: Mapping[str, str] | None) -> str:
        base_url = self.credentials.base_url.rstrip("/")
        try:
            parsed = httpx.URL(base_url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            # Checked here so a misconfigured relay reads the same on every transport.
            raise UnavailableError(f"the relay address {base_url!r} is not an http(s) URL")
        # Concatenated, not urljoin'ed: a path can never move the request to another host.
        return base_url + paths.path(
            path_name, overrides=self.credentials.path_overrides, **(path_params or {})
        )

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.credentials.api_key}"}
        headers.update(extra or {})
        return headers

    async def _request(
        self,
        method: str,
        path_name: str,
        *,
        json: Any = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = QUICK_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
        path_params: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
    ) -> httpx.Response:
        """Send one request; return the 2xx response with its body read, or raise (any
        response when `raise_for_status` is false: the families probe reads error answers)."""
        url = self._url(path_name, path_params)
        try:
            response = await self._http().request(
                method,
                url,
                json=json,
                files=files,
                data=data,
                params=params,
                headers=self._headers(headers),
                timeout=timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc, timeout) from exc
        logger.debug("%s %s → %s", method, path_name, response.status_code)
        if raise_for_status and not response.is_success:
            raise self._error_from(response)
        return response

    async def _request_json(
        self,
        method: str,
        path_name: str,
        *,
        json: Any = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = QUICK_TIMEOUT,  # noqa: ASYNC109 - httpx's per-phase limits
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its JSON object; an OpenAI-style `{"error": {...}}`
        inside a 2xx reply raises like a failed status would.
        """
        response = await self._request(
            method,
            path_name,
            json=json,
            files=files,
            data=data,
            params=params,
            headers=headers,
            timeout=timeout,
            path_params=path_params,
        )
        return self._json_object(response)

    @asynccontextmanager
    async def _stream(
        self,
        method: str,
        path_name: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = STREAM_TIMEOUT,  # noqa: ASYNC109 - read = gap between chunks
        path_params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Open a streamed request; yield the 2xx response with its body unread.

        Leaving the block (also by cancellation) closes the response and its connection.
        Timeouts and network failures while the body is read are mapped as well.
        """
        url = self._url(path_name, path_params)
        try:
            async with self._http().stream(
                method, url, json=json, headers=self._headers(headers), timeout=timeout
            ) as response:
                logger.debug("%s %s → %s (stream)", method, path_name, response.status_code)
                if not response.is_success:
                    await response.aread()
                    raise self._error_from(response)
                yield response
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc, timeout) from exc

    async def _stream_body(self, response: httpx.Response) -> AsyncGenerator[bytes]:
        """The body's bytes; a connection dropped mid-body just ends them, so the SSE layer
        reports the missing `[DONE]` after handing out everything received before the cut.
        """
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            logger.info("Relay stream from %s was cut: %s", self.host, exc)

    def _error_from(self, response: httpx.Response) -> UpstreamError:
        error = error_from_response(
            response.status_code,
            response.headers,
            response.content,
            secret=self.credentials.api_key,
        )
        logger.info("Relay %s answered %s: %r", self.host, response.status_code, error)
        return error

    def _json_object(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise ProtocolError(
                f"expected JSON, got {response.headers.get('content-type') or 'no content type'}"
                f": {body_excerpt(response.text)}",
                status=response.status_code,
            ) from None
        if not isinstance(payload, dict):
            raise ProtocolError(
                f"expected a JSON object, got {type(payload).__name__}",
                status=response.status_code,
            )
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            raise error_from_payload(
                payload, status=response.status_code, secret=self.credentials.api_key
            )
        return payload

    def _transport_error(
        self, exc: httpx.HTTPError | httpx.InvalidURL, timeout: httpx.Timeout
    ) -> UpstreamError:
        # Messages name the host only: the URL is harmless, but headers carry the key.
        if isinstance(exc, httpx.ConnectTimeout):
            waited = _seconds(timeout.connect)
            return UpstreamTimeout(f"could not connect to {self.host} within {waited}")
        if isinstance(exc, httpx.PoolTimeout):
            # Every pooled connection stayed busy: Studio itself is overloaded, not the relay.
            waited = _seconds(timeout.pool)
            return UpstreamTimeout(f"no free connection to {self.host} within {waited}")
        if isinstance(exc, httpx.TimeoutException):
            waited = _seconds(
                timeout.write if isinstance(exc, httpx.WriteTimeout) else timeout.read
            )
            return UpstreamTimeout(f"{self.host} went silent for {waited}")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return UnavailableError(f"the relay address of {self.host} is not usable: {exc}")
        if isinstance(exc, httpx.RemoteProtocolError):
            return ProtocolError(f"{self.host} broke the HTTP protocol: {exc}")
        return UnavailableError(f"could not reach {self.host}: {str(exc) or type(exc).__name__}")


def _seconds(value: float | None) -> str:
    return f"{value:g} s" if value is not None else "a long time"
