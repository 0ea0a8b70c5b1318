"""The desk's words, defined once: channels, customer statuses, queue filters.

They are `StrEnum`s, so a member is also its plain string (`Status.PENDING ==
"pending"`): the store keeps the string, JSON shows it, argparse offers it.
Everything that names a channel, a status or a queue filter uses these.
"""
from __future__ import annotations

from enum import StrEnum


# The name given to whoever sent a mail without a usable address (no From, Sender,
# Reply-To or Return-Path): a placeholder, not what anyone is called, so it is never
# evidence that two customers are one person (merge suggestions).
UNKNOWN_SENDER = "Unknown sender"


class Channel(StrEnum):
    EMAIL = "email"
    TELEGRAM = "telegram"
    SLACK = "slack"

    @property
    def label(self) -> str:
        """The name people use: e-mail, Telegram, Slack."""
        return {"email": "e-mail", "telegram": "Telegram", "slack": "Slack"}[self.value]


class Status(StrEnum):
    """Where a customer's case stands."""

    OPEN = "open"        # ours to answer
    PENDING = "pending"  # we wait on the customer (was "waiting" before schema v12)
    SNOOZED = "snoozed"  # hidden until a time
    DONE = "done"


class QueueFilter(StrEnum):
    """Which customers the queue lists."""

    WAITING = "waiting"  # open, and their last message is unanswered: they wait on us (the default)
    OPEN = "open"
    MINE = "mine"        # assigned to me
    PENDING = "pending"  # status pending: we wait on them
    SNOOZED = "snoozed"
    DONE = "done"
    FAILED = "failed"    # our last reply to them failed (or may not have arrived)
    ALL = "all"


# The same as plain strings (some libraries check `type(x) is str`).
CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
QUEUE_FILTERS: tuple[str, ...] = tuple(f.value for f in QueueFilter)
# Statuses an agent sets by name (snoozed needs a time: `snooze`).
SETTABLE_STATUSES: tuple[str, ...] = (Status.OPEN.value, Status.PENDING.value, Status.DONE.value)
# Old words still understood where people type a status (CLI, rules.toml), with a note.
OLD_STATUS_WORDS: dict[str, str] = {"waiting": Status.PENDING.value}
# The kinds of event in the log (`omnidesk events --kind`): agents' actions, then what the
# engine and automation record.
EVENT_KINDS: tuple[str, ...] = (
    "assign", "address", "fact", "mark_sent", "merge", "note", "priority", "rename", "reply", "retry", "split",
    "status", "tag", "undo", "untag",
    "auto_reply", "breach", "fact_seen", "hook_failed", "rule", "rule_error", "satisfaction", "send_failed",
    "skipped", "survey", "survey_skipped",
)
