"""Keys typed right after moving in the queue are for the customer the cursor moved to
(newcomer trial 2, findings 19, 21, 22): `j e` edited, `j d` closed and `1 j m` offered to
merge into the customer just left, while the screen already showed the next one. The
customer under the cursor shows a moment after the cursor stops; a key typed meanwhile
waits for them (and hurries them), while moving on (j, k, g ...) goes past at once.
Every test types its keys in one burst, as a fast typist or a terminal paste does."""
from __future__ import annotations

import pytest

from console.screens.pickers import Dialog
from store import Store
from tests.support.console import ids, make_app, screen_text, settle, type_fast, until  # noqa: F401

pytestmark = pytest.mark.anyio


def _calm(app) -> bool:
    return not app.keys.holding and not app.busy()


async def _at_top(pilot):
    """The queue focused with its first row's customer shown; the rows' customer ids."""
    app = pilot.app
    app.queue.focus()
    await pilot.press("g")
    rows = [app.queue.row(i).customer_id for i in range(app.queue.total)]
    await until(pilot, lambda: app.current is not None and app.current.id == rows[0] and _calm(app))
    return rows


def _status(db_path, clock, cid) -> str:
    s = Store(db_path, clock=clock)
    try:
        return s.customer(cid).status
    finally:
        s.close()


async def test_j_then_e_edits_the_customer_moved_to(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rows = await _at_top(pilot)
        for below in rows[1:3]:
            type_fast(pilot, "j", "e")
            await until(pilot, lambda: isinstance(app.screen, Dialog))
            assert f"Edit #{below} " in screen_text(app)
            assert app.current.id == below
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, Dialog) and _calm(app))


async def test_j_then_d_closes_the_customer_moved_to_not_the_one_left(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rows = await _at_top(pilot)
        type_fast(pilot, "j", "d")
        await until(pilot, lambda: _calm(app) and _status(db_path, clock, rows[1]) == "done")
        assert _status(db_path, clock, rows[0]) == "open"


async def test_moving_on_goes_past_at_once_and_the_key_after_is_for_where_the_cursor_stopped(db_path, clock, tmp_path,
                                                                                              ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rows = await _at_top(pilot)
        type_fast(pilot, "j", "j", "j", "k", "d")
        await until(pilot, lambda: _calm(app) and _status(db_path, clock, rows[2]) == "done")
        assert [_status(db_path, clock, c) for c in rows] == ["open", "open", "done"] + ["open"] * (len(rows) - 3)
        assert app.current.id == rows[2]


async def test_1_j_m_offers_to_merge_into_the_customer_shown(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rows = await _at_top(pilot)
        app.timeline.focus()
        await settle(pilot)
        type_fast(pilot, "1", "j", "m")
        await until(pilot, lambda: isinstance(app.screen, Dialog))
        shown = Store(db_path, clock=clock).customer(rows[1]).name
        assert f"Merge into {shown}" in screen_text(app), screen_text(app)
        assert app.current.id == rows[1]
