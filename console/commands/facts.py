"""`omnidesk fact` and `omnidesk rename`: customer facts and names by hand.

    omnidesk fact 42                            # the facts, where each came from, earlier values
    omnidesk fact 42 order_number=5521 plan=gold
    omnidesk fact 42 -r plan
    omnidesk rename 42 Jane Doe

Every change is an event (`omnidesk events`) that `omnidesk undo` takes back.
"""
from __future__ import annotations

import time
import uuid

from console.commands.common import UserError, cell, jsonable
from store.facts import fact_name, key_problem


def register(sub, parents) -> None:
    p = sub.add_parser("fact", parents=parents, help="show, set or remove a customer's facts (undoable)",
                       description="Facts (order number, plan ...) follow the customer across channels: the"
                                   " profile, templates ({{ order_number }}), rules and search (fact:KEY=VALUE)"
                                   " use them. [[fact]] rules in rules.toml capture them from messages.")
    p.add_argument("customer", help="id, e-mail address, Telegram @handle or Slack user")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help="facts to set")
    p.add_argument("-r", "--remove", action="append", default=[], metavar="KEY", help="remove this fact")
    p.set_defaults(func=cmd_fact)

    p = sub.add_parser("rename", parents=parents, help="change a customer's name (undoable)",
                       description="Change the name the console, the CLI and templates ({{ name }}) use.")
    p.add_argument("customer")
    p.add_argument("name", nargs="+")
    p.set_defaults(func=cmd_rename)


def source_text(src: dict | None, now: float) -> str:
    """Where a value came from, for people: "Telegram, 2h ago", "set by ann, 3d ago"."""
    from connectors.desk.templates import CHANNEL_NAMES
    from store.timefmt import format_age

    src = src or {}
    if src.get("channel"):
        where = CHANNEL_NAMES.get(src["channel"], src["channel"])
    elif src.get("actor"):
        where = f"set by {cell(src['actor'], 20)}"
    else:
        return ""
    if not src.get("at"):
        return where
    age = format_age(max(0.0, now - src["at"]))
    return f"{where}, {'just now' if age == 'now' else age + ' ago'}"


def fact_rows(store, customer_id: int) -> list[dict]:
    """[{"key", "value", "actor", "at", "channel", "message_id", "earlier": [...]}], by key."""
    c = store.customer(customer_id)
    history = store.fact_history(customer_id)
    return [{"key": k, "value": v, **c.fact_sources.get(k, {}), "earlier": history.get(k, [])}
            for k, v in c.facts.items()]


def human_facts(rows: list[dict], now: float, indent: str = "") -> list[str]:
    out = []
    for r in rows:
        src = source_text(r, now)
        line = f"{indent}{cell(r['key'], 40)}: {cell(r['value'], 200)}" + (f"  · {src}" if src else "")
        if r.get("message_id"):
            line += f" (message #{r['message_id']})"
        out.append(line)
        if r["earlier"]:
            out.append(f"{indent}    earlier: " + "; ".join(
                f"{cell(e['value'], 60)}" + (f" ({source_text(e, now)})" if source_text(e, now) else "")
                for e in r["earlier"][:5]))
    return out


def _pairs(pairs: list[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{pair!r}: expected KEY=VALUE (like order_number=5521); remove a fact with -r KEY")
        key = fact_name(key)  # "gift card" is gift_card, as tags normalise
        if problem := key_problem(key):  # templates and search could not name it
            raise UserError(problem)
        out.append((key, value))
    return out


def cmd_fact(args, ctx) -> int:
    s = ctx.store
    cid = ctx.customer(args.customer)
    changes = _pairs(args.pairs)
    events = []
    # one command, one undo: several changes are one batch
    batch = uuid.uuid4().hex[:16] if len(changes) + len(args.remove) > 1 else None
    with s.tx():  # all of them or none (a bad pair changes nothing)
        for key, value in changes:
            events.append(s.set_fact(cid, key, value, ctx.agent, batch=batch))
        for key in (fact_name(k) for k in args.remove):  # -r "gift card" as it was set
            events.append(s.set_fact(cid, key, None, ctx.agent, batch=batch))
    rows = fact_rows(s, cid)
    now = time.time()
    changed = [e for e in events if e is not None]

    def human(_):
        out = human_facts(rows, now) or [f"#{cid} has no facts."]
        if changed:
            out.append(f"({len(changed)} change{'s' if len(changed) != 1 else ''}; `omnidesk undo` takes "
                       + ("them all back)" if len(changed) > 1 else "it back)"))
        return "\n".join(out)

    ctx.emit({"customer_id": cid, "facts": jsonable(rows), "event_ids": changed}, human)
    return 0


def cmd_rename(args, ctx) -> int:
    cid = ctx.customer(args.customer)
    event = ctx.store.rename(cid, " ".join(args.name), ctx.agent)
    name = ctx.store.customer(cid).name
    ctx.emit({"customer_id": cid, "name": name, "event_id": event},
             f"#{cid} is now {cell(name, 60)}" + ("" if event else " (unchanged)"))
    return 0
