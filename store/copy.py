"""Copying a store to another backend (SQLite <-> PostgreSQL, either way), resumable
and verified.

    result = copy_store(Store("omnidesk.db"), Store("postgresql://desk@db/omnidesk"))

Every table is copied in foreign-key order with its ids, in batches each committed
with its own transaction. The search indexes are not copied (SQLite's FTS5 shadow
tables mean nothing to PostgreSQL): the destination indexes each batch as it arrives. PostgreSQL sequences are set past the largest id. While a copy is under
way the destination holds a table `omnidesk_copy` naming its source; a copy that was
interrupted (even by kill -9) continues where the committed batches end when run
again, and nothing is doubled. A destination that has rows but is not an unfinished
copy of the same source is refused.

Verification reads every table on both sides in primary-key order and compares the
row count and a SHA-256 over a canonical encoding of each row (numbers by value,
strings and bytes length-prefixed), so two backends that store the same content give
the same checksum. The source's rows are checked as the destination can hold them:
PostgreSQL text cannot hold NUL, so a NUL in SQLite text is copied as U+FFFD (as the
PostgreSQL store keeps it on every write) and counted per table (`TableCheck.nul_replaced`).

SRC is only read (store/copy_sides.py open_source); every database error names its
side, SRC or DEST, and an error once the copy has begun says it can be resumed. Attachment files (named by their SHA-256) are copied when the two
stores keep them in different directories.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable

from store.copy_sides import (BATCH_ROWS, PROGRESS_TABLE, CopyError, PostgresSide, Side, SideError, SqliteSide,
                              Table, describe, open_side, open_source)

__all__ = ["CopyError", "SideError", "CopyResult", "TableCheck", "copy_store", "canonical_row", "open_side",
           "open_source", "describe", "PostgresSide", "SqliteSide"]

Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in the table)


@dataclass
class TableCheck:
    table: str
    source_rows: int
    dest_rows: int
    source_sum: str  # of the source's rows as the destination holds them (see hold())
    dest_sum: str
    nul_replaced: int = 0  # text values of the source whose NUL the destination holds as U+FFFD

    @property
    def ok(self) -> bool:
        return self.source_rows == self.dest_rows and self.source_sum == self.dest_sum


@dataclass
class CopyResult:
    checks: list[TableCheck]
    files_copied: int = 0
    files_missing: list[str] = field(default_factory=list)  # attachment files the source lacks
    resumed: bool = False

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


# -- canonical rows ---------------------------------------------------------------------------
def canonical(value: Any) -> bytes:
    """One value as the checksum sees it: numbers by value (5, 5.0 and Decimal('5') are the
    same number on both backends), strings and bytes length-prefixed, NULL distinct."""
    if value is None:
        return b"N;"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        value = int(value)
    if isinstance(value, int):
        return b"n%d;" % value
    if isinstance(value, float):
        return b"f" + repr(value).encode() + b";"
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:" % len(data) + data + b";"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return b"b%d:" % len(data) + data + b";"
    raise CopyError(f"cannot compare a value of type {type(value).__name__}")


def canonical_row(row: Iterable[Any]) -> bytes:
    return b"".join(canonical(v) for v in row) + b"\n"


# -- the copy -------------------------------------------------------------------------------
def plan(source: Side, dest: Side) -> list[Table]:
    """The source's tables in foreign-key order (referenced tables first); each must have a
    place in the destination with every one of its columns."""
    tables = source.tables()
    dest_tables = dest.tables()
    lacking = sorted(set(dest_tables) - set(tables))
    if lacking:  # a damaged store, or not omnidesk's: copying the rest would "verify" a partial store
        raise CopyError(f"{source.role or 'the source'} {source.where} lacks table {lacking[0]}"
                        f"{f' (and {len(lacking) - 1} more)' if len(lacking) > 1 else ''}: not a whole omnidesk"
                        " store; nothing was copied")
    for t in tables.values():
        if t.name not in dest_tables:
            raise CopyError(f"table {t.name} of the source has no place in the destination (is it an older or newer"
                            " omnidesk? run the same version on both)")
        missing = [c for c in t.columns if c not in dest_tables[t.name].columns]
        if missing:
            raise CopyError(f"{t.name}.{missing[0]} of the source has no place in the destination")
    ordered: list[Table] = []
    placed: set[str] = set()
    pending = dict(sorted(tables.items()))
    while pending:
        ready = [t for t in pending.values() if t.refs & set(tables) <= placed]
        if not ready:
            raise CopyError(f"cannot order tables {sorted(pending)}: their references form a cycle")
        for t in ready:
            ordered.append(t)
            placed.add(t.name)
            del pending[t.name]
    return ordered


def _converter(kind: str) -> Callable[[Any], Any]:
    """A value of the source as the destination column takes it (SQLite's types are loose)."""
    def to_int(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return int(v) if isinstance(v, (bool, Decimal)) else v

    def to_real(v):
        return float(v) if isinstance(v, Decimal) else v

    def to_bool(v):
        return bool(v) if isinstance(v, (int, float)) else v

    def to_blob(v):
        return bytes(v) if isinstance(v, memoryview) else v

    def to_text(v):
        return int(v) if isinstance(v, bool) else v

    return {"int": to_int, "real": to_real, "bool": to_bool, "blob": to_blob}.get(kind, to_text)


def _check_destination(source: Side, dest: Side, tables: list[Table]) -> bool:
    """True when the destination is an unfinished copy of this source (resume); raises
    CopyError when it holds anything else."""
    origin = source.where
    progress = dest.progress()
    if progress:
        if progress.get("source") != origin:
            raise CopyError(f"the destination holds an unfinished copy of {progress.get('source')}, not of {origin};"
                            " copy into a new, empty store")
        return True
    # A new store is not bare: migrations seed some rows (the automation's cursors). Its
    # data tables (those with an id) must be empty; the seeded rows make way for the source's.
    filled = [(t.name, n) for t in tables if t.int_key and (n := dest.count(t.name))]
    if filled:
        what = ", ".join(f"{n} {name}" for name, n in filled[:3])
        raise CopyError(f"the destination is not empty ({what}); copy into a new, empty store")
    # One transaction: killed anywhere in it, the destination is as it was and the next run
    # starts afresh. (IF NOT EXISTS: an empty progress table, as a crash of an older version
    # between its CREATE and its INSERT left it, is a fresh start too.)
    with dest.tx():
        for t in reversed(tables):
            if not t.int_key:
                dest.execute(f"DELETE FROM {dest.quote(t.name)}")
        dest.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        dest.execute(f"INSERT INTO {PROGRESS_TABLE}(name, value) VALUES (?, ?)", ("source", origin))
    return False


def copy_table(source: Side, dest: Side, table: Table, progress: Progress | None = None,
               batch: int = BATCH_ROWS) -> None:
    """Copy one table's rows the destination lacks, batch by batch; then its self-references."""
    total = source.count(table.name)
    types = dest.column_types(table.name)
    convert = [_converter(types.get(c, "text")) for c in table.columns]
    nulled = [table.columns.index(c) for c in table.self_refs]  # set once every row is there
    last = dest.last_key(table)
    done = dest.count(table.name)
    if progress:
        progress(table.name, done, total)
    after = last[0] if (last and table.int_key) else None
    key_at = [table.columns.index(c) for c in table.key]
    for rows in source.scan(table, table.columns, after, batch):
        if last is not None and not table.int_key:  # resume past the last key the destination has
            rows = [r for r in rows if tuple(r[i] for i in key_at) > last]
            if not rows:
                continue
        out = []
        for r in rows:
            values = [dest.hold(f(v)) for f, v in zip(convert, r)]
            for i in nulled:
                values[i] = None
            out.append(tuple(values))
        dest.insert(table.name, table.columns, out)
        done += len(out)
        if progress:
            progress(table.name, done, total)
    for column in table.self_refs:
        pairs = [(r[1], r[0]) for rows in source.scan(table, [table.key[0], column]) for r in rows
                 if r[1] is not None]
        for i in range(0, len(pairs), batch):
            dest.update_column(table, column, pairs[i:i + batch])
    dest.insert(PROGRESS_TABLE, ["name", "value"], [(f"done:{table.name}", "1")])


def checksum(side: Side, table: Table, held_by: Side | None = None) -> tuple[int, str, int]:
    """(rows, SHA-256 of the canonical rows in primary-key order, values changed) of one
    table; with `held_by`, of the rows as that side holds them (values it changes counted)."""
    digest, rows, changed = hashlib.sha256(), 0, 0
    for batch in side.scan(table, table.columns):
        for r in batch:
            if held_by is not None:
                held = tuple(held_by.hold(v) for v in r)
                changed += sum(a is not b for a, b in zip(r, held))
                r = held
            digest.update(canonical_row(r))
        rows += len(batch)
    return rows, digest.hexdigest(), changed


def verify(source: Side, dest: Side, tables: list[Table]) -> list[TableCheck]:
    checks = []
    for t in tables:
        rows, digest, replaced = checksum(source, t, held_by=dest)
        dest_rows, dest_digest, _ = checksum(dest, t)
        checks.append(TableCheck(t.name, rows, dest_rows, digest, dest_digest, replaced))
    return checks


def copy_files(source: Side, dest_store) -> tuple[int, list[str]]:
    """Attachment files the destination's directory lacks, copied (content checked by its
    SHA-256 name); (files copied, relative paths the source lacks)."""
    src_root, dest_root = source.files_root, Path(dest_store.files.root)
    if src_root.resolve() == dest_root.resolve():
        return 0, []
    copied, missing = 0, []
    table = Table("attachments", ["id", "path", "sha256"], ["id"], True)
    for batch in source.scan(table, table.columns):
        for _id, rel, sha in batch:
            if not rel:
                continue
            target = dest_root / rel
            if target.exists():
                continue
            origin = src_root / rel
            if not origin.is_file():
                missing.append(rel)
                continue
            dest_store.files.access.mkdirs(target.parent)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.copy")
            shutil.copyfile(origin, tmp)
            os.chmod(tmp, dest_store.files.access.file_mode)
            if sha and _sha256(tmp) != sha:
                tmp.unlink()
                missing.append(rel)  # the source's file does not hold what its name says
                continue
            os.replace(tmp, target)
            copied += 1
    return copied, missing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def copy_store(source, dest_store, progress: Progress | None = None, batch: int = BATCH_ROWS) -> CopyResult:
    """Copy `source` (a Side from open_source, read-only; or an open Store) into `dest_store`
    (an open Store, new or an unfinished copy of the same source), `batch` rows per
    transaction, then verify. Raises CopyError when the copy cannot start, SideError
    (naming SRC or DEST) when a side fails; a finished copy that differs is reported in
    the result (`ok` False)."""
    opened = not isinstance(source, Side)
    if opened:
        source = open_side(source, "SRC")
    try:
        if source.where == describe(dest_store):
            raise CopyError("SRC and DEST are the same store")
        dest = open_side(dest_store, "DEST")
        tables = plan(source, dest)
        resumed = _check_destination(source, dest, tables)
        try:
            done = dest.progress()
            for t in tables:
                if f"done:{t.name}" not in done:
                    copy_table(source, dest, t, progress, batch)
                elif progress:
                    n = dest.count(t.name)
                    progress(t.name, n, n)
            dest.finish(tables)
            files_copied, files_missing = copy_files(source, dest_store)
            checks = verify(source, dest, tables)
        except SideError as e:  # every committed batch stays in DEST, and the next run goes on from there
            raise SideError(f"{e}; what was copied is kept: run the same command again to go on") from None
        result = CopyResult(checks, files_copied, files_missing, resumed)
        if result.ok:
            dest.execute(f"DROP TABLE {PROGRESS_TABLE}")
        return result
    finally:
        if opened:
            source.close()
