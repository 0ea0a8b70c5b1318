"""One customer's messages across every channel, in time order."""
from __future__ import annotations

from store.db import StoreError, loads
from store.models import Attachment, Message


class TimelineMixin:
    def message_count(self) -> int:
        """How many messages the store holds: inbound, our replies and notes."""
        return self.q1("SELECT count(*) FROM messages")[0]

    def _message(self, row) -> Message:
        m = Message(
            id=row["id"], customer_id=row["customer_id"], identity_id=row["identity_id"], channel=row["channel"],
            account=row["account"], direction=row["direction"], external_id=row["external_id"],
            thread_key=row["thread_key"], subject=row["subject"], text=row["text"], html=row["html"],
            sent_at=row["sent_at"], author=row["author"], reply_to=row["reply_to"], parse_error=row["parse_error"],
            edited_at=row["edited_at"], previous_texts=loads(row["previous_texts"], []), deleted=bool(row["deleted"]),
            meta=loads(row["meta"], {}),
        )
        if "state" in row.keys() and row["state"] is not None:
            m.state, m.error, m.attempts = row["state"], row["last_error"], row["attempts"]
            m.uncertain = bool(row["uncertain"])
            m.delivered_at = row["delivered_at"] if m.state == "sent" else None
        return m

    _SELECT = ("SELECT m.id, m.customer_id, m.identity_id, m.channel, m.account, m.direction, m.external_id,"
               " m.thread_key, m.subject, m.text, m.html, m.sent_at, m.author, m.reply_to, m.parse_error,"
               " m.edited_at, m.previous_texts, m.deleted, m.meta, o.state, o.last_error, o.attempts,"
               " o.uncertain, o.sent_at AS delivered_at FROM messages m LEFT JOIN outbox o ON o.message_id = m.id")

    def message(self, message_id: int) -> Message:
        """One message with its attachments. StoreError if there is no such id."""
        row = self.q1(self._SELECT + " WHERE m.id=?", (message_id,))
        if row is None:
            raise StoreError(f"no message with id {message_id}")
        m = self._message(row)
        m.attachments = self.attachments(message_id)
        return m

    def timeline(self, customer_id: int, limit: int = 200, before: tuple[float, int] | None = None) -> list[Message]:
        """The newest `limit` messages (before a (sent_at, id) key), oldest first."""
        sql = self._SELECT + " WHERE m.customer_id=?"
        params: list = [customer_id]
        if before:
            sql += " AND (m.sent_at, m.id) < (?, ?)"
            params += list(before)
        rows = self.q(sql + " ORDER BY m.sent_at DESC, m.id DESC LIMIT ?", (*params, limit))
        messages = [self._message(r) for r in reversed(rows)]
        if messages:
            by_id = {m.id: m for m in messages}
            marks = ",".join("?" * len(by_id))
            for r in self.q(f"SELECT * FROM attachments WHERE message_id IN ({marks}) ORDER BY id", tuple(by_id)):
                by_id[r["message_id"]].attachments.append(self._attachment(r))
        return messages

    def latest_inbound_id(self) -> int:
        """Id of the newest inbound message (0 if none): a cheap "anything new?" check."""
        return self.q1("SELECT coalesce(max(id), 0) FROM messages WHERE direction='in'")[0]

    def raw_source(self, message_id: int) -> bytes | None:
        """The message as it came (e-mail: the RFC 5322 bytes), or None when it was not kept."""
        row = self.q1("SELECT raw FROM messages WHERE id=?", (message_id,))
        return row[0] if row else None

    def _attachment(self, r) -> Attachment:
        return Attachment(id=r["id"], message_id=r["message_id"], filename=r["filename"], content_type=r["content_type"],
                          size=r["size"], sha256=r["sha256"], path=str(self.files.path(r["path"])) if r["path"] else None)

    def attachments(self, message_id: int) -> list[Attachment]:
        """The attachments of one message, in the order they came."""
        return [self._attachment(r) for r in self.q("SELECT * FROM attachments WHERE message_id=? ORDER BY id", (message_id,))]

    def attachment(self, attachment_id: int) -> Attachment:
        """One attachment by id. StoreError if there is no such id."""
        row = self.q1("SELECT * FROM attachments WHERE id=?", (attachment_id,))
        if row is None:
            raise StoreError(f"no attachment with id {attachment_id}")
        return self._attachment(row)
