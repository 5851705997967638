"""Shared fixtures. The relay simulator fixture lives in tests/simulator_fixture.py."""

import os

import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.simulator_fixture"]

# When CI=true a missing browser or service fails the run instead of being skipped.
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `shared_database` need several connections to one test database: the
    PostgreSQL pass runs them; the SQLite pass (an in-memory database) leaves them out."""
    if os.environ.get("DATABASE_URL"):
        return
    left_out = [item for item in items if item.get_closest_marker("shared_database")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required here)")
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Tests make users by the hundred, and PBKDF2 at its production strength costs 0.4 s a
    password. What the tests check of passwords does not depend on the hasher's cost; processes
    the tests start (daphne, workers) keep the real hashers."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def password() -> str:
    return "correct horse battery staple 42"


@pytest.fixture
def user(db, password):
    return UserFactory(username="alice", password=password)


@pytest.fixture
def other_user(db, password):
    return UserFactory(username="bob", password=password)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache (the relay model lists are cached per user id)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
