"""Tags: one spelling for one tag, wherever it is typed.

As in Front and Help Scout, tags are case-insensitive. omnidesk stores them in one
form, so "VIP", "#vip" and " vip " are one tag and `tag:vip` finds them all:

    normalize_tag("#VIP")            -> "vip"
    normalize_tag("Address Change")  -> "address-change"   (spaces become "-": a tag is
                                                             one word in search, tag:address-change)
    parse_tags("shipping,Address Change, #vip") -> ["shipping", "address-change", "vip"]

A leading "#" is how tags are shown, never part of one. Control characters go, case
folds to lower case, runs of white space become one "-". A tag is at most MAX_LEN
characters; an empty one or one with a comma is refused (TagError, a ValueError).
"""
from __future__ import annotations

import re

from store.errors import OmnideskError
from store.text import clean

__all__ = ["MAX_LEN", "TagError", "normalize_tag", "parse_tags", "renormalize_stored_tags"]

MAX_LEN = 50


class TagError(OmnideskError, ValueError):
    """Not a usable tag; the message says why."""


def normalize_tag(text: object) -> str:
    """The stored form of one tag (see the module doc). TagError when nothing is left, it is too long or it
    holds a comma."""
    tag = clean(text, single_line=True).strip().lstrip("#").strip().lower()
    tag = re.sub(r"\s+", "-", tag)
    if not tag:
        raise TagError(f"a tag cannot be empty (got {str(text)[:40]!r})")
    if "," in tag:
        raise TagError(f"{tag[:40]!r}: a tag cannot contain a comma (commas separate tags)")
    if len(tag) > MAX_LEN:
        raise TagError(f"{tag[:40]}…: a tag is at most {MAX_LEN} characters")
    return tag


def parse_tags(text: str | list[str]) -> list[str]:
    """Tags typed as "a, b, #c" (or several such strings) -> their stored forms, each once,
    in the order given; empty pieces between commas are skipped."""
    pieces = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for piece in pieces:
        for part in piece.split(","):
            if part.strip().lstrip("#").strip():
                tag = normalize_tag(part)
                if tag not in out:
                    out.append(tag)
    return out


def renormalize_stored_tags(conn) -> None:
    """Migration step (SQLite and PostgreSQL alike): every stored tag in its normalized
    form; a customer with "VIP" and "#vip" keeps one "vip". A stored tag that cannot be
    normalized (empty after the cleaning) is dropped; one too long is kept as cleaned."""
    rows = conn.execute("SELECT customer_id, tag FROM tags").fetchall()
    for customer_id, tag in rows:
        try:
            new = normalize_tag(tag)
        except TagError:
            new = re.sub(r"\s+", "-", clean(tag, single_line=True).strip().lstrip("#").strip().lower()).replace(",", "-")
        if new == tag:
            continue
        conn.execute("DELETE FROM tags WHERE customer_id = ? AND tag = ?", (customer_id, tag))
        if new:
            conn.execute("INSERT INTO tags(customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (customer_id, new))
