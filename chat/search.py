"""Full-text search over a user's conversation titles and message text.

The query is split on whitespace; every word must appear (AND), case-insensitively, as a
substring. The indexes come from chat/migrations/0002_search_index.py:

- SQLite: the FTS5 table `chat_search_fts` (trigram tokenizer). Words of 3+ characters are
  matched with `MATCH`, each quoted as an FTS5 string so query syntax in user input (`"`, `OR`,
  `*`, `NEAR(`, ...) is plain text; the query starts from the FTS matches (of all users) and
  keeps the user's own. Trigrams cannot index words of 1-2 characters (such as the Chinese
  模型): next to a longer word they are checked with `LIKE` on the rows the index found; a query
  made only of such words falls back to `LIKE` over the user's own messages and titles (reached
  through the user -> conversation -> message indexes, so other users' rows are not read).
  SQLite's LIKE folds ASCII case only, so short non-ASCII words match case-sensitively.
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
        for message in matching_messages(user, words, limit)[:limit]
    ]
    hits += [
        SearchHit(
            conversation_id=conversation.pk,
            message_id=None,
            title=conversation.display_title,
            snippet=build_snippet(conversation.title, words),
            updated_at=conversation.updated_at,
        )
        for conversation in matching_conversations(user, words, limit)[:limit]
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


def matching_messages(user: User, words: list[str], limit: int) -> QuerySet[Message]:
    """The user's messages containing every word, newest first; at most `limit` of them on
    SQLite when the FTS index is used (the query-plan tests EXPLAIN this queryset)."""
    messages = Message.objects.select_related("conversation").order_by("-updated_at", "-pk")
    if connection.vendor == "sqlite" and _trigram_words(words):
        return messages.filter(pk__in=_sqlite_fts_ids("m", user, words, limit))
    return messages.filter(conversation__user=user).filter(
        _like("content", '"chat_message"."content"', words)
    )


def matching_conversations(user: User, words: list[str], limit: int) -> QuerySet[Conversation]:
    """The user's conversations whose title contains every word, newest first."""
    conversations = Conversation.objects.order_by("-updated_at", "-pk")
    if connection.vendor == "sqlite" and _trigram_words(words):
        return conversations.filter(pk__in=_sqlite_fts_ids("t", user, words, limit))
    return conversations.filter(user=user).filter(
        _like("title", '"chat_conversation"."title"', words)
    )


def _trigram_words(words: list[str]) -> list[str]:
    return [word for word in words if len(word) >= TRIGRAM]


def _sqlite_fts_ids(kind: str, user: User, words: list[str], limit: int) -> RawSQL:
    """Ids of the user's newest matching rows, found through the FTS5 index. CROSS JOIN fixes
    the join order: FTS matches first, then primary-key lookups (SQLite would otherwise walk
    every indexed row and probe the FTS table for each). Words too short for trigrams are
    checked with LIKE on the matched rows."""
    table, column = ("chat_message", "content") if kind == "m" else ("chat_conversation", "title")
    owner = "c.user_id" if kind == "m" else "hit.user_id"
    conversation_join = (
        " CROSS JOIN chat_conversation AS c ON c.id = hit.conversation_id" if kind == "m" else ""
    )
    short_words = [word for word in words if len(word) < TRIGRAM]
    like = "".join(f" AND hit.{column} LIKE %s ESCAPE '\\'" for _ in short_words)
    # Only constant identifiers are formatted in; every value is a parameter.
    sql = (
        f"SELECT hit.id FROM {FTS_TABLE}"  # noqa: S608
        f" CROSS JOIN {DOC_TABLE} AS d ON d.id = {FTS_TABLE}.rowid"
        f" CROSS JOIN {table} AS hit ON hit.id = d.object_id"
        f"{conversation_join}"
        f" WHERE {FTS_TABLE} MATCH %s AND d.kind = %s AND {owner} = %s{like}"
        " ORDER BY hit.updated_at DESC, hit.id DESC LIMIT %s"
    )
    match = " AND ".join(_fts_string(word) for word in _trigram_words(words))
    params = [match, kind, user.pk, *(f"%{_escape_like(word)}%" for word in short_words), limit]
    return RawSQL(sql, params)  # noqa: S611


def _like(field: str, column: str, words: list[str]) -> Q:
    """Every word as a case-insensitive substring: ILIKE on PostgreSQL (which the pg_trgm
    index serves), Django's icontains (LIKE, ASCII case folding on SQLite) elsewhere."""
    condition = Q()
    for word in words:
        if connection.vendor == "postgresql":
            pattern = f"%{_escape_like(word)}%"
            ilike = RawSQL(f"{column} ILIKE %s ESCAPE '\\'", [pattern], BooleanField())  # noqa: S611
            condition &= Q(ilike)
        else:
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
