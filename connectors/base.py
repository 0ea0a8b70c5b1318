"""The connector interface the sync engine drives.

A connector knows its protocol and its channel's formatting; nothing else.
The engine owns the loop, the store, backoff and the lease.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from store.errors import OmnideskError
from store.models import InboundMessage, OutboundMessage, Receipt

OK = "ok"
RETRYING = "retrying"
FAILED = "failed"


@dataclass
class Batch:
    """New items since a cursor, plus the cursor to save once they are committed.

    The engine stores the items and the cursor in one transaction, so the cursor
    never runs ahead of the rows (at-least-once fetch, exactly-once rows).
    """

    items: list[InboundMessage]
    cursor: dict[str, str]
    more: bool = False  # True when the connector has more waiting right now


class ConnectorError(OmnideskError):
    """A channel problem worth retrying (network, 5xx, rate limit)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """A problem retrying will not fix without a human (bad token, wrong password)."""


class UncertainError(ConnectorError):
    """A send whose request went out but whose answer never came (a timeout or a
    dropped connection after sending): it may have been delivered. The engine
    never retries it blindly; the agent checks the channel and decides."""


class RejectedError(ConnectorError):
    """The channel refused this one message (bot blocked, chat not found,
    channel archived): the reply fails at once, the channel itself is fine."""


@runtime_checkable
class Connector(Protocol):
    channel: str  # "email" | "telegram" | "slack"
    account: str  # the account's name from the config

    @property
    def name(self) -> str:  # "channel:account", the cursor and health key
        ...

    def fetch(self, cursor: dict[str, str]) -> Batch:
        """Return items newer than `cursor`. Must not block for long unless
        `wait` is implemented separately."""
        ...

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Block until new items may be ready, `timeout` passes or `stop` is set
        (IMAP IDLE, long polling). Waiting on `stop` is fine."""
        ...

    def send(self, message: OutboundMessage) -> Receipt:
        """Deliver one outbound message. A reply in several parts skips the
        `message.parts_done` already delivered and calls `message.on_part(id)`
        after each part it delivers. Raise ConnectorError only when the channel
        showed the message was not delivered (refused connection, 429, an error
        answer), UncertainError when it may have been (timeout or dropped
        connection after sending), PermanentError/RejectedError for what a retry
        will not fix."""
        ...

    def close(self) -> None:
        ...


class BaseConnector:
    """Convenience base: name, a sleeping wait, a no-op close."""

    channel = ""

    def __init__(self, account: str):
        self.account = account

    @property
    def name(self) -> str:
        return f"{self.channel}:{self.account}"

    def wait(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def secrets(self) -> list[str]:
        """This connector's secrets, to be kept out of health, logs and errors."""
        return []

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        pass
