"""A fake channel for engine tests: its "server" is a JSON-lines file.

Not a mock of our code: the engine, store and SQLite are real; only the
remote channel is played by a file, so a test can crash the process at any
point and count what survived.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from connectors.base import Batch, BaseConnector, ConnectorError, PermanentError
from store.models import InboundMessage, Receipt, Sender


class FileChannel(BaseConnector):
    channel = "telegram"

    def __init__(self, server: Path, account: str = "fake", batch: int = 50, delay: float = 0.0):
        super().__init__(account)
        self.server = Path(server)
        self.batch = batch
        self.delay = delay
        self.fail_next: list[Exception] = []  # errors to raise on the next fetches
        self.send_errors: list[Exception] = []
        self.sent: list = []
        self.fetches = 0

    def fetch(self, cursor):
        self.fetches += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        start = int(cursor.get("offset", 0))
        lines = self.server.read_text().splitlines() if self.server.exists() else []
        chunk = lines[start:start + self.batch]
        items = []
        for n, line in enumerate(chunk, start):
            d = json.loads(line)
            items.append(InboundMessage(self.channel, self.account, str(n), Sender(self.channel, d["from"], d.get("name", "")),
                                        d["text"], d.get("at", 1_790_000_000.0 + n)))
            if self.delay:
                time.sleep(self.delay)
        return Batch(items, {"offset": str(start + len(chunk))}, more=start + len(chunk) < len(lines))

    def wait(self, timeout, stop):
        stop.wait(min(timeout, 0.05))

    def send(self, message):
        if self.send_errors:
            raise self.send_errors.pop(0)
        self.sent.append(message)
        return Receipt(f"sent-{message.message_id}")


def write_server(path: Path, count: int, start: int = 0) -> None:
    with open(path, "a") as f:
        for i in range(start, start + count):
            f.write(json.dumps({"from": str(1000 + i % 37), "name": f"Customer {i % 37}", "text": f"message {i}"}) + "\n")


if __name__ == "__main__":  # python -m tests.support.fake_channel DB SERVER: run the engine until killed
    from connectors.engine import Engine

    db, server = sys.argv[1], Path(sys.argv[2])
    engine = Engine(db, [FileChannel(server, batch=20, delay=0.002)], poll_interval=0.05, lease_seconds=2)
    engine.start()
    print("started", flush=True)
    threading.Event().wait()
