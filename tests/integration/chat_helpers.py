"""Helpers for websocket tests: a signed-in communicator and frame collection."""

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from studio.asgi import application


@sync_to_async
def session_cookie(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


async def open_socket(conversation_id, user=None, origin: bytes = b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", (await session_cookie(user)).encode()))
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation_id}/", headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def frames_until(communicator, predicate, seconds: float = 20) -> list[dict[str, Any]]:
    """Receive frames until one satisfies `predicate` (included), or fail after `seconds`."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while True:
            frame = await communicator.receive_json_from(timeout=seconds)
            frames.append(frame)
            if predicate(frame):
                return frames


def done_for(message_id=None):
    return lambda f: f["type"] == "done" and (message_id is None or f["message_id"] == message_id)


def assistant_id(frames) -> str:
    return next(
        f["message"]["id"]
        for f in frames
        if f["type"] == "message" and f["message"]["role"] == "assistant"
    )


def text_of(frames, message_id) -> str:
    """Snapshot content plus the deltas after it, checking seq has no gap and no repeat."""
    text, last = "", 0
    for frame in frames:
        if frame.get("message_id") != message_id:
            continue
        if frame["type"] == "snapshot":
            text, last = frame["content"], frame["seq"]
        elif frame["type"] == "delta":
            assert frame["seq"] == last + 1, f"seq jumped from {last} to {frame['seq']}"
            text += frame["text"]
            last = frame["seq"]
    return text
