"""Shared fixtures: a real SQLite store in a temp dir, a controllable clock,
and a small factory for inbound messages."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
def _corpora() -> Path:
    """The shared read-only corpora: ../shared/corpora next to the checkout (a clean
    clone elsewhere finds them at /work/shared, or wherever OMNIDESK_CORPORA says)."""
    candidates = [Path(os.environ["OMNIDESK_CORPORA"])] if os.environ.get("OMNIDESK_CORPORA") else []
    candidates += [ROOT.parent / "shared" / "corpora", Path("/work/shared/corpora")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


CORPORA = _corpora()
sys.path.insert(0, str(ROOT))

from store import Store  # noqa: E402
from store.models import InboundMessage, Sender  # noqa: E402


class Clock:
    def __init__(self, now: float = 1_790_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "omnidesk.db"


# -- the store's backend ------------------------------------------------------------------
# A test runs on SQLite unless its module (or the test) is marked `both_backends`: then it
# runs twice, as [sqlite] and [postgresql]. A test about the SQLite file itself (modes, WAL,
# locks, a read-only file, disk full) is marked `sqlite_only("why")` and runs once.
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "store_backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("both_backends") is None:
        return
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        return
    metafunc.parametrize("store_backend", BACKENDS, indirect=True)


@pytest.fixture
def store_backend(request) -> str:
    """"sqlite" or "postgresql": the backend of this test's store."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_location(request, store_backend, db_path) -> str:
    """Where this test's store lives, as `--db`/OMNIDESK_DB/Store() take it: a SQLite file
    path in tmp_path, or the URL of a fresh PostgreSQL database."""
    if store_backend == "postgresql":
        return request.getfixturevalue("pg_url")
    return str(db_path)


@pytest.fixture
def new_store_location(request, store_backend, tmp_path):
    """new_store_location(name, migrated=True): another store location on this test's
    backend, for tests that need two stores (or a database the Store never opened:
    migrated=False; a SQLite file is always new)."""
    made = []

    def make(name: str, migrated: bool = True) -> str:
        if store_backend != "postgresql":
            return str(tmp_path / f"{name}.db")
        server = request.getfixturevalue("pg_server")
        database = server.create_database(template=TEMPLATE if migrated else "template0")
        made.append((server, database))
        return server.url(database)

    yield make
    for server, database in made:
        server.drop_database(database)


@pytest.fixture
def make_store(store_location, clock):
    """Open (another) Store on this test's location: make_store(**Store kwargs); every store
    opened so is closed at teardown."""
    opened = []

    def make(location=None, **kw):
        kw.setdefault("clock", clock)
        s = Store(location or store_location, **kw)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store):
    return make_store()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Never touch the real user's config or data."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("OMNIDESK_DB", raising=False)
    monkeypatch.delenv("OMNIDESK_CONFIG", raising=False)


_ids = itertools.count(1)


def inbound(channel="telegram", address="1001", text="hello", *, account="main", name="", handle="",
            emails=(), phones=(), sent_at=1_790_000_000.0, external_id=None, **kw) -> InboundMessage:
    return InboundMessage(
        channel=channel, account=account, external_id=external_id or f"x{next(_ids)}",
        sender=Sender(channel, address, name, handle, tuple(emails), tuple(phones)),
        text=text, sent_at=sent_at, **kw,
    )


@pytest.fixture
def make_inbound():
    return inbound


# The shared fixtures of tests/support, available to every test module without an import:
# real servers (Dovecot, an SMTP sink, the Telegram and Slack sandboxes) and a real-time store.
from tests.support.chat import live_store, slack, tg  # noqa: E402,F401
from tests.support.dovecot import dovecot  # noqa: E402,F401
from tests.support.smtp import smtp_sink  # noqa: E402,F401
from tests.support.postgres import TEMPLATE, pg_server, pg_url  # noqa: E402,F401
