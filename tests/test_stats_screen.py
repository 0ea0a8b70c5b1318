"""The stats screen: the figures and three plots, computed off the UI thread."""
from __future__ import annotations


import pytest
from textual.app import App
from textual_plotext import PlotextPlot

from console.screens.stats import StatsScreen
from store import Store
from tests.support.console import _utc, anyio_backend, workers_done  # noqa: F401 (fixtures)
from tests.test_stats import END, build

pytestmark = pytest.mark.anyio


class Host(App):
    def __init__(self, db_path, clock):
        super().__init__()
        self.db_path, self.clock = db_path, clock

    def on_mount(self) -> None:
        self.push_screen(StatsScreen(self.db_path, clock=self.clock))


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def settle(pilot):
    for _ in range(3):
        await pilot.pause()
        await workers_done(pilot.app)  # a cancelled older load counts as done
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_stats_screen_shows_figures_and_plots(db_path, clock, size):
    s = Store(db_path, clock=clock)
    build(s, clock)
    s.close()
    clock.now = END
    app = Host(db_path, clock)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "Stats — last 7 days" in text
        row = next(line for line in text.splitlines() if line.strip().startswith("telegram"))
        # the week includes E's earlier wait: telegram first responses 100s, 10m, 30m
        assert row.split() == ["telegram", "5", "5", "1", "10m", "26m", "10m", "26m", "0", "0", "-"]
        assert "Inbound by hour of day" in text and "Messages" in text
        assert app.screen.data["hours"]["all"][14] == 6
        assert len(app.screen.query(PlotextPlot)) == 3
        clock.now = END + 2 * 86400  # 24 hours later nothing happened
        await pilot.press("1")
        await settle(pilot)
        assert "Stats — last 24 hours" in screen_text(app)
        assert app.screen.data["channels"]["all"]["messages_in"] == 0
        assert "-0." not in screen_text(app) and "0.00┤" in screen_text(app)  # empty charts start at 0
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, StatsScreen)


async def test_at_80_columns_no_legend_on_the_bars_and_toasts_leave_the_headings_alone(db_path, clock, tmp_path):
    from tests.support.console import make_app

    s = Store(db_path, clock=clock)
    build(s, clock)
    s.close()
    clock.now = END
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, StatsScreen)
        app.notify("Carol Diaz: is the API down? getting 502s on every call since this morning", title="New message")
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        assert "New message" in screen_text(app)
        assert any("first  first  reply" in line for line in lines)  # the column headings are not covered
        assert any(line.split()[:3] == ["in", "out", "auto"] for line in lines if line.strip())
        assert "Messages: in | out" in screen_text(app)  # the title says which bar is which: no legend box
        assert not [line for line in lines if "██ in " in line or "██ p50" in line]
