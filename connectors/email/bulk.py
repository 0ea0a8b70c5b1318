"""Bulk import of a Maildir tree or an mbox file: parse on every core, insert in batches.

Workers get small tasks (a file path, or an mbox offset and length) rather than
message bytes, parse a chunk and store it through their own connection in one
transaction. The store drops what it already has (same Message-ID, or same
bytes when there is none), so importing twice adds nothing.
"""
from __future__ import annotations

import email.utils
import multiprocessing
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from connectors.email.maildir import delivered_at, is_maildir
from connectors.email.parse import parse, warm
from connectors.email.spool import parse_spooled

Task = tuple  # ("file", path) | ("mbox", path, offset, length)
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.M)


@dataclass
class ImportStats:
    seen: int = 0
    added: int = 0
    unreadable: int = 0  # stored raw with a parse-error note
    ours: int = 0  # sent by us (a Sent folder): filed as our replies
    new_customers: set = field(default_factory=set)  # customers the import created
    touched: set = field(default_factory=set)  # customers the import added mail to
    ids: set = field(default_factory=set)  # external ids of every message read (stored now or before)

    @property
    def skipped(self) -> int:
        """Already in the store (or unreadable files that vanished)."""
        return self.seen - self.added


# Folders that hold no customer conversations (Maildir++ ".INBOX.Trash" counts as "trash").
SKIP_FOLDERS = {"trash", "deleted items", "deleted messages", "spam", "junk", "junk e-mail", "bulk mail", "drafts"}


def is_skipped(folder: str) -> bool:
    return folder.lstrip(".").rsplit(".", 1)[-1].strip().lower() in SKIP_FOLDERS


def maildir_tasks(root: Path, all_folders: bool = False) -> list[Task]:
    """Every message file under `root`: the root itself and any sub-Maildir
    (mbsync's INBOX/, Maildir++ .Sent/ ...), never tmp/, and not trash, spam
    or drafts unless `all_folders`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    tasks = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "tmp" and (all_folders or not is_skipped(d)))
        here = Path(dirpath)
        if here.name in ("cur", "new") and is_maildir(here.parent):
            with os.scandir(here) as entries:
                tasks.extend(("file", e.path) for e in sorted(entries, key=lambda e: e.name)
                             if e.is_file() and not e.name.startswith("."))
            dirnames[:] = []
    return tasks


SCAN_CHUNK = 8 << 20  # bytes read at a time while looking for "From " lines


def _from_lines(path: Path) -> list[int]:
    """Offsets of the lines that start with "From ", read in chunks: a 1 GB mbox is
    never in memory (nor mapped: mapped pages count as the process's memory)."""
    starts, offset, tail = [], 0, b"\n"  # the file's start counts as a line start
    with open(path, "rb") as f:
        while chunk := f.read(SCAN_CHUNK):
            data = tail + chunk  # the last bytes of the previous chunk: a match may straddle
            at = data.find(b"\nFrom ")
            while at >= 0:
                starts.append(offset - len(tail) + at + 1)
                at = data.find(b"\nFrom ", at + 1)
            tail = data[-6:]
            offset += len(chunk)
    return sorted(set(starts))


def mbox_tasks(path: Path) -> list[Task]:
    """(offset, length) of each message: it starts after a "From " line and ends
    before the next one (the classic mbox format, as Python's `mailbox` reads it)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an mbox file: give the mbox file itself, or import a"
                         f" Maildir with `omnidesk import maildir {path}`")
    size = path.stat().st_size
    if size == 0:
        return []
    starts = _from_lines(path)
    if not starts or starts[0] != 0:
        raise ValueError(f"{path}: not an mbox file (it must start with a 'From ' line)")
    tasks, name = [], str(path)  # one path string shared by every task of a big mbox
    with open(path, "rb") as f:
        for i, start in enumerate(starts):
            f.seek(start)
            body = start + len(f.readline(1 << 16))  # the message starts after its "From " line
            end = starts[i + 1] if i + 1 < len(starts) else size
            tasks.append(("mbox", name, body, max(0, end - body)))
    return tasks


def _delivered(line: bytes) -> float | None:
    """The time on an mbox "From sender Mon Dec 10 12:00:00 2012" line (UTC when it names no zone)."""
    parts = line.decode("ascii", "replace").split(None, 2)
    try:
        parsed = email.utils.parsedate_tz(parts[2]) if len(parts) == 3 else None
        return None if parsed is None else float(email.utils.mktime_tz((*parsed[:9], parsed[9] or 0)))
    except (ValueError, OverflowError):
        return None


def read_task(task: Task) -> tuple[bytes, float]:
    """(raw bytes, a fallback time) for one task. The fallback is the time the
    mail was delivered, for a message without Date and Received headers: the
    Maildir file name's time, the mbox "From " line's, else the file's mtime."""
    if task[0] == "file":
        with open(task[1], "rb") as f:
            raw, mtime = f.read(), os.fstat(f.fileno()).st_mtime
        return raw, delivered_at(os.path.basename(task[1]), mtime)
    _, path, offset, length = task
    with open(path, "rb") as f:
        start = max(0, offset - 512)
        f.seek(start)
        from_line = f.read(offset - start).rstrip(b"\r\n").rpartition(b"\n")[2]
        if length >= 2:  # the blank line that separates mbox messages is not part of the mail
            f.seek(offset + length - 2)  # (looked at first: slicing it off would copy a big mail)
            length -= f.read(2) == b"\n\n"
        f.seek(offset)
        raw = f.read(length)
        mtime = _delivered(from_line) or os.fstat(f.fileno()).st_mtime
    # mbox writers escape body lines starting "From " as ">From " (and, in mboxrd,
    # ">From " as ">>From "): one ">" comes off again
    return _ESCAPED_FROM.sub(rb"\1", raw), mtime


def _parse_one(task: Task, account: str, own: str = "", spool_dir: Path | None = None, history_before: float = 0.0):
    try:
        raw, mtime = read_task(task)
    except OSError:
        return None  # vanished meanwhile (a mail syncer moved it)
    if spool_dir is None:
        item = parse(raw, account, fallback_time=mtime, meta={"imported": True}, own_address=own)
    else:
        item = parse_spooled(raw, account, spool_dir, fallback_time=mtime, meta={"imported": True}, own_address=own)
    if item.sent_at < history_before:  # old history: stored, but nobody waits for it (connectors/email/backlog.py)
        item.meta["backlog"] = True
    return item


BATCH_BYTES = 32 << 20  # raw bytes held before they are stored: memory stays bounded with big mail


def _import_chunk(store, tasks: list[Task], account: str, own: str = "", history_before: float = 0.0) -> ImportStats:
    """Parse a chunk, then store it in one transaction (or several, when the
    chunk holds more than BATCH_BYTES of mail). Mail from `own` (our address:
    a Sent folder) is filed as our replies in its customers' timelines; mail
    sent before `history_before` (unix seconds) is history that waits for nobody."""
    stats, items, held = ImportStats(), [], 0
    spool_dir = store.files.spool_dir()
    for task in tasks:
        item = _parse_one(task, account, own, spool_dir, history_before)
        stats.seen += 1
        if item is not None:
            stats.ids.add(item.external_id)
        if item is not None and own and item.sender.address == own:
            stats.ours += 1
            item.meta["ours"] = True
            items.append(item)
        elif item is not None:
            stats.unreadable += bool(item.parse_error)
            items.append(item)
        held += len(item.raw or b"") if item is not None else 0
        if held > BATCH_BYTES:
            _store(store, items, stats)
            items, held = [], 0
    _store(store, items, stats)
    return stats


def _store(store, items: list, stats: ImportStats) -> None:
    results = store.ingest_batch(items) if items else []
    stats.added += len(results)
    stats.new_customers |= {r.customer_id for r in results if r.new_customer}
    stats.touched |= {r.customer_id for r in results}
    for item in items:  # spooled files the store did not take (a message it had already)
        for att in item.attachments:
            if att.path:
                Path(att.path).unlink(missing_ok=True)


_worker_store = None


def _worker_init(path: str, files_root: str, max_bytes: int, password: str | None = None) -> None:
    global _worker_store
    from store import Store

    _worker_store = Store(path, attachments_dir=files_root, max_attachment_bytes=max_bytes, password=password)


def _worker_chunk(job: tuple[list[Task], str, str, float]) -> ImportStats:
    return _import_chunk(_worker_store, *job)


def import_into(store, tasks: list[Task], account: str, *, own: str = "", workers: int | None = None,
                chunk: int = 200, on_progress: Callable[[int], None] | None = None,
                history_before: float = 0.0) -> ImportStats:
    """Import `tasks` into `store`'s database on `workers` processes (default: all cores).
    Mail sent before `history_before` (unix seconds; 0: none) is stored as
    history (meta "backlog"): it opens no wait, and its new senders start done.

    Each worker parses a chunk and writes it itself through its own store
    connection: SQLite lets one write at a time, but the others keep parsing
    meanwhile, and no parsed message has to be copied back to this process.
    (So the `store.on_ingest` hooks of this process do not see imported rows.)
    """
    workers = workers or os.cpu_count() or 1
    chunks = [tasks[i:i + chunk] for i in range(0, len(tasks), chunk)]
    total = ImportStats()

    def add(part: ImportStats) -> None:
        total.seen += part.seen
        total.added += part.added
        total.unreadable += part.unreadable
        total.ours += part.ours
        total.new_customers |= part.new_customers
        total.touched |= part.touched
        total.ids |= part.ids
        if on_progress:
            on_progress(part.seen)

    if workers <= 1 or len(chunks) < 2:
        for c in chunks:
            add(_import_chunk(store, c, account, own, history_before))
        return total
    # fork starts workers fastest, but is only safe while this process has a single thread
    methods = multiprocessing.get_all_start_methods()
    method = "fork" if "fork" in methods and threading.active_count() == 1 else \
        "forkserver" if "forkserver" in methods else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "fork":
        warm()  # loaded once here rather than once in every worker
    # (a PostgreSQL store's password goes to the workers through the pool's pipe, nowhere else)
    init = (store.location, str(store.files.root), store.files.max_bytes, store.password)
    with ctx.Pool(min(workers, len(chunks)), initializer=_worker_init, initargs=init) as pool:
        for part in pool.imap_unordered(_worker_chunk, ((c, account, own, history_before) for c in chunks)):
            add(part)
        pool.close()
        pool.join()
    return total
