"""What a newcomer's first 35 minutes with the CLI found (notes/newcomer-1.md), each
through the installed `omnidesk` command on a real store."""
import json
import os
import subprocess
from types import SimpleNamespace

import pytest

from store import Store
from tests.conftest import inbound
from tests.support.cli import OMNIDESK, run_in_process

T0 = 1_790_000_000.0

pytestmark = pytest.mark.both_backends


def omnidesk(db, *args, stdin="", env=None):
    rc, out, err = run_in_process("--db", str(db), *args, stdin=stdin, env=env)
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


def installed(db, *args, env=None):
    """The real entry point in its own process, as a user runs it."""
    return subprocess.run([str(OMNIDESK), "--db", str(db), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def ok_json(db, *args, **kw):
    proc = omnidesk(db, *args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def desk(store_location):
    s = Store(store_location)
    zoe = s.ingest(inbound("email", "zoe@example.com", "Where is my tea?", name="Zoë Müller", subject="Tea",
                           sent_at=T0)).customer_id
    jane = s.ingest(inbound("email", "jane@roe.com", "My teapot arrived broken", name="Jane Roe", subject="Teapot",
                            sent_at=T0 + 60)).customer_id
    s.close()
    return SimpleNamespace(zoe=zoe, jane=jane)


# -- 1. absurd snoozes -----------------------------------------------------------------------

@pytest.mark.parametrize("when", ["99999999999d", "1000000d", "6 years", "9999-01-01 9:00", "300w"])
def test_an_absurd_snooze_is_refused_and_changes_nothing(store_location, desk, when):
    proc = omnidesk(store_location, "snooze", "zoe@example.com", *when.split())
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "too far ahead: at most 5 years" in proc.stderr
    assert ok_json(store_location, "events") == []
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["status"] == "open"


def test_a_snooze_within_five_years_works(store_location, desk):
    data = ok_json(store_location, "snooze", "zoe@example.com", "4y")
    assert data["status"] == "snoozed" and data["snoozed_until"].startswith("20")


def test_a_stored_absurd_time_never_breaks_events_show_or_queue(store_location, desk):
    # a store written before the bound existed: the customer snoozed "until" the year 273 million
    s = Store(store_location)
    absurd = T0 + 99999999999 * 86400.0
    with s.tx():
        s.conn.execute("UPDATE customers SET status='snoozed', snoozed_until=? WHERE id=?", (absurd, desk.zoe))
        s.log_event("status", "Alex Morgan", desk.zoe, old="open", old_until=None, new="snoozed", until=absurd)
        s.log_event("status", "Alex Morgan", desk.zoe, old="open", old_until=None, new="snoozed", until="soon")
    s.close()
    for args in (["events"], ["events", "--json"], ["show", "zoe@example.com"], ["show", "zoe@example.com", "--json"],
                 ["queue", "--filter", "snoozed"], ["queue", "--filter", "snoozed", "--json"]):
        proc = installed(store_location, *args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert "Zo" in proc.stdout or "snoozed until" in proc.stdout or '"until"' in proc.stdout, args
    text = installed(store_location, "events").stdout
    assert "snoozed until unix 8.64e+15" in text and "snoozed until not a time (soon)" in text
    events = json.loads(installed(store_location, "events", "--json").stdout)
    assert events[1]["data"]["until"] == "unix 8.64e+15"
    # and it can be undone, after which everything still reads
    assert omnidesk(store_location, "undo", "--customer", "zoe@example.com", "--agent", "Alex Morgan").returncode == 0
    assert installed(store_location, "events").returncode == 0
