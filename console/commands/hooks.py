"""`omnidesk hooks [list]` and `omnidesk hooks test EVENT`: see the configured
hooks with their queues (running, waiting), and try them with a real payload,
without waiting for a real event."""
from __future__ import annotations

from console.commands.common import UserError


def register(sub, parents) -> None:
    p = sub.add_parser("hooks", parents=parents, help="commands run on events: list them, or try one",
                       description="Hooks are [[hook]] tables in config.toml; runs are logged in hooks.log next to the store.")
    p.set_defaults(func=cmd_list)  # bare `omnidesk hooks`: the list with the queues
    hsub = p.add_subparsers(dest="hooks_command", metavar="ACTION")
    hsub.add_parser("list", parents=parents, help="the configured hooks and their queues (running, waiting)"
                    ).set_defaults(func=cmd_list)
    t = hsub.add_parser("test", parents=parents, help="run the hooks for EVENT now, with a payload from the store")
    t.add_argument("event", help="message_received, reply_sent, status_changed, target_breached, ...")
    t.add_argument("--customer", help="use this customer and their latest message (default: the latest message)")
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
                out.append(f"{', '.join(r['on'])}: {r['command']}  (timeout {r['timeout']:g}s,"
                           f" {r['concurrency']} at a time) [{r['name']}]: {state(r['queue'])}")
        return "\n".join(out)

    ctx.emit(rows, human)
    return 0


def cmd_test(args, ctx) -> int:
    from connectors.desk.automation import customer_json, message_json
    from connectors.desk.hooks import EVENTS

    if args.event not in EVENTS:
        raise UserError(f"unknown event {args.event!r}; expected one of {', '.join(EVENTS)}")
    runner = _runner(ctx)
    if not runner.wants(args.event):
        raise UserError(f"no hook runs on {args.event} (see `omnidesk hooks list`)")
    s = ctx.store
    cid = ctx.customer(args.customer) if args.customer else None
    if cid is None:
        rows = s.queue("all", limit=1)
        cid = rows[0].customer_id if rows else None
    payload: dict = {"test": True}
    if cid is not None:
        customer = s.customer(cid)
        payload["customer"] = customer_json(customer)
        last = s.last_inbound_id(cid)
        if last:
            m = s.message(last)
            payload["message"] = message_json(m, next((i for i in customer.identities if i.id == m.identity_id), None))
    n = runner.fire(args.event, payload)
    longest = max(h["timeout"] for h in runner.hooks)
    runner.wait(longest + 5)
    runner.close()
    lines = list(runner.recent)
    ctx.emit({"ran": n, "log": lines}, "\n".join(lines))
    return 0 if all(" ok in " in line for line in lines) else 1
