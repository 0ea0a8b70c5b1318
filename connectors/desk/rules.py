"""Triage rules: `<config dir>/omnidesk/rules.toml`, checked in file order.

    timezone = "Europe/Berlin"        # for `hours` and `days` (default: this machine's)

    [[rule]]
    name = "refunds to alice"
    [rule.when]                       # every condition must hold
    channel = "email"                 # or a list
    text = "refund|money back"        # regular expressions ignore case
    [rule.then]
    assign = "alice"
    tag = ["refund"]

    [[rule]]
    name = "escalate slow chats"
    on = "timer"                      # "message" (each new inbound message) or "timer"
    when = { channel = ["telegram", "slack"], waiting_over = "30m" }
    then = { priority = 2, hook = "notify-send 'slow chat'" }

A "message" rule looks at each new inbound message once, as it is stored.
A "timer" rule looks at every customer waiting for an answer, every few
seconds, and fires at most once per wait (the wait is its period), so it never
re-fires endlessly. Rules with a `waiting_*` condition are timer rules unless
`on` says otherwise. `stop = true` skips the rules after a matching one.
Every action is an event carrying the rule's name.

    [[fact]]                          # capture a customer fact from their own words
    name = "order_number"
    pattern = '(?i)\\border\\s*(?:number|no\\.?)?\\s*#?\\s*(\\d{3,})'   # exactly one capture group
    channel = "any"                   # or "telegram", or a list (default: any)

A fact rule runs on each new inbound message (the new text of an e-mail, not
the quoted history; never on our replies) and keeps group 1 as the fact
`name`, with the message as its source (connectors/desk/facts.py). A pattern
that does not compile, has not exactly one group, or nests unbounded
repetition (catastrophic backtracking, like (a+)+) is refused when the file
is read; matches also run with a time limit.
"""
from __future__ import annotations

import copy
import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.paths import config_dir
from connectors.schema import ConfigError
from store.terms import CHANNELS as CHANNEL_LIST
from store.terms import OLD_STATUS_WORDS, SETTABLE_STATUSES

if TYPE_CHECKING:
    from connectors.config import Config
from connectors.desk.fact_rules import FactRule, compile_fact_pattern
from connectors.desk.targets import parse_duration
from store.text import utf8_problem

CHANNELS = CHANNEL_LIST
STATUSES = SETTABLE_STATUSES  # open, pending, done (snooze has its own action)
log = logging.getLogger("omnidesk.rules")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_MATCH_CHARS = 100_000  # regexes see at most this much of a message (customer text is untrusted)
RULE_KEYS = ("name", "on", "when", "then", "stop", "enabled")
FACT_KEYS = ("name", "pattern", "channel", "enabled")


def rules_path(config: Config | None = None) -> Path:
    return (config.base_dir if config else config_dir()) / "rules.toml"


# The starter fact rules: order numbers, and contact details typed into a chat (which
# are merge evidence too). `init` writes them commented out; the demo uses them as they are.
STARTER_FACTS = """\
[[fact]]
name = "order_number"
pattern = '(?i)\\border\\s*(?:number|no\\.?|nr\\.?)?\\s*(?:is\\s*)?[:#]?\\s*(\\d{3,12})\\b'

[[fact]]
name = "phone"
pattern = '(\\+\\d[\\d ()-]{6,18}\\d)'
channel = ["telegram", "slack"]

[[fact]]
name = "email"
pattern = '(?i)\\b([a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\\.[a-z0-9-]{1,63}){1,4})\\b'
channel = ["telegram", "slack"]
"""

EXAMPLE = """\
# omnidesk triage rules, checked in order for each new message ("message" rules)
# or every few seconds for customers who wait ("timer" rules, once per wait).
# Every action is an event carrying the rule's name. Try them safely with
#   omnidesk rules test --since 7d
# Conditions: channel account sender name subject text tag not_tag assigned assignee
#   priority_below priority_at_least fact new_customer hours days waiting_over
#   waiting_under engaged_over case_channels_at_least.  Actions: tag priority assign snooze status acknowledge hook.
#
# Fact rules capture what a customer tells us (capture group 1) as a customer fact,
# on any channel, from their own words only. `omnidesk rules test` lists what they
# would capture. A fact named phone or email also counts as evidence for
# `omnidesk suggest` (the same person on another channel).

""" + "".join(f"# {line}\n" if line else "\n" for line in STARTER_FACTS.splitlines()) + """
# timezone = "Europe/Berlin"   # for hours/days (default: this machine's)

# [[rule]]
# name = "refunds to alice"
# when = { text = "refund|money back", channel = "email" }
# then = { assign = "alice", tag = "refund" }

# [[rule]]
# name = "acknowledge e-mail out of hours"
# when = { channel = "email", hours = "18:00-09:00" }
# then = { acknowledge = "greeting" }

# [[rule]]
# name = "escalate long chats"
# on = "timer"
# when = { engaged_over = "30m" }
# then = { priority = 2, tag = "escalated" }
"""


def install_example(path: Path | None = None) -> Path | None:
    """Write a commented rules.toml (every rule commented out) unless one exists."""
    path = Path(path) if path else rules_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(EXAMPLE)
    except FileExistsError:
        return None
    return path


# -- what a rule looks at ---------------------------------------------------------------
@dataclass
class Subject:
    customer: Any  # store.models.Customer
    message: Any = None  # the new inbound message (message rules) or the latest one (timer rules)
    identity: Any = None  # who sent `message`
    now: float = 0.0
    new_customer: bool = False
    # the current case across channels, computed on demand: {"seconds": engaged, "channels": [...]}
    case: Callable[[], dict] = lambda: {"seconds": 0.0, "channels": []}
    tz: Any = None


# -- condition parsers: (value, where) -> compiled ------------------------------------------
def _fail(where: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {value!r}")


def _strings(choices: tuple = ()):
    def parse(value, where):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise _fail(where, "a string or a list of strings", value)
        for x in items:
            if choices and x not in choices:
                raise ConfigError(f"{where}: unknown value {x!r}; expected one of {', '.join(choices)}")
        return items
    return parse


def _tags(value, where):
    """Tags as the store keeps them ("VIP", "#vip" -> "vip"), so a condition matches and an
    action adds the same tag the console and the CLI do."""
    from store.tags import TagError, normalize_tag

    try:
        return list(dict.fromkeys(normalize_tag(t) for t in _strings()(value, where)))
    except TagError as e:
        raise ConfigError(f"{where}: {e}") from None


def _regex(value, where):
    if not isinstance(value, str) or not value:
        raise _fail(where, "a regular expression (a string)", value)
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as e:
        raise ConfigError(f"{where}: not a valid regular expression ({e}): {value!r}") from None


def _bool(value, where):
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _int(value, where):
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "a whole number", value)
    return value


def _hours(value, where):
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value) if isinstance(value, str) else None
    span = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])) if m else None
    if not span or int(m[2]) > 59 or int(m[4]) > 59 or max(span) > 24 * 60:
        raise _fail(where, 'a time range like "09:00-17:00" (or "22:00-06:00" across midnight)', value)
    return span


def _days(value, where):
    if isinstance(value, str) and "-" in value:  # a range, like "mon-fri" or "fri-mon"
        a, _, b = value.strip().lower().partition("-")
        if a not in DAYS or b not in DAYS:
            raise _fail(where, 'days like "mon-fri" or ["sat", "sun"]', value)
        i, j = DAYS.index(a), DAYS.index(b)
        return {DAYS[k % 7] for k in range(i, (j if j >= i else j + 7) + 1)}
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        items = [x.strip().lower() if isinstance(x, str) else x for x in items]
    return set(_strings(DAYS)(items, where))


def _facts(value, where):
    if not isinstance(value, dict) or not value:
        raise _fail(where, 'a table like { plan = "gold" } (values are regular expressions)', value)
    return {k: _regex(v, f"{where}.{k}") for k, v in value.items()}


# -- condition tests: (compiled, subject) -> bool -------------------------------------------
def _text(value) -> str:
    return (value or "")[:MAX_MATCH_CHARS]


def _local(s: Subject) -> datetime:
    return datetime.fromtimestamp(s.now, s.tz) if s.tz else datetime.fromtimestamp(s.now)


def _in_hours(span, s: Subject) -> bool:
    t = _local(s)
    minute, (a, b) = t.hour * 60 + t.minute, span
    return a <= minute < b if a <= b else (minute >= a or minute < b)


def _waited(s: Subject) -> float | None:
    w = s.customer.waiting_since
    return None if w is None or s.customer.status != "open" else s.now - w


def _channel(s: Subject) -> str | None:
    return s.message.channel if s.message is not None else s.customer.last_channel


CONDITIONS: dict[str, tuple[Callable, Callable]] = {
    "channel": (_strings(CHANNELS), lambda v, s: _channel(s) in v),
    "account": (_strings(), lambda v, s: s.message is not None and s.message.account in v),
    "sender": (_regex, lambda v, s: s.identity is not None and any(
        v.search(_text(x)) for x in (s.identity.address, s.identity.handle, s.identity.display_name) if x)),
    "name": (_regex, lambda v, s: bool(v.search(_text(s.customer.name)))),
    "subject": (_regex, lambda v, s: s.message is not None and bool(v.search(_text(s.message.subject)))),
    "text": (_regex, lambda v, s: s.message is not None and bool(v.search(_text(s.message.text)))),
    "tag": (_tags, lambda v, s: all(t in s.customer.tags for t in v)),
    "not_tag": (_strings(), lambda v, s: not any(t in s.customer.tags for t in v)),
    "assigned": (_bool, lambda v, s: bool(s.customer.assignee) == v),
    "assignee": (_strings(), lambda v, s: s.customer.assignee in v),
    "priority_below": (_int, lambda v, s: s.customer.priority < v),
    "priority_at_least": (_int, lambda v, s: s.customer.priority >= v),
    "fact": (_facts, lambda v, s: all(k in s.customer.facts and r.search(_text(s.customer.facts[k]))
                                      for k, r in v.items())),
    "new_customer": (_bool, lambda v, s: s.new_customer == v),
    "hours": (_hours, _in_hours),
    "days": (_days, lambda v, s: DAYS[_local(s).weekday()] in v),
    "waiting_over": (parse_duration, lambda v, s: (_waited(s) or -1) >= v),
    "waiting_under": (parse_duration, lambda v, s: _waited(s) is not None and _waited(s) < v),
    "engaged_over": (parse_duration, lambda v, s: s.case()["seconds"] >= v),
    # bounced around: the case went over this many channels
    "case_channels_at_least": (_int, lambda v, s: len(s.case()["channels"]) >= v),
}


# -- action parsers -------------------------------------------------------------------------
def _agent(value, where):
    if not isinstance(value, str):
        raise _fail(where, 'an agent name ("" unassigns)', value)
    return value


def _status(value, where):
    if not isinstance(value, str):
        raise _fail(where, "one of " + ", ".join(STATUSES), value)
    if value in OLD_STATUS_WORDS:  # an old rules.toml keeps working
        log.warning("%s: status %r is now called %r (we wait on the customer)", where, value, OLD_STATUS_WORDS[value])
        return str(OLD_STATUS_WORDS[value])
    return str(_strings(STATUSES)(value, where)[0])


def _template(value, where):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise _fail(where, "a template name (see `omnidesk templates list`)", value)
    return value


def _command(value, where):
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "a command to run (a string)", value)
    return value


ACTIONS: dict[str, Callable] = {
    "tag": _tags, "priority": _int, "assign": _agent, "snooze": parse_duration, "status": _status,
    "acknowledge": _template,  # opt-in auto-acknowledgement: queue this template as a reply
    "hook": _command,
}


@dataclass
class Rule:
    name: str
    on: str  # "message" | "timer"
    when: dict[str, Any] = field(default_factory=dict)
    then: dict[str, Any] = field(default_factory=dict)
    stop: bool = False
    source: dict[str, Any] = field(default_factory=dict)  # as written, for `rules list`

    def matches(self, s: Subject) -> bool:
        return all(CONDITIONS[key][1](value, s) for key, value in self.when.items())


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    tz: Any = None
    path: Path | None = None
    facts: list[FactRule] = field(default_factory=list)

    def for_(self, on: str) -> list[Rule]:
        return [r for r in self.rules if r.on == on]


def parse_rules(data: dict[str, Any], path: Path | None = None) -> RuleSet:
    where0 = path.name if path else "rules.toml"
    for key in data:
        if key not in ("rule", "fact", "timezone"):
            raise ConfigError(f"{where0}: unknown key {key!r}; expected [[rule]] and [[fact]] tables and an optional"
                              " timezone")
    tz = None
    if "timezone" in data:
        try:
            tz = ZoneInfo(data["timezone"]) if isinstance(data["timezone"], str) else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        if tz is None:
            raise ConfigError(f"{where0}: timezone: unknown time zone {data['timezone']!r} (like \"Europe/Berlin\")")
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{where0}: rules are [[rule]] tables (double brackets)")
    rules, names = [], set()
    for n, table in enumerate(tables, 1):
        rule = _parse_rule(n, table, where0)
        if rule is None:
            continue
        if rule.name in names:
            raise ConfigError(f"{where0}: rule {rule.name!r}: the name is used twice; rule names must be unique")
        names.add(rule.name)
        rules.append(rule)
    fact_tables = data.get("fact", [])
    if not isinstance(fact_tables, list):
        raise ConfigError(f"{where0}: fact rules are [[fact]] tables (double brackets)")
    facts = [f for n, table in enumerate(fact_tables, 1) if (f := _parse_fact(n, table, where0)) is not None]
    return RuleSet(rules, tz, path, facts)


# -- fact rules ----------------------------------------------------------------------------
def _parse_fact(n: int, table: Any, where0: str) -> FactRule | None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where0}: fact rule #{n}: expected a table")
    name = table.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,39}", name.strip()):
        raise ConfigError(f"{where0}: fact rule #{n}: name: expected the fact's name, like \"order_number\""
                          f" (letters, digits, _ . -), got {name!r}")
    name = name.strip()
    where = f"{where0}: fact rule {name!r}"
    for key in table:
        if key not in FACT_KEYS:
            raise ConfigError(f"{where}: {key}: unknown key; expected one of {', '.join(FACT_KEYS)}")
    if not _bool(table.get("enabled", True), f"{where}: enabled"):
        return None
    channel = table.get("channel", "any")
    channels = None if channel == "any" else _strings(CHANNELS)(channel, f"{where}: channel")
    return FactRule(name, compile_fact_pattern(table.get("pattern"), f"{where}: pattern"), channels,
                    table.get("pattern"))


def _parse_rule(n: int, table: Any, where0: str) -> Rule | None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where0}: rule #{n}: expected a table")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where0}: rule #{n}: name: missing; every rule needs a name (it is on every event it causes)")
    where = f"{where0}: rule {name!r}"
    for key in table:
        if key not in RULE_KEYS:
            hint = " (conditions go under [rule.when], actions under [rule.then])" if key in CONDITIONS or key in ACTIONS else ""
            raise ConfigError(f"{where}: {key}: unknown key; expected one of {', '.join(RULE_KEYS)}{hint}")
    if not _bool(table.get("enabled", True), f"{where}: enabled"):
        return None
    when_src, then_src = table.get("when", {}), table.get("then")
    for part, src in (("when", when_src), ("then", then_src)):
        if src is not None and not isinstance(src, dict):
            raise ConfigError(f"{where}: {part}: expected a table ([rule.{part}])")
    if not then_src:
        raise ConfigError(f"{where}: then: missing; a rule needs at least one action ({', '.join(ACTIONS)})")
    when = {}
    for key, value in when_src.items():
        if key not in CONDITIONS:
            raise ConfigError(f"{where}: when.{key}: unknown condition; expected one of {', '.join(CONDITIONS)}")
        when[key] = CONDITIONS[key][0](value, f"{where}: when.{key}")
    then = {}
    for key, value in then_src.items():
        if key not in ACTIONS:
            raise ConfigError(f"{where}: then.{key}: unknown action; expected one of {', '.join(ACTIONS)}")
        then[key] = ACTIONS[key](value, f"{where}: then.{key}")
    default_on = "timer" if {"waiting_over", "waiting_under"} & set(when) else "message"
    on = table.get("on", default_on)
    if on not in ("message", "timer"):
        raise ConfigError(f"{where}: on: expected \"message\" or \"timer\", got {on!r}")
    if on == "timer" and "new_customer" in when:
        raise ConfigError(f"{where}: when.new_customer: only makes sense with on = \"message\"")
    return Rule(name.strip(), on, when, then, _bool(table.get("stop", False), f"{where}: stop"),
                {"when": when_src, "then": then_src})


def load_rules(path: Path | None = None, config: Config | None = None) -> RuleSet:
    """Read and check rules.toml; a missing file means no rules."""
    path = Path(path) if path else rules_path(config)
    if not path.exists():
        return RuleSet(path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(utf8_problem(str(path), e)) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_rules(data, path)


# -- actions ---------------------------------------------------------------------------------
def describe(then: dict[str, Any]) -> list[str]:
    out = []
    for key, value in then.items():
        if key == "tag":
            out.append("tag " + ", ".join(value))
        elif key == "snooze":
            out.append(f"snooze {value / 60:g}m")
        elif key == "assign":
            out.append(f"assign {value}" if value else "unassign")
        else:
            out.append(f"{key} {value}")
    return out


def simulate(rule: Rule, customer) -> Any:
    """What the customer would look like after the rule (for dry runs): a copy."""
    c = copy.deepcopy(customer)
    t = rule.then
    c.tags = sorted(set(c.tags) | set(t.get("tag", [])))
    c.priority = t.get("priority", c.priority)
    c.assignee = (t["assign"] or None) if "assign" in t else c.assignee
    if "status" in t:
        c.status = t["status"]
    if "snooze" in t:
        c.status = "snoozed"
    return c
