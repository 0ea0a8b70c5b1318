"""Full-text search with filters."""
import pytest

from store import StoreError

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21


@pytest.fixture
def seeded(store, make_inbound):
    a = store.ingest(make_inbound("email", "jane@roe.com", "The teapot arrived broken", name="Jane Roe",
                                  subject="Order #1042", sent_at=T0))
    b = store.ingest(make_inbound("telegram", "55", "my teapot is blue", name="Bob Li", handle="bobli", sent_at=T0 + DAY))
    c = store.ingest(make_inbound("slack", "U1", "invoice please", name="Teapot Fan", sent_at=T0 + 2 * DAY))
    store.tag(b.customer_id, "vip", "alex")
    return a, b, c


def test_words_match_texts_subjects_and_names(store, seeded):
    a, b, c = seeded
    hits = store.search("teapot")
    ids = {(h.message_id, h.customer_id) for h in hits}
    assert (a.message_id, a.customer_id) in ids and (b.message_id, b.customer_id) in ids
    assert (None, c.customer_id) in ids  # the customer named "Teapot Fan"
    assert store.search("1042")[0].message_id == a.message_id  # subject
    assert "«teapot»" in [h.snippet for h in hits if h.message_id == b.message_id][0]


def test_prefix_and_diacritics(store, seeded):
    assert store.search("teap")  # typing in progress
    assert store.search("téapot")


def test_filters(store, seeded):
    a, b, c = seeded
    assert [h.message_id for h in store.search("teapot channel:telegram")] == [b.message_id]
    assert [h.message_id for h in store.search("teapot from:jane")] == [a.message_id]
    assert [h.customer_id for h in store.search("tag:vip")] == [b.customer_id]
    assert [h.message_id for h in store.search("after:2026-09-22")] == [c.message_id, b.message_id]
    assert [h.message_id for h in store.search("teapot before:2026-09-22")] == [a.message_id]
    assert store.search("status:done") == []


def test_operators_in_user_input_are_text_not_syntax(store, seeded):
    # Unquoted, "teapot OR invoice" would match two messages; as words it matches none.
    assert store.search("teapot OR invoice") == []
    assert store.search('teapot" OR "invoice') == []
    assert store.search("NEAR(a b) AND -x ^ *") == []  # no FTS5 syntax error reaches the user


def test_bad_filters_are_clear_errors(store, seeded):
    with pytest.raises(StoreError, match="channel:fax"):
        store.search("channel:fax")
    with pytest.raises(StoreError, match="expected a date"):
        store.search("before:yesterday")
    with pytest.raises(StoreError, match="empty search"):
        store.search("   ")


def test_a_message_the_customer_deleted_is_found_and_marked(store, seeded, make_inbound):
    a, b, c = seeded
    store.ingest(make_inbound("telegram", "55", "", external_id=store.q1(
        "SELECT external_id FROM messages WHERE id=?", (b.message_id,))[0], kind="delete"))
    hits = {h.message_id: h.snippet for h in store.search("blue")}
    assert hits[b.message_id].startswith("(deleted by the customer) ")
    assert "«blue»" in hits[b.message_id]
    assert not store.search("broken")[0].snippet.startswith("(deleted")
    assert store.search("channel:telegram")[0].snippet.startswith("(deleted by the customer) ")
