"""Full-text search with filters."""
import pytest

from store import StoreError

pytestmark = pytest.mark.both_backends

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


def test_or_minus_and_phrases_work_like_search(store, seeded):
    a, b, c = seeded
    assert {h.message_id for h in store.search("broken OR invoice")} == {a.message_id, c.message_id}
    assert [h.message_id for h in store.search("teapot -blue") if h.message_id] == [a.message_id]
    assert [h.message_id for h in store.search('"teapot arrived"')] == [a.message_id]
    assert store.search('"arrived teapot"') == []  # a phrase keeps its order
    assert [h.message_id for h in store.search('teapot -"is blue"') if h.message_id] == [a.message_id]
    # OR binds tighter than the implicit AND: (broken OR blue) AND teapot
    assert {h.message_id for h in store.search("broken OR blue teapot") if h.message_id} == {a.message_id, b.message_id}
    assert [h.message_id for h in store.search("channel:telegram -blue")] == []  # filter and exclusion only
    assert store.search("teapot or invoice") == []  # lower-case "or" is a word, as in Gmail


def test_fts_syntax_in_user_input_is_text(store, seeded):
    assert store.search("NEAR(a b) AND x ^ *") == []  # no FTS5 syntax error reaches the user
    assert store.search('teapot" OR "invoice')  # stray quotes are harmless


def test_from_means_what_the_customer_wrote(store, seeded, make_inbound):
    a, b, c = seeded
    reply = store.queue_reply(a.customer_id, "Sorry about the teapot, Jane", "alex", channel="email")
    assert [h.message_id for h in store.search("teapot from:jane")] == [a.message_id]  # not our reply to her
    assert [h.message_id for h in store.search("teapot from:me")] == [reply]
    assert [h.message_id for h in store.search("from:bobli")] == [b.message_id]  # a handle
    assert [h.message_id for h in store.search("from:jane@roe")] == [a.message_id]  # an address
    for bare in ("from:", "teapot from:", "tag:"):
        with pytest.raises(StoreError, match="needs a value"):
            store.search(bare)


def test_cjk_words_inside_runs_and_folds(store, make_inbound):
    zh = store.ingest(make_inbound("telegram", "71", "请问什么时候发货", name="王小明"))
    ja = store.ingest(make_inbound("email", "yuki@example.jp", "注文した商品がまだ届いていません", name="Yuki"))
    ru = store.ingest(make_inbound("telegram", "72", "Заказ пришёл разбитым", name="Иван"))
    fr = store.ingest(make_inbound("email", "zoe@example.fr", "Le café est arrivé froid", name="Zoë"))
    de = store.ingest(make_inbound("email", "jo@example.de", "Die Straße ist gesperrt", name="Jo"))
    assert [h.message_id for h in store.search("发货")] == [zh.message_id]
    assert [h.message_id for h in store.search("商品")] == [ja.message_id]
    assert store.search("货发") == []  # characters in order, not anywhere
    assert [h.message_id for h in store.search("пришел")] == [ru.message_id]
    assert [h.message_id for h in store.search("пришёл")] == [ru.message_id]
    assert [h.message_id for h in store.search("cafe")] == [fr.message_id]
    assert [h.message_id for h in store.search("strasse")] == [de.message_id]
    assert [h.customer_id for h in store.search("小明")] == [zh.customer_id]  # names too
    assert "«" in store.search("发货")[0].snippet


def test_folded_rows_stay_consistent_when_edited(store, make_inbound, store_backend):
    """The index deletes a row with the same folded text it stored (a mismatch corrupts FTS5)."""
    first = store.ingest(make_inbound("telegram", "71", "请问什么时候发货", external_id="e1"))
    store.ingest(make_inbound("telegram", "71", "请问什么时候到货", external_id="e1", kind="edit"))
    assert store.search("发货") == [] and [h.message_id for h in store.search("到货")] == [first.message_id]
    if store_backend == "sqlite":  # FTS5's own consistency check (PostgreSQL's index has no such state)
        store.conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")


def test_bad_filters_are_clear_errors(store, seeded):
    with pytest.raises(StoreError, match="channel:fax"):
        store.search("channel:fax")
    with pytest.raises(StoreError, match="expected a date"):
        store.search("before:someday")
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


def test_the_search_command(store_location, make_inbound):
    """The installed command, as a person types it."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    from store import Store

    db = store_location
    s = Store(db)
    zh = s.ingest(make_inbound("telegram", "71", "请问什么时候发货", name="王小明"))
    s.ingest(make_inbound("email", "jane@roe.com", "The teapot arrived broken", name="Jane Roe"))
    s.close()
    exe = shutil.which("omnidesk", path=os.path.dirname(sys.executable))

    def run(*query):
        return subprocess.run([exe, "--db", str(db), "--json", "search", *query], capture_output=True, text=True)

    found = run("发货")
    assert found.returncode == 0 and [h["message_id"] for h in json.loads(found.stdout)] == [zh.message_id]
    assert len(json.loads(run("teapot", "OR", "发货").stdout)) == 2
    bare = run("teapot", "from:")
    assert bare.returncode == 1 and "from: needs a value" in bare.stderr
