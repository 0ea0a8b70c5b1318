"""Raw access to one store's database for `store copy` (store/copy.py): its tables, primary
keys and references, scans in primary-key order, batch inserts; one class per backend.

Text keys are ordered byte-wise on both sides (COLLATE BINARY / COLLATE "C"), which is how
Python compares str, so a scan of either backend gives the same order.

SRC is opened read-only (open_source: SQLite `mode=ro`, a PostgreSQL session whose
transactions are READ ONLY) and never migrated: a location that holds no omnidesk store,
or one of another schema version, is refused before anything is read or written.
Every database error on a side becomes a CopyError naming that side (SRC or DEST) and
its location without a password.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from store.db import StoreError, store_problem

BATCH_ROWS = 2000
PROGRESS_TABLE = "omnidesk_copy"
# Tables a backend keeps for itself (schema bookkeeping, notification state): never copied.
BACKEND_TABLES = {PROGRESS_TABLE, "omnidesk_schema"}
# PostgreSQL's search index tables (a tsvector per row; SQLite's are FTS5 virtual tables): rebuilt
SEARCH_TABLES = {"messages_fts", "customers_fts"}
SEARCH_INDEXED = {"messages": ("subject", "text"), "customers": ("name",)}  # the columns the index sees
READ_ONLY = "SET default_transaction_read_only = on"  # SRC's PostgreSQL session: nothing it runs can write


class CopyError(StoreError):
    """The copy cannot start or go on (the destination is not empty, a table or column
    has no place in the destination, ...); the message says what to do."""


class SideError(CopyError):
    """A database error on one side (the server went away, disk full, ...): the message
    names the side and its location, without a password."""


@dataclass
class Table:
    name: str
    columns: list[str]  # the source's columns, in the source's order
    key: list[str]  # primary key columns
    int_key: bool  # a single integer primary key: resumed and paged by id
    refs: set[str] = field(default_factory=set)  # tables this one references
    self_refs: list[str] = field(default_factory=list)  # columns referencing this table (set after the rows)
    text_columns: set[str] = field(default_factory=set)  # ordered byte-wise on both sides



# -- one side of the copy ---------------------------------------------------------------------
class Side:
    """One store's database as the copy sees it. Statements go through the side's
    connection (`?` placeholders on both backends); a side that is written (DEST) has
    its Store, for transactions and the search index; SRC opened by open_source has none
    and cannot be written. What differs per backend is the catalog, the ordered scan and
    the bulk insert."""

    kind = ""
    collate = ""  # makes text keys compare byte-wise

    def __init__(self, conn, where: str, files_root: Path, *, store=None, role: str = "", owned: bool = False):
        self.conn = conn
        self.where = where  # the location, without a password (describe())
        self.files_root = Path(files_root)  # the attachment files
        self.store = store
        self.role = role  # "SRC" or "DEST": what an error message calls this side
        self._owned = owned  # close() closes the connection (open_source's)

    @staticmethod
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    # -- errors name the side ----------------------------------------------------------------
    @contextmanager
    def guard(self) -> Iterator[None]:
        """A database error in the block becomes a SideError naming this side."""
        try:
            yield
        except CopyError:
            raise
        except Exception as e:
            if not _database_error(e):
                raise
            raise SideError(f"{self.role or 'store'} {self.where}: {self.problem(e)}") from None

    def problem(self, e: Exception) -> str:
        """A database error in plain words, without a password."""
        from store.postgres import scrub

        text = scrub(str(e)).strip()
        return text.splitlines()[0] if text else type(e).__name__

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.guard():
            return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction of the side's Store (DEST)."""
        if self.store is None:
            raise CopyError(f"{self.role or 'store'} {self.where} is open read-only")
        with self.guard(), self.store.tx():
            yield

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self.tx():
            self.conn.execute(sql, params)

    def version(self) -> int:
        """The omnidesk schema version the database holds (0: none)."""
        raise NotImplementedError

    def hold(self, value: Any) -> Any:
        """`value` as this side's database holds it (see PostgresSide)."""
        return value

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {self.quote(table)}")[0][0]

    def order_by(self, table: Table, desc: bool = False) -> str:
        """ORDER BY the primary key, text compared byte-wise (as Python compares str)."""
        direction = " DESC" if desc else ""
        return ", ".join(f"{self.quote(c)}{self.collate if c in table.text_columns else ''}{direction}"
                         for c in table.key)

    def select(self, table: Table, columns: list[str], after: Any = None) -> str:
        """The ordered scan's statement; `after` (an int id) is written into it."""
        where = f" WHERE {self.quote(table.key[0])} > {int(after)}" if after is not None and table.int_key else ""
        cols = ", ".join(self.quote(c) for c in columns)
        return f"SELECT {cols} FROM {self.quote(table.name)}{where} ORDER BY {self.order_by(table)}"

    def last_key(self, table: Table) -> tuple | None:
        """The largest primary key present (byte-wise for text), or None for an empty table."""
        cols = ", ".join(self.quote(c) for c in table.key)
        rows = self.query(f"SELECT {cols} FROM {self.quote(table.name)} ORDER BY {self.order_by(table, True)} LIMIT 1")
        return tuple(rows[0]) if rows else None

    def progress(self) -> dict[str, str]:
        if PROGRESS_TABLE not in self.table_names():
            return {}
        return {str(k): str(v) for k, v in self.query(f"SELECT name, value FROM {PROGRESS_TABLE}")}

    def update_column(self, table: Table, column: str, pairs: list[tuple]) -> None:
        with self.tx():
            self.conn.executemany(f"UPDATE {self.quote(table.name)} SET {self.quote(column)} = ?"
                                  f" WHERE {self.quote(table.key[0])} = ?", pairs)

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Insert rows (ids kept) in one transaction, with their search index entries."""
        with self.tx():
            self._insert(table, columns, rows)
            index(self.store, table, columns, rows)

    def scan(self, table: Table, columns: list[str], after: Any = None,
             batch: int = BATCH_ROWS) -> Iterator[list[tuple]]:
        """Rows of `columns` in primary-key order (after the id `after`), `batch` at a time."""
        rows = self._scan(table, columns, after, batch)
        while True:
            with self.guard():
                got = next(rows, None)
            if got is None:
                return
            try:
                yield got
            except GeneratorExit:  # the copy stopped (perhaps on the other side's error): that error is the one to tell
                try:
                    rows.close()  # type: ignore[attr-defined]  # a generator: close() ends its cursor
                except Exception:
                    pass
                raise

    def close(self) -> None:
        """A Store's connection is the Store's to close; open_source's is closed here."""
        if self._owned:
            try:
                self._release()
            except Exception:
                pass
            self.conn.close()

    def _release(self) -> None:
        """Undo what open_source set on the connection before it goes."""

    # per backend
    def table_names(self) -> set[str]:
        raise NotImplementedError

    def tables(self) -> dict[str, Table]:
        raise NotImplementedError

    def column_types(self, table: str) -> dict[str, str]:
        raise NotImplementedError

    def _scan(self, table: Table, columns: list[str], after: Any, batch: int) -> Iterator[list[tuple]]:
        raise NotImplementedError

    def _insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        raise NotImplementedError

    def finish(self, tables: list[Table]) -> None:
        raise NotImplementedError


def index(store, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Feed the store's search index the rows just inserted (messages and customers)."""
    if table not in SEARCH_INDEXED or not rows:
        return
    at = [columns.index(c) for c in ("id", *SEARCH_INDEXED[table])]
    picked = [tuple(r[i] for i in at) for r in rows]
    if table == "messages":
        store.index_messages(picked)
    else:
        store.index_customers(picked)


class SqliteSide(Side):
    kind = "sqlite"
    collate = " COLLATE BINARY"

    def table_names(self) -> set[str]:
        return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def version(self) -> int:
        return self.query("PRAGMA user_version")[0][0]

    def problem(self, e: Exception) -> str:
        return store_problem(e, self.where) or super().problem(e)

    def tables(self) -> dict[str, Table]:
        rows = self.query("SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                          " AND name NOT LIKE 'sqlite_%' ORDER BY name")
        virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
        out = {}
        for name, _sql in rows:
            if name in virtual or any(name.startswith(v + "_") for v in virtual) or name in BACKEND_TABLES:
                continue  # a search index and its shadow tables: rebuilt on the destination
            info = self.query(f"PRAGMA table_info({self.quote(name)})")
            columns = [r[1] for r in info]
            key = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            types = {r[1]: (r[2] or "").upper() for r in info}
            if not key:
                raise CopyError(f"table {name} has no primary key; it cannot be copied in order")
            fks = self.query(f"PRAGMA foreign_key_list({self.quote(name)})")
            out[name] = Table(name, columns, key, len(key) == 1 and "INT" in types[key[0]],
                              refs={r[2] for r in fks if r[2] != name},
                              self_refs=[r[3] for r in fks if r[2] == name],
                              text_columns={c for c, t in types.items() if "CHAR" in t or "TEXT" in t or "CLOB" in t})
        return out

    def column_types(self, table: str) -> dict[str, str]:
        out = {}
        for r in self.query(f"PRAGMA table_info({self.quote(table)})"):
            t = (r[2] or "").upper()
            out[r[1]] = ("int" if "INT" in t else "text" if ("CHAR" in t or "TEXT" in t or "CLOB" in t)
                         else "blob" if "BLOB" in t or not t else "real")
        return out

    def _scan(self, table: Table, columns: list[str], after: Any, batch: int) -> Iterator[list[tuple]]:
        cur = self.conn.execute(self.select(table, columns, after))
        while rows := cur.fetchmany(batch):
            yield [tuple(r) for r in rows]

    def _insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        cols = ", ".join(self.quote(c) for c in columns)
        self.conn.executemany(f"INSERT INTO {self.quote(table)} ({cols}) VALUES ({', '.join('?' * len(columns))})",
                              rows)

    def finish(self, tables: list[Table]) -> None:
        """SQLite moves AUTOINCREMENT counters past inserted ids by itself."""


class PostgresSide(Side):
    """Scans through a server-side cursor and inserts through COPY, on the side's psycopg
    connection (conn.raw), so the store's password is never needed here; their errors
    are translated by Side.guard like every other statement's."""

    kind = "postgresql"
    collate = ' COLLATE "C"'

    @property
    def raw(self):
        """The psycopg connection (asked each time: the adapter may have replaced a lost one)."""
        return self.conn.raw

    def version(self) -> int:
        from store import schema_pg

        with self.guard():
            return schema_pg.version(self.conn)

    def hold(self, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL: the store keeps U+FFFD in its place (as its
        adapter does for every write)."""
        if isinstance(value, str) and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value

    def problem(self, e: Exception) -> str:
        if self.raw.closed:
            return "lost the connection to the server"
        return super().problem(e)

    def _release(self) -> None:
        if READ_ONLY in self.conn.session:
            self.conn.session.remove(READ_ONLY)
        if not self.raw.closed:
            self.conn.script("RESET default_transaction_read_only")

    def table_names(self) -> set[str]:
        return {r[0] for r in self.query("SELECT table_name FROM information_schema.tables"
                                         " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")}

    def tables(self) -> dict[str, Table]:
        out = {}
        for name in sorted(self.table_names() - BACKEND_TABLES - SEARCH_TABLES):
            info = self.query("SELECT column_name, data_type, is_generated FROM information_schema.columns"
                              " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
                              (name,))
            columns = [r[0] for r in info if r[2] != "ALWAYS"]  # generated columns compute themselves
            types = {r[0]: r[1] for r in info}
            key = [r[0] for r in self.query(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(? AS regclass) AND i.indisprimary"
                " ORDER BY array_position(i.indkey, a.attnum)", (self.quote(name),))]
            if not key:
                raise CopyError(f"table {name} has no primary key; it cannot be copied in order")
            fks = [(col, target.strip('"')) for col, target in self.query(
                "SELECT a.attname, CAST(CAST(c.confrelid AS regclass) AS text) FROM pg_constraint c"
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
                " WHERE c.contype = 'f' AND c.conrelid = CAST(? AS regclass)", (self.quote(name),))]
            out[name] = Table(name, columns, key, len(key) == 1 and types[key[0]] in ("integer", "bigint", "smallint"),
                              refs={t for _, t in fks if t != name}, self_refs=[c for c, t in fks if t == name],
                              text_columns={c for c, t in types.items() if t in ("text", "character varying")})
        return out

    def column_types(self, table: str) -> dict[str, str]:
        kinds = {"integer": "int", "bigint": "int", "smallint": "int", "boolean": "bool", "bytea": "blob",
                 "double precision": "real", "real": "real", "numeric": "real"}
        return {r[0]: kinds.get(r[1], "text") for r in self.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?", (table,))}

    def _scan(self, table: Table, columns: list[str], after: Any, batch: int) -> Iterator[list[tuple]]:
        # a server-side cursor: a table is never held in memory whole
        with self.raw.transaction(), self.raw.cursor(name="omnidesk_copy_scan") as cur:
            cur.execute(self.select(table, columns, after))
            while rows := cur.fetchmany(batch):
                yield [tuple(r) for r in rows]

    def _insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        cols = ", ".join(self.quote(c) for c in columns)
        # COPY goes on the raw connection: the transaction's BEGIN and write lock, which the
        # store queues to go with its next statement (PgConnection.later), are sent first
        self.conn.flush()
        with self.raw.cursor() as cur, cur.copy(f"COPY {self.quote(table)} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self, tables: list[Table]) -> None:
        """Each id sequence continues past the largest copied id, and the planner gets the
        tables' statistics (until autovacuum gets to a fresh copy, a search planned blind
        took 1.5 s at 1M messages instead of 5 ms)."""
        for t in tables:
            if not t.int_key:
                continue
            seq = self.query("SELECT pg_get_serial_sequence(?, ?)", (self.quote(t.name), t.key[0]))[0][0]
            if seq:
                self.execute(f"SELECT setval(?, coalesce(max({self.quote(t.key[0])}), 0) + 1, false)"
                             f" FROM {self.quote(t.name)}", (seq,))
        self.execute("ANALYZE")  # (the store's database: its tables, and the search index built alongside)


def open_side(store, role: str = "") -> Side:
    """The side of an open Store (DEST; SRC in tests): PostgreSQL when it was opened from a URL."""
    kind = PostgresSide if getattr(store, "pg", False) else SqliteSide
    return kind(store.conn, describe(store), store.files.root, store=store, role=role)


def open_source(location: str, *, password: str | None = None, busy_seconds: float = 30.0) -> Side:
    """SRC, opened read-only: a SQLite file (`mode=ro`) or a postgresql:// URL (every
    transaction READ ONLY). Nothing is created or migrated; raises CopyError (naming SRC)
    when it cannot be opened, holds no omnidesk store, or is of another schema version
    than this omnidesk's."""
    from store import schema
    from store.db import default_files_dir, store_url
    from store.postgres import scrub

    try:
        url = store_url(location)
    except StoreError as e:
        raise CopyError(f"SRC: {e}") from None
    if url:
        from store import postgres

        where = describe_url(url)
        try:
            conn = postgres.connect(url, password)
        except postgres.ConnectError as e:
            raise CopyError(f"SRC: {e}") from None
        side: Side = PostgresSide(conn, where, default_files_dir(), role="SRC", owned=True)
        try:
            with side.guard():
                conn.script(READ_ONLY)
            conn.session.append(READ_ONLY)  # made again on a connection that replaces a lost one
        except BaseException:
            side.close()
            raise
    else:
        path = Path(location).expanduser()
        if not path.is_file():
            raise CopyError(f"SRC {scrub(location)}: no such store file")
        where = str(path.resolve())
        try:
            read_only = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=busy_seconds,
                                        check_same_thread=False)
        except sqlite3.Error as e:
            raise CopyError(f"SRC {where}: cannot open: {store_problem(e, path) or e}") from None
        side = SqliteSide(read_only, where, Path(str(path) + ".files"), role="SRC", owned=True)  # as Store() puts them
    try:
        version = side.version()
        if version == 0:
            raise CopyError(f"SRC {side.where}: not an omnidesk store (it has no omnidesk schema); check the"
                            " file name or the database in the URL")
        if version > schema.LATEST:
            raise CopyError(f"SRC {side.where}: its schema (v{version}) is newer than this omnidesk's"
                            f" (v{schema.LATEST}); copy it with the omnidesk that wrote it")
        if version < schema.LATEST:
            raise CopyError(f"SRC {side.where}: its schema (v{version}) is older than this omnidesk's"
                            f" (v{schema.LATEST}); open it once with this omnidesk (e.g. `omnidesk --db SRC stats`),"
                            " which upgrades it, then copy it")
    except BaseException:
        side.close()
        raise
    return side


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.resolve()))


def _database_error(e: Exception) -> bool:
    if isinstance(e, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(e, psycopg.Error)


def describe(store) -> str:
    """The store's location without a password: what the destination records as its source."""
    url = getattr(store, "url", None)
    if url:
        return describe_url(url)
    return str(Path(store.path).resolve())


def describe_url(url: str) -> str:
    """scheme://user@host:port/db of a URL: never its password (nor its query)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = (f"{parts.username}@" if parts.username else "") + (parts.hostname or "") + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
