"""Usage records: written by a real chat reply and by jobs, summed for quotas and the dashboard."""

import datetime as dt
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from chat.models import Conversation, Message
from media_jobs.models import Job
from studio.accounts import usage
from studio.accounts.models import RelayCredential, UsageRecord
from tests.integration.chat_helpers import assistant_id, done_for, frames_until, open_socket


@pytest.fixture
def relay_user(settings, simulator, django_user_model, tmp_path):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.CHAT_OWNER_TIMEOUT = 0.3
    settings.MEDIA_ROOT = tmp_path / "media"
    user = django_user_model.objects.create_user("dora", password="pw-dora-123456")
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    return user


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_chat_reply_records_its_tokens(relay_user):
    conversation = await Conversation.objects.acreate(user=relay_user, model="gpt-4o")
    socket, _, _ = await open_socket(conversation.id, relay_user)
    await socket.send_json_to(
        {"type": "send", "content": "Count to ten [[tokens=30]]", "client_id": str(uuid.uuid4())}
    )
    frames = await frames_until(socket, done_for())
    await socket.disconnect()
    reply = await Message.objects.aget(pk=assistant_id(frames))
    record = await UsageRecord.objects.aget(ref=str(reply.id))
    assert record.user_id == relay_user.pk and record.source == "chat"
    assert record.model == "gpt-4o"
    assert record.prompt_tokens == reply.prompt_tokens > 0
    assert (
        record.completion_tokens
        == reply.completion_tokens
        == frames[-1]["usage"]["completion_tokens"]
    )
    assert record.estimated == reply.usage_estimated
    total = await sync_to_async(usage.tokens_since)(relay_user.pk, usage.month_start())
    assert total == reply.prompt_tokens + reply.completion_tokens


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_reply_that_fails_before_any_text_costs_nothing(relay_user):
    conversation = await Conversation.objects.acreate(user=relay_user, model="gpt-4o")
    socket, _, _ = await open_socket(conversation.id, relay_user)
    await socket.send_json_to(
        {"type": "send", "content": "Fail [[error:500]]", "client_id": str(uuid.uuid4())}
    )
    frames = await frames_until(socket, done_for())
    await socket.disconnect()
    assert frames[-1]["status"] == "error"
    assert not await UsageRecord.objects.aexists()


@pytest.mark.django_db(transaction=True)
def test_jobs_are_counted_once_each_when_made(relay_user, client):
    client.force_login(relay_user)
    response = client.post(
        "/jobs/new/tts/",
        {
            "prompt": "Hello there",
            "model": "tts-1",
            "voice": "alloy",
            "response_format": "mp3",
            "speed": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    record = UsageRecord.objects.get()
    assert (record.source, record.kind, record.model, record.jobs) == ("job", "tts", "tts-1", 1)
    assert record.ref == str(job.id) and record.user_id == relay_user.pk
    call_command("worker", batch=True, no_startup_delay=True, verbosity=0)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert UsageRecord.objects.count() == 1  # running it adds nothing
    summary = usage.summaries_for([relay_user.pk], usage.month_start())[relay_user.pk]
    assert summary.jobs_by_kind == {"tts": 1} and summary.tokens == 0


@pytest.mark.django_db
def test_recording_the_same_reply_twice_keeps_one_record(user):
    for _ in range(2):
        usage.record_chat(
            user.pk,
            model="gpt-4o",
            prompt_tokens=3,
            completion_tokens=4,
            estimated=False,
            ref="same-message",
        )
    assert UsageRecord.objects.count() == 1
    assert usage.tokens_since(user.pk, usage.month_start()) == 7


@pytest.mark.django_db
def test_summaries_and_daily_series_with_known_data(user, other_user, settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: the local day starts at 16:00 UTC
    today = timezone.localdate()
    local_noon = timezone.make_aware(dt.datetime.combine(today, dt.time(12)))

    def add(who, model, tokens, at, kind=""):
        UsageRecord.objects.create(
            user=who,
            source="job" if kind else "chat",
            model=model,
            kind=kind,
            prompt_tokens=tokens,
            jobs=1 if kind else 0,
            at=at,
        )

    add(user, "gpt-4o", 100, local_noon)
    add(user, "gpt-4o", 50, local_noon - timedelta(days=1))
    add(user, "claude-3", 7, local_noon - timedelta(days=1))
    add(other_user, "gpt-4o", 1000, local_noon)
    add(user, "", 0, local_noon, kind="dalle")
    # 23:30 local yesterday is 15:30 UTC: it belongs to yesterday, not today.
    late = timezone.make_aware(dt.datetime.combine(today - timedelta(days=1), dt.time(23, 30)))
    add(user, "gpt-4o", 3, late)
    add(user, "gpt-4o", 9999, local_noon - timedelta(days=30))  # just outside 30 days

    series = usage.daily(user_id=user.pk, days=30)
    assert series.days[-1] == today and len(series.days) == 30
    assert series.series["gpt-4o"][-1] == 100
    assert series.series["gpt-4o"][-2] == 53
    assert series.series["claude-3"][-2] == 7
    assert sum(series.series["gpt-4o"]) == 153
    site = usage.daily(days=30)
    assert site.series["gpt-4o"][-1] == 1100
    jobs = usage.daily(user_id=user.pk, days=30, source="job")
    assert jobs.series == {"dalle": [0] * 29 + [1]}

    summaries = usage.summaries_for([user.pk, other_user.pk], local_noon - timedelta(days=2))
    assert summaries[user.pk].tokens_by_model == {"gpt-4o": 153, "claude-3": 7}
    assert summaries[user.pk].jobs_by_kind == {"dalle": 1}
    assert summaries[other_user.pk].tokens == 1000
    top = usage.top_users(local_noon - timedelta(days=2))
    assert [(row.username, row.tokens) for row in top] == [("bob", 1000), ("alice", 160)]


def test_month_boundaries_are_local(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    # 2026-02-28 20:00 UTC is already 1 March in Shanghai.
    moment = dt.datetime(2026, 2, 28, 20, 0, tzinfo=dt.UTC)
    start = usage.month_start(moment)
    assert (start.year, start.month, start.day, start.hour) == (2026, 3, 1, 0)
    assert start.utcoffset() == timedelta(hours=8)
    following = usage.next_month_start(moment)
    assert (following.month, following.day, following.hour) == (4, 1, 0)
