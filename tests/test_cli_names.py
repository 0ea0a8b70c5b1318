"""Names match in any case of any script, on SQLite and PostgreSQL alike: "émile" finds
ÉMILE, "ä" Ä, "ø" Ø, "анна" АННА, "οδυσσεας" ΟΔΥΣΣΕΑΣ (final sigma), and the accent folds
search makes ("emile" finds Émile; Greek accents stay, as in search). SQLite's NOCASE and lower() fold ASCII only; the
store keeps a folded name key (store/names.py), and every path that writes a name
keeps it: ingest, the bulk import, rename and its undo, a new display name, the
migration that fills it for an older store."""
from __future__ import annotations

import json
import mailbox
import subprocess
from email.message import EmailMessage

import pytest

from store import Store
from store.names import name_key
from tests.conftest import inbound
from tests.support.cli import OMNIDESK

pytestmark = pytest.mark.both_backends

PEOPLE = {  # address: the name as stored (capitals, accents, other scripts)
    "emile@example.fr": "ÉMILE Zola",
    "anne@example.de": "ÄNNE Größer",
    "oystein@example.no": "ØYSTEIN Dahl",
    "anna@example.ru": "АННА Петрова",
    "odysseas@example.gr": "ΟΔΥΣΣΕΑΣ Παππάς",
    "marco@example.it": "Marco Rossi",
}


def cli(location, *args, check=True):
    """The installed command, as a user runs it."""
    proc = subprocess.run([str(OMNIDESK), "--db", str(location), *args], capture_output=True, text=True, timeout=120)
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def shown(location, ref) -> str:
    """The name `omnidesk show REF` opens (or its error)."""
    proc = cli(location, "--json", "show", ref, check=False)
    return json.loads(proc.stdout)["customer"]["name"] if proc.returncode == 0 else proc.stderr.strip()


@pytest.fixture
def people(store_location):
    s = Store(store_location)
    ids = {name: s.ingest(inbound("email", address, "hello", name=name)).customer_id
           for address, name in PEOPLE.items()}
    s.close()
    return ids


@pytest.mark.parametrize("typed, found", [
    ("émile", "ÉMILE Zola"), ("Émile ZOLA", "ÉMILE Zola"), ("emile zola", "ÉMILE Zola"),
    ("änne", "ÄNNE Größer"), ("grösser", "ÄNNE Größer"), ("GRÖSSER", "ÄNNE Größer"),
    ("øystein", "ØYSTEIN Dahl"), ("oystein dahl", "ØYSTEIN Dahl"),
    ("анна", "АННА Петрова"), ("ПЕТРОВА", "АННА Петрова"),
    ("οδυσσεας", "ΟΔΥΣΣΕΑΣ Παππάς"), ("ΠΑΠΠΆΣ", "ΟΔΥΣΣΕΑΣ Παππάς"),  # final ς and capital Σ fold alike
    ("Παππάς", "ΟΔΥΣΣΕΑΣ Παππάς"),
])
def test_show_finds_a_name_in_any_case_of_any_script(store_location, people, typed, found):
    assert shown(store_location, typed) == found


def test_the_whole_name_beats_a_part_and_ties_are_named(store_location, people):
    s = Store(store_location)
    other = s.ingest(inbound("email", "emile2@example.fr", "hi", name="Émile Zolanski")).customer_id
    s.close()
    assert shown(store_location, "émile zola") == "ÉMILE Zola"  # whole name first
    assert shown(store_location, "zolanski") == "Émile Zolanski"
    said = shown(store_location, "ÉMILE")  # two start with it: both named, with their ids
    assert "matches several customers" in said and f"#{people['ÉMILE Zola']} ÉMILE Zola" in said
    assert f"#{other} Émile Zolanski" in said


def test_customers_and_the_merge_picker_query_fold_case_too(store_location, people):
    rows = json.loads(cli(store_location, "--json", "customers", "ÖYSTEIN").stdout)
    assert [r["name"] for r in rows] == ["ØYSTEIN Dahl"]
    rows = json.loads(cli(store_location, "--json", "customers", "петров").stdout)
    assert [r["name"] for r in rows] == ["АННА Петрова"]
    s = Store(store_location)  # what the console's merge picker asks
    assert [c.name for c in s.customers(limit=30, query="ΠΑΠΠ")] == ["ΟΔΥΣΣΕΑΣ Παππάς"]
    assert [c.name for c in s.customers(limit=30, query="example.no")] == ["ØYSTEIN Dahl"]  # addresses still match
    assert [c.name for c in s.customers(limit=30, query="100%")] == []  # % is a letter, not a wildcard
    s.close()


def test_every_way_a_name_is_written_keeps_its_key(store_location, tmp_path, people, clock):
    # rename and its undo
    cli(store_location, "rename", "marco@example.it", "MÅRTEN Ölund")
    assert shown(store_location, "mårten ölund") == "MÅRTEN Ölund"
    cli(store_location, "undo", "--customer", "marco@example.it")
    assert shown(store_location, "marco rossi") == "Marco Rossi"
    assert "no customer matches" in shown(store_location, "mårten")
    # a display name that changes with a new message: the customer's name stays, the new
    # display name is found as the name they write under
    s = Store(store_location)
    s.ingest(inbound("email", "marco@example.it", "again", name="MARCO ÉLÈVE"))
    s.close()
    assert shown(store_location, "marco élève") == "Marco Rossi"
    # the bulk import (mbox) names new customers
    box = mailbox.mbox(tmp_path / "old.mbox")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ŁUKASZ Żółć <lukasz@example.pl>", "support@shop.test", "Zamówienie"
    msg["Date"], msg["Message-ID"] = "Mon, 02 Nov 2026 10:00:00 +0000", "<pl1@example.pl>"
    msg.set_content("Gdzie jest moja paczka?")
    box.add(msg)
    box.flush()
    cli(store_location, "import", "mbox", str(tmp_path / "old.mbox"), "--jobs", "1")
    assert shown(store_location, "łukasz żółć") == "ŁUKASZ Żółć"
    # every stored key is what name_key() makes of the name now
    s = Store(store_location)
    for table, column in (("customers", "name"), ("identities", "display_name")):
        for row in s.q(f"SELECT {column}, name_key FROM {table}"):
            assert row[1] == name_key(row[0]), (table, row[0], row[1])
    s.close()


def test_the_migration_fills_the_keys_of_an_older_store(store_location, store_backend, people):
    s = Store(store_location)  # set back to version 16: no name keys yet
    with s.tx():
        for index in ("customers_name_key", "identities_name_key", "identities_handle_lower"):
            s.conn.execute(f"DROP INDEX {index}")
        s.conn.execute("ALTER TABLE customers DROP COLUMN name_key")
        s.conn.execute("ALTER TABLE identities DROP COLUMN name_key")
        if store_backend == "postgresql":
            s.conn.execute("UPDATE omnidesk_schema SET version = 16")
    if store_backend == "sqlite":
        s.conn.execute("PRAGMA user_version = 16")
    s.close()
    assert shown(store_location, "οδυσσεας παππάς") == "ΟΔΥΣΣΕΑΣ Παππάς"  # opening migrated it
    assert shown(store_location, "ÉMILE") == "ÉMILE Zola"


def test_an_at_handle_means_the_handle_before_a_display_name(store_location):
    """`@jane` is the customer whose handle is jane, even when another writes under the
    name "Jane"; with no such handle, the name still finds them."""
    from store import Store
    from tests.conftest import inbound

    s = Store(store_location)
    tg = s.ingest(inbound("telegram", "1001", "where is it?", name="J. R.", handle="jane")).customer_id
    mail = s.ingest(inbound("email", "jane@example.com", "hello?", name="Jane")).customer_id
    assert s.find_customer("Jane Doe <jane@example.com>".split("<")[1].rstrip(">")) == mail
    assert s.find_customer("@jane") == tg
    assert s.find_customer("@Jane") == tg
    with pytest.raises(Exception, match="matches several customers"):
        s.find_customer("jane")  # without @: the handle and the name, two people
    ann = s.ingest(inbound("email", "ann@example.com", "hi", name="Ann")).customer_id
    assert s.find_customer("@ann") == ann  # no handle ann: the name
    s.close()
