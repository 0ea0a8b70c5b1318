"""What the second newcomer's 35 minutes with the CLI found (notes/newcomer-2.md), each
through the installed `omnidesk` command on a real store, on both backends."""
import json
import os
import shutil
import subprocess
from pathlib import Path
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
    jane = s.ingest(inbound("telegram", "5001", "Is my teapot on its way?", name="Jane Roe", handle="janeroe",
                            sent_at=T0)).customer_id
    zoe = s.ingest(inbound("email", "zoe@example.com", "Where is my tea?", name="Zoe Muller", subject="Tea",
                           sent_at=T0 + 60)).customer_id
    s.close()
    return SimpleNamespace(jane=jane, zoe=zoe)


@pytest.fixture
def config(tmp_path):
    """A config file with the starter templates beside it, as `omnidesk init` leaves them."""
    starter = Path(__file__).resolve().parent.parent / "connectors" / "desk" / "starter_templates"
    shutil.copytree(starter, tmp_path / "templates")
    path = tmp_path / "config.toml"
    path.write_text('[channels.email]\nsign_off = "Best regards,\\n{{ agent }}"\n')
    return str(path)


# -- 27. reply --template T -m TEXT --------------------------------------------------------

def test_reply_with_a_template_and_text_keeps_the_text_first_then_the_template(store_location, desk, config):
    proc = installed(store_location, "--config", config, "--agent", "Alex Morgan", "reply", "@janeroe", "--template", "greeting",
                     "-m", "Extra text about your teapot.", "--json")
    assert proc.returncode == 0, proc.stderr
    text = json.loads(proc.stdout)["text"]
    assert text.startswith("Extra text about your teapot.\n"), text
    assert "Thanks for reaching out! I'm Alex" in text
    # as in the console: a template going into a reply begun brings no second greeting
    assert text.count("Hi Jane") == 0 and text.index("Extra text") < text.index("Thanks for reaching out")


def test_reply_with_a_template_and_text_by_email_signs_once(store_location, desk, config):
    data = ok_json(store_location, "--config", config, "--agent", "Alex Morgan", "reply", "zoe@example.com",
                   "--template", "greeting", "-m", "Your tea left today.")
    text = data["text"]
    assert text.startswith("Your tea left today.\n") and "Thanks for reaching out" in text
    assert text.count("Best regards") == 1, text
    assert data["subject"] == "Re: Tea"  # in a thread the subject stays theirs


# -- 15. suggest and "Unknown sender" ------------------------------------------------------

def _maildir(root: Path, mails: dict[str, str]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, text in mails.items():
        (root / "cur" / f"{name}:2,S").write_text(text)
    return root


def test_mails_without_a_sender_are_not_suggested_as_duplicates_of_each_other(store_location, tmp_path):
    mails = {f"n{i}": f"Subject: note {i}\nMessage-ID: <n{i}@shop>\n\nHello, order {i} please\n" for i in range(4)}
    mails["j1"] = "From: Jane Roe <jane@roe.com>\nSubject: Teapot\nMessage-ID: <j1@roe>\n\nMy teapot\n"
    mails["j2"] = "From: Jane Roe <jane.roe@roe.com>\nSubject: Teapot\nMessage-ID: <j2@roe>\n\nStill my teapot\n"
    proc = installed(store_location, "import", "maildir", str(_maildir(tmp_path / "mail", mails)))
    assert proc.returncode == 0, proc.stderr
    unknown = [c["id"] for c in ok_json(store_location, "customers") if c["name"] == "Unknown sender"]
    assert len(unknown) == 4  # one per conversation, on purpose
    proc = installed(store_location, "suggest")
    assert proc.returncode == 0, proc.stderr
    # the real duplicate is the only suggestion: no 'same name unknown sender', no 'domain invalid'
    assert proc.stdout.strip().splitlines() == [proc.stdout.strip().splitlines()[0]]
    assert "same name 'jane roe'; same e-mail domain roe.com" in proc.stdout
    assert "unknown" not in proc.stdout.lower() and "invalid" not in proc.stdout
    # one customer's suggestions (what the console's merge picker offers): none for a placeholder
    assert ok_json(store_location, "suggest", str(unknown[0])) == []
    s = Store(store_location)
    try:
        assert s.merge_suggestions(unknown[1]) == []
    finally:
        s.close()


# -- 39 and 24. a bulk close says what it closed; one undo reopens all and says so ------------

def test_import_done_says_how_many_it_closed_and_one_undo_reopens_them_all(store_location, tmp_path):
    mails = {f"m{i}": f"From: C{i} <c{i}@shop{i}.example>\nSubject: order {i}\nMessage-ID: <m{i}@x>\n\n"
                      f"Where is order {i}?\n" for i in range(4)}
    root = _maildir(tmp_path / "legacy", mails)
    assert installed(store_location, "import", "maildir", str(root)).returncode == 0
    assert len(ok_json(store_location, "queue")) == 4
    proc = installed(store_location, "import", "maildir", str(root), "--done")
    assert proc.returncode == 0, proc.stderr
    assert "imported 0 new of 4 messages" in proc.stdout
    assert "marked 4 customers done (undo all: omnidesk undo " in proc.stdout
    assert ok_json(store_location, "queue") == []
    proc = installed(store_location, "undo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("reopened 4 customers"), proc.stdout
    assert len(ok_json(store_location, "queue")) == 4


def test_undo_of_done_older_than_says_how_many_it_reopened(store_location, desk):
    proc = installed(store_location, "done", "--older-than", "1h")
    assert proc.stdout.startswith("marked 2 customers done"), proc.stdout
    proc = installed(store_location, "undo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("reopened 2 customers (undid “set status done”"), proc.stdout
    assert "Unknown sender" not in proc.stdout and "(status)" not in proc.stdout
    events = installed(store_location, "events").stdout
    assert events.count("you undid “set status done”") == 2 and "undid a status" not in events


def test_undo_names_the_action_and_the_customer(store_location, desk):
    installed(store_location, "tag", "zoe@example.com", "vip")
    proc = installed(store_location, "undo")
    assert proc.stdout.startswith("undid “tagged vip” for Zoe Muller (event "), proc.stdout


# -- 36. agent names match in any case; a blank one is refused --------------------------------

def test_agent_names_match_in_any_case_and_keep_the_configured_spelling(store_location, desk):
    proc = installed(store_location, "--agent", "Alex Morgan", "assign", "zoe@example.com", "alex morgan")
    assert proc.returncode == 0 and proc.stdout.strip() == f"#{desk.zoe} assigned to Alex Morgan", proc.stdout
    mine = ok_json(store_location, "--agent", "Alex Morgan", "queue", "--filter", "mine")
    assert [r["customer_id"] for r in mine] == [desk.zoe]
    # assigned by someone else in another case: the name already in use is kept, and it is still "mine"
    ok_json(store_location, "--agent", "Sam", "assign", str(desk.jane), "ALEX  MORGAN")
    assert ok_json(store_location, "show", str(desk.jane))["customer"]["assignee"] == "Alex Morgan"
    mine = ok_json(store_location, "--agent", "alex morgan", "queue", "--filter", "mine")
    assert sorted(r["customer_id"] for r in mine) == sorted([desk.zoe, desk.jane])


def test_a_blank_agent_name_is_refused(store_location, desk):
    proc = installed(store_location, "assign", "zoe@example.com", "   ")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "an agent's name cannot be blank; to unassign, give no name" in proc.stderr
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["assignee"] is None
    assert ok_json(store_location, "events") == []


# -- 29. breach events in words ------------------------------------------------------------

def test_a_missed_target_reads_in_words_not_seconds_and_unix_time(store_location, desk):
    import re

    s = Store(store_location)
    try:
        since = s.customer(desk.zoe).waiting_since
        assert s.record_breach(desk.zoe, since, "email", 14400.0, 1) is not None
    finally:
        s.close()
    proc = installed(store_location, "events", "--customer", "zoe@example.com")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"waited past the 4h e-mail target \(since (\w{3} |\w{3} \d\d |\d{4}-\d\d-\d\d )?\d\d:\d\d\)",
                     proc.stdout), proc.stdout
    assert "priority raised to 1: a reply target was missed" in proc.stdout
    assert "14400" not in proc.stdout and not re.search(r"\b1[0-9]{9}\b", proc.stdout)
    assert "targets:" not in proc.stdout and "targets set" not in proc.stdout


# -- 8. relative dates in search -----------------------------------------------------------

def test_search_dates_can_be_relative_like_snooze_and_stats(store_location):
    import time
    from datetime import datetime

    now = time.time()
    midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    s = Store(store_location)
    try:
        old = s.ingest(inbound("email", "old@example.com", "teapot question", name="Old Olga",
                               sent_at=now - 10 * 86400)).customer_id
        new = s.ingest(inbound("email", "new@example.com", "teapot question", name="New Nina",
                               sent_at=max(now - 60, midnight + 1))).customer_id
    finally:
        s.close()

    def found(query):
        proc = installed(store_location, "search", query, "--json")
        assert proc.returncode == 0, proc.stderr
        return sorted(h["customer_id"] for h in json.loads(proc.stdout))

    assert found("teapot after:7d") == [new]
    assert found("teapot after:today") == [new]
    assert found("teapot after:yesterday") == [new]
    assert found("teapot before:yesterday") == [old]
    assert found("teapot before:7d") == [old]
    assert found("teapot after:30d") == sorted([old, new])
    assert found("teapot before:2000-01-01") == []  # dates still work
    proc = installed(store_location, "search", "teapot after:lastweek")
    assert proc.returncode == 1
    assert "after:lastweek: expected a date like 2026-11-25, a span back like 7d or 24h, today or yesterday" \
        in proc.stderr


# -- 38, 42, 31, 26. small CLI things --------------------------------------------------------

def test_retry_of_a_message_that_does_not_exist_says_so(store_location, desk):
    proc = installed(store_location, "retry", "9999")
    assert proc.returncode == 1 and "there is no message 9999" in proc.stderr, proc.stderr
    assert "not an outbound reply" not in proc.stderr
    first = ok_json(store_location, "show", str(desk.zoe))["messages"][0]["id"]
    proc = installed(store_location, "retry", str(first))  # their own message: exists, but is no reply
    assert proc.returncode == 1 and f"message {first} is not an outbound reply" in proc.stderr


def test_the_snoozed_queue_says_until_when(store_location, desk):
    ok_json(store_location, "snooze", "zoe@example.com", "tomorrow", "9:00")
    proc = installed(store_location, "queue", "--filter", "snoozed")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert "UNTIL" in header and "TARGET" not in header
    assert "Zoe Muller" in row and "09:00" in row
    everyone = installed(store_location, "queue", "--filter", "all").stdout
    assert any("Zoe Muller" in line and "zz " in line and "09:00" in line for line in everyone.splitlines())


def test_stats_since_a_future_date_is_refused(store_location, desk):
    proc = installed(store_location, "stats", "--since", "2099-01-01")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--since 2099-01-01 is in the future" in proc.stderr
    proc = installed(store_location, "stats", "--since", "7d", "--until", "2000-01-01")
    assert proc.returncode == 1 and "--until 2000-01-01 is not after --since 7d" in proc.stderr


def test_split_takes_an_address_as_show_does(store_location, desk):
    s = Store(store_location)
    try:
        other = s.ingest(inbound("email", "jane.roe@example.com", "Me again", name="Jane Roe", sent_at=T0 + 90)
                         ).customer_id
    finally:
        s.close()
    ok_json(store_location, "merge", str(desk.jane), str(other))
    data = ok_json(store_location, "split", "jane.roe@example.com")
    assert [i["address"] for i in ok_json(store_location, "show", str(data["customer_id"]))["customer"]["identities"]] \
        == ["jane.roe@example.com"]
    proc = installed(store_location, "split", "@janeroe")  # a handle: that identity (her only one now)
    assert proc.returncode == 1 and "is the customer's only identity; nothing to split" in proc.stderr
    proc = installed(store_location, "split", "Zoe Muller")  # a name is a customer, not an identity
    assert proc.returncode == 1 and "invalid int value" not in proc.stderr
    assert f"'Zoe Muller' is customer #{desk.zoe}, not one of their addresses" in proc.stderr
    assert "email zoe@example.com" in proc.stderr and "identity " in proc.stderr


def test_one_fact_command_is_one_undo(store_location, desk):
    proc = installed(store_location, "fact", "zoe@example.com", "order_number=7788", "plan=gold")
    assert proc.returncode == 0 and "(2 changes; `omnidesk undo` takes them all back)" in proc.stdout
    proc = installed(store_location, "undo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("undid “set order_number = 7788; set plan = gold” for Zoe Muller"), proc.stdout
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["facts"] == {}


# -- 17. papercuts: mistyped commands, -5m, header rows, hooks ---------------------------------

def test_a_mistyped_command_gets_a_did_you_mean(store_location, desk):
    proc = installed(store_location, "qeueu")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "omnidesk: error: 'qeueu' is not a command; did you mean 'queue'? (`omnidesk --help`" \
                                  " lists them)"
    proc = installed(store_location, "--agent", "Sam", "xyzzy")
    assert proc.returncode == 2 and "'xyzzy' is not a command (`omnidesk --help` lists them)" in proc.stderr


def test_snooze_with_a_negative_time_says_the_past_is_not_a_snooze(store_location, desk):
    proc = installed(store_location, "snooze", "zoe@example.com", "-5m")
    assert proc.returncode == 1, proc.stderr
    assert "-5m: a time in the past is not a snooze; give a time ahead" in proc.stderr
    assert "arguments are required" not in proc.stderr
    assert ok_json(store_location, "events") == []


def test_customers_and_events_have_a_header_row_as_queue_has(store_location, desk):
    ok_json(store_location, "tag", "zoe@example.com", "vip")
    customers = installed(store_location, "customers").stdout.splitlines()
    assert customers[0].split() == ["ID", "STATUS", "CHANNELS", "NAME"] and len(customers) == 3
    events = installed(store_location, "events").stdout.splitlines()
    assert events[0].split() == ["ID", "WHEN", "WHO", "WHAT"] and "tagged vip" in events[1]


def test_hooks_list_shows_the_command_whole_and_config_errors_count_hooks_from_one(store_location, desk, tmp_path):
    long_command = "cat >> /tmp/some/where/hook.json; echo >> /tmp/some/where/hook.json"
    cfg = tmp_path / "hooks.toml"
    cfg.write_text(f'[[hook]]\non = "status_changed"\ncommand = "{long_command}"\n')
    proc = installed(store_location, "--config", str(cfg), "hooks", "list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"status_changed: {long_command}  (timeout 10s, 1 at a time): idle"
    cfg.write_text('[[hook]]\non = "status_changed"\ncommand = "true"\n\n'
                   '[[hook]]\non = "status_chnaged"\ncommand = "true"\n')
    proc = installed(store_location, "--config", str(cfg), "hooks", "list")
    assert proc.returncode == 1 and "[[hook]] #2 on: unknown event 'status_chnaged'" in proc.stderr


# -- 6. the starter apology on chat ----------------------------------------------------------

def test_the_starter_apology_on_chat_starts_no_sentence_lower_case(store_location, desk, config):
    import re

    proc = installed(store_location, "--config", config, "templates", "render", "apology", "--customer", "@janeroe",
                     "--channel", "telegram", "--set", "problem=your teapot arrived cracked",
                     "--set", "next_step=a replacement ships today")
    assert proc.returncode == 0, proc.stderr
    assert "your teapot arrived cracked. What happens next: a replacement ships today." in proc.stdout
    assert not re.search(r"[.!?] [a-z]", proc.stdout), proc.stdout


# -- 14. the generated config says what the sign-off does ------------------------------------

def test_the_generated_config_says_what_a_typed_reply_gets_and_does_it(store_location, desk, tmp_path):
    cfg = tmp_path / "home" / "config.toml"
    env = {"OMNIDESK_CONFIG": str(cfg)}
    proc = installed(store_location, "init", "--yes", "--name", "Pat Baker", "--email", "shop@example.com", env=env)
    assert proc.returncode == 0, proc.stderr
    text = cfg.read_text()
    assert "defaults shown" not in text
    assert "A reply you\n# type gets no greeting, and the sign-off only once you set it" in text
    typed = ok_json(store_location, "reply", "zoe@example.com", "-m", "Your tea left today.", env=env)["text"]
    assert "Best regards" not in typed and "Hello" not in typed  # as the comment says
    cfg.write_text(text.replace("\n# [channels.email]\n", "\n[channels.email]\n")
                   .replace('# sign_off = "Best regards', 'sign_off = "Best regards'))
    typed = ok_json(store_location, "reply", "zoe@example.com", "-m", "Your tea left today.", env=env)["text"]
    assert typed.rstrip().endswith("Best regards,\nPat Baker"), typed


# -- 2. the README names every queue filter, open included ----------------------------------

def test_the_readme_explains_every_queue_filter():
    from store.terms import QUEUE_FILTERS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    queue = readme[readme.index("- **The queue**"):readme.index("drops them.")]
    for name in QUEUE_FILTERS:
        assert name in queue, name
    assert "open, the console's\n  default" in queue and "`omnidesk queue`'s default" in queue


# -- 13. doctor and an msmtp without any configuration ----------------------------------------

@pytest.mark.skipif(shutil.which("msmtp") is None, reason="needs the real msmtp")
def test_doctor_does_not_call_msmtp_without_a_configuration_ok(store_location, tmp_path):
    home = tmp_path / "home"
    for sub in ("cur", "new", "tmp"):
        (home / "Mail" / sub).mkdir(parents=True)
    cfg = home / "config.toml"
    cfg.write_text(f'[email.main]\nbackend = "maildir"\nmaildir = "{home / "Mail"}"\nsendmail_command = "msmtp -t"\n')
    env = {"HOME": str(home)}
    proc = installed(store_location, "--config", str(cfg), "doctor", env=env)
    [line] = [line for line in proc.stdout.splitlines() if "email:main" in line]
    assert proc.returncode == 1 and line.startswith("FIX"), proc.stdout
    assert "msmtp is not set up (account default not found: no configuration file available)" in line
    assert "~/.msmtprc" in line
    rc = home / ".msmtprc"
    rc.write_text("defaults\naccount default\nhost localhost\nfrom shop@example.com\n")
    rc.chmod(0o600)
    proc = installed(store_location, "--config", str(cfg), "doctor", env=env)
    [line] = [line for line in proc.stdout.splitlines() if "email:main" in line]
    assert line.startswith("ok") and "sends with" in line and "msmtp" in line, proc.stdout


# -- 40. the satisfaction survey: never skipped silently, no "Re:" on our own subject ----------

def test_a_skipped_survey_says_why_and_a_survey_without_their_subject_gets_no_re(store_location, tmp_path):
    mail = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True)
    starter = Path(__file__).resolve().parent.parent / "connectors" / "desk" / "starter_templates"
    shutil.copytree(starter, tmp_path / "templates")
    sent = tmp_path / "sent.eml"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\nname = "Pat"\n\n[email.main]\nbackend = "maildir"\nmaildir = "{mail}"\n'
                   f'from_address = "shop@example.com"\nsendmail_command = "tee -a {sent}"\n\n'
                   f'[satisfaction]\ntemplate = "closing"\n')
    (mail / "new" / "1").write_text("From: Bob <bob@example.com>\nMessage-ID: <b1@x>\n\nHello, no subject here\n")
    (mail / "new" / "2").write_text("From: Al <al@example.com>\nSubject: Fire\nMessage-ID: <a1@x>\n\nHello\n")

    def run(*args):
        proc = installed(store_location, "--config", str(cfg), *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run("sync", "--once")
    run("reply", "bob@example.com", "-m", "Sorted, Bob.")
    run("done", "bob@example.com")
    run("done", "al@example.com")  # never answered: no survey, and the log says so
    assert "outbox: 2 sent" in run("sync", "--once")
    assert "no satisfaction survey: no reply of ours in this case" in run("events", "--customer", "al@example.com")
    assert "asked how satisfied they are" in run("events", "--customer", "bob@example.com")
    subjects = [line for line in sent.read_text().splitlines() if line.startswith("Subject:")]
    assert subjects == ["Subject: (no subject)", "Subject: Is everything sorted?"], subjects


# -- 11. fact names with spaces normalise as tags do -------------------------------------------

def test_a_fact_name_with_spaces_becomes_an_underscored_name(store_location, desk):
    proc = installed(store_location, "fact", "zoe@example.com", "gift card=50 EUR")
    assert proc.returncode == 0, proc.stderr
    assert "gift_card: 50 EUR" in proc.stdout
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["facts"] == {"gift_card": "50 EUR"}
    proc = installed(store_location, "fact", "zoe@example.com", "-r", "gift card")
    assert proc.returncode == 0, proc.stderr
    assert ok_json(store_location, "show", str(desk.zoe))["customer"]["facts"] == {}


# -- 32. init does not litter the home directory -----------------------------------------------

def test_init_with_a_config_in_the_home_directory_asks_for_a_folder_of_its_own(store_location, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    proc = installed(store_location, "--config", str(home / "shop.toml"), "init", "--yes", "--email",
                     "shop@gmail.com", "--password-env", "GMAIL_PW", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "put the config in a folder of its own, like" in proc.stderr and str(home / "shop" / "config.toml") \
        in proc.stderr
    assert list(home.iterdir()) == []  # nothing written
    proc = installed(store_location, "--config", str(home / "shop" / "config.toml"), "init", "--yes", "--email",
                     "shop@gmail.com", "--password-env", "GMAIL_PW", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in home.iterdir()] == ["shop"]
    assert {p.name for p in (home / "shop").iterdir()} >= {"config.toml", "templates", "rules.toml", "keybindings.toml"}
