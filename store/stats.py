"""Figures for `omnidesk stats`, the stats screen and the profile.

Definitions (what the numbers mean, so they can be checked by hand):
- a *wait* starts with an inbound message when nobody is waiting yet, and ends
  with the next reply written by a person (automatic acknowledgements and
  satisfaction questions do not end it; failed replies do not either);
- *reply time* is the length of each answered wait; the *first response* is
  the first answered wait of a case; a case starts with the first inbound
  message after the customer was last set to done (or their first ever);
- a wait is counted in the period it started in, under the channel of the
  message that started it;
- percentiles interpolate linearly between the nearest ranks (numpy's default).
"""
from __future__ import annotations

import math
from datetime import datetime, tzinfo

from store.customers import follow_merges
from store.terms import CHANNELS  # noqa: E402  (the one list)
DONE_SQL = ("SELECT customer_id, at FROM events WHERE kind='status' AND undone_by IS NULL"
            " AND json_extract(data, '$.new') = 'done'")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _blank() -> dict:
    return {"messages_in": 0, "messages_out": 0, "auto_replies": 0,
            "first_response_count": 0, "first_response_p50": None, "first_response_p90": None,
            "reply_count": 0, "reply_p50": None, "reply_p90": None, "reply_mean": None,
            "unanswered": 0, "breaches": 0, "ratings": 0, "rating_avg": None, "rating_positive": 0}


class StatsMixin:
    # -- one customer -----------------------------------------------------------------
    def case_start(self, customer_id: int, before: float | None = None) -> float | None:
        """When the current case began: the last time (before `before`) the
        customer was set to done. None: their first case."""
        ids = self._family(customer_id)
        row = self.q1(DONE_SQL + f" AND customer_id IN ({','.join('?' * len(ids))}) AND at < ? ORDER BY at DESC LIMIT 1",
                      (*ids, 9e18 if before is None else before))
        return row[1] if row else None

    def engagement(self, customer_id: int, gap_cap: float = 600.0) -> dict:
        """Time engaged in the current case across every channel: the gaps between
        consecutive messages (either way), each counted up to `gap_cap` seconds,
        so a day of silence is not "engagement" but a long back-and-forth is.
        Returns {"seconds": float, "messages": int, "channels": sorted [str],
        "since": unix seconds the case started, or None}."""
        since = self.case_start(customer_id)
        rows = self.q("SELECT sent_at, channel FROM messages WHERE customer_id=? AND direction IN ('in','out')"
                      " AND sent_at > ? AND json_extract(coalesce(meta, '{}'), '$.auto') IS NULL ORDER BY sent_at, id",
                      (customer_id, since if since is not None else -1e18))
        seconds = sum(min(gap_cap, b[0] - a[0]) for a, b in zip(rows, rows[1:]))
        return {"seconds": seconds, "messages": len(rows), "channels": sorted({r[1] for r in rows}),
                "since": since}

    # -- the whole store ----------------------------------------------------------------
    def stats(self, since: float, until: float | None = None, tz: tzinfo | None = None) -> dict:
        """Figures for the period [since, until) (unix seconds; until defaults to now), per channel and 'all':
        messages in/out, first-response and reply times (p50/p90, seconds), unanswered now, breaches, ratings,
        inbound per hour of day (local time, or `tz`). A dict: see `omnidesk stats --json`."""
        until = self.clock() if until is None else until
        per = {ch: _blank() for ch in (*CHANNELS, "all")}
        first: dict[str, list[float]] = {ch: [] for ch in per}
        reply: dict[str, list[float]] = {ch: [] for ch in per}
        hours = {ch: [0] * 24 for ch in per}

        merged = {r[0]: r[1] for r in self.q("SELECT id, merged_into FROM customers WHERE merged_into IS NOT NULL")}

        def live(cid):
            return follow_merges(cid, merged.get)

        dones: dict[int, list[float]] = {}
        for cid, at in self.q(DONE_SQL + " AND at <= ?", (until,)):
            dones.setdefault(live(cid), []).append(at)

        rows = self.q(
            "SELECT m.customer_id, m.direction, m.channel, m.sent_at,"
            " json_extract(coalesce(m.meta, '{}'), '$.auto') IS NOT NULL AS auto, o.state"
            " FROM messages m LEFT JOIN outbox o ON o.message_id = m.id"
            " WHERE m.direction IN ('in','out') AND m.sent_at <= :until AND m.customer_id IN"
            " (SELECT DISTINCT customer_id FROM messages WHERE sent_at >= :since AND sent_at <= :until)"
            " ORDER BY m.customer_id, m.sent_at, m.id", {"since": since, "until": until})

        def add(metric, channel, value):
            for ch in (channel, "all"):
                if ch in per:
                    metric[ch].append(value)

        def count(key, channel):
            for ch in (channel, "all"):
                if ch in per:
                    per[ch][key] += 1

        current, wait, wait_ch, first_pending, case_open, done_iter = None, None, None, False, False, iter(())
        next_done = None
        for cid, direction, channel, at, auto, state in rows:
            if cid != current:  # a new customer: reset the walk
                current, wait, first_pending, case_open = cid, None, False, False
                done_iter = iter(sorted(dones.get(cid, [])))
                next_done = next(done_iter, None)
            while next_done is not None and next_done < at:  # the case closed before this message
                wait, case_open, first_pending = None, False, False
                next_done = next(done_iter, None)
            in_window = since <= at <= until
            if direction == "in":
                if in_window:
                    count("messages_in", channel)
                    hour = datetime.fromtimestamp(at, tz).hour if tz else datetime.fromtimestamp(at).hour
                    for ch in (channel, "all"):
                        if ch in hours:
                            hours[ch][hour] += 1
                if not case_open:
                    case_open, first_pending = True, True
                if wait is None:
                    wait, wait_ch = at, channel
                continue
            if state == "failed":
                continue
            if in_window:
                count("auto_replies" if auto else "messages_out", channel)
            if auto or wait is None:
                continue
            if since <= wait <= until:
                add(reply, wait_ch, at - wait)
                if first_pending:
                    add(first, wait_ch, at - wait)
            first_pending, wait = False, None

        for ch in per:
            p = per[ch]
            p["first_response_count"] = len(first[ch])
            p["first_response_p50"], p["first_response_p90"] = percentile(first[ch], 50), percentile(first[ch], 90)
            p["reply_count"] = len(reply[ch])
            p["reply_p50"], p["reply_p90"] = percentile(reply[ch], 50), percentile(reply[ch], 90)
            p["reply_mean"] = sum(reply[ch]) / len(reply[ch]) if reply[ch] else None

        for channel, n in self.q("SELECT last_channel, count(*) FROM customers WHERE merged_into IS NULL"
                                 " AND status='open' AND waiting_since IS NOT NULL GROUP BY last_channel"):
            for ch in (channel, "all"):
                if ch in per:
                    per[ch]["unanswered"] += n
        for channel, n in self.q("SELECT channel, count(*) FROM breaches WHERE at >= ? AND at <= ? GROUP BY channel",
                                 (since, until)):
            for ch in (channel, "all"):
                if ch in per:
                    per[ch]["breaches"] += n
        scores: dict[str, list[int]] = {ch: [] for ch in per}
        for channel, score in self.q("SELECT channel, score FROM ratings WHERE at >= ? AND at <= ?", (since, until)):
            for ch in (channel, "all"):
                if ch in per:
                    scores[ch].append(score)
        for ch, xs in scores.items():
            per[ch]["ratings"] = len(xs)
            per[ch]["rating_avg"] = sum(xs) / len(xs) if xs else None
            per[ch]["rating_positive"] = sum(1 for x in xs if x >= 4)
        return {"since": since, "until": until, "channels": per, "hours": hours}
