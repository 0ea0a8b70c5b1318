"""First-run setup as a newcomer met it (trial 1, finding 16): `omnidesk init` on a real
terminal shows its guesses and offers the Maildir backend; `doctor` says exactly what to
do about an unset password variable; the keymap init writes says what it is."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
import tomllib

from tests.support.cli import OMNIDESK


class Terminal:
    """The installed `omnidesk ARGS` on a pseudo-terminal, answered prompt by prompt."""

    def __init__(self, tmp_path, *args):
        master, slave = pty.openpty()
        env = {**os.environ, "OMNIDESK_CONFIG": str(tmp_path / "cfg" / "config.toml"),
               "OMNIDESK_DB": str(tmp_path / "o.db"), "TERM": "dumb"}
        self.proc = subprocess.Popen([str(OMNIDESK), *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                                     close_fds=True)
        os.close(slave)
        self.master, self.seen = master, ""

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until `text` has appeared (after what earlier calls consumed); the screen so far."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"never saw {text!r}; saw:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode("utf-8", "replace").replace("\r", "")
                except OSError:
                    break
        assert text in self.seen, self.seen
        head, _, self.seen = self.seen.partition(text)
        return head + text

    def answer(self, prompt: str, reply: str) -> str:
        """Wait for `prompt`, type `reply` and enter; what was shown since the last answer."""
        shown = self.expect(prompt)
        shown += self.expect(": ")  # the prompt's end (after its [default])
        os.write(self.master, reply.encode() + b"\n")
        return shown

    def finish(self) -> str:
        rest = ""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk.decode("utf-8", "replace")
        os.close(self.master)
        assert self.proc.wait(timeout=60) == 0, self.seen + rest
        return self.seen + rest


def config(tmp_path) -> dict:
    return tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())


def test_init_shows_the_guessed_servers_to_confirm_or_change(tmp_path):
    term = Terminal(tmp_path, "init")
    term.answer("Your name", "Sam Baker")
    term.answer("Set up e-mail?", "y")
    term.answer("E-mail address", "sales@bakers-teas.example")
    menu = term.answer("Choose 1 or 2", "1")
    assert "IMAP server" in menu and "Maildir" in menu  # the backends that exist
    imap = term.answer("IMAP server", "mail.bakers-teas.example")
    assert "[imap.bakers-teas.example]" in imap  # the guess, shown as the default
    smtp = term.answer("SMTP server", "")  # enter keeps the guess
    assert "[smtp.bakers-teas.example]" in smtp
    term.answer("Set up Telegram?", "n")
    term.answer("Set up Slack?", "n")
    out = term.finish()
    email = config(tmp_path)["email"]["main"]
    assert (email["imap_host"], email["smtp_host"]) == ("mail.bakers-teas.example", "smtp.bakers-teas.example")
    assert "export OMNIDESK_EMAIL_PASSWORD=" in out


def test_init_offers_a_maildir_and_doctor_finds_it(tmp_path):
    mail = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True)
    term = Terminal(tmp_path, "init", "--name", "Sam")
    term.answer("Set up e-mail?", "y")
    term.answer("E-mail address", "sales@bakers-teas.example")
    term.answer("Choose 1 or 2", "2")
    term.answer("Maildir folder", str(mail))
    command = term.answer("Command that sends a mail", "")
    assert re.search(r"\[(msmtp -t|sendmail -t -oi)\]", command)
    term.answer("Set up Telegram?", "n")
    term.answer("Set up Slack?", "n")
    out = term.finish()
    email = config(tmp_path)["email"]["main"]
    assert email["backend"] == "maildir" and email["maildir"] == str(mail) and "password_env" not in email
    assert "OMNIDESK_EMAIL_PASSWORD" not in out  # a Maildir needs no password
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "OMNIDESK_CONFIG": str(tmp_path / "cfg" / "config.toml"), "OMNIDESK_DB": str(tmp_path / "o.db"),
           "HOME": str(home)}
    if email["sendmail_command"].startswith("msmtp"):  # msmtp needs its own account to send: doctor checks it
        doctor = subprocess.run([str(OMNIDESK), "doctor"], env=env, capture_output=True, text=True, timeout=120)
        assert "FIX  email:main: refused: sendmail_command: msmtp is not set up" in doctor.stdout, doctor.stdout
        (home / ".msmtprc").write_text("account default\nhost localhost\nfrom sales@bakers-teas.example\n")
        (home / ".msmtprc").chmod(0o600)
    doctor = subprocess.run([str(OMNIDESK), "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert "ok   email:main" in doctor.stdout, doctor.stdout


def test_doctor_says_exactly_what_to_do_about_an_unset_password_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMNIDESK_EMAIL_PASSWORD"}
    env.update(OMNIDESK_CONFIG=str(tmp_path / "cfg" / "config.toml"), OMNIDESK_DB=str(tmp_path / "o.db"))
    subprocess.run([str(OMNIDESK), "init", "--yes", "--email", "sales@bakers-teas.example"], env=env, check=True,
                   capture_output=True, timeout=60)
    doctor = subprocess.run([str(OMNIDESK), "doctor"], env=env, capture_output=True, text=True, timeout=120)
    lines = doctor.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "email:main" in line)
    assert lines[at] == ("FIX  email:main: email.main.password_env: environment variable OMNIDESK_EMAIL_PASSWORD"
                         " is not set")  # not "refused": no server was asked
    fix = lines[at + 1]
    assert fix.strip().startswith("-> export OMNIDESK_EMAIL_PASSWORD=... (your mail password)")
    assert "password_command" in fix and "password_keyring" in fix and "app password" not in fix


def test_the_keymap_init_writes_says_it_is_the_users_own_file(tmp_path):
    env = {**os.environ, "OMNIDESK_CONFIG": str(tmp_path / "cfg" / "config.toml"), "OMNIDESK_DB": str(tmp_path / "o.db")}
    subprocess.run([str(OMNIDESK), "init", "--yes"], env=env, check=True, capture_output=True, timeout=60)
    mine = tmp_path / "cfg" / "keybindings.toml"
    text = mine.read_text()
    assert "Copy any table" not in text and f"Your omnidesk key bindings: {mine}" in text
    mine.write_text(text.replace('reply = "r"', 'reply = "R"'))
    keys = subprocess.run([str(OMNIDESK), "keys", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert keys.returncode == 0 and '"R"' in keys.stdout
