"""Outbound replies: written to the outbox first, then sent by the engine.

A reply is never lost: it is queued, sending, sent, or failed with its text
kept and the error shown.
"""
from __future__ import annotations

import re

from store.db import StoreError, dumps, loads
from store.models import AttachmentIn, Identity, Message, OutboundMessage, Receipt

MAYBE = "may have been delivered"
INTERRUPTED = "interrupted while sending"
CHECK = "check the channel, then retry it or mark it sent"


# Reply and forward prefixes as mail clients write them in many languages, piled
# up and counted ("RE[2]:", "Re(3):", "Re^2:"): Re, AW/Antwort (de), SV/Svar
# (nordic), VS (fi), Antw (nl), Ynt/Yanit (tr), Odp (pl), RES (pt), RIF/R (it),
# Ref/Rep (fr), Fwd/Fw, WG (de), TR (fr), RV/ENC (es, pt), Doorst (nl), PD (pl),
# and CJK/Greek/Cyrillic forms.
REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|antwort|sv|svar|vs|antw|ynt|yan[ıi]t|odp|odg|res|rif|r|ref|réf|rép|rep|fwd?|wg|tr|rv|enc|"
    r"doorst|pd|vl|atb|ha|回复|答复|回覆|转发|轉寄|απ|σχετ|отв|ответ|пер)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*)+",
    re.IGNORECASE)


def base_subject(subject: str | None) -> str:
    """The subject without its pile of reply/forward prefixes."""
    return " ".join(REPLY_PREFIX.sub("", subject or "").split())


def usable_address(channel: str, address: str | None) -> bool:
    """False for an address nobody can receive at: empty, or an e-mail address
    without a domain or in the reserved `.invalid` domain (what the parser puts
    when a message has no readable From)."""
    if not address:
        return False
    if channel != "email":
        return True
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not domain.lower().rstrip(".").endswith("invalid")


# Not mail written by machines about our mail (connectors/email/reports.py)
_WRITTEN_BY_A_PERSON = ("coalesce(CAST(json_extract(meta, '$.auto_reply') AS TEXT), '0') = '0'"
                        " AND json_extract(meta, '$.bounce') IS NULL")


def no_address_message(customer_id: int, channel: str) -> str:
    """Why a reply cannot go out: short (a console toast at 80 columns) and with the way out."""
    if channel == "email":
        return f"no e-mail address for #{customer_id}; add one: omnidesk identity add {customer_id} ADDRESS"
    return f"no {channel} address for #{customer_id}; reply on another channel"


def reply_subject(subject: str | None) -> str | None:
    """One "Re: " in front of the base subject: "AW: Re: AW: Lieferung" -> "Re: Lieferung"."""
    base = base_subject(subject)
    if not base:
        return None
    return f"Re: {base}"


class OutboxMixin:
    def pick_identity(self, customer_id: int, channel: str | None = None,
                      identity_id: int | None = None) -> Identity:
        """The identity to answer on: `identity_id` if given, else the most recently heard
        identity on `channel` (default: the channel the customer used last). StoreError if
        the identity is another customer's, or the customer has none (on that channel)."""
        if identity_id is not None:
            row = self.q1("SELECT * FROM identities WHERE id=? AND customer_id=?", (identity_id, customer_id))
            if row is None:
                raise StoreError(f"identity {identity_id} does not belong to customer {customer_id}")
            return self._identity(row)
        if channel is None:
            last = self.q1("SELECT last_channel FROM customers WHERE id=?", (customer_id,))
            channel = last[0] if last and last[0] else None
        rows = self.q(
            "SELECT i.*, (SELECT max(sent_at) FROM messages m WHERE m.customer_id=i.customer_id AND m.identity_id=i.id"
            " AND m.direction='in') heard"
            " FROM identities i WHERE i.customer_id=? ORDER BY heard DESC NULLS LAST, i.id DESC",
            (customer_id,),
        )
        if not rows:
            raise StoreError(f"customer {customer_id} has no channel to reply on")
        # an address nobody can receive at (mail without a sender) only when there is no other
        rows = sorted(rows, key=lambda r: not usable_address(r["channel"], r["address"]))
        if channel is None:
            return self._identity(rows[0])
        for row in rows:
            if row["channel"] == channel:
                return self._identity(row)
        have = ", ".join(sorted({r["channel"] for r in rows}))
        raise StoreError(f"customer {customer_id} has no {channel} identity; they can be reached on: {have}")

    def last_inbound(self, identity_id: int) -> Message | None:
        """The newest message this identity sent us (the one a reply answers), or None."""
        row = self.q1("SELECT m.id FROM identities i JOIN messages m ON m.customer_id=i.customer_id AND m.identity_id=i.id"
                      " WHERE i.id=? AND m.direction='in' ORDER BY m.sent_at DESC, m.id DESC LIMIT 1", (identity_id,))
        return self.message(row[0]) if row else None

    def queue_reply(self, customer_id: int, text: str, author: str, *, channel: str | None = None,
                    identity_id: int | None = None, html: str | None = None, subject: str | None = None,
                    attachments: list[AttachmentIn] = (), meta: dict | None = None,
                    event: str | None = "reply") -> int:
        """Write an outbound reply to the outbox; returns its message id. The
        event logged is `event` by `author` (None: the caller logs its own)."""
        if not text.strip():
            raise StoreError("a reply cannot be empty")
        with self.tx():
            ident = self.pick_identity(customer_id, channel, identity_id)
            if not usable_address(ident.channel, ident.address):
                raise StoreError(no_address_message(customer_id, ident.channel))
            # The message this answers: their last one written by a person (an out-of-office reply
            # or a bounce must not give the subject "Re: Abwesenheitsnotiz: Re: ..."), on this
            # identity; for an address added by hand, their last on the channel.
            parent = None
            for where, key in (("identity_id=?", ident.id), ("channel=?", ident.channel)):
                for human in (_WRITTEN_BY_A_PERSON, "1=1"):
                    parent = parent or self.q1(
                        f"SELECT * FROM messages WHERE customer_id=? AND {where} AND direction='in' AND {human}"
                        " ORDER BY sent_at DESC, id DESC LIMIT 1", (ident.customer_id, key))
            now = self.clock()
            if ident.channel == "email" and subject is None and parent is not None:
                subject = reply_subject(parent["subject"])
            account = ident.account or (parent["account"] if parent else "")
            message_id = self.insert_message(
                customer_id=customer_id, identity_id=ident.id, channel=ident.channel, account=account,
                direction="out", thread_key=parent["thread_key"] if parent else None,
                reply_to=parent["external_id"] if parent else None, subject=subject, text=text, html=html,
                sent_at=now, received_at=now, author=author, meta=dumps(meta) if meta else None,
            )
            for att in attachments:
                self._add_attachment(message_id, att)
            self.conn.execute(
                "INSERT INTO outbox(message_id, state, next_attempt_at, created_at) VALUES (?, 'queued', ?, ?)",
                (message_id, now, now),
            )
            self.conn.execute(
                "UPDATE customers SET last_outbound_at=?, waiting_since=NULL, unread=0 WHERE id=?", (now, customer_id)
            )
            if event:
                self.log_event(event, author, customer_id, message_id=message_id, channel=ident.channel)
            return message_id

    def claim_due(self, accounts: set[str] | None = None, limit: int = 1) -> list[OutboundMessage]:
        """Take due replies for sending (state -> sending). `accounts` are the
        connector names ("telegram:shop") this engine can send on. Claim only
        what is about to be sent: a crash leaves at most these in 'sending'."""
        now = self.clock()
        where, params = "o.state='queued' AND o.next_attempt_at <= ?", [now]
        if accounts is not None:
            if not accounts:
                return []
            where += f" AND m.channel || ':' || m.account IN ({','.join('?' * len(accounts))})"
            params += sorted(accounts)
        out = []
        # PostgreSQL: several senders claim at once, each skipping the replies another holds
        # (row locks instead of the store-wide write lock); SQLite has one writer anyway.
        with self.tx(write_lock=not self.pg):
            rows = self.q(
                "SELECT o.id oid, o.attempts, o.parts, m.* FROM outbox o JOIN messages m ON m.id=o.message_id"
                f" WHERE {where} ORDER BY o.next_attempt_at, o.id LIMIT ?"
                + (" FOR UPDATE OF o SKIP LOCKED" if self.pg else ""),
                (*params, limit),
            )
            for row in rows:
                self.conn.execute("UPDATE outbox SET state='sending', attempts=attempts+1 WHERE id=?", (row["oid"],))
                ident = self.q1("SELECT address FROM identities WHERE id=?", (row["identity_id"],))
                parent = None
                if row["reply_to"]:
                    p = self.q1("SELECT id FROM messages WHERE channel=? AND account=? AND external_id=?",
                                (row["channel"], row["account"], row["reply_to"]))
                    parent = self.message(p[0]) if p else None
                if parent is not None and not self._reaches_only(row["customer_id"], parent.meta.get("reply_to")):
                    parent.meta = {k: v for k, v in parent.meta.items() if k != "reply_to"}
                out.append(OutboundMessage(
                    parts_done=loads(row["parts"], []), outbox_id=row["oid"], message_id=row["id"], channel=row["channel"], account=row["account"],
                    to_address=ident["address"] if ident else "", text=row["text"], html=row["html"],
                    subject=row["subject"], thread_key=row["thread_key"], parent=parent,
                    attachments=self.attachments(row["id"]), meta=loads(row["meta"], {}),
                    attempts=row["attempts"] + 1, author=row["author"],
                ))
        return out

    def _reaches_only(self, customer_id: int, address) -> bool:
        """May a reply to `customer_id` go to `address` (a Reply-To their mail asked
        for)? Not when the address is another customer's: a reply never reaches a
        different customer; it goes to the customer's own address instead."""
        if not address or not isinstance(address, str):
            return True
        key = f"email:{address.strip().lower()}"
        owners = {self.live_id(r[0]) for r in self.q(
            "SELECT i.customer_id FROM identity_keys k JOIN identities i ON i.id=k.identity_id WHERE k.key=?", (key,))}
        return owners <= {self.live_id(customer_id)}

    def queued_elsewhere(self, accounts: set[str]) -> dict[str, int]:
        """Queued replies for accounts this engine cannot send on (an account
        removed or renamed in the config): {"telegram:old": 3}."""
        rows = self.q("SELECT m.channel || ':' || m.account name, count(*) n FROM outbox o JOIN messages m"
                      " ON m.id=o.message_id WHERE o.state='queued' GROUP BY name")
        return {r["name"]: r["n"] for r in rows if r["name"] not in accounts}

    def mark_sent(self, outbox_id: int, receipt: Receipt) -> None:
        """A reply went out: the outbox row is sent (now) and the message keeps the channel's id and receipt
        meta."""
        with self.tx():
            row = self.q1("SELECT message_id FROM outbox WHERE id=?", (outbox_id,))
            meta = loads(self.q1("SELECT meta FROM messages WHERE id=?", (row[0],))[0], {})
            meta.update(receipt.meta)
            self.conn.execute("UPDATE outbox SET state='sent', sent_at=?, last_error=NULL WHERE id=?", (self.clock(), outbox_id))
            self.conn.execute("UPDATE messages SET external_id=?, meta=? WHERE id=?",
                              (receipt.external_id, dumps(meta), row[0]))

    def record_part(self, outbox_id: int, part_id: str) -> None:
        """Note one delivered part of a long reply (a retry resumes after it)."""
        with self.tx():
            row = self.q1("SELECT parts FROM outbox WHERE id=?", (outbox_id,))
            parts = loads(row[0], []) + [str(part_id)]
            self.conn.execute("UPDATE outbox SET parts=? WHERE id=?", (dumps(parts), outbox_id))

    def mark_failed(self, outbox_id: int, error: str, retry_at: float | None, *, uncertain: bool = False) -> None:
        """Record a failed attempt: back to queued for `retry_at`, or failed for good.
        `uncertain`: it may have been delivered (the error says so and what to do)."""
        with self.tx():
            row = self.q1("SELECT parts FROM outbox WHERE id=?", (outbox_id,))
            parts = loads(row[0], []) if row else []
            if parts:
                error = f"{error} ({len(parts)} part{'s' if len(parts) != 1 else ''} delivered; a retry sends the rest)"
            if retry_at is not None:
                self.conn.execute("UPDATE outbox SET state='queued', last_error=?, next_attempt_at=? WHERE id=?",
                                  (error, retry_at, outbox_id))
                return
            if uncertain:
                error = f"{MAYBE}: {error}; {CHECK}"
            self.conn.execute("UPDATE outbox SET state='failed', last_error=?, uncertain=? WHERE id=?",
                              (error, int(uncertain), outbox_id))
            row = self.q1("SELECT m.customer_id, m.id FROM outbox o JOIN messages m ON m.id=o.message_id WHERE o.id=?",
                          (outbox_id,))
            # an undelivered reply does not answer the customer: back to the queue, even if marked done
            self.recompute(row[0])
            self._reopen_if_waiting(row[0])
            self.log_event("send_failed", "sync", row[0], message_id=row[1], error=error)

    def _not_a_reply(self, message_id: int) -> None:
        """StoreError saying why `message_id` has no reply to retry: no such message, or another kind."""
        if self.q1("SELECT 1 FROM messages WHERE id=?", (message_id,)) is None:
            raise StoreError(f"there is no message {message_id} (`omnidesk show CUSTOMER` lists a customer's"
                             " messages with their ids; `omnidesk queue --filter failed` those with a failed reply)")
        raise StoreError(f"message {message_id} is not an outbound reply")

    def retry(self, message_id: int, actor: str) -> None:
        """Queue a failed reply again (attempts start over) and log a 'retry' event. StoreError if it is not a
        failed reply."""
        with self.tx():
            row = self.q1("SELECT o.id, o.state, o.uncertain, o.last_error, m.customer_id FROM outbox o"
                          " JOIN messages m ON m.id=o.message_id WHERE o.message_id=?", (message_id,))
            if row is None:
                self._not_a_reply(message_id)
            if row["state"] != "failed":
                raise StoreError(f"reply {message_id} is {row['state']}, not failed")
            now = self.clock()
            self.conn.execute("UPDATE outbox SET state='queued', attempts=0, uncertain=0, next_attempt_at=? WHERE id=?",
                              (now, row["id"]))
            self.conn.execute("UPDATE customers SET last_outbound_at=?, waiting_since=NULL WHERE id=?", (now, row["customer_id"]))
            self.log_event("retry", actor, row["customer_id"], message_id=message_id)

    def mark_delivered(self, message_id: int, actor: str) -> None:
        """The agent checked: a reply marked "may have been delivered" did arrive."""
        with self.tx():
            row = self.q1("SELECT o.id, o.state, o.uncertain, o.last_error, m.customer_id FROM outbox o"
                          " JOIN messages m ON m.id=o.message_id WHERE o.message_id=?", (message_id,))
            if row is None:
                self._not_a_reply(message_id)
            if row["state"] != "failed":
                raise StoreError(f"reply {message_id} is {row['state']}, not failed")
            if not row["uncertain"]:  # a bounce or a refusal: it is known not to have arrived
                why = (row["last_error"] or "it was refused")[:200]
                raise StoreError(f"reply {message_id} was not delivered ({why}); only a reply marked 'may have been"
                                 f" delivered' can be marked sent. To send it again: omnidesk retry {message_id}")
            self.conn.execute("UPDATE outbox SET state='sent', sent_at=?, last_error=NULL, uncertain=0 WHERE id=?",
                              (self.clock(), row["id"]))
            self.recompute(row["customer_id"])
            self.log_event("mark_sent", actor, row["customer_id"], message_id=message_id)

    def recover_interrupted(self, exclude: set[int] = frozenset()) -> int:
        """Replies left 'sending' by a crash (not the `exclude`d outbox ids this
        process is sending): we cannot know if they went out, so they become
        failed as "may have been delivered" instead of being sent twice."""
        with self.tx():
            rows = [r for r in self.q("SELECT id FROM outbox WHERE state='sending'") if r[0] not in exclude]
            for r in rows:
                self.mark_failed(r[0], INTERRUPTED, None, uncertain=True)
        return len(rows)

    def outbox(self, state: str | None = None, limit: int = 100) -> list[dict]:
        """Outbox rows newest first, optionally in one `state` (queued, sending, sent, failed): dicts of the
        outbox columns plus customer_id, channel, account and text."""
        sql = ("SELECT o.*, m.customer_id, m.channel, m.account, m.text FROM outbox o JOIN messages m ON m.id=o.message_id"
               + (" WHERE o.state=?" if state else "") + " ORDER BY o.id DESC LIMIT ?")
        return [dict(r) for r in self.q(sql, ((state, limit) if state else (limit,)))]

    # -- mail written by machines about our mail ----------------------------------
    def reported_reply(self, channel: str, ids: list[str]):
        """Our outbound message whose external id (its Message-ID) is among `ids`,
        newest first; None when none is ours."""
        for ident in [i for i in ids if i][:50]:
            row = self.q1("SELECT id, customer_id, identity_id FROM messages WHERE channel=? AND direction='out'"
                          " AND external_id=? ORDER BY id DESC LIMIT 1", (channel, ident))
            if row is not None:
                return row
        return None

    def mark_not_delivered(self, message_id: int, reason: str) -> None:
        """A delivery-failure report came back for this reply: it is failed with
        the reason, and its customer waits again (the reply answered nobody).
        Runs inside the caller's transaction."""
        error = f"not delivered: {reason}"[:500]
        row = self.q1("SELECT o.id, m.customer_id, o.state, o.uncertain FROM outbox o JOIN messages m"
                      " ON m.id=o.message_id WHERE o.message_id=?", (message_id,))
        if row is None or (row["state"] == "failed" and not row["uncertain"]):
            return
        # a report settles a "may have been delivered": it was not
        self.conn.execute("UPDATE outbox SET state='failed', last_error=?, uncertain=0 WHERE id=?", (error, row["id"]))
        meta = loads(self.q1("SELECT meta FROM messages WHERE id=?", (message_id,))[0], {})
        meta["bounced"] = reason[:500]
        self.conn.execute("UPDATE messages SET meta=? WHERE id=?", (dumps(meta), message_id))
        cid = row["customer_id"]
        self.recompute(cid)
        later = self.q1("SELECT 1 FROM messages m JOIN outbox o ON o.message_id=m.id WHERE m.customer_id=?"
                        " AND m.id > ? AND m.direction='out' AND o.state != 'failed' LIMIT 1", (cid, message_id))
        if later is None:  # our last word never reached them: theirs to answer again, whatever the status
            # (pending or done, or an earlier reply answered their last message: they still wait on us)
            sent = self.q1("SELECT sent_at FROM messages WHERE id=?", (message_id,))[0]
            self.conn.execute("UPDATE customers SET status='open', snoozed_until=NULL,"
                              " waiting_since=coalesce(waiting_since, ?) WHERE id=?", (sent, cid))
        self._reopen_if_waiting(cid)
        self.log_event("send_failed", "sync", cid, message_id=message_id, error=error)

