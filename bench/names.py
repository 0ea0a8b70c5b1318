"""Name lookups on a big store: `omnidesk show NAME` (find_customer) and the merge
picker's / `omnidesk customers QUERY` substring match (customers(query=...)).

    python bench/names.py STORE [--runs 15] [--mark ID]

STORE: a SQLite path or a PostgreSQL URL (a copy: `--mark` renames one customer, and a
newer omnidesk migrates it). Prints the median and worst milliseconds per lookup and
what it found. No pass/fail: figures to compare before and after a change.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import Store, StoreError  # noqa: E402

MARK = "ÉMILE Zolà-Øster"  # a name only the marked customer has, in capitals with accents


def timed(fn, runs: int) -> tuple[float, float, str]:
    times, said = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            got = fn()
            said = (f"#{got}" if isinstance(got, int) else f"{len(got)} customers")
        except StoreError as e:
            said = f"error: {str(e)[:70]}"
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times), said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--mark", type=int, default=4242, help="customer id renamed to the test name (once)")
    args = ap.parse_args()
    start = time.perf_counter()
    s = Store(args.store)
    print(f"open (and migrate, if needed): {(time.perf_counter() - start) * 1000:.0f} ms")
    if s.customer(args.mark).name != MARK:
        s.rename(args.mark, MARK, "bench")
    customers = s.q1("SELECT count(*) FROM customers")[0]
    print(f"{customers} customers; #{args.mark} is {MARK!r}")
    lookups = [
        ("show 'ÉMILE Zolà-Øster' (as stored)", lambda: s.find_customer(MARK)),
        ("show 'émile zolà-øster' (other case)", lambda: s.find_customer("émile zolà-øster")),
        ("show 'emile zola-oster' (no accents)", lambda: s.find_customer("emile zola-oster")),
        ("show 'zolà' (a word of it)", lambda: s.find_customer("zolà")),
        ("show 'la-øst' (inside it)", lambda: s.find_customer("la-øst")),
        ("show 'nobody-like-this'", lambda: s.find_customer("nobody-like-this")),
        ("customers 'ÖSTER' (picker)", lambda: s.customers(limit=30, query="ÖSTER")),
        ("customers 'silva' (common)", lambda: s.customers(limit=30, query="silva")),
    ]
    for label, fn in lookups:
        median, worst, said = timed(fn, args.runs)
        print(f"{label:<40} median {median:7.2f} ms  max {worst:7.2f} ms  -> {said}")
    s.close()


if __name__ == "__main__":
    main()
