"""Versioned schema migrations.

`PRAGMA user_version` holds the number of migrations applied. A new database
and one at any older version both end at the latest. Never edit a released
migration; append a new one, and give it its PostgreSQL step in
store/schema_pg.py STEPS (tests/test_store_postgres.py fails until it has one).
"""
from __future__ import annotations

import sqlite3
from typing import Callable

from store.names import add_name_keys
from store.tags import renormalize_stored_tags


def _status_pending(conn: sqlite3.Connection) -> None:
    """12: the status for "we wait on the customer" is called 'pending' (it was 'waiting',
    the word the queue uses for customers who wait on us). Stored statuses and the
    status changes in the event log follow. SQLite cannot alter a CHECK constraint, so
    the table's stored definition is edited in place, the documented way for constraint
    changes that leave the file format alone (sqlite.org/lang_altertable.html, "otheralter")."""
    old, new = "'open','waiting','snoozed','done'", "'open','pending','snoozed','done'"
    conn.execute("PRAGMA ignore_check_constraints = ON")  # the old CHECK refuses 'pending'
    try:
        conn.execute("UPDATE customers SET status = 'pending' WHERE status = 'waiting'")
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'customers'",
                     (old, new))
        conn.execute(f"PRAGMA schema_version = {version + 1}")  # every connection re-reads the schema
        conn.execute("PRAGMA writable_schema = OFF")
    finally:
        conn.execute("PRAGMA ignore_check_constraints = OFF")
    for key in ("old", "new"):
        conn.execute(f"UPDATE events SET data = json_set(data, '$.{key}', 'pending')"
                     f" WHERE kind = 'status' AND json_extract(data, '$.{key}') = 'waiting'")
    # a rule's event lists what it did in words ("status waiting")
    conn.execute("UPDATE events SET data = replace(data, '\"status waiting\"', '\"status pending\"')"
                 " WHERE kind = 'rule' AND data LIKE '%\"status waiting\"%'")


# Each migration is SQL (statements separated by ;) or a function of the connection,
# run inside the migrating transaction.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: core tables
    """
    CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','waiting','snoozed','done')),
        snoozed_until REAL,
        assignee TEXT,
        priority INTEGER NOT NULL DEFAULT 0,
        waiting_since REAL,
        last_inbound_at REAL,
        last_outbound_at REAL,
        last_channel TEXT,
        unread INTEGER NOT NULL DEFAULT 0,
        merged_into INTEGER REFERENCES customers(id),
        created_at REAL NOT NULL
    );
    CREATE INDEX customers_queue ON customers(status, waiting_since, id);

    CREATE TABLE identities (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        handle TEXT NOT NULL DEFAULT '',
        account TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (channel, address)
    );
    CREATE INDEX identities_customer ON identities(customer_id);
    CREATE INDEX identities_handle ON identities(handle) WHERE handle != '';

    -- Evidence that links identities: 'email:a@b.c', 'phone:+15551234567'
    CREATE TABLE identity_keys (
        identity_id INTEGER NOT NULL REFERENCES identities(id),
        key TEXT NOT NULL,
        PRIMARY KEY (identity_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX identity_keys_key ON identity_keys(key);

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        identity_id INTEGER REFERENCES identities(id),
        channel TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        direction TEXT NOT NULL CHECK (direction IN ('in','out','note')),
        external_id TEXT,
        thread_key TEXT,
        reply_to TEXT,
        subject TEXT,
        text TEXT NOT NULL DEFAULT '',
        html TEXT,
        sent_at REAL NOT NULL,
        received_at REAL NOT NULL,
        author TEXT,
        parse_error TEXT,
        edited_at REAL,
        previous_texts TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        meta TEXT,
        raw BLOB,
        UNIQUE (channel, account, external_id)
    );
    CREATE INDEX messages_customer ON messages(customer_id, sent_at);
    CREATE INDEX messages_identity ON messages(identity_id);
    CREATE INDEX messages_thread ON messages(thread_key) WHERE thread_key IS NOT NULL;

    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT
    );
    CREATE INDEX attachments_message ON attachments(message_id);

    CREATE TABLE tags (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        tag TEXT NOT NULL,
        PRIMARY KEY (customer_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX tags_tag ON tags(tag);

    CREATE TABLE facts (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (customer_id, key)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        customer_id INTEGER,
        data TEXT NOT NULL DEFAULT '{}',
        undone_by INTEGER
    );
    CREATE INDEX events_customer ON events(customer_id, at);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
        state TEXT NOT NULL CHECK (state IN ('queued','sending','sent','failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at REAL NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

    CREATE TABLE cursors (
        connector TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (connector, key)
    ) WITHOUT ROWID;

    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        heartbeat REAL NOT NULL
    );

    CREATE TABLE health (
        connector TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL
    );
    """,
    # 2: full-text search over subjects, texts and customer names
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        subject, text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END;
    CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, text) VALUES ('delete', old.id, old.subject, old.text);
    END;
    CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, text ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, text) VALUES ('delete', old.id, old.subject, old.text);
        INSERT INTO messages_fts(rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END;
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');

    CREATE VIRTUAL TABLE customers_fts USING fts5(
        name, content='customers', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN
        INSERT INTO customers_fts(rowid, name) VALUES (new.id, new.name);
    END;
    CREATE TRIGGER customers_fts_au AFTER UPDATE OF name ON customers BEGIN
        INSERT INTO customers_fts(customers_fts, rowid, name) VALUES ('delete', old.id, old.name);
        INSERT INTO customers_fts(rowid, name) VALUES (new.id, new.name);
    END;
    INSERT INTO customers_fts(customers_fts) VALUES ('rebuild');
    """,
    # 3: index new rows from Python (store.db.Database.insert_message / insert_customer):
    # an FTS5 insert inside a trigger costs ~5x a direct one, and ingest is hot.
    """
    DROP TRIGGER messages_fts_ai;
    DROP TRIGGER customers_fts_ai;
    """,
    # 4: automation (rules, waiting-time targets, satisfaction); see store/automation_state.py
    """
    -- once-only guard: a rule fires at most once per (customer, period), e.g. per wait
    CREATE TABLE rule_fires (
        rule TEXT NOT NULL,
        customer_id INTEGER NOT NULL,
        period TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (rule, customer_id, period)
    ) WITHOUT ROWID;

    -- one row per wait that went past its channel's target
    CREATE TABLE breaches (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL,
        waiting_since REAL NOT NULL,
        channel TEXT,
        target REAL NOT NULL,
        at REAL NOT NULL,
        UNIQUE (customer_id, waiting_since)
    );
    CREATE INDEX breaches_at ON breaches(at);

    -- a satisfaction question waiting for the customer's answer
    CREATE TABLE surveys (
        customer_id INTEGER PRIMARY KEY,
        asked_at REAL NOT NULL,
        channel TEXT,
        message_id INTEGER
    );

    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL,
        message_id INTEGER,
        channel TEXT,
        score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
        answer TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX ratings_at ON ratings(at);

    CREATE INDEX outbox_sent ON outbox(sent_at, id) WHERE state = 'sent';
    """,
    # 5: fewer indexes to maintain on every ingested message. Nothing looks messages up by
    # thread key, and lookups by identity always know the customer (messages_customer serves).
    """
    DROP INDEX messages_thread;
    DROP INDEX messages_identity;
    """,
    # 6: the console's queue pages and event lists come straight from indexes
    # (bench/console.py on 100k customers: queue page 34-150 ms -> 0.1-17 ms).
    """
    CREATE INDEX customers_queue_order ON customers(status, priority DESC, coalesce(waiting_since, 9e18), id)
        WHERE merged_into IS NULL;
    CREATE INDEX customers_all_order ON customers(priority DESC, coalesce(waiting_since, 9e18), id)
        WHERE merged_into IS NULL;
    CREATE INDEX customers_merged ON customers(merged_into) WHERE merged_into IS NOT NULL;
    """,
    # 7: customers_queue (v1) only served the "any snooze ran out?" check since v6, yet every
    # new customer and every change of status or wait rewrote it. A small partial index
    # holding just the snoozed customers serves that check.
    """
    DROP INDEX customers_queue;
    CREATE INDEX customers_snoozed ON customers(snoozed_until) WHERE status = 'snoozed';
    """,
    # 8: a fact keeps its source (who or which rule, on which channel, from which message,
    # when); earlier values live in the 'fact' events. Search finds customers by fact.
    """
    ALTER TABLE facts ADD COLUMN actor TEXT;
    ALTER TABLE facts ADD COLUMN at REAL;
    ALTER TABLE facts ADD COLUMN channel TEXT;
    ALTER TABLE facts ADD COLUMN message_id INTEGER;
    CREATE INDEX facts_value ON facts(value, key);
    """,
    # 9: automation that loses nothing (store/automation_state.py). Hook runs are queued
    # durably, in the same transaction that moves the automation's cursor past their event.
    # The cursor itself is written here, so what happens before the first engine runs is
    # handled by it (an existing store starts from where it is now, not from its history).
    """
    CREATE TABLE hook_runs (
        id INTEGER PRIMARY KEY,
        hook TEXT NOT NULL,            -- runs of one hook share its concurrency limit
        kind TEXT NOT NULL,            -- message_received, status_changed, ...
        command TEXT NOT NULL,
        timeout REAL NOT NULL,
        payload TEXT NOT NULL,         -- the JSON the command gets on stdin
        state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','running')),
        holder TEXT,                   -- the process running it
        attempts INTEGER NOT NULL DEFAULT 0,
        queued_at REAL NOT NULL,
        started_at REAL
    );
    CREATE INDEX hook_runs_queue ON hook_runs(hook, state, id);

    -- a question the customer answered something else to stays open for a direct reply to it
    ALTER TABLE surveys ADD COLUMN open INTEGER NOT NULL DEFAULT 1;

    INSERT OR IGNORE INTO cursors(connector, key, value, updated_at)
        SELECT 'automation', 'message', coalesce(max(id), 0), 0 FROM messages;
    INSERT OR IGNORE INTO cursors(connector, key, value, updated_at)
        SELECT 'automation', 'event', coalesce(max(id), 0), 0 FROM events;
    INSERT OR IGNORE INTO cursors(connector, key, value, updated_at)
        SELECT 'automation', 'sent_at', coalesce(max(sent_at), 0), 0 FROM outbox WHERE state = 'sent';
    INSERT OR IGNORE INTO cursors(connector, key, value, updated_at)
        SELECT 'automation', 'sent_id', coalesce(max(id), 0), 0 FROM outbox WHERE state = 'sent';
    """,
    # 10: at most once. `uncertain` marks a reply that may have been delivered (a timeout or a
    # dropped connection after sending); `parts` lists the ids of the parts of a long reply
    # already delivered, so a retry resumes at the next one.
    """
    ALTER TABLE outbox ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN parts TEXT;
    """,
    # 11: search in every script (store/fts.py): the index sees fts_text(), which sets CJK
    # characters apart and folds ё/ß/æ/œ/ø, so the triggers that delete from it pass the
    # same. Rows whose text fts_text() leaves unchanged (most) stay indexed as they are.
    # And our replies by Message-ID: delivery reports and auto-replies name them (store/outbox.py
    # reported_reply), which was a scan of every e-mail per id named.
    """
    DROP TRIGGER messages_fts_ad;
    CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, text)
            VALUES ('delete', old.id, fts_text(old.subject), fts_text(old.text));
    END;
    DROP TRIGGER messages_fts_au;
    CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, text ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, text)
            VALUES ('delete', old.id, fts_text(old.subject), fts_text(old.text));
        INSERT INTO messages_fts(rowid, subject, text) VALUES (new.id, fts_text(new.subject), fts_text(new.text));
    END;
    DROP TRIGGER customers_fts_au;
    CREATE TRIGGER customers_fts_au AFTER UPDATE OF name ON customers BEGIN
        INSERT INTO customers_fts(customers_fts, rowid, name) VALUES ('delete', old.id, fts_text(old.name));
        INSERT INTO customers_fts(rowid, name) VALUES (new.id, fts_text(new.name));
    END;
    CREATE TEMP TABLE refold AS SELECT id, subject, text FROM messages
        WHERE fts_text(text) IS NOT text OR fts_text(subject) IS NOT subject;
    INSERT INTO messages_fts(messages_fts, rowid, subject, text) SELECT 'delete', id, subject, text FROM refold;
    INSERT INTO messages_fts(rowid, subject, text) SELECT id, fts_text(subject), fts_text(text) FROM refold;
    DROP TABLE refold;
    CREATE TEMP TABLE refold AS SELECT id, name FROM customers WHERE fts_text(name) IS NOT name;
    INSERT INTO customers_fts(customers_fts, rowid, name) SELECT 'delete', id, name FROM refold;
    INSERT INTO customers_fts(rowid, name) SELECT id, fts_text(name) FROM refold;
    DROP TABLE refold;

    CREATE INDEX messages_out_ids ON messages(channel, external_id) WHERE direction = 'out';
    """,
    # 12: status 'waiting' (we wait on the customer) is now 'pending'
    _status_pending,
    # 13: search by fact (fact:order_number=1042) compares values ignoring case; an index
    # in the same collation serves it (v8's BINARY one could not).
    """
    DROP INDEX facts_value;
    CREATE INDEX facts_value ON facts(value COLLATE NOCASE);
    """,
    # 14: drafts outlive the console (store/drafts.py): one per agent and customer, with the
    # files to attach and the Cc (JSON lists) and the template values kept as typed (JSON).
    """
    CREATE TABLE drafts (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        agent TEXT NOT NULL,
        text TEXT NOT NULL,
        mode TEXT NOT NULL DEFAULT 'reply' CHECK (mode IN ('reply','note')),
        subject TEXT,
        identity_id INTEGER,
        attachments TEXT,
        cc TEXT,
        literals TEXT,
        updated_at REAL NOT NULL,
        UNIQUE (agent, customer_id)
    );
    """,
    # 15: tags in one form, as Front and Help Scout treat them (store/tags.py): lower case,
    # no leading '#', spaces as '-'; a customer's duplicates ("VIP", "#vip") become one.
    renormalize_stored_tags,
    # 16: PostgreSQL only (store/schema_pg.py: an index for from: search); nothing changes here.
    "",
    # 17: names compare with Unicode case and the search folds (store/names.py): "émile" finds
    # "ÉMILE"; a name_key column on customers (name) and identities (display name), filled here.
    add_name_keys,
    # 18: PostgreSQL only (store/schema_pg.py: its printf('%.6f') as Python's); nothing changes here.
    "",
]

LATEST = len(MIGRATIONS)
