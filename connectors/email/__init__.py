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

from connectors.config import ConfigError, Option, secret_options

SECURITY = ("tls", "starttls", "plain")

OPTIONS: dict[str, Option] = {
    "backend": Option(str, "imap", "where mail comes from: an IMAP server or a local Maildir", ("imap", "maildir")),
    "from_address": Option(str, "", "the address replies are sent from (default: username)"),
    "from_name": Option(str, "", "display name on replies, e.g. your shop's name"),
    "folders": Option(list, ["INBOX"], "folders to read customer mail from"),
    "sent_folder": Option(str, "Sent", "folder that keeps a copy of each reply (\"\" for none)"),
    # IMAP
    "imap_host": Option(str, "", "IMAP server"),
    "imap_port": Option(int, 0, "IMAP port (default: 993 for tls, 143 otherwise)"),
    "imap_security": Option(str, "tls", "tls (implicit), starttls, or plain (only for a local server)", SECURITY),
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
    "smtp_security": Option(str, "tls", "tls (implicit), starttls, or plain (only for a local server)", SECURITY),
    "smtp_username": Option(str, "", "SMTP login if it differs from username (\"-\" for no login)"),
    # Maildir
    "maildir": Option(str, "", "Maildir root (backend = \"maildir\")"),
    "sendmail_command": Option(str, "sendmail -t -oi", "command that sends a message given on stdin"),
}


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
