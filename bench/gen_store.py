"""Generate a realistic omnidesk store for benchmarks, through the store's own API.

    python bench/gen_store.py /tmp/bench.db --customers 100000 --messages 1000000
    python bench/gen_store.py postgresql://me@localhost/bench   # an empty PostgreSQL database

Customers write on e-mail, Telegram and Slack (some on two channels, linked by
their e-mail address); e-mails carry quoted history; about a third of the
customers have been answered; a few have tags, assignees, snoozes. Rows go in
with `ingest_batch` in batches of 5,000 (one transaction each), the way the
sync engine and the importers write.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import Store  # noqa: E402
from store.models import InboundMessage, Sender  # noqa: E402

FIRST = ("Jane Bob Carol Dmitri Eve Frank Grace Heidi Ivan Judy Karl Lena Mallory Nina Oscar Peggy Quentin Rosa "
         "Sybil Trent Uma Victor Wendy Xavier Yara Zoe Aiko Björn Chloé Diego Élodie Fatima Günther Hana Ines Jürgen "
         "Kenji Léa Mateo Noor Olga Pablo Quinn Raj Sofia Tomás Ursula Vera Wei Yusuf").split()
LAST = ("Roe Li Diaz Orlov Stone Miller Hopper Schmidt Petrov Kim Nakamura Rossi Dubois García Nowak Silva Jensen "
        "Novak Kowalski Müller Ivanova Tanaka Chen Singh Haddad Okafor Costa Lindqvist Brown Wilson").split()
WORDS = ("order delivery refund invoice broken vase shipping tracking account password login api error payment "
         "card address parcel box late today tomorrow please thanks help question return exchange size colour "
         "discount coupon subscription cancel renew upgrade plan bug crash slow app website checkout basket "
         "warehouse courier customs norway germany france spain italy receipt warranty manual battery charger").split()
CHANNELS = ("email", "telegram", "slack")
NOW = time.time()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_people(rng: random.Random, customers: int) -> list[dict]:
    people = []
    for i in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        channel = rng.choices(CHANNELS, weights=(5, 3, 2))[0]
        email = f"{first.lower()}.{last.lower()}.{i}@example.org".encode("ascii", "ignore").decode()
        p = {"name": f"{first} {last}", "email": email, "channels": [channel], "tg": str(10_000_000 + i),
             "slack": f"U{i:08d}"}
        if rng.random() < 0.15:  # also writes on a second channel, linked by e-mail
            p["channels"].append(rng.choice([c for c in CHANNELS if c != channel]))
        people.append(p)
    return people


def sender(p: dict, channel: str) -> Sender:
    if channel == "email":
        return Sender("email", p["email"], p["name"])
    if channel == "telegram":
        return Sender("telegram", p["tg"], p["name"], p["name"].split()[0].lower() + p["tg"][-4:], emails=(p["email"],))
    return Sender("slack", p["slack"], p["name"], p["name"].split()[0].lower(), emails=(p["email"],))


def generate(path: Path | str, customers: int, messages: int, seed: int = 7, batch: int = 5000, quiet: bool = False) -> dict:
    rng = random.Random(seed)
    store = Store(path)
    people = make_people(rng, customers)
    # every customer writes at least once; the rest is spread with a long tail
    owners = list(range(customers)) + [min(customers - 1, int(rng.paretovariate(1.2)) - 1 if rng.random() < 0.3
                                           else rng.randrange(customers)) for _ in range(max(0, messages - customers))]
    rng.shuffle(owners)
    start = time.perf_counter()
    span = 365 * 86400
    items: list[InboundMessage] = []
    done = 0
    times = sorted(NOW - rng.random() * span for _ in range(len(owners)))
    for n, (who, sent_at) in enumerate(zip(owners, times)):
        p = people[who]
        channel = rng.choice(p["channels"])
        text = " ".join(sentence(rng, rng.randint(4, 14)) for _ in range(rng.randint(1, 4)))
        subject, meta = None, {}
        if channel == "email":
            subject = "Re: " + sentence(rng, 3)[:-1] if rng.random() < 0.4 else sentence(rng, 3)[:-1]
            if rng.random() < 0.4:
                new = text
                text += "\n\nOn Mon, 2 Mar 2026 at 10:00, Shop <help@shop.example> wrote:\n> " + \
                    "\n> ".join(sentence(rng, 8) for _ in range(rng.randint(2, 8)))
                meta = {"new_text": new}
        items.append(InboundMessage(channel, "main", f"g{n}", sender(p, channel), text, sent_at, subject=subject,
                                    thread_key=f"t{who}", meta=meta))
        if len(items) >= batch:
            store.ingest_batch(items)
            done += len(items)
            items = []
            if not quiet:
                rate = done / (time.perf_counter() - start)
                print(f"\r{done:,} messages ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    if items:
        store.ingest_batch(items)
        done += len(items)
    ingest_s = time.perf_counter() - start
    # the agents' side: a third answered, some tagged, assigned, snoozed, done
    ids = [r.customer_id for r in store.queue("all", limit=customers, offset=0)][: customers]
    rng.shuffle(ids)
    with store.tx():
        for cid in ids[: len(ids) // 3]:
            store.queue_reply(cid, "Thanks, we are on it.", rng.choice(("alice", "bob")))
        for cid in ids[: len(ids) // 20]:
            store.tag(cid, rng.choice(("vip", "refund", "bug", "wholesale")), "alice")
        for cid in ids[len(ids) // 3: len(ids) // 3 + len(ids) // 10]:
            store.assign(cid, rng.choice(("alice", "bob", "carol")), "alice")
        for cid in ids[-len(ids) // 50:]:
            store.snooze(cid, NOW + rng.randint(1, 72) * 3600, "alice")
        for cid in ids[len(ids) // 2: len(ids) // 2 + len(ids) // 5]:
            store.set_status(cid, "done", "bob")
    total_s = time.perf_counter() - start
    pg = getattr(store, "pg", False)
    if pg:
        size = store.q1("SELECT pg_database_size(current_database())")[0]
    else:
        store.conn.execute("PRAGMA optimize")
        size = Path(path).stat().st_size
    store.close()
    stats = {"customers": len(ids), "messages": done, "ingest_s": round(ingest_s, 1), "total_s": round(total_s, 1),
             "rate_per_s": round(done / ingest_s), "size_mb": round(size / 1e6)}
    if not quiet:
        print(file=sys.stderr)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", help="a new SQLite file, or the URL of an empty PostgreSQL database")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if "://" not in args.path and Path(args.path).exists():
        sys.exit(f"{args.path} exists; pick a new path")
    stats = generate(args.path, args.customers, args.messages, args.seed)
    for k, v in stats.items():
        print(f"{k:>12}: {v:,}" if isinstance(v, int) else f"{k:>12}: {v}")


if __name__ == "__main__":
    main()
