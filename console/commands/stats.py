"""`omnidesk stats`: how every channel is doing.

    omnidesk stats                     # the last 7 days
    omnidesk stats --since 2026-11-01  # from local midnight that day
    omnidesk stats --json | jq .channels.email
    omnidesk stats --csv > week.csv    # one row per channel; --hours for inbound per hour of day
"""
from __future__ import annotations

import csv
import sys
import time
from datetime import datetime

from console.commands.common import UserError, iso, since as parse_since_flag
from store.terms import CHANNELS
from store.timefmt import format_duration

CHANNEL_ROWS = (*CHANNELS, "all")
fmt_duration = format_duration  # the name the stats screen imports


def register(sub, parents) -> None:
    p = sub.add_parser("stats", parents=parents, help="messages, response times, breaches and ratings per channel",
                       description="Per channel and overall: messages in and out, first-response and reply times "
                                   "(p50/p90), unanswered now, target breaches, satisfaction, busiest hours.")
    p.add_argument("--since", default="7d", help="7d, 24h, 2w or a date like 2026-11-01 (default: 7d)")
    p.add_argument("--until", help="end of the period (a date; default: now)")
    p.add_argument("--csv", action="store_true", help="CSV: one row per channel (with --hours: per hour of day)")
    p.add_argument("--hours", action="store_true", help="with --csv: inbound messages per hour of day")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    now = time.time()
    since = parse_since_flag(args.since, now)
    until = parse_since_flag(args.until, now, "--until") if args.until else None
    if since > now:  # a reversed range counts nothing and looks like a quiet week
        raise UserError(f"--since {args.since} is in the future; give a past date or a span like 7d")
    if until is not None and until <= since:
        raise UserError(f"--until {args.until} is not after --since {args.since}")
    data = ctx.store.stats(since, until)
    if args.csv:
        write_csv(data, sys.stdout, args.hours)
        return 0
    out = {**data, "since": iso(data["since"]), "until": iso(data["until"])}
    ctx.emit(out, lambda _: human(data))
    return 0


def write_csv(data: dict, f, hours: bool = False) -> None:
    w = csv.writer(f, lineterminator="\n")
    if hours:
        w.writerow(["hour", *CHANNEL_ROWS])
        for h in range(24):
            w.writerow([h, *(data["hours"][ch][h] for ch in CHANNEL_ROWS)])
        return
    keys = list(data["channels"]["all"])
    w.writerow(["channel", *keys])
    for ch in CHANNEL_ROWS:
        row = data["channels"][ch]
        w.writerow([ch, *("" if row[k] is None else round(row[k], 3) if isinstance(row[k], float) else row[k]
                          for k in keys)])


def human(data: dict) -> str:
    start = datetime.fromtimestamp(data["since"]).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(data["until"]).strftime("%Y-%m-%d %H:%M")
    cols = [("in", "messages_in"), ("out", "messages_out"), ("auto", "auto_replies"),
            ("1st p50", "first_response_p50"), ("1st p90", "first_response_p90"),
            ("reply p50", "reply_p50"), ("reply p90", "reply_p90"),
            ("waiting", "unanswered"), ("breaches", "breaches"), ("rating", "rating_avg")]
    lines = [f"{start} – {end}", "", f"{'':<9}" + "".join(f"{h:>10}" for h, _ in cols)]
    for ch in CHANNEL_ROWS:
        row = data["channels"][ch]
        cells = []
        for _, key in cols:
            v = row[key]
            if key.endswith(("_p50", "_p90")):
                cells.append(fmt_duration(v))
            elif key == "rating_avg":
                cells.append(f"{v:.1f} ({row['ratings']})" if v is not None else "-")
            else:
                cells.append(str(v))
        lines.append(f"{ch:<9}" + "".join(f"{c:>10}" for c in cells))
    total = data["channels"]["all"]
    if total["ratings"]:
        share = 100 * total["rating_positive"] / total["ratings"]
        lines += ["", f"Satisfaction: {total['rating_avg']:.1f} of 5 from {total['ratings']} answers "
                      f"({share:.0f}% rated 4 or 5)"]
    hours = data["hours"]["all"]
    if any(hours):
        top = max(hours)
        lines += ["", "Inbound by hour of day (local time):"]
        for h, n in enumerate(hours):
            if n:
                lines.append(f"  {h:02d}:00  {'█' * max(1, round(28 * n / top)):<28}  {n}")
    return "\n".join(lines)
