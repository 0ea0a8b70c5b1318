"""Backlog: mail that was already in a folder when omnidesk first read it, and
older than `backlog_days` then. It is stored, threaded and searchable like any
mail, but it does not put its sender in the waiting queue: connecting a mailbox
with years of history must not bury today's customers under old threads.

Connectors mark such items with meta["backlog"] = True; the store reads that.
"""
from __future__ import annotations

DAY = 86400.0


def first_read(cursor: dict[str, str], out: dict[str, str], folder: str, now: float) -> float | None:
    """When omnidesk first read `folder`: recorded in the cursor on that first
    read. None for a folder read before this was recorded (nothing is backlog there)."""
    key = f"{folder}#first_read"
    if key in cursor:
        try:
            return float(cursor[key])
        except ValueError:
            return None
    if folder in cursor:
        return None
    out[key] = repr(now)
    return now


def is_backlog(arrived: float | None, first: float | None, days: int) -> bool:
    return arrived is not None and first is not None and days > 0 and arrived < first - days * DAY
