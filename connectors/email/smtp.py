"""Sending through SMTP with the standard library.

Errors are sorted into "retry later" (network, 4xx) and "a human must act"
(wrong password, recipient refused, 5xx). Messages never contain the password.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from connectors.base import ConnectorError, PermanentError, UncertainError

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "plain": 25}


def tls_context(options: dict) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if options.get("ca_file"):
        ctx.load_verify_locations(options["ca_file"])
    return ctx


def where(options: dict) -> str:
    """The server as errors and the doctor name it: 'SMTP host:port'."""
    host = options.get("smtp_host") or options.get("imap_host")
    security = options.get("smtp_security", "tls")
    return f"SMTP {host}:{options.get('smtp_port') or DEFAULT_PORTS[security]}"


def _user(options: dict) -> str:
    return options.get("smtp_username") or options.get("username") or ""


@contextmanager
def session(options: dict, password: str | None) -> Iterator[smtplib.SMTP]:
    """A connected server, TLS set up and logged in (unless smtp_username is "-").
    Errors raised inside the `with` block are mapped the same way, then the
    connection is closed."""
    host = options.get("smtp_host") or options.get("imap_host")
    if not host:
        raise PermanentError("email: set smtp_host to send replies")
    security = options.get("smtp_security", "tls")
    port = options.get("smtp_port") or DEFAULT_PORTS[security]
    timeout = options.get("timeout", 30.0)
    user = _user(options)
    at = where(options)
    server = None
    try:
        if security == "tls":
            server = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(options))
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        server.ehlo()
        if security == "starttls":
            server.starttls(context=tls_context(options))
            server.ehlo()
        if user and user != "-" and password:
            server.login(user, password)
        yield server
    except ssl.SSLCertVerificationError as e:
        raise PermanentError(f"{at}: certificate not trusted ({e.verify_message}); set ca_file") from None
    except smtplib.SMTPAuthenticationError as e:
        raise PermanentError(f"{at}: login refused for {user} ({e.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as e:
        codes = ", ".join(f"{addr}: {code}" for addr, (code, _) in e.recipients.items())
        raise PermanentError(f"{at}: recipient refused ({codes})") from None
    except smtplib.SMTPResponseException as e:
        text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        if password:  # a server that echoes credentials must not put them in health or logs
            text = text.replace(password, "***")
        detail = f"{at}: {e.smtp_code} {' '.join(text.split())[:200]}"
        if 500 <= e.smtp_code < 600:
            raise PermanentError(detail) from None
        raise ConnectorError(detail, retry_after=60) from None
    except smtplib.SMTPNotSupportedError as e:
        raise PermanentError(f"{at}: {e} (check smtp_security)") from None
    except (smtplib.SMTPException, OSError, socket.timeout) as e:
        raise ConnectorError(f"{at}: {type(e).__name__}: {e}") from None
    finally:
        if server is not None:
            server.close()


def send(msg: EmailMessage, options: dict, password: str | None) -> None:
    """Send one message. Raises UncertainError when the connection failed after
    the message body went out (the server may have accepted it): never retry that."""
    with session(options, password) as server:
        data = server.data
        sent_body = []

        def data_marked(body):  # from here on a lost connection means "may have been delivered"
            sent_body.append(True)
            return data(body)
        server.data = data_marked
        try:
            refused = server.send_message(msg)
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            if not sent_body:
                raise
            raise UncertainError(f"{where(options)}: no answer after the message was sent ({type(e).__name__})") from None
        # delivered: from here on nothing may raise, or a retry would send it twice
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            pass
    if refused:
        raise PermanentError(f"{where(options)}: recipient refused ({', '.join(refused)})")


def check(options: dict, password: str | None) -> str:
    """Connect and log in as sending would, send nothing; for `omnidesk doctor`."""
    user = _user(options)
    with session(options, password) as server:
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            pass
    login = f" as {user}" if user and user != "-" and password else " (no login)"
    return f"{where(options)}{login} ok"
