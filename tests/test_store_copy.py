"""`omnidesk store copy SRC DEST`: a store moved between SQLite and PostgreSQL (either
way) keeps every row with its id, its search and its attachment files; an interrupted
copy (even by kill -9) goes on where it stopped with nothing doubled; a difference is
reported table by table with a non-zero exit."""
from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys

import pytest

from store import Store
from store.copy import CopyError, canonical_row, copy_store, open_side
from store.models import AttachmentIn, Receipt
from tests.conftest import ROOT, inbound
from tests.support.chat import wait_until
from tests.support.cli import OMNIDESK, run_in_process

pytestmark = pytest.mark.both_backends  # the store in the middle: SQLite or PostgreSQL

T0 = 1_790_000_000.0


def seed(store: Store, customers: int = 12) -> None:
    """A store with a bit of everything: several channels and scripts, attachments, raw
    sources, merges, a split, tags, facts, notes, replies in every outbox state."""
    for n in range(customers):
        store.ingest(inbound("email", f"c{n}@shop.test", f"order {n} arrived broken, refund please", name=f"Cust {n}",
                             subject=f"Order #{1000 + n}", sent_at=T0 + n, raw=b"\x00raw\xff" * n,
                             attachments=[AttachmentIn(f"photo {n}.jpg", "image/jpeg", b"JPEG" + bytes([n]) * 50)]))
        store.ingest(inbound("telegram", str(4200 + n), "请问什么时候发货" if n % 2 else "где мой заказ? пришёл?",
                             name="王小明" if n % 2 else "Пётр", handle=f"tg{n}", sent_at=T0 + 100 + n,
                             phones=(f"+4420794600{n:02d}",)))
        store.ingest(inbound("slack", f"U{n}", f"invoice {n} please", name=f"Slack {n}", sent_at=T0 + 200 + n))
    c0, c1, c2 = (store.find_customer(f"c{n}@shop.test") for n in range(3))
    store.merge(c0, store.find_customer("4201"), "alex")
    store.merge(c1, store.find_customer("U1"), "alex")
    store.split(store.identities(c1)[-1].id, "alex")
    store.tag(c0, "vip", "alex")
    store.tag(c2, "billing", "kim")
    store.set_fact(c0, "order_number", "1000", "alex")
    store.add_note(c2, "prefers mornings", "kim")
    store.snooze(c2, T0 + 86400, "alex")
    for n, cid in enumerate((c0, c1, c2)):
        store.queue_reply(cid, f"on it {n}", "alex")
    sent = store.claim_due()[0]
    store.mark_sent(sent.outbox_id, Receipt("<sent@shop>"))


def rows(store: Store) -> dict[str, list[bytes]]:
    """Every copied table's rows, canonical, in primary-key order."""
    side = open_side(store)
    return {name: [canonical_row(r) for batch in side.scan(t, t.columns) for r in batch]
            for name, t in side.tables().items()}


def searches(store: Store) -> list:
    return [[(h.message_id, h.customer_id, h.snippet) for h in store.search(q)]
            for q in ("refund", "发货", "пришел", "from:Пётр", "tag:vip", "invoice OR photo", "channel:slack")]


@pytest.fixture
def source(tmp_path, clock):
    s = Store(tmp_path / "source.db", clock=clock)
    seed(s)
    yield s
    s.close()


def test_a_round_trip_through_the_other_backend_is_identical(source, make_store, tmp_path, clock):
    middle = make_store()
    there = copy_store(source, middle)
    assert there.ok and not there.resumed
    assert rows(middle) == rows(source)  # row by row, every table
    final = make_store(str(tmp_path / "final.db"))
    back = copy_store(middle, final)
    assert back.ok
    assert [(c.table, c.source_rows, c.source_sum) for c in back.checks] == \
           [(c.table, c.source_rows, c.source_sum) for c in there.checks]
    assert rows(final) == rows(source)
    assert searches(final) == searches(source)
    assert all(searches(source))  # and every search did find something
    for s in (middle, final):  # the attachment files came along
        for m in s.timeline(s.find_customer("c3@shop.test")):
            for a in m.attachments:
                assert open(a.path, "rb").read() == b"JPEG" + bytes([3]) * 50
    # ids continue past the copied ones: new rows neither collide nor reuse an id
    r = middle.ingest(inbound("email", "new@shop.test", "hello after the move", sent_at=T0 + 999))
    assert r.message_id > max(m.id for c in source.customers(limit=1000) for m in source.timeline(c.id))


def test_an_interrupted_copy_goes_on_where_it_stopped(source, make_store, new_store_location):
    dest = make_store()

    def stop_in_the_middle(table, done, total):
        if table == "messages" and 0 < done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(source, dest, stop_in_the_middle, batch=10)
    assert 0 < dest.q1("SELECT count(*) FROM messages")[0] < source.q1("SELECT count(*) FROM messages")[0]
    again = copy_store(source, dest, batch=10)
    assert again.ok and again.resumed
    assert rows(dest) == rows(source)
    whole = make_store(new_store_location("whole"))  # the same copy, never interrupted
    copy_store(source, whole)
    assert searches(dest) == searches(whole)  # each message indexed once, none missing


def test_the_copy_searches_like_the_original(source, make_store):
    dest = make_store()
    copy_store(source, dest)
    assert searches(dest) == searches(source)


def test_a_copy_into_postgresql_is_planned_by_its_statistics(source, pg_url, tmp_path):
    """Searches on a fresh copy are planned by the copied rows' statistics, not blind."""
    dest = Store(pg_url, attachments_dir=tmp_path / "pg-files")
    assert copy_store(source, dest).ok
    analyzed = dest.conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'messages_fts' AND attname = 'doc'"
                                 ).fetchone()[0]
    assert analyzed == 1
    dest.close()


def test_a_destination_with_other_data_is_refused(source, make_store, tmp_path):
    dest = make_store()
    dest.ingest(inbound("email", "someone@else.test", "not yours"))
    with pytest.raises(CopyError, match="not empty"):
        copy_store(source, dest)
    assert len(dest.customers()) == 1  # and left as it was

    def stop_at_once(table, done, total):
        raise KeyboardInterrupt

    other = Store(tmp_path / "other.db")
    seed(other, customers=3)
    fresh = make_store(str(tmp_path / "fresh.db"))
    with pytest.raises(KeyboardInterrupt):
        copy_store(other, fresh, stop_at_once)
    with pytest.raises(CopyError, match="unfinished copy of"):
        copy_store(source, fresh)
    other.close()


def test_the_command_reports_a_difference_table_by_table(source, make_store, store_location):
    dest = make_store()

    def stop_at_identities(table, done, total):
        if table == "identities":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(source, dest, stop_at_identities)
    with dest.tx():  # a copied row changed behind the copy's back
        dest.conn.execute("UPDATE customers SET name = 'Someone Else' WHERE id = 1")
    dest.close()
    rc, out, err = run_in_process("store", "copy", str(source.path), store_location)
    assert rc == 1
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "MISMATCH" in lines["customers"] and lines["messages"].endswith(" ok")
    assert "differs from the source in customers" in err


def test_the_command_copies_and_says_so(source, store_location):
    path, messages = str(source.path), source.q1("SELECT count(*) FROM messages")[0]
    source.close()
    rc, out, err = run_in_process("store", "copy", path, store_location)
    assert rc == 0, err
    assert f"copied messages: {messages} rows" in err and "copied and verified" in err
    assert all(line.endswith(" ok") for line in out.splitlines()[1:])
    rc, _, err = run_in_process("store", "copy", path, store_location)
    assert rc == 1 and "not empty" in err


def test_a_terminal_gets_a_progress_bar(source, tmp_path):
    path, messages = str(source.path), source.q1("SELECT count(*) FROM messages")[0]
    source.close()
    main, child = pty.openpty()
    proc = subprocess.Popen([str(OMNIDESK), "store", "copy", path, str(tmp_path / "copy.db")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=child, env={**os.environ, "COLUMNS": "100"})
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=60)
    os.close(main)
    text = shown.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "━" in text and "messages" in text and f"{messages}/{messages}" in text
    assert "copied messages:" not in text  # the plain lines are for pipes and logs


def test_kill_9_in_the_middle_of_a_table_then_resume(source, pg_url):
    """The destination's events table has an uncommitted row with an id from the middle
    of the source's: the copy commits the batches before it, then waits on that row's
    lock; killed there, the rerun goes on from the committed batches."""
    import psycopg

    events = source.q1("SELECT count(*) FROM events")[0]
    assert events >= 10
    middle_id = source.q("SELECT id FROM events ORDER BY id")[events // 2][0]
    path = str(source.path)
    source.close()
    blocker = psycopg.connect(pg_url)  # a transaction of its own, left open
    blocker.execute("INSERT INTO events(id, at, actor, kind, customer_id, data) VALUES (%s, 0, 'x', 'x', 0, '{}')",
                    (middle_id,))
    proc = subprocess.Popen([str(OMNIDESK), "store", "copy", "--batch", "2", path, pg_url], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with psycopg.connect(pg_url, autocommit=True) as watch:
            wait_until(lambda: watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                             " AND wait_event_type = 'Lock'").fetchone()[0], timeout=60,
                       what="the copy to wait on the locked row")
            copied = watch.execute("SELECT count(*) FROM events").fetchone()[0]
            assert 0 < copied < events
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            blocker.rollback()
            wait_until(lambda: not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                                 " current_database() AND application_name = 'omnidesk'"
                                                 ).fetchone()[0], timeout=60, what="the killed copy's session to end")
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rc, out, err = run_in_process("store", "copy", path, pg_url)
    assert rc == 0, err
    assert "(resumed)" in err
    again = Store(path)
    dest = Store(pg_url)
    try:
        assert rows(dest) == rows(again)
    finally:
        again.close()
        dest.close()
