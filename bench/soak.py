"""Soak: nothing lost, nothing sent twice, under faults, for N seconds.

All three channels run on loopback servers (the Telegram and Slack sandboxes,
Dovecot for IMAP and aiosmtpd for SMTP) driven by the real connectors inside a
real `omnidesk sync` process. Simulated customers write on every channel and an
agent queues replies (some long enough to go out in several parts) while faults
are injected: 429 with Retry-After, 5xx, answers slower than the client's
timeout, dropped connections, servers restarted, the SMTP server answering late,
`omnidesk sync` killed with SIGKILL at random moments, and the store's write
lock held by another process now and then (for over a minute in long runs;
scaled down for short ones).

Then the faults stop, the engine drains, and the soak counts per channel:
inbound sent / stored / lost / doubled; replies queued / delivered / delivered
twice / marked "may have been delivered" / failed / still queued; and whether
every engine thread of the running sync is alive. The last line:

    soak: lost 0 · doubled 0 · unmarked double replies 0 · threads alive 5/5

The exit status is 1 when the target is missed (anything lost or doubled, a
reply delivered twice without being marked uncertain, a thread not alive).

    python bench/soak.py --seconds 60 [--seed 1] [-v]
"""
from __future__ import annotations

import argparse
import collections
import email.policy
import email.utils
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from email import message_from_bytes
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.sandbox.slack import SlackSandbox  # noqa: E402
from connectors.sandbox.telegram import TelegramSandbox  # noqa: E402
from store import Store  # noqa: E402
from tests.support.dovecot import DOVECOT, Dovecot  # noqa: E402
from tests.support.smtp import SmtpSink  # noqa: E402

CLIENT_TIMEOUT = 2  # seconds each channel client waits for an answer
SLOW = CLIENT_TIMEOUT + 1.5  # a "slow" answer comes this late
CHANNELS = ("telegram", "slack", "email")
INBOUND = re.compile(r"soak-(telegram|slack|email)-(\d+)\b")
PART = re.compile(r"\bR(\d+)\.(\d+)\b")  # a marker at the start of each paragraph of a reply


class Soak:
    def __init__(self, seconds: float, seed: int, verbose: bool):
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.verbose = verbose
        self.stop = threading.Event()  # stops customers, agent and faults
        self.root = Path(tempfile.mkdtemp(prefix="omnidesk-soak-"))
        self.db = self.root / "omnidesk.db"
        self.sent: dict[str, int] = collections.Counter()  # inbound written by customers, per channel
        self.replies: dict[int, tuple[str, int]] = {}  # reply number -> (channel, paragraphs)
        self.reply_ids: dict[int, int] = {}  # reply number -> message id
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.proc_started = 0.0
        self.kills = 0
        self.locks_held = 0
        self.faults = collections.Counter()
        # a lock held for over a minute in long runs; a tenth of a short run
        self.lock_seconds = 65.0 if seconds >= 600 else max(3.0, seconds / 10)

    def log(self, text: str) -> None:
        if self.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- the world ------------------------------------------------------------------------
    def start_servers(self) -> None:
        self.tg = TelegramSandbox().start()
        self.slack = SlackSandbox().start()
        self.dovecot = Dovecot({"support": "soak-pw"})
        self.dovecot.start()
        self.smtp = SmtpSink()
        self.smtp.start()
        self.tg_users = [self.tg.user(9000 + i, f"Tg{i}") for i in range(8)]
        self.slack_users = [self.slack.user(f"U9{i:04d}", f"sl{i}", f"Slack Customer {i}") for i in range(8)]
        self.slack_dms = [self.slack.dm(u) for u in self.slack_users]
        cfg = self.root / "config.toml"
        cfg.write_text(f"""[agent]
name = "soak"
[store]
busy_timeout = 2
[sync]
poll_interval = 1
lease_seconds = 3
max_attempts = 8
[telegram.shop]
token_env = "SOAK_TG_TOKEN"
base_url = "{self.tg.base_url}"
base_file_url = "{self.tg.base_file_url}"
long_poll_seconds = 1
timeout = {CLIENT_TIMEOUT}
[slack.team]
token_env = "SOAK_SLACK_TOKEN"
base_url = "{self.slack.api_url}"
poll_seconds = 0.5
calls_per_minute = 100000
timeout = {CLIENT_TIMEOUT}
[email.support]
imap_host = "127.0.0.1"
imap_port = {self.dovecot.port}
imap_security = "plain"
username = "support"
password_env = "SOAK_MAIL_PW"
from_address = "support@shop.test"
sent_folder = ""
backlog_days = 0
timeout = {CLIENT_TIMEOUT}
smtp_host = "127.0.0.1"
smtp_port = {self.smtp.port}
smtp_security = "plain"
smtp_username = "-"
""")
        self.config = cfg
        self.env = {**os.environ, "SOAK_TG_TOKEN": self.tg.token, "SOAK_SLACK_TOKEN": self.slack.bot_token,
                    "SOAK_MAIL_PW": "soak-pw"}

    def stop_servers(self) -> None:
        for server in (self.tg, self.slack, self.smtp):
            try:
                server.stop()
            except Exception:  # already down after a restart fault
                pass
        self.dovecot.cleanup()

    # -- omnidesk sync, killed now and then ----------------------------------------------------
    def start_sync(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "--db", str(self.db), "--config", str(self.config), "sync"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.root / "sync.log", "ab"))
        self.proc_started = time.time()

    def killer(self) -> None:
        while not self.stop.wait(self.rng.uniform(4, 15)):
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
            self.log("sync killed (SIGKILL); restarted")
            self.start_sync()

    # -- customers and the agent ---------------------------------------------------------------
    def customer(self, channel: str) -> None:
        n = 0
        while not self.stop.wait(self.rng.uniform(0.2, 1.0)):
            text = f"soak-{channel}-{n} where is my order?"
            try:
                if channel == "telegram":
                    self.tg.send_text(self.rng.choice(self.tg_users), text)
                elif channel == "slack":
                    i = self.rng.randrange(len(self.slack_users))
                    self.slack.post(self.slack_users[i], self.slack_dms[i], text)
                else:
                    who = self.rng.randrange(8)
                    raw = (f"From: Mail Customer {who} <cust{who}@example.com>\r\nTo: support@shop.test\r\n"
                           f"Subject: order {n}\r\nMessage-ID: <soak-{n}-{time.time_ns()}@example.com>\r\n"
                           f"Date: {email.utils.formatdate()}\r\n\r\n{text}\r\n").encode()
                    self.dovecot.deliver("support", raw)
            except Exception as e:  # the server is restarting: this message was not sent; try again
                self.log(f"customer on {channel}: {type(e).__name__}")
                continue
            with self.lock:
                self.sent[channel] += 1
            n += 1

    def agent(self) -> None:
        s = Store(self.db, busy_seconds=600)  # waits out the held lock
        n = 0
        try:
            while not self.stop.wait(self.rng.uniform(0.3, 1.2)):
                try:
                    customers = s.queue(filter="all", limit=200)
                except sqlite3.Error:
                    continue
                if not customers:
                    continue
                row = self.rng.choice(customers)
                channel = row.last_channel or row.channels[0]
                long = channel != "email" and self.rng.random() < 0.25
                paragraphs = 5 if long else 1
                filler = "thanks for waiting " * (110 if long else 2)
                text = "\n\n".join(f"R{n}.{k} {filler}" for k in range(paragraphs))
                try:
                    mid = s.queue_reply(row.customer_id, text, "soak", channel=channel)
                except Exception as e:
                    self.log(f"agent: {type(e).__name__}: {e}")
                    continue
                with self.lock:
                    self.replies[n] = (channel, paragraphs)
                    self.reply_ids[n] = mid
                n += 1
        finally:
            s.close()

    # -- faults ---------------------------------------------------------------------------------
    def faults_loop(self) -> None:
        kinds = ["429", "5xx", "slow", "drop", "restart", "smtp-slow", "smtp-restart", "imap-restart"]
        while not self.stop.wait(self.rng.uniform(1.0, 3.0)):
            kind = self.rng.choice(kinds)
            self.faults[kind] += 1
            server = self.rng.choice([self.tg, self.slack])
            method = self.rng.choice([None, "sendMessage", "getUpdates"] if server is self.tg
                                     else [None, "chat.postMessage", "conversations.history"])
            try:
                if kind == "429":
                    server.fail(429, method=method, retry_after=self.rng.choice([1, 2, 5]), times=2)
                elif kind == "5xx":
                    server.fail(self.rng.choice([500, 502, 503]), method=method, times=2)
                elif kind in ("slow", "drop"):
                    server.fail(method=method, after=kind, delay=SLOW)
                elif kind == "restart":
                    server.stop()
                    self.stop.wait(self.rng.uniform(0.5, 3))
                    server.start()
                elif kind == "smtp-slow":
                    self.smtp.answer_delay = SLOW
                    self.stop.wait(self.rng.uniform(2, 6))
                    self.smtp.answer_delay = 0
                elif kind == "smtp-restart":
                    self.smtp.restart()
                elif kind == "imap-restart":
                    self.dovecot.stop()
                    self.stop.wait(self.rng.uniform(0.5, 3))
                    self.dovecot.start()
            except Exception as e:
                self.log(f"fault {kind}: {type(e).__name__}: {e}")
            self.log(f"fault: {kind}")

    def locker(self) -> None:
        """Another process holds the store's write lock now and then."""
        every = max(self.lock_seconds * 3, min(300.0, self.seconds / 3))
        while not self.stop.wait(self.rng.uniform(every / 2, every)):
            conn = sqlite3.connect(self.db, isolation_level=None, timeout=60)
            try:
                conn.execute("BEGIN IMMEDIATE")
                self.locks_held += 1
                self.log(f"store write lock held for {self.lock_seconds:.0f}s")
                self.stop.wait(self.lock_seconds)
                conn.execute("ROLLBACK")
            except sqlite3.Error as e:
                self.log(f"locker: {e}")
            finally:
                conn.close()

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> int:
        self.start_servers()
        Store(self.db).close()
        self.start_sync()
        threads = [threading.Thread(target=self.customer, args=(c,), daemon=True) for c in CHANNELS]
        threads += [threading.Thread(target=f, daemon=True) for f in (self.agent, self.faults_loop, self.killer,
                                                                        self.locker)]
        for t in threads:
            t.start()
        try:
            time.sleep(self.seconds)
        finally:
            self.stop.set()
            for t in threads:
                t.join(120)
        self.smtp.answer_delay = 0
        self.drain()
        report = self.report()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stop_servers()
        if report == 0:  # a missed target keeps the store and sync.log for a look
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"soak: kept {self.root} (the store and sync.log)")
        return report

    def drain(self, timeout: float = 180.0) -> None:
        """No more faults: wait until every inbound message is stored and the outbox is idle."""
        for server in (self.tg, self.slack):
            with server.lock:
                server.faults.clear()
        if self.proc.poll() is not None:
            self.start_sync()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stored = self.inbound()
            busy = self.outbox_busy()
            if all(len(stored[c][0]) >= self.sent[c] for c in CHANNELS) and not busy and self.alive_row():
                return
            time.sleep(1)
        self.log("drain timed out")

    def inbound(self) -> dict[str, tuple[set, int]]:
        """Per channel: (distinct soak messages stored, rows)."""
        out = {c: (set(), 0) for c in CHANNELS}
        s = Store(self.db)
        try:
            for (text,) in s.q("SELECT text FROM messages WHERE direction='in'"):
                m = INBOUND.search(text or "")
                if m:
                    seen, rows = out[m.group(1)]
                    seen.add(int(m.group(2)))
                    out[m.group(1)] = (seen, rows + 1)
        finally:
            s.close()
        return out

    def outbox_busy(self) -> int:
        s = Store(self.db)
        try:
            return s.q1("SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")[0]
        finally:
            s.close()

    def alive_row(self) -> tuple[int, int] | None:
        """(alive, total) threads as the running sync last wrote them, if it wrote since it started."""
        s = Store(self.db)
        try:
            row = s.health().get("sync")
        finally:
            s.close()
        if not row or row["updated_at"] < self.proc_started:
            return None
        m = re.match(r"(\d+)/(\d+) threads alive", row["detail"])
        return (int(m.group(1)), int(m.group(2))) if m else None

    def delivered(self) -> dict[str, collections.Counter]:
        """Per channel, how often each reply paragraph marker arrived."""
        texts = {"telegram": [x.get("text") or "" for x in self.tg.sent],
                 "slack": [x.get("text") or "" for x in self.slack.sent],
                 "email": []}
        for m in self.smtp.messages:
            msg = message_from_bytes(m.data, policy=email.policy.default)
            body = msg.get_body(("plain",))
            texts["email"].append(body.get_content() if body else "")
        out = {}
        for channel, items in texts.items():
            counter = collections.Counter()
            for text in items:
                counter.update((int(a), int(b)) for a, b in PART.findall(text))
            out[channel] = counter
        return out

    def report(self) -> int:
        stored = self.inbound()
        arrived = self.delivered()
        s = Store(self.db)
        try:
            rows = {r["message_id"]: r for r in s.q("SELECT message_id, state, uncertain FROM outbox")}
        finally:
            s.close()
        lost_total = doubled_total = unmarked_total = 0
        print(f"soak: {self.seconds:.0f}s · sync killed {self.kills}x · store lock held {self.locks_held}x "
              f"for {self.lock_seconds:.0f}s · faults: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())))
        for channel in CHANNELS:
            seen, nrows = stored[channel]
            sent = self.sent[channel]
            lost = len(set(range(sent)) - seen)
            doubled = nrows - len(seen)
            lost_total += lost
            doubled_total += doubled
            queued = delivered = twice = maybe = failed = waiting = partial = unmarked = 0
            for n, (ch, paragraphs) in self.replies.items():
                if ch != channel:
                    continue
                queued += 1
                counts = [arrived[channel][(n, k)] for k in range(paragraphs)]
                row = rows.get(self.reply_ids[n])
                uncertain = bool(row and row["uncertain"])
                state = row["state"] if row else "?"
                maybe += uncertain
                failed += state == "failed" and not uncertain
                waiting += state in ("queued", "sending")
                if all(c >= 1 for c in counts):
                    delivered += 1
                elif any(counts):
                    partial += 1
                if any(c > 1 for c in counts):
                    twice += 1
                    unmarked += not uncertain
            unmarked_total += unmarked
            print(f"  {channel:8} inbound: sent {sent}, stored {len(seen)}, lost {lost}, doubled {doubled}"
                  f" | replies: queued {queued}, delivered {delivered}, delivered twice {twice},"
                  f" marked 'may have been delivered' {maybe}, failed {failed}, partly delivered {partial},"
                  f" still queued {waiting}")
        alive = self.alive_row() or (0, 5)
        ok = lost_total == 0 and doubled_total == 0 and unmarked_total == 0 and alive[0] == alive[1]
        print(f"soak: lost {lost_total} · doubled {doubled_total} · unmarked double replies {unmarked_total}"
              f" · threads alive {alive[0]}/{alive[1]}")
        return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long faults are injected (default 60)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every fault as it happens")
    args = ap.parse_args()
    if not (args.seconds > 0 and args.seconds < 7 * 86400):  # nan and inf are refused too
        ap.error("--seconds: expected a number of seconds between 0 and a week")
    if not os.path.exists(DOVECOT):
        print(f"soak: {DOVECOT} is missing (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: seed {seed}", flush=True)
    return Soak(args.seconds, seed, args.verbose).run()


if __name__ == "__main__":
    sys.exit(main())
