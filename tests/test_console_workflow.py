"""A day's support in the console (issue 16): undo, moving on, drafts, what the screen says."""
from __future__ import annotations

import pytest

from store import Store
from tests.test_console_app import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


def flat(app) -> str:
    """The screen as one line of words (a toast may wrap)."""
    return " ".join("".join(c if c not in "│╭╮╰╯▌▐▊▎" else " " for c in screen_text(app)).split())


async def tag(pilot, text: str) -> None:
    await pilot.press("t", *text, "enter")
    await settle(pilot, 3)


async def test_u_undoes_the_last_action_on_the_customer_in_view_and_says_so(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await tag(pilot, "vip")
        await open_customer(pilot, ids["carol"])
        await tag(pilot, "api")  # the agent's last action overall: on Carol
        await open_customer(pilot, ids["bob"])
        await pilot.press("u")
        await until(pilot, lambda: "undid “tagged #vip” for Bob Li" in flat(app))
        s = Store(db_path, clock=clock)
        assert s.customer(ids["bob"]).tags == [] and s.customer(ids["carol"]).tags == ["api"]
        s.close()


async def test_the_recent_actions_list_undoes_the_one_chosen(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await tag(pilot, "api")
        await open_customer(pilot, ids["bob"])
        await tag(pilot, "vip")
        await pilot.press("U")
        await until(pilot, lambda: "Recent actions" in screen_text(app))
        text = flat(app)
        assert text.index("tagged #vip Bob Li") < text.index("tagged #api Carol Diaz")  # newest first
        await pilot.press(*"api", "enter")  # filter to Carol's, undo it
        await until(pilot, lambda: "undid “tagged #api” for Carol Diaz" in flat(app))
        s = Store(db_path, clock=clock)
        assert s.customer(ids["carol"]).tags == [] and s.customer(ids["bob"]).tags == ["vip"]
        s.close()
