"""Ingest benchmark: synthetic chat-sized messages through the real ingest path.

    python bench/ingest.py [--messages 100000] [--customers 10000] [--live 10000] [--batch 2000] [--runs 3]
                           [--postgres auto|URL|none]

Bulk: `Store.ingest_batch` in batches of 2,000 (a connector catching up hands
over what it fetched; smaller batches cost more per message: 200 per batch,
what each `import` worker stores at once while the others parse, gives about
14,000 msg/s). Live: `Store.ingest`, one transaction per message (what a
quiet connector does); on PostgreSQL the round trips per message are counted too
(bench/pg.py RoundTrips). Identity resolution, auto-linking by e-mail and FTS
indexing are all included. Targets: bulk >= 20,000 msg/s, live >= 2,000 msg/s.
The machine's speed wanders by some 10% from run to run: the bulk figure is the
median of several runs, each into a new store, and every run is printed.

The same runs go to PostgreSQL in the same process (bench/pg.py: a throwaway server
with default durability, or `--postgres URL`): target there at least half of SQLite's
bulk rate.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import Store  # noqa: E402
from store.models import InboundMessage, Sender  # noqa: E402

WORDS = ("order delivery refund broken package tracking invoice please thanks hello when where size "
         "colour blue red return exchange address payment card arrived late today tomorrow week help "
         "number shop item box damaged missing wrong replacement").split()
FIRST = "Jane Bob Ana Li Omar Sara Tom Mia Ivan Yuki Lea Noah Emma Raj Zoe".split()
LAST = "Roe Li Silva Chen Haddad Berg Novak Sato Costa Meyer Kim Okafor".split()
CHANNELS = ("email", "telegram", "slack")


def sender_for(customer: int, channel: str) -> Sender:
    name = f"{FIRST[customer % len(FIRST)]} {LAST[customer % len(LAST)]}"
    email = f"customer{customer}@example.com"
    if channel == "email":
        return Sender("email", email, name)
    if channel == "telegram":
        return Sender("telegram", str(100000 + customer), name, f"cust{customer}")
    # Slack profiles carry the e-mail: exercises auto-linking
    return Sender("slack", f"U{customer:08d}", name, f"cust{customer}", emails=(email,))


def iter_messages(n: int, customers: int, seed: int, prefix: str) -> Iterator[InboundMessage]:
    rng = random.Random(seed)
    t0 = 1_790_000_000.0
    for i in range(n):
        c = rng.randrange(customers)
        channel = CHANNELS[rng.randrange(3)]
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30)))
        yield InboundMessage(channel, "bench", f"{prefix}{i}", sender_for(c, channel), text, t0 + i,
                             subject="Order question" if channel == "email" else None)


def make_messages(n: int, customers: int, seed: int, prefix: str) -> list[InboundMessage]:
    return list(iter_messages(n, customers, seed, prefix))


def bulk_run(path: Path | str, args) -> float:
    """Seconds spent in ingest_batch for the whole synthetic set, into a new store."""
    store = Store(path)
    # Each batch is built just before it is stored and dropped after, as a
    # connector does: only the storing is timed, and the heap holds one batch.
    bulk = iter_messages(args.messages, args.customers, 1, "b")
    seconds, offset = 0.0, 0
    while batch := list(itertools.islice(bulk, args.batch)):
        offset += len(batch)
        start = time.perf_counter()
        store.ingest_batch(batch, "bench:bulk", {"offset": str(offset)})
        seconds += time.perf_counter() - start
    if not getattr(store, "pg", False):
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return seconds


def measure(new_location, size_of, args) -> dict:
    """Bulk runs (each into a new store), then the live run and a search on the last one."""
    runs = []
    for _ in range(args.runs):
        location = new_location()
        runs.append(bulk_run(location, args))
    size = size_of(location)
    store = Store(location)  # the live run goes on top of the last bulk store
    live = make_messages(args.live, args.customers, 2, "l")
    trips = None
    if getattr(store, "pg", False):
        from bench.pg import RoundTrips

        trips = RoundTrips()
    with trips or contextlib.nullcontext():
        start = time.perf_counter()
        for item in live:
            store.ingest(item)
        live_s = time.perf_counter() - start
    customers = store.q1("SELECT count(*) FROM customers WHERE merged_into IS NULL")[0]
    rows = store.q1("SELECT count(*) FROM messages")[0]
    start = time.perf_counter()
    hits = store.search("refund broken")
    search_ms = (time.perf_counter() - start) * 1000
    store.close()
    return {"runs": runs, "bulk_s": statistics.median(runs), "live_s": live_s, "size": size, "customers": customers,
            "rows": rows, "hits": len(hits), "search_ms": search_ms, "trips": trips.count / args.live if trips else None}


def report(name: str, r: dict, args, bulk_target: float) -> None:
    spread = ", ".join(f"{args.messages / s:,.0f}" for s in r["runs"])
    print(f"{name}")
    print(f"  bulk import : {args.messages:,} messages in {r['bulk_s']:.2f} s = {args.messages / r['bulk_s']:,.0f}"
          f" msg/s median of {args.runs} runs ({spread}) (target {bulk_target:,.0f})")
    print(f"  live ingest : {args.live:,} messages in {r['live_s']:.2f} s = {args.live / r['live_s']:,.0f} msg/s"
          " (target 2,000)" + (f"; {r['trips']:.1f} round trips per message" if r["trips"] else ""))
    print(f"  database    : {r['size'] / 1e6:.1f} MB for {args.messages:,} messages"
          f" ({r['size'] / args.messages:.0f} bytes/msg)")
    print(f"  store holds : {r['rows']:,} messages, {r['customers']:,} customers (e-mail + Slack auto-linked), "
          f"search 'refund broken' {r['hits']} hits in {r['search_ms']:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--live", type=int, default=10_000, help="messages for the one-by-one run")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3, help="bulk runs, each into a new store (the median is reported)")
    ap.add_argument("--postgres", default="auto", help="auto (a throwaway server, the default), a server URL whose"
                    " user may CREATE DATABASE, or none")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = (Path(tmp) / f"bench{n}.db" for n in itertools.count())
        sqlite = measure(lambda: next(paths), os.path.getsize, args)
    report("SQLite", sqlite, args, 20_000)
    if args.postgres == "none":
        return
    from bench.pg import BenchPostgres

    with BenchPostgres(args.postgres) as pg:
        print(f"(PostgreSQL: {pg.describe()})", flush=True)
        postgres = measure(pg.new_database, pg.size_bytes, args)
    half = args.messages / sqlite["bulk_s"] / 2
    report("PostgreSQL", postgres, args, half)
    ratio = sqlite["bulk_s"] / postgres["bulk_s"]
    print(f"PostgreSQL bulk import is {ratio:.0%} of SQLite's rate (target at least 50%):"
          f" {'ok' if ratio >= 0.5 else 'MISSED'}")

if __name__ == "__main__":
    main()
