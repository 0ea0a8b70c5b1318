"""Customer facts: a key, its current value, and where that value came from.

An agent sets a fact by hand (`omnidesk fact`, the console), or a [[fact]] rule
captures one from a customer's message. The current value sits in the `facts`
table with its source (actor, channel, message id, when it was said); every
change is a 'fact' event, undoable, so the earlier values stay visible.

Fact keys and values are customer-influenced text: control characters are
dropped, whitespace folded to single spaces, and lengths capped (MAX_KEY,
MAX_VALUE characters).
"""
from __future__ import annotations

import re
import unicodedata

from store.db import StoreError
from store.identity import normalize_email, normalize_phone
from store.text import clean

MAX_KEY = 40
MAX_VALUE = 200
SOURCE = ("actor", "at", "channel", "message_id")
# Facts that are contact details: typed into a chat, they are evidence (for merge
# suggestions, never an automatic link) that this is the person with that address.
CONTACT_FACTS = {"email": "email", "e_mail": "email", "email_address": "email",
                 "phone": "phone", "phone_number": "phone", "mobile": "phone"}
_DROP = ("Cc", "Cf", "Cs", "Zl", "Zp")  # controls, format (bidi) characters, surrogates, line breaks


def clean_text(text: str, cap: int) -> str:
    """One line of inert text: no terminal sequences or controls (store/text.py),
    no other format characters or line separators, single spaces, at most `cap`
    characters (… marks a cut)."""
    kept = "".join(" " if unicodedata.category(ch) in _DROP and ch != "\u200d" else ch  # ZWJ joins emoji
                   for ch in clean(text, single_line=True))
    line = " ".join(kept.split())
    return line if len(line) <= cap else line[: cap - 1] + "…"


_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def fact_name(key: str) -> str:
    """A fact name as typed, with spaces as _ ("gift card" -> "gift_card"), as tags turn
    "Address Change" into address-change: a name templates and fact: search can spell."""
    return "_".join(key.split())


def key_problem(key: str) -> str | None:
    """Why `key` is no good as a new fact name typed by an agent, or None. Names are
    letters, digits, _ and -, starting with a letter: what templates ({{ key }}) and
    search (fact:KEY=VALUE) can spell. (The store itself still takes the spellings
    older versions and rules wrote, like "Order number".)"""
    key = key.strip()
    if _KEY.fullmatch(key) and len(key) <= MAX_KEY:
        return None
    return (f"{clean_text(key, MAX_KEY)!r}: a fact name is letters, digits, _ and -, starting with a letter,"
            f" at most {MAX_KEY} characters (like order_number)")


def clean_key(key: str) -> str:
    key = clean_text(key, MAX_KEY)
    if not key or "=" in key:
        raise StoreError(f"{key!r}: a fact name must be non-empty and without '=' (like order_number)")
    return key


class FactsMixin:
    def _fact_row(self, customer_id: int, key: str):
        return self.q1("SELECT value, actor, at, channel, message_id FROM facts WHERE customer_id=? AND key=?",
                       (customer_id, key))

    def set_fact(self, customer_id: int, key: str, value: str | None, actor: str, *, message_id: int | None = None,
                 channel: str | None = None, at: float | None = None, rule: str | None = None,
                 batch: str | None = None) -> int | None:
        """Set a fact (value None removes it); an undoable 'fact' event.

        `message_id`, `channel` and `at` (unix seconds, when the customer said it;
        default now) record where the value came from. Returns the event id, or
        None when the fact already had this value. Changes sharing a `batch` (one
        command's) are undone together. StoreError: empty key or value,
        removing a fact the customer does not have."""
        key = clean_key(key)
        if value is not None:
            value = clean_text(value, MAX_VALUE)
            if not value:
                raise StoreError(f"{key}: a fact needs a value (remove it with -r)")
        with self.tx():
            old = self._fact_row(customer_id, key)
            if old is None and value is None:
                raise StoreError(f"#{customer_id} has no fact {key!r}")
            if old is not None and old["value"] == value:
                return None
            at = self.clock() if at is None else at
            if value is None:
                self.conn.execute("DELETE FROM facts WHERE customer_id=? AND key=?", (customer_id, key))
            else:
                self.conn.execute("INSERT INTO facts(customer_id, key, value, actor, at, channel, message_id)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?)" + UPSERT_FACT, (customer_id, key, value, actor, at, channel, message_id))
            extra = {"rule": rule} if rule else {}
            if batch:
                extra["batch"] = batch
            return self.log_event("fact", actor, customer_id, key=key, old=old["value"] if old else None, new=value,
                                  old_source={k: old[k] for k in SOURCE} if old else None,
                                  channel=channel, message_id=message_id, said_at=at, **extra)

    def capture_fact(self, customer_id: int, key: str, value: str, rule: str, *, message_id: int, channel: str,
                     at: float, actor: str = "rules") -> int | None:
        """A value a rule found in a customer's message (said at `at`). It becomes
        current unless the current value is newer (a late-arriving older message):
        then it is only recorded ('fact_seen' event) among the earlier values.
        Returns the event id, or None when the value is already the current one."""
        key, value = clean_key(key), clean_text(value, MAX_VALUE)
        if not value:
            return None
        with self.tx():
            old = self._fact_row(customer_id, key)
            if old is not None and old["value"] == value:
                return None
            if old is not None and (old["at"] or 0) > at:
                return self.log_event("fact_seen", actor, customer_id, key=key, value=value, rule=rule,
                                      channel=channel, message_id=message_id, said_at=at)
            return self.set_fact(customer_id, key, value, actor, message_id=message_id, channel=channel, at=at,
                                 rule=rule)

    def fact_sources(self, customer_id: int) -> dict[str, dict]:
        """{key: {"actor", "at", "channel", "message_id"}} of the current values
        (None where unknown: facts from before sources were kept)."""
        return {r["key"]: {k: r[k] for k in SOURCE}
                for r in self.q("SELECT key, actor, at, channel, message_id FROM facts WHERE customer_id=?",
                                (customer_id,))}

    def fact_history(self, customer_id: int, limit: int = 500) -> dict[str, list[dict]]:
        """Earlier values per key, newest first: [{"value", "actor", "at",
        "channel", "message_id"}], from the customer's (and merged-in
        customers') fact events that were not undone. The current value is not
        repeated."""
        current = {r[0]: r[1] for r in self.q("SELECT key, value FROM facts WHERE customer_id=?", (customer_id,))}
        seen: list[tuple[str, dict]] = []  # (key, entry)
        for ev in self.events(customer_id, limit=limit, kind="fact") + self.events(customer_id, limit=limit,
                                                                                  kind="fact_seen"):
            if ev.undone:
                continue
            d = ev.data
            said = {"actor": ev.actor, "at": d.get("said_at") or ev.at, "channel": d.get("channel"),
                    "message_id": d.get("message_id")}
            value = d.get("value") if ev.kind == "fact_seen" else d.get("new")
            if value is not None:
                seen.append((d["key"], {"value": value, **said}))
            if ev.kind == "fact" and d.get("old") is not None:  # covers values set before any event recorded them
                src = d.get("old_source") or {}
                seen.append((d["key"], {"value": d["old"], **{k: src.get(k) for k in SOURCE}}))
        out: dict[str, list[dict]] = {}
        for key, entry in sorted(seen, key=lambda x: -(x[1]["at"] or 0)):
            if entry["value"] == current.get(key) or any(e["value"] == entry["value"] for e in out.get(key, [])):
                continue
            out.setdefault(key, []).append(entry)
        return out

    def _undo_fact(self, ev) -> None:
        d = ev.data
        later = self.q1("SELECT id FROM events WHERE kind='fact' AND customer_id=? AND id > ? AND undone_by IS NULL"
                        " AND json_extract(data, '$.key') = ? ORDER BY id DESC LIMIT 1",
                        (ev.customer_id, ev.id, d["key"]))
        if later is not None:
            raise StoreError(f"{d['key']!r} changed again later: undo that first (event {later[0]}), then this one")
        if d["old"] is None:
            self.conn.execute("DELETE FROM facts WHERE customer_id=? AND key=?", (ev.customer_id, d["key"]))
        else:
            src = d.get("old_source") or {}
            self.conn.execute("INSERT INTO facts(customer_id, key, value, actor, at, channel, message_id)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?)" + UPSERT_FACT,
                              (ev.customer_id, d["key"], d["old"], *(src.get(k) for k in SOURCE)))

    def customers_with_fact(self, key: str, value: str | None = None) -> list[int]:
        """Live customers holding fact `key` (any spelling: "Order number" is
        order_number), with `value` if given (case ignored)."""
        sql = ("SELECT f.customer_id FROM facts f JOIN customers c ON c.id = f.customer_id WHERE c.merged_into IS NULL"
               " AND " + FACT_KEY_SQL + " = ?")
        params: list = [fact_key(key)]
        if value is not None:
            sql += " AND f.value = ? COLLATE NOCASE"
            params.append(value)
        return [r[0] for r in self.q(sql + " ORDER BY f.customer_id", params)]

    def fact_evidence(self, customer_id: int | None = None) -> list[tuple[int, int, str]]:
        """(customer, other, evidence) for live customers where one gave a phone
        number or e-mail address as a fact (CONTACT_FACTS) that the other has as
        an identity or a fact too; only pairs with `customer_id` if given."""
        keys = "', '".join(CONTACT_FACTS)
        by_key: dict[str, list[tuple[int, str | None]]] = {}
        for r in self.q(f"SELECT f.customer_id, {FACT_KEY_SQL} AS k, f.value, f.channel FROM facts f"
                        f" JOIN customers c ON c.id = f.customer_id WHERE c.merged_into IS NULL"
                        f" AND {FACT_KEY_SQL} IN ('{keys}')"):
            kind = CONTACT_FACTS[r["k"]]
            value = normalize_email(r["value"]) if kind == "email" else normalize_phone(r["value"])
            if value:
                by_key.setdefault(f"{kind}:{value}", []).append((r["customer_id"], r["channel"]))
        owners = self._owners_by_key(set(by_key)) if by_key else {}
        out, seen = [], set()
        for key, tellers in by_key.items():
            kind, value = key.split(":", 1)
            for cid, channel in tellers:
                for other in sorted((owners[key] | {c for c, _ in tellers}) - {cid}):
                    if (customer_id is not None and customer_id not in (cid, other)) or (cid, other, key) in seen:
                        continue
                    seen.add((cid, other, key))
                    said = f" on {channel}" if channel else ""
                    out.append((cid, other, f"#{cid} gave {kind} {value}{said}; #{other} has it too"))
        return out


def fact_key(key: str) -> str:
    """The spelling-free form of a key, as templates use it: "Order number" -> order_number."""
    return re.sub(r"[^0-9a-z]+", "_", key.strip().lower()).strip("_")


# fact_key in SQL, for the common spellings (spaces, dashes and dots become _)
# INSERT ... VALUES (...) + UPSERT_FACT: a fact replaces the customer's value for its key
UPSERT_FACT = (" ON CONFLICT(customer_id, key) DO UPDATE SET value=excluded.value, actor=excluded.actor, at=excluded.at,"
               " channel=excluded.channel, message_id=excluded.message_id")
FACT_KEY_SQL = "replace(replace(replace(lower(trim(f.key)), ' ', '_'), '-', '_'), '.', '_')"
