"""Fixtures for the chat channels: the loopback Telegram and Slack servers,
connectors pointed at them, and a running sync engine.

Import the fixtures you use into the test module:

    from tests.support.chat import tg, wait_until, running_engine  # noqa: F401
"""
from __future__ import annotations

import contextlib
import time

import pytest

from connectors.engine import Engine
from connectors.sandbox.telegram import TelegramSandbox
from store import Store


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate()` until truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def running_engine(db_path, connectors, **kw):
    kw.setdefault("poll_interval", 2.0)
    kw.setdefault("lease_seconds", 10.0)
    kw.setdefault("permanent_retry", 1.0)
    engine = Engine(db_path, connectors, **kw)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def tg():
    with TelegramSandbox() as server:
        yield server


@pytest.fixture
def slack():
    from connectors.sandbox.slack import SlackSandbox

    with SlackSandbox() as server:
        yield server


@pytest.fixture
def live_store(db_path):
    """A store on real time, for tests that run the engine (which uses real time)."""
    s = Store(db_path)
    yield s
    s.close()


def telegram_connector(server: TelegramSandbox, account: str = "shop", **kw):
    from connectors.telegram import TelegramConnector

    kw.setdefault("long_poll", 2)
    kw.setdefault("timeout", 5.0)
    return TelegramConnector(account, server.token, base_url=server.base_url,
                             base_file_url=server.base_file_url, **kw)


def slack_connector(server, account: str = "team", **kw):
    from connectors.slack import SlackConnector

    kw.setdefault("poll_seconds", 0.5)
    kw.setdefault("calls_per_minute", 100_000)
    kw.setdefault("timeout", 5.0)
    return SlackConnector(account, server.bot_token, base_url=server.api_url, **kw)
