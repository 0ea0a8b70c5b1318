"""Every scripting command end to end: a real `omnidesk` process on a temp store."""
import json
import os
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

from store import Store
from tests.conftest import ROOT, inbound
from tests.support.cli import run_in_process

OMNIDESK = Path(sys.executable).parent / "omnidesk"  # the entry point users run

T0 = 1_790_000_000.0

pytestmark = pytest.mark.both_backends  # tests on a store run on SQLite and PostgreSQL


def omnidesk(db, *args, stdin=None, agent="alex"):
    """`omnidesk --db DB --agent AGENT ARGS`, run in this process (fast); the tests that are
    about the installed command itself (config errors, pipes, URLs) start it for real."""
    rc, out, err = run_in_process("--db", str(db), "--agent", agent, *args, stdin=stdin or "")
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


def ok_json(db, *args, **kw):
    proc = omnidesk(db, *args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def seeded(store_location):
    s = Store(store_location)
    jane = s.ingest(inbound("email", "jane@roe.com", "My teapot arrived broken", name="Jane Roe",
                            subject="Order #1042", sent_at=T0))
    s.ingest(inbound("telegram", "4242", "hello? any news on the teapot", name="Jane", handle="janeroe",
                     sent_at=T0 + 600, phones=()))
    bob = s.ingest(inbound("slack", "U77", "invoice please", name="Bob Li", handle="bob", sent_at=T0 + 60))
    s.close()
    return {"jane": jane.customer_id, "bob": bob.customer_id}


def test_queue_longest_wait_first(store_location, seeded):
    rows = ok_json(store_location, "queue")
    assert [r["name"] for r in rows][:2] == ["Jane Roe", "Bob Li"]
    assert rows[0]["waiting_since"] == "2026-09-21T14:13:20Z"
    assert set(rows[0]) >= {"customer_id", "name", "status", "waiting_since", "last_channel", "unread", "channels", "tags"}
    human = omnidesk(store_location, "queue").stdout
    assert "Jane Roe" in human and "WAITING" in human


def test_show_accepts_every_kind_of_reference(store_location, seeded):
    for ref in [str(seeded["bob"]), "U77", "@bob", "slack:U77"]:
        data = ok_json(store_location, "show", ref)
        assert data["customer"]["id"] == seeded["bob"]
        assert data["messages"][0]["text"] == "invoice please"
    assert ok_json(store_location, "show", "jane@roe.com")["customer"]["name"] == "Jane Roe"
    assert ok_json(store_location, "show", "@janeroe")["customer"]["id"] != seeded["jane"]  # not linked: no shared evidence


def test_reply_from_stdin_and_flag(store_location, seeded):
    data = ok_json(store_location, "reply", "jane@roe.com", stdin="Sorry! A replacement ships today.\n")
    assert data["state"] == "queued" and data["channel"] == "email" and data["subject"] == "Re: Order #1042"
    data = ok_json(store_location, "reply", "@bob", "-m", "Invoice attached")
    assert data["channel"] == "slack" and data["author"] == "alex"
    said = omnidesk(store_location, "reply", "@bob", "-m", "And the receipt").stdout
    assert f"to Bob Li (#{seeded['bob']}) via Slack" in said  # who, not the reference typed
    assert [r["name"] for r in ok_json(store_location, "queue")] == ["Jane"]
    proc = omnidesk(store_location, "reply", "@bob", "--channel", "telegram", "-m", "x")
    assert proc.returncode == 1 and "no telegram identity" in proc.stderr
    proc = omnidesk(store_location, "reply", "@bob", stdin="")
    assert proc.returncode == 1 and "empty reply" in proc.stderr


def test_note_tag_status_assign_and_events(store_location, seeded):
    bob = str(seeded["bob"])
    assert ok_json(store_location, "note", bob, "-m", "prefers mornings")["direction"] == "note"
    assert ok_json(store_location, "tag", bob, "vip", "billing")["tags"] == ["billing", "vip"]
    assert ok_json(store_location, "tag", bob, "-r", "billing")["tags"] == ["vip"]
    assert ok_json(store_location, "status", bob, "done")["status"] == "done"
    assert ok_json(store_location, "assign", bob, "kim")["assignee"] == "kim"
    events = ok_json(store_location, "events", "--customer", bob)
    assert [e["kind"] for e in events] == ["assign", "status", "untag", "tag", "note"]  # two tags: one action
    assert all(e["actor"] == "alex" for e in events)
    assert [r["customer_id"] for r in ok_json(store_location, "queue", "--filter", "done")] == [seeded["bob"]]
    ok_json(store_location, "snooze", bob, "2h")
    snooze = ok_json(store_location, "events", "--customer", bob)[0]
    assert snooze["at"].endswith("Z") and snooze["data"]["until"].endswith("Z")  # ISO 8601 UTC, like all times


def test_snooze_then_undo(store_location, seeded):
    bob = str(seeded["bob"])
    data = ok_json(store_location, "snooze", bob, "2h")
    assert data["status"] == "snoozed"
    assert seeded["bob"] not in [r["customer_id"] for r in ok_json(store_location, "queue")]
    assert ok_json(store_location, "undo")["kind"] == "status"
    assert seeded["bob"] in [r["customer_id"] for r in ok_json(store_location, "queue")]
    proc = omnidesk(store_location, "snooze", bob, "someday")
    assert proc.returncode == 1 and "someday" in proc.stderr and "Traceback" not in proc.stderr
    # after a reply, undo must not reach back to some older action on another customer
    ok_json(store_location, "snooze", bob, "2h")
    ok_json(store_location, "reply", "jane@roe.com", "-m", "On its way")
    proc = omnidesk(store_location, "undo")
    assert proc.returncode == 1 and "your last action (reply" in proc.stderr
    assert seeded["bob"] not in [r["customer_id"] for r in ok_json(store_location, "queue")]  # still snoozed


def test_undo_for_one_customer(store_location, seeded):
    ok_json(store_location, "tag", "jane@roe.com", "teapot")
    ok_json(store_location, "tag", str(seeded["bob"]), "invoice")  # the last action overall: on Bob
    proc = omnidesk(store_location, "undo", "--customer", "jane@roe.com")
    assert proc.returncode == 0, proc.stderr
    assert "undid “tagged teapot” for Jane Roe" in proc.stdout
    s = Store(store_location)
    assert s.customer(seeded["jane"]).tags == [] and s.customer(seeded["bob"]).tags == ["invoice"]
    s.close()
    proc = omnidesk(store_location, "undo", "--customer", "jane@roe.com")
    assert proc.returncode == 1 and "nothing to undo" in proc.stderr


def test_merge_split_undo(store_location, seeded):
    tg = ok_json(store_location, "show", "@janeroe")["customer"]["id"]
    suggestions = ok_json(store_location, "suggest")
    assert {(s["customer_id"], s["other_id"]) for s in suggestions} >= {(seeded["jane"], tg)}
    ok_json(store_location, "merge", str(seeded["jane"]), "@janeroe")
    merged = ok_json(store_location, "show", "@janeroe")
    assert merged["customer"]["id"] == seeded["jane"] and len(merged["messages"]) == 2
    identity = [i for i in merged["customer"]["identities"] if i["channel"] == "telegram"][0]["id"]
    split = ok_json(store_location, "split", str(identity))
    assert ok_json(store_location, "show", str(split["customer_id"]))["messages"][0]["channel"] == "telegram"
    ok_json(store_location, "undo")
    assert len(ok_json(store_location, "show", str(seeded["jane"]))["messages"]) == 2
    ok_json(store_location, "undo")  # the merge
    assert len(ok_json(store_location, "show", str(seeded["jane"]))["messages"]) == 1


def test_search_and_customers(store_location, seeded):
    hits = ok_json(store_location, "search", "teapot")
    assert {h["customer_name"] for h in hits} == {"Jane Roe", "Jane"}
    assert [h["channel"] for h in ok_json(store_location, "search", "teapot", "channel:telegram")] == ["telegram"]
    assert [c["name"] for c in ok_json(store_location, "customers")] == ["Jane Roe", "Jane", "Bob Li"]
    assert [c["name"] for c in ok_json(store_location, "customers", "bob")] == ["Bob Li"]
    assert "No matches." in omnidesk(store_location, "search", "zebra").stdout


def test_our_reply_shows_and_is_found_as_sent_and_as_ours(store_location, seeded):
    ok_json(store_location, "reply", "jane@roe.com", "-m", "I've issued a refund of **€25.00** for the teapot")
    shown = omnidesk(store_location, "show", "jane@roe.com").stdout
    assert "I've issued a refund of *€25.00* for the teapot" in shown and "**" not in shown  # as its text/plain
    found = omnidesk(store_location, "search", "refund").stdout
    assert "€25.00" in found and "**" not in found
    assert "you → Jane Roe" in found  # ours, not passed off as Jane's words
    hit = ok_json(store_location, "search", "refund")[0]
    assert hit["direction"] == "out" and hit["author"] == "alex"


def test_retry_failed_reply(store_location, seeded):
    mid = ok_json(store_location, "reply", "@bob", "-m", "hi")["id"]
    s = Store(store_location)
    [out] = s.claim_due()
    s.mark_failed(out.outbox_id, "channel down", None)
    s.close()
    assert ok_json(store_location, "show", "@bob")["messages"][-1]["state"] == "failed"
    assert ok_json(store_location, "retry", str(mid))["state"] == "queued"
    proc = omnidesk(store_location, "retry", str(mid))
    assert proc.returncode == 1 and "not failed" in proc.stderr


def test_exit_codes(store_location, seeded):
    assert omnidesk(store_location, "show", "nobody@x.io").returncode == 1
    assert omnidesk(store_location, "frobnicate").returncode == 2
    assert omnidesk(store_location, "status", "1", "closed").returncode == 2
    proc = omnidesk(store_location, "undo", "99999")
    assert proc.returncode == 1 and "no event" in proc.stderr


def test_hostile_text_is_printed_inert(store_location):
    s = Store(store_location)
    s.ingest(inbound("telegram", "1", "hi \x1b]52;c;ZXZpbA==\x07\x1b[2J[bold red]boom[/]", name="\x1b[31mEvil",
                     handle="h\x1b[5mndl"))
    s.close()
    out = omnidesk(store_location, "show", "1").stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold red]boom[/]" in out


def test_bad_config_names_the_key(tmp_path, store_location):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[sync]\npoll_interval = 'often'\n")
    proc = subprocess.run([str(OMNIDESK), "--db", str(store_location), "--config", str(cfg), "queue"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "sync.poll_interval: expected an integer or a number" in proc.stderr
    cfg.write_text("[telegram.shop]\ntoken = 'abc'\n")
    proc = subprocess.run([str(OMNIDESK), "--db", str(store_location), "--config", str(cfg), "queue"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "telegram.shop.token: unknown key" in proc.stderr and "abc" not in proc.stderr
    cfg.write_text("[sync]\npoll_interval = -3\n")
    proc = subprocess.run([str(OMNIDESK), "--db", str(store_location), "--config", str(cfg), "queue"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "sync.poll_interval: expected 1 or more, got -3" in proc.stderr
    typo = tmp_path / "confg.toml"  # a config named on purpose must exist
    proc = subprocess.run([str(OMNIDESK), "--db", str(store_location), "--config", str(typo), "queue"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "confg.toml: no such config file" in proc.stderr


def test_queue_counts_down_to_the_channel_target(store_location, seeded, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[targets]\nchat = "15m"\nemail = "4h"\n')
    rows = ok_json(store_location, "--config", str(cfg), "queue")
    by_name = {r["name"]: r for r in rows}
    # seeded messages are from 2026-09: long overdue, by more than the target
    assert by_name["Bob Li"]["time_left"] < -900 and by_name["Jane Roe"]["time_left"] < -4 * 3600
    assert "over" in omnidesk(store_location, "--config", str(cfg), "queue").stdout
    assert all(r["time_left"] is None for r in ok_json(store_location, "queue"))  # no targets configured


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("shopping list\n" * 100)
    proc = omnidesk(bad, "queue")
    assert proc.returncode == 1 and "cannot open the store" in proc.stderr and "Traceback" not in proc.stderr


def test_piping_into_head_is_not_an_error(tmp_path):
    """`omnidesk --json customers | head` must end quietly when head stops reading."""
    import subprocess

    from store import Store
    from store.models import InboundMessage, Sender

    db = tmp_path / "o.db"
    s = Store(db)
    s.ingest_batch([InboundMessage("telegram", "main", f"m{n}", Sender("telegram", str(n), f"Customer {n}"),
                                   "hello " * 50, 1_790_000_000.0 + n) for n in range(3000)])
    s.close()
    omnidesk = Path(sys.executable).parent / "omnidesk"
    done = subprocess.run(f"'{omnidesk}' --db '{db}' --json customers --limit 3000 | head -c 100", shell=True,
                          capture_output=True, text=True, timeout=60, executable="/bin/bash",
                          env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert len(done.stdout) == 100
    assert "error" not in done.stderr.lower() and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("url", ["sqlite:///tmp/x.db", "mysql://alex@db.example/desk"])
def test_an_unsupported_database_url_is_refused_and_never_becomes_a_file(tmp_path, url):
    proc = subprocess.run([str(OMNIDESK), "--db", url, "queue"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "not a supported store" in proc.stderr and "postgresql://" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "sqlite:" appeared


def test_reply_with_attachments_and_cc_checked_before_queueing(store_location, seeded, tmp_path):
    """`reply --attach FILE --cc ADDRESS` through the installed command: the file goes
    with the reply, the copy-to is in the e-mail's headers, limits are checked first."""
    from connectors.email.compose import compose

    invoice = tmp_path / "invoice 1042.pdf"
    invoice.write_bytes(b"%PDF-1.4 " + b"x" * 5000)

    def installed(*args):
        return subprocess.run([str(OMNIDESK), "--db", str(store_location), "--agent", "alex", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    proc = installed("reply", "jane@roe.com", "--channel", "email", "-m", "Invoice attached.",
                     "--attach", str(invoice), "--cc", "billing@roe.com", "--json")
    assert proc.returncode == 0, proc.stderr
    s = Store(store_location)
    [out] = s.claim_due()
    msg, _ = compose(out, {"from_address": "help@shop.example"})
    assert msg["Cc"] == "billing@roe.com" and msg["To"] == "jane@roe.com"
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == "invoice 1042.pdf" and part.get_content_type() == "application/pdf"
    assert len(part.get_content()) == 5009
    s.close()
    # over the channel's limit: refused before anything is queued
    big = tmp_path / "video.mp4"
    with open(big, "wb") as f:
        f.truncate(51 * 1024 * 1024)
    proc = installed("reply", "@janeroe", "-m", "here", "--attach", str(big))
    assert proc.returncode == 1 and "video.mp4 is 51.0 MB; telegram takes files up to 50.0 MB" in proc.stderr
    proc = installed("reply", "@janeroe", "-m", "here", "--cc", "x@y.example")
    assert proc.returncode == 1 and "--cc is for e-mail" in proc.stderr
    proc = installed("reply", "jane@roe.com", "-m", "here", "--attach", str(tmp_path / "missing.pdf"))
    assert proc.returncode == 1 and "missing.pdf" in proc.stderr and "Traceback" not in proc.stderr
    s = Store(store_location)
    assert [m.text for m in s.timeline(seeded["jane"]) if m.direction == "out"] == ["Invoice attached."]
    s.close()


def test_a_customer_by_name_and_an_error_that_says_names_work(store_location, seeded):
    assert ok_json(store_location, "show", "Bob Li")["customer"]["id"] == seeded["bob"]
    proc = omnidesk(store_location, "show", "marco")
    assert proc.returncode == 1
    assert "or the name they write under" in proc.stderr and "`omnidesk customers marco` finds part of a name" in proc.stderr


def test_a_new_store_is_said_once_on_stderr(tmp_path):
    db = tmp_path / "nowhere" / "typo.db"
    first = subprocess.run([str(OMNIDESK), "queue"], env={**os.environ, "OMNIDESK_DB": str(db),
                                                           "XDG_CONFIG_HOME": str(tmp_path / "cfg")},
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and f"created a new, empty store at {db}" in first.stderr
    again = omnidesk(db, "queue")
    assert again.returncode == 0 and "created" not in again.stderr
