"""Ingest: idempotent, atomic with the cursor, safe with hostile input."""
import os
import stat

import pytest

from store import Store
from store.models import AttachmentIn

pytestmark = pytest.mark.both_backends


def test_same_message_twice_is_one_row(store, make_inbound):
    item = make_inbound(text="where is my order?", external_id="tg-1")
    first = store.ingest(item)
    second = store.ingest(item)
    assert first is not None and second is None
    assert len(store.timeline(first.customer_id)) == 1


def test_same_external_id_on_another_account_is_another_message(store, make_inbound):
    store.ingest(make_inbound(external_id="1", account="shop"))
    store.ingest(make_inbound(external_id="1", account="support"))
    cid = store.find_customer("1001")
    assert len(store.timeline(cid)) == 2


def test_batch_and_cursor_commit_together(store, make_inbound):
    items = [make_inbound(text=f"m{i}", external_id=f"e{i}") for i in range(3)]
    store.ingest_batch(items, "telegram:main", {"offset": "3"})
    assert store.load_cursor("telegram:main") == {"offset": "3"}
    # Redelivery after a crash before the cursor moved: nothing doubles.
    store.ingest_batch(items, "telegram:main", {"offset": "3"})
    assert len(store.timeline(store.find_customer("1001"))) == 3


def test_failed_batch_leaves_neither_rows_nor_cursor(store, make_inbound):
    good = make_inbound(text="kept?", external_id="a")
    bad = make_inbound(text="x", external_id="b")
    bad.sender = None  # an invalid item: resolve_sender raises mid-batch
    with pytest.raises(AttributeError):
        store.ingest_batch([good, bad], "telegram:main", {"offset": "2"})
    assert store.load_cursor("telegram:main") == {}
    assert store.q1("SELECT count(*) FROM messages")[0] == 0


def test_inbound_reopens_and_waiting_since_is_oldest_unanswered(store, make_inbound, clock):
    r = store.ingest(make_inbound(text="first", sent_at=100.0))
    store.ingest(make_inbound(text="second", sent_at=200.0))
    c = store.customer(r.customer_id)
    assert c.waiting_since == 100.0 and c.unread == 2
    store.set_status(r.customer_id, "done", "alex")
    clock.now = 300.0
    store.queue_reply(r.customer_id, "answer", "alex")
    assert store.customer(r.customer_id).waiting_since is None
    store.ingest(make_inbound(text="third", sent_at=400.0))
    c = store.customer(r.customer_id)
    assert c.status == "open" and c.waiting_since == 400.0


def test_edit_keeps_earlier_text_and_delete_marks(store, make_inbound):
    r = store.ingest(make_inbound(text="I ordered 2", external_id="m1"))
    store.ingest(make_inbound(text="I ordered 3", external_id="m1", kind="edit"))
    store.ingest(make_inbound(text="I ordered 3", external_id="m1", kind="edit"))  # redelivered edit
    m = store.message(r.message_id)
    assert m.text == "I ordered 3" and m.previous_texts == ["I ordered 2"] and m.edited_at
    store.ingest(make_inbound(text="", external_id="m1", kind="delete"))
    assert store.message(r.message_id).deleted
    assert store.message(r.message_id).text == "I ordered 3"


def test_attachments_are_stored_by_hash_with_safe_names(store, make_inbound):
    att = AttachmentIn("../../etc/passwd\x1b[31m", "text/plain", b"secret-ish")
    r = store.ingest(make_inbound(attachments=[att]))
    a = store.message(r.message_id).attachments[0]
    assert a.filename == "passwd[31m" and "/" not in a.filename
    assert open(a.path, "rb").read() == b"secret-ish"
    assert a.path.startswith(str(store.files.root))


def test_oversized_attachment_keeps_metadata_not_content(make_store, make_inbound):
    s = make_store(max_attachment_bytes=10)
    r = s.ingest(make_inbound(attachments=[AttachmentIn("big.bin", "application/octet-stream", b"x" * 11)]))
    a = s.message(r.message_id).attachments[0]
    assert a.size == 11 and a.path is None


@pytest.mark.sqlite_only("the mode of the SQLite file")
def test_database_file_is_private(store, db_path):
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600


def test_raw_source_kept(store, make_inbound):
    r = store.ingest(make_inbound(raw=b"\x00raw bytes"))
    assert store.raw_source(r.message_id) == b"\x00raw bytes"


def test_attachment_not_downloaded_is_still_listed(store, make_inbound):
    r = store.ingest(make_inbound(attachments=[AttachmentIn("movie.mp4", "video/mp4", None, size=80_000_000)]))
    a = store.message(r.message_id).attachments[0]
    assert (a.filename, a.size, a.path) == ("movie.mp4", 80_000_000, None)


@pytest.mark.parametrize("bulk", [False, True])
def test_a_reused_message_id_keeps_both_mails_and_still_dedupes(store, make_inbound, bulk):
    """Some mailers reuse one Message-ID for different mail: nothing may be lost."""
    first = make_inbound("email", "shop@x.io", "order 1 shipped", subject="Shipped", external_id="<same@x>")
    second = make_inbound("email", "shop@x.io", "order 2 shipped", subject="Shipped", external_id="<same@x>")
    again = make_inbound("email", "shop@x.io", "order 1 shipped", subject="Shipped", external_id="<same@x>")
    filler = [make_inbound("email", f"f{i}@x.io", "x") for i in range(40)] if bulk else []
    for item in (first, second, again):
        store.ingest_batch([item, *filler]) if bulk else store.ingest(item)
    cid = store.find_customer("shop@x.io")
    assert sorted(m.text for m in store.timeline(cid)) == ["order 1 shipped", "order 2 shipped"]
    second_again = make_inbound("email", "shop@x.io", "order 2 shipped", subject="Shipped", external_id="<same@x>")
    store.ingest(second_again)
    assert len(store.timeline(cid)) == 2


def test_a_reused_message_id_inside_one_big_batch_keeps_both(store, make_inbound):
    pair = [make_inbound("email", "shop@x.io", f"order {n} shipped", subject="Shipped", external_id="<same@x>")
            for n in (1, 2)]
    filler = [make_inbound("email", f"f{i}@x.io", "x") for i in range(40)]
    store.ingest_batch(pair + filler)
    assert sorted(m.text for m in store.timeline(store.find_customer("shop@x.io"))) == ["order 1 shipped",
                                                                                        "order 2 shipped"]


def test_bulk_path_gives_the_same_store_as_one_by_one(make_store, new_store_location, make_inbound, clock):
    """The set-based batch path must be an optimisation only."""
    import random

    rng = random.Random(5)
    items = []
    for n in range(300):
        who = rng.randrange(25)
        channel = rng.choice(["email", "telegram", "slack"])
        address = {"email": f"c{who}@x.io", "telegram": str(who), "slack": f"U{who}"}[channel]
        emails = (f"c{who}@x.io",) if channel == "slack" and who % 2 else ()
        backlog = {"backlog": True} if channel == "email" and rng.random() < 0.4 else {}  # old mail on a first read
        items.append(make_inbound(channel, address, f"m{n}", name=f"C{who}", emails=emails, meta=backlog,
                                  sent_at=clock.now + rng.randrange(-5000, 5000), external_id=f"e{n % 280}"))
    stores = [make_store(new_store_location("one")), make_store(new_store_location("bulk"))]
    for cid in (1, 2):  # some customers were answered before the batch arrives
        for s in stores:
            s.ingest(make_inbound("email", f"c{cid}@x.io", "earlier", sent_at=clock.now - 9000, external_id=f"p{cid}"))
            s.queue_reply(s.find_customer(f"c{cid}@x.io"), "answer", "alex")
    for s in stores:  # and some were closed, snoozed or read before it
        for cid, change in ((3, "done"), (4, "snooze"), (5, "read")):
            s.ingest(make_inbound("email", f"c{cid}@x.io", "earlier", sent_at=clock.now - 8000, external_id=f"q{cid}"))
            customer = s.find_customer(f"c{cid}@x.io")
            if change == "done":
                s.set_status(customer, "done", "alex")
            elif change == "snooze":
                s.snooze(customer, clock.now + 3600, "alex")
            else:
                s.mark_read(customer)
    for item in items:
        stores[0].ingest(item)
    stores[1].ingest_batch(items)

    def snapshot(s):
        return [tuple(r) for r in s.q("SELECT id, name, status, snoozed_until, waiting_since, last_inbound_at,"
                                      " last_channel, unread, merged_into FROM customers ORDER BY id")], \
               [tuple(r) for r in s.q("SELECT customer_id, identity_id, external_id, text FROM messages ORDER BY external_id")]

    assert snapshot(stores[0]) == snapshot(stores[1])


def store_snapshot(s):
    # A customer merged away keeps stale queue fields (an undo recomputes them):
    # compare those only for live customers.
    return ([tuple(r) if r["merged_into"] is None else (r["id"], r["name"], r["status"], r["merged_into"])
             for r in s.q("SELECT * FROM customers ORDER BY id")],
            [tuple(r) for r in s.q("SELECT * FROM identities ORDER BY id")],
            [tuple(r) for r in s.q("SELECT * FROM identity_keys ORDER BY identity_id, key")],
            [tuple(r) for r in s.q("SELECT customer_id, identity_id, external_id, text FROM messages ORDER BY id")],
            [tuple(r) for r in s.q("SELECT kind, customer_id, actor, data FROM events ORDER BY id")],
            s.search("C3"))


def test_bulk_path_matches_one_by_one_when_evidence_joins_customers(make_store, new_store_location, make_inbound,
                                                                   clock):
    """Senders whose evidence joins two customers, whose name changes, or whose
    phone number links them, inside one batch and across batches, with one pair
    an agent split earlier: the bulk path must end in exactly the same store."""
    import random

    rng = random.Random(11)
    items = []
    for n in range(400):
        who = rng.randrange(30)
        channel = rng.choice(["email", "telegram", "slack"])
        name = rng.choice([f"C{who}", f"C{who}", f"Customer {who}", ""])
        if channel == "email":
            item = make_inbound("email", f"C{who}@X.io", f"m{n}", name=name)
        elif channel == "telegram":
            phones = (f"+4420794600{who:02d}",) if rng.random() < 0.3 else ()
            item = make_inbound("telegram", str(who), f"m{n}", name=name, handle=rng.choice(["", f"c{who}"]),
                                phones=phones)
        else:
            emails = rng.choice([(), (f"c{who}@x.io",), (f"c{who}@x.io", f"c{(who + 1) % 30}@x.io")])
            item = make_inbound("slack", f"U{who}", f"m{n}", name=name, emails=emails)
        item.sent_at = clock.now + rng.randrange(-5000, 5000)
        item.external_id = f"e{n}"
        items.append(item)
    stores = [make_store(new_store_location("one")), make_store(new_store_location("bulk"))]
    for s in stores:  # an agent split c7's phone identity off before: auto-link must keep them apart
        s.ingest(make_inbound("email", "c7@x.io", "first", name="C7", external_id="p1"))
        s.ingest(make_inbound("telegram", "7", "first", name="C7", phones=("+442079460007",), external_id="p2"))
        s.add_identity_evidence(s.identities(s.find_customer("c7@x.io"))[-1].id, phones=("+442079460007",))
        s.ingest(make_inbound("telegram", "9007", "hi", name="T7", phones=("+442079460007",), external_id="p3"))
        s.split(s.identities(s.find_customer("c7@x.io"))[-1].id, "alex")
    for item in items:
        stores[0].ingest(item)
    for i in range(0, len(items), 150):
        stores[1].ingest_batch(items[i:i + 150])
    one, bulk = store_snapshot(stores[0]), store_snapshot(stores[1])
    for part_one, part_bulk in zip(one, bulk):
        assert part_one == part_bulk
    assert len([e for e in one[4] if e[0] == "merge"]) > 5  # evidence did join customers
    for s in stores:  # and the agent's split stands in both
        assert s.find_customer("c7@x.io") != s.live_id(s.q1("SELECT customer_id FROM identities WHERE address='9007'")[0])


def test_a_batch_that_brings_stored_mail_again_changes_nothing(store, make_inbound, clock):
    """A folder read again (UIDVALIDITY changed) re-delivers old mail, maybe
    under an old display name or through a list that rewrote From."""
    first = store.ingest(make_inbound("email", "jane@x.io", "order?", name="Jane Roe", external_id="<j1@x>"))
    filler = [make_inbound("telegram", str(n), f"hi {n}", name=f"T{n}") for n in range(40)]
    again = [make_inbound("email", "jane@x.io", "order?", name="jane (old name)", external_id="<j1@x>"),
             make_inbound("email", "list@lists.example", "order?", name="Shop list", external_id="<j1@x>")]
    customers = store.q1("SELECT count(*) FROM customers")[0]
    results = store.ingest_batch(again + filler)
    assert len(results) == 40  # only the new Telegram messages
    assert store.identities(first.customer_id)[0].display_name == "Jane Roe"
    assert store.q1("SELECT count(*) FROM customers")[0] == customers + 40
    assert store.q1("SELECT count(*) FROM identities WHERE address = 'list@lists.example'")[0] == 0
