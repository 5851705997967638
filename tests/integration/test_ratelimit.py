"""The database counter (no REDIS_URL): windows, expiry, atomicity under parallel hits.

Runs on SQLite and, in `make test-postgres`, on PostgreSQL (the upsert is one SQL statement that
both must run the same way)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from studio.ratelimit import backends, limiter
from studio.ratelimit.models import RateCounter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def database_backend(settings):
    settings.REDIS_URL = ""


@pytest.fixture
def clock(monkeypatch):
    """The database counter's clock, moved by hand (milliseconds)."""

    class Clock:
        now = 1_800_000_000_000

        def advance(self, seconds: float) -> None:
            self.now += int(seconds * 1000)

    fake = Clock()
    monkeypatch.setattr(backends, "now_ms", lambda: fake.now)
    return fake


def test_hits_up_to_the_limit_pass_then_the_rest_wait_for_the_window(clock):
    verdicts = [limiter.hit("chat:user:1", 3, 60) for _ in range(5)]
    assert verdicts[:3] == [limiter.Allowed(2), limiter.Allowed(1), limiter.Allowed(0)]
    assert verdicts[3:] == [limiter.Limited(60.0), limiter.Limited(60.0)]
    assert RateCounter.objects.get(key="chat:user:1").hits == 5


def test_the_window_starts_at_the_first_hit_and_ends_on_time(clock):
    limiter.hit("k", 2, 60)
    clock.advance(30)
    limiter.hit("k", 2, 60)
    clock.advance(29)
    assert limiter.hit("k", 2, 60) == limiter.Limited(retry_after=1.0)
    clock.advance(1)  # 60 s after the first hit: a new window
    assert limiter.hit("k", 2, 60) == limiter.Allowed(remaining=1)
    clock.advance(59.5)
    assert limiter.hit("k", 2, 60) == limiter.Allowed(remaining=0)
    assert limiter.hit("k", 2, 60) == limiter.Limited(retry_after=0.5)


def test_keys_are_counted_apart(clock):
    assert isinstance(limiter.hit("a", 1, 60), limiter.Allowed)
    assert isinstance(limiter.hit("a", 1, 60), limiter.Limited)
    assert isinstance(limiter.hit("b", 1, 60), limiter.Allowed)


def test_release_gives_one_hit_back_and_reset_forgets_the_window(clock):
    limiter.hit("k", 2, 60)
    limiter.hit("k", 2, 60)
    limiter.release("k")
    assert limiter.hit("k", 2, 60) == limiter.Allowed(remaining=0)
    limiter.reset("k")
    assert not RateCounter.objects.filter(key="k").exists()
    assert limiter.hit("k", 2, 60) == limiter.Allowed(remaining=1)


def test_release_never_goes_below_zero_nor_revives_an_ended_window(clock):
    limiter.release("never-hit")
    assert not RateCounter.objects.filter(key="never-hit").exists()
    limiter.hit("k", 5, 10)
    clock.advance(11)
    limiter.release("k")
    assert RateCounter.objects.get(key="k").hits == 1  # the ended window was left alone
    assert limiter.hit("k", 5, 10) == limiter.Allowed(remaining=4)


def test_ended_windows_are_purged_now_and_then(clock, monkeypatch):
    monkeypatch.setattr(backends, "PURGE_ONE_IN", 1)
    limiter.hit("old", 5, 10)
    clock.advance(11)
    limiter.hit("new", 5, 10)
    assert list(RateCounter.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.asyncio
async def test_async_hits_share_the_counter(clock):
    assert await limiter.ahit("k", 2, 60) == limiter.Allowed(remaining=1)
    assert await sync_to_async(limiter.hit)("k", 2, 60) == limiter.Allowed(remaining=0)
    assert isinstance(await limiter.ahit("k", 2, 60), limiter.Limited)


@pytest.mark.shared_database  # an in-memory SQLite test database is one connection's
def test_parallel_hits_never_let_more_than_the_limit_through():
    """Threads with their own database connections hit one key at the same moment."""
    start = threading.Barrier(12)

    def one_hit(_: int) -> limiter.Verdict:
        start.wait()
        try:
            return limiter.hit("burst", 5, 60)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        verdicts = list(pool.map(one_hit, range(12)))
    assert sum(isinstance(v, limiter.Allowed) for v in verdicts) == 5
    assert RateCounter.objects.get(key="burst").hits == 12
