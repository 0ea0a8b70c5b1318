"""`omnidesk import mbox PATH` / `omnidesk import maildir PATH`: bring an old mailbox in.

Parsing runs on every core; rows go in through store.ingest_batch in large
transactions. Importing the same mailbox again adds nothing (messages are
keyed by Message-ID, or by their bytes when they have none).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from console.commands.common import UserError, plural


def register(sub, parents) -> None:
    p = sub.add_parser("import", parents=parents, help="import old mail from an mbox file or a Maildir",
                       description="Import e-mail history into the store. Safe to repeat: nothing is added twice.")
    p.add_argument("format", choices=("mbox", "maildir"), help="what PATH is")
    p.add_argument("path", metavar="PATH", help="the mbox file, or the Maildir root (sub-folders included)")
    p.add_argument("--account", help="e-mail account the mail belongs to (default: the only one configured)")
    p.add_argument("--jobs", type=int, default=0, help="parser processes (default: all cores)")
    p.add_argument("--all-folders", action="store_true", help="also read trash, spam and drafts folders")
    p.add_argument("--done", action="store_true",
                   help="mark the customers of this mailbox done (also when it was imported before):"
                        " none of its mail waits for an answer")
    p.add_argument("--backlog-days", type=int, metavar="DAYS",
                   help="mail older than this is history: stored and searchable, but it does not wait for an"
                        " answer (default: the account's backlog_days, 14; 0: all imported mail waits)")
    p.set_defaults(func=run)


def pick_account(ctx, wanted: str | None) -> str:
    accounts = sorted(ctx.config.accounts.get("email", {}))
    if wanted:
        if accounts and wanted not in accounts:
            raise UserError(f"no e-mail account {wanted!r} in {ctx.config_path}; configured: {', '.join(accounts)}")
        return wanted
    if len(accounts) == 1:
        return accounts[0]
    if accounts:
        raise UserError(f"several e-mail accounts are configured ({', '.join(accounts)}); pick one with --account")
    return "local"  # no account yet: the mail still lands under its customers


def run(args, ctx) -> int:
    from connectors.email import bulk

    path = Path(os.path.expanduser(args.path))
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    account = pick_account(ctx, args.account)
    quiet = ctx.json or not sys.stderr.isatty()
    try:
        with _finding(path, quiet):
            tasks = bulk.mbox_tasks(path) if args.format == "mbox" else bulk.maildir_tasks(path, args.all_folders)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    if args.format == "maildir" and not tasks and not (path / "cur").is_dir():
        raise UserError(f"{path}: no Maildir here (expected cur/ and new/ folders)")
    store = ctx.store
    before = store.queue_count("all")
    days = args.backlog_days if args.backlog_days is not None else \
        ctx.config.accounts.get("email", {}).get(account, {}).get("backlog_days", 14)
    if days < 0:
        raise UserError("--backlog-days: expected 0 or more days")
    history_before = time.time() - days * 86400 if days else 0.0
    stats = _run_with_progress(store, tasks, account, own_address(ctx, account), args, quiet=quiet,
                               history_before=history_before)
    if args.done:
        # the customers the import created, and those whose mail in this mailbox (imported now or
        # before) is what they wait on (nothing newer is unanswered)
        mine = stats.touched | store.customers_of_messages("email", account, stats.ids)
        # one batch: one `omnidesk undo` reopens all it closed
        closed = store.set_status_many(sorted(stats.new_customers | store.waiting_on_imported_mail_only(mine)),
                                       "done", ctx.agent, reason="import")
    data = {"format": args.format, "path": str(path), "account": account, "messages": stats.seen,
            "added": stats.added, "already_there": stats.skipped, "ours": stats.ours, "unreadable": stats.unreadable,
            "customers_before": before, "customers_after": store.queue_count("all")}
    if args.done:
        data["marked_done"] = [store.event(e).customer_id for e in closed]
        data["undo_event"] = closed[0] if closed else None

    def human(d) -> str:
        text = (f"imported {d['added']:,} new of {plural(d['messages'], 'message')} into account "
                f"{d['account']!r} ({d['already_there']} already there"
                + (f", {d['ours']} sent by us filed as our replies" if d["ours"] else "")
                + (f", {d['unreadable']} kept raw as unreadable" if d["unreadable"] else "") + ")")
        if "marked_done" in d:
            text += (f"\nmarked {plural(len(d['marked_done']), 'customer')} done"
                     + (f" (undo all: omnidesk undo {d['undo_event']})" if d["undo_event"] else ""))
        return text
    ctx.emit(data, human)
    return 0


def own_address(ctx, account: str) -> str:
    """Our address on this account: mail from it (a Sent folder) is ours, not a customer's."""
    options = ctx.config.accounts.get("email", {}).get(account, {})
    address = options.get("from_address") or options.get("username") or ""
    return address.lower() if "@" in address else ""


def _finding(path: Path, quiet: bool):
    """A spinner while the mail is found (a 1 GB mbox is read once for its "From " lines first)."""
    if quiet:
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(f"finding the messages in {path.name} …")


def _run_with_progress(store, tasks, account, own, args, quiet: bool, history_before: float = 0.0):
    from connectors.email import bulk

    if quiet:
        return bulk.import_into(store, tasks, account, own=own, workers=args.jobs or None,
                                history_before=history_before)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task("import", total=len(tasks), rate="")

        def advance(n: int) -> None:
            task = progress.tasks[0]
            done = task.completed + n
            rate = f"{done / task.elapsed:,.0f} msg/s" if task.elapsed else ""
            progress.update(bar, advance=n, rate=rate)

        return bulk.import_into(store, tasks, account, own=own, workers=args.jobs or None, on_progress=advance,
                                history_before=history_before)
