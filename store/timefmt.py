"""Durations and times, parsed and formatted in one place.

Shared by the console, the CLI and the desk's config ([targets], rules):

    parse_duration("1h30m")          -> 5400.0 (seconds; "15m", "4h", "2d", "90s", "2 days")
    parse_when("2h", now)            -> now + 7200
    parse_when("tomorrow 9:00", now) -> 09:00 local time on the next day
    parse_since("7d", now)           -> now - 7 days (or a date / date-time, local time)
    parse_day("yesterday", now)      -> the start of yesterday, local time (or a span back)
    format_age(750)                  -> "12m"
    format_duration(5400)            -> "1h30m"
    format_iso(0)                    -> "1970-01-01T00:00:00Z"

All times are unix seconds (float); errors are `WhenError` (a ValueError) whose
message says what is expected.

Bounds: a duration is at most MAX_SPAN (5 years) and a time we parse lies at most
MAX_SPAN ahead ("99999999999d" or "9999-01-01" is refused with a WhenError, nothing
changes). The formatters never raise: a stored value that is not a usable time (absurd,
nan, inf, text) is rendered plainly, e.g. "unix 8.64e+15", so one odd row never breaks
an event log, a timeline or JSON output.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone, tzinfo

from store.errors import OmnideskError

__all__ = ["parse_duration", "parse_when", "parse_since", "parse_day", "format_age", "format_clock", "format_duration",
           "format_iso", "WhenError", "MAX_SPAN", "check_future"]


class WhenError(OmnideskError, ValueError):
    """The text is not a time we understand; the message says what is."""


_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400,
          "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800,
          "y": 31_536_000, "yr": 31_536_000, "year": 31_536_000, "years": 31_536_000}
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
DEFAULT_HOUR = 9
# How far ahead anyone plans a customer: snoozes, reminders, targets, rule delays. Beyond
# it a value is a typo (99999999999d), and far beyond it datetime cannot even show it.
MAX_SPAN = 5 * 365 * 86400.0
MAX_SPAN_WORDS = "5 years"
MAX_PAST = 100 * 365 * 86400.0  # how far back --since reaches (an archive from 1990 still counts)
HELP = "expected a duration like 2h, 30m, 1d, 1h30m, or a time like tomorrow 9:00, mon 9:00, 17:30, 2026-12-01 9:00"


def parse_duration(text: str, limit: float | None = None) -> float:
    """A span like "15m", "4h", "1h30m", "2 days", "90s" -> seconds (> 0, at most `limit`,
    default MAX_SPAN).

    Raises WhenError for anything else (a bare number, an unknown unit, zero, too long)."""
    limit = MAX_SPAN if limit is None else limit
    raw = text
    text = " ".join(text.strip().lower().split()) if isinstance(text, str) else ""
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).replace(" ", "") != "":
        raise WhenError(f"expected a duration like \"15m\", \"4h\" or \"1h30m\", got {raw!r}")
    total = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise WhenError(f"{raw!r}: unknown unit {unit!r}; expected s, m, h, d, w or y")
        total += float(number) * _UNITS[unit]
    if total <= 0:
        raise WhenError(f"the duration must be more than zero, got {raw!r}")
    if total > limit:
        raise WhenError(f"{raw!r} is too long: at most {MAX_SPAN_WORDS if limit == MAX_SPAN else format_duration(limit)}")
    return total


def check_future(until: object, now: float) -> float:
    """`until` (unix seconds) if it is a usable time after `now` and at most MAX_SPAN ahead;
    WhenError otherwise. The store checks every wake-up time with this before writing it."""
    if isinstance(until, bool) or not isinstance(until, (int, float)) or not math.isfinite(until):
        raise WhenError(f"not a time: {until!r}")
    if until - now > MAX_SPAN:
        raise WhenError(f"{format_iso(until)} is too far ahead: at most {MAX_SPAN_WORDS}")
    return float(until)


def _clock(text: str) -> tuple[int, int]:
    m = _CLOCK.match(text.strip())
    if not m:
        raise WhenError(f"{text!r}: not a time of day (like 9:00, 17:30 or 9am)")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3):
        if not 1 <= hour <= 12:
            raise WhenError(f"{text!r}: hour must be 1-12 with am/pm")
        hour = hour % 12 + (12 if m.group(3) == "pm" else 0)
    if hour > 23 or minute > 59:
        raise WhenError(f"{text!r}: not a time of day")
    return hour, minute


def _at(day: datetime, clock: str | None) -> datetime:
    hour, minute = _clock(clock) if clock else (DEFAULT_HOUR, 0)
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


def parse_when(text: str, now: float, tz: tzinfo | None = None) -> float:
    """When `text` means, as unix seconds, relative to `now` (local time unless `tz`).

    The result is always in the future; a bare time of day that has passed
    today means tomorrow."""
    raw = text
    text = " ".join((text or "").strip().lower().split())
    if text.startswith("in "):
        text = text[3:]
    if text.startswith("+"):
        text = text[1:]
    if not text:
        raise WhenError(f"empty time; {HELP}")
    base = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now).astimezone()

    # durations: 2h, 30m, 1h30m, 2 days
    parts = _DURATION.findall(text)
    if parts and _DURATION.sub("", text).replace(" ", "") == "":
        for _number, unit in parts:
            if unit not in _UNITS:
                raise WhenError(f"{raw!r}: unknown unit {unit!r}; {HELP}")
        try:
            return now + parse_duration(text)
        except WhenError as e:
            if "too long" in str(e):
                raise WhenError(f"{raw!r} is too far ahead: at most {MAX_SPAN_WORDS}") from None
            raise WhenError(f"{raw!r}: the time must be in the future") from None

    word, _, after = text.partition(" ")
    rest = after.removeprefix("at ").strip() or None
    if word in ("today", "tonight"):
        when = _at(base, rest or ("18:00" if word == "tonight" else None))
    elif word == "tomorrow":
        when = _at(base + timedelta(days=1), rest)
    elif word[:3] in _DAYS and (len(word) == 3 or word.startswith(("monday", "tuesday", "wednesday", "thursday",
                                                                      "friday", "saturday", "sunday", "tues", "thur", "thurs", "wednes"))):
        ahead = (_DAYS.index(word[:3]) - base.weekday()) % 7 or 7
        when = _at(base + timedelta(days=ahead), rest)
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
        try:
            day = datetime.strptime(word, "%Y-%m-%d").replace(tzinfo=base.tzinfo)
        except ValueError:
            raise WhenError(f"{raw!r}: not a valid date") from None
        when = _at(day, rest)
    elif _CLOCK.match(text):
        when = _at(base, text)
        if when.timestamp() <= now:
            when = _at(base + timedelta(days=1), text)
    else:
        raise WhenError(f"{raw!r}: {HELP}")
    if when.timestamp() <= now:
        raise WhenError(f"{raw!r} is in the past")
    if when.timestamp() - now > MAX_SPAN:
        raise WhenError(f"{raw!r} is too far ahead: at most {MAX_SPAN_WORDS}")
    return when.timestamp()


def _number(ts: object) -> float | None:
    """A stored time as a float, or None if it is not a finite number."""
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return None
    return float(ts)


def _plain(ts: object) -> str:
    """An unusable stored time, shown as what it is."""
    n = _number(ts)
    return f"unix {n:.6g}" if n is not None else f"not a time ({str(ts)[:40]})"


def _datetime(ts: object, tz: tzinfo | None = None) -> datetime | None:
    """unix seconds -> an aware datetime (local time unless `tz`), None when out of datetime's range."""
    n = _number(ts)
    if n is None:
        return None
    try:
        return datetime.fromtimestamp(n, tz) if tz else datetime.fromtimestamp(n).astimezone()
    except (ValueError, OverflowError, OSError):
        return None


def format_age(seconds: float | None) -> str:
    """A short age: now, 45s, 12m, 3h, 2d, 5w, 1y ("in 2h" for the future)."""
    if seconds is None:
        return ""
    if _number(seconds) is None:
        return "?"
    if seconds < 0:
        return "in " + format_age(-seconds)
    s = int(seconds)
    if s < 60:
        return "now"
    for size, unit in ((31_536_000, "y"), (604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")):
        if s >= size:
            return f"{s // size}{unit}"
    return "now"


def format_clock(ts: float | None, now: float, tz: tzinfo | None = None) -> str:
    """14:02 today, `Mon 14:02` within a week, `Nov 25 14:02` this year, else the full date."""
    if ts is None:
        return ""
    t, n = _datetime(ts, tz), _datetime(now, tz)
    if t is None or n is None:
        return _plain(ts)
    if t.date() == n.date():
        return t.strftime("%H:%M")
    if abs((n - t).days) < 7:
        return t.strftime("%a %H:%M")
    if t.year == n.year:
        return t.strftime("%b %d %H:%M")
    return t.strftime("%Y-%m-%d %H:%M")


def parse_since(text: str, now: float) -> float:
    """A start time: a span back from `now` ("7d", "24h", "2w", "30m") or a date /
    date-time in local time ("2026-11-01", "2026-11-01 09:00"). Raises WhenError."""
    t = (text or "").strip()
    try:
        return now - parse_duration(t, MAX_PAST)  # looking back, history is older than any plan ahead
    except WhenError:
        pass
    try:
        return datetime.fromisoformat(t).timestamp()  # naive: local time
    except (ValueError, OverflowError, OSError):
        raise WhenError(f"{text!r}: expected a span like 7d, 24h, 2w or a date like 2026-11-01") from None


def parse_day(text: str, now: float, tz: tzinfo | None = None) -> float | None:
    """A point back in time for a search filter: "today" and "yesterday" (their start,
    local time unless `tz`) or a span back from `now` ("7d", "24h", "2w"), as unix
    seconds; None when `text` is neither (a date, say). Raises WhenError for a span
    longer than MAX_PAST."""
    word = " ".join((text or "").strip().lower().split())
    base = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now).astimezone()
    if word in ("today", "yesterday"):
        midnight = base.replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - timedelta(days=1 if word == "yesterday" else 0)).timestamp()
    parts = _DURATION.findall(word)
    if not parts or _DURATION.sub("", word).replace(" ", "") or any(unit not in _UNITS for _, unit in parts):
        return None
    return now - parse_duration(word, MAX_PAST)


def format_duration(seconds: float | None) -> str:
    """A span for tables: 45s, 12m, 12m30s, 3h05m, 2d04h ("-" for None)."""
    if seconds is None:
        return "-"
    if _number(seconds) is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_iso(ts: float) -> str:
    """Unix seconds -> ISO 8601 UTC to the second: "2026-11-30T03:23:12Z" (the CLI's JSON times);
    a value no calendar can show comes back plainly ("unix 8.64e+15")."""
    t = _datetime(ts, timezone.utc)
    if t is None:
        return _plain(ts)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")
