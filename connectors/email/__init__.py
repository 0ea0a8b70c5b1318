"""The e-mail channel: IMAP in / SMTP out, or a local Maildir / sendmail command.

Config, one table per account:

    [email.shop]
    imap_host = "imap.example.com"        # TLS on 993 by default
    username = "support@example.com"
    password_command = "pass show mail/support"
    smtp_host = "smtp.example.com"        # TLS on 465 by default
    from_address = "support@example.com"
    from_name = "Example Shop"

    # Gmail saves sent mail by itself: set sent_folder = "" there.

    [email.local]                          # mail synced by mbsync/offlineimap
    backend = "maildir"
    maildir = "~/Mail/support"
    sendmail_command = "msmtp -t"
    from_address = "support@example.com"
"""
from __future__ import annotations

from typing import Any

from connectors.schema import EMAIL_OPTIONS, EMAIL_SECURITY, ConfigError, Option

SECURITY = EMAIL_SECURITY
OPTIONS: dict[str, Option] = EMAIL_OPTIONS  # declared in connectors/schema.py


def build(account: str, options: dict[str, Any], config=None):
    where = f"email.{account}"
    if options["backend"] == "maildir":
        if not options["maildir"]:
            raise ConfigError(f"{where}.maildir: missing; the Maildir root to read (backend = \"maildir\")")
        from connectors.email.maildir import MaildirConnector

        return MaildirConnector(account, options)
    for key in ("imap_host", "username"):
        if not options[key]:
            raise ConfigError(f"{where}.{key}: missing; {OPTIONS[key].help}")
    if not options["folders"] or not all(isinstance(f, str) and f for f in options["folders"]):
        raise ConfigError(f"{where}.folders: expected a list of folder names, e.g. [\"INBOX\"]")
    if options["fetch_chunk"] < 1:
        raise ConfigError(f"{where}.fetch_chunk: expected a positive integer")
    if options["backlog_days"] < 0:
        raise ConfigError(f"{where}.backlog_days: expected 0 or more days")
    from connectors.email.imap import ImapConnector

    return ImapConnector(account, options)
