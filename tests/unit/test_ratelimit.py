"""Rate limit logic without storage: verdicts, settings parsing, waits in words, whose counter."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.utils import translation

from studio.ratelimit import backends, limiter, lockout
from studio.settings import env_rate


class Recorder:
    """A Counter that remembers its calls and answers a fixed (count, ttl)."""

    def __init__(self, count: int = 1, ttl_ms: int = 60_000) -> None:
        self.answer = (count, ttl_ms)
        self.calls: list[tuple[str, int]] = []

    def incr(self, key: str, period_ms: int) -> tuple[int, int]:
        self.calls.append((key, period_ms))
        return self.answer

    async def aincr(self, key: str, period_ms: int) -> tuple[int, int]:
        return self.incr(key, period_ms)


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    fake = Recorder()
    monkeypatch.setattr(limiter, "counter", lambda: fake)
    return fake


def test_a_count_up_to_the_limit_is_allowed_and_says_what_is_left():
    assert limiter.verdict(1, 3, 60_000) == limiter.Allowed(remaining=2)
    assert limiter.verdict(3, 3, 60_000) == limiter.Allowed(remaining=0)


def test_past_the_limit_is_limited_until_the_window_ends():
    assert limiter.verdict(4, 3, 42_500) == limiter.Limited(retry_after=42.5)
    assert limiter.verdict(99, 3, 1) == limiter.Limited(retry_after=0.001)
    # A window that just ended (negative TTL) is no reason to wait.
    assert limiter.verdict(4, 3, -5) == limiter.Limited(retry_after=0)


def test_hit_counts_in_milliseconds_of_the_period(recorder):
    recorder.answer = (4, 12_000)
    assert limiter.hit("chat:user:7", 3, 60) == limiter.Limited(retry_after=12.0)
    assert recorder.calls == [("chat:user:7", 60_000)]


@pytest.mark.asyncio
async def test_async_hit_counts_the_same_way(recorder):
    recorder.answer = (2, 30_000)
    assert await limiter.ahit("jobs:user:7", 3, 30) == limiter.Allowed(remaining=1)
    assert recorder.calls == [("jobs:user:7", 30_000)]


def test_a_limit_of_zero_is_off_and_stores_nothing(recorder):
    assert isinstance(limiter.hit("k", 0, 60), limiter.Allowed)
    assert recorder.calls == []


def test_redis_counts_when_redis_url_is_set(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    chosen = limiter.counter()
    assert isinstance(chosen, backends.RedisCounter) and chosen.url == settings.REDIS_URL
    settings.REDIS_URL = ""
    assert isinstance(limiter.counter(), backends.DatabaseCounter)


def test_each_user_has_their_own_counter_per_action(recorder, settings):
    settings.RATELIMIT_EXEMPT_STAFF = False
    alice = type("U", (), {"pk": 1, "is_staff": False})()
    bob = type("U", (), {"pk": 2, "is_staff": True})()
    limiter.hit_user(alice, "chat", (5, 60))
    limiter.hit_user(bob, "chat", (5, 60))
    limiter.hit_user(alice, "jobs", (5, 60))
    assert [key for key, _ in recorder.calls] == ["chat:user:1", "chat:user:2", "jobs:user:1"]


def test_staff_are_exempt_only_when_configured(recorder, settings):
    admin = type("U", (), {"pk": 9, "is_staff": True})()
    settings.RATELIMIT_EXEMPT_STAFF = True
    assert isinstance(limiter.hit_user(admin, "chat", (1, 60)), limiter.Allowed)
    assert recorder.calls == []
    settings.RATELIMIT_EXEMPT_STAFF = False
    limiter.hit_user(admin, "chat", (1, 60))
    assert recorder.calls == [("chat:user:9", 60_000)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30/60", (30, 60)),
        ("5/15m", (5, 900)),
        ("100/1h", (100, 3600)),
        ("2/1d", (2, 86400)),
        ("7/45s", (7, 45)),
        ("off", (0, 1)),
        ("0", (0, 1)),
        (" OFF ", (0, 1)),
    ],
)
def test_rates_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("RATELIMIT_TEST", value)
    assert env_rate("RATELIMIT_TEST", "1/1") == expected


def test_an_unset_rate_takes_the_default(monkeypatch):
    monkeypatch.delenv("RATELIMIT_TEST", raising=False)
    assert env_rate("RATELIMIT_TEST", "5/15m") == (5, 900)


@pytest.mark.parametrize("value", ["30", "thirty/60", "5/0", "5/-3m", "-1/60", "5/15x", "1/2/3"])
def test_a_malformed_rate_stops_the_start_with_the_variable_named(monkeypatch, value):
    monkeypatch.setenv("RATELIMIT_TEST", value)
    with pytest.raises(ImproperlyConfigured, match="RATELIMIT_TEST"):
        env_rate("RATELIMIT_TEST", "1/1")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 second"),
        (1, "1 second"),
        (41.3, "42 seconds"),
        (119, "119 seconds"),
        (120, "2 minutes"),
        (601, "11 minutes"),
        (900, "15 minutes"),
    ],
)
def test_waits_in_words_round_up(seconds, text):
    with translation.override("en"):
        assert limiter.wait_text(seconds) == text


def request_from(address: str):
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=address)


def test_ipv4_addresses_count_one_by_one():
    assert lockout.client_address(request_from("203.0.113.7")) == "203.0.113.7"
    assert lockout.address_key(request_from("203.0.113.7")) != lockout.address_key(
        request_from("203.0.113.8")
    )


def test_ipv6_addresses_count_by_their_64():
    one = lockout.client_address(request_from("2001:db8:1:2::1"))
    same_net = lockout.client_address(request_from("2001:db8:1:2:ffff::9"))
    other_net = lockout.client_address(request_from("2001:db8:1:3::1"))
    assert one == same_net == "2001:db8:1:2::/64"
    assert other_net != one


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address():
    assert lockout.client_address(request_from("::ffff:198.51.100.4")) == "198.51.100.4"


@pytest.mark.parametrize("address", ["", "not-an-ip", "999.1.1.1"])
def test_an_unreadable_address_counts_together(address):
    assert lockout.client_address(request_from(address)) == lockout.UNKNOWN_ADDRESS
    assert lockout.client_address(None) == lockout.UNKNOWN_ADDRESS


def test_usernames_count_case_insensitively_and_are_not_stored_in_the_clear():
    key = lockout.username_key("Alice")
    assert key == lockout.username_key(" alice ")
    assert key != lockout.username_key("alicia")
    assert "alice" not in key.lower()
