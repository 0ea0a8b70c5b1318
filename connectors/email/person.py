"""Who wrote a mail, from all the evidence, not From alone.

Web forms send from one no-reply address and put the visitor in Reply-To;
mailing lists and groups that rewrite From for DMARC ("Alice via Group"
<group@lists.example.org>) keep the writer in X-Original-From or Reply-To;
a secretary sends "on behalf of" (Sender differs from From). Such a relay
address must never become a customer identity, or every visitor of a form
becomes one customer and a reply meant for one reaches another. The relay is
kept on the message as "via".

`person(heads)` -> Person: the writer's address and name, the relay (if any),
and where a reply to this mail goes (the address the mail asks replies to go
to, unless that is the relay or a list).
"""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from connectors.email.decode import clean_text, decode_header, parse_address

# Local parts that no person reads: form mailers, notification senders.
_NO_REPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply[-_.+].*|.*[-_.+]no[-_.]?reply|"
    r"mailer|wordpress|www-?data|apache|nginx|nobody|httpd|web(?:site)?[-_.]?forms?|forms?|contact[-_.]?forms?|"
    r"notifications?|notify|auto(?:mated)?[-_.]?(?:mail|sender)?|bounces?(?:[-+].*)?)$", re.I)
# Shared role mailboxes: not one person when the mail names someone in Reply-To.
_ROLE = re.compile(r"^(?:info|contact|hello|office|admin|sales|support|service|team|webmaster|enquiries|"
                   r"inquiries|mail|help|orders?|shop|store)$", re.I)
# 'Alice Archer' via Shop Group / Alice Archer via Mailman-List
_VIA = re.compile(r"^\s*['\"]?(.+?)['\"]?\s+via\s+(.+?)\s*$", re.I)
# Sympa: "Some List (on behalf of "McLaren, Terry")" / "(on behalf of terry@example.edu)"
_ON_BEHALF = re.compile(r"\(on behalf of\s+\\?[\"']?(.+?)\\?[\"']?\s*\)", re.I)


@dataclass
class Person:
    address: str  # lower-cased; "" when the mail names nobody usable
    name: str
    via: str = ""  # the relay's address when the writer is not in From
    via_name: str = ""
    reply_to: str = ""  # where a reply to this mail goes; "" = `address`
    on_behalf_of: str = ""  # Sender, when a person sent for the From person


def _addr(heads: dict[str, str], field: str, hint: str | None) -> tuple[str, str]:
    value = decode_header(heads.get(field), hint)
    if not value:
        return "", ""
    if field == "reply-to" and "," in value and len(value) < 2000:  # several: the first that is an address
        for name, addr in email.utils.getaddresses([value]):
            if "@" in addr:
                return clean_text(name).strip(' "\''), addr.strip().lower()
    name, addr = parse_address(value)
    addr = (addr or "").strip().lower()
    return (clean_text(name).strip(' "\''), addr) if "@" in addr else ("", "")


def _local(addr: str) -> str:
    return addr.rpartition("@")[0].split("+")[0]


def is_relay_address(addr: str) -> bool:
    """A no-reply / form mailer address: never a person."""
    return bool(addr) and bool(_NO_REPLY.match(_local(addr)))


def _list_addresses(heads: dict[str, str]) -> set[str]:
    """The list's own addresses (List-Post, List-Id as an address)."""
    out = set()
    post = heads.get("list-post") or ""
    for m in re.finditer(r"mailto:([^>\s,?]+)", post, re.I):
        out.add(m.group(1).lower())
    list_id = re.search(r"<([^<>\s]+)>", heads.get("list-id") or "")
    if list_id:
        ident = list_id.group(1).lower()
        local, _, domain = ident.partition(".")
        out.add(f"{local}@{domain}")
    return out


def person(heads: dict[str, str], hint: str | None = None, own_address: str = "") -> Person:
    """`own_address`: ours; a web form that sends as us (From: our address,
    Reply-To: the visitor) is a relay too, not our own mail."""
    from_name, from_addr = _addr(heads, "from", hint)
    rt_name, rt_addr = _addr(heads, "reply-to", hint)
    sender_name, sender_addr = _addr(heads, "sender", hint)
    orig_name, orig_addr = _addr(heads, "x-original-from", hint)
    lists = _list_addresses(heads) if heads.get("list-id") or heads.get("list-post") else set()
    via = _VIA.match(from_name) if from_name and len(from_name) < 300 else None  # the regex is quadratic
    # Reply-To that names a person (not the list, the relay or another no-reply)
    rt_person = rt_addr if rt_addr and rt_addr != from_addr and rt_addr not in lists \
        and not is_relay_address(rt_addr) and rt_addr != own_address else ""

    if not from_addr:  # no usable From: Sender, Reply-To, Return-Path
        for field in ("sender", "reply-to", "return-path"):
            name, addr = _addr(heads, field, hint)
            if addr:
                return Person(addr, name)
        return Person("", "")

    behalf = _ON_BEHALF.search(from_name) if from_name and len(from_name) < 300 else None
    if behalf and lists:
        if "@" in behalf.group(1) and not orig_addr:
            orig_name, orig_addr = "", behalf.group(1).strip().lower()
        elif not orig_name:
            orig_name = behalf.group(1)
    relay = False
    if from_addr in lists or (lists and (via or orig_addr)):
        relay = True  # a list that rewrote From
    elif via and (orig_addr or rt_person):
        relay = True  # Google Groups style "X via Group"
    elif is_relay_address(from_addr) or (_ROLE.match(_local(from_addr)) and rt_person) or \
            (own_address and from_addr == own_address and rt_person):
        relay = bool(orig_addr or rt_person)  # a form mailer that names the visitor
    if relay:
        if orig_addr and orig_addr != from_addr:
            addr, name = orig_addr, orig_name
        elif rt_person:
            addr, name = rt_person, rt_name
        else:  # a list that names nobody else: the writer is From, as far as we can know
            return Person(from_addr, via.group(1) if via else orig_name or from_name, via=from_addr,
                          via_name=from_name)
        if not name and via:
            name = via.group(1)
        name = name or orig_name
        return Person(addr, name, via=from_addr, via_name=from_name,
                      reply_to=rt_person if rt_person and rt_person != addr else "")
    on_behalf = sender_addr if sender_addr and sender_addr != from_addr and sender_addr not in lists \
        and not is_relay_address(sender_addr) and "bounce" not in sender_addr else ""
    return Person(from_addr, from_name, reply_to=rt_person, on_behalf_of=on_behalf)


# "Email: jane@example.com" / "Name: Jane Roe" lines of a form mailer's body
_FORM_EMAIL = re.compile(r"^[ \t*]*(?:e-?mail(?: address)?|your e-?mail|reply-to|from)[ \t*]*[:=][ \t]*<?"
                         r"([^\s<>@,;]+@[^\s<>@,;]+\.[^\s<>@,;]+?)>?[ \t]*$", re.I | re.M)
_FORM_NAME = re.compile(r"^[ \t*]*(?:name|your name|full name)[ \t*]*[:=][ \t]*([^\n]{1,80}?)[ \t]*$", re.I | re.M)


def from_form_body(who: Person, text: str) -> Person:
    """A no-reply form mailer that names the visitor only in the body ("Email: ...").
    Without this every visitor would be one customer, the form."""
    if who.via or not is_relay_address(who.address):
        return who
    head = text[:4000]
    found = _FORM_EMAIL.search(head)
    if not found or is_relay_address(found.group(1)):
        return who
    name = _FORM_NAME.search(head)
    return Person(found.group(1).lower(), name.group(1).strip() if name else "", via=who.address, via_name=who.name)
