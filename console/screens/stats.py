"""How every channel is doing: the figures of `omnidesk stats`, drawn.

    app.push_screen(StatsScreen(store_path))

The console opens it with D (or "Stats per channel" in the command palette).
It is modal: the console's keys do not reach the customer hidden behind it.
Keys: 1 last 24 hours · 7 last 7 days · 3 last 30 days · r refresh · escape/q back.
The figures are computed in a worker thread with its own store connection,
so a large store never freezes the console.
"""
from __future__ import annotations

import time
from typing import Callable

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, get_current_worker
from textual_plotext import PlotextPlot

from store.terms import CHANNELS  # noqa: E402  (the one list)
PERIODS = {"1": ("last 24 hours", 86400), "7": ("last 7 days", 7 * 86400), "3": ("last 30 days", 30 * 86400)}


def fmt_duration(seconds: float | None) -> str:
    from store.timefmt import format_duration as fmt

    return fmt(seconds)


def figures_table(data: dict) -> Table:
    t = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    # two-line headers keep every column readable at 80 columns
    t.add_column("", no_wrap=True, min_width=8)
    for head in ("in", "out", "auto", "first\np50", "first\np90", "reply\np50", "reply\np90", "wait-\ning",
                 "late", "rating"):
        t.add_column(head, justify="right", no_wrap=True)
    for ch in (*CHANNELS, "all"):
        r = data["channels"][ch]
        rating = f"{r['rating_avg']:.1f} ({r['ratings']})" if r["rating_avg"] is not None else "-"
        t.add_row(ch, str(r["messages_in"]), str(r["messages_out"]), str(r["auto_replies"]),
                  fmt_duration(r["first_response_p50"]), fmt_duration(r["first_response_p90"]),
                  fmt_duration(r["reply_p50"]), fmt_duration(r["reply_p90"]),
                  str(r["unanswered"]), str(r["breaches"]), rating, style="bold" if ch == "all" else "")
    return t



def _from_zero(plt, values) -> None:
    """Counts and times start at 0; with no data yet, plotext would draw a -1..1 axis."""
    plt.ylim(0, max(max(values, default=0), 1))

class StatsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    StatsScreen { layout: vertical; align: left top; background: $background; }
    StatsScreen #stats-title { height: 1; padding: 0 1; text-style: bold; }
    StatsScreen #stats-table { height: auto; padding: 0 1; }
    StatsScreen .plots { height: 1fr; }
    StatsScreen PlotextPlot { width: 1fr; height: 1fr; min-height: 6; }
    StatsScreen #stats-keys { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="stats.close"),
        Binding("1", "period('1')", "24 hours", id="stats.day"),
        Binding("7", "period('7')", "7 days", id="stats.week"),
        Binding("3", "period('3')", "30 days", id="stats.month"),
        Binding("r", "refresh_stats", "Refresh", id="stats.refresh"),
    ]

    def __init__(self, store_path, clock: Callable[[], float] = time.time, period: str = "7", **kw):
        super().__init__(**kw)
        self.store_path = store_path
        self.clock = clock
        self.period = period
        self.data: dict | None = None

    def compose(self) -> ComposeResult:
        yield Static("Stats", id="stats-title")
        yield Static("computing…", id="stats-table")
        with Vertical(classes="plots"):
            with Horizontal(classes="plots"):
                yield PlotextPlot(id="plot-volume")
                yield PlotextPlot(id="plot-times")
            yield PlotextPlot(id="plot-hours")
        yield Static("1 24h · 7 7 days · 3 30 days · r refresh · esc back", id="stats-keys")

    def on_mount(self) -> None:
        self.action_refresh_stats()

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_period(self, key: str) -> None:
        self.period = key
        self.action_refresh_stats()

    def action_refresh_stats(self) -> None:
        self.query_one("#stats-title", Static).update(f"Stats — {PERIODS[self.period][0]} (computing…)")
        self._load(self.clock() - PERIODS[self.period][1])

    @work(thread=True, exclusive=True, group="stats")
    def _load(self, since: float) -> None:
        from store import Store

        worker = get_current_worker()
        s = Store(self.store_path, clock=self.clock)
        try:
            data = s.stats(since)
        finally:
            s.close()
        self.app.call_from_thread(self._loaded, worker, data)

    def _loaded(self, worker: Worker, data: dict) -> None:
        # a newer period's load cancelled this one, or the screen was closed while it ran:
        # its figures would overwrite the newer ones under the newer title
        if not worker.is_cancelled and self in self.app.screen_stack:
            self.show(data)

    def show(self, data: dict) -> None:
        self.data = data
        self.query_one("#stats-title", Static).update(f"Stats — {PERIODS[self.period][0]}")
        self.query_one("#stats-table", Static).update(figures_table(data))
        ch = data["channels"]

        volume = self.query_one("#plot-volume", PlotextPlot)
        p = volume.plt
        p.clear_data()
        # no legend (labels=): plotext draws it over the bars; the title says which bar is which
        p.multiple_bar(list(CHANNELS), [[ch[c]["messages_in"] for c in CHANNELS], [ch[c]["messages_out"] for c in CHANNELS]])
        _from_zero(p, [ch[c][k] for c in CHANNELS for k in ("messages_in", "messages_out")])
        p.title("Messages: in | out")
        volume.refresh()

        times = self.query_one("#plot-times", PlotextPlot)
        p = times.plt
        p.clear_data()
        minutes = lambda v: round(v / 60, 1) if v is not None else 0  # noqa: E731
        p.multiple_bar(list(CHANNELS), [[minutes(ch[c]["first_response_p50"]) for c in CHANNELS],
                                        [minutes(ch[c]["first_response_p90"]) for c in CHANNELS]])
        _from_zero(p, [minutes(ch[c][k]) for c in CHANNELS for k in ("first_response_p50", "first_response_p90")])
        p.title("First response, min: p50 | p90")
        times.refresh()

        hours = self.query_one("#plot-hours", PlotextPlot)
        p = hours.plt
        p.clear_data()
        p.bar([f"{h:02d}" for h in range(24)], data["hours"]["all"])
        _from_zero(p, data["hours"]["all"])
        p.title("Inbound by hour of day")
        hours.refresh()
