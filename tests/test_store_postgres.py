"""What differs on PostgreSQL (issue 20): URLs, connection errors and passwords, the
write lock across processes, the outbox claimed by several senders, live updates by
LISTEN/NOTIFY, and search giving the same hits as on SQLite. A real server
(tests/support/postgres.py), no mocks."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from store import Store, StoreError, schema, schema_pg
from store.db import store_url
from store.models import InboundMessage, Sender
from tests.support.chat import wait_until

ROOT = Path(__file__).resolve().parent.parent


# -- URLs ----------------------------------------------------------------------------------
def test_postgresql_urls_are_stores_and_other_urls_are_clear_errors(tmp_path):
    assert store_url("postgresql://alex@db.example:5432/desk?sslmode=verify-full").startswith("postgresql://")
    assert store_url("postgres://h/d") == "postgres://h/d"
    assert store_url(str(tmp_path / "o.db")) is None and store_url(tmp_path / "o.db") is None
    for bad in ("sqlite:///tmp/x.db", "mysql://u@h/db", "https://example.com/db"):
        with pytest.raises(StoreError, match="not a supported store"):
            Store(bad)
    with pytest.raises(StoreError, match="postgresql://"):  # what pathlib makes of a URL
        Store(Path("postgresql://alex@db.example/desk"))
    assert list(tmp_path.iterdir()) == []


def test_every_sqlite_migration_has_its_postgresql_step():
    """A migration appended to store/schema.py needs schema_pg.STEPS[n] (and the same columns)."""
    missing = [n for n in range(schema_pg.BASE, schema.LATEST) if n not in schema_pg.STEPS]
    assert schema_pg.BASE <= schema.LATEST and missing == [], f"no PostgreSQL step from version(s) {missing}"


# -- connecting: plain errors, never a password --------------------------------------------
def test_connection_problems_name_host_port_and_database(pg_server):
    from tests.support.postgres import free_port

    port = free_port()
    with pytest.raises(StoreError) as refused:
        Store(f"postgresql://alex@127.0.0.1:{port}/desk")
    assert f"127.0.0.1:{port}/desk" in str(refused.value) and "refused" in str(refused.value)
    with pytest.raises(StoreError) as missing:
        Store(pg_server.url("no_such_db"))
    assert "no_such_db" in str(missing.value) and "does not exist" in str(missing.value)


@pytest.fixture
def pw_role(pg_server):
    """A role that must give its password (scram), whatever the test server's trust rule."""
    pg_server.sql("DO $$ BEGIN CREATE ROLE pw_agent LOGIN PASSWORD 'right-horse-battery';"
                  " EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    hba = pg_server.data / "pg_hba.conf"
    rules = hba.read_text()
    if "pw_agent" not in rules:
        hba.write_text("host all pw_agent 127.0.0.1/32 scram-sha-256\n" + rules)
        pg_server.sql("SELECT pg_reload_conf()")
    db = pg_server.create_database(template="template0")  # empty: its owner pw_agent creates the tables
    pg_server.sql(f'ALTER DATABASE "{db}" OWNER TO pw_agent')
    yield pg_server.url(db, user="pw_agent")
    pg_server.drop_database(db)


def test_a_password_works_from_its_source_and_never_shows_in_errors(pw_role, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    s = Store(pw_role, password="right-horse-battery", attachments_dir=tmp_path / "files")
    assert s.version == schema.LATEST
    s.close()
    with pytest.raises(StoreError) as wrong:
        Store(pw_role, password="wrong-secret-1234")
    assert "authentication failed" in str(wrong.value) and "wrong-secret-1234" not in str(wrong.value)
    host_url = pw_role.replace("pw_agent@", "pw_agent:url-secret-5678@")
    with pytest.raises(StoreError) as in_url:
        Store(host_url)
    assert "authentication failed" in str(in_url.value) and "url-secret-5678" not in str(in_url.value)


def test_libpq_password_file_is_used(pw_role, tmp_path, monkeypatch):
    passfile = tmp_path / "pgpass"
    passfile.write_text("127.0.0.1:*:*:pw_agent:right-horse-battery\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    Store(pw_role, attachments_dir=tmp_path / "files").close()


# -- several writers -----------------------------------------------------------------------
def _item(n: int, sender: str) -> InboundMessage:
    return InboundMessage(channel="email", account="shop", external_id=f"<m{n}@x>",
                          sender=Sender("email", sender, sender.split("@")[0].title()), text=f"message {n}",
                          sent_at=1_790_000_000.0 + n)


_INGEST = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.test_store_postgres import _item
    from store import Store
    s = Store({url!r}, attachments_dir={files!r})
    for start in range(0, 120, 6):  # small batches, so the two processes interleave
        s.ingest_batch([_item(n, f"c{{n % 9}}@x.io") for n in range(start, start + 6)])
    s.close()
""")


def test_two_processes_ingesting_the_same_mail_store_each_message_and_customer_once(pg_url, tmp_path):
    """The write lock (pg_advisory_xact_lock) keeps ingest dedupe and identity linking whole."""
    script = _INGEST.format(root=str(ROOT), url=pg_url, files=str(tmp_path / "files"))
    procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    assert s.q1("SELECT count(*), count(DISTINCT external_id) FROM messages")[:] == (120, 120)
    assert s.q1("SELECT count(*) FROM customers")[0] == 9
    assert s.q1("SELECT count(*) FROM identities")[0] == 9
    assert len(s.search("message")) == 50  # every message indexed once
    s.close()


def test_two_senders_claim_the_outbox_without_taking_a_reply_twice(pg_url, tmp_path, clock):
    """FOR UPDATE SKIP LOCKED: each queued reply goes to exactly one claimer."""
    a = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    b = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    r = a.ingest(_item(1, "jane@x.io"))
    queued = {a.queue_reply(r.customer_id, f"reply {n}", "alex") for n in range(40)}
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def drain(store, name):
        while True:
            got = store.claim_due({"email:shop"}, limit=3)
            if not got:
                return
            claimed[name] += [m.message_id for m in got]

    threads = [threading.Thread(target=drain, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == sorted(queued)
    a.close()
    b.close()


def test_a_claim_in_progress_is_skipped_not_waited_for(pg_url, tmp_path, clock):
    a = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    b = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    r = a.ingest(_item(1, "jane@x.io"))
    first, second = (a.queue_reply(r.customer_id, f"reply {n}", "alex") for n in range(2))
    with a.tx(write_lock=False):  # a sender that has claimed and not yet committed
        a.conn.execute("SELECT id FROM outbox WHERE message_id = ? FOR UPDATE", (first,))
        assert [m.message_id for m in b.claim_due({"email:shop"}, limit=5)] == [second]
    a.close()
    b.close()


def test_the_polling_lease_has_one_holder_across_connections(pg_url, tmp_path, clock):
    a = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    b = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
    assert a.acquire_lease("hostA:1", ttl=30) and not b.acquire_lease("hostB:2", ttl=30)
    clock.advance(31)  # A went silent (another machine: no pid to check, the heartbeat decides)
    assert b.acquire_lease("hostB:2", ttl=30) and not a.acquire_lease("hostA:1", ttl=30)
    assert a.lease_holder()[0] == "hostB:2"
    a.close()
    b.close()


# -- live updates --------------------------------------------------------------------------
def test_data_version_changes_when_another_connection_commits(pg_url, tmp_path):
    watcher = Store(pg_url, attachments_dir=tmp_path / "files")
    writer = Store(pg_url, attachments_dir=tmp_path / "files")
    before = watcher.data_version()
    watcher.ingest(_item(1, "own@x.io"))
    assert watcher.data_version() == before  # its own commit does not count, as on SQLite
    writer.ingest(_item(2, "other@x.io"))
    wait_until(lambda: watcher.data_version() != before, timeout=10, what="the other connection's commit")
    seen = watcher.data_version()
    assert watcher.data_version() == seen  # nothing new: no change
    watcher.close()
    writer.close()


# -- search parity -------------------------------------------------------------------------
PARITY_TEXTS = [
    ("jane@roe.com", "Jane Roe", "Le café est arrivé froid", "Commande"),
    ("ivan@x.ru", "Иван Петров", "Заказ пришёл вчера, спасибо", None),
    ("max@x.de", "Max Groß", "Die Straße ist gesperrt, Lieferung später", "Lieferung"),
    ("wang@x.cn", "王小明", "请问什么时候发货？订单号1042", None),
    ("ken@x.jp", "Ken", "ご注文ありがとうございます。発送しました", None),
    ("ann@x.io", "Ann Lee", "My order #1042 never arrived; the tracking e-mail says delivered", "Where is my order"),
    ("bob@x.io", "Bob", "refund please, the teapot arrived broken", "Broken teapot"),
    ("cafe@x.fr", "Cafe Owner", "cafe au lait and a croissant", None),
    ("ann@x.io", "Ann Lee", "Any news about the order? tracking_number TR-55", None),
]
PARITY_QUERIES = ["cafe", "café", "пришел", "пришёл", "strasse", "Straße", "发货", "订单", "発送", "1042", "order",
                  "ord", "order OR refund", "order -tracking", '"never arrived"', '"arrived never"', "teapot broken",
                  "tracking", "number", "e-mail", "mail", "from:ann order", "from:ann", "from:a", "from:Иван", "from:иван заказ", "from:me", "channel:email arrived",
                  "status:open arrived", "after:2026-09-21T18:00 order", "before:2026-09-21T18:00 order", "groß", "ann", "Иван",
                  "小明", "lieferung", "channel:email -order", "tr-55", "tracking_number", "a"]


def _parity_stores(tmp_path, clock, pg_url) -> list:
    """A SQLite and a PostgreSQL store holding the same PARITY_TEXTS mails."""
    stores = [Store(tmp_path / "o.db", clock=clock), Store(pg_url, clock=clock, attachments_dir=tmp_path / "f")]
    for s in stores:
        for n, (address, name, text, subject) in enumerate(PARITY_TEXTS):
            s.ingest(InboundMessage(channel="email", account="shop", external_id=f"<p{n}@x>",
                                    sender=Sender("email", address, name), text=text, subject=subject,
                                    sent_at=1_790_000_000.0 + n * 3600))
    return stores


@pytest.mark.parametrize("window, walk", [(None, False), (3, False), (1, True)])
def test_search_gives_the_same_hits_on_both_backends(pg_url, tmp_path, clock, monkeypatch, window, walk):
    """window 3: PostgreSQL's newest-first pass sees 3 messages, so most queries go on to the index.
    walk: it never goes to the index, but walks windows ever wider (1, 4, 16, ... messages)."""
    if window:
        from store import search

        monkeypatch.setattr(search, "RECENT_WINDOW", window)
    if walk:
        monkeypatch.setattr(search, "INDEX_UP_TO", 0)
    stores = _parity_stores(tmp_path, clock, pg_url)
    for s in stores:
        s.queue_reply(1, "Your café order left today", "alex")
    for query in PARITY_QUERIES:
        lite, pg = ([(h.message_id, h.customer_id, h.snippet) for h in s.search(query)] for s in stores)
        assert pg == lite, query  # the same hits, in the same order (bm25 on both)
        # a query that finds nothing on both proves little: each finds something, but the wrong word order
        assert bool(lite) == (query != '"arrived never"'), query
    for s in stores:
        s.close()


# -- the config: [store] url and its password ----------------------------------------------
def _omnidesk(tmp_path, *args, env=None):
    import os
    import shutil

    exe = shutil.which("omnidesk", path=os.path.dirname(sys.executable))
    full = {k: v for k, v in os.environ.items() if k not in ("OMNIDESK_DB", "PGPASSWORD")}
    full.update({"OMNIDESK_CONFIG": str(tmp_path / "config.toml"), "PGPASSFILE": str(tmp_path / "none"),
                 "XDG_DATA_HOME": str(tmp_path / "data"), **(env or {})})
    return subprocess.run([exe, *args], capture_output=True, text=True, env=full, cwd=tmp_path, timeout=120)


def test_store_url_in_the_config_with_its_password_from_the_environment(pw_role, tmp_path):
    (tmp_path / "config.toml").write_text(f'[store]\nurl = "{pw_role}"\npassword_env = "DESK_DB_PASSWORD"\n')
    done = _omnidesk(tmp_path, "--json", "queue", env={"DESK_DB_PASSWORD": "right-horse-battery"})
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    wrong = _omnidesk(tmp_path, "queue", env={"DESK_DB_PASSWORD": "wrong-secret-1234"})
    assert wrong.returncode == 1 and "authentication failed" in wrong.stderr
    assert "wrong-secret-1234" not in wrong.stderr + wrong.stdout and "Traceback" not in wrong.stderr
    assert list(tmp_path.glob("*.db")) == []  # a URL never becomes a file


def test_a_password_written_into_the_config_url_is_refused(tmp_path):
    (tmp_path / "config.toml").write_text('[store]\nurl = "postgresql://alex:hunter22@db.example/desk"\n')
    done = _omnidesk(tmp_path, "queue")
    assert done.returncode == 1 and "password_env" in done.stderr and "hunter22" not in done.stderr


def test_ranking_on_a_big_table_estimates_and_still_finds_the_same(pg_url, tmp_path, clock, monkeypatch):
    """Past search.EXACT_UP_TO rows the row count, mean size and phrase counts are sampled or
    estimated (here from the first row on): the hits stay those SQLite finds."""
    from store import search

    monkeypatch.setattr(search, "EXACT_UP_TO", 0)
    stores = _parity_stores(tmp_path, clock, pg_url)
    for query in ("order OR refund", "arrived order", "teapot broken", "tracking"):
        lite, pg = ({h.message_id for h in s.search(query)} for s in stores)
        assert pg == lite and lite, query
    for s in stores:
        s.close()


def test_sslmode_is_libpqs(pg_url, tmp_path):
    """sslmode and the certificate options go to libpq as written: the test server has no TLS,
    so `disable` connects and `require` is refused in plain words."""
    Store(pg_url + "?sslmode=disable", attachments_dir=tmp_path / "f").close()
    with pytest.raises(StoreError) as refused:
        Store(pg_url + "?sslmode=require", attachments_dir=tmp_path / "f")
    assert "PostgreSQL at" in str(refused.value) and "SSL" in str(refused.value)


def test_searching_is_no_change_for_other_consoles(pg_url, tmp_path, monkeypatch):
    """A search (here through the GIN index path, in a transaction of its own) notifies nobody."""
    from store import search

    monkeypatch.setattr(search, "RECENT_WINDOW", 0)
    watcher = Store(pg_url, attachments_dir=tmp_path / "files")
    searcher = Store(pg_url, attachments_dir=tmp_path / "files")
    before = watcher.data_version()  # changes count from the first look, as with SQLite's data_version
    searcher.ingest(_item(1, "jane@x.io"))
    wait_until(lambda: watcher.data_version() != before, timeout=10, what="the ingest's notice")
    seen = watcher.data_version()
    assert [h.message_id for h in searcher.search("message")]
    searcher.set_health("email:shop", "ok")  # a write after the search: its notice arrives after any the search sent
    wait_until(lambda: watcher.data_version() != seen, timeout=10, what="the write's notice")
    assert watcher.data_version() == seen + 1  # the write's alone
    watcher.close()
    searcher.close()
