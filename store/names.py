"""How names compare: the name key.

A customer's name and each identity's display name are stored twice: as written, and
as a key with Unicode case folded (str.casefold: ÉMILE -> émile, ΣΟΦΙΑΣ -> σοφιασ,
Straße -> strasse) and the folds search applies (store/fts.py: Latin accents, ё -> е,
æ, œ, ø), with runs of spaces made one. A lookup folds the typed text the same way
and compares keys. SQLite's NOCASE and lower() fold ASCII only, and PostgreSQL's
lower() follows the database's locale; keys made here in Python are the same on both
backends, and an index on them serves a whole-name lookup.
"""
from __future__ import annotations

import sqlite3
import unicodedata

from store.fts import _FOLDS, _LATIN_BASE


def name_key(text: str | None) -> str:
    """`text` as names compare: "  ÉMILE  Zolà " -> "emile zola" ("" for None)."""
    if not text:
        return ""
    text = " ".join(text.split())
    if text.isascii():
        return text.lower()  # the common case; for ASCII, casefold is lower
    text = unicodedata.normalize("NFC", text).translate(_FOLDS).casefold()
    # after casefold, so İ -> i̇ -> i and ẞ -> ss come out as plain letters too
    return unicodedata.normalize("NFC", text).translate(_LATIN_BASE)


def add_name_keys(conn) -> None:
    """Schema 17 (SQLite, and the same step on PostgreSQL): the name_key columns of
    customers (their name) and identities (their display name), filled for the rows
    there, and the indexes for whole-name (and handle) lookups. Run again (a store set
    back to an older version), it refills the keys."""
    sqlite = isinstance(conn, sqlite3.Connection)
    kind = "TEXT" if sqlite else 'text COLLATE "C"'  # PostgreSQL: compared byte for byte, as SQLite
    for table, column in (("customers", "name"), ("identities", "display_name")):
        if "name_key" not in _columns(conn, table, sqlite):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN name_key {kind} NOT NULL DEFAULT ''")
        rows = conn.execute(f"SELECT id, {column} FROM {table} WHERE {column} != ''").fetchall()
        conn.executemany(f"UPDATE {table} SET name_key = ? WHERE id = ?", [(name_key(r[1]), r[0]) for r in rows])
    conn.execute("CREATE INDEX IF NOT EXISTS customers_name_key ON customers(name_key)")
    # find_customer's other two lookups by name or handle, each by an index instead of a scan
    conn.execute("CREATE INDEX IF NOT EXISTS identities_name_key ON identities(name_key) WHERE name_key != ''")
    conn.execute("CREATE INDEX IF NOT EXISTS identities_handle_lower ON identities(lower(handle)) WHERE handle != ''")


def _columns(conn, table: str, sqlite: bool) -> set[str]:
    if sqlite:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    return {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns"
                                       " WHERE table_schema = current_schema() AND table_name = ?", (table,))}
