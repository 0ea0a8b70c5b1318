"""The selected customer's profile: who they are, how to reach them, and how
long this case has engaged us (store.engagement, read with the timeline)."""
from __future__ import annotations

import time
from typing import Callable

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from store.timefmt import format_age, format_clock
from console.widgets.badges import CHANNEL_NAME, badge, color
from console.widgets.safe_text import one_line
from store.models import Customer, MergeSuggestion


class ProfileView(Static):
    DEFAULT_CSS = """
    ProfileView { padding: 0 1; }
    """

    def __init__(self, clock: Callable[[], float] = time.time, **kw):
        super().__init__("", **kw)
        self.clock = clock
        self.customer: Customer | None = None
        self.suggestions: list[tuple[MergeSuggestion, str]] = []
        self.engaged: dict | None = None  # store.engagement() of the current case
        self.earlier: dict[str, list[dict]] = {}  # store.fact_history(): earlier values per fact
        self.notes: list = []  # the newest internal notes (store.models.Message), newest first

    def show_customer(self, customer: Customer | None, suggestions: list | None = None,
                      engaged: dict | None = None, earlier: dict | None = None, notes: list | None = None) -> None:
        if customer is None or self.customer is None or customer.id != self.customer.id:
            self.suggestions = []
            self.engaged = None
            self.earlier = {}
            self.notes = []
        if notes is not None:
            self.notes = notes
        self.customer = customer
        if suggestions is not None:
            self.suggestions = suggestions
        if engaged is not None:
            self.engaged = engaged
        if earlier is not None:
            self.earlier = earlier
        self.update(self._render_profile())

    def _facts(self, c: Customer, now: float) -> list[Text]:
        muted = Style(dim=True)
        out = [Text(""), Text("Facts", style="bold underline")]
        if not c.facts:
            return out + [Text("none · e adds one", style=muted), Text("")]
        for key, value in c.facts.items():
            line = Text(one_line(key, 24) + " ", style=muted, end="")
            line.append(one_line(value, 80), Style(bold=True))
            src = c.fact_sources.get(key) or {}
            where = (CHANNEL_NAME.get(src["channel"], src["channel"]) if src.get("channel")
                     else f"by {one_line(src['actor'], 20)}" if src.get("actor") else "")
            if where:
                age = format_age(max(0.0, now - src["at"])) if src.get("at") else ""
                age = f", {'just now' if age == 'now' else age + ' ago'}" if age else ""
                line.append(f" · {where}{age}", muted)
            out.append(line)
            earlier = self.earlier.get(key) or []
            if earlier:
                out.append(Text("  earlier: " + ", ".join(one_line(e["value"], 30) for e in earlier[:3]), style=muted))
        return out + [Text("")]

    def _render_profile(self):
        c = self.customer
        if c is None:
            return Text("No customer selected.", style="italic")
        muted = Style(dim=True)
        now = self.clock()
        out: list = []
        title = Text(one_line(c.name or f"#{c.id}", 60), style="bold", end="")
        title.append(f"  #{c.id}", muted)
        out.append(title)
        state = Text(c.status, style="bold", end="")
        if c.status == "snoozed" and c.snoozed_until:
            state.append(f" until {format_clock(c.snoozed_until, now)}")
        if c.waiting_since and c.status == "open":
            state.append(f" · waiting {format_age(now - c.waiting_since)}", Style(color="yellow"))
        out.append(state)
        out += self._facts(c, now)  # first: what the customer already told us, on any channel
        engaged = self.engaged
        if engaged and engaged.get("messages"):  # the wording of `omnidesk show`
            n, seconds = engaged["messages"], engaged["seconds"]
            out.append(Text(f"this case: {n} message{'s' if n != 1 else ''} on {', '.join(engaged['channels'])}, "
                            f"{format_age(seconds) if seconds >= 60 else '<1m'} engaged", style=muted))
        out.append(Text("assigned to " + one_line(c.assignee, 30) if c.assignee else "unassigned", style=muted))
        if c.priority:
            out.append(Text(f"priority {c.priority}", style=muted))
        out.append(Text(""))
        out.append(Text("Reach", style="bold underline"))
        for ident in c.identities:
            line = Text(end="")
            line.append(f"{badge(ident.channel)} ", Style(color=color(ident.channel), bold=True))
            line.append(one_line(ident.address, 60))
            if ident.handle:
                line.append(f" @{one_line(ident.handle, 30)}", muted)
            if ident.display_name and ident.display_name != c.name:
                line.append(f" ({one_line(ident.display_name, 30)})", muted)
            out.append(line)
        out.append(Text(""))
        out.append(Text("Tags", style="bold underline"))
        out.append(Text(" ".join("#" + one_line(t, 30) for t in c.tags) or "none", style="" if c.tags else muted))
        out.append(Text(""))
        out.append(Text("Notes", style="bold underline"))
        for note in self.notes:
            line = Text(one_line(note.text, 200), end="")
            line.append(f" · {one_line(note.author or '', 20)} {format_clock(note.sent_at, now)}", muted)
            out.append(line)
        if not self.notes:
            out.append(Text("none · n writes one", style=muted))
        if self.suggestions:
            out.append(Text(""))
            out.append(Text("Maybe the same person", style="bold underline"))
            for s, name in self.suggestions[:3]:
                line = Text(f"#{s.other_id} {one_line(name, 30)}", end="")
                line.append(f" · {one_line('; '.join(s.evidence), 80)}", muted)
                out.append(line)
            out.append(Text("m merges", style=muted))
        out.append(Text(""))
        out.append(Text("e edits name and facts · m merges with a duplicate · x splits an identity out", style=muted))
        out.append(Text(f"customer since {format_clock(c.created_at, now)}", style=muted))
        for part in out:
            part.end = "\n"
        return Group(*out)
