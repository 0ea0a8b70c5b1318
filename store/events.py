"""The event log: who did what, when, to whom. Also the basis of undo."""
from __future__ import annotations

from store.db import dumps, loads
from store.models import Event


def _event(row) -> Event:
    return Event(id=row["id"], at=row["at"], actor=row["actor"], kind=row["kind"],
                 customer_id=row["customer_id"], data=loads(row["data"], {}), undone=row["undone_by"] is not None)


class EventsMixin:
    def log_event(self, kind: str, actor: str, customer_id: int | None, **data) -> int:
        """Append an event (who did what to whom, with `data` as JSON) inside the caller's transaction; returns
        its id."""
        event_id = self.insert_id(
            "INSERT INTO events(at, actor, kind, customer_id, data) VALUES (?, ?, ?, ?, ?)",
            (self.clock(), actor, kind, customer_id, dumps(data)),
        )
        self._pending_events.append(event_id)
        return event_id

    def events(self, customer_id: int | None = None, limit: int = 50, kind: str | None = None,
               since: float | None = None, after_id: int | None = None) -> list[Event]:
        """Events newest first (oldest first after `after_id`): of one customer and everyone merged into them, of
        one `kind`, from `since` (unix seconds); at most `limit`."""
        where, params = [], []
        if customer_id is not None:
            ids = self._family(customer_id)
            where.append(f"customer_id IN ({','.join('?' * len(ids))})")
            params += ids
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        sql = "SELECT * FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?" if after_id is None else " ORDER BY id ASC LIMIT ?"
        return [_event(r) for r in self.q(sql, (*params, limit))]

    def event(self, event_id: int) -> Event | None:
        """One event by id, or None."""
        row = self.q1("SELECT * FROM events WHERE id=?", (event_id,))
        return _event(row) if row else None

    def _family(self, customer_id: int) -> list[int]:
        """The customer and everyone merged into it (their history is its history)."""
        ids = [customer_id]
        frontier = [customer_id]
        while frontier:
            rows = self.q(f"SELECT id FROM customers WHERE merged_into IN ({','.join('?' * len(frontier))})", frontier)
            frontier = [r[0] for r in rows if r[0] not in ids]
            ids += frontier
        return ids
