"""Issue 16.2: status "pending" = we wait on the customer; the queue of customers who
wait on us stays "waiting". The old status word still works, with a note, and a
store from before keeps its meaning."""
from __future__ import annotations

import json
import sqlite3

from store import Store, schema
from store.db import Database
from tests.conftest import inbound
from tests.support.cli import run_in_process
from tests.test_rules import ingest, make_auto

T0 = 1_790_000_000.0


def test_status_pending_and_the_waiting_queue_are_two_things(tmp_path):
    db = tmp_path / "o.db"
    s = Store(db)
    jane = s.ingest(inbound("email", "jane@roe.com", "where is my teapot?", name="Jane", sent_at=T0)).customer_id
    bob = s.ingest(inbound("slack", "U7", "invoice please", name="Bob", sent_at=T0 + 60)).customer_id
    s.close()
    rc, out, err = run_in_process("--db", str(db), "--agent", "ann", "status", str(jane), "pending")
    assert rc == 0 and out.strip() == f"#{jane} is now pending" and err == ""
    rc, out, _ = run_in_process("--db", str(db), "queue", "--filter", "pending", "--json")
    assert [r["customer_id"] for r in json.loads(out)] == [jane]
    assert json.loads(out)[0]["status"] == "pending"
    rc, out, _ = run_in_process("--db", str(db), "queue", "--json")  # waiting: they wait on us
    assert [r["customer_id"] for r in json.loads(out)] == [bob]
    rc, out, _ = run_in_process("--db", str(db), "events", "--customer", str(jane), "--json")
    assert json.loads(out)[0]["data"]["new"] == "pending"


def test_the_old_word_is_accepted_with_a_note(tmp_path):
    db = tmp_path / "o.db"
    s = Store(db)
    jane = s.ingest(inbound("email", "jane@roe.com", "hi", sent_at=T0)).customer_id
    s.close()
    rc, out, err = run_in_process("--db", str(db), "status", str(jane), "waiting", "--json")
    assert rc == 0 and json.loads(out)["status"] == "pending"
    assert "note: status 'waiting' is now called 'pending'" in err
    s = Store(db)
    assert s.customer(jane).status == "pending"
    s.close()
    rc, out, err = run_in_process("status", "--help")
    assert "{open,pending,done}" in out and "waiting" not in out.split("positional")[1]
    rc, out, err = run_in_process("--db", str(db), "status", str(jane), "closed")
    assert rc == 2 and "invalid choice: 'closed' (choose from 'open', 'pending', 'done')" in err
    assert "waiting" not in err  # the error offers what the usage shows, not the old word


def test_an_old_rules_file_saying_waiting_sets_pending(tmp_path, store):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "wait on them"
        when = { text = "later" }
        then = { status = "waiting" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(text="I'll check later"))
    assert store.customer(r.customer_id).status == "pending"


class _OldDatabase(Database):
    """The store file as an older omnidesk left it: migrated up to `version` only."""

    version_wanted = 0

    def migrate(self, target=None):
        super().migrate(self.version_wanted)


def _store_at(db, version):
    _OldDatabase.version_wanted = version
    _OldDatabase(db).close()
    return sqlite3.connect(db)


def test_the_migration_renames_stored_statuses_and_events(tmp_path):
    db = tmp_path / "old.db"
    conn = _store_at(db, schema.MIGRATIONS.index(schema._status_pending))  # the schema before "pending"
    conn.execute("INSERT INTO customers(id, name, status, created_at) VALUES (1, 'Ann', 'waiting', 0),"
                 " (2, 'Bo', 'open', 0)")
    conn.execute("""INSERT INTO events(at, actor, kind, customer_id, data) VALUES
        (1, 'ann', 'status', 1, '{"old": "open", "new": "waiting"}'),
        (2, 'rules', 'rule', 1, '{"rule": "r", "actions": ["tag x", "status waiting"]}'),
        (3, 'ann', 'status', 1, '{"old": "waiting", "new": "open"}')""")
    conn.commit()
    conn.close()
    s = Store(db)
    assert s.version == schema.LATEST
    assert s.customer(1).status == "pending" and s.customer(2).status == "open"
    by_id = {e.id: e.data for e in s.events(1, limit=10)}
    assert by_id[1] == {"old": "open", "new": "pending"}
    assert by_id[2]["actions"] == ["tag x", "status pending"]
    assert by_id[3] == {"old": "pending", "new": "open"}
    assert s.q1("PRAGMA integrity_check")[0] == "ok"
    s.set_status(2, "pending", "ann")  # the new word is allowed at once ...
    assert s.customer(2).status == "pending"
    assert s.undo("ann") and s.customer(2).status == "open"
    s.close()
    conn = sqlite3.connect(db)  # ... and the old one is refused, by another connection too
    try:
        conn.execute("UPDATE customers SET status = 'waiting' WHERE id = 2")
        raised = False
    except sqlite3.IntegrityError:
        raised = True
    conn.close()
    assert raised
