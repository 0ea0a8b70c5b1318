"""Merging customers, splitting identities out, undo, and merge suggestions.

Messages follow their identity; notes and outbound messages without an
identity are recorded by id so that undo can put everything back.
"""
from __future__ import annotations

import difflib
import unicodedata

from store.customers import NOT_BACKLOG
from store.db import StoreError
from store.facts import UPSERT_FACT
from store.models import MergeSuggestion
from store.outbox import usable_address
from store.terms import UNKNOWN_SENDER
from store.names import name_key

UNDOABLE = ("merge", "split", "status", "tag", "untag", "assign", "note", "priority", "fact", "rename", "address")
FINAL = ("reply", "retry")
# the small values of an undone event that its undo event keeps, for the words (never lists of ids)
UNDO_GIST = ("new", "old", "until", "reason", "tag", "tags", "key", "source", "new_customer", "identity", "address")  # actions that cannot be taken back: a bare `undo` stops at them


def _plain(name: str) -> str:
    name = unicodedata.normalize("NFKD", name or "")
    return " ".join("".join(c for c in name if not unicodedata.combining(c)).lower().split())


PLACEHOLDER = _plain(UNKNOWN_SENDER)
MAX_BLOCK = 300  # a block bigger than this (a very common first name) says too little to compare within


def _blocks(person) -> set[str]:
    _, name, emails, handles = person
    keys = {f"n:{word[:3]}" for word in name.split() if len(word) >= 2}
    ids = set(handles) | {e.split("@", 1)[0] for e in emails} | ({name.replace(" ", "")} if name else set())
    return keys | {f"h:{i}" for i in ids if i} | {f"m:{m}" for m in map(mailbox, emails) if m}


def mailbox(address: str) -> str:
    """The mailbox a sub-address delivers to: jane+shop@example.com -> jane@example.com
    ("" when `address` has no +tag). Evidence for a suggestion, never a merge by
    itself: on some providers + is an ordinary letter of another person's address."""
    local, at, domain = address.partition("@")
    base = local.split("+", 1)[0]
    return f"{base}@{domain}" if at and base and base != local else ""


class MergeMixin:
    def merge(self, target: int, source: int, actor: str, evidence: list[str] | None = None) -> int:
        """Fold `source` into `target`: identities, messages, tags, facts. Undoable."""
        if target == source:
            raise StoreError("cannot merge a customer with itself")
        with self.tx():
            for cid in (target, source):
                row = self.q1("SELECT merged_into FROM customers WHERE id=?", (cid,))
                if row is None:
                    raise StoreError(f"no customer with id {cid}")
                if row[0] is not None:
                    raise StoreError(f"customer {cid} was already merged into {row[0]}")
            identities = [r[0] for r in self.q("SELECT id FROM identities WHERE customer_id=? ORDER BY id", (source,))]
            loose = [r[0] for r in self.q("SELECT id FROM messages WHERE customer_id=? AND identity_id IS NULL ORDER BY id",
                                             (source,))]
            source_tags = [r[0] for r in self.q("SELECT tag FROM tags WHERE customer_id=? ORDER BY tag", (source,))]
            target_tags = {r[0] for r in self.q("SELECT tag FROM tags WHERE customer_id=?", (target,))}
            source_facts = {r[0]: r[1] for r in self.q("SELECT key, value FROM facts WHERE customer_id=? ORDER BY key", (source,))}
            source_fact_sources = self.fact_sources(source)
            target_facts = {r[0] for r in self.q("SELECT key FROM facts WHERE customer_id=?", (target,))}
            state = dict(self.q1("SELECT status, snoozed_until, assignee, priority, name FROM customers WHERE id=?", (source,)))
            unread = self.q1("SELECT sum(unread) FROM customers WHERE id IN (?, ?)", (target, source))[0]
            target_state = dict(self.q1("SELECT status, snoozed_until, priority FROM customers WHERE id=?", (target,)))

            self.conn.execute("UPDATE identities SET customer_id=? WHERE customer_id=?", (target, source))
            self.conn.execute("UPDATE messages SET customer_id=? WHERE customer_id=?", (target, source))
            for tag in source_tags:
                self.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (target, tag))
            self.conn.execute("DELETE FROM tags WHERE customer_id=?", (source,))
            self.conn.execute("INSERT INTO facts(customer_id, key, value, actor, at, channel, message_id)"
                              " SELECT ?, key, value, actor, at, channel, message_id FROM facts WHERE customer_id=?"
                              " ON CONFLICT DO NOTHING",
                              (target, source))
            self.conn.execute("DELETE FROM facts WHERE customer_id=?", (source,))
            self.conn.execute(
                "UPDATE customers SET merged_into=?, status='done', waiting_since=NULL, unread=0 WHERE id=?", (target, source)
            )
            self.conn.execute(  # the merged customer keeps the more urgent priority
                "UPDATE customers SET priority=max(priority, ?) WHERE id=?", (state["priority"], target)
            )
            if state["status"] == "open":
                self.conn.execute("UPDATE customers SET status='open', snoozed_until=NULL WHERE id=?", (target,))
            self.recompute(target)
            self._keep_read(target, unread)
            return self.log_event(
                "merge", actor, target, source=source, identities=identities, loose_messages=loose,
                source_tags=source_tags, tags_added=[t for t in source_tags if t not in target_tags],
                source_facts=source_facts, source_fact_sources=source_fact_sources, facts_added=[k for k in source_facts if k not in target_facts],
                source_state=state, target_state=target_state, evidence=evidence or [],
            )

    def split(self, identity_id: int, actor: str) -> tuple[int, int]:
        """Move one identity (and its messages) out into a new customer.
        Returns (event id, new customer id)."""
        with self.tx():
            ident = self.q1("SELECT * FROM identities WHERE id=?", (identity_id,))
            if ident is None:
                raise StoreError(f"no identity with id {identity_id}")
            source = ident["customer_id"]
            count = self.q1("SELECT count(*) FROM identities WHERE customer_id=?", (source,))[0]
            if count < 2:
                raise StoreError(f"identity {identity_id} is the customer's only identity; nothing to split")
            name = ident["display_name"] or (f"@{ident['handle']}" if ident["handle"] else ident["address"])
            # what the split may change on the customer, so that undo puts it back exactly
            before = dict(self.q1("SELECT status, snoozed_until, unread, waiting_since FROM customers WHERE id=?",
                                  (source,)))
            unread_ids = self._unread_by(source)
            new_id = self.insert_customer(name)
            self.conn.execute("UPDATE identities SET customer_id=? WHERE id=?", (new_id, identity_id))
            self.conn.execute("UPDATE messages SET customer_id=? WHERE customer_id=? AND identity_id=?",
                              (new_id, source, identity_id))
            self.recompute(source)
            self.recompute(new_id)
            moved = sum(1 for i in unread_ids if i == identity_id)
            self._keep_read(source, len(unread_ids) - moved)
            self._keep_read(new_id, moved)
            self._reopen_if_waiting(new_id)
            event_id = self.log_event("split", actor, source, identity=identity_id, new_customer=new_id,
                                      source_state=before)
            return event_id, new_id

    def _unread_by(self, customer_id: int) -> list[int]:
        """The identity of each message the agent has not read yet: the customer's
        newest `unread` inbound messages (unread counts what came since the last read)."""
        unread = self.q1("SELECT unread FROM customers WHERE id=?", (customer_id,))[0]
        return [r[0] for r in self.q(
            f"SELECT identity_id FROM messages WHERE customer_id=? AND direction='in' AND {NOT_BACKLOG}"
            " ORDER BY received_at DESC, id DESC LIMIT ?", (customer_id, unread))]

    def _keep_read(self, customer_id: int, unread: int) -> None:
        """recompute counts every unanswered message as unread; what the agent
        had already read before a merge or split stays read."""
        self.conn.execute("UPDATE customers SET unread = min(unread, ?) WHERE id=?", (unread, customer_id))

    def _reopen_if_waiting(self, customer_id: int) -> None:
        """Someone with an unanswered message belongs in the queue, whatever the status said."""
        self.conn.execute("UPDATE customers SET status='open', snoozed_until=NULL WHERE id=? AND waiting_since IS NOT NULL",
                          (customer_id,))

    # -- undo -----------------------------------------------------------------
    def recent_actions(self, actor: str, customer_id: int | None = None, limit: int = 20) -> list:
        """The actor's newest actions that undo could take back or stops at
        (store.models.Event, newest first; already undone ones left out), on
        `customer_id` (and whoever was merged into them) when given."""
        kinds = UNDOABLE + FINAL
        where, params = ["undone_by IS NULL", "actor = ?", f"kind IN ({','.join('?' * len(kinds))})"], [actor, *kinds]
        if customer_id is not None:
            family = self._family(customer_id)
            where.append(f"customer_id IN ({','.join('?' * len(family))})")
            params += family
        rows = self.q(f"SELECT id FROM events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [self.event(r[0]) for r in rows]

    def undo(self, actor: str, event_id: int | None = None, *, customer_id: int | None = None) -> int:
        """Revert an event (by default the actor's newest undoable one, on
        `customer_id` when given). Returns its id. Raises StoreError when there
        is nothing to undo, or the last action cannot be undone (a reply)."""
        with self.tx():
            if event_id is None:  # the actor's last action, if it can be undone
                [row] = self.recent_actions(actor, customer_id, limit=1) or [None]
                if row is None:
                    raise StoreError("nothing to undo" + (f" for customer #{customer_id}" if customer_id else ""))
                row = {"id": row.id, "kind": row.kind}
                if row["kind"] not in UNDOABLE:  # never reach past it to some older, unrelated action
                    raise StoreError(f"your last action ({row['kind']}, event {row['id']}) cannot be undone;"
                                     " to undo an earlier one, give its event id (see `omnidesk events`)")
                event_id = row["id"]
            ev = self.event(event_id)
            if ev is None:
                raise StoreError(f"no event with id {event_id}")
            if ev.undone:
                raise StoreError(f"event {event_id} was already undone")
            if ev.kind not in UNDOABLE:
                raise StoreError(f"event {event_id} ({ev.kind}) cannot be undone")
            if ev.kind in ("merge", "split"):
                self._check_no_later_regrouping(ev)
            batch = [e for e in self.batch_of(ev) if not e.undone]
            for one in reversed(batch):  # newest first, as they would be undone one by one
                getattr(self, f"_undo_{one.kind}")(one)
                # what was undone, in short, so the event log can say it ("you undid “set status done”")
                gist = {k: v for k, v in one.data.items() if k in UNDO_GIST}
                undo_id = self.log_event("undo", actor, one.customer_id, event=one.id, undone_kind=one.kind,
                                         undone=gist)
                self.conn.execute("UPDATE events SET undone_by=? WHERE id=?", (undo_id, one.id))
            return event_id

    def batch_of(self, ev) -> list:
        """The events one command made with `ev` (`done --older-than`, `import --done`, `fact a=1 b=2`),
        `ev` among them, oldest first; [ev] for an event of its own. One undo takes them all back."""
        if not ev.data.get("batch"):
            return [ev]
        return [self.event(r[0]) for r in self.q(
            "SELECT id FROM events WHERE kind=? AND CAST(json_extract(data, '$.batch') AS TEXT) = ? ORDER BY id",
            (ev.kind, ev.data["batch"]))]

    @staticmethod
    def _regrouped(ev) -> set[int]:
        """The customers a merge or split event moved identities between."""
        other = ev.data.get("source") if ev.kind == "merge" else ev.data.get("new_customer")
        return {ev.customer_id, other}

    def _check_no_later_regrouping(self, ev) -> None:
        """Merges and splits stack: undoing one under a later one that is still in
        force would leave identities on the wrong (or a hidden) customer."""
        involved = self._regrouped(ev)
        for row in self.q("SELECT id FROM events WHERE id > ? AND undone_by IS NULL AND kind IN ('merge','split')"
                          " ORDER BY id DESC", (ev.id,)):
            later = self.event(row[0])
            if self._regrouped(later) & involved:
                raise StoreError(f"undo the later {later.kind} first (event {later.id}), then this one ({ev.id})")

    def _undo_merge(self, ev) -> None:
        target, source, d = ev.customer_id, ev.data["source"], ev.data
        unread_ids = self._unread_by(target)
        if d["identities"]:
            marks = ",".join("?" * len(d["identities"]))
            self.conn.execute(f"UPDATE identities SET customer_id=? WHERE id IN ({marks})", (source, *d["identities"]))
            self.conn.execute(f"UPDATE messages SET customer_id=? WHERE customer_id=? AND identity_id IN ({marks})",
                              (source, target, *d["identities"]))
        if d["loose_messages"]:
            marks = ",".join("?" * len(d["loose_messages"]))
            self.conn.execute(f"UPDATE messages SET customer_id=? WHERE id IN ({marks})", (source, *d["loose_messages"]))
        for tag in d["tags_added"]:
            self.conn.execute("DELETE FROM tags WHERE customer_id=? AND tag=?", (target, tag))
        for tag in d["source_tags"]:
            self.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (source, tag))
        for key in d["facts_added"]:
            self.conn.execute("DELETE FROM facts WHERE customer_id=? AND key=?", (target, key))
        sources = d.get("source_fact_sources") or {}
        for key, value in d["source_facts"].items():
            src = sources.get(key) or {}
            self.conn.execute("INSERT INTO facts(customer_id, key, value, actor, at, channel, message_id)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?)" + UPSERT_FACT, (source, key, value, src.get("actor"), src.get("at"),
                                                                src.get("channel"), src.get("message_id")))
        s = d["source_state"]
        self.conn.execute(
            "UPDATE customers SET merged_into=NULL, status=?, snoozed_until=?, assignee=?, priority=? WHERE id=?",
            (s["status"], s["snoozed_until"], s["assignee"], s["priority"], source),
        )
        t = d.get("target_state")
        if t:  # what the merge changed on the target (reopened, unsnoozed, priority raised)
            self.conn.execute("UPDATE customers SET status=?, snoozed_until=?, priority=? WHERE id=?",
                              (t["status"], t["snoozed_until"], t["priority"], target))
        moved = sum(1 for i in unread_ids if i in d["identities"])
        for cid, unread in ((target, len(unread_ids) - moved), (source, moved)):
            self.recompute(cid)
            self._keep_read(cid, unread)
            # a message that came in while merged is unanswered, whatever the old status said
            self.conn.execute(
                "UPDATE customers SET status='open', snoozed_until=NULL WHERE id=? AND waiting_since IS NOT NULL"
                " AND EXISTS (SELECT 1 FROM messages WHERE customer_id=? AND direction='in' AND received_at > ?)",
                (cid, cid, ev.at))

    def _undo_split(self, ev) -> None:
        source, new_id = ev.customer_id, ev.data["new_customer"]
        unread = self.q1("SELECT sum(unread) FROM customers WHERE id IN (?, ?)", (source, new_id))[0]
        # every identity there now: the split one, and any that auto-linked to it since
        self.conn.execute("UPDATE identities SET customer_id=? WHERE customer_id=?", (source, new_id))
        self.conn.execute("UPDATE messages SET customer_id=? WHERE customer_id=?", (source, new_id))
        for tag in [r[0] for r in self.q("SELECT tag FROM tags WHERE customer_id=? ORDER BY tag", (new_id,))]:
            self.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (source, tag))
        self.conn.execute("DELETE FROM tags WHERE customer_id=?", (new_id,))
        self.conn.execute("UPDATE customers SET merged_into=?, status='done', waiting_since=NULL WHERE id=?", (source, new_id))
        self.recompute(source)
        self._keep_read(source, unread)
        before = ev.data.get("source_state")
        news = self.q1("SELECT 1 FROM messages WHERE customer_id=? AND direction='in' AND received_at > ? LIMIT 1",
                       (source, ev.at))
        if before and news is None:  # nothing came in since: the customer as it was (a done case stays done)
            self.conn.execute("UPDATE customers SET status=?, snoozed_until=?, unread=?, waiting_since=? WHERE id=?",
                              (before["status"], before["snoozed_until"], before["unread"], before["waiting_since"],
                               source))
        else:  # a message that came in while split is unanswered, whatever the old status said
            self._reopen_if_waiting(source)

    def _undo_status(self, ev) -> None:
        self.conn.execute("UPDATE customers SET status=?, snoozed_until=? WHERE id=?",
                          (ev.data["old"], ev.data.get("old_until"), ev.customer_id))

    def _undo_address(self, ev) -> None:
        identity = ev.data["identity"]
        if self.q1("SELECT 1 FROM messages WHERE identity_id=? LIMIT 1", (identity,)):
            raise StoreError(f"{ev.data.get('address')} has messages now; to move it out: omnidesk split {identity}")
        self.conn.execute("DELETE FROM identity_keys WHERE identity_id=?", (identity,))
        self.conn.execute("DELETE FROM identities WHERE id=?", (identity,))

    @staticmethod
    def _event_tags(ev) -> list[str]:
        """The tags a tag/untag event names ("tags" when there were several), in their stored
        form (an event from before tags were normalized says "#VIP")."""
        from store.tags import TagError, normalize_tag

        out = []
        for tag in ev.data.get("tags") or [ev.data["tag"]]:
            try:
                out.append(normalize_tag(tag))
            except TagError:
                out.append(tag)
        return out

    def _undo_tag(self, ev) -> None:  # every tag the action added, in one undo
        for tag in self._event_tags(ev):
            self.conn.execute("DELETE FROM tags WHERE customer_id=? AND tag=?", (ev.customer_id, tag))

    def _undo_untag(self, ev) -> None:
        for tag in self._event_tags(ev):
            self.conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                              (ev.customer_id, tag))

    def _undo_assign(self, ev) -> None:
        self.conn.execute("UPDATE customers SET assignee=? WHERE id=?", (ev.data["old"], ev.customer_id))

    def _undo_priority(self, ev) -> None:
        self.conn.execute("UPDATE customers SET priority=? WHERE id=?", (ev.data["old"], ev.customer_id))

    def _undo_rename(self, ev) -> None:
        self.conn.execute("UPDATE customers SET name=?, name_key=? WHERE id=?",
                          (ev.data["old"], name_key(ev.data["old"]), ev.customer_id))
        self.reindex_customer(ev.customer_id)

    def _undo_note(self, ev) -> None:
        self.conn.execute("DELETE FROM messages WHERE id=? AND direction='note'", (ev.data["message_id"],))

    # -- suggestions ------------------------------------------------------------
    def merge_suggestions(self, customer_id: int | None = None, limit: int = 20) -> list[MergeSuggestion]:
        """Likely duplicates with the evidence; never applied automatically.

        Compared: names (exact after folding case and accents, or very similar),
        a shared e-mail domain next to the same name, and a Telegram/Slack handle
        equal to an e-mail's local part. The "Unknown sender" placeholder and
        the made-up addresses of mails without a sender are no evidence.
        """
        rows = self.q(
            "SELECT c.id, c.name, group_concat(i.channel || ' ' || i.address || ' ' || i.handle, ?) ids"
            " FROM customers c JOIN identities i ON i.customer_id = c.id WHERE c.merged_into IS NULL"
            " GROUP BY c.id ORDER BY c.id LIMIT 20000", ("\n",)
        )
        people = []
        for r in rows:
            emails, handles = set(), set()
            for line in (r["ids"] or "").split("\n"):
                channel, address, handle = (line.split(" ", 2) + ["", ""])[:3]
                if channel == "email" and usable_address(channel, address):  # a made-up @invalid says nothing
                    emails.add(address)
                if handle:
                    handles.add(handle.lower())
            name = _plain(r["name"])
            people.append((r["id"], "" if name == PLACEHOLDER else name, emails, handles))
        # Store-wide, only people who share a block are compared (not every pair):
        # the start of any name word, or a handle / e-mail name / squashed name.
        blocks: dict[str, list] = {}
        for p in people:
            for key in _blocks(p):
                blocks.setdefault(key, []).append(p)
        out = []
        candidates = [p for p in people if customer_id is None or p[0] == customer_id]
        for a in candidates:
            if customer_id is not None:
                pool = people
            else:
                pool = list({b[0]: b for key in _blocks(a) if len(blocks[key]) <= MAX_BLOCK
                             for b in blocks[key]}.values())
            for b in pool:
                if b[0] == a[0] or (customer_id is None and b[0] < a[0]):
                    continue
                evidence, score = [], 0.0
                if a[1] and a[1] == b[1] and len(a[1]) > 3:
                    evidence.append(f"same name {a[1]!r}")
                    score += 0.5
                elif a[1] and b[1]:
                    matcher = difflib.SequenceMatcher(None, a[1], b[1])
                    # the quick upper bounds rule out most pairs before the real (slow) ratio
                    ratio = matcher.ratio() if matcher.real_quick_ratio() >= 0.85 and matcher.quick_ratio() >= 0.85 else 0
                    if ratio >= 0.85:
                        evidence.append(f"similar names {a[1]!r} / {b[1]!r} ({ratio:.0%})")
                        score += 0.3
                    elif a[1].split()[0] == b[1].split()[0]:
                        evidence.append(f"same first name {a[1].split()[0]!r}")
                        score += 0.2
                squashed = {p[0]: p[1].replace(" ", "") for p in (a, b)}
                named = (a[3] & {squashed[b[0]]}) | (b[3] & {squashed[a[0]]})
                if named:
                    evidence.append(f"handle @{sorted(named)[0]} matches the other's name")
                    score += 0.4
                da = {e.split("@", 1)[1] for e in a[2]}
                db = {e.split("@", 1)[1] for e in b[2]}
                common = {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "gmx.de", "web.de"}
                shared = (da & db) - common
                if shared and evidence:
                    evidence.append(f"same e-mail domain {sorted(shared)[0]}")
                    score += 0.3
                locals_a = {e.split("@", 1)[0] for e in a[2]}
                locals_b = {e.split("@", 1)[0] for e in b[2]}
                hit = (locals_a & b[3]) | (locals_b & a[3])
                if hit:
                    evidence.append(f"handle matches e-mail name {sorted(hit)[0]!r}")
                    score += 0.4
                boxes_a = {mailbox(e) or e for e in a[2]}
                boxes_b = {mailbox(e) or e for e in b[2]}
                same_box = boxes_a & boxes_b
                if same_box:
                    evidence.insert(0, f"same mailbox (sub-address) {sorted(same_box)[0]}")
                    score += 0.6
                if evidence and score >= 0.3:
                    out.append(MergeSuggestion(a[0], b[0], round(min(score, 1.0), 2), evidence))
        self._add_fact_evidence(out, customer_id)
        out.sort(key=lambda s: (-s.score, s.customer_id, s.other_id))
        return out[:limit]

    def _add_fact_evidence(self, out: list[MergeSuggestion], customer_id: int | None) -> None:
        """A phone number or e-mail address a customer typed (a fact) that another
        customer has: strong evidence, still only a suggestion."""
        by_pair = {frozenset((s.customer_id, s.other_id)): s for s in out}
        for a, b, why in self.fact_evidence(customer_id):
            s = by_pair.get(frozenset((a, b)))
            if s is None:
                first, second = (a, b) if (a == customer_id if customer_id is not None else a < b) else (b, a)
                s = by_pair[frozenset((a, b))] = MergeSuggestion(first, second, 0.0, [])
                out.append(s)
            if why not in s.evidence:
                s.evidence.append(why)
                s.score = round(min(s.score + 0.6, 1.0), 2)
