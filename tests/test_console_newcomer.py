"""What a newcomer met in the console (notes/newcomer-1.md), driven through the real
console with Pilot: each test is a finding of that trial, as the user saw it."""
from __future__ import annotations

import logging

import pytest
from textual.widgets import TextArea

from console.screens.pickers import PickerScreen
from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio

LONG = "this line is longer than the composer is wide, certainly at eighty columns, so it wraps"


async def _insert(pilot, name: str) -> None:
    app = pilot.app
    await pilot.press("ctrl+t")
    await until(pilot, lambda: isinstance(app.screen, PickerScreen))
    await pilot.press(*name, "enter")
    await until(pilot, lambda: app.screen is app.desk and "Best regards" in app.composer.area.text)


# -- finding 2: ctrl+z after a template -------------------------------------------------
async def test_undo_after_a_template_takes_it_out_and_the_console_goes_on(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *LONG, "enter", "enter")
        await _insert(pilot, "closing")
        await pilot.press("ctrl+z")  # crashed: ValueError line index out of bounds (textual#6686)
        await until(pilot, lambda: "Best regards" not in app.composer.area.text)
        assert app.composer.area.text == LONG + "\n\n"
        await pilot.press("ctrl+y")  # redo puts it back
        await until(pilot, lambda: "Best regards" in app.composer.area.text)
        await pilot.press("ctrl+z", *"Thanks!")
        await until(pilot, lambda: app.composer.area.text.endswith("Thanks!"))
        assert "Thanks!" in screen_text(app) and app.focused is app.composer.area


async def test_an_unexpected_error_keeps_the_drafts_and_logs_its_traceback(db_path, clock, tmp_path, ids,
                                                                          monkeypatch):
    """A bug in a key's action (here Textual's undo failing, as it did) closes the console,
    but every draft is in the store first and omnidesk.log has the traceback."""
    from console.commands.common import log_to_file

    def broken(self):
        raise RuntimeError("a bug in undo")
    monkeypatch.setattr(TextArea, "action_undo", broken)  # the library fails, not our code
    log = tmp_path / "omnidesk.log"
    handlers = logging.getLogger().handlers[:]
    log_to_file(log)
    try:
        app = make_app(db_path, clock, tmp_path)
        with pytest.raises(RuntimeError, match="a bug in undo"):
            async with app.run_test(size=(80, 24)) as pilot:
                await settle(pilot)
                await open_customer(pilot, ids["jane"])
                await pilot.press("r", *"half a reply to Jane")
                await open_customer(pilot, ids["bob"])  # Jane's draft is kept in memory, not yet written
                await pilot.press("r", *"and one to Bob")
                await pilot.press("ctrl+z")
                await until(pilot, lambda: app.crash is not None)
    finally:
        logging.getLogger().handlers[:] = handlers
    assert "2 drafts kept" in app.crash
    s = Store(db_path, clock=clock)
    drafts = {d.customer_id: d.text for d in s.drafts("alice")}
    s.close()
    assert drafts == {ids["jane"]: "half a reply to Jane", ids["bob"]: "and one to Bob"}
    text = log.read_text()
    assert "the console stopped on an unexpected error (2 drafts kept)" in text
    assert "Traceback" in text and "RuntimeError: a bug in undo" in text and ", in broken" in text
