"""/healthz: database, channel layer and worker heartbeat, non-200 when something is down."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from studio.accounts.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def test_without_a_worker_it_is_unhealthy(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is True
    assert body["worker"]["ok"] is False


def test_a_worker_run_records_a_heartbeat_and_makes_it_healthy(client):
    call_command("worker", batch=True, no_startup_delay=True, verbosity=0)
    assert WorkerHeartbeat.objects.count() == 1
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["worker"]["age_seconds"] < 30


def test_a_stale_heartbeat_is_reported_as_down(client):
    long_ago = timezone.now() - timedelta(minutes=10)
    WorkerHeartbeat.objects.create(
        worker_id="w1", hostname="h", pid=1, started_at=long_ago, last_seen=long_ago
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"]["age_seconds"] > 500
