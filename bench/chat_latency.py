"""Chat latency: from a customer message injected at the loopback server to its
row in the store, through the real client libraries and the sync engine.

    .venv/bin/python bench/chat_latency.py [--n 50] [--slack-poll-seconds 5]

Channels measured: Telegram (getUpdates long polling), Slack polling
(conversations.history every `poll_seconds`, the connector's default 5 s, the
shortest interval that keeps a handful of conversations well inside Tier 3's
~50 calls a minute) and Slack Socket Mode. Messages are injected at random
moments (0.1-0.6 s apart) so polling is measured at random phases.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.engine import Engine  # noqa: E402
from connectors.sandbox.slack import SlackSandbox  # noqa: E402
from connectors.sandbox.telegram import TelegramSandbox  # noqa: E402
from connectors.slack import SlackConnector  # noqa: E402
from connectors.telegram import TelegramConnector  # noqa: E402
from store import Store  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(connector, inject, n: int, workdir: Path) -> list[float]:
    """Start the engine, inject n messages, return each one's latency in seconds."""
    db = workdir / f"{connector.channel}-{id(connector)}.db"
    Store(db).close()
    engine = Engine(db, [connector], poll_interval=30.0, lease_seconds=10.0)
    engine.start()
    seen: dict[str, float] = {}
    injected: dict[str, float] = {}
    done = threading.Event()

    def watch():
        s = Store(db)
        version = None
        while not done.is_set():
            v = s.data_version()
            if v != version:
                version = v
                now = time.monotonic()
                for row in s.queue(filter="all", limit=10):
                    for m in s.timeline(row.customer_id, limit=n + 10):
                        seen.setdefault(m.text, now)
            time.sleep(0.002)
        s.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        inject("warm-up")
        deadline = time.monotonic() + 30
        while "warm-up" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(n):
            time.sleep(random.uniform(0.1, 0.6))
            text = f"bench {i}"
            injected[text] = time.monotonic()
            inject(text)
        deadline = time.monotonic() + 60
        while len([t for t in injected if t in seen]) < n and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        done.set()
        watcher.join()
        engine.stop()
    missing = [t for t in injected if t not in seen]
    if missing:
        raise SystemExit(f"{connector.name}: {len(missing)} messages never arrived")
    return [seen[t] - injected[t] for t in injected]


def report(name: str, delays: list[float], note: str = "") -> None:
    ms = [d * 1000 for d in delays]
    print(f"{name:<26} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms"
          f"   max {max(ms):7.1f} ms  {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="messages per channel")
    ap.add_argument("--slack-poll-seconds", type=float, default=5.0, help="Slack polling interval")
    args = ap.parse_args()
    random.seed(4)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with TelegramSandbox() as tg:
            user = tg.user(1001, "Jane", "Roe")
            conn = TelegramConnector("bench", tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
            report("telegram (long polling)", measure(conn, lambda t: tg.send_text(user, t), args.n, work))
        with SlackSandbox() as sl:
            jane = sl.user("U100", "jane", "Jane Roe", email="jane@example.com")
            dm = sl.dm(jane)
            conn = SlackConnector("bench", sl.bot_token, base_url=sl.api_url, poll_seconds=args.slack_poll_seconds)
            report("slack (polling)", measure(conn, lambda t: sl.post(jane, dm, t), args.n, work),
                   f"poll every {args.slack_poll_seconds:g} s")
        with SlackSandbox() as sl:
            jane = sl.user("U100", "jane", "Jane Roe", email="jane@example.com")
            dm = sl.dm(jane)
            conn = SlackConnector("bench", sl.bot_token, app_token=sl.app_token, base_url=sl.api_url)
            report("slack (socket mode)", measure(conn, lambda t: sl.post(jane, dm, t), args.n, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
