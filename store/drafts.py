"""Unsent replies and notes, kept per agent and customer so a draft outlives the
console: its text, whether it is a note, the subject, the channel the agent chose,
the files to attach (local paths), the Cc addresses, and the template values it
holds as typed ({as typed: Markdown}, so they are still sent as typed)."""
from __future__ import annotations

from dataclasses import dataclass, field

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
        text with nothing attached removes it."""
        if not draft.text.strip() and not draft.attachments:
            self.delete_draft(agent, draft.customer_id)
            return
        if draft.mode not in ("reply", "note"):
            raise ValueError(f"a draft is a reply or a note, not {draft.mode!r}")
        with self.tx():
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

    def drafts(self, agent: str) -> list[Draft]:
        """`agent`'s kept drafts, newest first (not those to customers merged into another)."""
        rows = self.q("SELECT d.* FROM drafts d JOIN customers c ON c.id = d.customer_id"
                      " WHERE d.agent=? AND c.merged_into IS NULL ORDER BY d.updated_at DESC, d.id DESC", (agent,))
        return [Draft(r["customer_id"], r["text"], r["mode"], r["subject"], r["identity_id"],
                      loads(r["attachments"], []), loads(r["cc"], []), loads(r["literals"], {}), r["updated_at"])
                for r in rows]
