"""Loopback servers that speak the Telegram Bot API and the Slack Web API
(with Socket Mode), for tests and `omnidesk demo`. Each runs on 127.0.0.1 in
its own thread and event loop:

    from connectors.sandbox import SlackSandbox, TelegramSandbox

    with TelegramSandbox() as tg, SlackSandbox() as slack:
        tg.base_url, tg.base_file_url, tg.token        # for connectors.telegram
        slack.api_url, slack.bot_token, slack.app_token  # for connectors.slack
        tg.send_text(tg.user(1001, "Jane", "Roe"), "hi")  # act as the customer
        tg.wait_sent(1)                                   # read what the bot sent

Both inject failures with `fail(status, method=None, times=1, retry_after=None)`
and reject the bot token after `revoke_token()` (until `restore_token()`).
"""
from connectors.sandbox.slack import SlackSandbox
from connectors.sandbox.telegram import TelegramSandbox

__all__ = ["SlackSandbox", "TelegramSandbox"]
