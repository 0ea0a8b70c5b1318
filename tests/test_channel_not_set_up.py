"""One account that cannot start (newcomer trial 2, finding 12: `init` set up Telegram
while its bot token was still to come) must not stop the others. E-mail keeps coming in
and going out; the broken account shows as failed with its reason in `sync --once`
(exit 1, for cron) and in the console's status bar. Real Maildir in, msmtp out to a real
SMTP server, the installed `omnidesk` command and the real console."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from connectors.config import load as load_config
from console import keymap
from console.app import OmnideskApp
from tests.support.cli import OMNIDESK
from tests.support.console import anyio_backend, screen_text, until  # noqa: F401 - fixture
from tests.support.dovecot import require
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture

MAIL = ("From: Adam Smith <adam@example.com>\nTo: support@shop.test\nSubject: Order 1234\n"
        "Message-ID: <order-1234@example.com>\nDate: Mon, 30 Nov 2026 08:00:00 +0000\n\nWhere is my order 1234?\n")


@pytest.fixture
def shop(tmp_path, smtp_sink, monkeypatch):
    require("msmtp", "msmtp")
    inbox = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    (inbox / "new" / "1.M1P1.host").write_text(MAIL)
    config = tmp_path / "config.toml"
    config.write_text(f'[agent]\nname = "Pat"\n\n[email.main]\nbackend = "maildir"\nmaildir = "{inbox}"\n'
                      f'from_address = "support@shop.test"\nsendmail_command = "msmtp --file=/dev/null'
                      f' --host=127.0.0.1 --port={smtp_sink.port} --auth=off --tls=off --from=support@shop.test -t"\n'
                      '\n[telegram.main]\ntoken_env = "OMNIDESK_TELEGRAM_TOKEN"\n')
    monkeypatch.delenv("OMNIDESK_TELEGRAM_TOKEN", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "OMNIDESK_TELEGRAM_TOKEN"}
    env.update(OMNIDESK_CONFIG=str(config), OMNIDESK_DB=str(tmp_path / "o.db"))

    def run(*args):
        return subprocess.run([str(OMNIDESK), *args], capture_output=True, text=True, env=env, timeout=120)
    run.config, run.db, run.sink = config, tmp_path / "o.db", smtp_sink
    return run


def test_sync_once_fetches_and_sends_mail_while_telegram_waits_for_its_token(shop):
    first = shop("sync", "--once")
    assert first.returncode == 1, first.stdout + first.stderr  # cron notices
    assert "Traceback" not in first.stderr
    assert "telegram:main" in first.stderr and "OMNIDESK_TELEGRAM_TOKEN is not set" in first.stderr
    queue = json.loads(shop("queue", "--json").stdout)
    assert [row["name"] for row in queue] == ["Adam Smith"]  # the mail came in all the same

    assert shop("reply", "adam@example.com", "-m", "It left our store today.").returncode == 0
    second = shop("sync", "--once", "--json")
    assert second.returncode == 1
    report = json.loads(second.stdout)
    assert report["outbox"]["sent"] == 1 and report["outbox"]["failed"] == []
    assert report["health"]["email:main"]["state"] == "ok"
    telegram = report["health"]["telegram:main"]
    assert telegram["state"] == "failed" and "OMNIDESK_TELEGRAM_TOKEN is not set" in telegram["detail"]
    [delivered] = shop.sink.wait_for(1)
    assert b"It left our store today." in delivered.data


@pytest.mark.anyio
async def test_the_console_runs_email_and_names_the_account_that_is_not_set_up(shop):
    cfg = load_config(shop.config)
    app = OmnideskApp(str(shop.db), cfg, "Pat", start_engine=True, cursor_blink=False, keymap=keymap.load(False))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Adam Smith" in screen_text(app), timeout=60)  # e-mail was fetched
        await until(pilot, lambda: "telegram:main" in screen_text(app) and "not set up" in screen_text(app),
                    timeout=60)
        text = screen_text(app)
        assert "sync engine did not start" not in text
