"""Connector cursors, the polling lease and channel health."""
from __future__ import annotations

import os
import socket

from store.db import dumps, loads

PRESENCE_TTL = 30.0  # seconds a presence row counts after its last heartbeat (consoles write every 10 s)


def _alive(process: str | None) -> bool:
    """False only when `process` ("host:pid") ran on this machine and has ended."""
    host, _, pid = (process or "").rpartition(":")
    if not pid.isdigit() or host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


class SyncStateMixin:
    # -- cursors: saved in the same transaction as the rows they cover --------
    def save_cursor(self, connector: str, cursor: dict[str, str]) -> None:
        """Save the keys of `cursor`; a key whose value is "" is removed (a connector
        forgets what it no longer follows, e.g. a Slack thread over for a month)."""
        now = self.clock()
        with self.tx():
            self.conn.executemany(
                "INSERT INTO cursors(connector, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(connector, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at"
                " WHERE cursors.value != excluded.value",
                [(connector, k, str(v), now) for k, v in cursor.items() if v != ""],
            )
            gone = [(connector, k) for k, v in cursor.items() if v == ""]
            if gone:
                self.conn.executemany("DELETE FROM cursors WHERE connector=? AND key=?", gone)

    def load_cursor(self, connector: str) -> dict[str, str]:
        """The saved cursor of one connector ('channel:account'): key -> value, {} before its first read."""
        return {r[0]: r[1] for r in self.q("SELECT key, value FROM cursors WHERE connector=?", (connector,))}

    # -- the polling lease: one poller per store --------------------------------
    def acquire_lease(self, holder: str, ttl: float, name: str = "poller") -> bool:
        """Take or renew the lease; True if `holder` has it now."""
        now = self.clock()
        with self.tx():
            self.conn.execute(
                "INSERT INTO leases(name, holder, heartbeat) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, heartbeat=excluded.heartbeat"
                " WHERE leases.holder = excluded.holder OR leases.heartbeat < ?",
                (name, holder, now, now - ttl),
            )
            row = self.q1("SELECT holder FROM leases WHERE name=?", (name,))
        return row is not None and row[0] == holder

    def release_lease(self, holder: str, name: str = "poller") -> None:
        """Give up the lease `name` if `holder` has it (a stopping engine lets another poll at once)."""
        with self.tx():
            self.conn.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    def lease_holder(self, name: str = "poller") -> tuple[str, float] | None:
        """(holder, last heartbeat in unix seconds) of the lease `name`, or None when nobody holds it."""
        row = self.q1("SELECT holder, heartbeat FROM leases WHERE name=?", (name,))
        return (row[0], row[1]) if row else None

    # -- presence: who has which customer open (several agents, one store) -------
    def set_presence(self, agent: str, customer_id: int | None, activity: str = "viewing",
                     process: str | None = None) -> None:
        """`agent` has `customer_id` open (None: nothing, e.g. the console closed).
        `process` is "host:pid" of the console, so others can tell it died."""
        name = f"presence:{agent}"
        with self.tx():
            if customer_id is None:
                self.conn.execute("DELETE FROM leases WHERE name=?", (name,))
            else:
                info = {"customer": customer_id, "activity": activity}
                if process:
                    info["process"] = process
                self.conn.execute("INSERT INTO leases(name, holder, heartbeat) VALUES (?, ?, ?)"
                                  " ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, heartbeat=excluded.heartbeat",
                                  (name, dumps(info), self.clock()))

    def presence(self, customer_id: int, exclude: str | None = None, ttl: float = PRESENCE_TTL) -> list[tuple[str, str]]:
        """Other agents who have this customer open: [(agent, viewing|replying)].
        A row older than `ttl` seconds, or of a console process on this machine
        that is gone, does not count."""
        out = []
        for r in self.q("SELECT name, holder FROM leases WHERE name LIKE 'presence:%' AND heartbeat >= ?",
                        (self.clock() - ttl,)):
            agent = r[0].split(":", 1)[1]
            info = loads(r[1], {})
            if agent != exclude and info.get("customer") == customer_id and _alive(info.get("process")):
                out.append((agent, info.get("activity", "viewing")))
        return out

    # -- channel health -------------------------------------------------------------
    def set_health(self, connector: str, state: str, detail: str = "") -> None:
        """Record a connector's health: state ok | retrying | failed, with a detail line for people (no secrets)."""
        with self.tx():
            self.conn.execute(
                "INSERT INTO health(connector, state, detail, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(connector) DO UPDATE SET state=excluded.state, detail=excluded.detail,"
                " updated_at=excluded.updated_at",
                (connector, state, detail, self.clock()),
            )

    def health(self) -> dict[str, dict]:
        """Every connector's health: name -> {state: ok | retrying | failed, detail: str, updated_at: unix
        seconds}."""
        return {r["connector"]: {"state": r["state"], "detail": r["detail"], "updated_at": r["updated_at"]}
                for r in self.q("SELECT * FROM health ORDER BY connector")}
