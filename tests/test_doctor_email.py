"""`omnidesk doctor` on e-mail accounts: the installed entry point, a config file,
a real Dovecot and a real SMTP server (or a real Maildir)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from tests.conftest import ROOT
from tests.support.dovecot import DOVECOT, Dovecot, dovecot, free_port, require  # noqa: F401 - fixture
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

OMNIDESK = Path(sys.executable).parent / "omnidesk"
PW_ENV = "OMNIDESK_DOCTOR_TEST_PW"


def doctor(tmp_path, account: dict, password: str | None = None):
    """Write [email.support] and run `omnidesk doctor` with the password in PW_ENV."""
    config = tmp_path / "config.toml"
    config.write_text(tomlkit.dumps({"email": {"support": account}}))
    env = {k: v for k, v in os.environ.items() if k != PW_ENV}
    if password is not None:
        env[PW_ENV] = password
    proc = subprocess.run([str(OMNIDESK), "--config", str(config), "--db", str(tmp_path / "o.db"), "doctor"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    line = next((ln for ln in proc.stdout.splitlines() if "email:support" in ln), "")
    return proc, line


def imap_account(server, smtp_port: int | None = None, **extra) -> dict:
    return {"imap_host": "127.0.0.1", "imap_port": server.port, "imap_security": "plain",
            "username": "support", "password_env": PW_ENV, "from_address": "support@shop.test",
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port or free_port(), "smtp_security": "plain",
            "smtp_username": "-", **extra}


def test_doctor_ok_against_dovecot_and_the_smtp_server(dovecot, smtp_sink, tmp_path):
    dovecot.deliver("support", b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n", folder="Sent")
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port, folders=["INBOX"]),
                        dovecot.users["support"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line == (f"ok   email:support: IMAP 127.0.0.1:{dovecot.port} as support, folders INBOX; "
                    f"SMTP 127.0.0.1:{smtp_sink.port} (no login) ok")
    assert dovecot.users["support"] not in proc.stdout + proc.stderr
    assert smtp_sink.messages == []  # a check sends nothing


def test_a_missing_sent_folder_is_a_note_not_a_failure(dovecot, smtp_sink, tmp_path):
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port, sent_folder="Sent Items"),
                        dovecot.users["support"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line.startswith("ok ") and "sent_folder 'Sent Items' does not exist, the first reply creates it" in line
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port, sent_folder=""), dovecot.users["support"])
    assert proc.returncode == 0 and "note" not in line


def test_wrong_password_fails_without_showing_it(dovecot, smtp_sink, tmp_path):
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port), "wrong-pw-4711")
    assert proc.returncode == 1
    assert line.startswith("FIX  email:support: refused:") and "login failed for support" in line
    assert "app password" in proc.stdout
    assert "wrong-pw-4711" not in proc.stdout + proc.stderr


def test_unset_password_variable_is_named(dovecot, smtp_sink, tmp_path):
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port), None)
    assert proc.returncode == 1
    assert f"email.support.password_env: environment variable {PW_ENV} is not set" in line


def test_missing_folder(dovecot, smtp_sink, tmp_path):
    proc, line = doctor(tmp_path, imap_account(dovecot, smtp_sink.port, folders=["INBOX", "Support"]),
                        dovecot.users["support"])
    assert proc.returncode == 1
    assert "FIX " in line and "folder 'Support' does not exist" in line


def test_unreachable_imap_and_smtp_hosts(dovecot, tmp_path):
    port = free_port()  # nothing listens there
    proc, line = doctor(tmp_path, {**imap_account(dovecot), "imap_port": port}, dovecot.users["support"])
    assert proc.returncode == 1
    assert f"cannot reach it: IMAP 127.0.0.1:{port}: cannot connect" in line
    assert "check the server address" in proc.stdout
    # IMAP fine, SMTP down: the SMTP side is checked too
    account = imap_account(dovecot)
    proc, line = doctor(tmp_path, account, dovecot.users["support"])
    assert proc.returncode == 1
    assert f"cannot reach it: SMTP 127.0.0.1:{account['smtp_port']}: ConnectionRefusedError" in line


def test_smtp_login_as_sending_does_it(dovecot, tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    accepted = [dovecot.users["support"].encode()]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"support" and auth_data.password == accepted[0]
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        account = {**imap_account(dovecot, port), "smtp_username": ""}  # log in to SMTP as `username`
        proc, line = doctor(tmp_path, account, dovecot.users["support"])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert line.endswith(f"SMTP 127.0.0.1:{port} as support ok; note: sent_folder 'Sent' does not exist, "
                             "the first reply creates it (name your Sent folder, or set sent_folder = \"\" "
                             "if the provider keeps its own copy)")
        accepted[0] = b"only-the-smtp-password"
        proc, line = doctor(tmp_path, account, dovecot.users["support"])
        assert proc.returncode == 1
        assert f"refused: SMTP 127.0.0.1:{port}: login refused for support (535)" in line
        assert dovecot.users["support"] not in proc.stdout + proc.stderr
    finally:
        controller.stop()


def test_untrusted_certificate(tmp_path):
    require(DOVECOT, "dovecot-imapd")
    require("openssl", "openssl")
    server = Dovecot({"support": "tls-pw"}, tls=True)
    server.start()
    try:
        account = {**imap_account(server), "imap_security": "tls", "imap_port": server.tls_port}
        proc, line = doctor(tmp_path, account, "tls-pw")
        assert proc.returncode == 1 and "certificate not trusted" in line and "set ca_file" in line
    finally:
        server.cleanup()


# -- Maildir ------------------------------------------------------------------------------
def make_maildir(root: Path, *folders: str) -> None:
    for path in (root, *(root / f".{f}" for f in folders)):
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)


def test_maildir_ok(tmp_path):
    root = tmp_path / "Mail"
    make_maildir(root, "Support")
    proc, line = doctor(tmp_path, {"backend": "maildir", "maildir": str(root), "folders": ["INBOX", "Support"],
                                   "sendmail_command": "cat -"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line.startswith(f"ok   email:support: Maildir {root}, folders INBOX, Support; sends with ")
    assert line.endswith("/cat")


def test_maildir_missing_root_folder_or_sendmail(tmp_path):
    root = tmp_path / "Mail"
    proc, line = doctor(tmp_path, {"backend": "maildir", "maildir": str(root), "sendmail_command": "cat"})
    assert proc.returncode == 1
    assert f"Maildir {root} does not exist (not mounted or not synced yet?)" in line
    assert "check maildir, folders and sendmail_command" in proc.stdout
    make_maildir(root)
    proc, line = doctor(tmp_path, {"backend": "maildir", "maildir": str(root), "folders": ["INBOX", "Archive"],
                                   "sendmail_command": "cat"})
    assert proc.returncode == 1 and f"Maildir {root}: no folder 'Archive'" in line
    proc, line = doctor(tmp_path, {"backend": "maildir", "maildir": str(root),
                                   "sendmail_command": "msmtp-not-installed-here -t"})
    assert proc.returncode == 1 and "sendmail_command: 'msmtp-not-installed-here' not found" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_unreadable_maildir(tmp_path):
    root = tmp_path / "Mail"
    make_maildir(root)
    (root / "cur").chmod(0)
    try:
        proc, line = doctor(tmp_path, {"backend": "maildir", "maildir": str(root), "sendmail_command": "cat"})
    finally:
        (root / "cur").chmod(0o755)
    assert proc.returncode == 1 and "not readable" in line
