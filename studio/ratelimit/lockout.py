"""Sign-in lockout: failed attempts counted per typed username and per client address.

Each attempt takes a hit on both counters *before* the password is checked (atomic, so parallel
guesses cannot all slip under the limit); a good password gives the address's hit back and clears
the username's counter, so only failures accumulate. The username counter is keyed by what was
typed, whether or not such an account exists: a locked-out name looks the same either way.
"""

import hashlib
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from studio.ratelimit import limiter

UNKNOWN_ADDRESS = "unknown"


def client_address(request: HttpRequest | None) -> str:
    """The address to count against: REMOTE_ADDR (behind a proxy, run daphne with
    --proxy-headers so it is the client's), IPv6 by its /64 (one host usually owns a whole /64,
    so counting single addresses there would count nothing)."""
    raw = (request.META.get("REMOTE_ADDR") or "") if request is not None else ""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def username_key(username: str) -> str:
    """Case-folded and hashed: "Alice" and "alice" share a counter, and a password typed into
    the username field by mistake is not stored in the clear."""
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    return f"login:user:{digest}"


def address_key(request: HttpRequest | None) -> str:
    return f"login:ip:{client_address(request)}"


def begin(request: HttpRequest | None, username: str) -> limiter.Limited | None:
    """Count one sign-in attempt; a Limited (with the longer wait) when the username or the
    address has had too many failures in its window, and the password must not be checked."""
    verdicts = [
        limiter.hit(username_key(username), *settings.RATELIMIT_LOGIN_USERNAME),
        limiter.hit(address_key(request), *settings.RATELIMIT_LOGIN_IP),
    ]
    waits = [v.retry_after for v in verdicts if isinstance(v, limiter.Limited)]
    return limiter.Limited(retry_after=max(waits)) if waits else None


def succeeded(request: HttpRequest | None, username: str) -> None:
    """The password was right: this attempt was no failure."""
    limiter.reset(username_key(username))
    if settings.RATELIMIT_LOGIN_IP[0] > 0:
        limiter.release(address_key(request))
