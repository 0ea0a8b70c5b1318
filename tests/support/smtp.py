"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import pytest

from tests.support.dovecot import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class _Handler:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        self.sink._add(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        if self.sink.answer_delay:  # kept, but the "250" comes after the client gave up
            await asyncio.sleep(self.sink.answer_delay)
        return "250 OK"


class SmtpSink:
    """tls: None, "tls" (implicit, like port 465) or "starttls" (required), with `cert`/`key` PEM files."""

    def __init__(self, tls: str | None = None, cert=None, key=None, answer_delay: float = 0.0):
        import ssl

        from aiosmtpd.controller import Controller

        self.messages: list[Received] = []
        self.answer_delay = answer_delay  # seconds between keeping a message and saying "250"
        self._cond = threading.Condition()
        # Controller(port=0) fails to report its port: pick a free one first.
        self.port = free_port()
        kwargs = {}
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert), str(key))
            kwargs = {"ssl_context": ctx} if tls == "tls" else {"tls_context": ctx, "require_starttls": True}
        self._make = lambda: Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller = self._make()

    def _add(self, item: Received) -> None:
        with self._cond:
            self.messages.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SMTP server got {len(self.messages)} messages, expected {count}")
                self._cond.wait(left)
            return list(self.messages)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Down and up again on the same port, keeping what it received (a stopped
        Controller cannot start again: a new one takes its place)."""
        self.controller.stop()
        self.controller = self._make()
        self.controller.start()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()
