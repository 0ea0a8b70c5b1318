"""The console as newcomer trial 2 met it (/work/notes/newcomer-2.md): each test drives the
real console with Pilot and checks what the person at the keyboard sees."""
from __future__ import annotations

import pytest

from console.screens.pickers import Dialog
from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


def flat(app) -> str:
    """The screen as one line of words (a toast or a title may wrap)."""
    return " ".join("".join(c if c not in "│╭╮╰╯▌▐▊▎" else " " for c in screen_text(app)).split())


def row_line(app, name: str) -> str:
    """The queue's row of `name` (not a pane title that names them)."""
    return next(line for line in screen_text(app).splitlines() if 0 <= line.find(name) < 30 and "─" not in line)


async def dialog_title(pilot, *keys: str) -> str:
    """Press `keys`, wait for the dialog they open, return its title; esc closes it."""
    app = pilot.app
    await pilot.press(*keys)
    await until(pilot, lambda: isinstance(app.screen, Dialog))
    title = str(app.screen.query_one(".dialog-title").render())
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, Dialog))
    return title


async def test_every_dialog_that_acts_on_a_customer_names_them(db_path, clock, tmp_path, ids):
    """Finding 9: `S pend` after a move-on or a re-sorted queue set the wrong customer
    pending, and "Set status" did not say whose; merge already said "Merge ... into #1 Jane Roe"."""
    s = Store(db_path, clock=clock)
    s.add_tags(ids["bob"], ["vip"], "alice")
    s.rename(ids["bob"], "Bob [bold]Li[/bold]", "alice")  # a name is never read as markup
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        name = "Bob [bold]Li[/bold]"
        assert await dialog_title(pilot, "S") == f"Set status of {name}"
        assert await dialog_title(pilot, "s") == f"Snooze {name} until"
        assert await dialog_title(pilot, "t") == f"Tag {name}"
        assert await dialog_title(pilot, "T") == f"Remove a tag from {name}"
        assert await dialog_title(pilot, "a") == f"Assign {name} to"
        await pilot.press("S")  # and on screen, whole, at 80 columns
        await until(pilot, lambda: f"Set status of {name}" in screen_text(app))


async def test_recent_actions_show_every_tag_of_one_action_the_same_way(db_path, clock, tmp_path, ids):
    """Finding 10: `t Bulk Order, #VIP` then `U` read "tagged #bulk-order, vip"."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("t", *"Bulk Order, #VIP", "enter")
        await until(pilot, lambda: "tagged #bulk-order, #vip" in flat(app))  # the toast
        await pilot.press("U")
        await until(pilot, lambda: "Recent actions" in screen_text(app))
        assert "tagged #bulk-order, #vip Carol Diaz" in flat(app)
        await pilot.press("enter")
        await until(pilot, lambda: "undid “tagged #bulk-order, #vip” for Carol Diaz" in flat(app))


async def test_a_draft_reopened_with_r_takes_typing_at_its_end(db_path, clock, tmp_path, ids):
    """Finding 33: `r` on a saved draft put the cursor at its start: new lines went above it."""
    from store.drafts import Draft

    s = Store(db_path, clock=clock)
    s.save_draft("alice", Draft(ids["carol"], "Thanks, noted.\nMore soon."))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", "enter", *"line 2")
        await until(pilot, lambda: app.composer.area.text.endswith("line 2"))
        assert app.composer.area.text == "Thanks, noted.\nMore soon.\nline 2"


async def test_discarding_a_draft_asks_nothing_forgets_it_and_ctrl_z_brings_it_back(db_path, clock, tmp_path, ids):
    """Finding 33: there was no way to throw a draft away but Backspace until empty. ctrl+g
    (and "Discard draft" in the palette) discards it, the store forgets it at once, the ✎
    goes; ctrl+z in the empty reply brings back all of it (text and Cc)."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"A long answer", "enter", *"over two lines", "ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, Dialog))
        await pilot.press(*"ann@li.example", "enter")
        await until(pilot, lambda: app.composer.cc == ["ann@li.example"])
        app.desk.drafts.flush()
        await until(pilot, lambda: [d.text for d in Store(db_path, clock=clock).drafts("alice")]
                    == ["A long answer\nover two lines"] and "✎" in row_line(app, "Bob Li"))
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Draft to Bob Li discarded" in flat(app))
        assert app.composer.area.text == "" and app.composer.cc == [] and not isinstance(app.screen, Dialog)
        await until(pilot, lambda: Store(db_path, clock=clock).drafts("alice") == [] and "✎" not in row_line(app, "Bob Li"))
        await pilot.press("ctrl+z")
        await until(pilot, lambda: app.composer.area.text == "A long answer\nover two lines")
        assert app.composer.cc == ["ann@li.example"] and "Draft to Bob Li is back" in flat(app)
        await pilot.press(*" ok")  # typing goes on at its end
        await until(pilot, lambda: app.composer.area.text.endswith("lines ok"))

        await pilot.press("escape", "ctrl+p", *"discard dr")  # the palette entry
        await until(pilot, lambda: "Discard draft" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: app.composer.area.text == "" and "✎" not in row_line(app, "Bob Li"))
        await until(pilot, lambda: Store(db_path, clock=clock).drafts("alice") == [])
