"""Inbound messages into the store: idempotent, atomic with the cursor."""
from __future__ import annotations

from dataclasses import dataclass

from store.db import dumps, loads
from store.models import InboundMessage

MAX_TEXT = 1_000_000  # characters kept in `text`; the raw source keeps the rest


@dataclass
class IngestResult:
    message_id: int
    customer_id: int
    identity_id: int
    new_customer: bool = False


class IngestMixin:
    def ingest(self, item: InboundMessage) -> IngestResult | None:
        """Store one inbound item. Returns None when it was already stored."""
        with self.tx():
            return self._ingest_one(item)

    def ingest_batch(self, items: list[InboundMessage], connector: str | None = None,
                     cursor: dict[str, str] | None = None) -> list[IngestResult]:
        """Store items and advance the connector's cursor in one transaction:
        either both land or neither does."""
        results = []
        with self.tx():
            for item in items:
                result = self._ingest_one(item)
                if result:
                    results.append(result)
            if connector is not None and cursor:
                self.save_cursor(connector, cursor)
        for hook in self.on_ingest:
            hook(results)
        return results

    def _ingest_one(self, item: InboundMessage) -> IngestResult | None:
        if item.kind == "edit":
            return self._apply_edit(item)
        if item.kind == "delete":
            return self._apply_delete(item)
        existing = self.q1(
            "SELECT 1 FROM messages WHERE channel=? AND account=? AND external_id=?",
            (item.channel, item.account, item.external_id),
        )
        if existing:
            return None
        max_id = self._max_customer_id()
        identity_id, customer_id = self.resolve_sender(item.sender, item.account)
        now = self.clock()
        text = item.text or ""
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + "\n[… message truncated; the full source is kept]"
        message_id = self.conn.execute(
            "INSERT INTO messages(customer_id, identity_id, channel, account, direction, external_id, thread_key,"
            " reply_to, subject, text, html, sent_at, received_at, parse_error, meta, raw)"
            " VALUES (?, ?, ?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, identity_id, item.channel, item.account, item.external_id, item.thread_key,
             item.reply_to, item.subject, text, item.html, item.sent_at, now, item.parse_error,
             dumps(item.meta) if item.meta else None, item.raw),
        ).lastrowid
        for att in item.attachments:
            self._add_attachment(message_id, att)
        self._note_inbound(customer_id, item.channel, item.sent_at)
        return IngestResult(message_id, customer_id, identity_id, new_customer=customer_id > max_id)

    def _max_customer_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()[0]

    def _note_inbound(self, customer_id: int, channel: str, sent_at: float) -> None:
        """An inbound message reopens the customer and starts (or keeps) the wait."""
        self.conn.execute(
            """UPDATE customers SET
                 status = 'open', snoozed_until = NULL,
                 unread = unread + 1,
                 last_inbound_at = max(coalesce(last_inbound_at, 0), :t),
                 last_channel = CASE WHEN :t >= coalesce(last_inbound_at, 0) THEN :ch ELSE last_channel END,
                 waiting_since = CASE
                     WHEN :t <= coalesce(last_outbound_at, 0) THEN waiting_since
                     WHEN waiting_since IS NULL THEN :t
                     ELSE min(waiting_since, :t) END
               WHERE id = :id""",
            {"t": sent_at, "ch": channel, "id": customer_id},
        )

    def _add_attachment(self, message_id: int, att) -> None:
        from store.attachments import sanitize_filename

        sha, size, rel = self.files.put(att)
        self.conn.execute(
            "INSERT INTO attachments(message_id, filename, content_type, size, sha256, path) VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, sanitize_filename(att.filename), att.content_type or "application/octet-stream", size, sha, rel),
        )

    def _apply_edit(self, item: InboundMessage) -> IngestResult | None:
        row = self.q1(
            "SELECT id, customer_id, identity_id, text, previous_texts FROM messages"
            " WHERE channel=? AND account=? AND external_id=?",
            (item.channel, item.account, item.external_id),
        )
        if row is None:  # edit of a message we never saw: keep it as a message
            item.kind = "message"
            return self._ingest_one(item)
        if row["text"] == item.text:
            return None  # the same edit delivered twice
        previous = loads(row["previous_texts"], [])
        previous.append(row["text"])
        self.conn.execute(
            "UPDATE messages SET text=?, html=?, edited_at=?, previous_texts=? WHERE id=?",
            (item.text, item.html, item.meta.get("edited_at", self.clock()), dumps(previous), row["id"]),
        )
        return IngestResult(row["id"], row["customer_id"], row["identity_id"])

    def _apply_delete(self, item: InboundMessage) -> IngestResult | None:
        row = self.q1(
            "SELECT id, customer_id, identity_id, deleted FROM messages WHERE channel=? AND account=? AND external_id=?",
            (item.channel, item.account, item.external_id),
        )
        if row is None or row["deleted"]:
            return None
        self.conn.execute("UPDATE messages SET deleted=1 WHERE id=?", (row["id"],))
        return IngestResult(row["id"], row["customer_id"], row["identity_id"])
