"""What a newcomer's first 35 minutes with the CLI found (notes/newcomer-1.md), each
through the installed `omnidesk` command on a real store."""
import json
import os
import subprocess
import time
from types import SimpleNamespace

import pytest

from store import Store
from tests.conftest import inbound
from tests.support.cli import OMNIDESK, run_in_process
from tests.support.cli import installed_on as installed, json_on as ok_json, run_on as omnidesk

T0 = 1_790_000_000.0

pytestmark = pytest.mark.both_backends


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


# -- 14. the CLI as the console's agent, names, who sends, the lease in words ------------------

@pytest.fixture
def config(tmp_path):
    """A config like the demo's: a named agent and one (Maildir) channel."""
    inbox = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    path = tmp_path / "config.toml"
    path.write_text(f'[agent]\nname = "Alex Morgan"\n\n[email.shop]\nbackend = "maildir"\nmaildir = "{inbox}"\n'
                    f'from_address = "support@shop.test"\nsendmail_command = "/bin/true"\n')
    return path


def test_the_cli_acts_as_the_configured_agent_so_undo_works_across_console_and_cli(store_location, desk, config):
    s = Store(store_location)
    s.tag(desk.zoe, "vip", "Alex Morgan")  # what the console does with the same config
    s.close()
    proc = omnidesk(store_location, "--config", str(config), "undo", "--customer", "zoe@example.com")
    assert proc.returncode == 0, proc.stderr
    assert "undid “tagged vip” for Zoë Müller" in proc.stdout
    ok_json(store_location, "--config", str(config), "status", "jane@roe.com", "done")
    assert ok_json(store_location, "events", "--limit", "1")[0]["actor"] == "Alex Morgan"
    # OMNIDESK_AGENT acts as someone else, and --agent beats both
    ok_json(store_location, "--config", str(config), "tag", "jane@roe.com", "x", env={"OMNIDESK_AGENT": "Sam"})
    assert ok_json(store_location, "events", "--limit", "1")[0]["actor"] == "Sam"


def test_nothing_to_undo_says_whose_action_it_is(store_location, desk):
    s = Store(store_location)
    s.tag(desk.zoe, "vip", "Alex Morgan")
    s.close()
    proc = omnidesk(store_location, "--agent", "you", "undo", "--customer", "zoe@example.com")
    assert proc.returncode == 1
    assert "nothing to undo" in proc.stderr and "is Alex Morgan's (event 1, tag)" in proc.stderr
    assert "`omnidesk undo 1` takes it back" in proc.stderr


def test_a_customer_by_part_of_the_name(store_location, desk):
    assert ok_json(store_location, "show", "jane")["customer"]["id"] == desk.jane
    assert ok_json(store_location, "show", "JANE ROE")["customer"]["id"] == desk.jane
    assert ok_json(store_location, "show", "müller")["customer"]["id"] == desk.zoe
    assert ok_json(store_location, "reply", "roe", "-m", "Sorry!")["customer_id"] == desk.jane
    s = Store(store_location)
    other = s.ingest(inbound("email", "jane@doe.com", "hello", name="Jane Doe", sent_at=T0 + 120)).customer_id
    s.close()
    proc = omnidesk(store_location, "show", "jane")
    assert proc.returncode == 1
    assert f"'jane' matches several customers: #{desk.jane} Jane Roe, #{other} Jane Doe" in proc.stderr
    assert ok_json(store_location, "show", "jane doe")["customer"]["id"] == other  # the whole name wins
    proc = omnidesk(store_location, "show", "nobody")
    assert proc.returncode == 1 and "no customer matches 'nobody'" in proc.stderr


def test_reply_says_who_will_send_it(store_location, desk):
    said = omnidesk(store_location, "reply", "jane", "-m", "On its way").stdout
    assert "via e-mail; nothing is sending now: `omnidesk sync --once` or the console sends it" in said
    from connectors.lease import holder_id

    s = Store(store_location)
    assert s.acquire_lease(holder_id("console"), 30)  # as the open console's engine does
    s.close()
    said = omnidesk(store_location, "reply", "jane", "-m", "Tracking: 123").stdout
    import getpass

    assert f"via e-mail; the console of user {getpass.getuser()} on " in said and " sends it" in said
    assert "`omnidesk sync`" not in said


def test_sync_once_beside_a_console_says_who_polls_in_words(store_location, desk, config):
    import getpass
    import socket

    from connectors.lease import holder_id

    s = Store(store_location)
    assert s.acquire_lease(holder_id("console"), 30)
    s.close()
    proc = installed(store_location, "--config", str(config), "sync", "--once")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (f"the console of user {getpass.getuser()} on {socket.gethostname()} (pid {os.getpid()}, running since"
            in proc.stderr)
    assert "already polls this store and sends its replies" in proc.stderr and "quit it first" in proc.stderr


# -- 10. show never cuts what was written ------------------------------------------------------

LONG = ("So sorry about this: the replacement teapot ships today by express, tracking follows, and there is"
        " no need to return the old one — keep it for the garden, with our apologies.")


def test_show_keeps_every_word_when_piped_and_wraps_on_a_terminal(store_location, desk):
    s = Store(store_location)
    s.ingest(inbound("email", "jane@roe.com", LONG + "\n" + "\n".join(f"line {n}" for n in range(1, 31)),
                     name="Jane Roe", subject="Teapot " + "very " * 30 + "broken", sent_at=T0 + 120))
    s.add_note(desk.jane, "Note: " + LONG, "Alex Morgan")
    s.close()
    ok_json(store_location, "reply", "jane", "-m", LONG)
    piped = installed(store_location, "show", "jane").stdout
    assert piped.count(LONG) == 3 and "…" not in piped  # theirs, our note, our reply: whole lines
    assert "line 30" in piped and "very " * 30 + "broken" in piped

    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([str(OMNIDESK), "--db", str(store_location), "show", "jane"], stdout=slave,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "60"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert proc.returncode == 0
    body = [line for line in screen.splitlines() if line.startswith("    ")]
    assert body and max(len(line) for line in body) <= 60
    words = " ".join(" ".join(line.split()) for line in body)
    assert "no need to return the old one — keep it for the garden, with our apologies." in words
    assert "…" not in screen


def test_show_says_waiting_only_for_customers_who_wait(store_location, desk):
    assert "waiting " in installed(store_location, "show", "jane").stdout
    for status in ("done", "pending"):
        ok_json(store_location, "status", "jane", status)
        out = installed(store_location, "show", "jane").stdout
        assert f"[{status}]" in out and "waiting" not in out
    ok_json(store_location, "snooze", "jane", "tomorrow 9:00")
    out = installed(store_location, "show", "jane").stdout
    assert "snoozed until " in out and "waiting" not in out


# -- 11. undoing a split puts the customer back exactly ----------------------------------------

@pytest.mark.parametrize("status", ["done", "pending", "snoozed"])
def test_undoing_a_split_restores_the_status(store_location, desk, status):
    s = Store(store_location)
    s.ingest(inbound("telegram", "4242", "any news?", name="Jane", handle="janeroe", sent_at=T0 + 600))
    s.close()
    ok_json(store_location, "merge", "jane@roe.com", "@janeroe")
    if status == "snoozed":
        until = ok_json(store_location, "snooze", "jane@roe.com", "tomorrow 9:00")["snoozed_until"]
    else:
        ok_json(store_location, "status", "jane@roe.com", status)
    before = ok_json(store_location, "show", "jane@roe.com")["customer"]
    telegram = [i for i in before["identities"] if i["channel"] == "telegram"][0]["id"]
    ok_json(store_location, "split", str(telegram))
    ok_json(store_location, "undo")
    after = ok_json(store_location, "show", "jane@roe.com")["customer"]
    assert after["status"] == status and after["snoozed_until"] == before["snoozed_until"]
    assert after["waiting_since"] == before["waiting_since"] and after["unread"] == before["unread"]
    if status == "snoozed":
        assert after["snoozed_until"] == until
    assert desk.jane not in [r["customer_id"] for r in ok_json(store_location, "queue")]
    assert "waiting" not in installed(store_location, "show", "jane@roe.com").stdout


def test_undoing_a_split_after_new_mail_puts_them_in_the_queue(store_location, desk):
    s = Store(store_location)
    s.ingest(inbound("telegram", "4242", "any news?", name="Jane", handle="janeroe", sent_at=T0 + 600))
    s.close()
    ok_json(store_location, "merge", "jane@roe.com", "@janeroe")
    ok_json(store_location, "status", "jane@roe.com", "done")
    customer = ok_json(store_location, "show", "jane@roe.com")["customer"]
    telegram = [i for i in customer["identities"] if i["channel"] == "telegram"][0]["id"]
    ok_json(store_location, "split", str(telegram))
    s = Store(store_location, clock=lambda: time.time() + 5)  # after the split
    s.ingest(inbound("email", "jane@roe.com", "Hello again?", name="Jane Roe", sent_at=T0 + 900))
    s.close()
    ok_json(store_location, "undo")
    assert ok_json(store_location, "show", "jane@roe.com")["customer"]["status"] == "open"


# -- 15. smaller ones ---------------------------------------------------------------------------

def test_a_retried_reply_shows_when_it_really_went_out(store_location, desk):
    from store.models import Receipt

    reply = ok_json(store_location, "reply", "jane", "-m", "Here it is")["id"]
    clock = [time.time() + 60]
    s = Store(store_location, clock=lambda: clock[0])
    [out] = s.claim_due()
    s.mark_failed(out.outbox_id, "connection refused", None)
    s.retry(reply, "Alex Morgan")
    clock[0] += 8 * 60  # it goes out eight minutes later
    [out] = s.claim_due()
    s.mark_sent(out.outbox_id, Receipt("x1"))
    s.close()
    from store.timefmt import format_iso

    m = [m for m in ok_json(store_location, "show", "jane")["messages"] if m["id"] == reply][0]
    assert m["state"] == "sent" and m["delivered_at"] == format_iso(clock[0])
    assert f"(sent {format_iso(clock[0])})  #{reply}" in installed(store_location, "show", "jane").stdout


# -- 8. tags: one spelling, whatever is typed ------------------------------------------------

def test_tags_are_normalized_found_in_any_spelling_and_undone_together(store_location, desk):
    said = omnidesk(store_location, "tag", "jane", "shipping,Address Change, #vip")
    assert said.returncode == 0 and said.stdout.strip() == "tags: address-change, shipping, vip"
    assert ok_json(store_location, "tag", "jane", "VIP", "#Shipping")["tags"] == ["address-change", "shipping", "vip"]
    for query in ("tag:vip", "tag:#VIP", "tag:address-change"):
        assert [h["customer_id"] for h in ok_json(store_location, "search", query)] == [desk.jane], query
    for tag in ("address change", "Address-Change", "#VIP"):
        assert [r["customer_id"] for r in ok_json(store_location, "queue", "--tag", tag)] == [desk.jane], tag
    assert "tagged shipping, address-change, vip" in omnidesk(store_location, "events").stdout
    # one undo takes back everything that one command added
    proc = omnidesk(store_location, "undo")
    assert proc.returncode == 0 and "undid “tagged shipping, address-change, vip” for Jane Roe" in proc.stdout
    assert ok_json(store_location, "show", "jane")["customer"]["tags"] == []
    proc = omnidesk(store_location, "tag", "jane", " #  ")
    assert proc.returncode == 1 and "a tag cannot be empty" in proc.stderr


def test_removing_several_tags_is_one_action(store_location, desk):
    ok_json(store_location, "tag", "jane", "a", "b", "c")
    assert ok_json(store_location, "tag", "jane", "-r", "#A", "B")["tags"] == ["c"]
    ok_json(store_location, "undo")
    assert ok_json(store_location, "show", "jane")["customer"]["tags"] == ["a", "b", "c"]


def test_a_rule_tags_in_the_same_form(tmp_path):
    from connectors.desk.rules import parse_rules

    [rule] = parse_rules({"rule": [{"name": "vip", "when": {"channel": "email", "tag": "#Shipping"}, "then": {"tag": ["#VIP", "Address Change"]}}]},
                         tmp_path / "rules.toml").rules
    assert rule.then["tag"] == ["vip", "address-change"] and rule.when["tag"] == ["shipping"]


def test_the_migration_normalizes_stored_tags_and_merges_duplicates(store_location, store_backend, desk):
    s = Store(store_location)
    with s.tx():  # tags as an older omnidesk stored them
        for tag in ("#vip", "VIP", "Address Change", "shipping"):
            s.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?)", (desk.jane, tag))
        s.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?)", (desk.zoe, "#VIP"))
        s.log_event("tag", "Alex Morgan", desk.zoe, tag="#VIP")
        if store_backend == "postgresql":
            s.conn.execute("UPDATE omnidesk_schema SET version = 14")
    if store_backend == "sqlite":
        s.conn.execute("PRAGMA user_version = 14")
    s.close()
    s = Store(store_location)  # opening migrates
    assert s.customer(desk.jane).tags == ["address-change", "shipping", "vip"]
    assert s.customer(desk.zoe).tags == ["vip"]
    s.close()
    assert [r["customer_id"] for r in ok_json(store_location, "queue", "--tag", "vip")] == [desk.zoe, desk.jane]
    # the old event still undoes, in the new spelling
    assert omnidesk(store_location, "undo", "1").returncode == 0
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["tags"] == []


def test_stats_json_has_the_totals_over_every_channel(store_location, desk):
    data = ok_json(store_location, "stats", "--since", "3650d")
    total = data["channels"]["all"]
    assert total["messages_in"] == sum(data["channels"][ch]["messages_in"] for ch in ("email", "telegram", "slack")) == 2
    assert sum(data["hours"]["all"]) == 2


def test_hooks_get_iso_times_beside_unix_seconds(store_location, desk, tmp_path):
    out = tmp_path / "payload.json"
    config = tmp_path / "hooks.toml"
    config.write_text(f'[[hook]]\non = "message_received"\ncommand = "cat > {out}"\n')
    proc = installed(store_location, "--config", str(config), "hooks", "test", "message_received", "--customer", "jane")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    assert payload["message"]["sent_at"] == T0 + 60 and payload["message"]["sent_at_iso"] == "2026-09-21T14:14:20Z"
    assert payload["customer"]["waiting_since_iso"] == "2026-09-21T14:14:20Z"
    assert isinstance(payload["customer"]["waiting_since"], float)


def test_events_kind_typo_names_the_kinds(store_location, desk):
    proc = omnidesk(store_location, "events", "--kind", "bogus")
    assert proc.returncode == 1 and "--kind 'bogus': not a kind of event" in proc.stderr
    assert "status, survey, survey_skipped, tag, undo, untag" in proc.stderr
    ok_json(store_location, "tag", "jane", "vip")
    assert [e["kind"] for e in ok_json(store_location, "events", "--kind", "tag")] == ["tag"]


def test_doctor_counts_fact_rules_too(tmp_path, store_location):
    (tmp_path / "rules.toml").write_text('[[fact]]\nname = "order_number"\npattern = \'order (\\d+)\'\n')
    config = tmp_path / "config.toml"
    config.write_text('[agent]\nname = "Alex Morgan"\n')
    proc = installed(store_location, "--config", str(config), "doctor")
    assert "0 rules (0 on the timer), 1 fact rule" in proc.stdout, proc.stdout


def test_version_from_the_package_metadata():
    from importlib.metadata import version

    proc = subprocess.run([str(OMNIDESK), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"omnidesk {version('omnidesk')}"
