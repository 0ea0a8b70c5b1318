"""The automation the way a user runs it: real `omnidesk` processes on one store, a
Maildir with a sendmail stand-in, hooks that are real shell commands.

- what happens while nothing runs is handled at the next `sync --once`, exactly once;
- an e-mail rating with the quoted question below it is counted;
- a hanging hook delays only itself, and SIGTERM stops `sync` at once anyway, its run
  queued again for the next start.
"""
from __future__ import annotations

import email
import email.policy
import email.utils
import json
import os
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.desk import templates
from store import Store
from tests.support.chat import wait_until

OMNIDESK = Path(sys.executable).parent / "omnidesk"  # the entry point users run
_n = iter(range(10**6))


def deliver(inbox: Path, raw: bytes) -> None:
    """As an MDA does it: write to tmp/, rename into new/."""
    name = f"{time.time_ns()}.{next(_n)}.testhost"
    (inbox / "tmp" / name).write_bytes(raw)
    os.rename(inbox / "tmp" / name, inbox / "new" / name)


def mail(body: str, mid: str, subject: str = "Parcel 1234", irt: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Jane Doe <jane@example.com>", "support@shop.test", subject
    msg["Message-ID"], msg["Date"] = f"<{mid}>", email.utils.formatdate()
    if irt:
        msg["In-Reply-To"] = msg["References"] = f"<{irt}>"
    msg.set_content(body)
    return msg.as_bytes()


class Desk:
    """A config, a store and a Maildir; `run` runs the omnidesk command on them."""

    def __init__(self, root: Path, hooks: str = ""):
        self.root = root
        self.inbox = root / "Mail"
        for sub in ("cur", "new", "tmp"):
            (self.inbox / sub).mkdir(parents=True)
        self.sent = root / "sent"  # what the sendmail stand-in was given, one file per mail
        self.sent.mkdir()
        sendmail = root / "sendmail"
        sendmail.write_text(f'#!/bin/sh\ncat > "{self.sent}/$(date +%s%N).eml"\n')
        sendmail.chmod(0o755)
        self.db = root / "omnidesk.db"
        self.config = root / "config.toml"
        self.config.write_text(f"""
[sync]
poll_interval = 1

[email.local]
backend = "maildir"
maildir = "{self.inbox}"
from_address = "support@shop.test"
sendmail_command = "{sendmail}"

[satisfaction]
template = "closing"
{hooks}
""")
        templates.install_starter_templates(root / "templates")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(OMNIDESK), "--db", str(self.db), "--config", str(self.config), "--agent", "ann",
                               *args], capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def start_sync(self) -> subprocess.Popen:
        proc = subprocess.Popen([str(OMNIDESK), "--db", str(self.db), "--config", str(self.config), "sync"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert "channel(s)" in proc.stdout.readline()
        return proc

    def sent_mails(self) -> list[email.message.Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.sent.iterdir())]

    def store(self) -> Store:
        return Store(self.db)


def collect(directory: Path) -> str:
    """A hook command that keeps each run's stdin in its own file (whole when it appears)."""
    directory.mkdir(exist_ok=True)
    return f'f=$(mktemp -p {directory}); cat > $f; mv $f $f.json'


def collected(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in directory.glob("*.json")]


def test_what_happens_while_nothing_runs_is_handled_at_the_next_sync_once_exactly_once(tmp_path):
    hooks_out = tmp_path / "status-hook"
    desk = Desk(tmp_path, f'[[hook]]\non = "status_changed"\ncommand = "{collect(hooks_out)}"\n')
    deliver(desk.inbox, mail("Where is my parcel?", "q1@example.com"))
    desk.run("sync", "--once")
    desk.run("reply", "jane@example.com", "-m", "It left our warehouse today.")
    desk.run("sync", "--once")
    assert len(desk.sent_mails()) == 1

    # nothing runs now: the agent closes the case from the command line
    desk.run("status", "jane@example.com", "done")
    assert len(desk.sent_mails()) == 1 and collected(hooks_out) == []

    desk.run("sync", "--once")
    first, survey = desk.sent_mails()
    survey = email.message_from_bytes(survey.as_bytes(), policy=email.policy.default)
    assert "How did we do?" in survey.get_body(("plain",)).get_content()
    # in the customer's thread: their subject, answering their mail
    assert survey["Subject"] == "Re: Parcel 1234" and "q1@example.com" in survey["References"]
    [hook] = collected(hooks_out)
    assert hook["event"] == "status_changed" and hook["event_data"]["data"]["new"] == "done"
    assert hook["customer"]["name"] == "Jane Doe"
    s = desk.store()
    [ev] = s.events(kind="survey")
    assert ev.actor == "satisfaction" and not [e for e in s.events(kind="reply") if e.actor != "ann"]
    s.close()

    # nothing twice
    desk.run("sync", "--once")
    assert len(desk.sent_mails()) == 2 and len(collected(hooks_out)) == 1

    # the answer: "5" above the quoted question, the way every mail client replies
    quoted = "\n".join("> " + line for line in survey.get_body(("plain",)).get_content().splitlines())
    on = f"On {survey['Date']}, support@shop.test wrote:"
    deliver(desk.inbox, mail(f"5\n\n{on}\n{quoted}\n", "a1@example.com", subject=survey["Subject"],
                             irt=survey["Message-ID"].strip("<>")))
    desk.run("sync", "--once")
    s = desk.store()
    [rating] = s.events(kind="satisfaction")
    assert rating.data["score"] == 5
    assert s.customer(rating.customer_id).status == "done" and s.queue_count("waiting") == 0
    s.close()
    stats = json.loads(desk.run("--json", "stats", "--since", "1d").stdout)
    assert stats["channels"]["email"]["ratings"] == 1
    events = desk.run("events").stdout
    assert "asked how satisfied they are" in events and "rated 5 of 5: '5'" in events


def test_events_older_than_skip_older_than_are_skipped_with_a_note(tmp_path):
    hooks_out = tmp_path / "status-hook"
    desk = Desk(tmp_path, f'[automation]\nskip_older_than = "1h"\n'
                          f'[[hook]]\non = "status_changed"\ncommand = "{collect(hooks_out)}"\n')
    deliver(desk.inbox, mail("Where is my parcel?", "q1@example.com"))
    desk.run("sync", "--once")
    desk.run("reply", "jane@example.com", "-m", "It left today.")
    desk.run("status", "jane@example.com", "done")
    s = desk.store()  # the status was set two hours ago, and nothing ran since
    s.conn.execute("UPDATE events SET at = at - 7200 WHERE kind = 'status'")
    s.close()
    desk.run("sync", "--once")
    assert collected(hooks_out) == [] and len(desk.sent_mails()) == 1  # the reply, no survey
    s = desk.store()
    [note] = s.events(kind="skipped")
    assert note.data["counts"] == {"status": 1} and "older than 1h" in note.data["note"]
    s.close()


SLOW = 'echo start >> {log}; while [ ! -e {release} ]; do sleep 0.05; done; echo end >> {log}'


def test_a_hanging_hook_delays_only_itself_and_sigterm_stops_sync_at_once(tmp_path):
    fast_out, slow_log, release = tmp_path / "fast", tmp_path / "slow.log", tmp_path / "release"
    desk = Desk(tmp_path, f"""
[[hook]]
name = "slow"
on = "message_received"
command = "{SLOW.format(log=slow_log, release=release)}"
timeout = 120
[[hook]]
name = "fast"
on = "message_received"
command = "{collect(fast_out)}"
""")
    sync = desk.start_sync()
    try:
        deliver(desk.inbox, mail("first question", "m1@example.com"))
        wait_until(lambda: slow_log.exists() and len(collected(fast_out)) == 1, 30, what="both hooks started")
        deliver(desk.inbox, mail("second question", "m2@example.com"))
        # the fast hook ran for the second message while the slow one still hangs on the first
        wait_until(lambda: len(collected(fast_out)) == 2, 30, what="the fast hook for the second message")
        assert slow_log.read_text() == "start\n"
        assert sorted(r["message"]["text"].strip() for r in collected(fast_out)) == ["first question",
                                                                                       "second question"]
        # the slow hook's second run waits in its own queue, visibly
        listing = desk.run("hooks").stdout
        assert "[slow]: running 1" in listing and "1 queued" in listing, listing
        assert "[fast]: idle" in listing
        log = (tmp_path / "hooks.log").read_text()
        assert "[slow] started" in log and "[fast] ok in" in log
        assert "[slow] queued (1 ahead of it, one running for" in log  # told at once, not an hour later

        started = time.monotonic()
        sync.send_signal(signal.SIGTERM)
        out, err = sync.communicate(timeout=30)
        print(f"sync stopped {time.monotonic() - started:.2f}s after SIGTERM with a hook running")
        assert sync.returncode == 0, err
    finally:
        if sync.poll() is None:
            os.killpg(sync.pid, signal.SIGKILL)
    assert slow_log.read_text() == "start\n"  # killed in its grace, not waited for
    log = (tmp_path / "hooks.log").read_text()
    assert "[slow] stopped" in log and "queued again" in log
    s = desk.store()
    assert s.hook_queue()["slow"]["queued"] == 2  # nothing lost: the cut-off run and the waiting one
    s.close()

    # the next start runs them, each once
    release.touch()
    desk.run("sync", "--once")
    assert slow_log.read_text().count("end") == 2
    s = desk.store()
    assert s.hook_queue() == {}
    s.close()
