"""Per-user quotas, enforced in the service layer: the chat socket answers an `error` frame with
code "quota", the job form a 400 with the message; staff are exempt only when configured."""

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat.models import Conversation, Message
from media_jobs.models import Job
from studio.accounts import usage
from studio.accounts.models import Quota, RelayCredential, UsageRecord
from tests.integration.chat_helpers import done_for, frames_until, open_socket

# --- chat --------------------------------------------------------------------------------------


@pytest.fixture
def chat_user(settings, simulator, django_user_model):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.CHAT_OWNER_TIMEOUT = 0.3
    settings.QUOTAS_EXEMPT_STAFF = True
    user = django_user_model.objects.create_user("carol", password="pw-carol-123456")
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    conversation = Conversation.objects.create(user=user, model="gpt-4o")
    return user, conversation


def send(text: str, **extra) -> dict:
    return {"type": "send", "content": text, "client_id": str(uuid.uuid4()), **extra}


async def first_error(socket) -> dict:
    frames = await frames_until(socket, lambda f: f["type"] in ("error", "done"), seconds=15)
    return frames[-1]


def used_tokens(user, tokens: int, *, days_ago: int = 0) -> None:
    UsageRecord.objects.create(
        user=user,
        source="chat",
        model="gpt-4o",
        prompt_tokens=tokens,
        at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_model_outside_the_quota_is_refused_with_a_quota_frame(chat_user):
    user, conversation = chat_user
    await Quota.objects.acreate(user=user, allowed_models=["gpt-4o-mini", "claude-*"])
    socket, connected, _ = await open_socket(conversation.id, user)
    assert connected
    await socket.send_json_to(send("Hello", model="gpt-4o"))
    frame = await first_error(socket)
    assert frame["type"] == "error" and frame["code"] == "quota"
    assert frame["message_id"] is None
    assert frame["by"] == "studio"  # the page shows it as Studio's quota, not the relay key's
    assert "gpt-4o" in frame["detail"] and "gpt-4o-mini, claude-*" in frame["detail"]
    assert not await Message.objects.filter(conversation=conversation).aexists()

    await socket.send_json_to(send("Hello [[tokens=5]]", model="claude-3-haiku"))
    frames = await frames_until(socket, done_for())
    assert frames[-1]["status"] == "complete"  # a pattern match is allowed
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_monthly_token_quota_stops_chat_until_next_month(chat_user):
    user, conversation = chat_user
    await Quota.objects.acreate(user=user, tokens_per_month=1000)
    await sync_to_async(used_tokens)(user, 5000, days_ago=40)  # last month does not count
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send("Fine [[tokens=5]]"))
    frames = await frames_until(socket, done_for())
    assert frames[-1]["status"] == "complete"

    await sync_to_async(used_tokens)(user, 1000)
    await socket.send_json_to(send("One more"))
    frame = await first_error(socket)
    assert frame["code"] == "quota" and "1,000 tokens for this month" in frame["detail"]
    renews = usage.next_month_start()
    assert str(renews.year) in frame["detail"]
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_regenerate_is_held_to_the_quota_too(chat_user):
    user, conversation = chat_user
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send("Question [[tokens=5]]"))
    frames = await frames_until(socket, done_for())
    reply_id = frames[-1]["message_id"]
    await Quota.objects.acreate(user=user, tokens_per_month=1)
    await socket.send_json_to({"type": "regenerate", "message_id": reply_id})
    frame = await first_error(socket)
    assert frame["code"] == "quota" and frame["message_id"] == reply_id
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_staff_are_exempt_only_when_the_setting_says_so(chat_user, settings):
    user, conversation = chat_user
    user.is_staff = True
    await user.asave()
    await Quota.objects.acreate(user=user, allowed_models=["nothing-at-all"])
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send("As staff [[tokens=5]]"))
    frames = await frames_until(socket, done_for())
    assert frames[-1]["status"] == "complete"

    settings.QUOTAS_EXEMPT_STAFF = False
    await socket.send_json_to(send("Again"))
    frame = await first_error(socket)
    assert frame["code"] == "quota"
    await socket.disconnect()


@pytest.mark.django_db
def test_model_list_shows_only_allowed_models(chat_user, client):
    user, _conversation = chat_user
    client.force_login(user)
    everything = client.get("/chat/models.json").json()["models"]
    assert "gpt-4o" in everything and any(not m.startswith("gpt-4o") for m in everything)
    Quota.objects.create(user=user, allowed_models=["gpt-4o*"])
    allowed = client.get("/chat/models.json").json()["models"]  # from the cache, filtered
    assert allowed and all(model.startswith("gpt-4o") for model in allowed)


# --- jobs --------------------------------------------------------------------------------------


@pytest.fixture
def job_user(db, settings, user, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUOTAS_EXEMPT_STAFF = True
    settings.UPSTREAM_ALLOWED_BASE_URLS = ["https://relay.example.com"]
    credential = RelayCredential(user=user, base_url="https://relay.example.com")
    credential.set_api_key("sk-test-0000")
    credential.save()
    return user


def post_dalle(client, prompt="A quiet harbour at dusk"):
    return client.post(
        "/jobs/new/dalle/",
        {
            "prompt": prompt,
            "model": "dall-e-3",
            "size": "1024x1024",
            "quality": "standard",
            "style": "vivid",
            "n": "1",
        },
    )


@pytest.mark.django_db
def test_a_job_kind_outside_the_quota_is_refused_on_the_form(signed_in, job_user):
    Quota.objects.create(user=job_user, allowed_job_kinds=["tts"])
    response = post_dalle(signed_in, prompt="Keep this prompt")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Your account may not run DALL·E image jobs." in page
    assert "Keep this prompt" in page  # what was typed stays
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_jobs_per_day_counts_every_job_made_today(signed_in, job_user):
    Quota.objects.create(user=job_user, jobs_per_day=2, jobs_at_once=10)
    UsageRecord.objects.create(
        user=job_user, source="job", kind="dalle", jobs=1, at=timezone.now() - timedelta(days=1)
    )  # yesterday's does not count
    assert post_dalle(signed_in).status_code == 302
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(status="failed")
    retried = signed_in.post(f"/jobs/{job.id}/retry/")  # a retry is a job too
    assert retried.status_code == 302 and Job.objects.count() == 2
    refused = post_dalle(signed_in)
    assert refused.status_code == 400
    assert "limit of 2 jobs a day" in refused.content.decode()
    assert Job.objects.count() == 2


@pytest.mark.django_db
def test_jobs_at_once_defaults_to_four_and_follows_the_quota(signed_in, job_user):
    for _ in range(4):
        assert post_dalle(signed_in).status_code == 302
    refused = post_dalle(signed_in)
    assert refused.status_code == 400 and "4 jobs running" in refused.content.decode()
    Quota.objects.create(user=job_user, jobs_at_once=5)
    assert post_dalle(signed_in).status_code == 302
    assert Job.objects.count() == 5


@pytest.mark.django_db
def test_staff_job_quota_exemption_follows_the_setting(client, job_user, settings):
    job_user.is_staff = True
    job_user.save()
    client.force_login(job_user)
    Quota.objects.create(user=job_user, allowed_job_kinds=["tts"])
    assert post_dalle(client).status_code == 302
    settings.QUOTAS_EXEMPT_STAFF = False
    assert post_dalle(client).status_code == 400
