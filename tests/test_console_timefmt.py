"""Human times for snooze: 2h, 30m, tomorrow 9:00, mon 9:00."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from store.timefmt import WhenError, format_age, format_clock, parse_when

UTC = timezone.utc
# Wednesday 2026-11-25 15:30 UTC
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC).timestamp()


def at(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text,expected", [
    ("2h", NOW + 7200),
    ("30m", NOW + 1800),
    ("1h30m", NOW + 5400),
    ("in 2 hours", NOW + 7200),
    ("1d", NOW + 86400),
    ("2w", NOW + 14 * 86400),
    ("90s", NOW + 90),
    ("tomorrow", at(2026, 11, 26, 9, 0)),
    ("tomorrow 9:00", at(2026, 11, 26, 9, 0)),
    ("Tomorrow at 14:15", at(2026, 11, 26, 14, 15)),
    ("tomorrow 9am", at(2026, 11, 26, 9, 0)),
    ("tomorrow 3pm", at(2026, 11, 26, 15, 0)),
    ("mon 9:00", at(2026, 11, 30, 9, 0)),
    ("monday", at(2026, 11, 30, 9, 0)),
    ("wed 9:00", at(2026, 12, 2, 9, 0)),  # today is Wednesday: next week's
    ("fri 17:30", at(2026, 11, 27, 17, 30)),
    ("17:00", at(2026, 11, 25, 17, 0)),
    ("9:00", at(2026, 11, 26, 9, 0)),  # passed today: tomorrow
    ("today 18:00", at(2026, 11, 25, 18, 0)),
    ("2026-12-01", at(2026, 12, 1, 9, 0)),
    ("2026-12-01 13:45", at(2026, 12, 1, 13, 45)),
])
def test_parse_when(text, expected):
    assert parse_when(text, NOW, tz=UTC) == expected


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("soon", "expected a duration"),
    ("2 fortnights", "unknown unit"),
    ("0m", "future"),
    ("today 9:00", "in the past"),
    ("tomorrow 25:00", "not a time of day"),
    ("2026-02-30", "not a valid date"),
    ("2020-01-01", "in the past"),
])
def test_parse_when_errors_say_what_is_expected(text, message):
    with pytest.raises(WhenError, match=message):
        parse_when(text, NOW, tz=UTC)


def test_local_time_is_the_default(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        # 09:00 in Berlin on 2026-11-26 is 08:00 UTC
        assert parse_when("tomorrow 9:00", NOW) == at(2026, 11, 26, 8, 0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("seconds,text", [
    (None, ""), (0, "now"), (59, "now"), (60, "1m"), (750, "12m"), (3599, "59m"), (3600, "1h"),
    (86399, "23h"), (86400, "1d"), (8 * 86400, "1w"), (400 * 86400, "1y"), (-7200, "in 2h"),
])
def test_format_age(seconds, text):
    assert format_age(seconds) == text


def test_format_clock():
    assert format_clock(at(2026, 11, 25, 9, 5), NOW, UTC) == "09:05"
    assert format_clock(at(2026, 11, 23, 9, 5), NOW, UTC) == "Mon 09:05"
    assert format_clock(at(2026, 3, 1, 9, 5), NOW, UTC) == "Mar 01 09:05"
    assert format_clock(at(2025, 3, 1, 9, 5), NOW, UTC) == "2025-03-01 09:05"
