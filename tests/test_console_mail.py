"""What the agent sees of machine mail and relays on the console timeline."""
from __future__ import annotations

import pytest

from connectors.email.parse import parse
from store import Store
from tests.support.console import _utc, anyio_backend, make_app, open_customer, screen_text, settle  # noqa: F401
from tests.test_email_cases import case, reply

pytestmark = pytest.mark.anyio


async def test_via_relay_bounce_and_auto_reply_are_named_on_the_timeline(db_path, clock, tmp_path):
    s = Store(db_path, clock=clock)
    alice = s.ingest(parse(case("mail-person-in-reply-to", "1.eml"), "shop")).customer_id
    nina = s.ingest(parse(case("mail-bounce-and-auto-reply", "1-customer.eml"), "shop")).customer_id
    _, our_id = reply(s, nina, "Sorry! A blue mug ships today.")
    for name in ("3-out-of-office.eml", "2-bounce-of-our-reply.eml"):
        s.ingest(parse(case("mail-bounce-and-auto-reply", name, **{"OUR-REPLY-ID": our_id}), "shop"))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        names = [app.queue.row(i).name for i in range(app.queue.total)]
        assert sorted(names) == ["Alice Archer", "Nina Berg"]  # the bounce made no customer; Nina waits again
        await open_customer(pilot, alice)
        assert "Alice Archer <alice@example.com> via Website Form" in screen_text(app)
        await open_customer(pilot, nina)
        text = screen_text(app)
        assert "automatic reply" in text and "I am away until Monday" in text
        assert "delivery report" in text
        assert "✗ failed" in text and "not delivered: 550 5.1.1" in text
