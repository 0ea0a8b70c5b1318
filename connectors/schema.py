"""What the config file may say: every section and key, declared once, statically.

Nothing here is filled in at import time by other modules: the fixed sections
are typed dataclasses (`Settings`), the per-account sections of each channel are
tables of `Option`s, and the free-form sections ([targets], [satisfaction],
[[hook]], [channels]) are named here and checked by their owners' `validate`
(see connectors/config.py). Importing this module imports no channel library.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from store.errors import OmnideskError

REQUIRED = object()


class ConfigError(OmnideskError):
    """A problem in the config file, worded for the person who wrote it
    (it names the key: `sync.poll_interval: expected a number, got 'soon'`)."""


@dataclass(frozen=True)
class Option:
    """One key: its type(s), default (`REQUIRED` if none), help line, allowed values, minimum."""

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    choices: tuple = ()
    minimum: float = 0  # for numbers: no option here means anything below zero
    maximum: float = 1e9  # for numbers: nothing omnidesk counts in seconds, bytes or items gets near this

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                 list: "a list", dict: "a table"}
        return " or ".join(names.get(t, t.__name__) for t in types)


def secret_options(name: str, what: str) -> dict[str, Option]:
    """The three ways to supply one secret: `<name>_env`, `<name>_command`, `<name>_keyring`."""
    return {
        f"{name}_env": Option(str, None, f"environment variable holding the {what}"),
        f"{name}_command": Option(str, None, f"command that prints the {what} (e.g. `pass show ...`)"),
        f"{name}_keyring": Option(str, None, f"keyring entry 'service/username' holding the {what}"),
    }


def _opt(type_, default, help, **kw) -> Any:
    """A dataclass field that carries its Option (for validation and `omnidesk init`)."""
    return field(default=default, metadata={"option": Option(type_, default, help, **kw)})


def _login_name() -> str:
    """Who runs this process ($USER, else the user database): with a shared store
    each login is its own agent."""
    if os.environ.get("USER"):
        return os.environ["USER"]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "agent"


# -- the fixed sections, typed ------------------------------------------------------
@dataclass(frozen=True)
class AgentSettings:
    name: str = _opt(str, _login_name(), "your name, shown on replies and notes (default: your login name)")
    email: str = _opt(str, "", "your e-mail address (for the record)")


@dataclass(frozen=True)
class SyncSettings:
    poll_interval: float = _opt((int, float), 30.0, "seconds between polls when a channel cannot push", minimum=1,
                                maximum=86400)
    max_attempts: int = _opt(int, 5, "send attempts before a reply is marked failed", minimum=1, maximum=100)
    lease_seconds: float = _opt((int, float), 30.0, "how long a silent poller keeps the polling lease", minimum=1,
                                maximum=3600)


@dataclass(frozen=True)
class StoreSettings:
    busy_timeout: float = _opt((int, float), 30.0, "seconds a write waits for another process's write lock",
                               minimum=0.1, maximum=3600)
    group: str = _opt(str, "", "Unix group that shares the store (read and write), e.g. 'support'; "
                               "empty: private to you")
    url: str = _opt(str, "", "a PostgreSQL store shared by several machines: postgresql://user@host:port/db"
                             " (sslmode=... as libpq takes it; no password here); --db and OMNIDESK_DB override it")
    password_env: str = _opt(str, None, "environment variable holding the PostgreSQL password")
    password_command: str = _opt(str, None, "command that prints the PostgreSQL password (e.g. `pass show ...`)")
    password_keyring: str = _opt(str, None, "keyring entry 'service/username' holding the PostgreSQL password")


@dataclass(frozen=True)
class AttachmentsSettings:
    max_bytes: int = _opt(int, 25 * 1024 * 1024, "largest attachment kept, in bytes")
    open_command: str = _opt(str, "xdg-open", "command that opens a saved attachment")
    save_dir: str = _opt(str, "~/Downloads", "where attachments are saved")


@dataclass(frozen=True)
class ConsoleSettings:
    confirm_send: bool = _opt(bool, False, "ask before sending a reply")
    bell: bool = _opt(bool, True, "ring the terminal bell on new inbound messages")
    theme: str = _opt(str, "textual-dark", "Textual theme name")
    next_after_done: bool = _opt(bool, True, "after done, snooze or send, open the next waiting customer")


@dataclass(frozen=True)
class Settings:
    """The fixed sections, typed: `settings.sync.poll_interval` (seconds) and so on."""

    agent: AgentSettings = field(default_factory=AgentSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    attachments: AttachmentsSettings = field(default_factory=AttachmentsSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)


SECTION_TYPES: dict[str, type] = {f.name: f.default_factory for f in fields(Settings)}  # type: ignore[misc]


def options_of(section_type: type) -> dict[str, Option]:
    return {f.name: f.metadata["option"] for f in fields(section_type)}


# name -> options of the fixed sections, in file order
SECTIONS: dict[str, dict[str, Option]] = {name: options_of(t) for name, t in SECTION_TYPES.items()}

# -- per-account sections: [email.NAME], [telegram.NAME], [slack.NAME] ---------------
EMAIL_SECURITY = ("tls", "starttls", "plain")
TELEGRAM_FILE_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile refuses larger files

EMAIL_OPTIONS: dict[str, Option] = {
    "backend": Option(str, "imap", "where mail comes from: an IMAP server or a local Maildir", ("imap", "maildir")),
    "from_address": Option(str, "", "the address replies are sent from (default: username)"),
    "from_name": Option(str, "", "display name on replies, e.g. your shop's name"),
    "folders": Option(list, ["INBOX"], "folders to read customer mail from"),
    "sent_folder": Option(str, "Sent", "folder that keeps a copy of each reply (\"\" for none)"),
    # IMAP
    "imap_host": Option(str, "", "IMAP server"),
    "imap_port": Option(int, 0, "IMAP port (default: 993 for tls, 143 otherwise)"),
    "imap_security": Option(str, "tls", "tls (implicit), starttls, or plain (only for a local server)", EMAIL_SECURITY),
    "username": Option(str, "", "login name for IMAP and SMTP"),
    **secret_options("password", "mail password"),
    "idle": Option(bool, True, "use IMAP IDLE so new mail shows within seconds"),
    "fetch_chunk": Option(int, 100, "messages fetched per IMAP round trip"),
    "backlog_days": Option(int, 14, "on the first read of a folder, mail older than this many days is"
                                    " history: stored and searchable, but it does not wait for an answer"
                                    " (0: all mail waits)"),
    "timeout": Option((int, float), 30.0, "network timeout in seconds"),
    "ca_file": Option(str, "", "extra CA certificate (PEM) for a server with a private CA"),
    # SMTP
    "smtp_host": Option(str, "", "SMTP server (default: imap_host)"),
    "smtp_port": Option(int, 0, "SMTP port (default: 465 for tls, 587 for starttls, 25 for plain)"),
    "smtp_security": Option(str, "tls", "tls (implicit), starttls, or plain (only for a local server)", EMAIL_SECURITY),
    "smtp_username": Option(str, "", "SMTP login if it differs from username (\"-\" for no login)"),
    # Maildir
    "maildir": Option(str, "", "Maildir root (backend = \"maildir\")"),
    "sendmail_command": Option(str, "sendmail -t -oi", "command that sends a message given on stdin"),
}

TELEGRAM_OPTIONS: dict[str, Option] = {
    **secret_options("token", "bot token from @BotFather"),
    "base_url": Option(str, "https://api.telegram.org/bot", "Bot API URL (the token is appended)"),
    "base_file_url": Option(str, "https://api.telegram.org/file/bot", "Bot API file URL (the token is appended)"),
    "long_poll_seconds": Option(int, 25, "how long one getUpdates call waits for news"),
    "max_download_bytes": Option(int, TELEGRAM_FILE_LIMIT, "largest attachment downloaded (Bot API limit: 20 MB)"),
    "timeout": Option((int, float), 20.0, "seconds to wait for Telegram's answer", minimum=1, maximum=600),
}

SLACK_OPTIONS: dict[str, Option] = {
    **secret_options("token", "bot token (xoxb-...)"),
    **secret_options("app_token", "app-level token (xapp-...) for Socket Mode"),
    "base_url": Option(str, "https://slack.com/api/", "Web API URL (must end with /)"),
    "poll_seconds": Option((int, float), 5.0, "shortest time between polls"),
    "calls_per_minute": Option(int, 40, "history/replies calls a minute polling may use (Tier 3 is ~50)"),
    "catchup_seconds": Option((int, float), 300.0, "Socket Mode: how often to poll anyway, to catch up"),
    "rescan_seconds": Option((int, float), 120.0, "how often to re-read the last day for edits, deletions, threads"),
    "backfill_days": Option((int, float), 2.0, "how far back to read a conversation seen for the first time"),
    "thread_days": Option((int, float), 30.0, "how long a thread is followed for new replies after its last one"),
    "thread_scan_seconds": Option((int, float), 600.0, "how often to look for new replies in threads up to "
                                                       "thread_days old"),
    "max_download_bytes": Option(int, 25 * 1024 * 1024, "largest file downloaded"),
    "timeout": Option((int, float), 30.0, "seconds to wait for Slack's answer", minimum=1, maximum=600),
}

# channel -> the options of one of its accounts
ACCOUNT_SECTIONS: dict[str, dict[str, Option]] = {
    "email": EMAIL_OPTIONS,
    "telegram": TELEGRAM_OPTIONS,
    "slack": SLACK_OPTIONS,
}

# Free-form sections, each checked by its owner's validate() (wired in connectors/config.py).
FREEFORM_SECTIONS = ("channels", "targets", "satisfaction", "hook", "automation")
