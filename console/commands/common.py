"""What every CLI command shares: the user-error type, JSON shaping, terminal-safe
table cells, and reading a body from -m or stdin.

Commands import from here, never a private function of another command.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from store.errors import OmnideskError
from store.text import one_line, plural, utf8_problem
from store.timefmt import WhenError, format_age, format_iso, parse_since

__all__ = ["UserError", "age", "cell", "iso", "jsonable", "log_to_file", "plural", "read_body", "since", "values"]

TIME_KEYS = ("_at", "_since", "_until")


class UserError(OmnideskError):
    """Something the user can fix; printed without a traceback, exit 1."""


iso = format_iso


def jsonable(obj: Any, key: str = "") -> Any:
    """Dataclasses to dicts, timestamps (keys ending _at/_since/_until, or at/until) to ISO 8601, bytes dropped."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v, k) for k, v in obj.items() if not isinstance(v, bytes)}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, key) for v in obj]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool) and (key.endswith(TIME_KEYS) or key in ("at", "until")):
        return format_iso(obj)
    return obj


def cell(text: str | None, width: int | None) -> str:
    """One line of (untrusted) text for a terminal table, cut to `width` characters (None: never cut)."""
    return one_line(text or "", width)


def age(ts: float | None) -> str:
    """How long ago `ts` (unix seconds) was: "12m", "3h"; "-" for None."""
    if ts is None:
        return "-"
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):  # an odd stored value: shown, never a crash
        return "?"
    return format_age(time.time() - ts)


def since(text: str, now: float, flag: str = "--since") -> float:
    """A --since/--until value (7d, 24h, 2w, a date) as unix seconds; UserError names the flag."""
    try:
        return parse_since(text, now)
    except WhenError as e:
        raise UserError(f"{flag} {e}") from None


def read_body(message: str | None, what: str) -> str:
    """The -m text, else stdin (with a prompt on a terminal); UserError if empty."""
    if message is not None:
        return message
    if sys.stdin.isatty():
        print(f"Type the {what}; end with Ctrl-D:", file=sys.stderr)
    raw = getattr(sys.stdin, "buffer", None)  # bytes, so bad UTF-8 is named; a text stream when embedded
    try:
        text = raw.read().decode("utf-8") if raw is not None else sys.stdin.read()
    except UnicodeDecodeError as e:
        raise UserError(utf8_problem("stdin", e)) from None
    if not text.strip():
        raise UserError(f"empty {what}: give -m TEXT or pipe it on stdin")
    return text


def values(pairs: list[str]) -> dict[str, str]:
    """--set KEY=VALUE pairs -> a dict; UserError names a malformed one."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def log_to_file(path: Path) -> None:
    """While a full-screen console runs, log lines (ours and the libraries')
    must not land on the terminal: they go to a file next to the store."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():  # private: logs name customers and channels (an existing file keeps its mode)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
