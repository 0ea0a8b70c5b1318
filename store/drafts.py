"""Unsent replies and notes, kept per agent and customer so a draft outlives the
console: its text, whether it is a note, the subject, the channel the agent chose,
the files to attach (local paths), the Cc addresses, and the template values it
holds as typed ({as typed: Markdown}, so they are still sent as typed)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from store.db import dumps, loads


@dataclass
class Draft:
    customer_id: int
    text: str
    mode: str = "reply"  # or "note"
    subject: str | None = None
    identity_id: int | None = None  # the channel the agent chose; None: follow the customer
    attachments: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    literals: dict[str, str] = field(default_factory=dict)
    updated_at: float = 0.0


class DraftsMixin:
    def save_draft(self, agent: str, draft: Draft) -> None:
        """Keep `agent`'s draft to `draft.customer_id` (replacing the one kept); an empty
        text with nothing attached removes it. A customer merged away meanwhile: the draft
        is kept for the customer they were merged into, and replaces what `drafts()` showed
        there (that draft already held the merged-away customers' text)."""
        if draft.mode not in ("reply", "note"):
            raise ValueError(f"a draft is a reply or a note, not {draft.mode!r}")
        live = self.live_id(draft.customer_id)  # type: ignore[attr-defined]  # CustomersMixin
        draft = replace(draft, customer_id=live)
        if not draft.text.strip() and not draft.attachments:
            self.delete_draft(agent, live)
            return
        with self.tx():
            self._drop_merged_drafts(agent, live)
            self.conn.execute(
                "INSERT INTO drafts(customer_id, agent, text, mode, subject, identity_id, attachments, cc, literals,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(agent, customer_id) DO UPDATE SET text=excluded.text, mode=excluded.mode,"
                " subject=excluded.subject, identity_id=excluded.identity_id, attachments=excluded.attachments,"
                " cc=excluded.cc, literals=excluded.literals, updated_at=excluded.updated_at",
                (draft.customer_id, agent, draft.text, draft.mode, draft.subject, draft.identity_id,
                 dumps(list(draft.attachments)) if draft.attachments else None,
                 dumps(list(draft.cc)) if draft.cc else None,
                 dumps(dict(draft.literals)) if draft.literals else None, self.clock()))

    def delete_draft(self, agent: str, customer_id: int) -> None:
        """Remove `agent`'s draft to `customer_id`, if any (sent or emptied). Returns nothing."""
        with self.tx():
            self.conn.execute("DELETE FROM drafts WHERE agent=? AND customer_id=?", (agent, customer_id))
            self._drop_merged_drafts(agent, customer_id)

    def _drop_merged_drafts(self, agent: str, customer_id: int) -> None:
        """The drafts to customers merged (directly or in a chain) into `customer_id`: shown
        as part of its draft, they go when that draft is saved, sent or emptied."""
        merged = self._merged_into_ids(customer_id)
        if merged:
            marks = ",".join("?" * len(merged))
            self.conn.execute(f"DELETE FROM drafts WHERE agent=? AND customer_id IN ({marks})", (agent, *merged))

    def _merged_into_ids(self, customer_id: int) -> list[int]:
        found, todo = [], [customer_id]
        while todo:
            rows = self.q(f"SELECT id FROM customers WHERE merged_into IN ({','.join('?' * len(todo))})", tuple(todo))
            todo = [r[0] for r in rows if r[0] not in found and r[0] != customer_id]
            found += todo
        return found

    def drafts(self, agent: str) -> list[Draft]:
        """`agent`'s kept drafts, newest first, one per customer. A draft to a customer
        merged into another (by a teammate, while this one was writing) belongs to the
        customer they were merged into: alone, it moves there; beside that customer's own
        draft, its text follows under a line naming whom it was written to, so nothing
        typed is lost or sent to the wrong person unseen. Undo the merge and each draft is
        back with its own customer (as long as neither was saved since)."""
        rows = self.q("SELECT d.*, c.merged_into, c.name FROM drafts d JOIN customers c ON c.id = d.customer_id"
                      " WHERE d.agent=? ORDER BY d.updated_at DESC, d.id DESC", (agent,))
        by_customer: dict[int, Draft] = {}
        for r in sorted(rows, key=lambda r: r["merged_into"] is not None):  # each customer's own draft first
            d = Draft(r["customer_id"], r["text"], r["mode"], r["subject"], r["identity_id"],
                      loads(r["attachments"], []), loads(r["cc"], []), loads(r["literals"], {}), r["updated_at"])
            live = d.customer_id if r["merged_into"] is None else self.live_id(d.customer_id)  # type: ignore[attr-defined]
            kept = by_customer.get(live)
            if kept is None:
                by_customer[live] = replace(d, customer_id=live)  # (a merge moves identities: the channel fits)
            else:
                by_customer[live] = replace(
                    kept, text=f"{kept.text.rstrip()}\n\n--- draft written to {r['name'] or 'customer'}"
                               f" #{d.customer_id} before the merge ---\n{d.text}",
                    attachments=kept.attachments + [a for a in d.attachments if a not in kept.attachments],
                    cc=kept.cc + [c for c in d.cc if c not in kept.cc], literals={**d.literals, **kept.literals},
                    updated_at=max(kept.updated_at, d.updated_at))
        return sorted(by_customer.values(), key=lambda d: -d.updated_at)
