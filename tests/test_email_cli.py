"""The e-mail channel the way a user sets it up: a config file, `omnidesk sync`, `omnidesk import`."""
from __future__ import annotations

import json

import pytest

from console.cli import main
from store import Store
from tests.support.dovecot import dovecot  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def mail(i: int) -> bytes:
    return (f"From: Customer {i} <c{i}@example.com>\r\nMessage-ID: <cli{i}@example.com>\r\n"
            f"Subject: question {i}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nhello {i}\r\n").encode()


def write_config(path, server, monkeypatch) -> None:
    monkeypatch.setenv("OMNIDESK_TEST_IMAP_PW", server.users["support"])
    path.write_text(f"""
[email.support]
imap_host = "127.0.0.1"
imap_port = {server.port}
imap_security = "plain"
username = "support"
password_env = "OMNIDESK_TEST_IMAP_PW"
from_address = "support@shop.test"
""")


def test_sync_once_from_a_config_file(dovecot, tmp_path, capsys, monkeypatch):
    dovecot.deliver("support", [mail(i) for i in range(3)])
    config, db = tmp_path / "config.toml", tmp_path / "o.db"
    write_config(config, dovecot, monkeypatch)
    assert main(["--config", str(config), "--db", str(db), "--json", "sync", "--once"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ingested"] == {"email:support": 3}
    assert out["health"]["email:support"]["state"] == "ok"
    assert dovecot.users["support"] not in json.dumps(out)


def test_imported_history_and_the_live_mailbox_do_not_double(dovecot, tmp_path, capsys, monkeypatch):
    """Import an old Maildir copy of the account, then sync the same mailbox over IMAP."""
    maildir = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i in range(5):
        (maildir / "cur" / f"{i}.x.host:2,S").write_bytes(mail(i))
    dovecot.deliver("support", [mail(i) for i in range(7)])  # the server has those five and two newer
    config, db = tmp_path / "config.toml", tmp_path / "o.db"
    write_config(config, dovecot, monkeypatch)
    assert main(["--config", str(config), "--db", str(db), "--json", "import", "maildir", str(maildir)]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["account"] == "support" and imported["added"] == 5
    assert main(["--config", str(config), "--db", str(db), "--json", "sync", "--once"]) == 0
    assert json.loads(capsys.readouterr().out)["ingested"] == {"email:support": 2}
    store = Store(db)
    assert store.queue_count("all") == 7
    store.close()
