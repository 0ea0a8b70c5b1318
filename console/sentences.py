"""Events in words for people: "you set status pending", "rule 'refunds to alice' tagged refund".

One place for the CLI's `omnidesk events` and the console's timeline, so both
say the same thing. No dicts, no epoch numbers; untrusted values are made safe
for a terminal (store/text.py).
"""
from __future__ import annotations

from typing import Any

from store.models import Event
from store.text import article, one_line, plural  # noqa: F401  (plural: for callers)
from store.terms import Channel
from store.timefmt import format_clock, format_duration

RULES_ACTOR = "rules"  # the actor name automation writes (connectors/desk/automation.py)


def actor(ev: Event, me: str | None = None) -> str:
    """Who did it: "you" (the agent reading), "rule 'NAME'", or the actor's name."""
    d = ev.data or {}
    if me is not None and ev.actor == me:
        return "you"
    if d.get("rule") and ev.actor == RULES_ACTOR:
        return f"rule {one_line(d['rule'], 40)!r}"
    return one_line(ev.actor, 24) or "someone"


def _value(v: Any, limit: int = 40) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(one_line(x, limit) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{one_line(k, 16)} {one_line(x, limit)}" for k, x in v.items())
    return one_line(v, limit)


def action(ev: Event, now: float | None = None) -> str:
    """What an event did, without who: "set status done", "tagged vip"."""
    text = describe(Event(ev.id, ev.at, "\0", ev.kind, ev.customer_id, ev.data), me="\0", now=now)
    return text.removeprefix("you ")


def describe(ev: Event, me: str | None = None, now: float | None = None) -> str:
    """One sentence for an event. `me` is the agent reading ("you"); `now` anchors
    times (default: the event's own time, so "14:02" or "Mon 14:02")."""
    d = ev.data or {}
    who = actor(ev, me)
    k = ev.kind
    now = ev.at if now is None else now
    if k == "merge":
        text = f"{who} merged customer #{d.get('source')} into this one"
        if d.get("evidence"):
            text += " (" + "; ".join(one_line(e, 60) for e in d["evidence"][:2]) + ")"
    elif k == "split":
        text = f"{who} split identity #{d.get('identity')} out to customer #{d.get('new_customer')}"
    elif k == "status":
        if d.get("new") == "snoozed" and d.get("until"):
            text = f"{who} snoozed until {format_clock(d['until'], now)}"
        elif d.get("reason"):
            text = f"{one_line(d['reason'], 40)}: status {_value(d.get('new'))}"
        else:
            text = f"{who} set status {_value(d.get('new'))}"
    elif k == "tag":
        text = f"{who} tagged {_value(d.get('tag'), 30)}"
    elif k == "untag":
        text = f"{who} removed tag {_value(d.get('tag'), 30)}"
    elif k == "assign":
        text = f"{who} assigned to {_value(d.get('new'), 24)}" if d.get("new") else f"{who} unassigned"
    elif k == "priority" and d.get("reason") == "breach":  # store.record_breach
        text = f"priority raised to {_value(d.get('new'))}: a reply target was missed"
    elif k == "priority":
        text = f"{who} set priority {_value(d.get('new'))}"
    elif k == "breach":  # connectors/desk/targets.py: "waited past the 4h e-mail target (since 09:36)"
        channel = str(d.get("channel") or "")
        label = Channel(channel).label + " " if channel in {c.value for c in Channel} else ""
        span = format_duration(d.get('target')).removesuffix('00m').removesuffix('00h')  # 4h, not 4h00m
        text = (f"waited past the {span} {label}target"
                + (f" (since {format_clock(d['waiting_since'], now)})" if d.get("waiting_since") else ""))
    elif k == "rename":
        text = f"{who} renamed {_value(d.get('old'), 30)!r} to {_value(d.get('new'), 30)!r}"
    elif k == "address":
        text = f"{who} added address {_value(d.get('address'), 60)}"
    elif k == "fact":
        key = _value(d.get("key"), 20)
        if d.get("new") is None:
            text = f"{who} removed {key}"
        elif d.get("rule"):  # captured from the customer's message
            text = f"noted {key} = {_value(d.get('new'), 40)} from message #{d.get('message_id')}"
        else:
            text = f"{who} set {key} = {_value(d.get('new'), 40)}"
    elif k == "fact_seen":
        text = f"noted an earlier {_value(d.get('key'), 20)} = {_value(d.get('value'), 40)}"
    elif k == "undo":
        gist = d.get("undone")
        if isinstance(gist, dict) and d.get("undone_kind"):  # what was undone, in the same words
            undone = Event(d.get("event") or 0, ev.at, "", str(d["undone_kind"]), ev.customer_id, gist)
            text = f"{who} undid “{action(undone, now)}”"
        else:  # an undo logged before its gist was kept
            text = f"{who} undid {article(str(d.get('undone_kind') or 'action'))}"
    elif k == "rule":
        actions = d.get("actions") or []
        text = f"{who} fired" + (f": {_value(actions, 60)}" if actions else "")
    elif k == "rule_error":
        text = f"{who} failed: {_value(d.get('error'), 80)}"
    elif k == "auto_reply":
        text = f"{who} sent template {_value(d.get('template'), 30)!r} (reply #{d.get('message_id')})"
    elif k == "survey":  # connectors/desk/satisfaction.py
        text = f"asked how satisfied they are (reply #{d.get('message_id')})"
    elif k == "reply" and d.get("message_id"):
        text = f"{who} replied (reply #{d['message_id']}" + (f" on {_value(d['channel'], 12)})" if d.get("channel") else ")")
    elif k == "survey_skipped":  # connectors/desk/satisfaction.py
        text = f"no satisfaction survey: {_value(d.get('reason'), 60)}"
    elif k == "satisfaction":
        text = f"rated {_value(d.get('score'))} of 5" + (f": {_value(d.get('answer'), 40)!r}" if d.get("answer") else "")
    elif k == "hook_failed":  # connectors/desk/hooks.py
        text = (f"hook {_value(d.get('hook'), 30)!r} on {_value(d.get('on'), 20)}: {_value(d.get('outcome'), 20)}"
                + (f" ({_value(d.get('detail'), 60)})" if d.get("detail") else ""))
    elif k == "skipped":  # connectors/desk/automation.py: nothing ran for too long
        text = f"automation {_value(d.get('note'), 120)}"
    elif k == "send_failed":
        text = f"reply #{d.get('message_id')} failed: {_value(d.get('error'), 80)}"
    elif k == "retry":
        text = f"{who} retried reply #{d.get('message_id')}"
    else:
        details = "; ".join(f"{one_line(key, 16).replace('_', ' ')} {_value(v, 30)}"
                            for key, v in list(d.items())[:3] if key != "rule")
        text = f"{who}: {one_line(k, 20).replace('_', ' ')}" + (f" ({details})" if details else "")
    if ev.undone:
        text += " — undone"
    return text
