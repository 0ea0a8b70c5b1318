"""Address lists as people copy them from a mail client: `Bill <president@whitehouse.gov>`,
`"Doe, John" <john@example.com>, ann@example.com` (RFC 5322 name-addr and addr-spec).

Parsed by the standard library's header registry (email.headerregistry), never by hand.
"""
from __future__ import annotations

from email import errors, policy
from email.headerregistry import Address


def parse_list(text: str) -> list[Address]:
    """The addresses in `text`, in order. Commas separate them (a ';' too, as Outlook
    writes lists, when no name is quoted). ValueError names the first part that is not
    an e-mail address (no @domain, unbalanced <>, a line break ...)."""
    if "\r" in text or "\n" in text:
        raise ValueError("an address list is one line")
    if '"' not in text:
        text = text.replace(";", ",")
    try:
        header = policy.default.header_factory("cc", text)
        addresses = [a for group in header.groups for a in group.addresses]
    except Exception:  # the parser's own slips (IndexError on "ann@" in Python 3.11)
        raise ValueError(f"not an e-mail address: {text.strip()}") from None
    for a in addresses:
        if not a.username or not a.domain:
            raise ValueError(f"not an e-mail address: {str(a).strip() or text.strip()}")
    if any(not isinstance(d, errors.ObsoleteHeaderDefect) for d in header.defects):  # empty ", ," entries are fine
        raise ValueError(f"not an e-mail address list: {text.strip()}")
    return addresses


def parse_one(text: str) -> Address:
    """Exactly one address (a stored Cc entry); ValueError otherwise."""
    found = parse_list(text)
    if len(found) != 1:
        raise ValueError(f"not one e-mail address: {text.strip()}")
    return found[0]


def short_name(entry: str) -> str:
    """How a person names an address briefly: its display name, else the address."""
    try:
        a = parse_one(entry)
    except ValueError:
        return entry
    return a.display_name or a.addr_spec
