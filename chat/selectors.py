"""Reading conversations: the sidebar list, one conversation with all its messages, exports."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chat.forms import LIMITS, STOP_MAX
from chat.models import Conversation, Message


def conversation_for(user: User, conversation_id: UUID | str) -> Conversation:
    """The user's own conversation, or 404 (also for someone else's: no hint that it exists)."""
    conversation = Conversation.objects.filter(pk=conversation_id, user=user).first()
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


@dataclass(frozen=True)
class SidebarGroup:
    label: str
    conversations: list[Conversation]


def sidebar_groups(user: User, *, archived: bool = False, limit: int = 200) -> list[SidebarGroup]:
    """The user's conversations, newest first, under Today / Yesterday / Previous 7 days / Older."""
    today = timezone.localdate()
    bounds = [
        (_("Today"), today),
        (_("Yesterday"), today - timedelta(days=1)),
        (_("Previous 7 days"), today - timedelta(days=7)),
    ]
    groups: dict[str, list[Conversation]] = {}
    conversations = Conversation.objects.filter(user=user, archived=archived).only(
        "id", "title", "updated_at", "archived"
    )[:limit]
    for conversation in conversations:
        day = timezone.localdate(conversation.updated_at)
        label = next((str(name) for name, start in bounds if day >= start), str(_("Older")))
        groups.setdefault(label, []).append(conversation)
    return [SidebarGroup(label, items) for label, items in groups.items()]


def message_data(message: Message) -> dict[str, Any]:
    """A message as the page and the websocket frames show it."""
    error = None
    if message.error_code:
        error = {
            "code": message.error_code,
            "detail": message.error_detail,
            "retry_after": message.retry_after,
        }
    usage = None
    if message.completion_tokens is not None or message.prompt_tokens is not None:
        usage = {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "estimated": message.usage_estimated,
        }
    return {
        "id": str(message.id),
        "parent_id": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "seq": message.seq,
        "finish_reason": message.finish_reason,
        "error": error,
        "usage": usage,
        "client_id": str(message.client_id) if message.client_id else None,
        "created_at": message.created_at.isoformat(),
    }


def conversation_data(conversation: Conversation, urls: dict[str, str]) -> dict[str, Any]:
    """Everything the conversation page's script needs, in a constant number of queries."""
    messages = list(conversation.messages.order_by("created_at"))
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "estimated": False}
    for message in messages:
        usage["prompt_tokens"] += message.prompt_tokens or 0
        usage["completion_tokens"] += message.completion_tokens or 0
        usage["estimated"] = usage["estimated"] or message.usage_estimated
    return {
        "id": str(conversation.id),
        "title": conversation.display_title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "current_leaf": str(conversation.current_leaf_id) if conversation.current_leaf_id else None,
        "usage": usage,
        "messages": [message_data(message) for message in messages],
        "urls": urls,
        "limits": {**{name: list(bounds) for name, bounds in LIMITS.items()}, "stop_max": STOP_MAX},
    }


def branch(messages: list[Message], leaf_id: UUID | None) -> list[Message]:
    """The path from the root to `leaf_id` (oldest first)."""
    by_id = {message.id: message for message in messages}
    path = []
    current = by_id.get(leaf_id) if leaf_id else None
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return path[::-1]


def visible_branch(conversation: Conversation) -> list[Message]:
    """The branch the user is looking at: to the current leaf, or the newest one."""
    messages = list(conversation.messages.order_by("created_at"))
    if not messages:
        return []
    leaf_id = conversation.current_leaf_id or messages[-1].id
    return branch(messages, leaf_id)
