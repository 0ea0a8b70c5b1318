"""`omnidesk hooks [list]` and `omnidesk hooks test EVENT`: see the configured
hooks with their queues (running, waiting), and try them with a real payload,
without waiting for a real event."""
from __future__ import annotations

from console.commands.common import UserError, cell, iso


def register(sub, parents) -> None:
    p = sub.add_parser("hooks", parents=parents, help="commands run on events: list them, or try one",
                       description="Hooks are [[hook]] tables in config.toml; runs are logged in hooks.log next to the store.")
    p.set_defaults(func=cmd_list)  # bare `omnidesk hooks`: the list with the queues
    hsub = p.add_subparsers(dest="hooks_command", metavar="ACTION")
    hsub.add_parser("list", parents=parents, help="the configured hooks and their queues (running, waiting)"
                    ).set_defaults(func=cmd_list)
    t = hsub.add_parser("test", parents=parents, help="run the hooks for EVENT now, with a payload from the store")
    t.add_argument("event", help="message_received, reply_sent, status_changed, target_breached, ...")
    which = t.add_mutually_exclusive_group()
    which.add_argument("--customer", metavar="CUSTOMER",
                       help="use the message from this customer (id, address, @handle or name) that arrived last")
    which.add_argument("--message", metavar="ID", type=int, help="use this message")
    t.epilog = ("Without --customer or --message the payload carries the message that reached omnidesk last"
                " (a reply of ours for reply_sent and reply_failed), whatever date it carries; the first line"
                " of the output says which one.")
    t.set_defaults(func=cmd_test)


def _runner(ctx):
    from connectors.desk.hooks import HookRunner

    from connectors.paths import beside_store

    return HookRunner.from_config(ctx.config, beside_store(ctx.db_path, "hooks.log"))


def cmd_list(args, ctx) -> int:
    import time

    hooks = _runner(ctx).hooks
    queues = ctx.store.hook_queue()  # runs waiting or running, kept in the store across restarts
    now = time.time()
    names = {h["name"] for h in hooks}
    rows = [{**h, "queue": queues.get(h["name"], {"queued": 0, "running": 0})} for h in hooks]
    # runs still queued for a hook no longer in the config (or a rule's hook action)
    rows += [{"name": name, "on": [], "command": None, "queue": q} for name, q in queues.items() if name not in names]

    def state(q) -> str:
        parts = []
        if q.get("running"):
            parts.append(f"running {q['running']} (since {max(0.0, now - q['running_since']):.0f}s)")
        if q.get("queued"):
            parts.append(f"{q['queued']} queued (oldest {max(0.0, now - q['oldest_queued_at']):.0f}s)")
        return "; ".join(parts) or "idle"

    def human(rows) -> str:
        if not rows:
            return "No hooks ([[hook]] in config.toml)."
        out = []
        for r in rows:
            if r["command"] is None:
                out.append(f"[{r['name']}]: {state(r['queue'])}")
            else:
                # a hook without a name of its own is named by its command's first 40 characters:
                # shown in brackets, cut mid-word, it looked like another command
                own = not r["name"].startswith(r["command"][:40].strip())
                out.append(f"{', '.join(r['on'])}: {r['command']}  (timeout {r['timeout']:g}s,"
                           f" {r['concurrency']} at a time)" + (f" [{r['name']}]" if own else "")
                           + f": {state(r['queue'])}")
        return "\n".join(out)

    ctx.emit(rows, human)
    return 0


# The events whose payload is one of our replies; the others get a customer's message.
_REPLY_EVENTS = ("reply_sent", "reply_failed")


def _sample(args, ctx) -> tuple[int | None, int | None]:
    """(message id, customer id) for the test payload: the named message, else the message
    (of the named customer, if any) that arrived last. Arrival order, not the Date a
    message carries: imported mail from 1993 or a sender's clock set to next year would
    otherwise pick the same wrong message every time."""
    s = ctx.store
    if args.message is not None:
        return args.message, None  # (s.message() says "no message with id N" if there is none)
    cid = ctx.customer(args.customer) if args.customer else None
    direction = "out" if args.event in _REPLY_EVENTS else "in"
    found = s.last_arrived(direction, cid)
    return (found[0], cid) if found else (None, cid)


def _imported(m) -> bool:
    """Mail brought in by `omnidesk import`: the store keeps its own date as its arrival."""
    return bool((m.meta or {}).get("imported"))


def _describe(m, customer, received_at: float | None) -> str:
    """One line for the agent: which message the hooks got, whose, where, when it came in."""
    who = f"{cell(customer.name, 40)} (#{customer.id})"
    what = f"reply #{m.id} to {who}" if m.direction == "out" else f"message #{m.id} from {who}"
    when = "queued" if m.direction == "out" else "received"
    if _imported(m):
        when = f"imported history, dated {iso(m.sent_at)}"  # its arrival was the import: no time of its own
    else:
        when += f" {iso(received_at) if received_at is not None else 'at an unknown time'}"
        if received_at is not None and abs(m.sent_at - received_at) > 86400:  # a date far off is worth a word
            when += f" (it is dated {iso(m.sent_at)})"
    return f"sample: {what} on {m.channel}, {when}"


def cmd_test(args, ctx) -> int:
    from connectors.desk.automation import customer_json, message_json
    from connectors.desk.hooks import EVENTS

    if args.event not in EVENTS:
        raise UserError(f"unknown event {args.event!r}; expected one of {', '.join(EVENTS)}")
    runner = _runner(ctx)
    if not runner.wants(args.event):
        raise UserError(f"no hook runs on {args.event} (see `omnidesk hooks list`)")
    s = ctx.store
    message_id, cid = _sample(args, ctx)
    m = s.message(message_id) if message_id is not None else None
    cid = m.customer_id if m is not None else cid
    payload: dict = {"test": True}
    sample: dict = {"message_id": message_id, "customer_id": None}
    if cid is not None:
        customer = s.customer(cid)
        payload["customer"] = customer_json(customer)
        sample.update(customer_id=customer.id, customer=customer.name)
    if m is None:
        said = ("sample: no message in the store yet; the payload has no customer or message" if cid is None else
                f"sample: {cell(customer.name, 40)} (#{customer.id}) has no "
                f"{'reply' if args.event in _REPLY_EVENTS else 'message'} yet; the payload has no message")
    else:
        received_at = s.received_at(m.id)
        identity = next((i for i in customer.identities if i.id == m.identity_id), None)
        payload["message"] = message_json(m, identity)
        sample.update(channel=m.channel, direction=m.direction, received_at=received_at, sent_at=m.sent_at,
                      imported=_imported(m))
        said = _describe(m, customer, received_at)
    n = runner.fire(args.event, payload)
    longest = max(h["timeout"] for h in runner.hooks)
    runner.wait(longest + 5)
    runner.close()
    lines = list(runner.recent)
    ctx.emit({"ran": n, "sample": sample, "log": lines}, "\n".join([said, *lines]))
    return 0 if all(" ok in " in line for line in lines) else 1
