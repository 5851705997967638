"""The chat websocket: streaming, resume, stop, regenerate, edit, errors, and who may connect."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from studio.accounts.models import RelayCredential
from tests.integration.chat_helpers import (
    assistant_id,
    done_for,
    frames_until,
    open_socket,
    text_of,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chat_setup(settings, simulator, django_user_model):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.CHAT_OWNER_TIMEOUT = 0.3
    user = django_user_model.objects.create_user("alice", password="pw-alice-123456")
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    conversation = Conversation.objects.create(user=user, model="gpt-4o")
    return user, conversation


def send_frame(text: str, **extra) -> dict:
    return {"type": "send", "content": text, "client_id": str(uuid.uuid4()), **extra}


async def db_message(message_id) -> Message:
    return await Message.objects.aget(pk=message_id)


async def test_send_streams_deltas_in_order_then_done(chat_setup):
    user, conversation = chat_setup
    socket, connected, _ = await open_socket(conversation.id, user)
    assert connected
    await socket.send_json_to(send_frame("Hello [[tokens=40]] [[tps=400]]"))
    frames = await frames_until(socket, done_for())
    reply_id = assistant_id(frames)
    roles = [f["message"]["role"] for f in frames if f["type"] == "message"]
    assert roles[:2] == ["user", "assistant"]
    deltas = [f for f in frames if f["type"] == "delta"]
    assert len(deltas) >= 2
    done = frames[-1]
    assert done["status"] == "complete" and done["usage"]["completion_tokens"] > 0
    stored = await db_message(reply_id)
    assert stored.status == "complete"
    assert text_of(frames, reply_id) == stored.content
    assert stored.seq == deltas[-1]["seq"]
    await socket.disconnect()


async def test_first_reply_gets_a_title(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Plan a picnic [[tps=500]]"))
    frames = await frames_until(socket, lambda f: f["type"] == "title", seconds=20)
    assert frames[-1]["title"]
    await conversation.arefresh_from_db()
    assert conversation.title == frames[-1]["title"]
    await socket.disconnect()


async def test_resume_mid_stream_has_no_gap_and_no_repeat(chat_setup):
    user, conversation = chat_setup
    first, _, _ = await open_socket(conversation.id, user)
    await first.send_json_to(send_frame("Long one [[tokens=120]] [[tps=120]]"))
    early = await frames_until(first, lambda f: f["type"] == "delta" and f["seq"] >= 3)
    reply_id = assistant_id(early)
    await first.disconnect()  # the tab closes; the reply goes on

    await asyncio.sleep(0.3)
    second, _, _ = await open_socket(conversation.id, user)
    await second.send_json_to({"type": "resume", "message_id": reply_id, "after_seq": 0})
    frames = await frames_until(second, done_for(reply_id))
    assert frames[0]["type"] == "snapshot" and frames[0]["seq"] >= 3
    stored = await db_message(reply_id)
    assert stored.status == "complete"
    assert text_of(frames, reply_id) == stored.content
    await second.disconnect()


async def test_two_sockets_both_stream(chat_setup):
    user, conversation = chat_setup
    one, _, _ = await open_socket(conversation.id, user)
    two, _, _ = await open_socket(conversation.id, user)
    await one.send_json_to(send_frame("Both of you [[tokens=30]] [[tps=300]]"))
    frames_one = await frames_until(one, done_for())
    frames_two = await frames_until(two, done_for())
    reply_id = assistant_id(frames_one)
    assert text_of(frames_one, reply_id) == text_of(frames_two, reply_id)
    assert text_of(frames_two, reply_id)
    await one.disconnect()
    await two.disconnect()


async def test_stop_keeps_the_text_so_far(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Go on [[tokens=400]] [[tps=40]]"))
    frames = await frames_until(socket, lambda f: f["type"] == "delta" and f["seq"] >= 2)
    reply_id = assistant_id(frames)
    await socket.send_json_to({"type": "stop", "message_id": reply_id})
    frames += await frames_until(socket, done_for(reply_id))
    assert frames[-1]["status"] == "stopped"
    stored = await db_message(reply_id)
    assert stored.status == "stopped"
    assert stored.content and stored.content == text_of(frames, reply_id)
    assert stored.completion_tokens < 400
    await socket.disconnect()


async def test_regenerate_keeps_the_earlier_answer_as_a_sibling(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Tell me [[tps=500]]"))
    frames = await frames_until(socket, done_for())
    first_reply = assistant_id(frames)
    await socket.send_json_to({"type": "regenerate", "message_id": first_reply})
    frames = await frames_until(socket, done_for())
    second_reply = assistant_id(frames)
    assert second_reply != first_reply
    first, second = await db_message(first_reply), await db_message(second_reply)
    assert first.parent_id == second.parent_id
    await conversation.arefresh_from_db()
    assert conversation.current_leaf_id == second.id
    await socket.disconnect()


async def test_edit_makes_a_new_branch_and_keeps_the_old(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Original question [[tps=500]]"))
    frames = await frames_until(socket, done_for())
    original = next(f["message"] for f in frames if f["type"] == "message")
    await socket.send_json_to(
        {"type": "edit", "message_id": original["id"], "content": "Better question [[tps=500]]"}
    )
    frames = await frames_until(socket, done_for())
    edited = next(
        f["message"] for f in frames if f["type"] == "message" and f["message"]["role"] == "user"
    )
    assert edited["parent_id"] == original["parent_id"]
    assert edited["content"].startswith("Better question")
    assert await Message.objects.filter(pk=original["id"]).aexists()
    await socket.disconnect()


async def test_error_mid_stream_keeps_partial_text(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Fail me [[error:midstream]] [[tps=200]]"))
    frames = await frames_until(socket, done_for())
    reply_id = assistant_id(frames)
    error = next(f for f in frames if f["type"] == "error")
    assert error["message_id"] == reply_id and error["detail"]
    stored = await db_message(reply_id)
    assert stored.status == "error"
    assert stored.content and stored.content == text_of(frames, reply_id)
    assert stored.error_detail
    await socket.disconnect()


async def test_a_stream_cut_half_way_keeps_the_text_and_says_so(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Cut me [[die]] [[tps=200]]"))
    frames = await frames_until(socket, done_for())
    reply_id = assistant_id(frames)
    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "protocol"
    stored = await db_message(reply_id)
    assert stored.status == "error"
    assert stored.content and stored.content == text_of(frames, reply_id)
    await socket.disconnect()


async def test_rate_limit_says_when_to_retry(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Busy? [[error:429]]"))
    frames = await frames_until(socket, done_for())
    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == 7
    assert "饱和" in error["detail"]
    await socket.disconnect()


async def test_send_without_a_key_is_refused_and_nothing_is_stored(chat_setup):
    user, conversation = chat_setup
    await RelayCredential.objects.filter(user=user).adelete()
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to(send_frame("Hello"))
    frame = await socket.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["code"] == "no_key" and frame["message_id"] is None
    assert not await Message.objects.filter(conversation=conversation).aexists()
    await socket.disconnect()


async def test_the_same_client_id_is_sent_once(chat_setup):
    user, conversation = chat_setup
    socket, _, _ = await open_socket(conversation.id, user)
    frame = send_frame("Once [[tps=500]]")
    await socket.send_json_to(frame)
    await frames_until(socket, done_for())
    await socket.send_json_to(frame)  # a resend after a reconnect
    replayed = await frames_until(
        socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant"
    )
    assert [f["message"]["role"] for f in replayed if f["type"] == "message"] == [
        "user",
        "assistant",
    ]
    assert replayed[0]["message"]["client_id"] == frame["client_id"]
    assert replayed[1]["message"]["status"] == "complete"
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1
    await socket.disconnect()


async def test_resume_of_a_dead_generation_reports_it_interrupted(chat_setup):
    user, conversation = chat_setup
    orphan = await Message.objects.acreate(
        conversation=conversation, role="assistant", status="streaming", content="half a rep", seq=4
    )
    await Message.objects.filter(pk=orphan.pk).aupdate(
        updated_at=orphan.updated_at - timedelta(minutes=5)
    )
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to({"type": "resume", "message_id": str(orphan.pk), "after_seq": 0})
    frames = await frames_until(socket, lambda f: f["type"] == "snapshot")
    assert frames[-1]["status"] == "interrupted"
    assert frames[-1]["content"] == "half a rep"
    await socket.disconnect()


async def test_resume_with_no_owner_reports_it_interrupted_at_once(chat_setup):
    user, conversation = chat_setup
    orphan = await Message.objects.acreate(
        conversation=conversation, role="assistant", status="streaming", content="cut", seq=2
    )
    socket, _, _ = await open_socket(conversation.id, user)
    await socket.send_json_to({"type": "resume", "message_id": str(orphan.pk), "after_seq": 0})
    frames = await frames_until(socket, lambda f: f["type"] == "done")
    assert frames[0]["type"] == "snapshot" and frames[0]["content"] == "cut"
    assert frames[-1]["status"] == "interrupted"
    await socket.disconnect()


async def test_anonymous_socket_is_refused(chat_setup):
    _, conversation = chat_setup
    _socket, connected, code = await open_socket(conversation.id, None)
    assert not connected and code == 4401


async def test_someone_elses_conversation_is_refused(chat_setup, django_user_model):
    _, conversation = chat_setup
    mallory = await sync_to_async(django_user_model.objects.create_user)("mallory", password="x")
    _socket, connected, code = await open_socket(conversation.id, mallory)
    assert not connected and code == 4404


async def test_foreign_origin_is_refused(chat_setup):
    user, conversation = chat_setup
    _socket, connected, _ = await open_socket(conversation.id, user, origin=b"https://evil.example")
    assert not connected
