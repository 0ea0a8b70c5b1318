"""The built-in demo: every channel working, no accounts needed.

A throwaway directory holds the store, the config, a Maildir and attachments.
Loopback Telegram and Slack servers and a local SMTP server stand in for the
real services; the real connector code talks to them. A simulator plays the
customers: it writes in over time and sometimes answers the replies it gets.
Everything is stopped and deleted on exit.
"""
from __future__ import annotations

import json
import mailbox
import os
import random
import shlex
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from connectors import config as config_mod
from connectors.sandbox.slack import SlackSandbox
from connectors.sandbox.telegram import TelegramSandbox

def cli_hint(db_path: Path) -> str:
    """How to point the CLI at the demo's store, to paste into another terminal."""
    return f"OMNIDESK_DB={shlex.quote(str(db_path))} omnidesk queue"


def banner(db_path: Path, config_path: Path | None = None, command: str = "omnidesk") -> str:
    """The console's banner in the demo: what this is, and the CLI line for another terminal
    (the README's tour says to try the CLI on it while the demo runs). With the config too,
    the CLI acts as the demo's agent (undo works across both) and finds its templates.
    Three lines that fit 80 columns; the export is split with a backslash, so the two lines
    copied together are one shell command. `command`: how this omnidesk runs from another
    shell (its full path when it is not on PATH)."""
    if config_path is None:
        return f"DEMO: simulated customers, nothing leaves this machine · CLI: {cli_hint(db_path)}"
    last = f"OMNIDESK_CONFIG={shlex.quote(str(config_path))}"
    if len(last) + len(command) + 8 <= 80:  # the command too, when it fits (a long TMPDIR: it does not)
        last += f"; {command} queue"
    return ("DEMO: simulated customers, nothing leaves this machine. In another terminal:\n"
            f"export OMNIDESK_DB={shlex.quote(str(db_path))} \\\n{last}")


SHOP = ("Teapot Shop", "support@teapot-shop.example")
TOKEN_ENV = {"telegram": "OMNIDESK_DEMO_TELEGRAM_TOKEN", "slack": "OMNIDESK_DEMO_SLACK_TOKEN",
             "slack_app": "OMNIDESK_DEMO_SLACK_APP_TOKEN"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _SmtpHandler:
    def __init__(self, on_message):
        self.on_message = on_message

    async def handle_DATA(self, server, session, envelope):
        self.on_message(list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        return "250 OK"


@dataclass
class Customer:
    key: str
    name: str
    email: str | None = None
    telegram: dict | None = None  # sandbox user
    slack: dict | None = None  # sandbox user
    slack_dm: str | None = None
    thanks: str = "Thank you!"
    answered: int = 0
    last_subject: str = ""
    last_message_id: str | None = None


@dataclass
class Step:
    at: float  # seconds after start (before --speed)
    customer: str
    channel: str
    text: str
    subject: str | None = None
    attachment: tuple[str, str, bytes] | None = None  # (filename, mimetype, data)
    unless_answered: bool = False  # an impatient follow-up only if still unanswered
    phone: str | None = None  # a shared Telegram contact


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
PHOTO = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + b"\x08" * 64 + b"\xff\xd9"


def script() -> tuple[list[Customer], list[Step]]:
    tg = TelegramSandbox.user
    customers = [
        Customer("jane", "Jane Roe", email="jane.roe@example.com", telegram=tg(5001, "Jane", "Roe", "janeroe"),
                 thanks="Thank you so much! 🙏"),
        Customer("bob", "Bob Li", email="bob@lifamily.example", thanks="Got it, thanks."),
        Customer("priya", "Priya Nair", email="priya@acme.example", thanks="Perfect, we'll order tomorrow."),
        Customer("marco", "Marco Rossi", thanks="Grazie mille!"),
        Customer("aiko", "Aiko Tanaka", telegram=tg(5002, "Aiko", "Tanaka", "aiko_t"), thanks="👍"),
        Customer("sam", "Sam O'Neil", email="sam@oneil.example", thanks="Cheers."),
    ]
    steps = [
        Step(1, "jane", "telegram", "Hi! My order #1042 arrived today but the teapot is cracked 😞"),
        Step(3, "jane", "telegram", "Here's a photo of the damage", attachment=("crack.jpg", "image/jpeg", PHOTO)),
        Step(5, "bob", "email", "Hello,\n\ncould you send me the invoice for order #1039? Our accounts need it.\n\n"
             "Thanks,\nBob", subject="Invoice for order #1039", attachment=("order-1039.pdf", "application/pdf", PDF)),
        Step(8, "priya", "email", "Hi there,\n\nwe'd like 40 of the blue mugs for our office. Is there a bulk "
             "discount?\n\nBest,\nPriya Nair\nAcme Ltd", subject="Bulk order: 40 mugs"),
        Step(14, "priya", "slack", "Hi, it's Priya from Acme. Did you see my e-mail about the mugs?"),
        Step(20, "marco", "slack", "Ciao! Do you ship to Italy? And how long does it take?"),
        Step(26, "aiko", "telegram", "Can I change the colour of my order #1051 to *blue*?"),
        Step(28, "aiko", "telegram", "", phone="+81 90 1234 5678"),
        Step(40, "jane", "email", "Hello,\n\nI wrote to you on Telegram about order #1042 (the cracked teapot). "
             "Is a replacement possible?\n\nJane", subject="Order #1042 - cracked teapot"),
        Step(60, "bob", "email", "Hello?? Still waiting for that invoice.", subject="Re: Invoice for order #1039",
             unless_answered=True),
        Step(90, "sam", "email", "Do you sell gift cards? <b>Asking</b> for a friend [bold]really[/bold].",
             subject="Gift cards?"),
    ]
    return customers, steps


class DemoWorld:
    """The servers, files and simulator of one demo run."""

    def __init__(self, speed: float = 1.0, root: Path | None = None):
        self.speed = max(speed, 0.01)
        self.root = Path(root or tempfile.mkdtemp(prefix="omnidesk-demo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "omnidesk.db"
        self.config_path = self.root / "config.toml"
        self.maildir = self.root / "Maildir"
        self.telegram = TelegramSandbox()
        self.slack = SlackSandbox()
        self.smtp_port = free_port()
        self.smtp = None
        self.stop_event = threading.Event()
        self.customers, self.steps = script()
        self.by_key = {c.key: c for c in self.customers}
        self.lock = threading.Lock()
        self.replies: list[tuple[str, str]] = []  # (customer key, channel) of replies that reached a customer
        self.log: list[str] = []  # what the simulator did, for tests and the curious
        self._threads: list[threading.Thread] = []
        self._seen = {"telegram": 0, "slack": 0}

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "DemoWorld":
        from aiosmtpd.controller import Controller

        mailbox.Maildir(self.maildir, create=True)
        self.telegram.start()
        self.slack.start()
        self.smtp = Controller(_SmtpHandler(self._mail_received), hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()
        for c in self.customers:
            if c.key in ("priya", "marco"):
                handle = c.name.split()[0].lower()
                c.slack = self.slack.user(f"U0{c.key.upper()}", handle, c.name, email=c.email)
                c.slack_dm = self.slack.dm(c.slack)
        os.environ[TOKEN_ENV["telegram"]] = self.telegram.token
        os.environ[TOKEN_ENV["slack"]] = self.slack.bot_token
        os.environ[TOKEN_ENV["slack_app"]] = self.slack.app_token
        self.config_path.write_text(self.config_text())
        from connectors.desk.templates import install_starter_templates

        install_starter_templates(self.root / "templates")  # the console and the CLI see the same set
        from connectors.desk.rules import STARTER_FACTS

        (self.root / "rules.toml").write_text(STARTER_FACTS)  # facts (order numbers ...) are captured as they come
        for target in (self._play, self._answer_back):
            t = threading.Thread(target=target, name=f"demo {target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(5)
        for server in (self.telegram, self.slack):
            try:
                server.stop()
            except Exception:
                pass
        if self.smtp is not None:
            try:
                self.smtp.stop()
            except Exception:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def config_text(self) -> str:
        # json.dumps gives valid TOML basic strings; shlex.quote keeps paths with spaces whole
        q = json.dumps
        sendmail = shlex.join([sys.executable, "-m", "console.demo_sendmail", f"127.0.0.1:{self.smtp_port}"])
        return f"""# The demo's config: loopback servers only.
[agent]
name = "Alex Morgan"  # a named agent: templates say "I'm Alex", never "I'm you"

[sync]
poll_interval = 1.0
lease_seconds = 10.0

[attachments]
save_dir = {q(str(self.root / 'saved'))}

[email.demo]
backend = "maildir"
maildir = {q(str(self.maildir))}
from_address = "{SHOP[1]}"
from_name = "{SHOP[0]}"
sent_folder = ""
sendmail_command = {q(sendmail)}

[telegram.demo]
token_env = "{TOKEN_ENV['telegram']}"
base_url = {q(self.telegram.base_url)}
base_file_url = {q(self.telegram.base_file_url)}
long_poll_seconds = 1

[slack.demo]
token_env = "{TOKEN_ENV['slack']}"
app_token_env = "{TOKEN_ENV['slack_app']}"
base_url = {q(self.slack.api_url)}
"""

    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    # -- the customers write ---------------------------------------------------------
    def _play(self) -> None:
        start = time.monotonic()
        for step in self.steps:
            delay = start + step.at / self.speed - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return
            c = self.by_key[step.customer]
            if step.unless_answered and c.answered:
                continue
            self.write(c, step.channel, step.text, subject=step.subject, attachment=step.attachment, phone=step.phone)
        # afterwards, a new customer now and then keeps the queue alive
        rng = random.Random(7)
        n = 0
        while not self.stop_event.wait(rng.uniform(40, 80) / self.speed):
            n += 1
            first = rng.choice(["Lena", "Omar", "Yuki", "Noah", "Zoe", "Ivan", "Mia", "Raj"])
            channel = rng.choice(["telegram", "email", "slack"])
            c = Customer(f"extra{n}", f"{first} {rng.choice(['Berg', 'Haddad', 'Sato', 'Costa', 'Meyer'])}",
                         email=f"{first.lower()}{n}@mail.example")
            if channel == "telegram":
                c.telegram = TelegramSandbox.user(6000 + n, first, username=f"{first.lower()}{n}")
            elif channel == "slack":
                c.slack = self.slack.user(f"U1X{n:04d}", f"{first.lower()}{n}", c.name, email=c.email)
                c.slack_dm = self.slack.dm(c.slack)
            with self.lock:
                self.customers.append(c)
                self.by_key[c.key] = c
            self.write(c, channel, rng.choice([
                "Hi, where is my parcel? It's been a week.", "Do you have the large teapot back in stock?",
                "Can I return a mug I bought as a gift?", "Is the shop open on Sunday?"]),
                subject="Question")

    def write(self, c: Customer, channel: str, text: str, *, subject: str | None = None,
              attachment: tuple[str, str, bytes] | None = None, phone: str | None = None,
              in_reply_to: str | None = None) -> None:
        if channel == "telegram":
            if phone:
                self.telegram.share_contact(c.telegram, phone)
            elif attachment and attachment[1].startswith("image/"):
                self.telegram.send_photo(c.telegram, attachment[2], caption=text)
            elif attachment:
                self.telegram.send_document(c.telegram, attachment[2], attachment[0], attachment[1], caption=text)
            else:
                self.telegram.send_text(c.telegram, text)
        elif channel == "slack":
            files = [attachment] if attachment else ()
            self.slack.post(c.slack, c.slack_dm, text, files=files)
        else:
            self._deliver_mail(c, text, subject or c.last_subject or "Hello", attachment, in_reply_to)
        self.log.append(f"{c.key} wrote on {channel}")

    def _deliver_mail(self, c: Customer, text: str, subject: str, attachment, in_reply_to: str | None) -> None:
        msg = EmailMessage()
        msg["From"] = f"{c.name} <{c.email}>"
        msg["To"] = f"{SHOP[0]} <{SHOP[1]}>"
        msg["Subject"] = subject
        msg["Date"] = format_datetime(__import__("datetime").datetime.now().astimezone())
        msg["Message-ID"] = make_msgid(domain=c.email.split("@")[1])
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = in_reply_to
        msg.set_content(text)
        if attachment:
            maintype, subtype = attachment[1].split("/", 1)
            msg.add_attachment(attachment[2], maintype=maintype, subtype=subtype, filename=attachment[0])
        c.last_subject = subject
        box = mailbox.Maildir(self.maildir, create=False)
        box.add(mailbox.MaildirMessage(msg))

    # -- replies reach the customers, who sometimes answer ----------------------------------
    def _mail_received(self, rcpts: list[str], raw: bytes) -> None:
        from email import message_from_bytes

        msg = message_from_bytes(raw)
        for rcpt in rcpts:
            for c in list(self.customers):
                if c.email and c.email.lower() == parseaddr(rcpt)[1].lower():
                    c.last_message_id = msg.get("Message-ID")
                    c.last_subject = msg.get("Subject", c.last_subject)
                    self._replied(c, "email")

    def _replied(self, c: Customer, channel: str) -> None:
        with self.lock:
            c.answered += 1
            self.replies.append((c.key, channel))
            first = c.answered == 1
        self.log.append(f"{c.key} got a reply on {channel}")
        if first:  # answer back once, on the channel the reply came by
            t = threading.Timer(4 / self.speed, self._thank, (c, channel))
            t.daemon = True
            t.start()
            self._threads.append(t)

    def _thank(self, c: Customer, channel: str) -> None:
        if self.stop_event.is_set():
            return
        if channel == "email":
            subject = c.last_subject if c.last_subject.lower().startswith("re:") else f"Re: {c.last_subject}"
            self.write(c, "email", c.thanks, subject=subject, in_reply_to=c.last_message_id)
        else:
            self.write(c, channel, c.thanks)

    def _answer_back(self) -> None:
        """Watch what the bot sent on Telegram and Slack."""
        while not self.stop_event.wait(0.2):
            for channel, sent in (("telegram", self.telegram.sent), ("slack", self.slack.sent)):
                new = sent[self._seen[channel]:]
                self._seen[channel] += len(new)
                for item in new:
                    c = self._customer_for(channel, item)
                    if c is not None:
                        self._replied(c, channel)

    def _customer_for(self, channel: str, item: dict) -> Customer | None:
        for c in list(self.customers):
            if channel == "telegram" and c.telegram and str(item.get("chat_id")) == str(c.telegram["id"]):
                return c
            if channel == "slack" and c.slack_dm and item.get("channel") == c.slack_dm:
                return c
        return None
