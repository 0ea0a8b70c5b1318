"""A `sendmail -t` work-alike for the demo: relays the message on stdin to an
SMTP server on 127.0.0.1, as `msmtp -t` would to a real one.

    python -m console.demo_sendmail 127.0.0.1:2525 < message.eml
"""
from __future__ import annotations

import re
import smtplib
import sys
from email import message_from_bytes
from email.utils import getaddresses


def main(argv: list[str]) -> int:
    host, _, port = argv[1].rpartition(":")
    # A sendmail command gets local LF line ends; SMTP wants CRLF (smtplib sends
    # bytes as they are, and a server sees one endless line: "Line too long").
    raw = re.sub(rb"\r?\n", b"\r\n", sys.stdin.buffer.read())
    msg = message_from_bytes(raw)
    rcpts = [a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Bcc", [])) if a]
    if not rcpts:
        print("demo_sendmail: no recipients in To/Cc/Bcc", file=sys.stderr)
        return 65  # EX_DATAERR
    try:
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            smtp.sendmail(msg.get("From", "demo@localhost"), rcpts, raw)
    except OSError as e:
        print(f"demo_sendmail: {e}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: the connector retries
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
