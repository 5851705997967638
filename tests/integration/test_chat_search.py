"""chat.search on the database under test (SQLite by default, PostgreSQL with DATABASE_URL)."""

from datetime import timedelta

import pytest
from django.db import connection

from chat.models import Conversation, Message
from chat.search import (
    FTS_TABLE,
    PG_MESSAGE_INDEX,
    PG_TITLE_INDEX,
    build_snippet,
    matching_conversations,
    matching_messages,
    query_words,
    search_conversations,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(user=alice, title="Holiday planning")


def say(conversation, content, role=Message.Role.USER):
    return Message.objects.create(conversation=conversation, role=role, content=content)


def message_ids(hits):
    return {hit.message_id for hit in hits if hit.message_id is not None}


def test_finds_a_word_in_a_message(alice, chat):
    message = say(chat, "Let's book the train to Lisbon on Friday.")
    say(chat, "Something else entirely.")

    hits = search_conversations(alice, "lisbon")

    assert [(hit.conversation_id, hit.message_id) for hit in hits] == [(chat.pk, message.pk)]
    assert hits[0].title == "Holiday planning"
    assert "<mark>Lisbon</mark>" in hits[0].snippet


def test_finds_a_word_in_a_title(alice, chat):
    say(chat, "No match in here.")

    hits = search_conversations(alice, "HOLIDAY")

    assert len(hits) == 1
    assert hits[0].conversation_id == chat.pk
    assert hits[0].message_id is None
    assert hits[0].snippet == "<mark>Holiday</mark> planning"


def test_one_hit_per_message_and_title_newest_first(alice, chat):
    older = say(chat, "holiday budget")
    newer = say(chat, "holiday dates")
    Conversation.objects.filter(pk=chat.pk).update(
        updated_at=older.updated_at - timedelta(seconds=1)
    )

    hits = search_conversations(alice, "holiday")

    assert [hit.message_id for hit in hits] == [newer.pk, older.pk, None]
    assert search_conversations(alice, "holiday", limit=2)[1].message_id == older.pk


def test_highlights_and_escapes_html(alice, chat):
    say(chat, 'Try <script>alert("x")</script> & see the result')

    [hit] = search_conversations(alice, "script")

    assert "<script>" not in hit.snippet
    assert hit.snippet == (
        "Try &lt;<mark>script</mark>&gt;alert(&quot;x&quot;)&lt;/<mark>script</mark>&gt;"
        " &amp; see the result"
    )


def test_html_in_the_query_is_escaped_too(alice, chat):
    say(chat, "a <b>bold</b> claim")

    [hit] = search_conversations(alice, "<b>")

    assert hit.snippet == "a <mark>&lt;b&gt;</mark>bold&lt;/b&gt; claim"


def test_long_text_snippet_is_cut_around_the_first_match(alice, chat):
    say(chat, "x" * 500 + " needle " + "y" * 500)

    [hit] = search_conversations(alice, "needle")

    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "<mark>needle</mark>" in hit.snippet
    assert len(hit.snippet.replace("<mark>", "").replace("</mark>", "")) == 160 + 2


@pytest.mark.parametrize("query", ["训练数据", "模型", "练数", "据"])
def test_chinese_substrings(alice, chat, query):
    message = say(chat, "我们用新的训练数据微调了模型。效果更好。")
    say(chat, "今天天气很好")

    hits = search_conversations(alice, query)

    assert message_ids(hits) == {message.pk}
    assert f"<mark>{query}</mark>" in hits[0].snippet


def test_chinese_title(alice):
    conversation = Conversation.objects.create(user=alice, title="大语言模型评测")

    assert [hit.conversation_id for hit in search_conversations(alice, "模型")] == [conversation.pk]
    assert [hit.conversation_id for hit in search_conversations(alice, "语言模型")] == [
        conversation.pk
    ]


def test_substring_inside_a_word(alice, chat):
    message = say(chat, "Internationalization matters")

    assert message_ids(search_conversations(alice, "NATIONAL")) == {message.pk}


def test_all_words_must_match(alice, chat):
    both = say(chat, "the red bicycle is fast")
    say(chat, "the red car")
    say(chat, "a blue bicycle")

    assert message_ids(search_conversations(alice, "bicycle red")) == {both.pk}
    # A short word (LIKE) together with a long one (index).
    assert message_ids(search_conversations(alice, "is BICYCLE")) == {both.pk}
    assert message_ids(search_conversations(alice, "bicycle green")) == set()
    hit = search_conversations(alice, "red bicycle")[0]
    assert "<mark>red</mark> <mark>bicycle</mark>" in hit.snippet


def test_another_users_messages_are_never_found(alice, chat):
    mallory = UserFactory(username="mallory")
    theirs = Conversation.objects.create(user=mallory, title="secret plans")
    say(theirs, "the secret password is swordfish")
    mine = say(chat, "my secret")

    assert message_ids(search_conversations(alice, "secret")) == {mine.pk}
    assert search_conversations(alice, "swordfish") == []
    assert search_conversations(alice, "plans") == []
    assert search_conversations(alice, "sw") == []
    assert len(search_conversations(mallory, "secret")) == 2


def test_anonymous_user_finds_nothing(chat):
    from django.contrib.auth.models import AnonymousUser

    say(chat, "holiday")
    assert search_conversations(AnonymousUser(), "holiday") == []


def test_deleted_message_disappears(alice, chat):
    keep = say(chat, "apricot jam")
    gone = say(chat, "apricot pie")

    gone.delete()

    assert message_ids(search_conversations(alice, "apricot")) == {keep.pk}


def test_deleted_conversation_disappears(alice, chat):
    parent = say(chat, "apricot jam")
    Message.objects.create(
        conversation=chat, parent=parent, role=Message.Role.ASSISTANT, content="apricot tart"
    )
    chat.current_leaf = parent
    chat.save()

    chat.delete()

    assert search_conversations(alice, "apricot") == []
    assert search_conversations(alice, "holiday") == []
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM chat_search_doc")
            assert cursor.fetchone() == (0,)
            cursor.execute("SELECT count(*) FROM chat_search_fts")
            assert cursor.fetchone() == (0,)


def test_updated_message_is_reindexed(alice, chat):
    message = say(chat, "draft about penguins")

    message.content = "final text about walruses"
    message.save()

    assert search_conversations(alice, "penguins") == []
    assert message_ids(search_conversations(alice, "walruses")) == {message.pk}
    Message.objects.filter(pk=message.pk).update(content="otters now")
    assert search_conversations(alice, "walruses") == []
    assert message_ids(search_conversations(alice, "otters")) == {message.pk}


def test_renamed_conversation_is_reindexed(alice, chat):
    chat.title = "Tax return"
    chat.save()

    assert search_conversations(alice, "holiday") == []
    assert [hit.conversation_id for hit in search_conversations(alice, "tax return")] == [chat.pk]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        '"unbalanced',
        "OR",
        "AND",
        "NOT",
        "a OR b",
        "*",
        "abc*",
        "NEAR(",
        "NEAR(a b)",
        "body:apricot",
        "{body}: x",
        "^start",
        "(((",
        "-x",
        "+",
        "%",
        "_",
        "\\",
        "%%%",
        "a\x00b",
        "'; DROP TABLE chat_message; --",
        "x" * 5000,
        " ".join(["word"] * 100),
    ],
)
def test_hostile_query_syntax_does_not_raise(alice, chat, query):
    say(chat, "zzz qqq")

    assert search_conversations(alice, query) == []


def test_like_wildcards_are_literal(alice, chat):
    percent = say(chat, "a 100% success")
    underscore = say(chat, "snake_case name")
    backslash = say(chat, "C:\\temp folder")
    say(chat, "1000 successes and snakeXcase")

    assert message_ids(search_conversations(alice, "%")) == {percent.pk}
    assert message_ids(search_conversations(alice, "100%")) == {percent.pk}
    assert message_ids(search_conversations(alice, "e_c")) == {underscore.pk}
    assert message_ids(search_conversations(alice, "_")) == {underscore.pk}
    assert message_ids(search_conversations(alice, ":\\t")) == {backslash.pk}


def test_fts_operators_in_text_are_found_literally(alice, chat):
    message = say(chat, 'he said "NEAR(this)" OR that')

    assert message_ids(search_conversations(alice, '"NEAR(this)"')) == {message.pk}
    assert message_ids(search_conversations(alice, "OR")) == {message.pk}


def test_empty_query(alice, chat):
    say(chat, "anything")

    assert search_conversations(alice, "") == []
    assert search_conversations(alice, "   \n\t") == []


def test_query_words():
    assert query_words("  Red red  bicycle\x00s ") == ["Red", "bicycles"]


def test_build_snippet_merges_overlapping_matches():
    assert build_snippet("abcdef", ["abc", "bcd"]) == "<mark>abcd</mark>ef"
    assert build_snippet("line one\n\n  line two", ["two"]) == "line one line <mark>two</mark>"


def test_search_index_objects_exist():
    """Fails if a later migration drops the triggers (SQLite table rebuilds do)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            triggers = {row[0] for row in cursor.fetchall()}
            assert {
                f"{table}_search_{event}"
                for table in ("chat_message", "chat_conversation")
                for event in ("ai", "au", "ad")
            } <= triggers
        else:
            assert connection.vendor == "postgresql"
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
            assert {row[0] for row in cursor.fetchall()} >= {PG_MESSAGE_INDEX, PG_TITLE_INDEX}


CONVERSATIONS = 1000
MESSAGES_PER_CONVERSATION = 2


@pytest.mark.parametrize("query", ["lisbon", "train lisbon", "模型训练"])
def test_query_plan_uses_the_index(alice, chat, query):
    # Enough rows of the same user that walking all their messages is the costlier plan: with a
    # handful of rows PostgreSQL rightly prefers the user -> conversation -> message b-trees.
    conversations = Conversation.objects.bulk_create(
        Conversation(user=alice, title=f"chat number {n}") for n in range(CONVERSATIONS)
    )
    Message.objects.bulk_create(
        Message(conversation=conversation, role=Message.Role.USER, content=f"filler text {n}")
        for conversation in conversations
        for n in range(MESSAGES_PER_CONVERSATION)
    )
    say(chat, "train to Lisbon; 模型训练")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The GIN indexes were built on empty tables by the migration; in production VACUUM
            # (autovacuum) gives them statistics, here REINDEX does (VACUUM cannot run inside the
            # test's transaction).
            cursor.execute(f"REINDEX INDEX {PG_MESSAGE_INDEX}")
            cursor.execute(f"REINDEX INDEX {PG_TITLE_INDEX}")
            cursor.execute("ANALYZE chat_conversation")
            cursor.execute("ANALYZE chat_message")
    words = query_words(query)
    if connection.vendor == "sqlite":
        plans = [
            matching_messages(alice, words, 30).explain(),
            matching_conversations(alice, words, 30).explain(),
        ]
        for plan in plans:
            # The FTS MATCH drives the query; everything else is a primary-key lookup.
            assert f"SCAN {FTS_TABLE} VIRTUAL TABLE INDEX 0:M" in plan, plan
            scans = [line for line in plan.splitlines() if " SCAN " in line]
            assert len(scans) == 1, plan
    else:
        assert connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        message_plan = matching_messages(alice, words, 30).explain()
        title_plan = matching_conversations(alice, words, 30).explain()
        assert "Bitmap Index Scan on " + PG_MESSAGE_INDEX in message_plan, message_plan
        assert "Bitmap Index Scan on " + PG_TITLE_INDEX in title_plan, title_plan
    # And the search itself returns the message.
    assert len(search_conversations(alice, query)) == 1
