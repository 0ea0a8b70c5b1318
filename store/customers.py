"""Customers: lookup, queue, status, snooze, tags, assignment, facts, notes."""
from __future__ import annotations

import re
from typing import Callable

from store.db import StoreError, loads
from store.identity import normalize_email
from store.models import Customer, Identity, QueueRow
from store.names import name_key
from store.terms import CHANNELS, QUEUE_FILTERS, STATUSES

# Queue filters (store/terms.py): "waiting" (the default) = open customers whose last inbound
# message is unanswered, they wait on us; "pending" = status pending, we wait on them.

def follow_merges(customer_id: int, merged_into: Callable[[int], int | None]) -> int:
    """The surviving customer of a chain of merges: `merged_into(id)` gives the next id or
    None. The one place that walks the chain (live_id reads the table, stats a dict)."""
    seen = set()
    while (nxt := merged_into(customer_id)) is not None and customer_id not in seen:
        seen.add(customer_id)
        customer_id = nxt
    return customer_id


def like_escape(text: str) -> str:
    """User text inside a LIKE pattern: % and _ are letters, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Old mail found on a first read (connectors/email/backlog.py) never waits and is never
# unread; nor does mail written by machines (vacation replies, delivery reports).
# (A flag compared as text, CAST(... AS TEXT) = '0': the one form SQLite and PostgreSQL both accept.)
NOT_BACKLOG = ("(coalesce(CAST(json_extract(meta, '$.backlog') AS TEXT), '0') = '0'"
               " AND coalesce(CAST(json_extract(meta, '$.auto_reply') AS TEXT), '0') = '0'"
               " AND json_extract(meta, '$.bounce') IS NULL)")
# The customer's newest reply that left the outbox's hands failed (no later reply was sent).
_LAST_REPLY_FAILED = ("EXISTS (SELECT 1 FROM messages m JOIN outbox o ON o.message_id = m.id WHERE m.customer_id = c.id"
                      " AND o.state = 'failed' AND NOT EXISTS (SELECT 1 FROM messages m2 JOIN outbox o2"
                      " ON o2.message_id = m2.id WHERE m2.customer_id = c.id AND o2.state = 'sent' AND m2.id > m.id))")
_QUEUE_ORDER = "c.priority DESC, coalesce(c.waiting_since, 9e18), c.id"


class CustomersMixin:
    # -- lookup -----------------------------------------------------------
    def find_customer(self, ref: str | int) -> int:
        """Resolve an id, e-mail address, Telegram @handle, Slack user or the exact
        name a customer writes under (their display name) to a customer id."""
        ref = str(ref).strip()
        channel, sep, rest = ref.partition(":")
        if not sep or channel not in CHANNELS:
            channel, rest = "", ref
        cid = None
        if not channel and re.fullmatch(r"\d+", ref):
            row = self.q1("SELECT id FROM customers WHERE id=?", (int(ref),))
            cid = row[0] if row else None
            if cid is None:  # a Telegram user id is numeric too
                row = self.q1("SELECT customer_id FROM identities WHERE channel='telegram' AND address=?", (ref,))
                cid = row[0] if row else None
        elif channel in ("", "email") and "@" in rest[1:]:
            addr = normalize_email(rest)
            rows = self.q(
                "SELECT DISTINCT i.customer_id FROM identity_keys k JOIN identities i ON i.id=k.identity_id WHERE k.key=?",
                (f"email:{addr}",),
            )
            ids = sorted({self.live_id(r[0]) for r in rows})
            if len(ids) > 1:  # possible after a split: the agent decided these are different people
                raise StoreError(f"{ref!r} matches several customers ({', '.join(map(str, ids))}); use an id")
            cid = ids[0] if ids else None
        else:
            handle = rest.lstrip("@")
            # three lookups, each by an index: address, handle (ASCII: lower() folds it alike on
            # both backends) and display name (its name key, store/names.py)
            channels = (channel,) if channel else CHANNELS  # (channel, address) is the index
            only = " AND channel = ?" if channel else ""
            sql = (f"SELECT customer_id FROM identities WHERE channel IN ({', '.join('?' * len(channels))})"
                   " AND address = ?"
                   f" UNION SELECT customer_id FROM identities WHERE lower(handle) = ? AND handle != ''{only}")
            params: tuple = (*channels, handle, handle.lower(), *((channel,) if channel else ()))
            by_name = (f"SELECT customer_id FROM identities WHERE name_key = ? AND name_key != ''{only}",
                       (name_key(handle), *((channel,) if channel else ())))
            if rest.startswith("@"):  # @jane is a handle: a customer named Jane only if no handle matches
                ids = sorted({r[0] for r in self.q(sql, params)}) or sorted({r[0] for r in self.q(*by_name)})
            else:
                ids = sorted({r[0] for r in self.q(f"{sql} UNION {by_name[0]}", (*params, *by_name[1]))})
            if len(ids) > 1:
                raise StoreError(f"{ref!r} matches several customers ({', '.join(map(str, ids))}); use an id")
            cid = ids[0] if ids else None
            if cid is None and not channel and rest.strip():
                cid = self._customer_by_name(rest.strip())
        if cid is None:
            raise StoreError(f"no customer matches {ref!r} (try an id, an e-mail address, @handle, Slack user id"
                             " or the name they write under, like 'Marco Rossi')")
        return self.live_id(cid)

    def _customer_by_name(self, text: str) -> int | None:
        """The one customer whose name matches `text` as names compare (store/names.py: any
        case, accents as search folds them): the whole name, else the start of the name or
        of a word in it, else any part. None if nobody; StoreError naming them when several
        match equally well."""
        want = name_key(text)
        if not want:
            return None
        # the whole name: the index answers; else one pass over the keys (no per-row function)
        rows = self.q("SELECT id, name, 0 AS rank FROM customers WHERE name_key = ? AND merged_into IS NULL"
                      " ORDER BY id LIMIT 9", (want,))
        if not rows:
            part = like_escape(want)
            rows = self._planned_each_time("SELECT id, name, CASE WHEN name_key LIKE ? ESCAPE '\\' OR name_key LIKE ? ESCAPE '\\'"
                          " THEN 1 ELSE 2 END AS rank FROM customers WHERE name_key LIKE ? ESCAPE '\\'"
                          " AND merged_into IS NULL ORDER BY rank, id LIMIT 9",
                          (part + "%", "% " + part + "%", "%" + part + "%"))
        best = [r for r in rows if r["rank"] == rows[0]["rank"]] if rows else []
        if len(best) > 1:
            from store.text import one_line  # names are customer text: inert on a terminal

            shown = ", ".join(f"#{r['id']} {one_line(r['name'], 40)}" for r in best[:8]) + (", ..." if len(best) > 8 else "")
            raise StoreError(f"{text!r} matches several customers: {shown}; use an id or more of the name")
        return best[0]["id"] if best else None

    def _planned_each_time(self, sql: str, params) -> list:
        """Rows of a LIKE lookup, planned for its pattern (as store/search.py's _rows)."""
        if self.pg:
            return self.conn.execute(sql, params, prepare=False).fetchall()
        return self.q(sql, params)

    def live_id(self, customer_id: int) -> int:
        """Follow merges to the customer that holds the history now (the id itself if it was
        never merged away). StoreError if there is no such customer."""
        def merged_into(cid: int) -> int | None:
            row = self.q1("SELECT merged_into FROM customers WHERE id=?", (cid,))
            if row is None:
                raise StoreError(f"no customer with id {cid}")
            return row[0]

        return follow_merges(customer_id, merged_into)

    def customer(self, customer_id: int) -> Customer:
        """One customer with identities, tags and facts. A merged-away id still answers (its merged_into names
        the survivor). StoreError if there is no such id."""
        row = self.q1("SELECT * FROM customers WHERE id=?", (customer_id,))
        if row is None:
            raise StoreError(f"no customer with id {customer_id}")
        # "customer since": their first message, when it is older than the row (imported history)
        first = self.q1("SELECT min(sent_at) FROM messages WHERE customer_id=?", (customer_id,))
        since = min(row["created_at"], first[0]) if first and first[0] is not None else row["created_at"]
        c = Customer(
            id=row["id"], name=row["name"], status=row["status"], snoozed_until=row["snoozed_until"],
            assignee=row["assignee"], priority=row["priority"], waiting_since=row["waiting_since"],
            last_inbound_at=row["last_inbound_at"], last_outbound_at=row["last_outbound_at"],
            last_channel=row["last_channel"], unread=row["unread"], created_at=since,
        )
        c.tags = [r[0] for r in self.q("SELECT tag FROM tags WHERE customer_id=? ORDER BY tag", (customer_id,))]
        rows = self.q("SELECT key, value, actor, at, channel, message_id FROM facts WHERE customer_id=? ORDER BY key",
                      (customer_id,))
        c.facts = {r["key"]: r["value"] for r in rows}
        c.fact_sources = {r["key"]: {k: r[k] for k in ("actor", "at", "channel", "message_id")} for r in rows}
        c.identities = self.identities(customer_id)
        c.channels = sorted({i.channel for i in c.identities})
        return c

    def identities(self, customer_id: int) -> list[Identity]:
        """The customer's identities (one per channel address), oldest first, each with its
        match keys ("email:a@b", "phone:+1555..."). An unknown id gives []."""
        return [self._identity(r) for r in self.q("SELECT * FROM identities WHERE customer_id=? ORDER BY id",
                                                  (customer_id,))]

    def _identity(self, r) -> Identity:
        keys = [k[0] for k in self.q("SELECT key FROM identity_keys WHERE identity_id=? ORDER BY key", (r["id"],))]
        return Identity(id=r["id"], customer_id=r["customer_id"], channel=r["channel"], address=r["address"],
                        display_name=r["display_name"], handle=r["handle"], keys=keys, account=r["account"])

    def customers(self, limit: int = 100, offset: int = 0, query: str | None = None) -> list[Customer]:
        """Customers (not merged away) by id, `limit` from `offset`; `query` matches part of the name, an address,
        handle or display name (letters, not LIKE wildcards; names in any case, store/names.py)."""
        if query:
            # names by their keys (store/names.py); addresses and handles are ASCII identifiers,
            # lower() on both sides folds them alike on both backends (PostgreSQL's LIKE minds case).
            # A join walked by customer id: a common word fills `limit` at once on both backends
            # (an OR EXISTS made PostgreSQL hash every matching identity first: 6 -> 190 ms). Planned
            # for the text at hand each time: a prepared statement's generic plan cannot know that
            # '%silva%' is common and hashes the whole join (PostgreSQL: 2 -> 50 ms).
            rows = self._planned_each_time(
                "SELECT DISTINCT c.id FROM customers c LEFT JOIN identities i ON i.customer_id = c.id"
                " WHERE c.merged_into IS NULL AND (c.name_key LIKE :k ESCAPE '\\' OR i.name_key LIKE :k ESCAPE '\\'"
                " OR lower(i.address) LIKE lower(:q) ESCAPE '\\' OR lower(i.handle) LIKE lower(:q) ESCAPE '\\')"
                " ORDER BY c.id LIMIT :l OFFSET :o",
                {"k": f"%{like_escape(name_key(query))}%", "q": f"%{like_escape(query)}%", "l": limit, "o": offset},
            )
        else:
            rows = self.q("SELECT id FROM customers WHERE merged_into IS NULL ORDER BY id LIMIT ? OFFSET ?", (limit, offset))
        return [self.customer(r[0]) for r in rows]

    # -- the queue ----------------------------------------------------------
    def _queue_where(self, filter: str, agent: str | None, channel: str | None, tag: str | None):
        if filter not in QUEUE_FILTERS:
            raise StoreError(f"unknown queue filter {filter!r}; expected one of {', '.join(QUEUE_FILTERS)}")
        where, params = ["c.merged_into IS NULL"], []
        if filter == "waiting":
            where.append("c.status = 'open' AND c.waiting_since IS NOT NULL")
        elif filter == "open":
            where.append("c.status = 'open'")
        elif filter == "pending":
            where.append("c.status = 'pending'")
        elif filter in ("snoozed", "done"):
            where.append("c.status = ?")
            params.append(filter)
        elif filter == "failed":
            where.append(_LAST_REPLY_FAILED)
        elif filter == "mine":  # agent names match in any case: 'alex morgan' is Alex Morgan
            spellings = self._assignee_spellings(agent or "") or [agent or ""]
            where.append(f"c.assignee IN ({','.join('?' * len(spellings))}) AND c.status != 'done'")
            params.extend(spellings)
        if channel:
            where.append("EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = c.id AND i.channel = ?)")
            params.append(channel)
        if tag:  # typed in any spelling: 'Address Change' finds address-change
            from store.tags import TagError

            try:
                tag = self._tag_form(tag)
            except TagError as e:
                raise StoreError(str(e)) from None
            where.append("EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id AND t.tag = ?)")
            params.append(tag)
        return " AND ".join(where), params

    def queue(self, filter: str = "waiting", *, limit: int = 50, offset: int = 0, agent: str | None = None,
              channel: str | None = None, tag: str | None = None) -> list[QueueRow]:
        """Customers, who has waited longest first (higher priority before)."""
        self.wake_snoozed()
        where, params = self._queue_where(filter, agent, channel, tag)
        rows = self.q(
            f"SELECT c.* FROM customers c WHERE {where} ORDER BY {_QUEUE_ORDER} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [self._queue_row(r) for r in rows]

    def queue_count(self, filter: str = "waiting", *, agent: str | None = None, channel: str | None = None,
                    tag: str | None = None) -> int:
        """How many customers the queue shows for `filter` (a QueueFilter: waiting, pending, mine, ...) with the
        same channel/tag narrowing as queue(). StoreError for an unknown filter."""
        where, params = self._queue_where(filter, agent, channel, tag)
        return self.q1(f"SELECT count(*) FROM customers c WHERE {where}", params)[0]

    def queue_position(self, customer_id: int, filter: str = "waiting", **kw) -> int | None:
        """Index of a customer in a queue (to keep the cursor on it when rows arrive)."""
        where, params = self._queue_where(filter, kw.get("agent"), kw.get("channel"), kw.get("tag"))
        row = self.q1(f"SELECT priority, coalesce(waiting_since, 9e18) w, id FROM customers c WHERE c.id=? AND {where}",
                      (customer_id, *params))
        if row is None:
            return None
        return self.q1(
            f"SELECT count(*) FROM customers c WHERE {where} AND (c.priority > ? OR (c.priority = ? AND"
            f" (coalesce(c.waiting_since, 9e18), c.id) < (?, ?)))",
            (*params, row[0], row[0], row[1], row[2]),
        )[0]

    def _queue_row(self, r) -> QueueRow:
        cid = r["id"]
        last = self.q1(
            "SELECT text, subject, direction FROM messages WHERE customer_id=? AND direction != 'note'"
            " ORDER BY sent_at DESC, id DESC LIMIT 1",
            (cid,),
        )
        preview = ""
        if last:
            preview = ("you: " if last["direction"] == "out" else "")  # the last word was ours: nothing waits
            preview += (last["subject"] + " — " if last["subject"] else "") + (last["text"] or "")
            preview = " ".join(preview[:200].split())
        failed = self.q1("SELECT o.state, o.uncertain FROM messages m JOIN outbox o ON o.message_id = m.id"
                         " WHERE m.customer_id=? AND o.state IN ('sent', 'failed') ORDER BY m.id DESC LIMIT 1", (cid,))
        if failed and failed["state"] == "failed":  # never silent: the row says so before anything else
            preview = ("reply may not have arrived — " if failed["uncertain"] else "reply failed — ") + preview
        channels = [x[0] for x in self.q("SELECT DISTINCT channel FROM identities WHERE customer_id=? ORDER BY channel", (cid,))]
        tags = [x[0] for x in self.q("SELECT tag FROM tags WHERE customer_id=? ORDER BY tag", (cid,))]
        return QueueRow(customer_id=cid, name=r["name"], status=r["status"], waiting_since=r["waiting_since"],
                        last_channel=r["last_channel"], unread=r["unread"], priority=r["priority"],
                        assignee=r["assignee"], snoozed_until=r["snoozed_until"], preview=preview,
                        channels=channels, tags=tags)

    def wake_snoozed(self) -> list[int]:
        """Snoozes that ran out go back to open (several consoles may race here:
        the update only takes rows that are still snoozed)."""
        now = self.clock()
        if self.read_only or self.q1("SELECT 1 FROM customers WHERE status='snoozed' AND snoozed_until <= ?"
                                     " LIMIT 1", (now,)) is None:
            return []  # the common case stays a read (and a read-only store cannot wake anyone)
        with self.tx():
            woken = [r[0] for r in self.q("UPDATE customers SET status='open', snoozed_until=NULL"
                                          " WHERE status='snoozed' AND snoozed_until <= ? RETURNING id", (now,))]
            for cid in woken:
                self.log_event("status", "snooze", cid, old="snoozed", new="open", reason="snooze ended")
        return woken

    # -- agent actions (each an event, each undoable) --------------------------
    def set_status(self, customer_id: int, status: str, actor: str, *, until: float | None = None, **extra) -> int:
        """Set a status (open, pending, snoozed with `until` in unix seconds, done) and log a 'status' event with
        the old and new values; returns the event id. StoreError for an unknown status or customer."""
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        if status == "snoozed" and until is None:
            raise StoreError("snoozed needs a time to wake up (use snooze)")
        if status == "snoozed":  # checked before anything is written: an absurd time would outlive any undo
            from store.timefmt import WhenError, check_future

            try:
                until = check_future(until, self.clock())
            except WhenError as e:
                raise StoreError(f"cannot snooze until then: {e}") from None
        with self.tx():
            old = self.q1("SELECT status, snoozed_until FROM customers WHERE id=?", (customer_id,))
            if old is None:
                raise StoreError(f"no customer with id {customer_id}")
            self.conn.execute("UPDATE customers SET status=?, snoozed_until=? WHERE id=?",
                              (status, until if status == "snoozed" else None, customer_id))
            return self.log_event("status", actor, customer_id, old=old["status"], old_until=old["snoozed_until"],
                                  new=status, until=until, **extra)

    def quiet_since(self, before: float) -> list[int]:
        """Open (waiting or not) and pending customers with no message either way
        since `before` (unix seconds), oldest first: conversations gone quiet."""
        return [r[0] for r in self.q(
            "SELECT id FROM customers WHERE merged_into IS NULL AND status IN ('open', 'pending')"
            " AND max(coalesce(last_inbound_at, 0), coalesce(last_outbound_at, 0)) < ?"
            " ORDER BY max(coalesce(last_inbound_at, 0), coalesce(last_outbound_at, 0)), id", (before,))]

    def set_status_many(self, customer_ids: list[int], status: str, actor: str, **extra) -> list[int]:
        """set_status for each customer (those who have it already are left alone)
        in one transaction, as one batch: undoing any of its events undoes all.
        `extra` goes into each event (reason="import"). Returns the event ids."""
        import uuid

        batch, events = uuid.uuid4().hex[:16], []
        with self.tx():
            for cid in customer_ids:
                row = self.q1("SELECT status FROM customers WHERE id=?", (cid,))
                if row is not None and row[0] != status:
                    events.append(self.set_status(cid, status, actor, batch=batch, batch_size=len(customer_ids),
                                                  **extra))
        return events

    def snooze(self, customer_id: int, until: float, actor: str) -> int:
        """Hide the customer until `until` (unix seconds); the queue shows them again then. Returns the event id."""
        return self.set_status(customer_id, "snoozed", actor, until=until)

    def tag(self, customer_id: int, tag: str, actor: str, **extra) -> int | None:
        """Add a tag (normalized: store/tags.py); returns the event id, or None if they had it already.
        StoreError for an empty or unusable tag."""
        return self.add_tags(customer_id, [tag], actor, **extra)

    def add_tags(self, customer_id: int, tags: list[str], actor: str, **extra) -> int | None:
        """Add several tags as one action (one 'tag' event, so one undo takes them all back); each
        normalized ("#VIP" is "vip", "Address Change" is "address-change"; a string with commas is several
        tags). Returns the event id, or None if they had them all. StoreError for an empty or unusable
        tag (nothing is added)."""
        from store.tags import TagError, parse_tags

        try:
            wanted = parse_tags(tags)  # "a, #B" is two tags; blanks between commas are skipped
        except TagError as e:
            raise StoreError(str(e)) from None
        if not wanted:
            raise StoreError("a tag cannot be empty")
        with self.tx():
            added = [t for t in dict.fromkeys(wanted) if self.conn.execute(
                "INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (customer_id, t)).rowcount]
            if not added:
                return None
            # one tag: {"tag": t} as always; several: "tag" reads "a, b" and "tags" lists them
            data = {"tag": ", ".join(added)} | ({"tags": added} if len(added) > 1 else {})
            return self.log_event("tag", actor, customer_id, **data, **extra)

    @staticmethod
    def _tag_form(tag: str) -> str:
        from store.tags import normalize_tag

        return normalize_tag(tag)

    def tag_counts(self, limit: int = 200) -> list[tuple[str, int]]:
        """[(tag, how many customers have it)], most used first: the tags in use."""
        return [(r[0], r[1]) for r in self.q(
            "SELECT t.tag, count(*) FROM tags t JOIN customers c ON c.id = t.customer_id"
            " WHERE c.merged_into IS NULL GROUP BY t.tag ORDER BY count(*) DESC, t.tag LIMIT ?", (limit,))]

    def untag(self, customer_id: int, tag: str, actor: str) -> int | None:
        """Remove a tag (given in any spelling: "#VIP" removes "vip"); returns the event id, or None if they
        did not have it."""
        return self.remove_tags(customer_id, [tag], actor)

    def remove_tags(self, customer_id: int, tags: list[str], actor: str) -> int | None:
        """Remove several tags as one action (one 'untag' event, one undo); returns the event id, or None if
        they had none of them. StoreError for an unusable tag."""
        from store.tags import TagError, parse_tags

        try:
            wanted = parse_tags(tags)
        except TagError as e:
            raise StoreError(str(e)) from None
        with self.tx():
            removed = [t for t in dict.fromkeys(wanted) if self.conn.execute(
                "DELETE FROM tags WHERE customer_id=? AND tag=?", (customer_id, t)).rowcount]
            if not removed:
                return None
            data = {"tag": ", ".join(removed)} | ({"tags": removed} if len(removed) > 1 else {})
            return self.log_event("untag", actor, customer_id, **data)

    def assign(self, customer_id: int, assignee: str | None, actor: str, *, known: tuple[str, ...] = (),
               **extra) -> int:
        """Assign the customer to an agent (None: nobody); returns the event id. Agent names
        match in any case: a name given as `known` (the configured agents) or already in use
        is kept as spelled there ('alex morgan' -> 'Alex Morgan'). StoreError for a blank name."""
        if assignee is not None:
            assignee = " ".join(assignee.split())
            if not assignee:
                raise StoreError("an agent's name cannot be blank; to unassign, give no name")
            same = [k for k in known if k.casefold() == assignee.casefold()] or self._assignee_spellings(assignee)
            assignee = same[0] if same else assignee
        with self.tx():
            old = self.q1("SELECT assignee FROM customers WHERE id=?", (customer_id,))[0]
            self.conn.execute("UPDATE customers SET assignee=? WHERE id=?", (assignee, customer_id))
            return self.log_event("assign", actor, customer_id, old=old, new=assignee, **extra)

    def _assignee_spellings(self, name: str) -> list[str]:
        """The assignee names in use that are `name` in another case, most used first."""
        folded = " ".join(name.split()).casefold()
        rows = self.q("SELECT assignee, count(*) n FROM customers WHERE assignee IS NOT NULL GROUP BY assignee"
                      " ORDER BY n DESC, assignee")
        return [r[0] for r in rows if " ".join(r[0].split()).casefold() == folded and folded]

    def set_priority(self, customer_id: int, priority: int, actor: str, **extra) -> int:
        """Set the priority (higher comes first in the queue); returns the event id."""
        with self.tx():
            old = self.q1("SELECT priority FROM customers WHERE id=?", (customer_id,))[0]
            self.conn.execute("UPDATE customers SET priority=? WHERE id=?", (priority, customer_id))
            return self.log_event("priority", actor, customer_id, old=old, new=priority, **extra)

    def rename(self, customer_id: int, name: str, actor: str) -> int | None:
        """Set the customer's name (one line, at most 100 characters); an undoable
        'rename' event, or None when the name is unchanged."""
        from store.facts import clean_text

        name = clean_text(name, 100)
        if not name:
            raise StoreError("a name cannot be empty")
        with self.tx():
            row = self.q1("SELECT name FROM customers WHERE id=?", (customer_id,))
            if row is None:
                raise StoreError(f"no customer with id {customer_id}")
            old = row[0]
            if old == name:
                return None
            self.conn.execute("UPDATE customers SET name=?, name_key=? WHERE id=?", (name, name_key(name), customer_id))
            self.reindex_customer(customer_id)
            return self.log_event("rename", actor, customer_id, old=old, new=name)

    def add_address(self, customer_id: int, address: str, actor: str, channel: str = "email") -> int:
        """Give a customer an e-mail address to reply to (one whose mail came without a
        usable sender, or a second address): a new identity, logged as an undoable
        'address' event (returned). Replies then go to it. StoreError for an address
        that is not one, or that is already another customer's (merge them instead)."""
        from store.outbox import usable_address

        if channel != "email":
            raise StoreError("only e-mail addresses can be added by hand; chat users are found when they write")
        addr = normalize_email(address or "")
        if not addr or not usable_address(channel, addr) or "." not in addr.rpartition("@")[2]:
            raise StoreError(f"{(address or '').strip()[:80]!r} is not an e-mail address")
        with self.tx():
            cid = self.live_id(customer_id)
            if self.q1("SELECT 1 FROM customers WHERE id=?", (cid,)) is None:
                raise StoreError(f"no customer with id {customer_id}")
            owners = {self.live_id(r[0]) for r in self.q(
                "SELECT i.customer_id FROM identities i WHERE i.channel=? AND i.address=? UNION"
                " SELECT i.customer_id FROM identity_keys k JOIN identities i ON i.id=k.identity_id WHERE k.key=?",
                (channel, addr, f"email:{addr}"))}
            if cid in owners:
                raise StoreError(f"{addr} is already an address of #{cid}")
            if owners:
                other = min(owners)
                raise StoreError(f"{addr} belongs to customer #{other}; to join them: omnidesk merge {cid} {other}")
            account = self.q1("SELECT account FROM identities WHERE customer_id=? AND channel=? ORDER BY id DESC",
                              (cid, channel))
            identity_id = self.insert_id(
                "INSERT INTO identities(customer_id, channel, address, display_name, handle, account, created_at)"
                " VALUES (?, ?, ?, '', '', ?, ?)", (cid, channel, addr, account[0] if account else "", self.clock()))
            self.conn.execute("INSERT INTO identity_keys(identity_id, key) VALUES (?, ?)", (identity_id, f"email:{addr}"))
            return self.log_event("address", actor, cid, identity=identity_id, address=addr, channel=channel)

    def add_note(self, customer_id: int, text: str, author: str) -> int:
        """Add an internal note (never sent) to the customer's timeline; returns its message id. StoreError if
        empty."""
        if not text.strip():
            raise StoreError("a note cannot be empty")
        with self.tx():
            message_id = self.insert_message(customer_id=customer_id, channel="note", direction="note", text=text,
                                             sent_at=self.clock(), received_at=self.clock(), author=author)
            self.log_event("note", author, customer_id, message_id=message_id)
            return message_id

    def mark_read(self, customer_id: int) -> None:
        """The agent has seen the customer's messages: their unread count goes to 0."""
        with self.tx():
            self.conn.execute("UPDATE customers SET unread=0 WHERE id=? AND unread != 0", (customer_id,))

    def recompute(self, customer_id: int) -> None:
        """Derive the queue fields from the messages (after merge, split, undo)."""
        self.conn.execute(
            """UPDATE customers SET
                 last_inbound_at = (SELECT max(sent_at) FROM messages WHERE customer_id=:id AND direction='in'),
                 last_outbound_at = (SELECT max(m.sent_at) FROM messages m LEFT JOIN outbox o ON o.message_id=m.id
                                     WHERE m.customer_id=:id AND m.direction='out' AND coalesce(o.state,'sent') != 'failed'
                                     AND coalesce(CAST(json_extract(m.meta, '$.auto') AS TEXT), '0') = '0'),  -- an auto-ack answers nobody
                 last_channel = (SELECT channel FROM messages WHERE customer_id=:id AND direction='in'
                                 ORDER BY sent_at DESC, id DESC LIMIT 1)
               WHERE id=:id""",
            {"id": customer_id},
        )
        self.conn.execute(
            """UPDATE customers SET
                 waiting_since = (SELECT min(sent_at) FROM messages WHERE customer_id=:id AND direction='in'
                                  AND max(sent_at, received_at) > coalesce((SELECT last_outbound_at FROM customers WHERE id=:id), 0)
                                  AND {LIVE}),
                 unread = (SELECT count(*) FROM messages WHERE customer_id=:id AND direction='in'
                           AND max(sent_at, received_at) > coalesce((SELECT last_outbound_at FROM customers WHERE id=:id), 0)
                           AND {LIVE})
               WHERE id=:id""".format(LIVE=NOT_BACKLOG),  # "answered?" as at ingest
            {"id": customer_id},
        )


__all__ = ["CustomersMixin", "QUEUE_FILTERS", "loads"]
