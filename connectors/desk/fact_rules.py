"""Fact rules' patterns (the [[fact]] tables of rules.toml, parsed in
connectors/desk/rules.py): a FactRule, and the check that refuses a pattern
that does not compile, has not exactly one capture group, or nests unbounded
repetition (catastrophic backtracking)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.schema import ConfigError


@dataclass
class FactRule:
    name: str  # the fact it sets
    pattern: Any  # a compiled `regex` pattern with exactly one capture group
    channels: list[str] | None = None  # None: any channel
    source: str = ""  # the pattern as written

    def applies_to(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


def compile_fact_pattern(value: Any, where: str):
    """A fact rule's pattern, checked: it compiles, has exactly one capture group,
    and has no unbounded repetition inside another repetition (the shape of
    catastrophic backtracking). Returns a `regex` pattern (matches run with a
    timeout). ConfigError says which rule and why."""
    import re._parser as sre_parse

    import regex

    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a regular expression with one capture group (a string), got {value!r}")
    try:
        parsed = sre_parse.parse(value)
    except re.error as e:
        raise ConfigError(f"{where}: not a valid regular expression ({e}): {value!r}") from None
    if parsed.state.groups - 1 != 1:
        raise ConfigError(f"{where}: needs exactly one capture group (the value to keep), found"
                          f" {parsed.state.groups - 1}; make the others non-capturing, (?:...): {value!r}")
    nested = _nested_repeat(parsed)
    if nested:
        raise ConfigError(f"{where}: can run away on some texts (catastrophic backtracking): {nested} repeats"
                          f" inside a repetition; bound the inner part, like {{1,20}}: {value!r}")
    try:
        return regex.compile(value)
    except regex.error as e:
        raise ConfigError(f"{where}: not a valid regular expression ({e}): {value!r}") from None


_ROUNDS = 1000  # nested repetitions allowing more rounds than this together count as runaway


def _nested_repeat(items, outer: int = 1) -> str | None:
    """A repetition inside another repetition that together allow more than
    _ROUNDS rounds ("(a+)+", "(a{1,50}){1,50}"), as a short description; None
    when there is none. `outer`: the rounds the enclosing repetitions allow."""
    import re._constants as c

    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, body = arg
            rounds = _ROUNDS + 1 if high == c.MAXREPEAT else high
            if outer > 1 and high > 1 and outer * rounds > _ROUNDS:
                return "an unbounded part" if high == c.MAXREPEAT else f"a part repeated up to {high} times"
            found = _nested_repeat(body, outer * max(rounds, 1))
        elif op == c.SUBPATTERN:
            found = _nested_repeat(arg[-1], outer)
        elif op == c.BRANCH:
            found = next((f for branch in arg[1] if (f := _nested_repeat(branch, outer))), None)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            found = _nested_repeat(arg[1], outer)
        else:  # possessive repeats and atomic groups never backtrack into themselves
            found = None
        if found:
            return found
    return None
