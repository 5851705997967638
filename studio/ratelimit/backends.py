"""Where the counters live: Redis when REDIS_URL is set, the database otherwise.

Both count the same way: a key's window starts at its first hit and lasts `period_ms`; each hit
adds one and answers (hits so far, milliseconds until the window ends), in one atomic step, so
parallel requests in several processes can never all slip under the limit.
"""

import asyncio
import logging
import random
import threading
import time
import weakref
from typing import Protocol

import redis
import redis.asyncio
from asgiref.sync import sync_to_async
from django.db import connections, router
from django.db.models import F

from studio.ratelimit.models import RateCounter

logger = logging.getLogger(__name__)

REDIS_PREFIX = "studio:ratelimit:"
# Expired rows are deleted by roughly one hit in this many (no cron job to forget).
PURGE_ONE_IN = 200

# Decrement only a live counter: DECR on an expired key would create one with no expiry.
RELEASE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


def now_ms() -> int:
    """The clock of the database backend (tests move it instead of sleeping)."""
    return int(time.time() * 1000)


_sync_clients: dict[str, redis.Redis] = {}
_sync_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]]
_async_clients = weakref.WeakKeyDictionary()


class Counter(Protocol):
    def incr(self, key: str, period_ms: int) -> tuple[int, int]: ...
    async def aincr(self, key: str, period_ms: int) -> tuple[int, int]: ...
    def release(self, key: str) -> None: ...
    def reset(self, key: str) -> None: ...


class DatabaseCounter:
    """One INSERT … ON CONFLICT DO UPDATE … RETURNING (SQLite >= 3.35 and PostgreSQL): the
    row is created, counted on, or restarted when its window has passed, atomically."""

    def incr(self, key: str, period_ms: int) -> tuple[int, int]:
        now = now_ms()
        connection = connections[router.db_for_write(RateCounter)]
        quote = connection.ops.quote_name
        table = quote(RateCounter._meta.db_table)
        key_col, hits, expires = quote("key"), quote("hits"), quote("expires_ms")
        sql = (
            f"INSERT INTO {table} ({key_col}, {hits}, {expires}) VALUES (%s, 1, %s) "  # noqa: S608 - names are quoted model columns
            f"ON CONFLICT ({key_col}) DO UPDATE SET "
            f"{hits} = CASE WHEN {table}.{expires} <= %s THEN 1 ELSE {table}.{hits} + 1 END, "
            f"{expires} = CASE WHEN {table}.{expires} <= %s "
            f"THEN excluded.{expires} ELSE {table}.{expires} END "
            f"RETURNING {hits}, {expires}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [key, now + period_ms, now, now])
            count, expires_at = cursor.fetchone()
        if random.randrange(PURGE_ONE_IN) == 0:
            RateCounter.objects.filter(expires_ms__lt=now).delete()
        return int(count), int(expires_at) - now

    async def aincr(self, key: str, period_ms: int) -> tuple[int, int]:
        # Plain sync_to_async, not channels' database_sync_to_async: async views (the
        # playground) call this too, and closing "old" connections there would close one a
        # request's transaction is using. Consumers tidy connections in their own calls.
        return await sync_to_async(self.incr)(key, period_ms)

    def release(self, key: str) -> None:
        RateCounter.objects.filter(key=key, hits__gt=0, expires_ms__gt=now_ms()).update(
            hits=F("hits") - 1
        )

    def reset(self, key: str) -> None:
        RateCounter.objects.filter(key=key).delete()


class RedisCounter:
    """SET NX PX (start the window) + INCR + PTTL in one MULTI/EXEC round trip.

    One pooled client per process for sync callers; asyncio clients are bound to the event loop
    that made them, so async callers get one per loop (daphne runs one loop per process)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self) -> redis.Redis:
        with _sync_lock:
            client = _sync_clients.get(self.url)
            if client is None:
                client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
                _sync_clients[self.url] = client
            return client

    def async_client(self) -> redis.asyncio.Redis:
        per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
        client = per_loop.get(self.url)
        if client is None:
            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=2, socket_connect_timeout=2
            )
            per_loop[self.url] = client
        return client

    def incr(self, key: str, period_ms: int) -> tuple[int, int]:
        name = REDIS_PREFIX + key
        try:
            pipe = self.client().pipeline(transaction=True)
            pipe.set(name, 0, nx=True, px=period_ms)
            pipe.incr(name)
            pipe.pttl(name)
            _, count, ttl = pipe.execute()
            if ttl < 0:  # a key without expiry (written by hand?) must not count forever
                self.client().pexpire(name, period_ms)
                ttl = period_ms
        except redis.RedisError:
            return self.unavailable(period_ms)
        return int(count), int(ttl)

    async def aincr(self, key: str, period_ms: int) -> tuple[int, int]:
        name = REDIS_PREFIX + key
        client = self.async_client()
        try:
            pipe = client.pipeline(transaction=True)
            pipe.set(name, 0, nx=True, px=period_ms)
            pipe.incr(name)
            pipe.pttl(name)
            _, count, ttl = await pipe.execute()
            if ttl < 0:
                await client.pexpire(name, period_ms)
                ttl = period_ms
        except redis.RedisError:
            return self.unavailable(period_ms)
        return int(count), int(ttl)

    @staticmethod
    def unavailable(period_ms: int) -> tuple[int, int]:
        """Redis down: let the request through (fail open) and say so in the log. Counters are
        ephemeral by design; refusing every chat, job and sign-in would turn a Redis outage
        into a site outage, while the channel layer on the same Redis is failing anyway."""
        logger.exception("Rate limit counter unavailable on Redis; allowing the request")
        return 0, period_ms

    def release(self, key: str) -> None:
        try:
            self.client().eval(RELEASE_SCRIPT, 1, REDIS_PREFIX + key)
        except redis.RedisError:
            logger.exception("Could not release a rate limit hit on Redis")

    def reset(self, key: str) -> None:
        try:
            self.client().delete(REDIS_PREFIX + key)
        except redis.RedisError:
            logger.exception("Could not reset a rate limit counter on Redis")
