"""The Redis counter (REDIS_URL set) against the real local Redis at 127.0.0.1:6379.

Skipped when no Redis answers there, except with CI=true, where that is a failure."""

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from studio.ratelimit import backends, limiter
from tests.conftest import skip_or_fail

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url(settings):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        skip_or_fail(f"Redis does not answer at {REDIS_URL}")
    settings.REDIS_URL = REDIS_URL
    return REDIS_URL


@pytest.fixture
def key(redis_url):
    """A key no other run or test uses; deleted afterwards."""
    name = f"test:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(backends.REDIS_PREFIX + name)


def test_hits_up_to_the_limit_pass_then_the_rest_wait_for_the_window(key):
    verdicts = [limiter.hit(key, 3, 60) for _ in range(5)]
    assert verdicts[:3] == [limiter.Allowed(2), limiter.Allowed(1), limiter.Allowed(0)]
    for late in verdicts[3:]:
        assert isinstance(late, limiter.Limited) and 59 < late.retry_after <= 60


def test_the_counter_lives_in_redis_with_the_window_as_its_expiry(key, redis_url):
    limiter.hit(key, 3, 60)
    limiter.hit(key, 3, 60)
    client = redis.Redis.from_url(redis_url)
    assert client.get(backends.REDIS_PREFIX + key) == b"2"
    assert 59_000 < client.pttl(backends.REDIS_PREFIX + key) <= 60_000


def test_the_window_ends_and_counting_starts_again(key):
    assert isinstance(limiter.hit(key, 1, 1), limiter.Allowed)
    limited = limiter.hit(key, 1, 1)
    assert isinstance(limited, limiter.Limited) and 0 < limited.retry_after <= 1
    time.sleep(limited.retry_after + 0.05)
    assert limiter.hit(key, 1, 1) == limiter.Allowed(remaining=0)


def test_parallel_hits_from_threads_never_let_more_than_the_limit_through(key):
    start = threading.Barrier(16)

    def one_hit(_: int) -> limiter.Verdict:
        start.wait()
        return limiter.hit(key, 5, 60)

    with ThreadPoolExecutor(max_workers=16) as pool:
        verdicts = list(pool.map(one_hit, range(16)))
    assert sum(isinstance(v, limiter.Allowed) for v in verdicts) == 5


@pytest.mark.asyncio
async def test_parallel_async_hits_never_let_more_than_the_limit_through(key):
    verdicts = await asyncio.gather(*(limiter.ahit(key, 5, 60) for _ in range(20)))
    assert sum(isinstance(v, limiter.Allowed) for v in verdicts) == 5
    # Sync and async callers share the one counter.
    assert isinstance(await asyncio.to_thread(limiter.hit, key, 5, 60), limiter.Limited)


def test_release_gives_one_hit_back_and_reset_forgets_the_window(key, redis_url):
    limiter.hit(key, 2, 60)
    limiter.hit(key, 2, 60)
    limiter.release(key)
    assert limiter.hit(key, 2, 60) == limiter.Allowed(remaining=0)
    limiter.reset(key)
    assert limiter.hit(key, 2, 60) == limiter.Allowed(remaining=1)


def test_release_of_an_ended_window_does_not_leave_a_counter_behind(key, redis_url):
    limiter.release(key)
    assert not redis.Redis.from_url(redis_url).exists(backends.REDIS_PREFIX + key)


def test_redis_down_lets_requests_through_and_logs_it(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with caplog.at_level(logging.ERROR, logger="studio.ratelimit.backends"):
        assert isinstance(limiter.hit("any", 1, 60), limiter.Allowed)
        assert isinstance(limiter.hit("any", 1, 60), limiter.Allowed)
    assert "Rate limit counter unavailable on Redis" in caplog.text


@pytest.mark.asyncio
async def test_redis_down_lets_async_requests_through_too(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.ERROR, logger="studio.ratelimit.backends"):
        assert isinstance(await limiter.ahit("any", 1, 60), limiter.Allowed)
    assert "Rate limit counter unavailable on Redis" in caplog.text
