"""`omnidesk done` (one customer, several, or every conversation gone quiet,
as one undoable batch) and `omnidesk identity add` (an address to reply to)."""
from __future__ import annotations

import time

from console.commands.common import UserError, cell, plural


def register(sub, parents) -> None:
    p = sub.add_parser("done", parents=parents, help="mark customers done: by name, or all gone quiet (--older-than)",
                       description="Mark customers done. With --older-than, every open or pending customer with no"
                                   " message either way since then (a span like 30d or a date like 2026-01-01)."
                                   " One `omnidesk undo` reopens them all.")
    p.add_argument("customers", nargs="*", metavar="CUSTOMER", help="id, e-mail address, @handle")
    p.add_argument("--older-than", metavar="AGE|DATE", help="quiet since: 30d, 2w, 2026-01-01")
    p.add_argument("--dry-run", action="store_true", help="list whom it would mark, change nothing")
    p.set_defaults(func=cmd_done)

    p = sub.add_parser("identity", parents=parents, help="add an e-mail address to a customer (undoable)",
                       description="Give a customer an e-mail address: replies go to it (for mail that came"
                                   " without a usable sender). `omnidesk undo` takes it back.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", parents=parents, help="add ADDRESS to CUSTOMER")
    a.add_argument("customer", help="id, e-mail address, @handle")
    a.add_argument("address", help="their e-mail address")
    a.set_defaults(func=cmd_identity_add)


def cmd_done(args, ctx) -> int:
    from store.timefmt import WhenError, parse_since

    store = ctx.store
    if bool(args.customers) == bool(args.older_than):
        raise UserError("give customers, or --older-than AGE|DATE (like 30d or 2026-01-01), not both")
    if args.older_than:
        try:
            before = parse_since(args.older_than, time.time())
        except WhenError as e:
            raise UserError(f"--older-than: {e}") from None
        ids = store.quiet_since(before)
    else:
        ids = list(dict.fromkeys(ctx.customer(ref) for ref in args.customers))
    ids = [cid for cid in ids if store.customer(cid).status != "done"]
    if args.dry_run:
        rows = [store.customer(cid) for cid in ids]
        ctx.emit({"customers": [{"id": c.id, "name": c.name, "status": c.status} for c in rows], "changed": False},
                 lambda d: "\n".join([f"#{c['id']} {cell(c['name'], 50)} [{c['status']}]" for c in d["customers"]]
                                     + [f"would mark {plural(len(rows), 'customer')} done (nothing changed)"]))
        return 0
    events = store.set_status_many(ids, "done", ctx.agent)
    ctx.emit({"customers": ids, "events": events, "changed": bool(events)},
             lambda d: f"marked {plural(len(d['events']), 'customer')} done"
                       + (f" (undo all: omnidesk undo {d['events'][0]})" if d["events"] else ""))
    return 0


def cmd_identity_add(args, ctx) -> int:
    cid = ctx.customer(args.customer)
    event = ctx.store.add_address(cid, args.address, ctx.agent)
    address = ctx.store.event(event).data["address"]
    ctx.emit({"customer_id": cid, "address": address, "event_id": event},
             f"#{cid} can be answered at {address} now (undo: omnidesk undo {event})")
    return 0
