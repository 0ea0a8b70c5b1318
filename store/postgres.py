"""The store on PostgreSQL: a connection from a URL, and an adapter that gives the
store's modules the part of the sqlite3 API they use.

The store's SQL is written once, with `?` (and `?N`, `:name`) placeholders, in forms
both databases accept; the adapter turns placeholders into PostgreSQL's `$N` (cached
per statement) and gives rows that answer to an index and a column name, as
sqlite3.Row does. What SQLite has and PostgreSQL lacks as a function (scalar max/min,
json_extract, printf, group_concat, the NOCASE collation) is defined in the database
by store/schema_pg.py, so the same statement runs on both.

Secrets: the password comes from the caller (resolved from the config's secret
sources) or from libpq's own sources (PGPASSFILE, service files); it never appears in
an error message (URLs are scrubbed).
"""
from __future__ import annotations

import atexit
import os
import re
import sqlite3
import threading
import urllib.parse
from typing import Any, Iterator

from store.errors import OmnideskError

SCHEMES = ("postgresql", "postgres")
CHANGES = "omnidesk_changes"  # the LISTEN/NOTIFY channel a committing write transaction notifies
WRITE_LOCK = 0x6F6D6E6964657368  # pg_advisory_xact_lock key: one writer at a time, as on SQLite ("omnidesh")


class ConnectError(OmnideskError):
    """The database cannot be reached or opened; the message in plain words, without a password."""


class PgOperationalError(sqlite3.OperationalError):
    """The server went away or refused a statement for a reason of its own (not our SQL).
    A sqlite3.OperationalError, so the callers that handle a troubled store handle this
    too; `problem` says it in plain words."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


# -- URLs and secrets -------------------------------------------------------------------
def scrub(text: str, password: str | None = None) -> str:
    """`text` without any password: `user:secret@` in URLs, `password=...` in conninfo
    strings, and `password` itself wherever it appears."""
    # up to the last '@': a password with an unescaped '@' (p@ss) is masked whole
    text = re.sub(r"(://[^:/@\s]*):\S*@", r"\1:***@", str(text))
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    if password:
        text = text.replace(password, "***")
    return text


def where(url: str) -> str:
    """"user@host:port/db" of a URL for messages (never the password); libpq's
    defaults (PGHOST, PGPORT, ...) where the URL leaves a part out."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return scrub(url)
    import os

    # an unescaped '@' in the password leaves its tail in what libpq took for the host
    host = str(info.get("host") or os.environ.get("PGHOST") or "localhost").rpartition("@")[2]
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    db = info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or ""
    user = str(info.get("user") or os.environ.get("PGUSER") or "")
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


def _url_password(url: str) -> str | None:
    """The password part of a postgresql:// URL as written (up to the authority's last '@')."""
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:(\S*)@", url)
    return m.group(1) if m else None


def _plain(e: Exception, url: str, password: str | None) -> str:
    """A connection failure in plain words, naming host, port and database."""
    text = scrub(str(e), password).strip()
    low = text.lower()
    at = where(url)
    if "@" in (_url_password(url) or ""):  # libpq's message would name part of it as the host
        return (f"PostgreSQL at {at}: cannot connect: the password in the URL holds an '@'; write it as %40,"
                " or give the password through [store] password_env, password_command or password_keyring")
    if "connection refused" in low or "could not connect" in low and "no such file" in low:
        return f"PostgreSQL at {at}: connection refused (is the server running and listening there?)"
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        return (f"PostgreSQL at {at}: authentication failed (the password comes from [store] password_env,"
                " password_command or password_keyring, or from PGPASSFILE or a service file)")
    if "does not exist" in low and "database" in low:
        return f"PostgreSQL at {at}: the database does not exist (create it first, e.g. createdb)"
    if "timeout" in low or "timed out" in low:
        return f"PostgreSQL at {at}: no answer (connection timed out)"
    first = text.splitlines()[0] if text else type(e).__name__
    return f"PostgreSQL at {at}: cannot connect: {first}"


# -- rows -------------------------------------------------------------------------------
class Row:
    """A result row by index or by column name (case-insensitive), like sqlite3.Row."""

    __slots__ = ("_values", "_names")

    def __init__(self, values, names: dict[str, int]):
        self._values = values
        self._names = names

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._values[self._names[key.lower()]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __eq__(self, other) -> bool:
        return isinstance(other, Row) and tuple(self._values) == tuple(other._values) and self._names == other._names

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values))!r})"


def _row_factory(cursor):
    desc = cursor.description
    if desc is None:
        return tuple
    names: dict[str, int] = {}
    for i, col in enumerate(desc):
        names.setdefault(col.name.lower(), i)  # the first of two same-named columns, as sqlite3.Row
    return lambda values: Row(values, names)


# -- placeholders -----------------------------------------------------------------------
_PLACES = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?(\d*)|(?<![:\w]):([A-Za-z_]\w*)")
_cache: dict[str, tuple[str, tuple[str, ...] | None]] = {}


def translate(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """The statement with `$N` placeholders, and the parameter names in $N order when it
    used `:name` ones (None for positional). Quoted text and comments are left alone."""
    done = _cache.get(sql)
    if done is not None:
        return done
    names: list[str] = []
    top = 0

    def place(m: re.Match) -> str:
        nonlocal top
        number, name = m.group(1), m.group(2)
        if name is not None:
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"
        if number is None:
            return m.group(0)
        n = int(number) if number else top + 1  # SQLite: a bare ? is the largest number so far + 1
        top = max(top, n)
        return f"${n}"

    done = (_PLACES.sub(place, sql), tuple(names) if names else None)
    if len(_cache) < 4096:
        _cache[sql] = done
    return done


# executemany of `INSERT INTO t(cols) VALUES (...)` [ON CONFLICT ...]: one statement of many
# rows per chunk (psycopg pipelines one statement per row, some 60 µs of Python each).
_INSERT_VALUES = re.compile(r"(\s*INSERT\s+INTO\s+[\w.]+\s*\([^)]*\)\s*VALUES\s*)(\([^;]*?\))(\s*(?:ON\s+CONFLICT.*)?)$",
                            re.S | re.I)
_DOLLAR = re.compile(r"\$(\d+)")
MAX_PARAMS = 32767  # per statement (PostgreSQL's protocol allows 65535)
_many: dict[tuple[str, int], str | None] = {}


def _rows_statement(text: str, width: int, rows: int) -> str | None:
    """`text` (translated, one row of `width` parameters) for `rows` rows at once, or None
    when it is not a plain INSERT ... VALUES."""
    key = (text, rows)
    if key in _many:
        return _many[key]
    m = _INSERT_VALUES.fullmatch(text)
    out = None
    # (not ON CONFLICT DO UPDATE: two rows of one statement may not update the same row)
    if m and not re.search(r"\bSELECT\b|\bRETURNING\b|\bDO\s+UPDATE\b", m.group(2) + m.group(3), re.I):
        tuples = [_DOLLAR.sub(lambda d, base=i * width: f"${int(d.group(1)) + base}", m.group(2)) for i in range(rows)]
        out = m.group(1) + ", ".join(tuples) + m.group(3)
    if len(_many) < 1024:
        _many[key] = out
    return out


def _many_rows(conn_or_cursor, text: str, seq: list) -> bool:
    """Run executemany `text` over `seq` as multi-row INSERTs; False if it is not one."""
    width = len(seq[0])
    if len(seq) < 4 or width == 0 or _rows_statement(text, width, 1) is None:
        return False
    chunk = max(1, min(1000, MAX_PARAMS // width))
    for at in range(0, len(seq), chunk):
        part = seq[at:at + chunk]
        flat = [v for row in part for v in row]
        conn_or_cursor.execute(_rows_statement(text, width, len(part)), flat)
    return True


def _params(names: tuple[str, ...] | None, params: Any) -> Any:
    if names is None:
        return params
    return [params[n] for n in names]


# -- the connection -----------------------------------------------------------------------
class PgCursor:
    """cursor() of the adapter: execute/executemany with translation; `row_factory = None`
    gives plain tuples, as on sqlite3."""

    def __init__(self, conn: "PgConnection"):
        self._conn = conn
        self._cur = conn.raw.cursor()

    def _on(self, raw):
        """This cursor on `raw` (a fresh connection after a lost one gets a new cursor)."""
        if self._cur.connection is not raw:
            factory = self._cur.row_factory
            self._cur = raw.cursor()
            self._cur.row_factory = factory
        return self._cur

    @property
    def row_factory(self):
        return self._cur.row_factory

    @row_factory.setter
    def row_factory(self, factory) -> None:
        from psycopg.rows import tuple_row

        self._cur.row_factory = factory or tuple_row

    def execute(self, sql: str, params: Any = ()):
        text, names = translate(sql)
        return self._conn._run(text, lambda raw: self._on(raw).execute(text, _params(names, params)))

    def executemany(self, sql: str, seq) -> None:
        text, names = translate(sql)
        rows = [_params(names, p) for p in seq]

        def run(raw) -> None:
            cur = self._on(raw)
            if len(rows) == 1:
                cur.execute(text, rows[0])
            elif rows and not _many_rows(cur, text, rows):
                cur.executemany(text, rows)
        self._conn._run(text, run)


# Statements that change nothing (or only start a transaction): run again on a fresh
# connection when the old one turned out to be gone. A write in autocommit might have
# been done before the connection broke: it is not repeated (the store writes in
# transactions anyway).
_REPEATABLE = re.compile(r"\s*(SELECT|WITH|VALUES|SHOW|SET|LISTEN|UNLISTEN|BEGIN|EXPLAIN)\b", re.I)
_COMMIT = re.compile(r"\s*(COMMIT|END)\b", re.I)


def _commits(texts: list[str]) -> bool:
    return any(_COMMIT.match(part) for text in texts for part in text.split(";"))
RECONNECT_PAUSE = 2.0  # seconds between attempts to reconnect while the server stays away


class PgConnection:
    """What the store uses of sqlite3.Connection, on a psycopg 3 connection in autocommit
    mode (the store sends BEGIN and COMMIT itself, as it does on SQLite).

    A connection found gone (server restart, failover, pg_terminate_backend, an idle
    connection a firewall dropped) is replaced by a fresh one from the pool, with the
    session's settings (`session`) made again. What had not reached a transaction yet
    runs again on it, once: a statement outside a transaction that changes nothing, or a
    transaction's first round trip (BEGIN and what later() queued with it, no COMMIT). A
    transaction under way when the connection went fails as a whole (PgOperationalError
    "lost the connection ..., reconnecting", and every statement of it after) until its
    ROLLBACK, so the caller's retry (as for a locked SQLite store) runs it again from the
    start. `reconnects` counts the replacements (notes sent meanwhile were missed:
    data_version counts them as changes)."""

    def __init__(self, raw, url: str, password: str | None = None, pool=None, timeout: float = 10.0):
        self.raw = raw
        self.url = url
        self._password = password
        self._pool = pool
        self._timeout = timeout
        self._later: list[tuple[str, Any]] = []  # statements queued by later(), not sent yet
        self.session: list[str] = []  # run on every fresh connection first (SET lock_timeout, LISTEN)
        self.reconnects = 0
        self._lost: PgOperationalError | None = None  # the open transaction died with its connection
        self._retry_at = 0.0
        self._why_lost = ""  # why the last attempt to reconnect failed

    def execute(self, sql: str, params: Any = (), prepare: bool | None = None):
        """`prepare`: psycopg's (None: prepared once used 5 times; False: never, so every
        execution is planned for its own parameters)."""
        text, names = translate(sql)
        if sql == "ROLLBACK":  # what later() queued is dropped with the rest of the transaction
            self._later.clear()
            if self._lost is not None:
                self._lost = None  # the server rolled it back when the connection went
                return None
        return self._run(text, lambda raw: raw.execute(text, _params(names, params), prepare=prepare))

    def executemany(self, sql: str, seq) -> None:
        text, names = translate(sql)
        rows = [_params(names, p) for p in seq]

        def run(raw) -> None:
            if len(rows) == 1:  # (psycopg's executemany sets up a pipeline even for one)
                raw.execute(text, rows[0])
            elif rows and not _many_rows(raw, text, rows):
                raw.cursor().executemany(text, rows)
        self._run(text, run)

    def script(self, sql: str) -> None:
        """Statements without parameters in one round trip (`BEGIN; SELECT ...`; no `;`
        inside a statement)."""
        if not self._later:
            self._run(sql, lambda raw: raw.execute(sql))
            return
        for statement in sql.split(";"):  # (one statement per query in a pipeline)
            if statement.strip():
                self.later(statement.strip())
        self._run("", lambda raw: None)

    def later(self, sql: str, params: Any = ()) -> None:
        """Queue a statement whose outcome nobody reads at once (BEGIN, an INSERT without
        RETURNING, an UPDATE); it goes to the server with the next statement sent, in one
        round trip (a libpq pipeline), in order. Its error, if any, is raised by that next
        statement, still inside the same transaction (which the caller then rolls back)."""
        text, names = translate(sql)
        self._later.append((text, _params(names, params)))

    def flush(self) -> None:
        """Send what later() queued now and wait for it. The statements after see the catalog
        as it is then: within one pipeline the server keeps the catalog snapshot it took
        before a lock wait (a migration must see the tables another process just made)."""
        self._run("", lambda raw: None)

    def send(self, run):
        """run() (which sends statements on `raw`), preceded by the queued ones in the same
        round trip; its result."""
        if not self._later:
            return run()
        pending, self._later = self._later, []
        with self.raw.pipeline():
            for text, params in pending:
                self.raw.execute(text, params)
            result = run()
        return result

    def notes(self) -> list:
        """The notifications (LISTEN) that came in, without waiting."""
        return self._run("SELECT", lambda raw: list(raw.notifies(timeout=0)))

    def listen(self, channel: str) -> None:
        """LISTEN on `channel`, now and on every fresh connection after."""
        statement = f"LISTEN {channel}"
        if statement not in self.session:
            self.script(statement)
            self.session.append(statement)

    def cursor(self) -> PgCursor:
        return PgCursor(self)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        if self._lost is not None or self._later:
            return True  # (a lost one: until its ROLLBACK)
        if self.raw.closed:
            return False
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def lost(self) -> bool:
        """The server connection is gone (the next statement reconnects)."""
        return self.raw is not _CLOSED and self.raw.closed

    # -- a connection that went away ---------------------------------------------------------
    def _run(self, sql: str, work):
        """`work(raw)` after what later() queued, in one round trip, errors translated; a
        lost connection replaced (see the class)."""
        from psycopg.pq import TransactionStatus

        if self._lost is not None:
            raise PgOperationalError(str(self._lost), self._lost.problem)
        raw = self.raw
        if raw is not _CLOSED and raw.closed:  # found gone by an earlier statement
            self._reconnect()
            with self.errors():
                return self.send(lambda: work(self.raw))
        pending = list(self._later)
        server_idle = raw is not _CLOSED and raw.info.transaction_status == TransactionStatus.IDLE
        try:
            with self.errors():
                return self.send(lambda: work(raw))
        except PgOperationalError as e:
            if raw is _CLOSED or not raw.closed or self._pool is None:
                raise
            e.problem = self._lost_problem()
            texts = [text for text, _ in pending] + [sql]
            starts = server_idle and re.match(r"\s*BEGIN\b", texts[0], re.I) is not None
            # a transaction's first round trip (nothing of it ran before) may run again; one
            # under way is lost; outside a transaction only what changes nothing runs again
            again = (starts and not _commits(texts)) if pending else (server_idle and _REPEATABLE.match(sql)
                                                                          and not _commits([sql]))
            if not again:
                if starts or not server_idle:
                    self._lost = e
                raise
            self._reconnect()
            self._later = pending
        with self.errors():
            return self.send(lambda: work(self.raw))

    def _lost_problem(self, why: str = "") -> str:
        return f"lost the connection to PostgreSQL at {where(self.url)}, reconnecting" + (f": {why}" if why else "")

    def _reconnect(self) -> None:
        """A fresh connection from the pool in place of the lost one, its session set up;
        PgOperationalError when the server is still away (tried again after RECONNECT_PAUSE)."""
        import time

        import psycopg

        now = time.monotonic()
        if now < self._retry_at:  # (the last attempt's reason stands until the next attempt)
            raise PgOperationalError(self._why_lost, self._why_lost)
        try:
            # quick and in plain words while the server is away (the pool would wait its timeout)
            _direct(self.url, self._password, self._timeout).close()
            fresh = self._pool.getconn(timeout=self._timeout)
        except Exception as e:
            self._retry_at = now + RECONNECT_PAUSE
            why = str(e).partition(": ")[2] if isinstance(e, ConnectError) else scrub(str(e), self._password)
            self._why_lost = problem = self._lost_problem(why)
            raise PgOperationalError(problem, problem) from None
        old, self.raw = self.raw, fresh
        self._pool.putconn(old)  # broken: the pool drops it
        self.reconnects += 1
        try:
            for statement in self.session:
                fresh.execute(statement)
        except psycopg.Error as e:
            problem = self._lost_problem(scrub(str(e), self._password).splitlines()[0])
            raise PgOperationalError(problem, problem) from None

    def close(self) -> None:
        """Back to the pool (a broken or busy connection is closed by it). The adapter is
        unusable after, as a closed sqlite3 connection is: the connection is someone else's."""
        raw, self.raw = self.raw, _CLOSED
        self._later = []
        if raw is _CLOSED:
            return
        if self._pool is not None:
            pool, self._pool = self._pool, None
            _give_back(pool, raw)
        elif not raw.closed:
            raw.close()

    def errors(self):
        return _Errors(self)


class _Closed:
    closed = True

    def __getattr__(self, name):
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")


_CLOSED = _Closed()


class _Errors:
    """Turns psycopg's errors into sqlite3's classes (the store and its callers catch
    those), with passwords scrubbed from the message."""

    __slots__ = ("conn",)

    def __init__(self, conn: PgConnection):
        self.conn = conn

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        import psycopg

        if not isinstance(exc, psycopg.Error):
            return False
        message = scrub(str(exc), self.conn._password)
        if isinstance(exc, psycopg.OperationalError):
            closed = self.conn.raw.closed
            problem = (f"lost the connection to PostgreSQL at {where(self.conn.url)}" if closed
                       else f"PostgreSQL at {where(self.conn.url)}: {message.splitlines()[0] if message else 'error'}")
            raise PgOperationalError(message, problem) from exc
        # every other kind as sqlite3's class of the same DB-API name (callers catch sqlite3.Error)
        for kind in _KINDS:
            if isinstance(exc, getattr(psycopg, kind)):
                raise getattr(sqlite3, kind)(message) from exc
        raise sqlite3.Error(message) from exc


# most specific first: DB-API names both modules share
_KINDS = ("IntegrityError", "DataError", "ProgrammingError", "NotSupportedError", "InternalError", "DatabaseError",
          "InterfaceError")


def _adapt(raw) -> None:
    """Types as the store expects them from sqlite3: numeric (sum() of integers) as int
    or float, never Decimal; True/False as 1/0; text without NUL (PostgreSQL refuses it)."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.types.string import StrDumperUnknown

    class NumericLoader(Loader):
        def load(self, data):
            text = bytes(data)
            if b"." in text or b"e" in text or b"N" in text:
                return float(text)
            return int(text)

    class BoolAsInt(Dumper):
        oid = raw.adapters.types["int8"].oid

        def dump(self, obj):
            return b"1" if obj else b"0"

    class NoNul(StrDumperUnknown):
        def dump(self, obj):
            if "\x00" in obj:
                obj = obj.replace("\x00", "\ufffd")
            return super().dump(obj)

    raw.adapters.register_loader("numeric", NumericLoader)
    raw.adapters.register_dumper(bool, BoolAsInt)
    raw.adapters.register_dumper(str, NoNul)


def _kwargs(url: str, password: str | None, timeout: float) -> dict[str, Any]:
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": _row_factory, "cursor_factory": psycopg.RawCursor,
                              "application_name": "omnidesk"}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = max(1, int(timeout))
    if password:
        kwargs["password"] = password
    return kwargs


def _direct(url: str, password: str | None, timeout: float):
    """One new psycopg connection, or ConnectError in plain words."""
    try:
        import psycopg
    except ImportError:
        raise ConnectError("PostgreSQL stores need psycopg: pip install 'psycopg[binary]'") from None
    try:
        raw = psycopg.connect(url, **_kwargs(url, password, timeout))
    except psycopg.Error as e:
        raise ConnectError(_plain(e, url, password)) from None
    except Exception as e:  # a malformed URL (psycopg.ProgrammingError is a psycopg.Error; this is the rest)
        raise ConnectError(f"{scrub(url, password)}: not a PostgreSQL URL: {scrub(str(e), password)}") from None
    _adapt(raw)
    return raw


# -- the pool: one per process and database ------------------------------------------------
# A console opens a Store for each background read and the engine one per thread: with
# the pool those reuse connections (no new login each time). Keyed by process id too: a
# forked worker (the mail import's) must never share its parent's connections. A pool
# lives while any of its connections is out (the console's own store keeps it); the
# last one returned closes it, so nothing keeps reconnecting to a database in the
# background once no store uses it.
POOL_SIZE = 20  # connections per process and database at most (the server's default limit is 100)
_pools: dict[tuple, Any] = {}
_pools_lock = threading.Lock()


def _reset(raw) -> None:
    """A connection back in the pool: no LISTEN, no notes left for the next user."""
    raw.execute("UNLISTEN *")
    for _ in raw.notifies(timeout=0):
        pass


def _pool(url: str, password: str | None, timeout: float):
    key = (os.getpid(), url, password)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None:
            pool.omnidesk_out += 1
            return pool
    # A refusal, in plain words, before any pool retries it; outside the lock: a connect
    # may take connect_timeout, and other threads' stores open and close meanwhile.
    _direct(url, password, timeout).close()
    from psycopg_pool import ConnectionPool

    with _pools_lock:
        pool = _pools.get(key)  # another thread may have made it meanwhile
        if pool is None:
            pool = ConnectionPool(url, kwargs=_kwargs(url, password, timeout), min_size=1, max_size=POOL_SIZE,
                                  configure=_adapt, reset=_reset, check=ConnectionPool.check_connection,
                                  timeout=timeout, name="omnidesk", open=True, num_workers=1)
            pool.omnidesk_out = 0  # type: ignore[attr-defined]  # stores using it: closed when none is left
            _pools[key] = pool
        pool.omnidesk_out += 1  # type: ignore[union-attr]
    return pool


def _release(pool) -> bool:
    """One store less uses `pool`; True when it was the last (the pool is then out of
    `_pools` and the caller closes it)."""
    with _pools_lock:
        pool.omnidesk_out -= 1
        if pool.omnidesk_out:
            return False
        for key, p in list(_pools.items()):
            if p is pool:
                del _pools[key]
    return True


def _give_back(pool, raw) -> None:
    last = _release(pool)
    if pool.closed:
        raw.close()
        return
    pool.putconn(raw)
    if last:
        pool.close(timeout=1)


@atexit.register
def _close_pools() -> None:
    for key, pool in list(_pools.items()):
        if key[0] == os.getpid():
            pool.close(timeout=1)
    _pools.clear()


def connect(url: str, password: str | None = None, *, timeout: float = 10.0) -> PgConnection:
    """A connection to the database at `url` (postgresql://user@host:port/db?sslmode=...),
    from this process's pool for that database; PgConnection.close() gives it back.

    Raises ConnectError in plain words when the server refuses the connection,
    authentication fails or the database is missing; never with the password."""
    pool = _pool(url, password, timeout)
    try:
        raw = pool.getconn()
    except Exception as e:  # the pool's timeout: say why the server answers no
        if _release(pool):  # nothing uses it: no worker reconnecting in the background
            pool.close(timeout=1)
        _direct(url, password, timeout).close()
        raise ConnectError(f"PostgreSQL at {where(url)}: no connection within {timeout:g} s"
                           f" ({POOL_SIZE} in use by this process?): {scrub(str(e), password)}") from None
    return PgConnection(raw, url, password, pool, timeout)


def is_url(location: str) -> bool:
    """Does `location` look like a URL (scheme://...) rather than a file path?"""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", location) is not None


def scheme(location: str) -> str:
    return urllib.parse.urlsplit(location).scheme.lower()


__all__ = ["ConnectError", "connect", "scrub", "where", "translate", "Row", "PgConnection", "PgOperationalError", "SCHEMES",
           "CHANGES", "WRITE_LOCK", "OmnideskError"]
