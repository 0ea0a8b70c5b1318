"""Telegram and Slack accounts configured the way a user writes them."""
from __future__ import annotations

import pytest

from connectors import config, registry
from tests.support.chat import slack, tg  # noqa: F401


def load(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_accounts_build_from_the_config_file(tmp_path, monkeypatch, tg, slack, store):
    monkeypatch.setenv("TG_TOKEN", tg.token)
    monkeypatch.setenv("SLACK_BOT", slack.bot_token)
    cfg = load(tmp_path, f"""
[attachments]
max_bytes = 1000

[telegram.shop]
token_env = "TG_TOKEN"
base_url = "{tg.base_url}"
base_file_url = "{tg.base_file_url}"
long_poll_seconds = 1

[slack.team]
token_env = "SLACK_BOT"
base_url = "{slack.api_url}"
""")
    connectors = registry.build_all(cfg)
    try:
        by_name = {c.name: c for c in connectors}
        assert set(by_name) >= {"telegram:shop", "slack:team"}
        assert by_name["telegram:shop"].max_download_bytes == 1000  # the global cap wins
        tg.send_text(tg.user(1001, "Jane"), "hi from telegram")
        jane = slack.user("U100", "jane", "Jane Roe")
        slack.post(jane, slack.dm(jane), "hi from slack")
        for name in ("telegram:shop", "slack:team"):
            batch = by_name[name].fetch({})
            store.ingest_batch(batch.items, name, batch.cursor)
        assert len(store.queue(filter="all")) == 2
    finally:
        for c in connectors:
            c.close()


def test_a_missing_token_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    cfg = load(tmp_path, '[telegram.shop]\ntoken_env = "NOPE"\n')
    with pytest.raises(config.ConfigError, match="telegram.shop.token_env: environment variable NOPE is not set"):
        registry.build_all(cfg)
    cfg = load(tmp_path, '[slack.team]\nbase_url = "https://slack.com/api/"\n')
    with pytest.raises(config.ConfigError, match="slack.team: no bot token"):
        registry.build_all(cfg)


def test_a_token_written_in_the_file_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match="secrets are never written in the file"):
        load(tmp_path, '[telegram.shop]\ntoken = "123:abc"\n')


def test_slack_base_url_must_end_with_a_slash(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT", "xoxb-1")
    cfg = load(tmp_path, '[slack.team]\ntoken_env = "SLACK_BOT"\nbase_url = "http://127.0.0.1:9/api"\n')
    with pytest.raises(config.ConfigError, match="must end with '/'"):
        registry.build_all(cfg)


def test_doctor_probes_say_what_works(tg, slack):
    from tests.support.chat import slack_connector, telegram_connector

    conn = telegram_connector(tg)
    try:
        assert conn.probe() == "bot @omnidesk_sandbox_bot (id 700000001)"
        tg.webhook_url = "https://example.com/hook"
        assert "a webhook is set" in conn.probe()
    finally:
        conn.close()
    slack.channel("support", [])
    conn = slack_connector(slack, app_token=slack.app_token)
    assert conn.probe() == "bot @omnidesk in Sandbox, in 1 conversation(s); Socket Mode available"
    conn = slack_connector(slack, app_token="xapp-wrong")
    with pytest.raises(Exception, match="invalid_auth"):
        conn.probe()


def test_a_revoked_token_fails_the_probe_clearly(tg):
    from connectors.base import PermanentError
    from tests.support.chat import telegram_connector

    tg.revoke_token()
    conn = telegram_connector(tg)
    try:
        with pytest.raises(PermanentError, match="rejected the bot token") as info:
            conn.probe()
    finally:
        conn.close()
    assert tg.token not in str(info.value)
