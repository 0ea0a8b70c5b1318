"""The glue: rules, waiting-time targets, hooks and satisfaction, driven by the engine.

    auto = attach(engine, config)   # before engine.start(); returns the Automation

The engine calls `on_ingest` after each committed batch (rules see new
messages at once) and `tick` every few seconds while it holds the polling
lease (timer rules, breaches, and anything other processes did: the console
setting a status, `omnidesk mail-import` ingesting). Both call `pump`.

Exactly once, whenever it happened: the automation keeps a cursor over the
messages, the event log and the sent replies (store.claim_new). `pump` moves
it past a batch and handles the batch in the same write transaction: the
rules' changes, the satisfaction question and the hook runs (queued in the
store, see hooks.py) commit together with the cursor or not at all. So what
happened while no engine ran (a status set in the console, `mail-import`) is
handled at the next start or `sync --once`, and nothing twice, whichever
thread or process gets there first. Anything older than
[automation] skip_older_than (default 1d) when it is reached is skipped, with
one 'skipped' event per pass saying what and why, rather than acted on days late.

Nothing here may raise into the engine: a broken rule or template is logged
and recorded as a 'rule_error' event, and the rest of the batch goes on.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, TYPE_CHECKING

from connectors import paths
from connectors.schema import ConfigError
from store.text import plural

if TYPE_CHECKING:
    from connectors.config import Config
from connectors.desk import facts as facts_mod
from connectors.desk import rules as rules_mod
from connectors.desk import hooks as hooks_mod
from connectors.desk.hooks import HookRunner
from connectors.desk.satisfaction import Satisfaction
from connectors.desk.targets import Targets, parse_duration

log = logging.getLogger("omnidesk.automation")
ACTOR = "rules"
AUTOMATION_KEYS = ("skip_older_than", "hook_grace")
DEFAULT_SKIP = 86400.0  # events older than this when reached are skipped with a note
BATCH = 100  # items handled per write transaction
HISTORY = 3 * 86400  # a message older than this when first seen is history (an import), not news
ENGAGED_GAP = 600.0  # a silence longer than this counts as 10 minutes of engagement, not more
EVENT_HOOKS = {"status": "status_changed", "breach": "target_breached", "merge": "customers_merged",
               "send_failed": "reply_failed", "rule": "rule_fired", "satisfaction": "satisfaction"}


CONFIG_EXAMPLE = """\
# Waiting-time targets: the queue counts down; a breach raises the priority,
# logs a 'breach' event and runs the target_breached hooks.
# [targets]
# chat = "15m"          # Telegram and Slack (or set telegram = / slack = )
# email = "4h"
# raise_priority = 1

# Hooks: a command gets the event as JSON on stdin (events: message_received,
# reply_sent, reply_failed, status_changed, target_breached, customers_merged,
# rule_fired, satisfaction). Runs are logged in hooks.log next to the store.
# [[hook]]
# on = "target_breached"
# command = "notify-send 'omnidesk: a customer waits too long'"
# timeout = 10

# Satisfaction: ask when a case is done; answers (1-5, thumbs, good/bad) count in `omnidesk stats`.
# [satisfaction]
# template = "closing"

# What happened while no engine ran is handled at the next start (or `sync --once`);
# anything older than this is skipped with a note. Running hooks get hook_grace to
# finish when omnidesk stops; then they are killed and run again at the next start.
# [automation]
# skip_older_than = "1d"
# hook_grace = "1s"
"""


def validate(table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError('[automation]: expected a table like [automation] skip_older_than = "1d"')
    for key, value in table.items():
        if key not in AUTOMATION_KEYS:
            raise ConfigError(f"automation.{key}: unknown key; expected one of {', '.join(AUTOMATION_KEYS)}")
        if key == "hook_grace" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < 0:
                raise ConfigError(f"automation.hook_grace: expected a duration like \"1s\", got {value!r}")
            continue
        parse_duration(value, f"automation.{key}")




def settings(config: Config | None) -> dict[str, float]:
    """{"skip_older_than": seconds, "hook_grace": seconds} from [automation]."""
    table = (config.extra.get("automation") if config else None) or {}
    validate(table)
    grace = table.get("hook_grace", hooks_mod.DEFAULT_GRACE)
    return {"skip_older_than": parse_duration(table["skip_older_than"], "automation.skip_older_than")
            if "skip_older_than" in table else DEFAULT_SKIP,
            "hook_grace": float(grace) if isinstance(grace, (int, float)) else parse_duration(grace, "automation.hook_grace")}


def check_rules(config: Config | None = None) -> tuple[bool, str]:
    """For `omnidesk doctor`: is rules.toml readable, and how many rules are on?"""
    path = rules_mod.rules_path(config)
    try:
        ruleset = rules_mod.load_rules(path)
    except ConfigError as e:
        return False, str(e)
    if not path.exists():
        return True, f"{path} does not exist (no rules)"
    timer = len(ruleset.for_("timer"))
    # both kinds count: [[rule]] tables (triage) and [[fact]] tables (facts read from messages)
    return True, (f"{path}: {plural(len(ruleset.rules), 'rule')} ({timer} on the timer),"
                  f" {plural(len(ruleset.facts), 'fact rule')}")


def time_engaged(store, customer_id: int, gap_cap: float = ENGAGED_GAP) -> dict:
    """For the profile: {"seconds", "messages", "channels", "since"} in the current case."""
    return store.engagement(customer_id, gap_cap)


def wait_period(customer) -> str:
    """The key a timer rule fires once per (matches store.waiting_customers)."""
    return "wait:%.6f" % customer.waiting_since


def _automatic(message) -> bool:
    """Mail from a machine (an autoresponder, a mailing list) gets no acknowledgement:
    two autoresponders answering each other is how mail loops start (RFC 3834)."""
    meta = message.meta if message is not None else {}
    auto = str(meta.get("auto_submitted") or "no").lower()
    # the e-mail parser's marks: "automatic" (Auto-Submitted, Precedence...), "auto_reply"
    # and "bounce" (connectors/email/reports.py): acknowledging a bounce bounces again
    return auto != "no" or str(meta.get("precedence") or "").lower() in ("bulk", "list", "junk") \
        or bool(meta.get("list_id") or meta.get("automatic") or meta.get("auto_reply") or meta.get("bounce"))


# -- payloads (hooks get JSON on stdin) ----------------------------------------------------------
def _iso(ts: float | None) -> str | None:
    """A time for hooks in ISO 8601 UTC ("2026-11-30T06:31:00Z"), beside the unix seconds
    older hooks read (each time field X has X_iso)."""
    from store.timefmt import format_iso

    return None if ts is None else format_iso(ts)


def customer_json(c) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "status": c.status, "priority": c.priority, "assignee": c.assignee,
            "tags": c.tags, "facts": c.facts, "waiting_since": c.waiting_since,
            "waiting_since_iso": _iso(c.waiting_since), "last_channel": c.last_channel}


def message_json(m, identity=None) -> dict[str, Any]:
    out = {"id": m.id, "customer_id": m.customer_id, "channel": m.channel, "account": m.account,
           "direction": m.direction, "subject": m.subject, "text": m.text, "sent_at": m.sent_at,
           "sent_at_iso": _iso(m.sent_at), "author": m.author}
    if identity is not None:
        out["sender"] = {"address": identity.address, "handle": identity.handle, "name": identity.display_name}
    return out


class Automation:
    def __init__(self, config: Config | None = None, *, rules: rules_mod.RuleSet | None = None,
                 rules_path: Path | None = None, hooks: HookRunner | None = None, targets: Targets | None = None,
                 log_path: str | os.PathLike | None = None, timer_every: float = 15.0):
        self.config = config
        self.rules_path = Path(rules_path) if rules_path else rules_mod.rules_path(config)
        self._mtime = self._stat()
        self.rules_error: str | None = None  # why rules.toml was not (re)loaded; the last good rules stay in force
        if rules is None:
            try:
                rules = rules_mod.load_rules(self.rules_path)
            except ConfigError as e:  # the console and sync still start; the error is logged and kept
                rules, self.rules_error = rules_mod.RuleSet(path=self.rules_path), str(e)
                log.error("rules not loaded: %s", e)
        self.rules = rules
        self.targets = targets or Targets.from_config(config)
        opts = settings(config)
        self.skip_older_than = opts["skip_older_than"]
        self.hooks = hooks or HookRunner.from_config(config, log_path, opts["hook_grace"])
        self.satisfaction = Satisfaction.from_config(config)
        self.timer_every = timer_every
        self._last_timer = float("-inf")
        self._timer_lock = threading.Lock()
        self._timer_start = 0  # where the next timer pass starts, so a long queue is covered in turns
        self.timer_budget = 2.0  # seconds per pass: the engine's lease keeper must not stall

    # -- entry points (never raise) -----------------------------------------------------------
    def on_ingest(self, store, results=None) -> None:
        try:
            self.pump(store)
        except Exception:
            log.exception("automation after ingest")

    def tick(self, store) -> None:
        try:
            for run in store.recover_hook_runs(self.hooks.holder):  # a process that died mid-run
                log.warning("hook run %s (%s, %s) was cut off by a stop; queued again", run["id"], run["hook"],
                            run["kind"])
            self.reload_if_changed()
            self.pump(store)
            self.targets.check(store)
            if time.monotonic() - self._last_timer >= self.timer_every and self._timer_lock.acquire(blocking=False):
                try:
                    self._last_timer = time.monotonic()
                    self.run_timer_rules(store)
                finally:
                    self._timer_lock.release()
            self.pump(store)  # hooks for what the timer just did
        except Exception:
            log.exception("automation timer")

    # -- rules.toml, reloaded when edited ---------------------------------------------------------
    def _stat(self) -> float | None:
        try:
            return self.rules_path.stat().st_mtime_ns
        except OSError:
            return None

    def reload_if_changed(self) -> None:
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self.rules = rules_mod.load_rules(self.rules_path)
            self.rules_error = None
            log.info("rules reloaded from %s (%d rules)", self.rules_path, len(self.rules.rules))
        except ConfigError as e:
            self.rules_error = str(e)
            log.error("rules not reloaded, the previous ones stay in force: %s", e)

    # -- what is new ------------------------------------------------------------------------------
    def pump(self, store) -> None:
        """Handle everything new, a batch per write transaction (see the module
        docstring), then start the hook runs it queued."""
        skipped: dict[str, int] = {}
        while True:
            with store.tx():
                claimed = store.claim_new(BATCH)
                too_old = store.clock() - self.skip_older_than
                for message_id, received_at in claimed["messages"]:
                    self._guard(self._on_message, store, message_id, received_at < too_old, skipped)
                for event_id in claimed["events"]:
                    self._guard(self._on_event, store, event_id, too_old, skipped)
                for message_id, sent_at in claimed["sent"]:
                    if sent_at < too_old and self.hooks.wants("reply_sent"):
                        skipped["reply_sent"] = skipped.get("reply_sent", 0) + 1
                        continue
                    self._guard(self._on_sent, store, message_id)
            if not any(claimed.values()):
                break
        if skipped:  # one note per pass, however many were skipped
            with store.tx():
                self._note_skipped(store, skipped)
        self.hooks.dispatch(store)

    def _note_skipped(self, store, skipped: dict[str, int]) -> None:
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        age = _duration(self.skip_older_than)
        log.warning("automation: skipped %s older than %s (no engine ran meanwhile)", what, age)
        store.log_event("skipped", "automation", None, counts=skipped, older_than=self.skip_older_than,
                        note=f"not acted on: {what}, older than {age} when the automation reached them"
                             " ([automation] skip_older_than)")

    def _guard(self, fn, store, *args) -> None:
        try:
            with store.savepoint():  # one bad item's writes are undone; the rest of the batch stands
                fn(store, *args)
        except Exception as e:  # one bad message or event must not stop the rest
            log.exception("automation: %s%r", fn.__name__, args)
            store.log_event("rule_error", ACTOR, None, rule=fn.__name__.strip("_"), error=f"{type(e).__name__}: {e}"[:300])

    def _on_sent(self, store, message_id: int) -> None:
        if self.hooks.wants("reply_sent"):
            m = store.message(message_id)
            self.hooks.enqueue(store, "reply_sent", {"message": message_json(m),
                                                     "customer": customer_json(store.customer(m.customer_id))})

    def _on_message(self, store, message_id: int, stale: bool = False, skipped: dict | None = None) -> None:
        m = store.message(message_id)
        if self.rules.facts and not m.deleted:  # first, so the rules below (and templates) see the facts
            facts_mod.capture(store, self.rules.facts, m)
        if m.deleted or (m.meta or {}).get("backlog") or m.sent_at < store.clock() - HISTORY:
            return  # e.g. `omnidesk import` or a first read of last year's mail: no acknowledgements, no hooks
        if stale:  # stored longer ago than skip_older_than, and nothing handled it since
            if skipped is not None:
                skipped["message"] = skipped.get("message", 0) + 1
            return
        customer = store.customer(m.customer_id)
        identity = next((i for i in customer.identities if i.id == m.identity_id), None)
        if self.hooks.wants("message_received"):
            self.hooks.enqueue(store, "message_received", {"message": message_json(m, identity),
                                                           "customer": customer_json(customer)})
        if self.satisfaction.take_answer(store, m) is not None:
            return  # a rating, not a request: no triage, no acknowledgement
        subject = self._subject(store, customer, m, identity)
        subject.new_customer = store.is_first_inbound(customer.id, m.id)
        self.run_rules(store, self.rules.for_("message"), subject)

    def _on_event(self, store, event_id: int, too_old: float = float("-inf"), skipped: dict | None = None) -> None:
        ev = store.event(event_id)
        if ev is None:
            return
        kind = EVENT_HOOKS.get(ev.kind)
        survey = ev.kind == "status" and ev.data.get("new") == "done" and ev.data.get("reason") != "rating"
        if not ((kind and self.hooks.wants(kind)) or (survey and self.satisfaction.template)):
            return
        if ev.at < too_old:
            if skipped is not None:
                skipped[ev.kind] = skipped.get(ev.kind, 0) + 1
            return
        if kind and self.hooks.wants(kind):
            payload = {"id": ev.id, "kind": ev.kind, "actor": ev.actor, "at": ev.at, "at_iso": _iso(ev.at),
                       "data": ev.data}
            out = {"event_data": payload, "customer_id": ev.customer_id}
            if ev.customer_id is not None:
                out["customer"] = customer_json(store.customer(ev.customer_id))
            self.hooks.enqueue(store, kind, out)
        if survey:
            try:
                self.satisfaction.ask(store, ev.customer_id, ev.at)
            except ConfigError as e:  # a missing or broken template
                store.log_event("rule_error", ACTOR, ev.customer_id, rule="satisfaction", error=str(e))

    # -- rules --------------------------------------------------------------------------------------
    def _subject(self, store, customer, message=None, identity=None) -> rules_mod.Subject:
        cid = customer.id
        return rules_mod.Subject(customer=customer, message=message, identity=identity, now=store.clock(),
                                 case=functools.cache(lambda: store.engagement(cid, ENGAGED_GAP)), tz=self.rules.tz)

    def run_rules(self, store, rules: list, subject: rules_mod.Subject) -> list[str]:
        """Apply every matching rule in order; returns the names that fired."""
        fired = []
        for rule in rules:
            if not rule.matches(subject):
                continue
            if rule.on == "timer" and not store.claim_rule_fire(rule.name, subject.customer.id,
                                                                wait_period(subject.customer)):
                continue  # already fired in this wait
            self.apply(store, rule, subject)
            fired.append(rule.name)
            subject.customer = store.customer(subject.customer.id)  # later rules see what this one did
            if rule.stop:
                break
        return fired

    def run_timer_rules(self, store) -> int:
        rules = self.rules.for_("timer")
        if not rules:
            return 0
        shortest = min((r.when.get("waiting_over", 0.0) for r in rules), default=0.0)
        fired = 0
        candidates = store.waiting_customers(shortest, [r.name for r in rules])
        start = self._timer_start % len(candidates) if candidates else 0
        deadline = time.monotonic() + self.timer_budget
        for n, cid in enumerate(candidates[start:] + candidates[:start]):
            if n and time.monotonic() > deadline:
                self._timer_start = start + n  # carry on from here next time
                break
            customer = store.customer(cid)
            pending = [r for r in rules if not store.rule_fired(r.name, cid, wait_period(customer))]
            last = store.last_inbound_id(cid)
            message = store.message(last) if last else None
            identity = next((i for i in customer.identities if message and i.id == message.identity_id), None)
            try:
                fired += len(self.run_rules(store, pending, self._subject(store, customer, message, identity)))
            except Exception:
                log.exception("timer rules for customer %s", cid)
        return fired

    def apply(self, store, rule: rules_mod.Rule, s: rules_mod.Subject) -> None:
        c, t, name = s.customer, rule.then, rule.name
        ack = None
        if "acknowledge" in t and c.waiting_since is not None and not _automatic(s.message):
            ack = self._render_ack(store, rule, s)
        with store.tx():  # a rule's actions land together or not at all
            if t.get("tag"):  # one event for the rule's tags: one undo takes them back
                store.add_tags(c.id, t["tag"], ACTOR, rule=name)
            if "priority" in t and t["priority"] != c.priority:
                store.set_priority(c.id, t["priority"], ACTOR, rule=name)
            if "assign" in t and (t["assign"] or None) != c.assignee:
                store.assign(c.id, t["assign"] or None, ACTOR, rule=name)
            if ack is not None and store.claim_rule_fire("ack:" + name, c.id, wait_period(c)):
                text, subject, channel, identity_id = ack
                mid = store.queue_auto_reply(c.id, text, name, identity_id=identity_id, channel=channel, subject=subject)
                store.log_event("auto_reply", ACTOR, c.id, rule=name, message_id=mid, template=t["acknowledge"])
            if "status" in t and t["status"] != c.status:
                store.set_status(c.id, t["status"], ACTOR, rule=name)
            if "snooze" in t:
                store.set_status(c.id, "snoozed", ACTOR, until=s.now + t["snooze"], rule=name)
            store.log_event("rule", ACTOR, c.id, rule=name, on=rule.on, actions=rules_mod.describe(t),
                            message_id=s.message.id if s.message is not None else None)
        if "hook" in t:
            payload = {"rule": name, "customer": customer_json(store.customer(c.id))}
            if s.message is not None:
                payload["message"] = message_json(s.message, s.identity)
            self.hooks.enqueue_command(store, t["hook"], "rule_fired", payload, name=f"rule {name}")

    def _render_ack(self, store, rule, s):
        """(text, subject, channel, identity) for the acknowledgement, rendered
        for the channel the customer wrote on; None (and a 'rule_error' event)
        when the template cannot be rendered."""
        from connectors.desk import templates

        channel = s.message.channel if s.message is not None else s.customer.last_channel
        identity_id = s.message.identity_id if s.message is not None else None
        agent = self.config.agent if self.config else "omnidesk"
        try:
            r = templates.render_for_customer(store, s.customer.id, rule.then["acknowledge"], channel, agent,
                                              config=self.config)
        except ConfigError as e:
            store.log_event("rule_error", ACTOR, s.customer.id, rule=rule.name, error=str(e))
            return None
        return r.source, r.subject, channel, identity_id

    def dry_run(self, store, since: float, limit: int = 10000) -> list[dict]:
        """What the rules would do, changing nothing: message rules over the
        inbound messages since `since` (as of when each arrived), timer rules
        over the customers waiting now. One dict per rule that would fire."""
        out = []
        for message_id in store.inbound_since(since, limit):
            m = store.message(message_id)
            customer = store.customer(m.customer_id)
            identity = next((i for i in customer.identities if i.id == m.identity_id), None)
            s = self._subject(store, customer, m, identity)
            s.now, s.new_customer = m.sent_at, store.is_first_inbound(customer.id, m.id)
            out += self._would_capture(m, customer)
            out += self._simulate(self.rules.for_("message"), s, store)
        timer = self.rules.for_("timer")
        if timer:
            for cid in store.waiting_customers(0.0):
                customer = store.customer(cid)
                last = store.last_inbound_id(cid)
                m = store.message(last) if last else None
                identity = next((i for i in customer.identities if m and i.id == m.identity_id), None)
                out += self._simulate(timer, self._subject(store, customer, m, identity), store)
        return out

    def _would_capture(self, m, customer) -> list[dict]:
        """Fact rules in a dry run: what each would keep from this message."""
        found, errors = facts_mod.find(self.rules.facts, m)
        return [{"rule": rule.name, "on": "fact", "customer_id": customer.id, "customer": customer.name,
                 "message_id": m.id, "channel": m.channel, "at": m.sent_at, "actions": [f"fact {rule.name} = {value}"],
                 "fact": {"name": rule.name, "value": value, "current": customer.facts.get(rule.name)},
                 "already_fired": customer.facts.get(rule.name) == value} for rule, value in found] + [
                {"rule": "fact", "on": "fact", "customer_id": customer.id, "customer": customer.name,
                 "message_id": m.id, "channel": m.channel, "at": m.sent_at, "actions": [], "error": e,
                 "already_fired": False} for e in errors]

    def _simulate(self, rules: list, s: rules_mod.Subject, store) -> list[dict]:
        out = []
        for rule in rules:
            if not rule.matches(s):
                continue
            fired = rule.on == "timer" and store.rule_fired(rule.name, s.customer.id, wait_period(s.customer))
            out.append({"rule": rule.name, "on": rule.on, "customer_id": s.customer.id, "customer": s.customer.name,
                        "message_id": s.message.id if s.message is not None else None,
                        "channel": s.message.channel if s.message is not None else s.customer.last_channel,
                        "at": s.now, "actions": rules_mod.describe(rule.then), "already_fired": fired})
            s.customer = rules_mod.simulate(rule, s.customer)
            if rule.stop:
                break
        return out

    def close(self, grace: float | None = None) -> None:
        """Stop the hooks: running ones get `grace` seconds (default: the
        configured hook_grace), then they are killed and queued again."""
        self.hooks.close(wait=False, grace=grace)

    def drain(self, store) -> None:
        """End of `sync --once`: handle what is new and let the queued hook runs
        finish (each within its timeout) before the process exits."""
        self.tick(store)
        longest = max((h["timeout"] for h in self.hooks.hooks), default=0.0)
        if not self.hooks.wait(longest * 3 + 5, store=store):
            log.warning("hook runs still queued at exit; they run at the next start")
        self.hooks.close(wait=False, grace=0)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def attach(engine, config: Config | None = None, **kw) -> Automation:
    """Hook the automation into an engine (before engine.start()): handled at
    ingest and on the engine's timer; `engine.stop()` stops the hooks (with
    their grace) and `engine.run_once()` waits for them."""
    # next to a store file; for a store given by URL in the data folder (never a file named "postgresql:")
    kw.setdefault("log_path", paths.beside_store(engine.store_path, "hooks.log"))
    auto = Automation(config, **kw)
    engine.tick_hooks.append(auto.tick)
    engine.stop_hooks.append(auto.close)
    engine.once_hooks.append(auto.drain)
    engine.ingest_hooks.append(auto.on_ingest)
    return auto
