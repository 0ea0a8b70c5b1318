"""Inbound messages into the store: idempotent, atomic with the cursor."""
from __future__ import annotations

import email.utils
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from store.db import BLOB_CHUNK, dumps, in_chunks, loads
from store.identity import READ_IT, normalize_address
from store.models import InboundMessage, Sender

MAX_TEXT = 1_000_000  # characters kept in `text`; the raw source keeps the rest
BULK_MIN = 32  # batches at least this big take the set-based path

_BULK_INSERT = (
    "INSERT INTO messages(customer_id, identity_id, channel, account, direction, external_id, thread_key, reply_to,"
    " subject, text, html, sent_at, received_at, parse_error, meta, raw)"
    " VALUES (?, ?, ?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NOTE_INBOUND = """UPDATE customers SET
     status = 'open', snoozed_until = NULL,
     unread = unread + 1,
     last_inbound_at = max(coalesce(last_inbound_at, 0), :t),
     last_channel = CASE WHEN :t >= coalesce(last_inbound_at, 0) THEN :ch ELSE last_channel END,
     waiting_since = CASE
         WHEN max(:t, :r) <= coalesce(last_outbound_at, 0) THEN waiting_since
         WHEN waiting_since IS NULL THEN :t
         ELSE min(waiting_since, :t) END
   WHERE id = :id"""
# Answered only if our reply came after the message both by its date and by when it
# arrived here: a customer clock running late, or a message that crossed our reply,
# must not hide an unanswered message.


# A bulk batch applies _NOTE_INBOUND's effect once per customer, split in two:
# the counters every new message moves, and the queue columns (status, wait)
# that only some customers need changed. Every queue index covers the second
# set, so leaving it out of the common update skips rewriting index entries.
_NOTE_INBOUND_COUNTS = """UPDATE customers SET
     unread = unread + ?,
     last_channel = CASE WHEN ?2 >= coalesce(last_inbound_at, 0) THEN ?3 ELSE last_channel END,
     last_inbound_at = max(coalesce(last_inbound_at, 0), ?2)
   WHERE id = ?4"""
_NOTE_INBOUND_REOPEN = "UPDATE customers SET status = 'open', snoozed_until = NULL, waiting_since = ? WHERE id = ?"

# Backlog (meta["backlog"], see connectors/email/backlog.py): old mail found on a
# first read. It is the newest inbound message if it is, but it opens no wait,
# counts as read, and a customer first seen through it starts done.
_NOTE_BACKLOG = """UPDATE customers SET
     last_channel = CASE WHEN :t >= coalesce(last_inbound_at, 0) THEN :ch ELSE last_channel END,
     last_inbound_at = max(coalesce(last_inbound_at, 0), :t),
     status = CASE WHEN :new = 1 THEN 'done' ELSE status END
   WHERE id = :id"""


# PostgreSQL, one-by-one ingest: the stored message with this id (if any) and the sender's
# identity (if any) in one statement; each is unique, so there is exactly one row.
_STORED_AND_SENDER = (
    "SELECT m.id IS NOT NULL AS stored, m.text AS m_text, m.subject AS m_subject,"
    " i.id, i.customer_id, i.display_name, i.handle, i.account FROM (SELECT 1) one"
    " LEFT JOIN messages m ON m.channel = ? AND m.account = ? AND m.external_id = ?"
    " LEFT JOIN identities i ON i.channel = ? AND i.address = ?")


def _machine(item: InboundMessage) -> bool:
    """Mail written by machines about our mail (connectors/email/reports.py), or
    our own mail (an imported Sent folder): both take the careful path."""
    return bool(item.meta) and bool(item.meta.get("bounce") or item.meta.get("auto_reply") or item.meta.get("ours"))


def _arrived(item: InboundMessage, now: float) -> float:
    """When a message reached us. Imported history (meta "imported") arrived when
    it was sent: "answered?" compares it with our replies by date alone."""
    return min(item.sent_at, now) if item.meta and item.meta.get("imported") else now


class _Filed(NamedTuple):
    identity_id: int
    customer_id: int
    new_customer: bool
    reply_id: int | None  # the reply a bounce reports on


class _NewRow(NamedTuple):
    """A row a bulk batch inserted, with its customer's queue fields from before the batch."""
    id: int
    customer_id: int
    identity_id: int
    channel: str
    account: str
    external_id: str
    sent_at: float
    received_at: float
    status: str
    snoozed_until: float | None
    waiting_since: float | None
    last_outbound_at: float | None


_NEW_ROWS = ("SELECT m.id, m.customer_id, m.identity_id, m.channel, m.account, m.external_id, m.sent_at, m.received_at,"
             " c.status, c.snoozed_until, c.waiting_since, c.last_outbound_at"
             " FROM messages m JOIN customers c ON c.id = m.customer_id WHERE m.id > ? ORDER BY m.id")


def _clip(text: str | None) -> str:
    text = text or ""
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[… message truncated; the full source is kept]"
    return text


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
        with self.tx():
            if len(items) >= BULK_MIN and all(item.kind == "message" for item in items):
                # An id stored before, or seen twice in one batch, goes the careful way: the
                # same message again changes nothing (not even its sender's name), and a mailer
                # may reuse Message-IDs for different mail.
                seen, first, repeats = self._stored_keys(items), [], []
                for item in items:
                    key = (item.channel, item.account, item.external_id)
                    # (a large raw source goes one by one too: insert_message writes it in pieces)
                    big = item.raw is not None and len(item.raw) > BLOB_CHUNK
                    (repeats if key in seen or _machine(item) or big else first).append(item)
                    seen.add(key)
                results = self._ingest_bulk(first) + [r for r in map(self._ingest_one, repeats) if r]
            else:
                results = [r for r in map(self._ingest_one, items) if r]
            if connector is not None and cursor:
                self.save_cursor(connector, cursor)
        for hook in self.on_ingest:
            hook(results)
        return results

    def _stored_keys(self, items: list[InboundMessage]) -> set[tuple[str, str, str]]:
        """(channel, account, external id) of the items that are in the store already."""
        wanted: dict[tuple[str, str], list[str]] = {}
        for item in items:
            wanted.setdefault((item.channel, item.account), []).append(item.external_id)
        found = set()
        for (channel, account), ids in wanted.items():
            for chunk, marks in in_chunks(ids):
                found.update((channel, account, r[0]) for r in self.conn.execute(
                    f"SELECT external_id FROM messages WHERE channel=? AND account=? AND external_id IN ({marks})",
                    (channel, account, *chunk)))
        return found

    def _ingest_one(self, item: InboundMessage) -> IngestResult | None:
        if item.kind == "edit":
            return self._apply_edit(item)
        if item.kind == "delete":
            return self._apply_delete(item)
        if item.meta.get("ours"):
            return self._file_ours(item)
        known = READ_IT  # the sender's identities row, when read already
        if self.pg and not _machine(item):
            # one round trip for both lookups: is it stored, and who sent it (each at most one row)
            both = self.q1(_STORED_AND_SENDER, (item.channel, item.account, item.external_id, item.sender.channel,
                                                normalize_address(item.sender.channel, item.sender.address)))
            existing = {"text": both["m_text"], "subject": both["m_subject"]} if both["stored"] else None
            known = both if both["id"] is not None else None
        else:
            existing = self.q1(
                "SELECT text, subject FROM messages WHERE channel=? AND account=? AND external_id=?",
                (item.channel, item.account, item.external_id),
            )
        if existing:
            return self._reused_id(item, existing)
        filed = self._file_machine_mail(item) if _machine(item) else None
        if filed is not None:
            identity_id, customer_id, new_customer = filed[:3]
        else:
            identity_id, customer_id, new_customer = self.resolve_sender(item.sender, item.account, known)
        now = _arrived(item, self.clock())
        text = _clip(item.text)
        message_id = self.insert_message(
            customer_id=customer_id, identity_id=identity_id, channel=item.channel, account=item.account,
            direction="in", external_id=item.external_id, thread_key=item.thread_key, reply_to=item.reply_to,
            subject=item.subject, text=text, html=item.html, sent_at=item.sent_at, received_at=now,
            parse_error=item.parse_error, meta=dumps(item.meta) if item.meta else None, raw=item.raw,
        )
        for att in item.attachments:
            self._add_attachment(message_id, att)
        if item.meta.get("bounce"):
            if filed is not None and filed.reply_id is not None:
                self.mark_not_delivered(filed.reply_id, item.meta["bounce"].get("reason") or "")
            elif new_customer:  # a report on mail that is not ours (or long gone): nobody waits
                self.conn.execute("UPDATE customers SET status='done' WHERE id=?", (customer_id,))
        elif item.meta.get("backlog") or item.meta.get("auto_reply"):
            self.conn.execute(_NOTE_BACKLOG, {"t": item.sent_at, "ch": item.channel, "new": new_customer,
                                              "id": customer_id})
        else:
            self._note_inbound(customer_id, item.channel, item.sent_at, now)
        return IngestResult(message_id, customer_id, identity_id, new_customer=new_customer)

    def _file_machine_mail(self, item: InboundMessage) -> "_Filed | None":
        """Where a delivery report or an auto-reply goes: on the timeline of the
        customer our reported-on reply went to (found by the Message-IDs the
        report names, or the auto-reply's In-Reply-To/References), never a new
        "Mail Delivery" customer. A bounce we cannot match goes to the customer
        of the failed recipient, if known. None: resolve the sender as usual."""
        bounce = item.meta.get("bounce") or {}
        ids = list(bounce.get("ids") or []) if bounce else []
        if not bounce:  # a delay notice or read receipt names the mail; an auto-reply answers it
            ids = list(item.meta.get("reported") or []) + [item.reply_to] + [
                r.strip("<>") for r in reversed(item.meta.get("references") or [])]
        reply = self.reported_reply(item.channel, ids)
        if reply is not None:
            identity_id = reply["identity_id"]
            if not bounce:  # an auto-reply from the customer's own address stays theirs
                own = self.q1("SELECT id FROM identities WHERE channel=? AND address=? AND customer_id=?",
                              (item.channel, normalize_address(item.channel, item.sender.address),
                               reply["customer_id"]))
                identity_id = own[0] if own else identity_id
            return _Filed(identity_id, reply["customer_id"], False, reply["id"] if bounce else None)
        for address in bounce.get("recipients") or []:
            row = self.q1("SELECT id, customer_id FROM identities WHERE channel=? AND address=?",
                          (item.channel, normalize_address(item.channel, address)))
            if row is not None:
                return _Filed(row["id"], self.live_id(row["customer_id"]), False, None)
        return None

    def _file_ours(self, item: InboundMessage) -> IngestResult | None:
        """Our own mail (from an imported mailbox or Sent folder) filed as our reply
        in the right timeline: the customer whose message it answers (In-Reply-To,
        References), else the customer its recipient is; a recipient we never heard
        from becomes a customer with nothing waiting. Then "waiting since" counts
        from the last message we did not answer."""
        if self.q1("SELECT 1 FROM messages WHERE channel=? AND external_id=? LIMIT 1", (item.channel, item.external_id)):
            return None  # a reply sent from here (its Message-ID is its id), or imported before
        ids = [item.reply_to] + [r.strip("<>") for r in reversed(item.meta.get("references") or [])]
        target = None
        for ident in [i for i in ids if i][:50]:
            row = self.q1("SELECT customer_id, identity_id FROM messages WHERE channel=? AND external_id=?"
                          " AND direction='in' AND identity_id IS NOT NULL ORDER BY id LIMIT 1", (item.channel, ident))
            if row is not None:
                target = (self.live_id(row[0]), row[1], False)
                break
        own = normalize_address(item.channel, item.sender.address)
        if target is None:
            to = email.utils.getaddresses([str(item.meta.get("to") or ""), str(item.meta.get("cc") or "")])
            people = [(name, normalize_address(item.channel, addr)) for name, addr in to if "@" in (addr or "")]
            people = [(name, addr) for name, addr in people if addr != own]
            if not people:
                return None  # a note to ourselves: nobody's timeline
            for name, addr in people:
                row = self.q1("SELECT id, customer_id FROM identities WHERE channel=? AND address=?", (item.channel, addr))
                if row is not None:
                    target = (self.live_id(row["customer_id"]), row["id"], False)
                    break
            if target is None:
                name, addr = people[0]
                identity_id, customer_id, new = self.resolve_sender(Sender(item.channel, addr, name), item.account)
                if new:  # someone who only ever got mail from us: nothing to do until they write
                    self.conn.execute("UPDATE customers SET status='done' WHERE id=?", (customer_id,))
                target = (customer_id, identity_id, new)
        customer_id, identity_id, new_customer = target
        meta = {k: v for k, v in item.meta.items() if k not in ("ours", "new_text")}
        message_id = self.insert_message(
            customer_id=customer_id, identity_id=identity_id, channel=item.channel, account=item.account,
            direction="out", external_id=item.external_id, thread_key=item.thread_key, reply_to=item.reply_to,
            subject=item.subject, text=_clip(item.text), html=item.html, sent_at=item.sent_at,
            received_at=item.sent_at, author=item.sender.display_name or own, parse_error=item.parse_error,
            meta=dumps(meta) if meta else None, raw=item.raw,
        )
        for att in item.attachments:
            self._add_attachment(message_id, att)
        self.recompute(customer_id)
        return IngestResult(message_id, customer_id, identity_id, new_customer=new_customer)

    def customers_of_messages(self, channel: str, account: str, external_ids) -> set[int]:
        """The (live) customers whose timelines hold these inbound messages."""
        out: set[int] = set()
        for chunk, marks in in_chunks(sorted(external_ids)):
            out.update(self.live_id(r[0]) for r in self.q(
                f"SELECT DISTINCT customer_id FROM messages WHERE channel=? AND account=? AND direction='in'"
                f" AND external_id IN ({marks})", (channel, account, *chunk)))
        return out

    def waiting_on_imported_mail_only(self, customer_ids) -> set[int]:
        """Of `customer_ids`, those who wait only because of imported history
        (meta "imported"): no unanswered message of theirs arrived live."""
        out = set()
        for cid in customer_ids:
            cid = self.live_id(cid)
            row = self.q1("SELECT waiting_since FROM customers WHERE id=?", (cid,))
            if row is None or row[0] is None:
                continue
            live = self.q1("SELECT 1 FROM messages WHERE customer_id=? AND direction='in' AND sent_at >= ?"
                           " AND coalesce(CAST(json_extract(meta, '$.imported') AS TEXT), '0') = '0' LIMIT 1", (cid, row[0]))
            if live is None:
                out.add(cid)
        return out

    def _note_inbound(self, customer_id: int, channel: str, sent_at: float, received_at: float) -> None:
        """An inbound message reopens the customer and starts (or keeps) the wait."""
        note = {"t": sent_at, "r": received_at, "ch": channel, "id": customer_id}
        if self.pg:  # (sent with the next statement, usually the COMMIT: one round trip less)
            self.conn.later(_NOTE_INBOUND, note)
        else:
            self.conn.execute(_NOTE_INBOUND, note)

    def _reused_id(self, item: InboundMessage, existing) -> IngestResult | None:
        """Same external id as a stored message. Usually the same message again
        (None). Some broken mailers reuse one Message-ID for different mail:
        then keep this one too, under the id plus a content hash (stable, so a
        second delivery still deduplicates). Compared on the parsed subject and
        text, which do not change with line endings or added headers."""
        if item.channel != "email" or (existing["text"], existing["subject"]) == (_clip(item.text), item.subject):
            return None
        digest = hashlib.sha256(f"{item.subject}\0{item.text}".encode("utf-8", "replace")).hexdigest()[:16]
        if item.external_id.endswith(f"#{digest}"):
            return None
        item.external_id = f"{item.external_id}#{digest}"
        return self._ingest_one(item)

    def _ingest_bulk(self, items: list[InboundMessage]) -> list[IngestResult]:
        """The same effect as `_ingest_one` per item, with set-based SQL: each
        sender resolved once per batch, rows inserted with executemany, search
        indexed in one statement. `items` are new messages with distinct ids not
        in the store (ingest_batch sends the others the careful way). Runs inside
        the caller's transaction, which holds the write lock, so `id > before` is
        exactly this batch."""
        now = self.clock()
        before = self.conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        if self.pg:
            self.fresh_statistics(before + len(items))
        resolved, moved = self.resolve_senders([(item.sender, item.account) for item in items])
        created = {r.customer_id for r in resolved if r.new_customer}
        customer_of = {r.identity_id: r.customer_id for r in resolved}
        if moved:  # an auto-link in this batch merged customers: read where each identity is now
            for chunk, marks in in_chunks(list(customer_of)):
                customer_of.update(self.conn.execute(f"SELECT id, customer_id FROM identities WHERE id IN ({marks})",
                                                     chunk))
        rows = [(customer_of[r.identity_id], r.identity_id, item.channel, item.account, item.external_id,
                 item.thread_key, item.reply_to, item.subject, _clip(item.text), item.html, item.sent_at,
                 _arrived(item, now),
                 item.parse_error, dumps(item.meta) if item.meta else None, item.raw)
                for item, r in zip(items, resolved)]
        self.conn.executemany(_BULK_INSERT, rows)
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: no Row object per message
        new = list(map(_NewRow._make, cursor.execute(_NEW_ROWS, (before,))))
        if new:
            self._index_new(before, new, items, created)
        results = []
        for r in new:  # new_customer only on the first message of a customer this batch created
            results.append(IngestResult(r.id, r.customer_id, r.identity_id, r.customer_id in created))
            created.discard(r.customer_id)
        return results

    def _index_new(self, before: int, new: list, items: list[InboundMessage], created: set[int]) -> None:
        """Search index, customer queue fields and attachments for a bulk batch's new rows."""
        if self.pg:  # the folding is Python's: index from the items (new rows are distinct ids of them)
            text_of = {(item.channel, item.account, item.external_id): item for item in items}
            self.index_messages([(r.id, text_of[(r.channel, r.account, r.external_id)].subject,
                                  _clip(text_of[(r.channel, r.account, r.external_id)].text)) for r in new])
        else:
            self.conn.execute("INSERT INTO messages_fts(rowid, subject, text) SELECT id, fts_text(subject),"
                              " fts_text(text) FROM messages WHERE id > ?", (before,))
        backlog = {(item.channel, item.account, item.external_id) for item in items if item.meta.get("backlog")}
        self._note_inbound_batch(new, backlog, created)
        with_files = [item for item in items if item.attachments]
        if with_files:
            ids = {(r.channel, r.account, r.external_id): r.id for r in new}
            for item in with_files:
                message_id = ids.get((item.channel, item.account, item.external_id))
                if message_id is not None:
                    for att in item.attachments:
                        self._add_attachment(message_id, att)

    def _note_inbound_batch(self, new: list, backlog: set[tuple], created: set[int]) -> None:
        """_note_inbound (or _NOTE_BACKLOG) for each new row in id order, as one
        update per customer: the rows carry their customer's queue fields as they
        were before the batch. `created`: customers this batch created."""
        counts: dict[int, list] = {}  # customer -> [unread added, newest sent_at, its channel]
        reopen: dict[int, float | None] = {}  # customer -> waiting_since after the batch
        done: set[int] = set()  # new customers first seen through backlog
        for r in new:
            cid, sent = r.customer_id, r.sent_at
            old = backlog and (r.channel, r.account, r.external_id) in backlog
            c = counts.get(cid)
            if c is None:
                counts[cid] = [0 if old else 1, sent, r.channel]
                if old and cid in created:
                    done.add(cid)
            else:
                c[0] += 0 if old else 1
                if sent >= c[1]:  # a later row wins a tie, as in one-by-one order
                    c[1], c[2] = sent, r.channel
            if old:
                continue
            wait = reopen[cid] if cid in reopen else r.waiting_since
            if max(sent, r.received_at) > (r.last_outbound_at or 0):
                wait = sent if wait is None else min(wait, sent)
            if cid in reopen or wait != r.waiting_since or r.status != "open" or r.snoozed_until is not None:
                reopen[cid] = wait
        self.conn.executemany(_NOTE_INBOUND_COUNTS, [(n, t, ch, cid) for cid, (n, t, ch) in counts.items()])
        if reopen:
            self.conn.executemany(_NOTE_INBOUND_REOPEN, [(wait, cid) for cid, wait in reopen.items()])
        if done - reopen.keys():  # a later message that waits reopens them
            self.conn.executemany("UPDATE customers SET status = 'done' WHERE id = ?",
                                  [(cid,) for cid in done - reopen.keys()])

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
        self.reindex_message(row["id"])
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
