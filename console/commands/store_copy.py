"""`omnidesk store copy SRC DEST`: move a store between SQLite and PostgreSQL.

    omnidesk store copy ~/.local/share/omnidesk/omnidesk.db postgresql://desk@db.example/omnidesk
    omnidesk store copy postgresql://desk@db.example/omnidesk backup.db

SRC and DEST are each a SQLite file or a postgresql:// URL. SRC is only read (opened
read-only, never migrated): one that holds no omnidesk store, or a store of another
schema version, is refused. DEST must be new (or an unfinished copy of the same SRC: run
the command again and it goes on where it stopped). Every table is verified afterwards
(row counts and content checksums); a difference is shown table by table and the command
exits 1. Stop `omnidesk sync` and the consoles while copying: rows written meanwhile make
the checksums differ. A failure is one line naming SRC or DEST; no message shows a password.
"""
from __future__ import annotations

import sys
from pathlib import Path

from console.commands.common import UserError


def register(sub, parents) -> None:
    p = sub.add_parser("store", parents=parents, help="move the store between SQLite and PostgreSQL",
                       description="Work on a whole store. `omnidesk store copy SRC DEST` copies one.")
    actions = p.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    c = actions.add_parser("copy", parents=parents, help="copy a store to another backend, verified and resumable",
                           description="Copy every table of SRC into DEST (a SQLite file or a postgresql:// URL, "
                                       "either way), keeping ids, then verify row counts and content checksums per "
                                       "table. Interrupted, run it again: it goes on where it stopped.")
    c.add_argument("source", metavar="SRC", help="the store to copy: a SQLite file or postgresql://user@host/db")
    c.add_argument("dest", metavar="DEST", help="a new store: a SQLite file or postgresql://user@host/db")
    c.add_argument("--batch", type=int, default=2000, help="rows per transaction (default: 2000)")
    c.set_defaults(func=run_copy)


def _is_url(location: str) -> bool:
    return "://" in location


def _open_source(location: str, ctx):
    """SRC, read-only (store/copy_sides.py open_source). The [store] settings apply to SRC
    and DEST, its password source (password_env/_command/_keyring) to a postgresql:// one;
    libpq's PGPASSFILE works too."""
    from connectors.config import store_options
    from store.copy import open_source

    options = store_options(ctx.config)
    return open_source(location, password=options.get("password"), busy_seconds=options["busy_seconds"])


def _open_dest(location: str, ctx):
    """A Store on DEST (created and migrated when new); a failure names DEST."""
    from connectors.config import store_options
    from store import Store, StoreError

    if not _is_url(location):
        location = str(Path(location).expanduser())
    try:
        return Store(location, **store_options(ctx.config))
    except StoreError as e:
        raise UserError(f"DEST: {e}") from None


class _Bar:
    """A progress bar per table on a terminal; one line per finished table otherwise."""

    def __init__(self, stream):
        self.stream = stream
        self.live = stream.isatty()
        self.tasks: dict[str, int] = {}
        self.bar = None
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=Console(file=stream), transient=False)
            self.bar.start()

    def __call__(self, table: str, done: int, total: int) -> None:
        if self.bar is not None:
            if table not in self.tasks:
                self.tasks[table] = self.bar.add_task(table, total=total)
            self.bar.update(self.tasks[table], completed=done, total=total)
        elif done >= total and table not in self.tasks:
            self.tasks[table] = total
            print(f"copied {table}: {total} rows", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def report(result) -> str:
    """The verification, one line per table."""
    width = max([len(c.table) for c in result.checks] + [5])
    lines = [f"{'table':<{width}}  {'source rows':>11}  {'dest rows':>11}  checksum (SHA-256)"]
    for c in result.checks:
        same = c.source_sum == c.dest_sum
        mark = f"{c.source_sum[:16]}  ok" if c.ok else (
            f"{c.source_sum[:16]} != {c.dest_sum[:16]}  MISMATCH" if not same else f"{c.source_sum[:16]}  MISMATCH")
        lines.append(f"{c.table:<{width}}  {c.source_rows:>11}  {c.dest_rows:>11}  {mark}")
    return "\n".join(lines)


def run_copy(args, ctx) -> int:
    from store.copy import copy_store, describe

    if args.source == args.dest:
        raise UserError("SRC and DEST are the same store")
    source = _open_source(args.source, ctx)
    try:
        dest = _open_dest(args.dest, ctx)
        where = describe(dest)  # never the password a URL may carry
        bar = _Bar(sys.stderr)
        try:
            result = copy_store(source, dest, bar, batch=max(1, args.batch))
        finally:
            bar.close()
            try:
                dest.close()
            except Exception:  # (a connection already lost) the copy's own outcome is what to tell
                pass
    finally:
        source.close()
    data = {"ok": result.ok, "resumed": result.resumed, "files_copied": result.files_copied,
            "files_missing": result.files_missing,
            "tables": [{"table": c.table, "source_rows": c.source_rows, "dest_rows": c.dest_rows,
                        "source_sha256": c.source_sum, "dest_sha256": c.dest_sum, "nul_replaced": c.nul_replaced,
                        "ok": c.ok} for c in result.checks]}
    ctx.emit(data, lambda _: report(result))
    for c in result.checks:
        if c.nul_replaced:  # PostgreSQL text cannot hold NUL (U+0000)
            print(f"omnidesk: note: {c.table}: {c.nul_replaced} value{'s' if c.nul_replaced > 1 else ''} had NUL"
                  " characters, stored as U+FFFD (PostgreSQL text cannot hold NUL)", file=sys.stderr)
    if result.files_missing:
        print(f"omnidesk: warning: {len(result.files_missing)} attachment file(s) missing in the source, not copied"
              f" (first: {result.files_missing[0]})", file=sys.stderr)
    if not result.ok:
        bad = [c.table for c in result.checks if not c.ok]
        print(f"omnidesk: error: the copy differs from the source in {', '.join(bad)}; was omnidesk writing to"
              " the source meanwhile? Start again into a new, empty store.", file=sys.stderr)
        return 1
    print(f"omnidesk: copied and verified {len(result.checks)} tables{' (resumed)' if result.resumed else ''}"
          f"{f', {result.files_copied} attachment files' if result.files_copied else ''}: {where}",
          file=sys.stderr)
    return 0
