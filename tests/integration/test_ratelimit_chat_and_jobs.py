"""Per-user rate limits where users meet them: chat socket sends and job submissions, on the
database counter and on the real local Redis."""

import uuid

import pytest
import redis

from chat.models import Conversation, Message
from media_jobs.models import Job
from studio.accounts.models import RelayCredential
from studio.ratelimit import backends, limiter
from tests.conftest import skip_or_fail
from tests.integration.chat_helpers import done_for, frames_until, open_socket

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            skip_or_fail(f"Redis does not answer at {REDIS_URL}")
        settings.REDIS_URL = REDIS_URL
    else:
        settings.REDIS_URL = ""
    return request.param


@pytest.fixture
def clock(monkeypatch, settings):
    """The database counter, and its clock moved by hand."""
    settings.REDIS_URL = ""

    class Clock:
        now = 1_800_000_000_000

        def advance(self, seconds: float) -> None:
            self.now += int(seconds * 1000)

    fake = Clock()
    monkeypatch.setattr(backends, "now_ms", lambda: fake.now)
    return fake


def with_key(user, simulator) -> None:
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()


def fresh_counters(*users) -> None:
    """Redis outlives the test database: forget what earlier runs counted for these user ids."""
    for user in users:
        for action in ("chat", "jobs"):
            limiter.reset(f"{action}:user:{user.pk}")


# --------------------------------------------------------------------------- chat


@pytest.fixture
def chat(settings, simulator, django_user_model):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.RATELIMIT_CHAT = (2, 60)
    settings.RATELIMIT_EXEMPT_STAFF = False
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123456")
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
    for user in (alice, bob):
        with_key(user, simulator)
    fresh_counters(alice, bob)
    return alice, bob


def send_frame(text: str) -> dict:
    return {"type": "send", "content": text, "client_id": str(uuid.uuid4())}


async def nothing_more(socket) -> bool:
    return await socket.receive_nothing(timeout=0.5)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_too_many_sends_get_a_rate_limited_frame_and_generate_nothing(backend, chat):
    alice, bob = chat
    conversation = await Conversation.objects.acreate(user=alice, model="gpt-4o")
    socket, connected, _ = await open_socket(conversation.id, alice)
    assert connected
    for text in ("One [[tps=500]]", "Two [[tps=500]]"):
        await socket.send_json_to(send_frame(text))
        await frames_until(socket, done_for())

    await socket.send_json_to(send_frame("Three [[tps=500]]"))
    error = await socket.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "rate_limited"
    assert error["message_id"] is None
    assert isinstance(error["retry_after"], int) and 1 <= error["retry_after"] <= 60
    assert "too quickly" in error["detail"] and "Try again in" in error["detail"]
    assert await nothing_more(socket)
    assert await Message.objects.filter(conversation=conversation).acount() == 4
    assert not await Message.objects.filter(content__startswith="Three").aexists()

    # Regenerating starts a generation too: refused the same way, about that message.
    reply = await Message.objects.filter(conversation=conversation, role="assistant").afirst()
    await socket.send_json_to({"type": "regenerate", "message_id": str(reply.id)})
    error = await socket.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited" and error["message_id"] == str(reply.id)
    assert await Message.objects.filter(conversation=conversation).acount() == 4
    await socket.disconnect()

    # Someone else's counter is their own.
    theirs = await Conversation.objects.acreate(user=bob, model="gpt-4o")
    other, _, _ = await open_socket(theirs.id, bob)
    await other.send_json_to(send_frame("Bob here [[tps=500]]"))
    frames = await frames_until(other, done_for())
    assert frames[-1]["status"] == "complete"
    await other.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_sending_works_again_when_the_window_ends(clock, chat):
    alice, _ = chat
    conversation = await Conversation.objects.acreate(user=alice, model="gpt-4o")
    socket, _, _ = await open_socket(conversation.id, alice)
    for text in ("One [[tps=500]]", "Two [[tps=500]]"):
        await socket.send_json_to(send_frame(text))
        await frames_until(socket, done_for())
    clock.advance(45)
    await socket.send_json_to(send_frame("Too soon [[tps=500]]"))
    error = await socket.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited" and error["retry_after"] == 15
    clock.advance(15)
    await socket.send_json_to(send_frame("Now [[tps=500]]"))
    frames = await frames_until(socket, done_for())
    assert frames[-1]["status"] == "complete"
    await socket.disconnect()


# --------------------------------------------------------------------------- jobs


@pytest.fixture
def jobs(settings, simulator, tmp_path, user, other_user):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RATELIMIT_JOBS = (2, 60)
    settings.RATELIMIT_EXEMPT_STAFF = False
    for someone in (user, other_user):
        with_key(someone, simulator)
    fresh_counters(user, other_user)
    return user, other_user


def submit(client, prompt: str):
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


@pytest.mark.django_db(transaction=True)
def test_too_many_job_submissions_are_refused_on_the_form_with_the_prompt_kept(
    backend, jobs, client
):
    user, other_user = jobs
    client.force_login(user)
    assert submit(client, "First lighthouse").status_code == 302
    assert submit(client, "Second lighthouse").status_code == 302

    refused = submit(client, "Third lighthouse")
    page = refused.content.decode()
    assert refused.status_code == 400  # a refused form, shown again with why
    assert "You are starting jobs too quickly. Try again in" in page
    assert 'data-testid="form-error"' in page
    assert "Third lighthouse" in page  # what was typed stays in the form
    assert Job.objects.filter(user=user).count() == 2

    # A retry is a submission too.
    first = Job.objects.filter(user=user).earliest("created_at")
    Job.objects.filter(pk=first.pk).update(status="failed")
    answer = client.post(f"/jobs/{first.id}/retry/", follow=True)
    assert "You are starting jobs too quickly" in answer.content.decode()
    assert Job.objects.filter(user=user).count() == 2

    client.force_login(other_user)
    assert submit(client, "Someone else's lighthouse").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_job_submissions_work_again_when_the_window_ends(clock, jobs, client):
    user, _ = jobs
    client.force_login(user)
    submit(client, "One")
    submit(client, "Two")
    clock.advance(30)
    assert "Try again in 30 seconds" in submit(client, "Three").content.decode()
    clock.advance(30)
    assert submit(client, "Three").status_code == 302
    assert Job.objects.filter(user=user).count() == 3


@pytest.mark.django_db(transaction=True)
def test_staff_are_exempt_only_when_configured(settings, backend, jobs, client):
    user, _ = jobs
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    settings.RATELIMIT_EXEMPT_STAFF = True
    for prompt in ("One", "Two", "Three"):
        assert submit(client, prompt).status_code == 302
    Job.objects.filter(user=user).update(status="succeeded")  # room under the jobs-at-once quota
    settings.RATELIMIT_EXEMPT_STAFF = False
    assert submit(client, "Four").status_code == 302  # the first counted submission
    assert submit(client, "Five").status_code == 302
    assert "too quickly" in submit(client, "Six").content.decode()
