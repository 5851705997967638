"""Full-text search over a user's conversation titles and message text.

The query is split on whitespace; every word must appear (AND), case-insensitively, as a
substring. The indexes come from chat/migrations/0002_search_index.py:

- SQLite: the FTS5 table `chat_search_fts` (trigram tokenizer). Words of 3+ characters are
  matched with `MATCH`, each quoted as an FTS5 string so query syntax in user input (`"`, `OR`,
  `*`, `NEAR(`, ...) is plain text. Trigrams cannot index words of 1-2 characters (such as the
  Chinese 模型), so those words are checked with `LIKE` on the base table; a query made only of
  such words scans the user's own messages (reached through the conversation index), not the
  whole table. SQLite's LIKE folds ASCII case only, so short non-ASCII words match case-sensitively.
- PostgreSQL: `ILIKE '%word%'` (with %, _ and \\ escaped), served by the pg_trgm GIN indexes on
  chat_message.content and chat_conversation.title for words of 3+ characters.
- Other databases: Django's `icontains` without an index.

Snippets are built in Python from the stored text, so both databases give the same HTML.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import mark_safe

from chat.models import Conversation, Message

# Trigrams index only substrings of at least this many characters.
TRIGRAM = 3
MAX_QUERY_CHARS = 200
MAX_WORDS = 10
SNIPPET_CHARS = 160
# Characters of context kept before the first match.
SNIPPET_LEAD = 50

FTS_TABLE = "chat_search_fts"
DOC_TABLE = "chat_search_doc"
PG_MESSAGE_INDEX = "chat_message_content_trgm"
PG_TITLE_INDEX = "chat_conversation_title_trgm"


@dataclass(frozen=True)
class SearchHit:
    conversation_id: UUID
    message_id: UUID | None  # None when only the title matched
    title: str  # the conversation's display title (plain text)
    snippet: str  # safe HTML: escaped text with <mark>...</mark> around the matches
    updated_at: datetime


def search_conversations(
    user: User | AnonymousUser, query: str, *, limit: int = 30
) -> list[SearchHit]:
    """The user's messages and conversation titles containing every word of `query`, newest
    first: one hit per matching message and one per matching title."""
    words = query_words(query)
    if not words or limit <= 0 or not user.is_authenticated:
        return []
    hits = [
        SearchHit(
            conversation_id=message.conversation_id,
            message_id=message.pk,
            title=message.conversation.display_title,
            snippet=build_snippet(message.content, words),
            updated_at=message.updated_at,
        )
        for message in matching_messages(user, words)[:limit]
    ]
    hits += [
        SearchHit(
            conversation_id=conversation.pk,
            message_id=None,
            title=conversation.display_title,
            snippet=build_snippet(conversation.title, words),
            updated_at=conversation.updated_at,
        )
        for conversation in matching_conversations(user, words)[:limit]
    ]
    hits.sort(key=lambda hit: hit.updated_at, reverse=True)
    return hits[:limit]


def query_words(query: str) -> list[str]:
    """The distinct whitespace-separated words of a query (NULs dropped, length capped)."""
    words: list[str] = []
    for word in query.replace("\x00", "")[:MAX_QUERY_CHARS].split():
        if word.casefold() not in {w.casefold() for w in words}:
            words.append(word)
    return words[:MAX_WORDS]


def matching_messages(user: User, words: list[str]) -> QuerySet[Message]:
    """The user's messages containing every word, newest first (used by the query-plan tests)."""
    messages = Message.objects.filter(conversation__user=user)
    messages = messages.filter(_text_filter("message", "m", '"chat_message"."content"', words))
    return messages.select_related("conversation").order_by("-updated_at", "-pk")


def matching_conversations(user: User, words: list[str]) -> QuerySet[Conversation]:
    """The user's conversations whose title contains every word, newest first."""
    conversations = Conversation.objects.filter(user=user)
    conversations = conversations.filter(
        _text_filter("conversation", "t", '"chat_conversation"."title"', words)
    )
    return conversations.order_by("-updated_at", "-pk")


def _text_filter(model: str, kind: str, column: str, words: list[str]) -> Q:
    field = "content" if model == "message" else "title"
    vendor = connection.vendor
    condition = Q()
    if vendor == "postgresql":
        for word in words:
            condition &= Q(
                RawSQL(
                    f"{column} ILIKE %s ESCAPE '\\'", [f"%{_escape_like(word)}%"], BooleanField()
                )
            )
        return condition
    if vendor == "sqlite":
        long_words = [word for word in words if len(word) >= TRIGRAM]
        if long_words:
            match = " AND ".join(_fts_string(word) for word in long_words)
            condition &= Q(
                pk__in=RawSQL(
                    f"SELECT d.object_id FROM {FTS_TABLE} JOIN {DOC_TABLE} d"
                    f" ON d.id = {FTS_TABLE}.rowid"
                    f" WHERE {FTS_TABLE} MATCH %s AND d.kind = %s",
                    [match, kind],
                )
            )
        words = [word for word in words if len(word) < TRIGRAM]
    for word in words:
        condition &= Q(**{f"{field}__icontains": word})
    return condition


def _fts_string(word: str) -> str:
    """An FTS5 string literal: the word is matched as text, never parsed as query syntax."""
    return '"' + word.replace('"', '""') + '"'


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_snippet(text: str, words: list[str], *, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` around the first match, HTML-escaped, with every
    match of any word wrapped in <mark>. Whitespace runs are collapsed to one space."""
    text = " ".join(text.split())
    spans = _merge(
        (match.start(), match.end())
        for word in words
        for match in re.finditer(re.escape(word), text, re.IGNORECASE)
    )
    first = spans[0][0] if spans else 0
    start = max(0, first - SNIPPET_LEAD)
    end = min(len(text), start + width)
    start = max(0, end - width)
    parts = ["…"] if start > 0 else []
    position = start
    for span_start, span_end in spans:
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_start >= span_end:
            continue
        parts.append(escape(text[position:span_start]))
        parts.append(f"<mark>{escape(text[span_start:span_end])}</mark>")
        position = span_end
    parts.append(escape(text[position:end]))
    if end < len(text):
        parts.append("…")
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text above is escaped


def _merge(spans) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
