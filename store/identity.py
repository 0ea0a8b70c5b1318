"""Identity normalization and resolution: who is this sender, which customer?

Identities are unique on (channel, normalized address). Identities that share
sure evidence (a normalized e-mail address or an E.164 phone number) belong to
one customer automatically; everything less certain is only suggested.
"""
from __future__ import annotations

import email.utils
import re

import phonenumbers

from store.db import dumps
from typing import NamedTuple

from store.models import Sender

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


class Resolved(NamedTuple):
    identity_id: int
    customer_id: int
    new_customer: bool = False


class IdentityMixin:
    def resolve_sender(self, sender: Sender, account: str = "") -> Resolved:
        """Find or create the identity for `sender` and its customer.

        Must run inside a transaction.
        """
        address = normalize_address(sender.channel, sender.address)
        row = self.q1(
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
                    "UPDATE identities SET display_name=?, handle=?, account=? WHERE id=?",
                    (name, handle, account or row["account"], identity_id),
                )
            if keys and (sender.emails or sender.phones):  # an e-mail identity's own key never changes
                have = {r[0] for r in self.q("SELECT key FROM identity_keys WHERE identity_id=?", (identity_id,))}
                new = keys - have
                if new:
                    self.conn.executemany(
                        "INSERT OR IGNORE INTO identity_keys(identity_id, key) VALUES (?, ?)",
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
            name = sender.display_name or (f"@{sender.handle}" if sender.handle else address)
            customer_id = self.insert_customer(name)
        identity_id = self.conn.execute(
            "INSERT INTO identities(customer_id, channel, address, display_name, handle, account, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (customer_id, sender.channel, address, sender.display_name, sender.handle, account, now),
        ).lastrowid
        if keys:
            self.conn.executemany(
                "INSERT OR IGNORE INTO identity_keys(identity_id, key) VALUES (?, ?)",
                [(identity_id, k) for k in keys],
            )
            if len(owners) > 1:  # the new evidence joins customers that were apart
                customer_id = self._link_by_keys(customer_id, keys)
        return Resolved(identity_id, customer_id, new_customer)

    def known_identities(self, pairs) -> dict[tuple, Resolved]:
        """For a batch of (sender, account): those whose identity exists and would
        not change (same name, handle, account, no new evidence), read in a few
        queries instead of one or two per sender. The rest go through resolve_sender."""
        wanted: dict[tuple[str, str], list] = {}
        for pair in pairs:
            sender = pair[0]
            wanted.setdefault((sender.channel, normalize_address(sender.channel, sender.address)), []).append(pair)
        by_channel: dict[str, list[str]] = {}
        for channel, address in wanted:
            by_channel.setdefault(channel, []).append(address)
        rows = []
        for channel, addresses in by_channel.items():
            for i in range(0, len(addresses), 500):
                chunk = addresses[i:i + 500]
                rows += self.conn.execute(
                    "SELECT id, customer_id, channel, address, display_name, handle, account FROM identities"
                    f" WHERE channel=? AND address IN ({','.join('?' * len(chunk))})", (channel, *chunk)).fetchall()
        need_keys = [r[0] for r in rows if any(p[0].emails or p[0].phones for p in wanted[(r[2], r[3])])]
        keys: dict[int, set[str]] = {}
        for i in range(0, len(need_keys), 500):
            chunk = need_keys[i:i + 500]
            for identity_id, key in self.conn.execute(
                    f"SELECT identity_id, key FROM identity_keys WHERE identity_id IN ({','.join('?' * len(chunk))})",
                    chunk):
                keys.setdefault(identity_id, set()).add(key)
        out = {}
        for identity_id, customer_id, channel, address, name, handle, account in rows:
            for sender, acct in wanted[(channel, address)]:
                if ((sender.display_name or name) != name or (sender.handle or handle) != handle
                        or (acct or account) != account):
                    continue
                if (sender.emails or sender.phones) and not evidence_keys(sender) <= keys.get(identity_id, set()):
                    continue
                out[(sender, acct)] = Resolved(identity_id, customer_id)
        return out

    def _customers_with_keys(self, keys: set[str]) -> list[int]:
        """Live customers (merges followed) holding any of `keys`, oldest first."""
        marks = ",".join("?" * len(keys))
        rows = self.q(
            f"SELECT DISTINCT i.customer_id FROM identity_keys k JOIN identities i ON i.id = k.identity_id"
            f" WHERE k.key IN ({marks})",
            tuple(keys),
        )
        return sorted({self.live_id(r[0]) for r in rows})

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
            f"(customer_id=? AND json_extract(data, '$.new_customer') IN ({marks})) OR "
            f"(json_extract(data, '$.new_customer')=? AND customer_id IN ({marks}))) LIMIT 1",
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
                "INSERT OR IGNORE INTO identity_keys(identity_id, key) VALUES (?, ?)",
                [(identity_id, k) for k in sender_keys],
            )
            return self._link_by_keys(row["customer_id"], sender_keys) if sender_keys else row["customer_id"]


__all__ = ["IdentityMixin", "normalize_email", "normalize_phone", "normalize_address", "evidence_keys", "dumps"]
