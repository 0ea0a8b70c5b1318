"""The schema on PostgreSQL.

A new PostgreSQL store is created at once at schema version BASE (the same tables,
columns and indexes as store/schema.py's migrations give SQLite at that version),
then brought up by STEPS. The version lives in the table omnidesk_schema.

Every migration appended to store/schema.py MIGRATIONS needs its PostgreSQL step here:
STEPS[n] takes a PostgreSQL store from version n to n + 1 (tests/test_store_postgres.py
fails while schema.LATEST has no counterpart).

Types: INTEGER is bigint (SQLite's integers are 64-bit), REAL double precision, BLOB
bytea, and every text column compares and sorts byte for byte (COLLATE "C"), as
SQLite's BINARY does, whatever the database's locale.
"""
from __future__ import annotations

from typing import Any, Callable

from store.names import add_name_keys
from store.tags import renormalize_stored_tags

BASE = 13

# SQLite's functions the store's SQL uses, for PostgreSQL (so one statement runs on both):
# max(a, b) / min(a, b) as scalars (NULL if either is NULL, as in SQLite), json_extract
# for '$.key' paths (true/false as 1/0, as SQLite gives them), printf for the one format
# the store uses ('%.6f', as Python's: PRINTF), group_concat(text, separator) and the
# NOCASE collation (case-insensitive equality).
#
# printf('%.6f', x) exactly as Python's "%.6f" % x: the double's exact binary value (its bits:
# mantissa * 2^p) times 10^6, rounded half to even to an integer, then the decimal point. (Rounding
# the float's shortest text instead rounds twice: 1796539306.8586395 is 1796539306.85863947...,
# Python .858639, that .858640; about 1 timestamp in 20. Python writes the periods
# store/automation_state.py compares with this.) SQLite's own printf agrees but on exact ties
# (x.xxxxxx5 exactly, 64 values per second), which it rounds half up.
PRINTF = r"""
CREATE OR REPLACE FUNCTION printf(format text, x double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT replace(format, '%.6f', CASE
        WHEN x = 'NaN'::float8 THEN 'nan'
        WHEN x = 'Infinity'::float8 THEN 'inf'
        WHEN x = '-Infinity'::float8 THEN '-inf'
        ELSE (
            SELECT sign || div(q, 1000000)::text || '.' || lpad(mod(q, 1000000)::text, 6, '0')
              FROM (SELECT sign, CASE
                        WHEN p >= 0 THEN mant * trim_scale(power(2::numeric, p)) * 1000000
                        ELSE div(n, d) + CASE WHEN 2 * mod(n, d) > d THEN 1
                                              WHEN 2 * mod(n, d) = d THEN mod(div(n, d), 2)
                                              ELSE 0 END
                    END AS q
                      FROM (SELECT sign, mant, p, mant * 1000000 AS n, trim_scale(power(2::numeric, -p)) AS d
                              FROM (SELECT CASE WHEN bits < 0 THEN '-' ELSE '' END AS sign,
                                           CAST(CASE WHEN e = 0 THEN m ELSE m + 4503599627370496 END AS numeric) AS mant,
                                           CASE WHEN e = 0 THEN -1074 ELSE e - 1075 END AS p
                                      FROM (SELECT bits, (bits >> 52) & 2047 AS e, bits & 4503599627370495 AS m
                                              FROM (SELECT CAST(CAST(('x' || encode(float8send(x), 'hex')) AS bit(64))
                                                                AS bigint) AS bits) b) f) g) h) i)
    END)
$$;
"""

COMPAT = r"""
CREATE FUNCTION max(a double precision, b double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT CASE WHEN a >= b THEN a WHEN b > a THEN b END';
CREATE FUNCTION min(a double precision, b double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT CASE WHEN a <= b THEN a WHEN b < a THEN b END';
CREATE FUNCTION max(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT CASE WHEN a >= b THEN a WHEN b > a THEN b END';
CREATE FUNCTION min(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT CASE WHEN a <= b THEN a WHEN b < a THEN b END';
CREATE FUNCTION json_extract(doc text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v) WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
                                WHEN 'null' THEN NULL ELSE v #>> '{}' END
      FROM (SELECT CAST(doc AS jsonb) #> string_to_array(substr(path, 3), '.') AS v) j
$$;
{PRINTF}
CREATE FUNCTION group_concat_step(acc text, value text, sep text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
    'SELECT CASE WHEN value IS NULL THEN acc WHEN acc IS NULL THEN value ELSE acc || sep || value END';
CREATE AGGREGATE group_concat(text, text) (SFUNC = group_concat_step, STYPE = text);
CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
""".replace("{PRINTF}", PRINTF.strip())

_T = 'text COLLATE "C"'

SCHEMA = f"""
CREATE TABLE omnidesk_schema (version integer NOT NULL);
INSERT INTO omnidesk_schema VALUES ({BASE});

CREATE TABLE customers (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name {_T} NOT NULL DEFAULT '',
    status {_T} NOT NULL DEFAULT 'open' CHECK (status IN ('open','pending','snoozed','done')),
    snoozed_until double precision,
    assignee {_T},
    priority bigint NOT NULL DEFAULT 0,
    waiting_since double precision,
    last_inbound_at double precision,
    last_outbound_at double precision,
    last_channel {_T},
    unread bigint NOT NULL DEFAULT 0,
    merged_into bigint REFERENCES customers(id),
    created_at double precision NOT NULL
);
CREATE INDEX customers_queue_order ON customers(status, priority DESC, coalesce(waiting_since, 9e18), id)
    WHERE merged_into IS NULL;
CREATE INDEX customers_all_order ON customers(priority DESC, coalesce(waiting_since, 9e18), id)
    WHERE merged_into IS NULL;
CREATE INDEX customers_merged ON customers(merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX customers_snoozed ON customers(snoozed_until) WHERE status = 'snoozed';

CREATE TABLE identities (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    channel {_T} NOT NULL,
    address {_T} NOT NULL,
    display_name {_T} NOT NULL DEFAULT '',
    handle {_T} NOT NULL DEFAULT '',
    account {_T} NOT NULL DEFAULT '',
    created_at double precision NOT NULL,
    UNIQUE (channel, address)
);
CREATE INDEX identities_customer ON identities(customer_id);
CREATE INDEX identities_handle ON identities(handle) WHERE handle != '';

CREATE TABLE identity_keys (
    identity_id bigint NOT NULL REFERENCES identities(id),
    key {_T} NOT NULL,
    PRIMARY KEY (identity_id, key)
);
CREATE INDEX identity_keys_key ON identity_keys(key);

CREATE TABLE messages (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    identity_id bigint REFERENCES identities(id),
    channel {_T} NOT NULL,
    account {_T} NOT NULL DEFAULT '',
    direction {_T} NOT NULL CHECK (direction IN ('in','out','note')),
    external_id {_T},
    thread_key {_T},
    reply_to {_T},
    subject {_T},
    text {_T} NOT NULL DEFAULT '',
    html {_T},
    sent_at double precision NOT NULL,
    received_at double precision NOT NULL,
    author {_T},
    parse_error {_T},
    edited_at double precision,
    previous_texts {_T},
    deleted bigint NOT NULL DEFAULT 0,
    meta {_T},
    raw bytea,
    UNIQUE (channel, account, external_id)
);
CREATE INDEX messages_customer ON messages(customer_id, sent_at);
CREATE INDEX messages_out_ids ON messages(channel, external_id) WHERE direction = 'out';

-- search (store/fts.py builds the tsvector; store/search.py the tsquery)
CREATE TABLE messages_fts (
    id bigint PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    doc tsvector NOT NULL
);
CREATE INDEX messages_fts_doc ON messages_fts USING gin (doc);
CREATE TABLE customers_fts (
    id bigint PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    doc tsvector NOT NULL
);
CREATE INDEX customers_fts_doc ON customers_fts USING gin (doc);

CREATE TABLE attachments (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES messages(id),
    filename {_T} NOT NULL,
    content_type {_T} NOT NULL,
    size bigint NOT NULL,
    sha256 {_T} NOT NULL,
    path {_T}
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE tags (
    customer_id bigint NOT NULL REFERENCES customers(id),
    tag {_T} NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX tags_tag ON tags(tag);

CREATE TABLE facts (
    customer_id bigint NOT NULL REFERENCES customers(id),
    key {_T} NOT NULL,
    value {_T} NOT NULL,
    actor {_T},
    at double precision,
    channel {_T},
    message_id bigint,
    PRIMARY KEY (customer_id, key)
);
CREATE INDEX facts_value ON facts(value COLLATE nocase);

CREATE TABLE events (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at double precision NOT NULL,
    actor {_T} NOT NULL,
    kind {_T} NOT NULL,
    customer_id bigint,
    data {_T} NOT NULL DEFAULT '{{}}',
    undone_by bigint
);
CREATE INDEX events_customer ON events(customer_id, at);

CREATE TABLE outbox (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL UNIQUE REFERENCES messages(id),
    state {_T} NOT NULL CHECK (state IN ('queued','sending','sent','failed')),
    attempts bigint NOT NULL DEFAULT 0,
    last_error {_T},
    next_attempt_at double precision NOT NULL,
    created_at double precision NOT NULL,
    sent_at double precision,
    uncertain bigint NOT NULL DEFAULT 0,
    parts {_T}
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_sent ON outbox(sent_at, id) WHERE state = 'sent';

CREATE TABLE cursors (
    connector {_T} NOT NULL,
    key {_T} NOT NULL,
    value {_T} NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (connector, key)
);
INSERT INTO cursors(connector, key, value, updated_at) VALUES
    ('automation', 'message', '0', 0), ('automation', 'event', '0', 0),
    ('automation', 'sent_at', '0', 0), ('automation', 'sent_id', '0', 0);

CREATE TABLE leases (
    name {_T} PRIMARY KEY,
    holder {_T} NOT NULL,
    heartbeat double precision NOT NULL
);

CREATE TABLE health (
    connector {_T} PRIMARY KEY,
    state {_T} NOT NULL,
    detail {_T} NOT NULL DEFAULT '',
    updated_at double precision NOT NULL
);

CREATE TABLE rule_fires (
    rule {_T} NOT NULL,
    customer_id bigint NOT NULL,
    period {_T} NOT NULL,
    at double precision NOT NULL,
    PRIMARY KEY (rule, customer_id, period)
);

CREATE TABLE breaches (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    waiting_since double precision NOT NULL,
    channel {_T},
    target double precision NOT NULL,
    at double precision NOT NULL,
    UNIQUE (customer_id, waiting_since)
);
CREATE INDEX breaches_at ON breaches(at);

CREATE TABLE surveys (
    customer_id bigint PRIMARY KEY,
    asked_at double precision NOT NULL,
    channel {_T},
    message_id bigint,
    open bigint NOT NULL DEFAULT 1
);

CREATE TABLE ratings (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    message_id bigint,
    channel {_T},
    score bigint NOT NULL CHECK (score BETWEEN 1 AND 5),
    answer {_T} NOT NULL,
    at double precision NOT NULL
);
CREATE INDEX ratings_at ON ratings(at);

CREATE TABLE hook_runs (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    hook {_T} NOT NULL,
    kind {_T} NOT NULL,
    command {_T} NOT NULL,
    timeout double precision NOT NULL,
    payload {_T} NOT NULL,
    state {_T} NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','running')),
    holder {_T},
    attempts bigint NOT NULL DEFAULT 0,
    queued_at double precision NOT NULL,
    started_at double precision
);
CREATE INDEX hook_runs_queue ON hook_runs(hook, state, id);
"""

# STEPS[n]: SQL taking a PostgreSQL store from version n to n + 1 (n >= BASE).
# A step is SQL, or a function of the connection run inside the migrating transaction.
STEPS: dict[int, str | Callable[[Any], None]] = {
    # 14 (store/schema.py): drafts outlive the console
    13: f"""
CREATE TABLE drafts (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    agent {_T} NOT NULL,
    text {_T} NOT NULL,
    mode {_T} NOT NULL DEFAULT 'reply' CHECK (mode IN ('reply','note')),
    subject {_T},
    identity_id bigint,
    attachments {_T},
    cc {_T},
    literals {_T},
    updated_at double precision NOT NULL,
    UNIQUE (agent, customer_id)
);
""",
    # 15: tags in one form (store/tags.py); the same Python step as SQLite's
    14: renormalize_stored_tags,
    # 16: from:NAME search reads a customer's inbound messages newest first from this index
    # alone (an index-only scan), not from their rows scattered over the table (1M messages,
    # 'from:jane': 2,052 customers, 15,017 messages: 25k buffers read, 15k of them from
    # outside PostgreSQL's cache; now 17k, all in it). SQLite has no step (store/schema.py 16).
    15: "CREATE INDEX IF NOT EXISTS messages_inbound ON messages(customer_id, sent_at, id) WHERE direction = 'in';",
    # 17: name keys (store/names.py); the same Python step as SQLite's
    16: add_name_keys,
    # 18: printf('%.6f') as Python's (PRINTF): the timer rules' "already fired" filter compared
    # differently formatted periods for ~5% of customers. SQLite has no step (store/schema.py 18).
    17: PRINTF,
}


def statements(script: str) -> list[str]:
    """Split a script at `;` ending a line, keeping $$-quoted function bodies whole."""
    out, buf, quoted = [], [], False
    for line in script.splitlines():
        buf.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            out.append("\n".join(buf).strip().rstrip(";"))
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return [s for s in out if s.strip()]


def version(conn) -> int:
    """The schema version of the database (0: no omnidesk tables yet)."""
    if conn.execute("SELECT to_regclass('omnidesk_schema')").fetchone()[0] is None:
        return 0
    return conn.execute("SELECT version FROM omnidesk_schema").fetchone()[0]


def migrate(conn, target: int) -> None:
    """Bring the database from its version to `target`, inside the caller's transaction
    (which holds the write lock, so two processes never migrate at once)."""
    current = version(conn)
    if current == 0:
        for statement in statements(COMPAT) + statements(SCHEMA):
            conn.execute(statement)
        current = BASE
    for n in range(current, target):
        step = STEPS[n]
        if callable(step):
            step(conn)
        for statement in ([] if callable(step) else statements(step)):
            conn.execute(statement)
        conn.execute("UPDATE omnidesk_schema SET version = ?", (n + 1,))
