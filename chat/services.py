"""Writing conversations: sending, regenerating, editing, branches, settings, deletion.

Functions here are synchronous and transactional; the websocket consumer calls them through
`database_sync_to_async`, then hands the returned plan to the generation registry.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.models import Conversation, Message
from chat.selectors import branch
from studio.accounts import quotas
from studio.accounts import services as accounts
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.upstream import RelayCredentials

MAX_CONTENT = 100_000
# A generation checkpoints at least this often, even when the relay is silent...
HEARTBEAT_SECONDS = 5.0
# ...so a pending/streaming message untouched for this long has lost its process.
STALE_SECONDS = 30.0
TITLE_MAX = 200


class ChatRefused(Exception):
    """A request the user must be told about, as an `error` frame or a form error."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class GenerationPlan:
    """What the registry needs to produce one assistant reply."""

    conversation_id: uuid.UUID
    user_id: int  # whose usage the reply's tokens are
    message: Message  # the assistant message to fill
    new_messages: list[Message]  # created by this request, to announce (user msg, assistant)
    credentials: RelayCredentials
    model: str
    prompt: list[dict[str, str]]
    params: dict[str, Any]
    wants_title: bool


def create_conversation(user: User, *, model: str = "") -> Conversation:
    return Conversation.objects.create(user=user, model=model[:200] or accounts.default_model(user))


def rename(conversation: Conversation, title: str) -> str:
    conversation.title = " ".join(title.split())[:TITLE_MAX]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation.display_title


def set_archived(conversation: Conversation, archived: bool) -> None:
    conversation.archived = archived
    conversation.save(update_fields=["archived", "updated_at"])


def update_settings(conversation: Conversation, cleaned: dict[str, Any], params: dict) -> None:
    conversation.model = cleaned.get("model") or conversation.model
    conversation.system_prompt = cleaned.get("system_prompt", "")
    conversation.params = params
    conversation.save(update_fields=["model", "system_prompt", "params", "updated_at"])


def select_branch(conversation: Conversation, leaf_id: object) -> None:
    leaf = _message(conversation, leaf_id)
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)


@transaction.atomic
def delete_message(conversation: Conversation, message_id: object) -> list[str]:
    """Delete a message and everything under it; returns the ids removed."""
    message = _message(conversation, message_id)
    if message.status in (Message.Status.PENDING, Message.Status.STREAMING) and not _stale(message):
        raise ChatRefused("busy", _("Stop the reply before deleting it."))
    doomed = _subtree_ids(conversation, message.id)
    leaf = conversation.current_leaf_id
    if leaf in doomed:
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=message.parent_id)
    Message.objects.filter(pk__in=doomed).delete()
    return [str(pk) for pk in doomed]


def _subtree_ids(conversation: Conversation, root_id: uuid.UUID) -> set[uuid.UUID]:
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for pk, parent_id in conversation.messages.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, todo = set(), [root_id]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def _message(conversation: Conversation, message_id: object) -> Message:
    try:
        return conversation.messages.get(pk=uuid.UUID(str(message_id)))
    except (Message.DoesNotExist, ValueError) as error:
        raise ChatRefused("not_found", _("That message does not exist.")) from error


def _stale(message: Message) -> bool:
    return message.updated_at < timezone.now() - timedelta(seconds=STALE_SECONDS)


def _credentials(user: User) -> RelayCredentials:
    try:
        return relay_credentials_for(user)
    except MissingCredential as missing:
        raise ChatRefused("no_key", str(missing)) from missing


def _check_quota(user: User, model: str) -> None:
    """The user's quota (models allowed, tokens this month) must allow this reply."""
    try:
        quotas.check_chat_allowed(user, model)
    except quotas.QuotaRefused as refused:
        raise ChatRefused(refused.code, str(refused)) from refused


def _clean_content(content: object) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ChatRefused("invalid", _("Type a message first."))
    if len(content) > MAX_CONTENT:
        raise ChatRefused("invalid", _("The message is too long (at most 100,000 characters)."))
    return content


def _prompt(conversation: Conversation, path: list[Message]) -> list[dict[str, str]]:
    prompt = []
    if conversation.system_prompt.strip():
        prompt.append({"role": "system", "content": conversation.system_prompt})
    for message in path:
        if message.role == Message.Role.ASSISTANT and not message.content:
            continue  # a reply that failed before any text adds nothing to the context
        prompt.append({"role": message.role, "content": message.content})
    return prompt


def _plan(
    conversation: Conversation,
    history: list[Message],
    user_message: Message,
    model: str,
    params: dict[str, Any],
    credentials: RelayCredentials,
    created: list[Message],
) -> GenerationPlan:
    """Create the reply placeholder and everything its generation needs. `history` is the
    conversation as loaded before this request (one query serves every check)."""
    assistant = Message.objects.create(
        conversation=conversation,
        parent=user_message,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,  # the registry starts it right after this commits
        model=model,
    )
    conversation.current_leaf = assistant
    conversation.model = model
    conversation.save(update_fields=["current_leaf", "model", "updated_at"])
    path = branch([*history, *created], user_message.id)
    wants_title = not conversation.title and not any(
        m.role == Message.Role.ASSISTANT and m.status == Message.Status.COMPLETE for m in history
    )
    return GenerationPlan(
        conversation_id=conversation.id,
        user_id=conversation.user_id,
        message=assistant,
        new_messages=[*created, assistant],
        credentials=credentials,
        model=model,
        prompt=_prompt(conversation, path),
        params={**conversation.params, **params},
        wants_title=wants_title,
    )


def _history(conversation: Conversation) -> list[Message]:
    """All messages of the conversation: one query serves every check of a request."""
    return list(conversation.messages.order_by("created_at"))


def _refuse_if_busy(history: list[Message]) -> None:
    """One reply at a time per conversation (a dead process's reply does not count)."""
    recent = timezone.now() - timedelta(seconds=STALE_SECONDS)
    running = (Message.Status.PENDING, Message.Status.STREAMING)
    if any(m.status in running and m.updated_at >= recent for m in history):
        raise ChatRefused("busy", _("Wait for the current reply to finish, or stop it."))


def _find(history: list[Message], message_id: object) -> Message:
    try:
        wanted = uuid.UUID(str(message_id))
    except ValueError:
        wanted = None
    found = next((m for m in history if m.id == wanted), None)
    if found is None:
        raise ChatRefused("not_found", _("That message does not exist."))
    return found


def _model(conversation: Conversation, requested: object) -> str:
    model = requested if isinstance(requested, str) and requested.strip() else conversation.model
    if not model:
        raise ChatRefused("invalid", _("Choose a model first."))
    return model.strip()[:200]


def plan_send(
    user: User,
    conversation: Conversation,
    *,
    content: object,
    model: object,
    params: dict[str, Any],
    client_id: object,
    parent_id: object,
) -> GenerationPlan | None:
    """A new user message under `parent_id` (default: the current leaf) and its reply.

    Returns None when this client_id was already sent (a resend after a reconnect).
    """
    try:
        return _plan_send(
            user,
            conversation,
            content=content,
            model=model,
            params=params,
            client_id=client_id,
            parent_id=parent_id,
        )
    except IntegrityError:
        return None  # the same client_id raced in from another socket


@transaction.atomic
def _plan_send(
    user: User,
    conversation: Conversation,
    *,
    content: object,
    model: object,
    params: dict[str, Any],
    client_id: object,
    parent_id: object,
) -> GenerationPlan | None:
    text = _clean_content(content)
    try:
        client_uuid = uuid.UUID(str(client_id)) if client_id else None
    except ValueError as error:
        raise ChatRefused("invalid", _("Malformed client id.")) from error
    credentials = _credentials(user)
    chosen_model = _model(conversation, model)
    history = _history(conversation)
    if client_uuid and any(m.client_id == client_uuid for m in history):
        return None
    _check_quota(user, chosen_model)
    _refuse_if_busy(history)
    if parent_id:
        parent: Message | None = _find(history, parent_id)
    else:
        parent = next((m for m in history if m.id == conversation.current_leaf_id), None)
    user_message = Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Message.Role.USER,
        content=text,
        client_id=client_uuid,
    )
    return _plan(
        conversation, history, user_message, chosen_model, params, credentials, [user_message]
    )


@transaction.atomic
def plan_regenerate(user: User, conversation: Conversation, message_id: object) -> GenerationPlan:
    """Another answer to the same question, kept beside the earlier ones."""
    history = _history(conversation)
    _refuse_if_busy(history)
    message = _find(history, message_id)
    if message.role != Message.Role.ASSISTANT or message.parent_id is None:
        raise ChatRefused("invalid", _("Only a reply can be regenerated."))
    question = _find(history, message.parent_id)
    credentials = _credentials(user)
    model = conversation.model or message.model
    _check_quota(user, model)
    return _plan(conversation, history, question, model, {}, credentials, [])


@transaction.atomic
def plan_edit(
    user: User, conversation: Conversation, message_id: object, content: object
) -> GenerationPlan:
    """A changed copy of a user message, as a new branch beside the original."""
    history = _history(conversation)
    _refuse_if_busy(history)
    original = _find(history, message_id)
    if original.role != Message.Role.USER:
        raise ChatRefused("invalid", _("Only your own messages can be edited."))
    text = _clean_content(content)
    credentials = _credentials(user)
    model = _model(conversation, None)
    _check_quota(user, model)
    edited = Message.objects.create(
        conversation=conversation,
        parent_id=original.parent_id,
        role=Message.Role.USER,
        content=text,
    )
    return _plan(conversation, history, edited, model, {}, credentials, [edited])


def mark_interrupted(*, conversation: Conversation | None = None) -> int:
    """Messages whose generation died with its process: keep the text, say so."""
    stale = Message.objects.filter(
        status__in=[Message.Status.PENDING, Message.Status.STREAMING],
        updated_at__lt=timezone.now() - timedelta(seconds=STALE_SECONDS),
    )
    if conversation is not None:
        stale = stale.filter(conversation=conversation)
    return stale.update(status=Message.Status.INTERRUPTED, updated_at=timezone.now())


def mark_orphaned(message_id: str) -> None:
    """No process answered for this message's generation: it died. (Should a slow owner still
    be alive, its final write restores the real status.)"""
    Message.objects.filter(
        pk=message_id, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
    ).update(status=Message.Status.INTERRUPTED, updated_at=timezone.now())


def estimate_tokens(text: str) -> int:
    """Rough token count when the relay sends no usage: CJK ~1 per character, else ~4 chars."""
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return cjk + max(0, len(text) - cjk) // 4 + (1 if text else 0)
