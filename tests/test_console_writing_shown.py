"""Whether keys go into the reply is plain to see (newcomer trial 2, findings 41 and 43):
an `r` typed into a reply that still had the focus went out as "rCiao Marco!", and new
text was typed in front of an old draft to another customer and sent with it. The
composer says "✎ writing" while it has the focus and, when it has not, how to start;
`r` on a customer with an unsent draft says that typing goes on after that draft."""
from __future__ import annotations

import pytest

from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


def _bar(app) -> str:
    return str(app.composer.query_one("#composer-bar").render())


async def test_the_composer_says_when_keys_go_into_the_reply(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        assert "✎ writing" not in screen_text(app)
        assert "r reply · n note to Jane Roe" in screen_text(app)
        await pilot.press("r")
        await until(pilot, lambda: "✎ writing" in screen_text(app))
        assert "r reply · n note" not in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: "✎ writing" not in screen_text(app) and "r reply · n note to Jane Roe" in screen_text(app))


async def test_r_on_a_customer_with_an_unsent_draft_says_typing_goes_on_after_it(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"We ship to Norway.", "escape")
        await open_customer(pilot, ids["carol"])
        await pilot.press("r")
        await settle(pilot)
        assert not any("continuing" in n.message for n in app._notifications)  # nothing written to Carol yet
        await pilot.press("escape")
        await open_customer(pilot, ids["bob"])
        await pilot.press("r")
        await until(pilot, lambda: any("continuing your unsent reply to Bob Li (1 line)" in n.message
                                       for n in app._notifications))
        await pilot.press(*" Today.")
        assert app.composer.area.text == "We ship to Norway. Today."
