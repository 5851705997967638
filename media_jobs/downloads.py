"""Guarded download of relay result files (ARCHITECTURE.md §5 "Asset downloads").

Result URLs come from the relay's JSON, so outsiders influence them: a careless download would be
a server-side request forgery (SSRF) into our own network or the cloud metadata service. The
rules, applied to the first URL and again to every redirect hop:

* only ``http`` and ``https``; no user name or password in the URL (httpx would turn them into
  an ``Authorization`` header);
* the host is resolved once with ``socket.getaddrinfo`` and EVERY address it resolves to must be
  public: ``is_global`` and neither multicast nor reserved, after unwrapping IPv4 embedded in
  IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo). That refuses private, loopback, link-local (incl.
  169.254.169.254), shared (100.64/10), unspecified, multicast, reserved and IPv6 site-local
  (fec0::/10) ranges, and whatever decimal/hex/octal spellings (``2130706433``, ``0x7f.1``)
  the resolver turns into them;
* unless the URL's ``host:port`` is trusted: by default the hosts of the approved relays
  (``studio.accounts.relays.allowed_base_urls()``: UPSTREAM_ALLOWED_BASE_URLS and those staff
  approved, e.g. the local simulator on 127.0.0.1). Trust is by exact host AND port: the same
  host on another port is not trusted.

DNS rebinding: a hostile DNS server could answer a public address to our check and a private one
to the connection. We therefore never let the connection resolve the name again. Each hop is
requested with the vetted IP address in the URL (the address is "pinned"), while the original
``Host`` header is sent and, for https, the original name is used for SNI and certificate
verification (httpcore's ``sni_hostname`` request extension). The addresses are tried in resolver
order, like ``socket.create_connection`` does, and each hop gets a fresh client so no connection
negotiated for another name is reused.

Redirects are not followed by httpx: we follow at most ``MAX_REDIRECTS`` hops ourselves and vet
each ``Location`` as above. The body is streamed and the download refused as soon as it exceeds
``max_bytes`` (or early, on a larger ``Content-Length``); the ``Content-Type`` must start with one
of the allowed prefixes (an HTML or JSON error page is refused); any non-2xx status is refused.
``timeout`` bounds the whole download, redirects included. No cookies, no API key, no proxy from
the environment (``trust_env=False``): the request carries only a User-Agent and Accept headers.

Every refusal is a :class:`DownloadRefused` whose message is plain words for the job page. The
call is synchronous (it runs in background-task workers); do not call it from async code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from studio.upstream import tls_context

__all__ = ["MAX_REDIRECTS", "DownloadRefused", "Downloaded", "check_url", "download"]

MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
GONE_STATUSES = {401, 403, 404, 410}
USER_AGENT = "Studio-asset-downloader/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
logger = logging.getLogger(__name__)


class DownloadRefused(Exception):
    """The file was not downloaded; ``str(exc)`` says why, in words fit for the job page."""


@dataclass(frozen=True)
class Downloaded:
    content: bytes
    mime: str  # from Content-Type, parameters stripped, lower-case
    sha256: str  # hex digest of content
    final_url: str  # the URL (by name, not pinned address) that answered with the file


def download(
    url: str,
    *,
    allowed_mime_prefixes: tuple[str, ...] = ("image/", "audio/", "video/"),
    max_bytes: int = 50 * 1024 * 1024,
    timeout: float = 60.0,
    trusted_hosts: Iterable[str] | None = None,
) -> Downloaded:
    """Download ``url`` under the rules of the module docstring, or raise DownloadRefused.

    ``trusted_hosts`` are ``"host:port"`` strings (``"[::1]:8000"`` for IPv6; a bare host means
    its scheme's default port; full URLs are accepted too). ``None`` means the hosts of the
    approved relays (see :func:`approved_relays`); pass ``()`` to trust nothing.
    """
    trusted = _trusted_set(trusted_hosts)
    deadline = time.monotonic() + timeout
    current = _parse(url)
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = _vet(current, trusted)
        location = _fetch_hop(
            current,
            addresses,
            deadline=deadline,
            timeout=timeout,
            allowed_mime_prefixes=allowed_mime_prefixes,
            max_bytes=max_bytes,
        )
        if isinstance(location, Downloaded):
            return location
        current = location
    raise DownloadRefused(f"the file address redirected more than {MAX_REDIRECTS} times")


def check_url(url: str, *, trusted_hosts: Iterable[str] | None = None) -> list[str]:
    """Vet one URL without downloading: return the addresses a download would connect to.

    Raises DownloadRefused for a forbidden scheme or address. Useful to refuse early; it does
    not replace the checks :func:`download` makes on every hop.
    """
    return _vet(_parse(url), _trusted_set(trusted_hosts))


# --- vetting -------------------------------------------------------------------------------


def _parse(url: str) -> httpx.URL:
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _bad_scheme(scheme)
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError) as exc:
        raise DownloadRefused("the file address is not a valid web address") from exc
    return parsed


def _host_port(url: httpx.URL) -> tuple[str, int]:
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    return host, url.port or DEFAULT_PORTS[url.scheme]


def _vet(url: httpx.URL, trusted: frozenset[tuple[str, int]]) -> list[str]:
    if url.scheme not in DEFAULT_PORTS:
        raise _bad_scheme(url.scheme)
    if url.userinfo:
        raise DownloadRefused("the file address contains a user name or password; refused")
    if not url.raw_host:
        raise DownloadRefused("the file address has no host name")
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise DownloadRefused(f"the file server {host} could not be found") from exc
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise DownloadRefused(f"the file server {host} could not be found")
    if (host, port) in trusted:
        return addresses
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise DownloadRefused(f"the file server {host} has an unusable address") from exc
        if not _is_public(address):
            raise DownloadRefused(
                f"the file address points to a private or local network address ({address}); "
                "refused for security"
            )
    return addresses


def _is_public(address: IPAddress) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        if address.teredo is not None:
            candidates += list(address.teredo)
    # fec0::/10 (IPv6 site-local) is deprecated but still routed inside some networks, and
    # Python counts it as global: refuse it like the private ranges it was meant to be.
    return all(
        a.is_global
        and not a.is_multicast
        and not a.is_reserved
        and not a.is_unspecified
        and not getattr(a, "is_site_local", False)
        for a in candidates
    )


def _trusted_set(trusted_hosts: Iterable[str] | None) -> frozenset[tuple[str, int]]:
    if trusted_hosts is None:
        trusted_hosts = approved_relays()
    result: set[tuple[str, int]] = set()
    for entry in trusted_hosts:
        entry = entry.strip()
        if not entry:
            continue
        parts = urlsplit(entry if "://" in entry else f"//{entry}")
        try:
            port = parts.port
        except ValueError:
            continue
        if not parts.hostname:
            continue
        host = parts.hostname.lower().rstrip(".")
        if port is not None:
            result.add((host, port))
        elif parts.scheme in DEFAULT_PORTS:
            result.add((host, DEFAULT_PORTS[parts.scheme]))
        else:
            result.update((host, p) for p in DEFAULT_PORTS.values())
    return frozenset(result)


def approved_relays() -> list[str]:
    """The relays an administrator approved, from the environment and from the staff pages.

    Should the staff-approved list be unreadable (no database at hand), only the environment's
    relays are trusted: trusting fewer hosts refuses more downloads, never fewer.
    """
    from studio.accounts.relays import allowed_base_urls, environment_base_urls

    try:
        return allowed_base_urls()
    except Exception:
        logger.warning("approved relays unreadable; trusting UPSTREAM_ALLOWED_BASE_URLS only")
        return environment_base_urls()


# --- fetching ------------------------------------------------------------------------------


def _fetch_hop(
    url: httpx.URL,
    addresses: list[str],
    *,
    deadline: float,
    timeout: float,
    allowed_mime_prefixes: tuple[str, ...],
    max_bytes: int,
) -> Downloaded | httpx.URL:
    """One request to ``url``, connecting only to the vetted ``addresses`` (tried in order)."""
    host, _port = _host_port(url)
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": USER_AGENT,
        "Accept": ", ".join(f"{p}*" if p.endswith("/") else p for p in allowed_mime_prefixes),
        # Media is not compressed; asking for identity keeps the size cap about wire bytes.
        "Accept-Encoding": "identity",
    }
    extensions = {"sni_hostname": host} if url.scheme == "https" and not _is_ip(host) else {}
    last_error: httpx.ConnectError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        pinned = url.copy_with(host=address)
        try:
            with (
                httpx.Client(
                    follow_redirects=False,
                    trust_env=False,
                    timeout=httpx.Timeout(remaining),
                    verify=tls_context(),
                ) as client,
                client.stream("GET", pinned, headers=headers, extensions=extensions) as response,
            ):
                return _read(url, response, deadline, timeout, allowed_mime_prefixes, max_bytes)
        except httpx.ConnectTimeout:
            break
        except httpx.ConnectError as exc:
            last_error = exc  # this address is unreachable: try the next one
        except httpx.TimeoutException as exc:
            raise _timed_out(timeout) from exc
        except httpx.TransportError as exc:
            raise DownloadRefused(
                f"the download from {host} failed: the connection was interrupted"
            ) from exc
    if last_error is not None and time.monotonic() < deadline:
        raise DownloadRefused(f"could not connect to the file server {host}") from last_error
    raise _timed_out(timeout)


def _read(
    url: httpx.URL,
    response: httpx.Response,
    deadline: float,
    timeout: float,
    allowed_mime_prefixes: tuple[str, ...],
    max_bytes: int,
) -> Downloaded | httpx.URL:
    status = response.status_code
    if status in REDIRECT_STATUSES:
        location = response.headers.get("Location", "").strip()
        if not location:
            raise DownloadRefused(
                f"the file server sent a redirect without a target (HTTP {status})"
            )
        try:
            return url.join(location)
        except (httpx.InvalidURL, TypeError, ValueError, UnicodeError) as exc:
            raise DownloadRefused("the file server redirected to an invalid address") from exc
    if status in GONE_STATUSES:
        raise DownloadRefused(f"the file is no longer available (HTTP {status})")
    if not 200 <= status < 300:
        raise DownloadRefused(f"the file server answered with an error (HTTP {status})")
    mime = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if not mime:
        raise DownloadRefused("the file server did not say what kind of file it sent")
    if not mime.startswith(tuple(p.lower() for p in allowed_mime_prefixes)):
        raise DownloadRefused(f"the file server sent {mime} instead of a media file")
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadRefused(_too_large(max_bytes))
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise DownloadRefused(_too_large(max_bytes))
        if time.monotonic() > deadline:
            raise _timed_out(timeout)
        digest.update(chunk)
        chunks.append(chunk)
    return Downloaded(
        content=b"".join(chunks), mime=mime, sha256=digest.hexdigest(), final_url=str(url)
    )


def _bad_scheme(scheme: str) -> DownloadRefused:
    shown = f"a {scheme}: address" if scheme else "an address without http(s)://"
    return DownloadRefused(f"the file has {shown}; only http and https downloads are allowed")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _too_large(max_bytes: int) -> str:
    return f"the file is larger than the {max_bytes / (1024 * 1024):g} MB limit"


def _timed_out(timeout: float) -> DownloadRefused:
    return DownloadRefused(f"the file server did not answer in time (gave up after {timeout:g} s)")
