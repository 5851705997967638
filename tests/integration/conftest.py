"""Fixtures shared by the integration tests."""

import pytest

from tests.integration.job_helpers import use_relay


@pytest.fixture
def relay(settings, simulator, tmp_path, user):
    """The session's simulator as the user's relay (see job_helpers.use_relay)."""
    return use_relay(settings, simulator, tmp_path, user)
