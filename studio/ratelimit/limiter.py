"""`hit(key, limit, per_seconds)`: count one event and say whether it is within the limit.

A key's window starts at its first hit and lasts `per_seconds`; the hit that makes the count
exceed `limit` and every later one in that window is Limited, with how long until the window
ends. A limit of 0 or less means no limit (nothing is stored).
"""

import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import ngettext

from studio.ratelimit.backends import Counter, DatabaseCounter, RedisCounter

Rate = tuple[int, int]  # (events, per seconds), as settings.RATELIMIT_* hold them


@dataclass(frozen=True)
class Allowed:
    remaining: int


@dataclass(frozen=True)
class Limited:
    retry_after: float  # seconds until the window ends


Verdict = Allowed | Limited


def verdict(count: int, limit: int, ttl_ms: int) -> Verdict:
    """What a counter at `count` with `ttl_ms` left in its window means for a `limit`."""
    if count <= limit:
        return Allowed(remaining=limit - count)
    return Limited(retry_after=max(ttl_ms, 0) / 1000)


def counter() -> Counter:
    """Redis when REDIS_URL is set (shared by every process), the database otherwise."""
    if settings.REDIS_URL:
        return RedisCounter(settings.REDIS_URL)
    return DatabaseCounter()


def hit(key: str, limit: int, per_seconds: int) -> Verdict:
    if limit <= 0:
        return Allowed(remaining=0)
    count, ttl_ms = counter().incr(key, per_seconds * 1000)
    return verdict(count, limit, ttl_ms)


async def ahit(key: str, limit: int, per_seconds: int) -> Verdict:
    if limit <= 0:
        return Allowed(remaining=0)
    count, ttl_ms = await counter().aincr(key, per_seconds * 1000)
    return verdict(count, limit, ttl_ms)


def release(key: str) -> None:
    """Take back one hit (an attempt that turned out not to count, e.g. a good password)."""
    counter().release(key)


def reset(key: str) -> None:
    """Forget a key's window altogether."""
    counter().reset(key)


def _user_key(user: AbstractBaseUser | AnonymousUser, action: str) -> str | None:
    """None when the user is exempt (staff, and RATELIMIT_EXEMPT_STAFF is on)."""
    if settings.RATELIMIT_EXEMPT_STAFF and getattr(user, "is_staff", False):
        return None
    return f"{action}:user:{user.pk}"


def hit_user(user: AbstractBaseUser | AnonymousUser, action: str, rate: Rate) -> Verdict:
    """One `action` ("chat", "jobs") by a signed-in user, against that user's own counter."""
    key = _user_key(user, action)
    return Allowed(remaining=rate[0]) if key is None else hit(key, *rate)


async def ahit_user(user: AbstractBaseUser | AnonymousUser, action: str, rate: Rate) -> Verdict:
    key = _user_key(user, action)
    return Allowed(remaining=rate[0]) if key is None else await ahit(key, *rate)


def wait_text(seconds: float) -> str:
    """How long to wait ("12 seconds", "15 minutes"), rounded up, in words for a message."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return ngettext("%(count)d second", "%(count)d seconds", whole) % {"count": whole}
    minutes = math.ceil(whole / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
