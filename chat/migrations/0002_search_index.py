"""Full-text search indexes for chat (read by chat/search.py).

SQLite: an FTS5 table with the `trigram` tokenizer (SQLite >= 3.34), so substrings and text
without spaces between words (Chinese, Japanese) match. `chat_search_doc` maps each indexed row
(kind 'm' = message content, 't' = conversation title) to the FTS rowid: the chat tables have
UUID primary keys and their implicit rowids may be renumbered by VACUUM, so they cannot be used.
Triggers keep both tables in step with chat_message / chat_conversation.

Caveat: on SQLite, Django rebuilds a table (new table, copy, drop, rename) for many AlterField /
RemoveField operations, and dropping the table drops its triggers. A later migration that
rebuilds chat_message or chat_conversation must run SQLITE_TRIGGERS again (and re-fill with
SQLITE_BACKFILL after clearing both search tables); tests/integration/test_chat_search.py fails
when the triggers are missing.

PostgreSQL: pg_trgm GIN indexes serve `ILIKE '%word%'` for any language.

Other databases: nothing (search then falls back to unindexed LIKE).
"""

from django.db import migrations

SQLITE_TABLES = [
    """
    CREATE TABLE chat_search_doc (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        object_id TEXT NOT NULL,
        UNIQUE (kind, object_id)
    )
    """,
    "CREATE VIRTUAL TABLE chat_search_fts USING fts5(body, tokenize = 'trigram')",
]

SQLITE_BACKFILL = [
    "INSERT INTO chat_search_doc (kind, object_id) SELECT 'm', id FROM chat_message",
    "INSERT INTO chat_search_doc (kind, object_id) SELECT 't', id FROM chat_conversation",
    """
    INSERT INTO chat_search_fts (rowid, body)
    SELECT d.id, m.content FROM chat_search_doc d JOIN chat_message m ON m.id = d.object_id
    WHERE d.kind = 'm'
    """,
    """
    INSERT INTO chat_search_fts (rowid, body)
    SELECT d.id, c.title FROM chat_search_doc d JOIN chat_conversation c ON c.id = d.object_id
    WHERE d.kind = 't'
    """,
]


SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER IF NOT EXISTS chat_message_search_ai AFTER INSERT ON chat_message BEGIN
        INSERT INTO chat_search_doc (kind, object_id) VALUES ('m', new.id);
        INSERT INTO chat_search_fts (rowid, body) VALUES (
            (SELECT id FROM chat_search_doc WHERE kind = 'm' AND object_id = new.id),
            new.content
        );
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chat_message_search_au AFTER UPDATE OF content ON chat_message
    WHEN old.content IS NOT new.content BEGIN
        UPDATE chat_search_fts SET body = new.content
        WHERE rowid = (SELECT id FROM chat_search_doc WHERE kind = 'm' AND object_id = old.id);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chat_message_search_ad AFTER DELETE ON chat_message BEGIN
        DELETE FROM chat_search_fts
        WHERE rowid = (SELECT id FROM chat_search_doc WHERE kind = 'm' AND object_id = old.id);
        DELETE FROM chat_search_doc WHERE kind = 'm' AND object_id = old.id;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chat_conversation_search_ai AFTER INSERT ON chat_conversation
    BEGIN
        INSERT INTO chat_search_doc (kind, object_id) VALUES ('t', new.id);
        INSERT INTO chat_search_fts (rowid, body) VALUES (
            (SELECT id FROM chat_search_doc WHERE kind = 't' AND object_id = new.id),
            new.title
        );
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chat_conversation_search_au
    AFTER UPDATE OF title ON chat_conversation
    WHEN old.title IS NOT new.title BEGIN
        UPDATE chat_search_fts SET body = new.title
        WHERE rowid = (SELECT id FROM chat_search_doc WHERE kind = 't' AND object_id = old.id);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chat_conversation_search_ad AFTER DELETE ON chat_conversation
    BEGIN
        DELETE FROM chat_search_fts
        WHERE rowid = (SELECT id FROM chat_search_doc WHERE kind = 't' AND object_id = old.id);
        DELETE FROM chat_search_doc WHERE kind = 't' AND object_id = old.id;
    END
    """,
]

SQLITE_FORWARD = SQLITE_TABLES + SQLITE_BACKFILL + SQLITE_TRIGGERS

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS chat_message_search_ai",
    "DROP TRIGGER IF EXISTS chat_message_search_au",
    "DROP TRIGGER IF EXISTS chat_message_search_ad",
    "DROP TRIGGER IF EXISTS chat_conversation_search_ai",
    "DROP TRIGGER IF EXISTS chat_conversation_search_au",
    "DROP TRIGGER IF EXISTS chat_conversation_search_ad",
    "DROP TABLE IF EXISTS chat_search_fts",
    "DROP TABLE IF EXISTS chat_search_doc",
]

POSTGRES_FORWARD = [
    # pg_trgm is a trusted extension (PostgreSQL >= 13): a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS chat_message_content_trgm"
    " ON chat_message USING gin (content gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS chat_conversation_title_trgm"
    " ON chat_conversation USING gin (title gin_trgm_ops)",
]

# The extension stays: something else in the database may use it.
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS chat_message_content_trgm",
    "DROP INDEX IF EXISTS chat_conversation_title_trgm",
]


class VendorRunSQL(migrations.RunSQL):
    """RunSQL that does its work only on one database vendor and is a no-op elsewhere."""

    def __init__(self, vendor, sql, reverse_sql):
        self.vendor = vendor
        super().__init__(sql, reverse_sql)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        kwargs["vendor"] = self.vendor
        return name, args, kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Raw SQL operation ({self.vendor} only)"


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_initial"),
    ]

    operations = [
        VendorRunSQL("sqlite", SQLITE_FORWARD, SQLITE_REVERSE),
        VendorRunSQL("postgresql", POSTGRES_FORWARD, POSTGRES_REVERSE),
    ]
