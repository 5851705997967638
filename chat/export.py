"""Conversation exports: the visible branch as Markdown, the whole tree as JSON."""

import json
from typing import Any

from chat.models import Conversation
from chat.selectors import message_data, visible_branch


def as_markdown(conversation: Conversation) -> str:
    lines = [f"# {conversation.display_title}", ""]
    if conversation.model:
        lines += [f"Model: {conversation.model}", ""]
    if conversation.system_prompt:
        lines += ["## System", "", conversation.system_prompt, ""]
    for message in visible_branch(conversation):
        heading = "User" if message.role == "user" else f"Assistant ({message.model or '?'})"
        note = (
            "" if message.status == "complete" or message.role == "user" else f" — {message.status}"
        )
        lines += [f"## {heading}{note}", "", message.content, ""]
    return "\n".join(lines).rstrip() + "\n"


def as_json(conversation: Conversation) -> str:
    data: dict[str, Any] = {
        "id": str(conversation.id),
        "title": conversation.display_title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "created_at": conversation.created_at.isoformat(),
        "current_leaf": str(conversation.current_leaf_id) if conversation.current_leaf_id else None,
        "messages": [message_data(m) for m in conversation.messages.order_by("created_at")],
    }
    return json.dumps(data, ensure_ascii=False, indent=2)
