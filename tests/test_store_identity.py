"""Identity threading: auto-link on sure evidence, merge, split, undo, suggestions."""
import pytest

from store import StoreError

pytestmark = pytest.mark.both_backends


def test_same_email_links_across_channels(store, make_inbound):
    a = store.ingest(make_inbound("email", "Jane Roe <JANE@Example.com>", "order 1042", name="Jane Roe"))
    b = store.ingest(make_inbound("slack", "U123", "hi from slack", name="Jane R", emails=("jane@example.com",)))
    assert a.customer_id == b.customer_id
    assert sorted(store.customer(a.customer_id).channels) == ["email", "slack"]


def test_shared_phone_links_telegram_to_existing_customer(store, make_inbound):
    a = store.ingest(make_inbound("telegram", "1", "hi", name="Bob", phones=("+49 30 1234567",)))
    b = store.ingest(make_inbound("telegram", "2", "me again, other account", name="Bob", phones=("0049301234567",)))
    # "0049..." is not E.164 and cannot be read without a region: no link; "+49..." forms link
    c = store.ingest(make_inbound("telegram", "3", "third", name="Bob", phones=("+493012345 67",)))
    assert c.customer_id == a.customer_id
    assert b.customer_id != a.customer_id


def test_late_evidence_merges_two_existing_customers_and_is_undoable(store, make_inbound):
    a = store.ingest(make_inbound("email", "kim@shop.io", "mail", name="Kim"))
    b = store.ingest(make_inbound("slack", "U9", "slack", name="Kim S"))
    assert a.customer_id != b.customer_id
    # Slack profile e-mail arrives later (users.info refreshed)
    c = store.ingest(make_inbound("slack", "U9", "again", name="Kim S", emails=("kim@shop.io",)))
    assert c.customer_id == a.customer_id
    ev = store.events(kind="merge")[0]
    assert ev.actor == "auto-link" and "same email kim@shop.io" in ev.data["evidence"]
    assert len(store.timeline(a.customer_id)) == 3
    store.undo("auto-link", ev.id)
    assert len(store.timeline(a.customer_id)) == 1
    assert len(store.timeline(b.customer_id)) == 2


def test_merge_split_undo(store, make_inbound):
    a = store.ingest(make_inbound("telegram", "10", "tg msg", name="Ann"))
    b = store.ingest(make_inbound("email", "ann@x.org", "mail msg", name="Ann X"))
    store.tag(b.customer_id, "vip", "alex")
    store.add_note(b.customer_id, "called her", "alex")
    store.merge(a.customer_id, b.customer_id, "alex")
    merged = store.customer(a.customer_id)
    assert merged.channels == ["email", "telegram"] and merged.tags == ["vip"]
    assert len(store.timeline(a.customer_id)) == 3
    assert store.find_customer("ann@x.org") == a.customer_id  # old refs follow the merge
    assert [q.customer_id for q in store.queue("all")] == [a.customer_id]

    store.undo("alex")
    assert len(store.timeline(a.customer_id)) == 1
    assert [m.text for m in store.timeline(b.customer_id)] == ["mail msg", "called her"]
    assert store.customer(b.customer_id).tags == ["vip"] and store.customer(a.customer_id).tags == []

    store.merge(a.customer_id, b.customer_id, "alex")
    email_identity = [i for i in store.identities(a.customer_id) if i.channel == "email"][0]
    _, new_id = store.split(email_identity.id, "alex")
    assert [m.text for m in store.timeline(new_id)] == ["mail msg"]
    assert store.customer(new_id).status == "open" and store.customer(new_id).waiting_since
    store.undo("alex")
    assert len(store.timeline(a.customer_id)) == 3
    kinds = [e.kind for e in store.events(a.customer_id)]
    assert kinds.count("undo") == 2 and "split" in kinds and "merge" in kinds


def test_cannot_split_only_identity_or_merge_self(store, make_inbound):
    a = store.ingest(make_inbound())
    with pytest.raises(StoreError, match="only identity"):
        store.split(a.identity_id, "alex")
    with pytest.raises(StoreError, match="itself"):
        store.merge(a.customer_id, a.customer_id, "alex")


def test_nothing_to_undo(store):
    with pytest.raises(StoreError, match="nothing to undo"):
        store.undo("alex")


def test_suggestions_show_evidence_and_change_nothing(store, make_inbound):
    a = store.ingest(make_inbound("telegram", "5", "hi", name="Maria González", handle="mgonzalez"))
    b = store.ingest(make_inbound("email", "mgonzalez@acme.com", "hello", name="Maria Gonzalez"))
    store.ingest(make_inbound("email", "zed@other.net", "x", name="Zed"))
    suggestions = store.merge_suggestions()
    assert suggestions[0].customer_id == a.customer_id and suggestions[0].other_id == b.customer_id
    assert any("same name" in e for e in suggestions[0].evidence)
    assert any("handle matches" in e for e in suggestions[0].evidence)
    assert store.customer(a.customer_id).channels == ["telegram"]  # never applied


def test_store_wide_suggestions_find_names_that_start_differently(store, make_inbound):
    jon = store.ingest(make_inbound("telegram", "8", "hi", name="Jon Smith")).customer_id
    john = store.ingest(make_inbound("email", "john@smith-bakery.example", "hello", name="John Smith")).customer_id
    lee = store.ingest(make_inbound("slack", "U9", "hey", name="Lee", handle="kwan.lee")).customer_id
    kwan = store.ingest(make_inbound("email", "kwan.lee@x.example", "yo", name="K. W.")).customer_id
    pairs = {(s.customer_id, s.other_id): s.evidence for s in store.merge_suggestions()}
    assert any("similar names" in e for e in pairs[(jon, john)])  # 'jon' and 'joh' start apart
    assert any("handle matches e-mail name" in e for e in pairs[(lee, kwan)])  # nothing in common but that


def test_find_customer_by_every_kind_of_reference(store, make_inbound):
    t = store.ingest(make_inbound("telegram", "777", "x", name="Tia", handle="tia_t"))
    s = store.ingest(make_inbound("slack", "U42", "y", name="Sam", handle="sam"))
    e = store.ingest(make_inbound("email", "e@x.io", "z"))
    assert store.find_customer("@tia_t") == t.customer_id
    assert store.find_customer("777") == t.customer_id  # a Telegram user id, no customer #777
    assert store.find_customer("U42") == s.customer_id
    assert store.find_customer("slack:@sam") == s.customer_id
    assert store.find_customer("E@X.io") == e.customer_id
    assert store.find_customer(str(e.customer_id)) == e.customer_id
    with pytest.raises(StoreError, match="no customer matches"):
        store.find_customer("@nobody")


def test_auto_link_respects_a_split_by_the_agent(store, make_inbound):
    a = store.ingest(make_inbound("email", "pat@x.io", "from Pat", name="Pat"))
    b = store.ingest(make_inbound("slack", "U5", "from the shared account", emails=("pat@x.io",)))
    assert a.customer_id == b.customer_id  # linked by the profile e-mail
    _, apart = store.split(b.identity_id, "alex")  # the agent knows better: two people
    c = store.ingest(make_inbound("telegram", "9", "hi", phones=(), emails=("pat@x.io",)))
    assert c.customer_id in (a.customer_id, apart)
    assert [e.actor for e in store.events(kind="merge")] == []  # no automatic re-merge
    assert store.q1("SELECT merged_into FROM customers WHERE id=?", (apart,))[0] is None


def test_merge_and_split_keep_what_the_agent_already_read(store, make_inbound, clock):
    jane_tg = store.ingest(make_inbound("telegram", "7", "hi", name="Jane", sent_at=clock.now - 300)).customer_id
    store.ingest(make_inbound("telegram", "7", "my order?", name="Jane", sent_at=clock.now - 200))
    store.mark_read(jane_tg)  # the agent read both, has not answered yet
    jane_mail = store.ingest(make_inbound("email", "jane@x.io", "also by mail", name="Jane R",
                                          sent_at=clock.now - 100)).customer_id
    store.merge(jane_tg, jane_mail, "alex")
    assert store.customer(jane_tg).unread == 1  # only the e-mail is new to the agent
    assert store.customer(jane_tg).waiting_since == clock.now - 300  # and all three still wait
    mail_identity = [i.id for i in store.identities(jane_tg) if i.channel == "email"][0]
    _, split_off = store.split(mail_identity, "alex")
    assert (store.customer(jane_tg).unread, store.customer(split_off).unread) == (0, 1)
    store.undo("alex")  # the split
    assert store.customer(jane_tg).unread == 1
    store.undo("alex")  # the merge
    assert (store.customer(jane_tg).unread, store.customer(jane_mail).unread) == (0, 1)


def test_merge_and_split_leave_old_backlog_mail_out_of_the_queue(store, make_inbound, clock):
    ann_tg = store.ingest(make_inbound("telegram", "55", "hello", name="Ann")).customer_id
    store.queue_reply(ann_tg, "hi Ann", "alex")
    store.set_status(ann_tg, "done", "alex")
    ann_mail = store.ingest(make_inbound("email", "ann@x.io", "our 2024 thread", name="Ann",
                                         sent_at=clock.now - 400 * 86400, meta={"backlog": True})).customer_id
    store.merge(ann_tg, ann_mail, "alex")
    merged = store.customer(ann_tg)
    assert (merged.status, merged.waiting_since, merged.unread) == ("done", None, 0)
    mail_identity = [i.id for i in store.identities(ann_tg) if i.channel == "email"][0]
    _, split_off = store.split(mail_identity, "alex")
    assert store.customer(split_off).waiting_since is None
    assert split_off not in [row.customer_id for row in store.queue("waiting")]
