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


# One attachment, per channel: what the service itself accepts (no --force gets past
# these). Telegram: the Bot API's 50 MB upload limit; Slack: files.upload's 1 GB.
# E-mail has no per-file limit of its own: the whole message counts (MAX_EMAIL_BYTES).
MAX_FILE_BYTES = {"telegram": 50 * 1024 * 1024, "slack": 1024 * 1024 * 1024}


def _human(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"


def file_too_big(channel: str, name: str, size: int, store_cap: int | None = None) -> str | None:
    """Why one attachment of `size` bytes cannot go out on `channel` (over the
    service's limit, or over the store's [attachments] max_bytes, so it would not
    be kept to send), or None."""
    limit = MAX_FILE_BYTES.get(channel)
    if limit is not None and size > limit:
        return f"{name} is {_human(size)}; {channel} takes files up to {_human(limit)}"
    if store_cap and size > store_cap:
        return f"{name} is {_human(size)}; [attachments] max_bytes is {_human(store_cap)}"
    return None


def read_attachment(path):
    """A store.models.AttachmentIn for a local file: its name, the type guessed
    from the name, the bytes. Raises OSError (missing, unreadable, a folder)."""
    import mimetypes
    from pathlib import Path

    from store.models import AttachmentIn

    p = Path(path).expanduser()
    data = p.read_bytes()
    return AttachmentIn(p.name, mimetypes.guess_type(p.name)[0] or "application/octet-stream", data)
