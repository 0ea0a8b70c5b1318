"""Tags typed in the console (newcomer 8): one form, and one `u` for one `t`."""
from __future__ import annotations

import pytest

from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_t_normalizes_what_is_typed_and_one_u_takes_it_all_back(db_path, clock, tmp_path, ids):
    def tags() -> list[str]:
        s = Store(db_path, clock=clock)
        try:
            return s.customer(ids["bob"]).tags
        finally:
            s.close()

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("t", *"shipping,Address Change, #vip", "enter")
        await until(pilot, lambda: tags() == ["address-change", "shipping", "vip"])
        await until(pilot, lambda: "#vip" in screen_text(app) and "##vip" not in screen_text(app))
        await pilot.press("u")
        await until(pilot, lambda: tags() == [])
