"""Human times: parse `2h`, `30m`, `tomorrow 9:00`, `mon 9:00`; format ages.

Shared by the console and the CLI (`omnidesk snooze ... 2h`).

    parse_when("2h", now)            -> now + 7200
    parse_when("tomorrow 9:00", now) -> 09:00 local time on the next day
    format_age(750)                  -> "12m"
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

__all__ = ["parse_when", "format_age", "format_clock", "WhenError"]


class WhenError(ValueError):
    """The text is not a time we understand; the message says what is."""


_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400,
          "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800}
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
DEFAULT_HOUR = 9
HELP = "expected a duration like 2h, 30m, 1d, 1h30m, or a time like tomorrow 9:00, mon 9:00, 17:30, 2026-12-01 9:00"


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
        total = 0.0
        for number, unit in parts:
            if unit not in _UNITS:
                raise WhenError(f"{raw!r}: unknown unit {unit!r}; {HELP}")
            total += float(number) * _UNITS[unit]
        if total <= 0:
            raise WhenError(f"{raw!r}: the time must be in the future")
        return now + total

    word, _, rest = text.partition(" ")
    rest = rest.removeprefix("at ").strip() or None
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
    return when.timestamp()


def format_age(seconds: float | None) -> str:
    """A short age: now, 45s, 12m, 3h, 2d, 5w, 1y ("in 2h" for the future)."""
    if seconds is None:
        return ""
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
    t = datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()
    n = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now).astimezone()
    if t.date() == n.date():
        return t.strftime("%H:%M")
    if abs((n - t).days) < 7:
        return t.strftime("%a %H:%M")
    if t.year == n.year:
        return t.strftime("%b %d %H:%M")
    return t.strftime("%Y-%m-%d %H:%M")
