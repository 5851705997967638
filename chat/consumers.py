"""The chat websocket (`/ws/chat/<conversation uuid>/`), protocol in ARCHITECTURE.md §3.

The consumer is thin: it checks the owner, validates frames, calls chat.services, and relays
group frames to its socket. Generations belong to the registry, not to the socket.
"""

import asyncio
import math
from typing import Any, cast

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from chat import services
from chat.forms import validate_params
from chat.generation import get_registry, group_name
from chat.models import Conversation, Message
from chat.selectors import message_data
from studio.ratelimit import limiter

GENERATING_FRAMES = {"send", "regenerate", "edit"}
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation
    user: User

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = cast(User, user)
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation = await Conversation.objects.filter(
            pk=conversation_id, user=self.user
        ).afirst()
        if conversation is None:
            await self.close(code=CLOSE_NOT_FOUND)  # someone else's looks like no conversation
            return
        self.conversation = conversation
        self.group = group_name(conversation.id)
        # message id -> deltas buffered while we wait for the owner's snapshot
        self.resuming: dict[str, list[dict[str, Any]]] = {}
        # message id -> seq of the snapshot this socket was given: later deltas at or below it
        # are dropped (over Redis, a delta sent just before the owner answered can arrive after
        # its answer, which already holds that delta's text)
        self.snapshot_seq: dict[str, int] = {}
        self.timers: set[asyncio.Task[None]] = set()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for timer in getattr(self, "timers", ()):
            timer.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- frames from the browser -------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        handlers = {
            "send": self.on_send,
            "stop": self.on_stop,
            "regenerate": self.on_regenerate,
            "edit": self.on_edit,
            "resume": self.on_resume,
        }
        kind = content.get("type") if isinstance(content, dict) else None
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.send_error(None, "invalid", _("Unknown frame type."))
            return
        if kind in GENERATING_FRAMES and await self.refused_as_too_fast(content):
            return
        try:
            await handler(content)
        except services.ChatRefused as refused:
            message_id = content.get("message_id") if kind != "send" else None
            # "quota" from chat.services is the user's Studio quota, not the relay key's.
            by_studio = refused.code == "quota"
            await self.send_error(message_id, refused.code, refused.detail, by_studio=by_studio)

    async def refused_as_too_fast(self, frame: dict[str, Any]) -> bool:
        """Each send, regenerate and edit starts a generation: RATELIMIT_CHAT per user."""
        verdict = await limiter.ahit_user(self.user, "chat", settings.RATELIMIT_CHAT)
        if not isinstance(verdict, limiter.Limited):
            return False
        detail = _("You are sending messages too quickly. Try again in %(wait)s.") % {
            "wait": limiter.wait_text(verdict.retry_after)
        }
        message_id = frame.get("message_id") if frame["type"] != "send" else None
        retry_after = math.ceil(verdict.retry_after)
        await self.send_error(
            message_id, "rate_limited", detail, retry_after=retry_after, by_studio=True
        )
        return True

    async def on_send(self, frame: dict[str, Any]) -> None:
        params, errors = validate_params(frame.get("params") or {})
        if errors:
            detail = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
            raise services.ChatRefused("invalid", detail)
        plan = await database_sync_to_async(services.plan_send)(
            self.user,
            self.conversation,
            content=frame.get("content"),
            model=frame.get("model"),
            params=params,
            client_id=frame.get("client_id"),
            parent_id=frame.get("parent_id"),
        )
        if plan is None:
            await self.replay_sent(frame.get("client_id"))
            return
        await self.start(plan)

    async def replay_sent(self, client_id: object) -> None:
        """A resend of something already sent (after a reconnect): show this socket what
        became of it instead of sending it twice."""
        sent = await Message.objects.filter(
            conversation=self.conversation, client_id=str(client_id)
        ).afirst()
        if sent is None:
            return
        replies = Message.objects.filter(parent=sent, role=Message.Role.ASSISTANT)
        reply = await replies.order_by("-created_at").afirst()
        for message in (sent, reply):
            if message is not None:
                await self.send_json({"type": "message", "message": message_data(message)})
        if reply is not None and not reply.finished:
            await self.on_resume({"message_id": str(reply.id)})

    async def on_regenerate(self, frame: dict[str, Any]) -> None:
        plan = await database_sync_to_async(services.plan_regenerate)(
            self.user, self.conversation, frame.get("message_id")
        )
        await self.start(plan)

    async def on_edit(self, frame: dict[str, Any]) -> None:
        plan = await database_sync_to_async(services.plan_edit)(
            self.user, self.conversation, frame.get("message_id"), frame.get("content")
        )
        await self.start(plan)

    async def start(self, plan: services.GenerationPlan) -> None:
        for message in plan.new_messages:
            await self.channel_layer.group_send(
                self.group, {"type": "chat.message", "message": message_data(message)}
            )
        await get_registry().start(plan)

    async def on_stop(self, frame: dict[str, Any]) -> None:
        message_id = str(frame.get("message_id", ""))
        await get_registry().request_stop(self.conversation.id, message_id)

    async def on_resume(self, frame: dict[str, Any]) -> None:
        message_id = str(frame.get("message_id", ""))
        message = await self.own_message(message_id)
        if message.finished:
            await self.send_snapshot(message_id, message.seq, message.content, message.status)
            await self.send_done(message)
            return
        # Join first (done in connect), then ask the owner; buffer deltas until it answers.
        self.resuming[message_id] = []
        await get_registry().request_snapshot(self.conversation.id, message_id, self.channel_name)
        timer = asyncio.create_task(self.resume_after_timeout(message_id))
        self.timers.add(timer)
        timer.add_done_callback(self.timers.discard)

    async def resume_after_timeout(self, message_id: str) -> None:
        await asyncio.sleep(settings.CHAT_OWNER_TIMEOUT)
        await self.resume_from_database(message_id)

    async def resume_from_database(self, message_id: str) -> None:
        """No owner answered: the generation has ended or died; the row is the snapshot."""
        if message_id not in self.resuming:
            return
        await database_sync_to_async(services.mark_orphaned)(message_id)
        message = await self.own_message(message_id)
        await self.finish_resume(message_id, message.seq, message.content, message.status)
        if message.finished:
            await self.send_done(message)

    async def own_message(self, message_id: str) -> Message:
        try:
            message = await Message.objects.filter(
                pk=message_id, conversation=self.conversation
            ).afirst()
        except (ValueError, TypeError):
            message = None
        if message is None:
            raise services.ChatRefused("not_found", _("That message does not exist."))
        return message

    async def finish_resume(self, message_id: str, seq: int, content: str, status: str) -> None:
        buffered = self.resuming.pop(message_id, None)
        if buffered is None:
            return  # already resumed (the owner answered, or the database did)
        self.snapshot_seq[message_id] = seq
        await self.send_snapshot(message_id, seq, content, status)
        for frame in buffered:
            if frame["seq"] > seq:
                await self.send_json(frame)

    async def send_snapshot(self, message_id: str, seq: int, content: str, status: str) -> None:
        await self.send_json(
            {
                "type": "snapshot",
                "message_id": message_id,
                "seq": seq,
                "content": content,
                "status": status,
            }
        )

    async def send_done(self, message: Message) -> None:
        await self.send_json(
            {
                "type": "done",
                "message_id": str(message.id),
                "status": message.status,
                "finish_reason": message.finish_reason,
                "usage": message_data(message)["usage"],
                "seq": message.seq,
            }
        )

    async def send_error(
        self,
        message_id: object,
        code: str,
        detail: str,
        retry_after: float | None = None,
        *,
        by_studio: bool = False,
    ) -> None:
        frame = {"type": "error", "message_id": message_id, "code": code, "detail": detail}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        if by_studio:
            frame["by"] = "studio"  # Studio's own limit, not the relay's: the page says so
        await self.send_json(frame)

    # --- frames from the group (generations, other sockets) ---------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": event["message"]})

    async def chat_delta(self, event: dict[str, Any]) -> None:
        frame = {key: event[key] for key in ("message_id", "seq", "text")}
        frame["type"] = "delta"
        if event["seq"] <= self.snapshot_seq.get(event["message_id"], 0):
            return  # already in the snapshot this socket was given
        buffered = self.resuming.get(event["message_id"])
        if buffered is not None:
            buffered.append(frame)
        else:
            await self.send_json(frame)

    async def chat_snapshot_reply(self, event: dict[str, Any]) -> None:
        await self.finish_resume(
            event["message_id"], event["seq"], event["content"], event["status"]
        )

    async def chat_done(self, event: dict[str, Any]) -> None:
        if event["message_id"] in self.resuming:
            # A resume still waiting for its snapshot learns the end from the database instead.
            await self.resume_from_database(event["message_id"])
            return
        await self.send_json({**event, "type": "done"})

    async def chat_error(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "error"})

    async def chat_title(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "title"})
