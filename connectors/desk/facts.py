"""Fact rules at work: find facts in a customer's own words and keep them.

    found, errors = find(ruleset.facts, message)   # [(FactRule, value)], ["why a rule was skipped"]
    capture(store, ruleset.facts, message)         # keep them (store.capture_fact), once stored

A rule ([[fact]] in rules.toml, see connectors/desk/rules.py) sees only what
the customer wrote in this message: for e-mail the new text without the quoted
history (meta["new_text"]), never our replies or notes. Each match runs with a
time limit (MATCH_TIMEOUT): a pattern that runs away on some text is skipped
for that message and a 'rule_error' event says so.
"""
from __future__ import annotations

import logging

log = logging.getLogger("omnidesk.facts")
ACTOR = "rules"
MATCH_TIMEOUT = 0.1  # seconds one pattern may spend on one message
MAX_SCAN = 20_000  # characters of a message the patterns look at


def customer_words(message) -> str:
    """The text a fact rule looks at: the customer's own words in an inbound message."""
    if message is None or message.direction != "in" or message.deleted:
        return ""
    meta = message.meta if isinstance(message.meta, dict) else {}
    return (meta.get("new_text") or message.text or "")[:MAX_SCAN]


def find(rules: list, message) -> tuple[list[tuple[object, str]], list[str]]:
    """What the fact rules find in `message`: ([(rule, value)], [errors]).
    The first rule to find a value for a fact name wins for this message."""
    text = customer_words(message)
    found, errors, named = [], [], set()
    if not text:
        return found, errors
    for rule in rules:
        if rule.name in named or not rule.applies_to(message.channel):
            continue
        try:
            match = rule.pattern.search(text, timeout=MATCH_TIMEOUT)
        except TimeoutError:
            errors.append(f"fact rule {rule.name!r}: gave up on message #{message.id} after {MATCH_TIMEOUT:g}s"
                          " (the pattern backtracks too much on this text)")
            continue
        value = (match.group(1) or "").strip() if match else ""
        if value:
            found.append((rule, value))
            named.add(rule.name)
    return found, errors


def capture(store, rules: list, message) -> list[str]:
    """Keep what the fact rules find in a stored inbound message as the
    customer's facts, sourced to the message. Returns the fact names that changed."""
    found, errors = find(rules, message)
    for error in errors:
        log.warning("%s", error)
        store.log_event("rule_error", ACTOR, message.customer_id, rule="fact", error=error)
    changed = []
    for rule, value in found:
        if store.capture_fact(message.customer_id, rule.name, value, rule.name, message_id=message.id,
                              channel=message.channel, at=message.sent_at, actor=ACTOR) is not None:
            changed.append(rule.name)
    return changed
