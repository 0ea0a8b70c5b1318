"""How big one reply may get before a person must say yes: per channel, in the
unit that channel counts (messages for chats, bytes for e-mail).

A 5 MB paste once went out as 1,467 Telegram messages without a question; a
reply over its channel's limit now needs a confirmation in the console and
`--force` on the command line.
"""
from __future__ import annotations

from connectors.formatting import slack_parts, telegram_parts

MAX_PARTS = {"telegram": 10, "slack": 10}  # chat messages one reply may become
MAX_EMAIL_BYTES = 10 * 1024 * 1024  # text and attachments of one e-mail (base64 makes it ~13 MB on the wire)


def over_limit(channel: str, text: str, attachment_bytes: int = 0) -> str | None:
    """Why this reply is over its channel's limit ("it would go out as 37
    Telegram messages; the limit is 10"), or None when it is within it."""
    if channel in MAX_PARTS:
        parts = len(telegram_parts(text) if channel == "telegram" else slack_parts(text))
        limit = MAX_PARTS[channel]
        if parts > limit:
            name = "Telegram" if channel == "telegram" else "Slack"
            return f"it would go out as {parts:,} {name} messages; the limit is {limit}"
        return None
    size = len(text.encode("utf-8")) + attachment_bytes
    if channel == "email" and size > MAX_EMAIL_BYTES:
        return f"it is {size / 1024 / 1024:.1f} MB; the limit for one e-mail is {MAX_EMAIL_BYTES // 1024 // 1024} MB"
    return None
