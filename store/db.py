"""Opening the store: a SQLite file (pragmas, file mode) or a PostgreSQL database
(store/postgres.py); migrations, transactions, the inserts that feed search."""
from __future__ import annotations

import errno
import grp
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from store import schema
from store.errors import OmnideskError
from store.fts import fts_text, tsvector
from store.names import name_key


BLOB_CHUNK = 1 << 20  # bytes: raw sources larger than this are written in pieces of this size


class StoreError(OmnideskError):
    """A user-facing problem with a store operation (unknown customer, ...)."""


class Access:
    """Who may use the files this store creates: only you (file 0600, directories
    0700), or a Unix group (`group`: files 0660, set-group-id directories 2770, so
    the group's members share the store, its WAL files and the attachments).
    Only what we create is given a mode; a file or directory that exists keeps
    the mode its owner chose."""

    def __init__(self, group: str | None = None, gid: int | None = None):
        self.group = group or None
        self.gid: int | None = gid
        if self.group and gid is None:
            try:
                self.gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise StoreError(f"[store] group {self.group!r}: no such Unix group") from None
        self.file_mode = 0o660 if self.gid is not None else 0o600
        self.dir_mode = 0o2770 if self.gid is not None else 0o700

    def mkdirs(self, path: Path) -> None:
        """Create `path` and its missing parents with this store's mode."""
        missing = []
        d = Path(path)
        while not d.exists() and d != d.parent:
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:  # another process made it first
                continue
            self._own(d, self.dir_mode)

    def create(self, path: Path) -> bool:
        """Create an empty file with this store's mode; False if it already existed."""
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, self.file_mode)
        except FileExistsError:
            return False
        os.close(fd)
        self._own(path, self.file_mode)
        return True

    def _own(self, path: Path, mode: int) -> None:
        if self.gid is not None:
            os.chown(path, -1, self.gid)
        os.chmod(path, mode)  # exactly: the umask would drop the group's bits


def _access_of(path: Path, group: str | None) -> Access:
    """A store that exists is shared if its file is group-readable and -writable
    (whoever opens it then keeps new files shared); a new one as configured."""
    try:
        st = path.stat()
    except OSError:
        return Access(group)
    return Access(gid=st.st_gid) if st.st_mode & 0o060 == 0o060 else Access()


def _read_only(path: Path) -> bool:
    """The file exists and its owner took away write permission (or we have none);
    root can write anyway, but a file with no write bit was made read-only on purpose."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not os.access(path, os.W_OK) or not mode & 0o222


def _create_private(path: Path, access: Access) -> None:
    """Create the database file before SQLite touches it, with the store's mode;
    the -wal and -shm files get the same mode from SQLite."""
    access.mkdirs(path.parent)
    access.create(path)


def store_url(location: str | os.PathLike) -> str | None:
    """The PostgreSQL URL `location` is, or None for a file path. Any other URL
    (sqlite://, mysql://, ...) is refused: it must never become a file of that name."""
    text = os.fspath(location) if not isinstance(location, str) else location
    url = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/", text)
    if not url:
        return None
    scheme = url.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        if not text[url.end():].startswith("/"):  # pathlib made "postgresql://h/db" into "postgresql:/h/db"
            raise StoreError(f"{scheme}:/...: a PostgreSQL URL starts {scheme}:// (postgresql://user@host:port/db)")
        return text
    raise StoreError(f"{scheme}://...: not a supported store; give a SQLite file path (e.g."
                     " ~/.local/share/omnidesk/omnidesk.db) or a PostgreSQL URL (postgresql://user@host:port/db)")


def default_files_dir() -> Path:
    """Where the attachments of a store given by URL go (it has no file to put them beside)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("omnidesk")) / "attachments"


def store_problem(exc: BaseException, path: str | os.PathLike | None = None) -> str | None:
    """The cause of a store error in plain words ("store locked by another
    process", "disk full", "store is read-only", ...), or None when `exc` is not
    a problem of the store file itself."""
    if not isinstance(exc, sqlite3.Error):
        return None
    if getattr(exc, "problem", None):  # PostgreSQL (store/postgres.py)
        return exc.problem
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
        return "store locked by another process"
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "disk full"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return "store is read-only"
    if name.startswith("SQLITE_IOERR") or "i/o error" in text:
        return "disk full" if _disk_full(path) else "disk I/O error on the store"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "cannot open the store file"
    return None


def _disk_full(path) -> bool:
    """SQLite reports some ENOSPC failures as a plain I/O error: look at the disk."""
    if path is None or str(path) == ":memory:":
        return False
    try:
        return shutil.disk_usage(Path(path).parent).free < 1024 * 1024
    except OSError:
        return False


class Database:
    """One connection to the store: a SQLite file path or a postgresql:// URL. Use one per thread.

    `password`: for a PostgreSQL URL, resolved by the caller from a secret source
    (libpq's PGPASSFILE and service files work without it); never stored or shown.
    Raises StoreError when the location is another kind of URL, or the store cannot be
    opened (the server refuses, authentication fails, ...) or migrated."""

    def __init__(self, path: str | os.PathLike, *, clock=time.time, cache_kb: int = 65536, busy_seconds: float = 30.0,
                 group: str | None = None, password: str | None = None):
        self.clock = clock
        self.password = password  # PostgreSQL: kept to open the same store again (import workers); never shown
        self._depth = 0
        self._lock = threading.RLock()
        self.url = store_url(path)
        self.pg = self.url is not None
        if self.pg:
            self._open_postgres(self.url, password, busy_seconds)
            self._migrate_or_close()
            return
        self.path = Path(path)
        self.location = str(path)
        self.access = _access_of(self.path, group)
        # A store its owner made read-only opens read-only: reading works, writing says why.
        self.read_only = str(path) != ":memory:" and _read_only(self.path)
        try:
            if str(path) != ":memory:" and not self.read_only:
                _create_private(self.path, self.access)
            if self.read_only:
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=busy_seconds,
                                            check_same_thread=False)
            else:
                self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_seconds,
                                            check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            # the search index triggers call it (store/fts.py, schema v10)
            self.conn.create_function("fts_text", 1, fts_text, deterministic=True)
            if not self.read_only:
                self._enable_wal()
            for pragma in ("synchronous=NORMAL", "foreign_keys=ON",
                           f"busy_timeout={int(busy_seconds * 1000)}", "temp_store=MEMORY", f"cache_size=-{int(cache_kb)}",
                           "wal_autocheckpoint=4000"):  # fewer, larger checkpoints: +9% bulk ingest
                self.conn.execute(f"PRAGMA {pragma}")
        except (OSError, sqlite3.Error) as e:  # not a database, no permission, no such directory ...
            why = store_problem(e, self.path) if isinstance(e, sqlite3.Error) else None
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                why = "disk full"
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            raise StoreError(f"{self.path}: cannot open the store: {why or getattr(e, 'strerror', None) or e}") from None
        self._migrate_or_close()

    def _migrate_or_close(self) -> None:
        """migrate(), and on any failure close the connection (a pooled PostgreSQL one
        goes back: a store that did not open holds none) and say why as a StoreError."""
        try:
            self.migrate()
        except StoreError:
            self.close()
            raise
        except sqlite3.Error as e:
            self.close()
            why = store_problem(e, None if self.pg else self.path)
            raise StoreError(f"{self.path}: cannot open the store: {why or e}") from None
        except BaseException:
            self.close()
            raise

    def _open_postgres(self, url: str, password: str | None, busy_seconds: float) -> None:
        from store import postgres

        from store.postgres import scrub

        self.location = url  # opens this store again (Store(location, password=...))
        self.path = scrub(url)  # what messages name the store by: never with a password
        self.access = Access()
        self.read_only = False
        try:
            self.conn = postgres.connect(url, password)
        except postgres.ConnectError as e:
            raise StoreError(str(e)) from None
        try:
            # waiting for the write lock is bounded as SQLite's busy timeout is (made again
            # on a fresh connection when this one is lost: store/postgres.py PgConnection)
            self.conn.session.append(f"SET lock_timeout = {int(busy_seconds * 1000)}")
            self.conn.script(self.conn.session[0])
        except BaseException as e:
            self.conn.close()
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"{self.path}: cannot open the store: {store_problem(e) or e}") from None
            raise
        self._changes = 0


    def _enable_wal(self) -> None:
        """Switching a new file to WAL takes an exclusive lock, and SQLite answers
        "locked" at once (no busy wait) when another process opens it at the same
        moment: retry for a few seconds."""
        for attempt in range(100):
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 99:
                    raise
                time.sleep(0.05)

    # -- schema ---------------------------------------------------------
    @property
    def version(self) -> int:
        """The schema version of the open store (SQLite: PRAGMA user_version, the migrations applied)."""
        if self.pg:
            from store import schema_pg

            return schema_pg.version(self.conn)
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, target: int | None = None) -> None:
        """Bring the schema to `target` (default: latest). The version is read
        inside the write transaction, so two processes opening a new file at
        once cannot both migrate it."""
        target = schema.LATEST if target is None else target
        if self.version >= target:
            self._check_not_newer()
            return
        if self.read_only:
            raise StoreError(f"{self.path}: the store is read-only and its schema (v{self.version}) needs an upgrade"
                             f" to v{target}; make it writable once (chmod u+w) so omnidesk can upgrade it")
        if self.pg:
            from store import schema_pg

            with self.tx():
                self.conn.flush()  # (the write lock held: the schema as the last migrator left it)
                schema_pg.migrate(self.conn, target)
            return
        with self.tx():
            for number in range(self.version, target):
                step = schema.MIGRATIONS[number]
                if callable(step):
                    step(self.conn)
                else:
                    for statement in _split_sql(step):
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")

    def _check_not_newer(self) -> None:
        if self.version > schema.LATEST:
            raise StoreError(f"{self.path}: database schema v{self.version} is newer than this omnidesk"
                             f" (v{schema.LATEST}); upgrade omnidesk")

    # -- transactions -----------------------------------------------------
    @contextmanager
    def tx(self, write_lock: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls join the outer transaction. On PostgreSQL
        `write_lock=False` skips the store-wide write lock, for a transaction that guards its
        rows itself (the outbox claim: FOR UPDATE SKIP LOCKED)."""
        if self.read_only:
            raise StoreError(f"{self.path}: the store is read-only (its file mode); reading works, but this"
                             " changes it: make it writable (chmod u+w) to do that")
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self._begin(write_lock)
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:  # SQLite may have rolled back already (disk full)
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                if self.pg:  # live updates: other connections see a change (data_version)
                    self.conn.script("NOTIFY omnidesk_changes; COMMIT")
                else:
                    self.conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full, I/O error) leaves the transaction open, and
                # every later BEGIN on this connection would fail: roll it back.
                if self.conn.in_transaction:
                    try:
                        self.conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise

    def _begin(self, write_lock: bool = True) -> None:
        """SQLite: BEGIN IMMEDIATE takes the file's write lock. PostgreSQL: a transaction-scoped
        advisory lock gives the same one writer at a time, which identity linking, merges and
        ingest dedupe rely on (released at COMMIT or ROLLBACK)."""
        if not self.pg:
            self.conn.execute("BEGIN IMMEDIATE")
            return
        from store.postgres import WRITE_LOCK

        if not write_lock:
            self.conn.execute("BEGIN")
            return
        # (sent with the transaction's first statement, in the same round trip: the lock is
        # still taken before anything of the transaction runs)
        self.conn.later("BEGIN")
        self.conn.later(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def insert_id(self, sql: str, params: Any = ()) -> int:
        """Run an INSERT and return the new row's id (SQLite: lastrowid; PostgreSQL: RETURNING id)."""
        if self.pg:
            return self.conn.execute(sql + " RETURNING id", params).fetchone()[0]
        return self.conn.execute(sql, params).lastrowid

    # -- the two inserts that also feed full-text search ----------------------------
    def insert_message(self, **cols: Any) -> int:
        """Insert a messages row and index it for search (no trigger: see schema v3)."""
        raw = cols.get("raw")
        if raw is not None and len(raw) > BLOB_CHUNK:
            cols["raw"] = None  # written below in pieces
        if raw is not None and len(raw) > BLOB_CHUNK and self.pg:
            cols["raw"] = raw  # bound whole: PostgreSQL has no incremental blob I/O
        names = ", ".join(cols)
        marks = ", ".join("?" * len(cols))
        message_id = self.insert_id(f"INSERT INTO messages({names}) VALUES ({marks})", tuple(cols.values()))
        if self.pg:  # (sent with the next statement: one round trip less per message)
            self.conn.later("INSERT INTO messages_fts(id, doc) VALUES (?, CAST(? AS tsvector))",
                            (message_id, tsvector(cols.get("subject"), cols.get("text", ""))))
        else:
            self.index_messages([(message_id, cols.get("subject"), cols.get("text", ""))])
        if raw is not None and cols["raw"] is None:
            self._write_raw(message_id, raw)
        return message_id

    def _write_raw(self, message_id: int, raw: bytes) -> None:
        """A large raw source through SQLite's incremental blob I/O: bound whole, SQLite
        would copy it twice more in memory (the binding and the row record)."""
        self.conn.execute("UPDATE messages SET raw = zeroblob(?) WHERE id = ?", (len(raw), message_id))
        view = memoryview(raw)
        with self.conn.blobopen("messages", "raw", message_id) as blob:
            for at in range(0, len(raw), BLOB_CHUNK):
                blob.write(view[at:at + BLOB_CHUNK])

    def insert_customer(self, name: str) -> int:
        """A new customer row named `name` (indexed for search); returns its id. Inside a transaction of the
        caller."""
        customer_id = self.insert_id("INSERT INTO customers(name, name_key, created_at) VALUES (?, ?, ?)",
                                     (name, name_key(name), self.clock()))
        if self.pg:  # (sent with the next statement)
            self.conn.later("INSERT INTO customers_fts(id, doc) VALUES (?, CAST(? AS tsvector))",
                            (customer_id, tsvector(name)))
        else:
            self.index_customers([(customer_id, name)])
        return customer_id

    # -- the search index ---------------------------------------------------------------
    def index_messages(self, rows: list[tuple[int, str | None, str | None]]) -> None:
        """Index new messages for search: rows of (id, subject, text)."""
        if self.pg:
            self.conn.executemany("INSERT INTO messages_fts(id, doc) VALUES (?, CAST(? AS tsvector))",
                                  [(i, tsvector(subject, text)) for i, subject, text in rows])
        elif len(rows) == 1:  # one-by-one ingest: the common case, kept as cheap as before
            i, subject, text = rows[0]
            self.conn.execute("INSERT INTO messages_fts(rowid, subject, text) VALUES (?, ?, ?)",
                              (i, fts_text(subject), fts_text(text)))
        else:
            self.conn.executemany("INSERT INTO messages_fts(rowid, subject, text) VALUES (?, ?, ?)",
                                  [(i, fts_text(subject), fts_text(text)) for i, subject, text in rows])

    def index_customers(self, rows: list[tuple[int, str]]) -> None:
        """Index new customers' names for search: rows of (id, name)."""
        if self.pg:
            self.conn.executemany("INSERT INTO customers_fts(id, doc) VALUES (?, CAST(? AS tsvector))",
                                  [(i, tsvector(name)) for i, name in rows])
        else:
            self.conn.executemany("INSERT INTO customers_fts(rowid, name) VALUES (?, ?)",
                                  [(i, fts_text(name)) for i, name in rows])

    def reindex_message(self, message_id: int) -> None:
        """After a message's subject or text changed (SQLite's triggers do this themselves)."""
        if self.pg:
            row = self.conn.execute("SELECT subject, text FROM messages WHERE id = ?", (message_id,)).fetchone()
            self.conn.execute("UPDATE messages_fts SET doc = CAST(? AS tsvector) WHERE id = ?",
                              (tsvector(row[0], row[1]), message_id))

    def reindex_customer(self, customer_id: int) -> None:
        """After a customer's name changed (SQLite's triggers do this themselves)."""
        if self.pg:
            row = self.conn.execute("SELECT name FROM customers WHERE id = ?", (customer_id,)).fetchone()
            self.conn.execute("UPDATE customers_fts SET doc = CAST(? AS tsvector) WHERE id = ?",
                              (tsvector(row[0]), customer_id))

    def fresh_statistics(self, messages: int) -> None:
        """PostgreSQL plans by table statistics that autovacuum refreshes about once a
        minute: a store filling fast (a first import) is planned as if nearly empty, and
        the dedupe lookups scan every message of an account. ANALYZE the tables ingest
        reads when the messages have more than doubled since (a few ms at these sizes)."""
        counted = self.conn.execute("SELECT reltuples FROM pg_class WHERE oid = CAST('messages' AS regclass)"
                                    ).fetchone()[0]
        if messages >= 2000 and messages > 2 * max(counted, 0):
            self.conn.execute("ANALYZE messages, customers, identities, identity_keys")

    def ids_taken(self, table: str) -> None:
        """After rows were inserted with ids of our choosing (a bulk batch hands them out as
        SQLite does): PostgreSQL's id sequence moves past them."""
        if self.pg:
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                              f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")

    def q(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Run a read inside the store; rows as sqlite3.Row. For the store's own modules: public methods return
        dataclasses."""
        return self.conn.execute(sql, params).fetchall()

    def q1(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """Run a read inside the store; the first row or None. For the store's own modules."""
        return self.conn.execute(sql, params).fetchone()

    def data_version(self) -> int:
        """Changes when another connection commits: cheap change detection. SQLite: PRAGMA
        data_version; PostgreSQL: the count of other connections' commits heard (LISTEN/NOTIFY)."""
        if self.pg:
            from store.postgres import CHANGES

            with self._lock:
                # Only a store asked for changes listens: notes pile up in every connection
                # that listens (one per commit by anyone) until it reads them.
                self.conn.listen(CHANGES)
                # (notes that came in during other statements wait in psycopg's backlog)
                for note in self.conn.notes():
                    if note.pid != self.conn.raw.info.backend_pid:  # our own commits do not count, as with SQLite
                        self._changes += 1
            # a fresh connection after a lost one missed the notes sent meanwhile: a change
            return self._changes + self.conn.reconnects
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    @property
    def connection_lost(self) -> bool:
        """PostgreSQL: the connection to the server is gone (the next statement takes a
        fresh one). A SQLite file has no connection to lose: False."""
        return self.pg and self.conn.lost

    def close(self) -> None:
        """Close the connection (the Store cannot be used after)."""
        self.conn.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        joined = "\n".join(buf).strip()
        if joined and sqlite3.complete_statement(joined):
            out.append(joined)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return [s for s in out if s.strip(" ;\n")]


IN_CHUNK = 500  # values per `IN (...)`: well under SQLite's limit on bound parameters


def in_chunks(values: list) -> Iterator[tuple[list, str]]:
    """`values` in slices for `... IN (...)` queries, each with its placeholders."""
    for i in range(0, len(values), IN_CHUNK):
        chunk = values[i:i + IN_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(value: str | None, default: Any = None) -> Any:
    if value is None:
        return default
    return json.loads(value)
