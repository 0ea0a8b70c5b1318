"""Full-text search with filters: channel:, from:, tag:, status:, before:, after:,
fact:KEY=VALUE (or fact:KEY: has that fact).

Words are all required; `a OR b` takes either, `-word` excludes, "quoted
words" are a phrase. `from:NAME` means what that customer wrote (a name, an
address or a handle); our own replies are `from:me`. CJK words are found
inside runs and common folds apply (store/fts.py).
"""
from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from store.db import StoreError
from store.facts import FACT_KEY_SQL, fact_key
from store.fts import PhraseCounter, bm25_doc, fts_text, tsquery_phrase, words
from store.models import SearchHit
from store.terms import CHANNELS, OLD_STATUS_WORDS, STATUSES

FILTERS = ("channel", "from", "tag", "status", "before", "after", "fact")
ME = "me"  # from:me: our own replies


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False  # typed in quotes: the words in this order, no prefix


@dataclass
class ParsedQuery:
    groups: list[list[Term]] = field(default_factory=list)  # all groups required; any term of a group
    excluded: list[Term] = field(default_factory=list)  # -word, -"a phrase"
    channel: str | None = None
    sender: str | None = None  # from:NAME (a customer); ME for our replies
    tag: str | None = None
    status: str | None = None
    before: float | None = None
    after: float | None = None
    fact: tuple[str, str | None] | None = None  # (key, value or None for "has it")
    prefix: bool = False  # the last word is still being typed: match it as a prefix

    @property
    def terms(self) -> list[str]:
        """The wanted words, for highlighting."""
        return [w for group in self.groups for t in group for w in t.text.split()]


def _date(value: str, key: str) -> float:
    from store.timefmt import WhenError, parse_day

    try:  # as snooze and stats --since take them: after:7d, before:yesterday, after:today
        relative = parse_day(value, time.time())
    except WhenError as e:
        raise StoreError(f"{key}:{value}: {e}") from None
    if relative is not None:
        return relative
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise StoreError(f"{key}:{value}: expected a date like 2026-11-25, a span back like 7d or 24h, today or yesterday")


# -word / -"phrase", KEY:"quoted value" or "a phrase", or a bare word
_TOKEN = re.compile(r'(?P<neg>-?)(?:(?P<key>[a-z]+):)?"(?P<quoted>[^"]*)"?|(?P<word>\S+)')
_EXAMPLES = {"channel": "channel:email", "from": "from:jane or from:me", "tag": "tag:vip", "status": "status:open",
             "before": "before:2026-11-25 or before:yesterday",
             "after": "after:2026-11-25 or after:7d", "fact": "fact:order_number=1042"}


def parse_query(query: str) -> ParsedQuery:
    """Raises StoreError for a filter without a value (`from:`) or a bad value."""
    parsed = ParsedQuery()
    joined = False  # the previous token was OR: the next term joins the last group
    for m in _TOKEN.finditer(query.replace("\x00", "")):
        neg, key, value = m["neg"], m["key"], m["quoted"]
        phrase = value is not None
        if not phrase:
            word = m["word"]
            neg = "-" if word.startswith("-") and len(word) > 1 else ""
            word = word[len(neg):]
            key, sep, value = word.partition(":")
            if not (sep and key in FILTERS):
                key, value = None, word
        elif key and key not in FILTERS:  # re:"x" is just words
            value, key = f"{key}:{value}", None
        if key:
            _filter(parsed, key, value.strip())
            continue
        if value == "OR" and not phrase and parsed.groups and not neg:
            joined = True
            continue
        term = Term(" ".join(value.split()), phrase)
        if not term.text or not re.search(r"\w", term.text):
            continue
        if neg:
            parsed.excluded.append(term)
        elif joined:
            parsed.groups[-1].append(term)
        else:
            parsed.groups.append([term])
        joined = False
        parsed.prefix = not phrase and not neg and m.end() == len(query.rstrip())
    return parsed


def _filter(parsed: ParsedQuery, key: str, value: str) -> None:
    if not value:
        raise StoreError(f"{key}: needs a value, like {_EXAMPLES[key]}")
    if key == "channel":
        if value not in CHANNELS + ("note",):
            raise StoreError(f"channel:{value}: expected one of {', '.join(CHANNELS)}, note")
        parsed.channel = value
    elif key == "from":
        parsed.sender = ME if value.lower() == ME else value
    elif key == "tag":  # any spelling: tag:#VIP finds vip
        from store.tags import TagError, normalize_tag

        try:
            parsed.tag = normalize_tag(value)
        except TagError as e:
            raise StoreError(f"tag:{value}: {e}") from None
    elif key == "status":
        value = OLD_STATUS_WORDS.get(value, value)  # status:waiting from before "pending"
        if value not in STATUSES:
            raise StoreError(f"status:{value}: expected one of {', '.join(STATUSES)}")
        parsed.status = value
    elif key in ("before", "after"):
        setattr(parsed, key, _date(value, key))
    elif key == "fact":
        name, eq, wanted = value.partition("=")
        if not fact_key(name):
            raise StoreError(f"fact:{value}: expected fact:KEY=VALUE, like fact:order_number=1042")
        parsed.fact = (fact_key(name), wanted if eq else None)


def _quote(term: Term, prefix: bool = False) -> str:
    """A term as an FTS5 string (never an operator: users cannot inject syntax)."""
    text = fts_text(term.text).replace('"', '""')
    return f'"{text}"' + ("*" if prefix else "")


def fts_expression(parsed: ParsedQuery | list[str]) -> str:
    """The FTS5 query for the wanted words: groups AND-ed, OR within a group,
    excluded terms NOT-ed; the last word typed is a prefix (results appear
    while typing). Empty when no word is wanted."""
    if isinstance(parsed, list):  # plain words
        parsed = parse_query(" ".join(f'"{w}"' if " " in w else w for w in parsed))
    if not parsed.groups:
        return ""
    last = parsed.groups[-1][-1]
    parts = []
    for group in parsed.groups:
        quoted = [_quote(t, parsed.prefix and t is last) for t in group]
        parts.append(quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")")
    expr = " AND ".join(parts)
    for term in parsed.excluded:
        expr += " NOT " + _quote(term)
    return expr


NOTHING = "'\ufffd'"  # a tsquery no row matches: U+FFFD is never part of an indexed word


def tsquery(parsed: ParsedQuery) -> str:
    """fts_expression for PostgreSQL: the same words as tsquery text (store/fts.py makes
    both sides' words): `&` between groups, `|` within, `& !` for excluded terms, `<->`
    inside phrases, `:*` on the last word typed. Empty when no word is wanted."""
    if not parsed.groups:
        return ""
    last = parsed.groups[-1][-1]
    parts = []
    for group in parsed.groups:
        terms = [q for q in (tsquery_phrase(t.text, parsed.prefix and t is last) for t in group) if q]
        if not terms:
            return NOTHING  # a term without any word: matches nothing, as its FTS5 phrase does not
        parts.append(terms[0] if len(terms) == 1 else "(" + " | ".join(terms) + ")")
    expr = " & ".join(parts)
    for term in parsed.excluded:
        q = tsquery_phrase(term.text)
        if q:
            expr += f" & !{q}"
    return expr


def excluded_tsquery(parsed: ParsedQuery) -> str:
    """Any of the excluded terms, as tsquery text ("" if none has a word)."""
    return " | ".join(q for q in (tsquery_phrase(t.text) for t in parsed.excluded) if q)


RANKED_AMONG = 1000
EXACT_UP_TO = 5000  # PostgreSQL: bm25's row counts are exact up to this many messages, then sampled or estimated
INDEX_UP_TO = 5_000  # PostgreSQL: matches in all that the GIN index fetches and sorts quicker than a walk finds them
RECENT_WINDOW = 20_000  # PostgreSQL: messages searched newest first before the index is asked for all matches  # best-ranked among the newest matches: bm25 over every match of a common word is slow


class _BaseLetters(dict):
    """str.translate table: each character to its base letter, one for one
    (é -> e, ё -> е), so positions in the folded copy are positions in the text."""

    def __missing__(self, code: int) -> str:
        base = unicodedata.normalize("NFD", chr(code))[0]
        self[code] = base
        return base


_BASE = _BaseLetters()
_CJK_TERM = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def snippet(text: str, terms: list[str], width: int = 100) -> str:
    """One line around the first match, the matching words in «». (FTS5's
    snippet() costs ~20 ms a row with prefix queries; this is microseconds.)
    Matches as search does: accents and ё folded, CJK words inside runs."""
    flat = " ".join((text or "").split())
    terms = [t.strip('"').translate(_BASE) for t in terms]
    words = [re.escape(t) if _CJK_TERM.search(t) else r"(?<!\w)" + re.escape(t) + r"\w*" for t in terms if t]
    if not words:
        return flat[:width]
    pattern = re.compile("|".join(words), re.IGNORECASE)
    folded = flat if flat.isascii() else flat.translate(_BASE)
    found = pattern.search(folded)
    start = max(0, found.start() - width // 3) if found else 0
    end = start + width
    marks = [(m.start(), m.end()) for m in pattern.finditer(folded, start, end)]
    piece, at = [], start
    for lo, hi in marks:
        piece += [flat[at:lo], "«", flat[lo:hi], "»"]
        at = hi
    piece.append(flat[at:end])
    return ("…" if start else "") + "".join(piece) + ("…" if end < len(flat) else "")


# The customers behind from:NAME: a word of their name (customers_fts), or an identity whose
# address or handle starts with it (both indexed; identities of merged customers point at
# the customer they were merged into).
_SENDER_SQL = ("SELECT rowid FROM customers_fts WHERE customers_fts MATCH ?"
               " UNION SELECT customer_id FROM identities WHERE channel IN ("
               + ", ".join(f"'{c}'" for c in CHANNELS) + ")"  # the index on (channel, address) serves
               " AND address >= ? AND address < ?"
               " UNION SELECT customer_id FROM identities WHERE handle >= ? AND handle < ? AND handle != ''")


# The same statements on PostgreSQL: the index tables hold a tsvector `doc` (store/fts.py)
# matched by a tsquery (`tsquery` above); rank is ts_rank normalized by document length,
# larger is better (FTS5's bm25 rank: smaller is better).
_SENDER_SQL_PG = _SENDER_SQL.replace("SELECT rowid FROM customers_fts WHERE customers_fts MATCH ?",
                                     "SELECT id FROM customers_fts WHERE doc @@ CAST(? AS tsquery)")


_HIT_COLUMNS = "m.id, m.customer_id, c.name, m.channel, m.sent_at, m.subject, m.text, m.deleted, m.direction, m.author"


class SearchMixin:
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Customers by name and messages matching `query`, best first."""
        parsed = parse_query(query)
        pg = self.pg
        customer_where, customer_params = ["c.merged_into IS NULL"], []
        if parsed.tag:
            customer_where.append("c.id IN (SELECT customer_id FROM tags WHERE tag = ?)")
            customer_params.append(parsed.tag)
        if parsed.status:
            customer_where.append("c.status = ?")
            customer_params.append(parsed.status)
        if parsed.fact:  # "Order number" and order_number are the same key; values ignore case
            key, value = parsed.fact
            # an IN list SQLite reads first (by the value's index), then looks customers up by id
            customer_where.append(f"c.id IN (SELECT f.customer_id FROM facts f WHERE {FACT_KEY_SQL} = ?"
                                  + (" AND f.value = ? COLLATE NOCASE)" if value is not None else ")"))
            customer_params += [key] + ([value] if value is not None else [])
        where, params = list(customer_where), list(customer_params)
        if parsed.channel:
            where.append("m.channel = ?")
            params.append(parsed.channel)
        if parsed.sender == ME:
            where.append("m.direction = 'out'")
        elif parsed.sender:
            where.append("m.direction = 'in' AND m.customer_id IN (" + (_SENDER_SQL_PG if pg else _SENDER_SQL) + ")")
            params += self._sender_params(parsed.sender)
        if parsed.before is not None:
            where.append("m.sent_at < ?")
            params.append(parsed.before)
        if parsed.after is not None:
            where.append("m.sent_at >= ?")
            params.append(parsed.after)
        expr = tsquery(parsed) if pg else fts_expression(parsed)
        hits: list[SearchHit] = []
        if not expr:
            if len(where) == 1:
                raise StoreError("empty search: give words or a filter such as channel:telegram"
                                 + (" (-word only leaves words out)" if parsed.excluded else ""))
            if parsed.excluded and pg:
                if excluded_tsquery(parsed):
                    where.append("m.id NOT IN (SELECT id FROM messages_fts WHERE doc @@ CAST(? AS tsquery))")
                    params.append(excluded_tsquery(parsed))
            elif parsed.excluded:
                where.append("m.id NOT IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)")
                params.append(" OR ".join(_quote(t) for t in parsed.excluded))
            if parsed.fact and len(where) == len(customer_where):  # the customers themselves first
                hits += self._fact_hits(parsed.fact[0], customer_where, customer_params, limit)
            newest = (f" FROM messages m JOIN customers c ON c.id = m.customer_id WHERE {' AND '.join(where)}"
                      " ORDER BY m.sent_at DESC, m.id DESC LIMIT ?")  # (ties: newest id first on both backends)
            if pg and parsed.sender and parsed.sender != ME:
                # the newest ids from the index of inbound messages alone (schema_pg step 15), then
                # the rows shown: the columns of every message of the sender's would be read first
                rows = self._hit_rows([r["id"] for r in self._rows("SELECT m.id" + newest, (*params, limit))])
            else:
                rows = self._rows(f"SELECT {_HIT_COLUMNS}" + newest, (*params, limit))
        else:
            if not any((parsed.channel, parsed.sender, parsed.before, parsed.after)):
                if pg:
                    sql = ("SELECT c.id, c.name, c.last_channel, c.last_inbound_at FROM customers_fts f JOIN customers c"
                           f" ON c.id = f.id WHERE f.doc @@ CAST(? AS tsquery) AND {' AND '.join(customer_where)}"
                           " ORDER BY ts_rank(f.doc, CAST(? AS tsquery), 1) DESC, c.id LIMIT ?")
                    args = (expr, *customer_params, expr, limit)
                else:
                    sql = ("SELECT c.id, c.name, c.last_channel, c.last_inbound_at FROM customers_fts JOIN customers c"
                           f" ON c.id = customers_fts.rowid WHERE customers_fts MATCH ? AND {' AND '.join(customer_where)}"
                           " ORDER BY rank LIMIT ?")
                    args = (expr, *customer_params, limit)
                for r in self._rows(sql, args):
                    hits.append(SearchHit(None, r["id"], r["name"], r["last_channel"] or "", r["last_inbound_at"],
                                          f"customer: {r['name']}"))
            # A filter on who wrote (from:, tag:, status:, fact:) keeps few of the matches: collecting
            # RANKED_AMONG of them meant reading 30-80k index rows. Filtered results come newest first.
            narrowed = len(customer_where) > 1 or parsed.sender
            if pg:
                rank = "" if narrowed else ", CAST(f.doc AS text) AS doc"  # ranked below as FTS5 does
                match = "f.doc @@ CAST(?1 AS tsquery)"  # (?1: the query, given once, used twice)
                index = "messages_fts f JOIN messages m ON m.id = f.id"
                # from: keeps a few messages in a hundred: walking the messages and looking up the
                # words of those kept reads less than looking up the message of every match
                newest = "m.id DESC" if parsed.sender else "f.id DESC"
            else:
                rank = "" if narrowed else ", messages_fts.rank AS r"
                match = "messages_fts MATCH ?"
                index = "messages_fts JOIN messages m ON m.id = messages_fts.rowid"
                newest = "messages_fts.rowid DESC"
            columns = _HIT_COLUMNS
            if pg and not narrowed:  # only what ranking needs; the shown rows' columns come after
                columns = "m.id"
            sql = (f"SELECT {columns}{rank}"
                   f" FROM {index} JOIN customers c ON c.id = m.customer_id"
                   f" WHERE {match} AND {' AND '.join(where)} ORDER BY {newest} LIMIT ?")
            wanted = limit if narrowed else RANKED_AMONG
            rows = self._newest_matches(sql, expr, params, wanted) if pg else self._rows(sql, (expr, *params, wanted))
            if pg and not narrowed:
                rows = self._hit_rows([r["id"] for r in self._bm25(parsed, rows)[:limit]])
            else:
                rows = rows if narrowed else sorted(rows, key=lambda r: r["r"])[:limit]
        for r in rows:
            text = (r["subject"] + " — " if r["subject"] else "") + (r["text"] or "")
            # kept and found (an agent may need what was said), but never passed off as current
            mark = "(deleted by the customer) " if r["deleted"] else ""
            hits.append(SearchHit(r["id"], r["customer_id"], r["name"], r["channel"], r["sent_at"],
                                  mark + snippet(text, parsed.terms), r["direction"] or "", r["author"] or ""))
        return hits[:limit]

    def _newest_matches(self, sql: str, expr: str, params: list, wanted: int) -> list:
        """PostgreSQL: the newest `wanted` matches. Walking the ids backwards and testing each
        row (the plan PostgreSQL picks for a typed word: it guesses a prefix matches often)
        is quick for a common word and reads every message for a rare one. So the newest
        RECENT_WINDOW messages are searched that way first, then a window four times as
        wide, and so on, while the matches seen so far promise more than INDEX_UP_TO in all; fewer (a rare word), and the GIN index finds them all
        (index scans off, for this statement only), then sorted. (That way a common word costs ~0.3 us a message
        walked, not a sort of its hundreds of thousands of matches: 700 ms at 1M messages.)"""
        top = self.conn.execute("SELECT max(id) FROM messages_fts").fetchone()[0] or 0
        key = "m.id" if " ORDER BY m.id DESC" in sql else "f.id"  # (the same ids: m.id = f.id)
        recent = sql.replace(f" ORDER BY {key} DESC", f" AND {key} > ? AND {key} <= ? ORDER BY {key} DESC")
        window, walked, rows = RECENT_WINDOW, 0, []
        # (no parallel workers: starting them cost ~20 ms, walking a window 5-15 ms. No merge
        # join: when it guesses many matches in a wide window the planner pairs the walk with
        # a backward read of every message id in it (132k for "broken vase" at 1M messages,
        # 40 ms), where looking up the few rows found is what a LIMIT walk needs.)
        with self._settings("max_parallel_workers_per_gather = 0", "enable_mergejoin = off"):
            while True:  # each window walks only the messages the one before did not
                rows += self._rows(recent, (expr, *params, top - window, top - walked, wanted - len(rows)))
                if len(rows) >= wanted or top <= window:
                    return rows
                if not window:
                    break
                # Few at this window's rate: the index. But the newest messages may be unlike the
                # rest (a day of replies), so a wider window is walked once before (the planner's
                # estimate is no guide: it is far off for words AND-ed and for prefixes).
                if len(rows) * top < INDEX_UP_TO * window and window > RECENT_WINDOW:
                    break
                walked, window = window, window * 4
        with self._settings("enable_indexscan = off", "enable_seqscan = off"):
            return self._rows(sql, (expr, *params, wanted))

    @contextmanager
    def _settings(self, *settings: str):
        """PostgreSQL: planner settings for the statements inside, in a read-only transaction
        of its own (tx() would NOTIFY other consoles at its end); none inside a caller's
        transaction, where SET LOCAL would outlast this search."""
        if self._depth:
            yield
            return
        with self._lock:
            self.conn.script("BEGIN; " + "; ".join(f"SET LOCAL {s}" for s in settings))
            try:
                yield
            finally:
                self.conn.execute("ROLLBACK")

    def _bm25(self, parsed: ParsedQuery, rows: list) -> list:
        """PostgreSQL: `rows` (with their tsvector text in "doc") best first by FTS5's bm25
        (k1 1.2, b 0.75, both columns as one), so the order is SQLite's: the same phrases,
        counted in the same words. The row count and the mean length come from the table
        (all of it up to 5,000 rows, else a sample, kept ten minutes); how many rows hold
        each phrase only matters with several phrases, and comes from the planner's
        estimate on a big table."""
        phrases = [(words(t.text), parsed.prefix and t is parsed.groups[-1][-1])
                   for group in parsed.groups for t in group]
        phrases = [(ws, prefix) for ws, prefix in phrases if ws]
        docs = [bm25_doc(r["doc"]) for r in rows]
        total, avgdl = self._fts_totals()
        idf = [1.0] * len(phrases)
        if len(phrases) > 1:
            for i, (ws, prefix) in enumerate(phrases):
                hits = min(self._phrase_rows(tsquery_phrase(" ".join(ws), prefix), total), total)  # (an estimate)
                idf[i] = max(math.log((total - hits + 0.5) / (hits + 0.5)), 1e-6)
        scores = []
        counters = [PhraseCounter(ws, prefix) for ws, prefix in phrases]
        for doc, length in docs:
            score = 0.0
            for count, weight in zip(counters, idf):
                f = count(doc)
                score += weight * (f * 2.2) / (f + 1.2 * (0.25 + 0.75 * length / avgdl))
            scores.append(score)
        order = sorted(range(len(rows)), key=lambda i: -scores[i])  # stable: newest first among equals
        return [rows[i] for i in order]

    def _hit_rows(self, ids: list[int]) -> list:
        """PostgreSQL: the rows shown for these message ids, in this order."""
        if not ids:
            return []
        found = {r["id"]: r for r in self._rows(f"SELECT {_HIT_COLUMNS} FROM messages m JOIN customers c"
                                                 " ON c.id = m.customer_id WHERE m.id = ANY(?)", (ids,))}
        return [found[i] for i in ids]

    def _fts_totals(self) -> tuple[int, float]:
        cached = getattr(self, "_fts_cache", None)
        if cached and cached[0] > time.monotonic() - 600:
            return cached[1], cached[2]
        total = self.conn.execute("SELECT count(*) FROM (SELECT 1 FROM messages_fts LIMIT ?) x",
                                  (EXACT_UP_TO + 1,)).fetchone()[0]
        if total > EXACT_UP_TO:
            # (the planner's row count: -1 before the first ANALYZE; more than EXACT_UP_TO in any case)
            total = max(int(self.conn.execute("SELECT reltuples FROM pg_class"
                                              " WHERE oid = CAST('messages_fts' AS regclass)").fetchone()[0]), total)
            sample = self.conn.execute("SELECT CAST(doc AS text) FROM messages_fts TABLESAMPLE SYSTEM (1)"
                                       " LIMIT 5000").fetchall()
        else:
            sample = self.conn.execute("SELECT CAST(doc AS text) FROM messages_fts").fetchall()
        lengths = [bm25_doc(r[0])[1] for r in sample]
        avgdl = max(sum(lengths) / len(lengths), 1.0) if lengths else 1.0
        if total > EXACT_UP_TO:  # a sample is kept a while; an exact small table is read again next time
            self._fts_cache = (time.monotonic(), total, avgdl)
        return total, avgdl

    def _phrase_rows(self, query: str, total: int) -> int:
        """How many rows hold the phrase: counted on a small table, else the planner's estimate."""
        if total <= EXACT_UP_TO:
            return self.conn.execute("SELECT count(*) FROM messages_fts WHERE doc @@ CAST(? AS tsquery)",
                                     (query,)).fetchone()[0]
        plan = self.conn.execute("EXPLAIN (FORMAT JSON) SELECT 1 FROM messages_fts WHERE doc @@ CAST(? AS tsquery)",
                                 (query,), prepare=False).fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])

    def _rows(self, sql: str, params) -> list:
        """A search statement's rows. PostgreSQL plans it for the words at hand each time: a
        prepared statement's generic plan cannot know that a word is rare and walks every
        message newest first (xyzzy: 250 ms at 200k messages instead of 1 ms)."""
        if self.pg:
            return self.conn.execute(sql, params, prepare=False).fetchall()
        return self.q(sql, params)

    def _sender_params(self, who: str) -> list:
        """Parameters for _SENDER_SQL: `who` as a name word (prefix), an address or a handle (prefix)."""
        low = who.lower().lstrip("@")
        name = (tsquery_phrase(who, prefix=True) or NOTHING) if self.pg else _quote(Term(who), prefix=True)
        return [name, low, low + "\U0010ffff", low, low + "\U0010ffff"]

    def _fact_hits(self, key: str, where: list[str], params: list, limit: int) -> list[SearchHit]:
        rows = self._rows(
            f"SELECT c.id, c.name, c.last_channel, c.last_inbound_at, f.key, f.value FROM customers c"
            f" JOIN facts f ON f.customer_id = c.id AND {FACT_KEY_SQL} = ? WHERE {' AND '.join(where)}"
            " ORDER BY c.last_inbound_at DESC NULLS LAST, c.id DESC LIMIT ?", (key, *params, limit))
        return [SearchHit(None, r["id"], r["name"], r["last_channel"] or "", r["last_inbound_at"],
                          f"customer: {r['name']} · {r['key']} {r['value']}") for r in rows]
