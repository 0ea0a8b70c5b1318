"""The queue: a virtual list of customers, who has waited longest first.

Only the visible rows are drawn (Textual's Line API): each `render_line`
reads the rows it needs from paginated `store.queue(limit, offset)` calls
through a small LRU page cache, so 100k customers scroll like 10.

A row shows how long the customer has waited or, when their channel has a
waiting-time target ([targets] in config.toml), the time left or overdue
("12m left", "1h05m over"): computed from the row itself, no extra reads.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Callable

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console import keymap
from store.timefmt import MAX_SPAN, format_age
from console.widgets.badges import badge, color
from console.widgets.styled_lines import StyledLines
from console.widgets.safe_text import one_line
from store.terms import Status
from connectors.desk.targets import Targets, describe_time_left
from store.models import QueueRow

PAGE = 64
MAX_PAGES = 24
ROW_HEIGHT = 2


def readable_preview(preview: str) -> str:
    """A row's last message as read. Our replies are stored as Markdown (what the
    connectors format): "you: ..." shows them without markup or backslashes, as the
    timeline does."""
    for lead in ("reply may not have arrived — ", "reply failed — ", ""):
        if preview.startswith(lead + "you: "):
            from connectors.formatting import plain_text

            cut = len(lead) + len("you: ")
            return preview[:cut] + " ".join(plain_text(preview[cut:]).split())
    return preview


class QueueSource:
    """Where the rows come from: one store, one filter."""

    def __init__(self, store, filter: str = "open", agent: str | None = None, channel: str | None = None,
                 tag: str | None = None):
        self.store = store
        self.filter, self.agent, self.channel, self.tag = filter, agent, channel, tag

    def with_store(self, store) -> "QueueSource":
        return QueueSource(store, self.filter, self.agent, self.channel, self.tag)

    @property
    def kw(self) -> dict:
        return {"agent": self.agent, "channel": self.channel, "tag": self.tag}

    def page(self, offset: int, limit: int) -> list[QueueRow]:
        return self.store.queue(self.filter, limit=limit, offset=offset, **self.kw)

    def count(self) -> int:
        return self.store.queue_count(self.filter, **self.kw)

    def position(self, customer_id: int) -> int | None:
        return self.store.queue_position(customer_id, self.filter, **self.kw)

    def title(self) -> str:
        """The short form for the queue's border: "waiting + tg + #vip" fits 80 columns;
        the + says the filters combine (a customer must match all of them)."""
        parts = [self.filter]
        if self.channel:
            parts.append(badge(self.channel))
        if self.tag:
            parts.append("#" + one_line(self.tag, 12))
        return " + ".join(parts)

    def empty_lines(self) -> dict[int, str]:
        """What an empty queue says, by line: with a channel or tag on top of the
        filter, which filters hide customers and how to clear them."""
        if not (self.channel or self.tag):
            return {1: "Nothing here.", 3: "New messages show up here", 4: "as they arrive; f changes",
                    5: f"the filter ({self.filter})."}
        return {1: "Nothing here. Filters:", 2: self.title(), 4: "f → clear channel and tag",
                5: f"shows all {self.filter}."}

    def describe(self) -> str:
        parts = [self.filter]
        if self.channel:
            parts.append(f"channel:{self.channel}")
        if self.tag:
            parts.append(f"tag:{self.tag}")
        return " ".join(parts)


class QueueView(StyledLines, ScrollView, can_focus=True):
    BINDINGS = keymap.bindings("queue")
    COMPONENT_CLASSES = {
        "queue--cursor", "queue--cursor-blur", "queue--name", "queue--unread", "queue--preview",
        "queue--age", "queue--age-old", "queue--tag", "queue--empty", "queue--meta",
        "queue--due", "queue--due-soon", "queue--overdue", "queue--draft", "queue--count",
    }
    DEFAULT_CSS = """
    QueueView { background: $surface; }
    QueueView > .queue--cursor { background: $primary 35%; }
    QueueView > .queue--cursor-blur { background: $panel-lighten-1; }
    QueueView > .queue--name { color: $text; }
    QueueView > .queue--unread { color: $accent; text-style: bold; }
    QueueView > .queue--preview { color: $text-muted; }
    QueueView > .queue--age { color: $text-muted; }
    QueueView > .queue--age-old { color: $warning; }
    QueueView > .queue--due { color: $text-muted; }
    QueueView > .queue--due-soon { color: $warning; }
    QueueView > .queue--overdue { color: $error; text-style: bold; }
    QueueView > .queue--tag { color: $text-secondary; }
    QueueView > .queue--empty { color: $text-muted; text-style: italic; }
    QueueView > .queue--meta { color: $text-muted; }
    QueueView > .queue--draft { color: $warning; text-style: bold; }
    QueueView > .queue--count { background: $accent; color: $background; text-style: bold; }
    """

    class Highlighted(Message):
        def __init__(self, customer_id: int | None) -> None:
            super().__init__()
            self.customer_id = customer_id

    class Reloaded(Message):
        pass

    class Opened(Message):
        def __init__(self, customer_id: int) -> None:
            super().__init__()
            self.customer_id = customer_id

    def __init__(self, source: QueueSource, clock: Callable[[], float] = time.time,
                 targets: Targets | None = None, reader=None, **kw):
        super().__init__(**kw)
        self.source = source
        self.clock = clock
        self.targets = targets or Targets()
        self.cursor = 0
        self.total = 0
        self._pages: OrderedDict[int, list[QueueRow]] = OrderedDict()
        self._stale: dict[int, list[QueueRow]] = {}  # shown while fresh pages load (no flicker)
        self._pending: set[int] = set()
        self._generation = 0
        self._lines: dict[tuple, Strip] = {}
        self.reader = reader  # a console.reader.StoreReader: pages and counts read off the UI thread
        self.drafts: set[int] = set()  # customers with an unsent draft: marked ✎
        # The customer shown left this queue's filter (S pending, d with next_after_done off,
        # a search hit from elsewhere): no row is theirs, so none is highlighted, on purpose,
        # until the agent moves (j takes the row now where they were).
        self.left_out: int | None = None
        self.page_loads = 0  # for the benchmark and tests

    # -- the background reader ---------------------------------------------------
    def _submit(self, fn, done, *, group: str = "queue-page", exclusive: bool = False) -> None:
        """Run `fn(source)` through the app's store reader, then `done(result)`
        here; without a reader (or before mounting), at once."""
        if self.reader is None or not self.is_mounted:
            done(fn(self.source))
            return
        source = self.source
        self.reader.run(lambda s: fn(source.with_store(s)), done, group=group, exclusive=exclusive,
                        failed=lambda e: self.app.notify(f"queue: {e}", severity="error"))

    # -- data -----------------------------------------------------------------
    def reload(self, keep_customer: int | None = None, follow: bool = True) -> None:
        """Re-read the queue now. With `follow`, the selected customer stays
        selected and stays at the same place on screen."""
        before_id = keep_customer if keep_customer is not None else self.left_out or self.selected_id
        total = self.source.count()
        position = self.source.position(before_id) if (follow and before_id is not None) else None
        self._apply_reload(before_id, total, position, {}, follow)

    def reload_in_background(self, follow: bool = True) -> None:
        """Like reload, with the counting and the first page read off the UI thread."""
        before_id = self.left_out or self.selected_id_if_loaded
        asked = (self.cursor, self._generation)

        def fn(src: QueueSource):
            total = src.count()
            position = src.position(before_id) if (follow and before_id is not None) else None
            index = position if position is not None else min(self.cursor, max(0, total - 1))
            number = index // PAGE
            return total, position, {number: src.page(number * PAGE, PAGE)}

        def done(result) -> None:
            if (self.cursor, self._generation) != asked:
                # the agent moved (or the queue was read again) while this read ran: applied, it
                # would put the cursor back on the customer selected when it was asked for
                self.reload_in_background(follow)
                return
            self._apply_reload(before_id, *result, follow=follow)
        self._submit(fn, done, group="queue-reload", exclusive=True)

    def show_outside(self, customer_id: int) -> None:
        """`customer_id` is shown but not in this queue: highlight no row."""
        self.left_out = customer_id
        self._lines.clear()
        self.refresh()

    def _apply_reload(self, before_id, total, position, pages, follow: bool = True) -> None:
        old_cursor, old_scroll = self.cursor, self.scroll_offset.y
        self._generation += 1
        self._stale = dict(self._pages)
        self._pages = OrderedDict(pages)
        self._pending.clear()
        self._lines.clear()
        self.total = total
        new = position if position is not None else min(old_cursor, max(0, self.total - 1))
        # followed and not found: the customer selected is not in this queue (any more)
        self.left_out = before_id if position is None and before_id is not None and follow else None
        self.cursor = new
        self.virtual_size = Size(0, self.total * ROW_HEIGHT)
        # keep the row where it was on screen
        target = max(0, old_scroll + (new - old_cursor) * ROW_HEIGHT)
        self.scroll_to(y=target, animate=False, immediate=True)
        self._ensure_visible()
        self.refresh()
        self.post_message(self.Reloaded())

    def set_drafts(self, customer_ids: set[int]) -> None:
        if customer_ids != self.drafts:
            self.drafts = set(customer_ids)
            self.refresh()

    def set_source(self, source: QueueSource) -> None:
        self.source = source
        self.cursor = 0
        self.left_out = None
        self.scroll_to(y=0, animate=False, immediate=True)
        self.reload(follow=False)
        self._stale = {}
        self.post_message(self.Highlighted(self.selected_id))

    def _store_page(self, number: int, page: list[QueueRow]) -> None:
        self._pages[number] = page
        self._pages.move_to_end(number)
        self._stale.pop(number, None)
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)

    def row(self, index: int) -> QueueRow | None:
        """The row at `index`, read now if its page is not loaded."""
        if index < 0 or index >= self.total:
            return None
        number = index // PAGE
        page = self._pages.get(number)
        if page is None:
            page = self.source.page(number * PAGE, PAGE)
            self.page_loads += 1
            self._pending.discard(number)
            self._store_page(number, page)
        else:
            self._pages.move_to_end(number)
        offset = index - number * PAGE
        return page[offset] if offset < len(page) else None

    def peek(self, index: int) -> QueueRow | None:
        """The row at `index` if loaded (fresh or stale); otherwise ask the reader for it."""
        if index < 0 or index >= self.total:
            return None
        number = index // PAGE
        page = self._pages.get(number)
        if page is None:
            self._request(number)
            page = self._stale.get(number)
            if page is None:
                return None
        offset = index - number * PAGE
        return page[offset] if offset < len(page) else None

    def _request(self, number: int) -> None:
        if number in self._pending or number < 0 or number * PAGE >= self.total:
            return
        self._pending.add(number)
        generation = self._generation

        def arrived(page: list[QueueRow]) -> None:
            if generation != self._generation:
                return
            self._pending.discard(number)
            self.page_loads += 1
            had_cursor = self.peek_loaded(self.cursor)
            self._store_page(number, page)
            self.refresh()  # line cache keys carry the row's data: no need to drop them
            if not had_cursor and self.cursor // PAGE == number:
                self.post_message(self.Highlighted(self.selected_id))
        self._submit(lambda src: src.page(number * PAGE, PAGE), arrived)

    def peek_loaded(self, index: int) -> bool:
        return (index // PAGE) in self._pages

    def _prefetch(self) -> None:
        """Keep the pages next to the cursor loaded, so moving never waits."""
        number, offset = divmod(self.cursor, PAGE)
        if offset > PAGE - 24:
            self._request(number + 1)
        elif offset < 24:
            self._request(number - 1)
        first = self.scroll_offset.y // ROW_HEIGHT
        last = first + self.size.height // ROW_HEIGHT + 1
        for n in {first // PAGE, last // PAGE}:
            if n not in self._pages:
                self._request(n)

    @property
    def selected_id(self) -> int | None:
        row = self.row(self.cursor) if self.total else None
        return row.customer_id if row else None

    @property
    def selected_id_if_loaded(self) -> int | None:
        row = self.peek(self.cursor) if self.total else None
        return row.customer_id if row else None

    def select_customer(self, customer_id: int) -> bool:
        pos = self.source.position(customer_id)
        if pos is None:
            return False
        self._move(pos)
        return True

    # -- drawing ----------------------------------------------------------------
    def on_resize(self) -> None:
        self._lines.clear()
        self.virtual_size = Size(0, self.total * ROW_HEIGHT)

    def styles_changed(self) -> None:
        self._lines.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line = scroll_y + y
        width = self.scrollable_content_region.width or self.size.width
        base = self._base
        if self.total == 0:
            lines = self.source.empty_lines()
            if y in lines:
                text = Text("  " + lines[y], style=self._style("queue--empty"))
                return Strip(list(text.render(self.app.console))).adjust_cell_length(width).apply_style(base)
            return Strip.blank(width, base)
        index, sub = divmod(line, ROW_HEIGHT)
        row = self.peek(index)
        if row is None:
            if sub == 0 and index < self.total:
                text = Text("  …", style=self._style("queue--meta"))
                return Strip(list(text.render(self.app.console))).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        selected = index == self.cursor and self.left_out is None
        key = (row.customer_id, index, sub, width, selected, selected and self.has_focus, int(self.clock() // 60),
               row.unread, row.status, row.waiting_since, row.last_channel, row.preview, tuple(row.tags),
               row.assignee, tuple(row.channels), row.customer_id in self.drafts)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_row(row, sub, width, selected)
            if len(self._lines) > 4096:
                self._lines.clear()
            self._lines[key] = strip
        return strip

    def _assignee(self, assignee: str, room: int, name_needs: int) -> Text:
        """"@Alex Morgan " as long as it leaves the name `name_needs` cells of `room`; else
        "@me" for the agent at this console, or the first name, or its initial."""
        me = str(getattr(self.app, "agent", "") or "")
        if me and assignee.casefold() == me.casefold():
            forms = [f"@{one_line(assignee, 10)} ", "@me "]
        else:
            first = assignee.split()[0] if assignee.split() else assignee
            forms = [f"@{one_line(assignee, 10)} ", f"@{one_line(first, 6)} ", f"@{first[:1]} "]
        form = next((f for f in forms if room - len(f) >= name_needs), forms[-1])
        return Text(form, self._style("queue--meta"), end="")

    def _render_row(self, row: QueueRow, sub: int, width: int, selected: bool) -> Strip:
        base = self._base
        now = self.clock()
        if sub == 0:
            right = Text(end="")
            if row.customer_id in self.drafts:
                right.append("✎ ", self._style("queue--draft"))
            # every channel of the customer (merged ones have several); the last one first
            channels = [row.last_channel] if row.last_channel else []
            channels += [ch for ch in row.channels if ch not in channels]
            for n, ch in enumerate(channels or [None]):
                right.append(("" if n == 0 else " ") + badge(ch), Style(color=color(ch), bold=n == 0))
            if row.status == "snoozed" and row.snoozed_until:
                # a stored wake-up no one could mean (beyond MAX_SPAN, not a number): "zz?", never a traceback
                ahead = row.snoozed_until - now if isinstance(row.snoozed_until, (int, float)) else math.nan
                right.append(f" zz{format_age(ahead).removeprefix('in ') if abs(ahead) <= MAX_SPAN else '?'}",
                             self._style("queue--age"))
            elif row.status == "done":
                right.append("  done", self._style("queue--age"))
            elif row.status == Status.PENDING:  # we wait on them
                right.append(" pend", self._style("queue--age"))
            elif (left_s := self.targets.time_left(row, now)) is not None:
                target = self.targets.for_channel(row.last_channel)
                due = "queue--overdue" if left_s < 0 else "queue--due-soon" if left_s < target / 4 else "queue--due"
                right.append(f" {describe_time_left(left_s)}", self._style(due))
            elif row.waiting_since:
                age = now - row.waiting_since
                right.append(f" {format_age(age):>4}", self._style("queue--age-old" if age > 4 * 3600 else "queue--age"))
            else:
                right.append("     ")
            left = Text(end="")
            if row.unread:
                left.append("● ", self._style("queue--unread"))
            else:
                left.append("  ")
            left.append(one_line(row.name or f"#{row.customer_id}"),
                        self._style("queue--unread") if row.unread else self._style("queue--name"))
            unread = Text(" ", end="") if row.unread > 1 else Text("", end="")
            if row.unread > 1:  # a badge of its own: never read as part of the name ("Agent 47 2")
                unread.append(f" {row.unread:,} ", self._style("queue--count"))
            if row.assignee:  # shorter first, so the name keeps room to be read at 80 columns
                right = self._assignee(row.assignee, width - right.cell_len - 1 - unread.cell_len,
                                       min(left.cell_len, 18)) + right
            room = width - right.cell_len - 1 - unread.cell_len  # the name gives way, never the count
            left.truncate(max(1, room), overflow="ellipsis")
            left.append_text(unread)
            left.pad_right(max(0, width - right.cell_len - 1 - left.cell_len))
            text = left + Text(" ") + right
        else:
            text = Text("  ", end="")
            tags = " ".join(f"#{one_line(t, 16)}" for t in row.tags[:3])
            if tags:
                text.append(tags + " ", self._style("queue--tag"))
            text.append(one_line(readable_preview(row.preview), 200), self._style("queue--preview"))
            text.truncate(width, overflow="ellipsis")
        segments = list(text.render(self.app.console))
        style = base
        if selected:
            style = base + self._style("queue--cursor" if self.has_focus else "queue--cursor-blur")
        return Strip(segments).adjust_cell_length(width).apply_style(style).simplify()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- moving -----------------------------------------------------------------
    def _ensure_visible(self) -> None:
        top = self.cursor * ROW_HEIGHT
        height = max(ROW_HEIGHT, self.scrollable_content_region.height or self.size.height)
        y = self.scroll_offset.y
        if top < y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif top + ROW_HEIGHT > y + height:
            self.scroll_to(y=top + ROW_HEIGHT - height, animate=False, immediate=True)

    def _move(self, index: int) -> None:
        if not self.total:
            return
        index = max(0, min(self.total - 1, index))
        if index == self.cursor and self.left_out is None:
            return
        self.left_out = None
        self.cursor = index
        self._ensure_visible()
        self.refresh()
        row = self.peek(index)
        if row is not None:
            self.post_message(self.Highlighted(row.customer_id))
        self._prefetch()

    @property
    def _page_rows(self) -> int:
        return max(1, self.size.height // ROW_HEIGHT - 1)

    def action_cursor_down(self) -> None:
        # from a customer who left the queue: the row now at their place is the next one
        self._move(self.cursor + (0 if self.left_out is not None else 1))

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_page_down(self) -> None:
        self._move(self.cursor + self._page_rows)

    def action_page_up(self) -> None:
        self._move(self.cursor - self._page_rows)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.total - 1)

    def action_open(self) -> None:
        if self.left_out is not None:  # nothing highlighted: enter highlights the row at the cursor first
            self._move(self.cursor)
        cid = self.selected_id
        if cid is not None:
            self.post_message(self.Opened(cid))

    def on_click(self, event) -> None:
        index = (self.scroll_offset.y + event.y) // ROW_HEIGHT
        if 0 <= index < self.total:
            self._move(index)
            self.action_open()
