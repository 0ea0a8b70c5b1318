"""Identity normalization and resolution: who is this sender, which customer?

Identities are unique on (channel, normalized address). Identities that share
sure evidence (a normalized e-mail address or an E.164 phone number) belong to
one customer automatically; everything less certain is only suggested.
"""
from __future__ import annotations

import email.utils
import re


from store.db import dumps, in_chunks
from typing import NamedTuple

from store.models import Sender
from store.names import name_key

AUTO_LINK = "auto-link"


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\"',;:\\\[\]@]+@[^\s<>()\"',;:\\\[\]@]+")


def normalize_email(value: str) -> str | None:
    value = (value or "").strip()
    if _PLAIN_ADDRESS.fullmatch(value):  # the common case; parseaddr is slow
        addr = value.lower()
    else:
        addr = email.utils.parseaddr(value)[1].strip().lower()
    if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        return None
    return addr


def normalize_phone(value: str, region: str | None = None) -> str | None:
    """E.164, or None when the number is not a plausible phone number."""
    value = (value or "").strip()
    if not value:
        return None
    candidates = [value] if value.startswith("+") else ["+" + re.sub(r"\D", "", value), value]
    for candidate in candidates:
        try:
            import phonenumbers  # loaded on the first phone number, not by every command

            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalize_address(channel: str, address: str) -> str:
    if channel == "email":
        return normalize_email(address) or address.strip().lower()
    return str(address).strip()


def evidence_keys(sender: Sender) -> set[str]:
    keys = set()
    if sender.channel == "email":
        addr = normalize_email(sender.address)
        if addr:
            keys.add(f"email:{addr}")
    for value in sender.emails:
        addr = normalize_email(value)
        if addr:
            keys.add(f"email:{addr}")
    for value in sender.phones:
        phone = normalize_phone(value)
        if phone:
            keys.add(f"phone:{phone}")
    return keys


def _customer_name(sender: Sender, address: str) -> str:
    """The name a customer first seen as `sender` gets."""
    return sender.display_name or (f"@{sender.handle}" if sender.handle else address)


READ_IT = object()  # resolve_sender(known=...): not read yet, look it up


class Resolved(NamedTuple):
    identity_id: int
    customer_id: int
    new_customer: bool = False


class IdentityMixin:
    def resolve_sender(self, sender: Sender, account: str = "", known=READ_IT) -> Resolved:
        """Find or create the identity for `sender` and its customer. `known`: its identities
        row (id, customer_id, display_name, handle, account) or None for none, when the caller
        has read it in this transaction already.

        Must run inside a transaction.
        """
        address = normalize_address(sender.channel, sender.address)
        row = known if known is not READ_IT else self.q1(
            "SELECT id, customer_id, display_name, handle, account FROM identities WHERE channel=? AND address=?",
            (sender.channel, address),
        )
        keys = evidence_keys(sender)
        if row:
            identity_id, customer_id = row["id"], row["customer_id"]
            name = sender.display_name or row["display_name"]
            handle = sender.handle or row["handle"]
            if (name, handle, account or row["account"]) != (row["display_name"], row["handle"], row["account"]):
                self.conn.execute(
                    "UPDATE identities SET display_name=?, name_key=?, handle=?, account=? WHERE id=?",
                    (name, name_key(name), handle, account or row["account"], identity_id),
                )
            if keys and (sender.emails or sender.phones):  # an e-mail identity's own key never changes
                have = {r[0] for r in self.q("SELECT key FROM identity_keys WHERE identity_id=?", (identity_id,))}
                new = keys - have
                if new:
                    self.conn.executemany(
                        "INSERT INTO identity_keys(identity_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        [(identity_id, k) for k in new],
                    )
                    customer_id = self._link_by_keys(customer_id, new)
            return Resolved(identity_id, customer_id)

        now = self.clock()
        customer_id = None
        owners = self._customers_with_keys(keys) if keys else []
        if owners:
            customer_id = owners[0]
        new_customer = customer_id is None
        if new_customer:
            customer_id = self.insert_customer(_customer_name(sender, address))
        identity_id = self.insert_id(
            "INSERT INTO identities(customer_id, channel, address, display_name, name_key, handle, account, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, sender.channel, address, sender.display_name, name_key(sender.display_name), sender.handle,
             account, now),
        )
        if keys:
            insert = "INSERT INTO identity_keys(identity_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING"
            if self.pg:  # (sent with the next statement)
                for k in sorted(keys):
                    self.conn.later(insert, (identity_id, k))
            else:
                self.conn.executemany(insert, [(identity_id, k) for k in keys])
            if len(owners) > 1:  # the new evidence joins customers that were apart
                customer_id = self._link_by_keys(customer_id, keys)
        return Resolved(identity_id, customer_id, new_customer)

    def resolve_senders(self, pairs: list[tuple[Sender, str]]) -> tuple[list[Resolved], bool]:
        """resolve_sender for each (sender, account) in order, with the same outcome
        in a few statements: unchanged identities are read together and new ones
        whose evidence points to at most one customer are written together. Only
        the rest (a changed identity, evidence that joins customers) go one by one.
        Returns one Resolved per pair, and whether any went one by one: their
        auto-links may have moved identities resolved earlier to another customer."""
        # Each distinct pair gets a number; everything below works on numbers, as
        # hashing a Sender (a dataclass) is a good part of the cost of a batch.
        number: dict[tuple, int] = {}
        numbers = [number.setdefault(pair, len(number)) for pair in pairs]
        senders = list(number)
        wheres = [(sender.channel, normalize_address(sender.channel, sender.address)) for sender, _ in senders]
        evidence = [evidence_keys(sender) if sender.channel == "email" or sender.emails or sender.phones else set()
                    for sender, _ in senders]
        unchanged, existing = self._read_identities(senders, wheres, evidence)
        out: list[Resolved] = []
        holds: dict[tuple[str, str], int] = {}  # identity -> the sender whose details it holds now
        current: dict[tuple[str, str], Resolved] = {}
        batch = None
        one_by_one = False
        for n in numbers:
            where = wheres[n]
            held = holds.get(where)
            if held == n:  # the same sender again: resolve_sender would change nothing
                out.append(current[where])
                continue
            holds[where] = n
            if held is None and n in unchanged:
                r = unchanged[n]
            else:
                sender, account = senders[n]
                if batch is None:
                    batch = _NewIdentities(self)
                    batch.owners_of(set().union(*(evidence[m] for m in range(len(senders)) if m not in unchanged)))
                r = None
                if where not in existing:
                    keys = evidence[n]
                    owners = batch.owners_of(keys)
                    if len(owners) <= 1:
                        r = batch.add(sender, account, where[1], keys, min(owners, default=None))
                if r is None:
                    batch.flush()
                    r = self.resolve_sender(sender, account)
                    batch.restart()
                    one_by_one = True
                existing.add(where)
            current[where] = r
            out.append(r)
        if batch is not None:
            batch.flush()
        return out, one_by_one

    def _read_identities(self, senders: list[tuple[Sender, str]], wheres: list[tuple[str, str]],
                         evidence: list[set[str]]) -> tuple[dict[int, Resolved], set[tuple[str, str]]]:
        """For a batch of distinct (sender, account) with their (channel, normalized
        address): by position, those whose identity exists and would not change
        (same name, handle, account, no new evidence), read in a few queries
        instead of one or two per sender; and every (channel, address) that has
        an identity already."""
        wanted: dict[tuple[str, str], list[int]] = {}
        for n, where in enumerate(wheres):
            wanted.setdefault(where, []).append(n)
        by_channel: dict[str, list[str]] = {}
        for channel, address in wanted:
            by_channel.setdefault(channel, []).append(address)
        rows = []
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples
        for channel, addresses in by_channel.items():
            for chunk, marks in in_chunks(addresses):
                rows += cursor.execute(
                    "SELECT id, customer_id, channel, address, display_name, handle, account FROM identities"
                    f" WHERE channel=? AND address IN ({marks})", (channel, *chunk)).fetchall()
        need_keys = [r[0] for r in rows
                     if any(senders[n][0].emails or senders[n][0].phones for n in wanted[(r[2], r[3])])]
        keys: dict[int, set[str]] = {}
        for chunk, marks in in_chunks(need_keys):
            for identity_id, key in self.conn.execute(
                    f"SELECT identity_id, key FROM identity_keys WHERE identity_id IN ({marks})", chunk):
                keys.setdefault(identity_id, set()).add(key)
        out = {}
        for identity_id, customer_id, channel, address, name, handle, account in rows:
            for n in wanted[(channel, address)]:
                sender, acct = senders[n]
                if ((sender.display_name or name) != name or (sender.handle or handle) != handle
                        or (acct or account) != account):
                    continue
                if (sender.emails or sender.phones) and not evidence[n] <= keys.get(identity_id, set()):
                    continue
                out[n] = Resolved(identity_id, customer_id)
        return out, {(r[2], r[3]) for r in rows}

    def _customers_with_keys(self, keys: set[str]) -> list[int]:
        """Live customers (merges followed) holding any of `keys`, oldest first."""
        return sorted(set().union(*self._owners_by_key(keys).values()))

    def _owners_by_key(self, keys) -> dict[str, set[int]]:
        """For each of `keys`, the live customers (merges followed) holding it."""
        owners: dict[str, set[int]] = {k: set() for k in keys}
        for chunk, marks in in_chunks(list(owners)):
            for key, customer_id, merged_into in self.conn.execute(
                    "SELECT k.key, i.customer_id, c.merged_into FROM identity_keys k"
                    " JOIN identities i ON i.id = k.identity_id JOIN customers c ON c.id = i.customer_id"
                    f" WHERE k.key IN ({marks})", chunk):
                owners[key].add(customer_id if merged_into is None else self.live_id(customer_id))
        return owners

    def _link_by_keys(self, customer_id: int, keys: set[str]) -> int:
        """Merge every other customer sharing `keys` into the oldest one, except
        customers an agent split apart: that decision stands."""
        owners = self._customers_with_keys(keys)
        if len(owners) <= 1:
            return customer_id
        target = customer_id if self._kept_apart(customer_id, owners) else owners[0]
        for other in owners:
            if other == target or self._kept_apart(other, [target]):
                continue
            shared = sorted(keys & self._keys_of_customer(other))
            self.merge(target, other, actor=AUTO_LINK, evidence=[f"same {k.split(':', 1)[0]} {k.split(':', 1)[1]}" for k in shared])
        return target

    def _kept_apart(self, customer_id: int, others: list[int]) -> bool:
        """Did an agent split `customer_id` from any of `others` (and not undo it)?"""
        marks = ",".join("?" * len(others))
        return self.q1(
            "SELECT 1 FROM events WHERE kind='split' AND undone_by IS NULL AND ("
            f"(customer_id=? AND CAST(json_extract(data, '$.new_customer') AS INTEGER) IN ({marks})) OR "
            f"(CAST(json_extract(data, '$.new_customer') AS INTEGER)=? AND customer_id IN ({marks}))) LIMIT 1",
            (customer_id, *others, customer_id, *others),
        ) is not None

    def _keys_of_customer(self, customer_id: int) -> set[str]:
        return {
            r[0]
            for r in self.q(
                "SELECT k.key FROM identity_keys k JOIN identities i ON i.id = k.identity_id WHERE i.customer_id=?",
                (customer_id,),
            )
        }

    def add_identity_evidence(self, identity_id: int, *, emails=(), phones=()) -> int:
        """Attach new evidence (e.g. a phone number from a shared contact) and
        auto-link; returns the identity's customer id."""
        sender_keys = evidence_keys(Sender(channel="", address="", emails=tuple(emails), phones=tuple(phones)))
        with self.tx():
            row = self.q1("SELECT customer_id FROM identities WHERE id=?", (identity_id,))
            self.conn.executemany(
                "INSERT INTO identity_keys(identity_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(identity_id, k) for k in sender_keys],
            )
            return self._link_by_keys(row["customer_id"], sender_keys) if sender_keys else row["customer_id"]


class _NewIdentities:
    """New identities (and their new customers) of a batch, written together.
    Ids are handed out as SQLite does (largest + 1, in order), so the store ends
    up exactly as if resolve_sender had created them one at a time."""

    def __init__(self, store):
        self.store = store
        self.customers: list[tuple] = []
        self.identities: list[tuple] = []
        self.keys: list[tuple[int, str]] = []
        self.restart()

    def restart(self) -> None:
        """After resolve_sender ran in between: it may have added rows or merged customers."""
        self.owners: dict[str, set[int]] = {}  # evidence key -> live customers holding it
        self.next_customer = self.store.q1("SELECT coalesce(max(id), 0) + 1 FROM customers")[0]
        self.next_identity = self.store.q1("SELECT coalesce(max(id), 0) + 1 FROM identities")[0]

    def owners_of(self, keys: set[str]) -> set[int]:
        self.owners.update(self.store._owners_by_key([k for k in keys if k not in self.owners]))
        return set().union(*(self.owners[k] for k in keys))

    def add(self, sender: Sender, account: str, address: str, keys: set[str], owner: int | None) -> Resolved:
        now = self.store.clock()
        customer_id = owner
        if customer_id is None:
            customer_id, self.next_customer = self.next_customer, self.next_customer + 1
            name = _customer_name(sender, address)
            self.customers.append((customer_id, name, name_key(name), now))
        identity_id, self.next_identity = self.next_identity, self.next_identity + 1
        self.identities.append((identity_id, customer_id, sender.channel, address, sender.display_name,
                                name_key(sender.display_name), sender.handle, account, now))
        self.keys += [(identity_id, k) for k in keys]
        for k in keys:
            self.owners[k].add(customer_id)
        return Resolved(identity_id, customer_id, owner is None)

    def flush(self) -> None:
        conn = self.store.conn
        conn.executemany("INSERT INTO customers(id, name, name_key, created_at) VALUES (?, ?, ?, ?)", self.customers)
        self.store.index_customers([(c[0], c[1]) for c in self.customers])
        conn.executemany("INSERT INTO identities(id, customer_id, channel, address, display_name, name_key, handle,"
                         " account, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.identities)
        if self.customers:
            self.store.ids_taken("customers")
        if self.identities:
            self.store.ids_taken("identities")
        conn.executemany("INSERT INTO identity_keys(identity_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING", self.keys)
        self.customers, self.identities, self.keys = [], [], []


__all__ = ["IdentityMixin", "normalize_email", "normalize_phone", "normalize_address", "evidence_keys", "dumps"]
