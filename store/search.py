"""Full-text search with filters: channel:, from:, tag:, status:, before:, after:,
fact:KEY=VALUE (or fact:KEY: has that fact)."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone

from store.customers import like_escape
from store.db import StoreError
from store.facts import FACT_KEY_SQL, fact_key
from store.models import CHANNELS, STATUSES, SearchHit

FILTERS = ("channel", "from", "tag", "status", "before", "after", "fact")


@dataclass
class ParsedQuery:
    terms: list[str] = field(default_factory=list)
    channel: str | None = None
    sender: str | None = None
    tag: str | None = None
    status: str | None = None
    before: float | None = None
    after: float | None = None
    fact: tuple[str, str | None] | None = None  # (key, value or None for "has it")


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
            elif key == "fact":
                name, eq, wanted = value.partition("=")
                if not fact_key(name):
                    raise StoreError(f"fact:{value}: expected fact:KEY=VALUE, like fact:order_number=1042")
                parsed.fact = (fact_key(name), wanted if eq else None)
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


RANKED_AMONG = 1000  # best-ranked among the newest matches: bm25 over every match of a common word is slow


def snippet(text: str, terms: list[str], width: int = 100) -> str:
    """One line around the first match, the matching words in «». (FTS5's
    snippet() costs ~20 ms a row with prefix queries; this is microseconds.)"""
    flat = " ".join((text or "").split())
    words = [re.escape(t) for t in (w.strip('"').lower() for w in terms) if t]
    if not words:
        return flat[:width]
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(words) + r")\w*", re.IGNORECASE)
    found = pattern.search(flat)
    start = max(0, found.start() - width // 3) if found else 0
    piece = pattern.sub(lambda m: f"«{m.group(0)}»", flat[start:start + width])
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


class SearchMixin:
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Customers by name and messages matching `query`, best first."""
        parsed = parse_query(query)
        customer_where, customer_params = ["c.merged_into IS NULL"], []
        if parsed.tag:
            customer_where.append("EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id AND t.tag = ?)")
            customer_params.append(parsed.tag)
        if parsed.status:
            customer_where.append("c.status = ?")
            customer_params.append(parsed.status)
        if parsed.fact:  # "Order number" and order_number are the same key; values ignore case
            key, value = parsed.fact
            customer_where.append(f"EXISTS (SELECT 1 FROM facts f WHERE f.customer_id = c.id AND {FACT_KEY_SQL} = ?"
                                  + (" AND f.value = ? COLLATE NOCASE)" if value is not None else ")"))
            customer_params += [key] + ([value] if value is not None else [])
        where, params = list(customer_where), list(customer_params)
        if parsed.channel:
            where.append("m.channel = ?")
            params.append(parsed.channel)
        if parsed.sender:
            like = f"%{like_escape(parsed.sender)}%"
            where.append("(c.name LIKE ? ESCAPE '\\' OR m.author LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM identities i"
                         " WHERE i.id = m.identity_id AND (i.address LIKE ? ESCAPE '\\' OR i.handle LIKE ? ESCAPE '\\'"
                         " OR i.display_name LIKE ? ESCAPE '\\')))")
            params += [like] * 5
        if parsed.before is not None:
            where.append("m.sent_at < ?")
            params.append(parsed.before)
        if parsed.after is not None:
            where.append("m.sent_at >= ?")
            params.append(parsed.after)
        expr = fts_expression(parsed.terms)
        hits: list[SearchHit] = []
        if not expr:
            if len(where) == 1:
                raise StoreError("empty search: give words or a filter such as channel:telegram")
            if parsed.fact and len(where) == len(customer_where):  # the customers themselves first
                hits += self._fact_hits(parsed.fact[0], customer_where, customer_params, limit)
            rows = self.q(
                "SELECT m.id, m.customer_id, c.name, m.channel, m.sent_at, m.subject, m.text, m.deleted"
                f" FROM messages m JOIN customers c ON c.id = m.customer_id WHERE {' AND '.join(where)}"
                " ORDER BY m.sent_at DESC LIMIT ?",
                (*params, limit),
            )
        else:
            if not any((parsed.channel, parsed.sender, parsed.before, parsed.after)):
                for r in self.q(
                    "SELECT c.id, c.name, c.last_channel, c.last_inbound_at FROM customers_fts JOIN customers c"
                    f" ON c.id = customers_fts.rowid WHERE customers_fts MATCH ? AND {' AND '.join(customer_where)}"
                    " ORDER BY rank LIMIT ?",
                    (expr, *customer_params, limit),
                ):
                    hits.append(SearchHit(None, r["id"], r["name"], r["last_channel"] or "", r["last_inbound_at"],
                                          f"customer: {r['name']}"))
            rows = self.q(
                "SELECT m.id, m.customer_id, c.name, m.channel, m.sent_at, m.subject, m.text, m.deleted,"
                " messages_fts.rank AS r"
                " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN customers c ON c.id = m.customer_id"
                f" WHERE messages_fts MATCH ? AND {' AND '.join(where)} ORDER BY messages_fts.rowid DESC LIMIT ?",
                (expr, *params, RANKED_AMONG),
            )
            rows = sorted(rows, key=lambda r: r["r"])[:limit]
        for r in rows:
            text = (r["subject"] + " — " if r["subject"] else "") + (r["text"] or "")
            # kept and found (an agent may need what was said), but never passed off as current
            mark = "(deleted by the customer) " if r["deleted"] else ""
            hits.append(SearchHit(r["id"], r["customer_id"], r["name"], r["channel"], r["sent_at"],
                                  mark + snippet(text, parsed.terms)))
        return hits[:limit]

    def _fact_hits(self, key: str, where: list[str], params: list, limit: int) -> list[SearchHit]:
        rows = self.q(
            f"SELECT c.id, c.name, c.last_channel, c.last_inbound_at, f.key, f.value FROM customers c"
            f" JOIN facts f ON f.customer_id = c.id AND {FACT_KEY_SQL} = ? WHERE {' AND '.join(where)}"
            " ORDER BY c.last_inbound_at DESC LIMIT ?", (key, *params, limit))
        return [SearchHit(None, r["id"], r["name"], r["last_channel"] or "", r["last_inbound_at"],
                          f"customer: {r['name']} · {r['key']} {r['value']}") for r in rows]
