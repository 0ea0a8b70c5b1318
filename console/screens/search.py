"""Search every message: FTS words plus channel:, from:, tag:, status:, before:, after:."""
from __future__ import annotations

import time
from typing import Callable

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from store.timefmt import format_clock
from console.screens.pickers import Dialog, Searching
from console.widgets.badges import badge, color
from console.widgets.hits import hit_label, hit_snippet
from console.widgets.safe_text import one_line
from store.models import SearchHit

# lines that fit the dialog at 80 columns, whole (one long line wrapped mid-item); the
# last one is also where the number of results goes
SYNTAX = ('words  "a phrase"  OR  -word  from:jane  from:me  channel:slack',
          "tag:vip  status:open  before:2026-11-01  after:2026-10-01")
KEYS = "enter opens · esc closes"
HELP = "\n".join((*SYNTAX, KEYS))


class SearchScreen(Searching, Dialog, ModalScreen[SearchHit | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, run_search: Callable[[str], list[SearchHit]], clock: Callable[[], float] = time.time,
                 query: str = ""):
        super().__init__()
        self.run_search = run_search
        self.clock = clock
        self.query_text = query
        self.hits: list[SearchHit] = []
        self.last_ms: float | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog search"):
            yield Label("Search", classes="dialog-title")
            yield Input(value=self.query_text, placeholder="what are you looking for?", id="search-input")
            yield OptionList(id="search-results")
            yield Static(HELP, classes="dialog-help", id="search-help")

    def on_mount(self) -> None:
        if self.query_text:
            self._run(self.query_text, self._asking())

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        query = event.value.strip()
        if len(query) >= 2 or ":" in query:
            self._run(query, self._asking())
            return
        self._newer(self._asking())  # too short to search: what still runs is for older text
        if not query:
            self._show_hits([], None)

    @work(thread=True, exclusive=True, group="search")
    def _run(self, query: str, seq: int) -> None:
        start = time.perf_counter()
        try:
            hits = self.run_search(query)
            error = None
        except Exception as e:  # StoreError: a bad filter, shown to the person typing
            hits, error = [], str(e)
        self.last_ms = (time.perf_counter() - start) * 1000
        self.app.call_from_thread(self._show, seq, hits, error)

    def _show(self, seq: int, hits: list[SearchHit], error: str | None) -> None:
        if self._newer(seq):  # (a search for older text may end last)
            self._show_hits(hits, error)
            self._results_shown(self._choose)  # "/", "refund", enter typed fast: the first hit for "refund"

    def _show_hits(self, hits: list[SearchHit], error: str | None) -> None:
        self.hits = hits
        ol = self.query_one(OptionList)
        ol.clear_options()
        now = self.clock()
        options = []
        for h in hits:
            t = Text(end="", no_wrap=True, overflow="ellipsis")
            t.append(f"{badge(h.channel)} ", Style(color=color(h.channel), bold=True))
            t.append(one_line(hit_label(h, getattr(self.app, "agent", "")), 36), Style(bold=True))
            t.append(f"  {format_clock(h.sent_at, now)}  ", Style(dim=True))
            snippet = one_line(hit_snippet(h), 300)
            # «» mark the matched words in store snippets: show them highlighted, literally safe
            for n, piece in enumerate(snippet.replace("»", "«").split("«")):
                t.append(piece, Style(bold=True, color="yellow") if n % 2 else None)
            options.append(Option(t))
        ol.add_options(options)
        if hits:
            ol.highlighted = 0
        help_ = self.query_one("#search-help", Static)
        if error:
            help_.update(Text(error, style="red"))
        elif self.query_one(Input).value.strip():
            count = f"{len(hits)} result{'s' if len(hits) != 1 else ''}" + ("" if len(hits) < 50 else "+")
            help_.update(Text("\n".join((*SYNTAX, f"{count} · {KEYS}")), style="dim"))

    def action_move(self, delta: int) -> None:
        ol = self.query_one(OptionList)
        if ol.option_count:
            ol.highlighted = max(0, min(ol.option_count - 1, (ol.highlighted or 0) + delta))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if not self._enter_waits():  # (else it opens a hit once the list shows what was typed)
            self._choose()

    def _choose(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and ol.highlighted < len(self.hits):
            self.answer_once(self.hits[ol.highlighted])

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.hits):
            self.answer_once(self.hits[event.option_index])

    def action_cancel(self) -> None:
        self.answer_once(None)
