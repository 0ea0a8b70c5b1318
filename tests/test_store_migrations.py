"""A new database and one at an older version both end at the latest schema."""
import sqlite3

import pytest

from store import Store, StoreError
from store import schema
from store.db import Database
from store.models import InboundMessage, Sender

# The schema's history (user_version, the v1 tables, sqlite_master, WAL) is SQLite's; the
# PostgreSQL schema starts at its own latest. Opening a new store from many processes at
# once is a question for both.


@pytest.mark.sqlite_only("SQLite's schema history")
def test_new_database_is_at_latest(db_path):
    s = Store(db_path)
    assert s.version == schema.LATEST
    tables = {r[0] for r in s.q("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"customers", "identities", "messages", "outbox", "events", "messages_fts"} <= tables
    assert s.q1("PRAGMA journal_mode")[0] == "wal"


@pytest.mark.sqlite_only("SQLite's schema history")
def test_older_database_upgrades_and_keeps_data(db_path):
    old = Database(db_path)  # Database.migrate runs to LATEST; roll a fresh file to v1 instead
    old.close()
    db_path.unlink()
    for suffix in ("-wal", "-shm"):
        p = db_path.with_name(db_path.name + suffix)
        if p.exists():
            p.unlink()
    conn = sqlite3.connect(db_path)
    from store.db import _split_sql

    for statement in _split_sql(schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO customers(id, name, created_at) VALUES (1, 'Old Timer', 0)")
    conn.execute("INSERT INTO identities(customer_id, channel, address, created_at) VALUES (1, 'email', 'old@x.io', 0)")
    conn.execute("INSERT INTO messages(customer_id, identity_id, channel, direction, external_id, text, sent_at, received_at)"
                 " VALUES (1, 1, 'email', 'in', '<m1>', 'refund for the teapot please', 0, 0)")
    conn.commit()
    conn.close()

    s = Store(db_path)
    assert s.version == schema.LATEST
    hits = s.search("teapot")
    assert [h.customer_name for h in hits] == ["Old Timer"]  # FTS built from the existing rows
    assert [h.customer_id for h in s.search("timer")] == [1]
    s.ingest(InboundMessage("email", "", "<m2>", Sender("email", "old@x.io"), "another teapot", 1.0))
    assert len(s.search("teapot")) == 2


@pytest.mark.sqlite_only("SQLite's schema history")
def test_newer_database_is_refused(db_path):
    s = Store(db_path)
    s.conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    s.close()
    with pytest.raises(StoreError, match="newer than this omnidesk"):
        Store(db_path)


@pytest.mark.both_backends
def test_many_processes_opening_a_new_store_at_once(new_store_location):
    """Consoles and `omnidesk sync` started together on a fresh file: none fails."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = new_store_location("new", migrated=False)
    code = "import sys; from store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stderr=subprocess.PIPE)
             for _ in range(8)]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    s = Store(path)
    assert s.version == schema.LATEST
    s.close()
