"""`omnidesk sync`: the engine, headless, for a shared box or cron."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from typing import TYPE_CHECKING

from console.commands.common import UserError

if TYPE_CHECKING:
    from connectors.engine import Engine


def register(sub, parents) -> None:
    p = sub.add_parser("sync", parents=parents, help="poll every channel and send replies (Ctrl-C stops)",
                       description="Run the sync engine without the console. Ctrl-C or SIGTERM stops it cleanly.")
    p.add_argument("--once", action="store_true", help="one pass over every channel and the outbox, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_sync)


def make_engine(ctx) -> Engine:
    from connectors.runtime import build_engine

    engine = build_engine(ctx.db_path, ctx.config)
    if engine is None:
        raise UserError(f"no channels configured in {ctx.config_path} (run `omnidesk init`)")
    return engine


def cmd_sync(args, ctx) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from connectors.base import ConnectorError

    ctx.store  # create and migrate the store before threads open it
    engine = make_engine(ctx)
    if args.once:
        try:
            counts = engine.run_once()
        except ConnectorError as e:
            raise UserError(str(e)) from None
        health = {name: h for name, h in ctx.store.health().items() if name in counts}
        outbox = _outbox_report(ctx.store, engine.outcomes)
        ctx.emit({"ingested": counts, "health": health, "outbox": outbox},
                 lambda _: _human(counts, health, outbox))
        broken = [f"{name}: {h['detail']}" for name, h in health.items() if h["state"] != "ok"]
        broken += [f"reply #{r['message_id']} {r['outcome']}: {r['error']}"
                   for r in outbox["failed"] + outbox["retrying"]]
        if broken:  # cron mails non-empty stderr and can act on the exit status
            print("omnidesk: error: " + "; ".join(broken), file=sys.stderr)
            return 1
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine.start()
    if not ctx.json:
        print(f"omnidesk sync: {len(engine.connectors)} channel(s); Ctrl-C stops", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        engine.stop()
    return 0


def _outbox_report(store, outcomes: list[dict]) -> dict:
    """The outbox after one pass: replies sent now, replies waiting to be retried
    after an error (this pass or an earlier one), replies that failed now."""
    sent = [o for o in outcomes if o["outcome"] == "sent"]
    failed = [o for o in outcomes if o["outcome"] in ("failed", "uncertain")]
    retrying = [{"message_id": r["message_id"], "channel": f"{r['channel']}:{r['account']}", "outcome": "retrying",
                 "error": r["last_error"], "next_attempt_at": r["next_attempt_at"]}
                for r in store.outbox("queued", limit=1000) if r["last_error"]]
    return {"sent": len(sent), "retrying": retrying, "failed": failed}


def _human(counts: dict, health: dict, outbox: dict) -> str:
    lines = [f"{name}: {n} new, {health.get(name, {}).get('state', '?')}" for name, n in counts.items()]
    lines.append(f"outbox: {outbox['sent']} sent, {len(outbox['retrying'])} retrying, {len(outbox['failed'])} failed")
    now = time.time()
    for r in outbox["retrying"]:
        lines.append(f"  reply #{r['message_id']} ({r['channel']}) retrying: {r['error']};"
                     f" next try in {max(0.0, r['next_attempt_at'] - now):.0f}s")
    for r in outbox["failed"]:
        lines.append(f"  reply #{r['message_id']} ({r['channel']}) {r['outcome']}: {r['error']}")
    return "\n".join(lines)
