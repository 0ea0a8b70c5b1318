"""Full-text search with filters: channel:, from:, tag:, status:, before:, after:."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone

from store.customers import like_escape
from store.db import StoreError
from store.models import CHANNELS, STATUSES, SearchHit

FILTERS = ("channel", "from", "tag", "status", "before", "after")


@dataclass
class ParsedQuery:
    terms: list[str] = field(default_factory=list)
    channel: str | None = None
    sender: str | None = None
    tag: str | None = None
    status: str | None = None
    before: float | None = None
    after: float | None = None


def _date(value: str, key: str) -> float:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise StoreError(f"{key}:{value}: expected a date like 2026-11-25")


def parse_query(query: str) -> ParsedQuery:
    try:
        words = shlex.split(query)
    except ValueError:
        words = query.replace('"', " ").split()
    parsed = ParsedQuery()
    for word in words:
        key, sep, value = word.partition(":")
        if sep and key in FILTERS and value:
            if key == "channel":
                if value not in CHANNELS + ("note",):
                    raise StoreError(f"channel:{value}: expected one of {', '.join(CHANNELS)}, note")
                parsed.channel = value
            elif key == "from":
                parsed.sender = value
            elif key == "tag":
                parsed.tag = value
            elif key == "status":
                if value not in STATUSES:
                    raise StoreError(f"status:{value}: expected one of {', '.join(STATUSES)}")
                parsed.status = value
            elif key == "before":
                parsed.before = _date(value, key)
            elif key == "after":
                parsed.after = _date(value, key)
        else:
            parsed.terms.append(word)
    return parsed


def fts_expression(terms: list[str]) -> str:
    """User words as quoted FTS5 strings (no operator injection); the last one
    is a prefix so results appear while typing."""
    tokens = [t for t in (re.sub(r'"', '""', w.replace("\x00", "")).strip() for w in terms) if t]
    if not tokens:
        return ""
    parts = [f'"{t}"' for t in tokens]
    parts[-1] += "*"
    return " ".join(parts)


class SearchMixin:
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Messages (and customers by name) matching `query`, best first."""
        parsed = parse_query(query)
        where, params = ["c.merged_into IS NULL"], []
        if parsed.channel:
            where.append("m.channel = ?")
            params.append(parsed.channel)
        if parsed.sender:
            like = f"%{like_escape(parsed.sender)}%"
            where.append("(c.name LIKE ? ESCAPE '\\' OR m.author LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM identities i"
                         " WHERE i.id = m.identity_id AND (i.address LIKE ? ESCAPE '\\' OR i.handle LIKE ? ESCAPE '\\'"
                         " OR i.display_name LIKE ? ESCAPE '\\')))")
            params += [like] * 5
        if parsed.tag:
            where.append("EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id AND t.tag = ?)")
            params.append(parsed.tag)
        if parsed.status:
            where.append("c.status = ?")
            params.append(parsed.status)
        if parsed.before is not None:
            where.append("m.sent_at < ?")
            params.append(parsed.before)
        if parsed.after is not None:
            where.append("m.sent_at >= ?")
            params.append(parsed.after)
        expr = fts_expression(parsed.terms)
        hits: list[SearchHit] = []
        if expr:
            rows = self.q(
                "SELECT m.id, m.customer_id, c.name, m.channel, m.sent_at,"
                " snippet(messages_fts, -1, '«', '»', '…', 12) snip"
                " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN customers c ON c.id = m.customer_id"
                f" WHERE messages_fts MATCH ? AND {' AND '.join(where)} ORDER BY rank LIMIT ?",
                (expr, *params, limit),
            )
            only_messages = any((parsed.channel, parsed.sender, parsed.before, parsed.after))
            if not only_messages:
                cwhere = ["c.merged_into IS NULL"]
                cparams: list = []
                if parsed.tag:
                    cwhere.append("EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id AND t.tag = ?)")
                    cparams.append(parsed.tag)
                if parsed.status:
                    cwhere.append("c.status = ?")
                    cparams.append(parsed.status)
                for r in self.q(
                    "SELECT c.id, c.name, c.last_channel, c.last_inbound_at FROM customers_fts JOIN customers c"
                    f" ON c.id = customers_fts.rowid WHERE customers_fts MATCH ? AND {' AND '.join(cwhere)}"
                    " ORDER BY rank LIMIT ?",
                    (expr, *cparams, limit),
                ):
                    hits.append(SearchHit(None, r["id"], r["name"], r["last_channel"] or "", r["last_inbound_at"],
                                          f"customer: {r['name']}"))
        else:
            if len(where) == 1:
                raise StoreError("empty search: give words or a filter such as channel:telegram")
            rows = self.q(
                "SELECT m.id, m.customer_id, c.name, m.channel, m.sent_at, substr(coalesce(m.subject || ' — ', '') || m.text, 1, 120) snip"
                f" FROM messages m JOIN customers c ON c.id = m.customer_id WHERE {' AND '.join(where)}"
                " ORDER BY m.sent_at DESC LIMIT ?",
                (*params, limit),
            )
        for r in rows:
            hits.append(SearchHit(r["id"], r["customer_id"], r["name"], r["channel"], r["sent_at"],
                                  " ".join((r["snip"] or "").split())))
        return hits[:limit]
