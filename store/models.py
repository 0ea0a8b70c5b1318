"""Plain dataclasses that cross the store boundary.

Connectors build `InboundMessage`s; the console and the CLI get `Customer`,
`Message`, `Event`... back. Nobody outside `store/` ever sees a cursor or a
table name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.terms import CHANNELS, STATUSES  # noqa: F401  (defined once, in store/terms.py)

DIRECTIONS = ("in", "out", "note")
OUTBOX_STATES = ("queued", "sending", "sent", "failed")


@dataclass(frozen=True)
class Sender:
    """Who wrote an inbound message, as the channel names them."""

    channel: str  # "email" | "telegram" | "slack"
    address: str  # channel-native id: e-mail address, Telegram user id, Slack user id
    display_name: str = ""
    handle: str = ""  # Telegram @username, Slack user name
    # Extra evidence that links identities across channels automatically:
    # a Slack profile e-mail, a phone number from a shared Telegram contact.
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


@dataclass
class AttachmentIn:
    filename: str  # as the customer named it; sanitized by the store
    content_type: str
    data: bytes | None  # None: not downloaded (over a size cap) or spooled to `path`; see `size`
    inline: bool = False
    size: int | None = None
    path: str | None = None  # the content, already in a file (large mail attachments): the store moves it


@dataclass
class InboundMessage:
    """One normalized item from a connector.

    kind "message" is a new message; "edit" replaces the text of the message
    with the same external_id (the earlier text is kept); "delete" marks it
    deleted (the text is kept for the record).
    """

    channel: str
    account: str
    external_id: str
    sender: Sender
    text: str
    sent_at: float  # unix seconds, UTC
    subject: str | None = None
    html: str | None = None
    thread_key: str | None = None  # channel-native conversation key
    reply_to: str | None = None  # external id of the message this answers
    attachments: list[AttachmentIn] = field(default_factory=list)
    raw: bytes | None = None  # the source as received (MIME bytes, JSON)
    parse_error: str | None = None
    # Routing facts the connector needs to answer (chat id, Slack channel and
    # thread ts, Message-ID and References ...). Stored as JSON, opaque to the store.
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "message"  # "message" | "edit" | "delete"


@dataclass
class Identity:
    id: int
    customer_id: int
    channel: str
    address: str
    display_name: str
    handle: str
    keys: list[str] = field(default_factory=list)  # "email:a@b", "phone:+1555..."
    account: str = ""  # the account we last heard them on


@dataclass
class Customer:
    id: int
    name: str
    status: str
    snoozed_until: float | None
    assignee: str | None
    priority: int
    waiting_since: float | None
    last_inbound_at: float | None
    last_outbound_at: float | None
    last_channel: str | None
    unread: int
    created_at: float
    tags: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    # where each current fact came from: {key: {"actor", "at", "channel", "message_id"}}
    fact_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: list[Identity] = field(default_factory=list)


@dataclass
class Attachment:
    id: int
    message_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    path: str | None  # None when over the size cap (content not kept)


@dataclass
class Message:
    id: int
    customer_id: int
    identity_id: int | None
    channel: str  # "email" | "telegram" | "slack" | "note"
    account: str
    direction: str  # "in" | "out" | "note"
    external_id: str | None
    thread_key: str | None
    subject: str | None
    text: str
    html: str | None
    sent_at: float
    author: str | None  # agent name for outbound messages and notes
    reply_to: str | None = None
    parse_error: str | None = None
    edited_at: float | None = None
    previous_texts: list[str] = field(default_factory=list)
    deleted: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    # outbound only
    state: str | None = None  # queued | sending | sent | failed
    error: str | None = None
    attempts: int = 0
    uncertain: bool = False  # failed, but it may have been delivered: the agent checks before a retry
    delivered_at: float | None = None  # when the channel took it (a retry's time, not the queueing); None until sent


@dataclass
class Event:
    id: int
    at: float
    actor: str
    kind: str
    customer_id: int | None
    data: dict[str, Any]
    undone: bool = False


@dataclass
class OutboundMessage:
    """What the outbox hands a connector to send."""

    outbox_id: int
    message_id: int
    channel: str
    account: str
    to_address: str  # the identity's channel address
    text: str
    html: str | None = None
    subject: str | None = None
    thread_key: str | None = None
    parent: Message | None = None  # the inbound message being answered, if any
    attachments: list[Attachment] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. our Message-ID
    attempts: int = 1  # this attempt's number
    author: str | None = None
    parts_done: list[str] = field(default_factory=list)  # ids of parts delivered by earlier attempts
    on_part: Any = None  # callable(part id) the connector calls after delivering each part


@dataclass
class Receipt:
    """What the channel returned for a sent message."""

    external_id: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueueRow:
    customer_id: int
    name: str
    status: str
    waiting_since: float | None
    last_channel: str | None
    unread: int
    priority: int
    assignee: str | None
    snoozed_until: float | None
    preview: str
    channels: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class SearchHit:
    message_id: int | None
    customer_id: int
    customer_name: str
    channel: str
    sent_at: float | None
    snippet: str
    direction: str = ""  # "in" (the customer wrote), "out" (our reply); "" for a customer hit
    author: str = ""  # the agent who wrote an "out" message


@dataclass
class MergeSuggestion:
    customer_id: int
    other_id: int
    score: float
    evidence: list[str]
