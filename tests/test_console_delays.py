"""What the console does a moment after the agent stops (a draft kept 1 s after the last
change, the reply preview 0.12 s after typing, the customer under the queue's cursor shown
0.2 s after it rests) happens also on a loaded machine.

There a process is taken off the CPU for a while at any point. Textual's one-shot
set_timer reads the clock twice as it starts and never fires when more than its delay
passed in between; the console's delays go through asyncio's timer instead
(console/later.py). Each test here makes Textual's clock jump 1.5 s on the reads that
follow the change, as a process descheduled right then sees it, and checks what the agent
would see next: the draft in the store without quitting, the preview, the customer (with
set_timer, all three waited in vain)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from textual import _time, timer
from textual.widgets import TextArea

from console.desk import DeskScreen
from console.widgets.queue import QueueView
from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


class Descheduled:
    """The clock of Textual's timers on a loaded machine: once `trip()` is called, each of
    its next `reads` reads comes `late` seconds after the one before."""

    def __init__(self, late: float = 1.5, reads: int = 4) -> None:
        self.real, self.late, self.reads = _time.get_time, late, reads
        self.left, self.offset = 0, 0.0

    def trip(self) -> None:
        self.left = self.reads

    def __call__(self) -> float:
        if self.left > 0:
            self.left -= 1
            self.offset += self.late
        return self.real() + self.offset


@pytest.fixture
def late(monkeypatch) -> Descheduled:
    clock = Descheduled()
    monkeypatch.setattr(timer, "_time", SimpleNamespace(get_time=clock))  # (timers only: messages read it too)
    return clock


def trip_on(kind, late: Descheduled, check=lambda message: True, at=object):
    """A message hook for run_test: the clock goes late as a `kind` message is handled (by an `at`)."""
    from textual._context import active_message_pump

    def hook(message) -> None:
        if isinstance(message, kind) and check(message) and isinstance(active_message_pump.get(None), at):
            late.trip()
    return hook


async def test_a_draft_is_kept_a_moment_after_typing_stops(db_path, clock, tmp_path, ids, late):
    """Without quitting: a console that dies with its machine (power, kill -9) keeps it."""
    app = make_app(db_path, clock, tmp_path, poll_interval=60)  # (its timer would take the late clock reads)
    async with app.run_test(size=(120, 40), message_hook=trip_on(TextArea.Changed, late)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Checking the courier")
        store = Store(db_path, clock=clock)
        try:
            await until(pilot, lambda: [d.text for d in store.drafts("alice")] == ["Checking the courier"], timeout=10)
        finally:
            store.close()
        assert app.composer.area.text == "Checking the courier"  # still typing there: nothing quit


async def test_the_preview_follows_the_typing(db_path, clock, tmp_path, ids, late):
    app = make_app(db_path, clock, tmp_path, poll_interval=60)  # (its timer would take the late clock reads)
    async with app.run_test(size=(120, 40), message_hook=trip_on(TextArea.Changed, late)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", "ctrl+r")  # the preview, shown
        await until(pilot, lambda: app.composer.show_preview)
        await pilot.press(*"We ship to Norway")
        # (typed text shows in the composer at once: the preview is the second copy)
        await until(pilot, lambda: screen_text(app).count("We ship to Norway") == 2, timeout=10)


async def test_the_customer_under_the_cursor_is_shown(db_path, clock, tmp_path, ids, late):
    app = make_app(db_path, clock, tmp_path, poll_interval=60)
    hook = trip_on(QueueView.Highlighted, late, lambda m: m.customer_id == ids["jane"], at=DeskScreen)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        app.queue.focus()
        assert app.queue.select_customer(ids["jane"])  # as j/k do: the cursor moves, nothing opens yet
        await until(pilot, lambda: app.current.id == ids["jane"], timeout=10)
        assert "Jane Roe · em tg" in screen_text(app).splitlines()[0]  # the timeline's title: hers
