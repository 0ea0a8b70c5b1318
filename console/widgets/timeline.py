"""One customer's history: every channel interleaved, newest at the bottom.

Drawn with the Line API from pre-rendered strips, so a long history scrolls
without a widget per message. Messages, notes and events (merge, status,
tags ...) are items; the cursor walks the messages and notes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from rich.console import Group
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message as TMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip

from connectors.formatting import plain_text
from console import keymap, sentences
from console.handoff import channel_switches
from store.timefmt import format_clock
from console.widgets.badges import CHANNEL_NAME, badge, color
from console.widgets.styled_lines import StyledLines
from console.widgets.safe_text import clean, one_line, safe
from store.models import Customer, Event, Message

FOLDED_LIMIT = 4000  # characters shown before "z to show all"
UNFOLDED_LIMIT = 200_000
HIDDEN_EVENTS = {"reply", "note"}  # shown as messages already


@dataclass
class Item:
    kind: str  # "message" | "event" | "switch" | "older"
    at: float
    obj: Any

    @property
    def key(self) -> tuple:
        return (self.kind, getattr(self.obj, "id", 0))


def message_fold(m: Message):
    """How the timeline shows `m`: new text first, signature and quoted history
    folded (connectors.email.quotes.Fold); CRLF and LF mail fold alike."""
    from connectors.email.quotes import Fold, fold, normalize

    text = m.text or ""
    meta = m.meta if isinstance(m.meta, dict) else {}
    if m.channel != "email" or m.direction != "in":
        return Fold(normalize(text), text=normalize(text))
    return fold(text, meta.get("new_text"), meta.get("signature"))


def split_quoted(m: Message) -> tuple[str, str]:
    """(new text, folded rest) for display. The full text stays in the store."""
    f = message_fold(m)
    return f.new, "\n\n".join(p for p in (f.signature, f.quoted) if p) or (f.text if f.interleaved else "")


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def describe_event(ev: Event, me: str | None = None) -> str:
    """The event as a sentence ("you set status pending"); see console/sentences.py."""
    return sentences.describe(ev, me)


class TimelineView(StyledLines, ScrollView, can_focus=True):
    BINDINGS = keymap.bindings("timeline")
    COMPONENT_CLASSES = {
        "timeline--gutter", "timeline--meta", "timeline--event", "timeline--note", "timeline--note-label",
        "timeline--out", "timeline--failed", "timeline--queued", "timeline--sent", "timeline--quoted",
        "timeline--name", "timeline--subject", "timeline--attachment", "timeline--edited", "timeline--empty",
        "timeline--switch",
    }
    DEFAULT_CSS = """
    TimelineView { background: $background; }
    TimelineView > .timeline--gutter { color: $accent; }
    TimelineView > .timeline--meta { color: $text-muted; }
    TimelineView > .timeline--event { color: $text-disabled; }
    TimelineView > .timeline--note { background: $warning 8%; }
    TimelineView > .timeline--note-label { color: $warning; text-style: bold; }
    TimelineView > .timeline--out { color: $success; text-style: bold; }
    TimelineView > .timeline--failed { color: $error; text-style: bold; }
    TimelineView > .timeline--queued { color: $warning; }
    TimelineView > .timeline--sent { color: $success; }
    TimelineView > .timeline--quoted { color: $text-muted; text-style: italic; }
    TimelineView > .timeline--name { color: $text; text-style: bold; }
    TimelineView > .timeline--subject { color: $text; text-style: bold; }
    TimelineView > .timeline--attachment { color: $text-secondary; }
    TimelineView > .timeline--edited { color: $text-muted; text-style: italic; }
    TimelineView > .timeline--empty { color: $text-muted; text-style: italic; }
    TimelineView > .timeline--switch { color: $accent; text-style: bold; }
    """

    class Request(TMessage):
        """The agent asked for something on `message` (the selected one, or None)."""

        def __init__(self, message: Message | None = None) -> None:
            super().__init__()
            self.message = message

    class Back(Request):
        """Back to the queue."""

    class LoadOlder(Request):
        """Show older messages than the ones loaded."""

    class Retry(Request):
        """Send this failed reply again."""

    class SaveAttachments(Request):
        """Save this message's attachments."""

    class OpenAttachment(Request):
        """Open one of this message's attachments."""

    def __init__(self, clock: Callable[[], float] = time.time, me: str | None = None, **kw):
        super().__init__(**kw)
        self.clock = clock
        self.me = me  # the agent at this console: their own events say "you"
        self.customer: Customer | None = None
        self.items: list[Item] = []
        self.unfolded: set[int] = set()
        self.cursor: int | None = None  # index into items
        self._strips: list[Strip] = []
        self._owner: list[int] = []  # line -> item index
        self._ranges: list[tuple[int, int]] = []  # item index -> (first line, line count)
        self._cache: dict[tuple, list[Strip]] = {}
        self._width = 0
        self.has_older = False

    # -- data -------------------------------------------------------------------
    def show(self, customer: Customer | None, messages: list[Message], events: list[Event],
             focus_message: int | None = None, keep_position: bool = False, has_older: bool = False) -> None:
        same = customer is not None and self.customer is not None and customer.id == self.customer.id
        old_key = self.items[self.cursor].key if (same and self.cursor is not None and self.items) else None
        last = self._last_selectable()
        old_newest = self.items[last].key if (same and last is not None) else None
        at_bottom = self.scroll_offset.y >= self.max_scroll_y - 1
        old_y = self.scroll_offset.y
        if not same:
            self.unfolded = set()
            self._cache.clear()
        self.customer = customer
        self.has_older = has_older
        items = [Item("message", m.sent_at, m) for m in messages]
        items += [Item("event", e.at, e) for e in events if e.kind not in HIDDEN_EVENTS]
        at = {m.id: m.sent_at for m in messages}
        items += [Item("switch", at[s.id], s) for s in channel_switches(messages)]
        order = {"switch": 0, "message": 1}  # a switch mark goes right before its message
        items.sort(key=lambda i: (i.at, order.get(i.kind, 2), i.obj.id))
        if messages and events:  # events older than the first loaded message are not interesting here
            first = messages[0].sent_at if has_older else float("-inf")
            items = [i for i in items if i.kind == "message" or i.at >= first]
        if has_older:
            items.insert(0, Item("older", float("-inf"), None))
        self.items = items
        self._layout()
        target = None
        if focus_message is not None:
            target = next((n for n, i in enumerate(items) if i.kind == "message" and i.obj.id == focus_message), None)
        elif old_key is not None and keep_position:
            target = next((n for n, i in enumerate(items) if i.key == old_key), None)
        if target is None:
            target = self._last_selectable()
        self.cursor = target
        if focus_message is not None and target is not None:
            self._center(target)
            self._again(self._center, target)
        elif keep_position and same and not at_bottom:
            self.scroll_to(y=old_y, animate=False, immediate=True)
        elif keep_position and same and target is not None and self.items[target].key == old_newest:
            self.scroll_end(animate=False, immediate=True)  # at the end (G) and nothing new: it stays there
        else:
            self._show_newest(target)
            self._again(self._show_newest, target)
        self.refresh()

    def _again(self, place: Callable[[int], None], n: int | None) -> None:
        """Place the view once more after the next refresh: shown while the pane was
        still being laid out (the first customer opened), there was nothing to scroll yet."""
        items = self.items

        def again() -> None:
            if self.items is items and self.cursor == n and n is not None and n < len(self._ranges):
                place(n)
        self.call_after_refresh(again)

    def _show_newest(self, n: int | None) -> None:
        """The end of the history, unless the newest message does not fit from its header
        down: then its start (a long mail is read from the top, not from mid-forward)."""
        self.scroll_end(animate=False, immediate=True)
        if n is not None and n < len(self._ranges):
            first = self._ranges[n][0]
            if first < self.scroll_offset.y:
                self.scroll_to(y=first, animate=False, immediate=True)

    def clear(self) -> None:
        self.show(None, [], [])

    @property
    def selected(self) -> Message | None:
        if self.cursor is None or not (0 <= self.cursor < len(self.items)):
            return None
        item = self.items[self.cursor]
        return item.obj if item.kind == "message" else None

    # -- layout -------------------------------------------------------------------
    def on_resize(self) -> None:
        self._fit_width()

    def watch_show_vertical_scrollbar(self) -> None:
        # the scrollbar comes or goes when the content grows or shrinks (a merge adds a
        # channel's messages): lines laid out for the old width would lose their last column
        self.call_after_refresh(self._fit_width)

    def _fit_width(self) -> None:
        if max(10, self.scrollable_content_region.width or self.size.width) != self._width:
            self._cache.clear()
            y = self.scroll_offset.y
            self._layout()
            self.scroll_to(y=y, animate=False, immediate=True)
            if self.cursor is not None and self.cursor < len(self._ranges):
                self._reveal(self.cursor)  # the selected message stays in view when lines re-wrap

    def styles_changed(self) -> None:
        self._cache.clear()
        self._layout()

    def _layout(self) -> None:
        width = max(10, self.scrollable_content_region.width or self.size.width)
        self._width = width
        strips, owner, ranges = [], [], []
        for n, item in enumerate(self.items):
            block = self._block(item, width - 2)
            ranges.append((len(strips), len(block)))
            strips.extend(block)
            owner.extend([n] * len(block))
        self._strips, self._owner, self._ranges = strips, owner, ranges
        self.virtual_size = Size(0, len(strips))
        self.refresh()

    def _block(self, item: Item, width: int) -> list[Strip]:
        folded = not (item.kind == "message" and item.obj.id in self.unfolded)
        state = getattr(item.obj, "state", None)
        key = (item.key, width, folded, state, getattr(item.obj, "text", None) if item.kind == "message" else None,
               getattr(item.obj, "undone", None), getattr(item.obj, "error", None), getattr(item.obj, "edited_at", None),
               getattr(item.obj, "deleted", None))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        renderable = self._render_item(item, width, folded)
        console = self.app.console
        options = console.options.update_width(width).update(highlight=False, markup=False)
        lines = console.render_lines(renderable, options, pad=True)
        strips = [Strip(line, width) for line in lines]
        if item.kind == "message" and item.obj.direction == "note":
            note = self._style("timeline--note")
            strips = [s.apply_style(note) for s in strips]
        strips.append(Strip.blank(width))
        self._cache[key] = strips
        return strips

    def _attachment_lines(self, n: int, att, width: int) -> list[Text]:
        """`▪ [1] name  type, size`: never wrapped inside a value. A long name is
        shortened; when even that does not fit, type and size get a line of their own."""
        style = self._style("timeline--attachment")
        head = f"  ▪ [{n}] "
        meta = f"{one_line(att.content_type, 40)}, {human_size(att.size)}"
        kept = "" if att.path else "not kept (over the size limit)"
        name = Text(one_line(att.filename, 80), end="")
        room = width - len(head) - len(meta) - 2 - (len(kept) + 3 if kept else 0)
        lines = []
        if room >= 12 or name.cell_len <= room:
            name.truncate(max(room, 1), overflow="ellipsis")
            lines.append(Text(head, style=style, end="") + name + Text(f"  {meta}" + (f" · {kept}" if kept else ""),
                                                                         style=style))
        else:  # narrow: the name on its line, then type and size, then the note
            name.truncate(max(1, width - len(head)), overflow="ellipsis")
            lines.append(Text(head, style=style, end="") + name)
            lines += [Text(" " * len(head) + t, style=style, end="") for t in (meta, kept) if t]
        for line in lines:
            line.stylize(style)
            line.no_wrap, line.overflow = True, "ellipsis"
        return lines

    def _header(self, left: Text, right: Text, width: int) -> Text:
        room = width - right.cell_len - 1
        left.truncate(max(1, room), overflow="ellipsis", pad=True)
        return left + Text(" ") + right

    def _render_item(self, item: Item, width: int, folded: bool):
        now = self.clock()
        if item.kind == "older":
            return Text("↑ older messages: k on the first one (or g) loads them", style=self._style("timeline--event"))
        if item.kind == "switch":
            t = Text(f"⇄ {item.obj.describe()}", style=self._style("timeline--switch"), end="\n")
            return t
        if item.kind == "event":
            ev: Event = item.obj
            t = Text(f"· {format_clock(ev.at, now)}  ", style=self._style("timeline--event"), end="")
            t.append(clean(describe_event(ev, self.me), single_line=True), self._style("timeline--event"))
            t.end = "\n"
            return t
        m: Message = item.obj
        left = Text(end="")
        # a reply shows when it went out (after a retry that is later than when it was written)
        right = Text(format_clock(m.delivered_at or m.sent_at, now), style=self._style("timeline--meta"), end="")
        if m.direction == "note":
            left.append("note", self._style("timeline--note-label"))
            left.append(f" · {one_line(m.author or 'agent', 30)}", self._style("timeline--meta"))
        elif m.direction == "out":
            left.append(f" {badge(m.channel)} ", Style(color="black", bgcolor=color(m.channel), bold=True))
            left.append(f" you → {CHANNEL_NAME.get(m.channel, m.channel)}", self._style("timeline--out"))
            left.append(f" · {one_line(m.author or '', 24)}", self._style("timeline--meta"))
            state = m.state or "sent"
            label = {"queued": "◌ queued", "sending": "◌ sending", "sent": "✓ sent", "failed": "✗ failed"}.get(state, state)
            right = Text(label + "  ", style=self._style(f"timeline--{'failed' if state == 'failed' else 'queued' if state in ('queued', 'sending') else 'sent'}"),
                         end="") + right
        else:
            left.append(f" {badge(m.channel)} ", Style(color="black", bgcolor=color(m.channel), bold=True))
            left.append(" ")
            left.append(one_line(self._sender_name(m), 60), self._style("timeline--name"))
            meta = m.meta if isinstance(m.meta, dict) else {}
            if meta.get("via"):  # a form mailer or list carried it; the person is named above
                left.append(f" via {one_line(meta.get('via_name') or meta['via'], 40)}", self._style("timeline--meta"))
            if meta.get("bounce"):
                left.append(" · delivery report", self._style("timeline--meta"))
            elif meta.get("auto_reply"):
                left.append(" · automatic reply", self._style("timeline--meta"))
        parts: list = [self._header(left, right, width)]
        if m.subject and m.channel == "email":
            parts.append(Text("  " + one_line(m.subject, 300), style=self._style("timeline--subject"), end=""))
        shown = message_fold(m)
        new = shown.text if shown.interleaved and not folded else shown.new
        if m.direction == "out":  # the agent wrote Markdown: show it as read, not its markup
            new = plain_text(new)
        limit = FOLDED_LIMIT if folded else UNFOLDED_LIMIT
        body = safe(new[:limit].strip("\n"))
        if m.deleted:
            body.stylize("strike")
            parts.append(Text("  deleted by the customer", style=self._style("timeline--edited"), end=""))
        if m.parse_error:
            parts.append(Text("  could not be read fully: " + one_line(m.parse_error, 120), style=self._style("timeline--failed"), end=""))
        parts.append(Padding(body, (0, 0, 0, 2)))
        if len(new) > limit:
            parts.append(Text(f"  … {len(new) - limit:,} more characters (z shows all)", style=self._style("timeline--quoted"), end=""))
        if shown.folded:
            if folded:
                parts.append(Text(f"  ┄ {shown.summary()} · z to show", style=self._style("timeline--quoted"), end=""))
            else:
                for rest in (shown.signature, shown.quoted):
                    if rest:
                        parts.append(Padding(safe(rest[:limit], style=self._style("timeline--quoted")), (0, 0, 0, 4)))
        if m.previous_texts:
            count = len(m.previous_texts)
            when = f" {format_clock(m.edited_at, now)}" if m.edited_at else ""
            parts.append(Text(f"  ✎ edited{when}", style=self._style("timeline--edited"), end=""))
            shown = m.previous_texts if not folded else m.previous_texts[-1:]
            for old in shown:
                parts.append(Text("    was: " + one_line(old, 400 if not folded else 120), style=self._style("timeline--edited"), end=""))
            if folded and count > 1:
                parts.append(Text(f"    … {count - 1} earlier version{'s' if count > 2 else ''} (z)", style=self._style("timeline--edited"), end=""))
        for n, att in enumerate(m.attachments, 1):
            parts.extend(self._attachment_lines(n, att, width))
        if m.direction == "out" and m.state == "failed":
            parts.append(Text(f"  ✗ {one_line(m.error or 'failed', 300)} · R to retry", style=self._style("timeline--failed"), end=""))
        elif m.direction == "out" and m.state in ("queued", "sending") and m.error:
            parts.append(Text(f"  retrying: {one_line(m.error, 200)}", style=self._style("timeline--queued"), end=""))
        for part in parts:
            if isinstance(part, Text):
                part.end = "\n"
        return Group(*parts)

    def _sender_name(self, m: Message) -> str:
        if self.customer:
            for ident in self.customer.identities:
                if ident.id == m.identity_id:
                    name = ident.display_name or (f"@{ident.handle}" if ident.handle else ident.address)
                    if ident.channel == "email" and ident.address and ident.address not in name:
                        name = f"{name} <{ident.address}>" if name else ident.address
                    return name
            return self.customer.name
        return "customer"

    # -- drawing --------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width or self.size.width
        line = self.scroll_offset.y + y
        if not self.items:
            if y == 1:
                msg = "  Select a customer in the queue (enter)." if self.customer is None else "  No messages yet."
                text = Text(msg, style=self._style("timeline--empty"))
                return Strip(list(text.render(self.app.console))).adjust_cell_length(width).apply_style(self._base)
            return Strip.blank(width, self._base)
        if line >= len(self._strips):
            return Strip.blank(width, self._base)
        owner = self._owner[line]
        strip = self._strips[line]
        first, count = self._ranges[owner]
        selected = owner == self.cursor and line < first + count - 1
        gutter = Segment("▌ " if selected else "  ", self._style("timeline--gutter") if selected else None)
        out = Strip([gutter, *strip], 2 + strip.cell_length)
        return out.adjust_cell_length(width, self._base).apply_style(self._base)

    # -- moving ---------------------------------------------------------------------
    def _selectable(self, n: int) -> bool:
        return 0 <= n < len(self.items) and self.items[n].kind == "message"

    def _last_selectable(self) -> int | None:
        for n in range(len(self.items) - 1, -1, -1):
            if self._selectable(n):
                return n
        return None

    def _reveal(self, n: int) -> None:
        first, count = self._ranges[n]
        y, h = self.scroll_offset.y, self.scrollable_content_region.height or self.size.height
        if first < y:
            self.scroll_to(y=first, animate=False, immediate=True)
        elif first + count > y + h:
            self.scroll_to(y=min(first, first + count - h), animate=False, immediate=True)

    def _center(self, n: int) -> None:
        first, count = self._ranges[n]
        h = self.scrollable_content_region.height or self.size.height
        self.scroll_to(y=max(0, first - max(0, (h - count) // 2)), animate=False, immediate=True)

    def _step(self, delta: int) -> None:
        if self.cursor is None:
            return
        n = self.cursor + delta
        while 0 <= n < len(self.items) and not self._selectable(n):
            n += delta
        if self._selectable(n):
            self.cursor = n
            self._reveal(n)
            self.refresh()
        elif delta < 0:
            self.scroll_to(y=0, animate=False)
        else:
            self.scroll_end(animate=False)

    def action_cursor_down(self) -> None:
        self._step(1)

    def action_cursor_up(self) -> None:
        if self.cursor is not None and self.cursor == next((n for n in range(len(self.items)) if self._selectable(n)), None) and self.has_older:
            self.post_message(self.LoadOlder())
            return
        self._step(-1)

    def action_first(self) -> None:
        first = next((n for n in range(len(self.items)) if self._selectable(n)), None)
        if first is not None:
            self.cursor = first
            self.scroll_to(y=0, animate=False, immediate=True)
            self.refresh()
        if self.has_older:
            self.post_message(self.LoadOlder())

    def action_last(self) -> None:
        self.cursor = self._last_selectable()
        self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def action_fold(self) -> None:
        m = self.selected
        if m is None:
            return
        self.unfolded ^= {m.id}
        y = self.scroll_offset.y
        self._layout()
        self.scroll_to(y=y, animate=False, immediate=True)
        if self.cursor is not None:
            self._reveal(self.cursor)

    def action_save_attachment(self) -> None:
        self.post_message(self.SaveAttachments(self.selected))

    def action_open_attachment(self) -> None:
        self.post_message(self.OpenAttachment(self.selected))

    def action_retry(self) -> None:
        self.post_message(self.Retry(self.selected))

    def action_back(self) -> None:
        self.post_message(self.Back(self.selected))

    def on_click(self, event) -> None:
        line = self.scroll_offset.y + event.y
        if 0 <= line < len(self._owner) and self._selectable(self._owner[line]):
            self.cursor = self._owner[line]
            self.refresh()
