"""Opening the SQLite file: pragmas, file mode, migrations, transactions."""
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
from store.fts import fts_text


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


def _refuse_url(path: str) -> None:
    """A database URL (`postgresql://...`) must never become a file of that name in the
    current directory; only SQLite files are supported stores."""
    # pathlib turns "postgresql://h/db" into "postgresql:/h/db", so match one slash too
    url = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/", path)
    if url:
        raise StoreError(f"{url.group(1)}://...: database URLs are not supported; the store is a SQLite "
                         "file path (e.g. ~/.local/share/omnidesk/omnidesk.db)")


def store_problem(exc: BaseException, path: str | os.PathLike | None = None) -> str | None:
    """The cause of a store error in plain words ("store locked by another
    process", "disk full", "store is read-only", ...), or None when `exc` is not
    a problem of the store file itself."""
    if not isinstance(exc, sqlite3.Error):
        return None
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
    """One connection to the store file. Use one per thread.

    Raises StoreError when the path is a URL, or the file cannot be opened or migrated."""

    def __init__(self, path: str | os.PathLike, *, clock=time.time, cache_kb: int = 65536, busy_seconds: float = 30.0,
                 group: str | None = None):
        _refuse_url(str(path))
        self.path = Path(path)
        self.clock = clock
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
            raise StoreError(f"{self.path}: cannot open the store: {why or getattr(e, 'strerror', None) or e}") from None
        self._depth = 0
        self._lock = threading.RLock()
        self.migrate()

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
        """The schema version of the open file (PRAGMA user_version: migrations applied)."""
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
    def tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls join the outer transaction."""
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
            self.conn.execute("BEGIN IMMEDIATE")
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

    # -- the two inserts that also feed full-text search ----------------------------
    def insert_message(self, **cols: Any) -> int:
        """Insert a messages row and index it for search (no trigger: see schema v3)."""
        raw = cols.get("raw")
        if raw is not None and len(raw) > BLOB_CHUNK:
            cols["raw"] = None  # written below in pieces
        names = ", ".join(cols)
        marks = ", ".join("?" * len(cols))
        message_id = self.conn.execute(f"INSERT INTO messages({names}) VALUES ({marks})", tuple(cols.values())).lastrowid
        self.conn.execute("INSERT INTO messages_fts(rowid, subject, text) VALUES (?, ?, ?)",
                          (message_id, fts_text(cols.get("subject")), fts_text(cols.get("text", ""))))
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
        customer_id = self.conn.execute("INSERT INTO customers(name, created_at) VALUES (?, ?)",
                                        (name, self.clock())).lastrowid
        self.conn.execute("INSERT INTO customers_fts(rowid, name) VALUES (?, ?)", (customer_id, fts_text(name)))
        return customer_id

    def q(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Run a read inside the store; rows as sqlite3.Row. For the store's own modules: public methods return
        dataclasses."""
        return self.conn.execute(sql, params).fetchall()

    def q1(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """Run a read inside the store; the first row or None. For the store's own modules."""
        return self.conn.execute(sql, params).fetchone()

    def data_version(self) -> int:
        """Changes when another connection commits: cheap change detection."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

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
