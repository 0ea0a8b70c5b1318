"""Channel badges and small shared bits of styling."""
from __future__ import annotations

from store.terms import Channel

BADGE = {"email": "em", "telegram": "tg", "slack": "sl", "note": "nt"}
CHANNEL_NAME = {**{c.value: c.label for c in Channel}, "note": "note"}
# Rich colour names that read well on both dark and light themes.
COLOR = {"email": "#5f9ee8", "telegram": "#2bb3c0", "slack": "#c678dd", "note": "#d19a66"}


def badge(channel: str | None) -> str:
    return BADGE.get(channel or "", (channel or "?")[:2])


def color(channel: str | None) -> str:
    return COLOR.get(channel or "", "grey50")
