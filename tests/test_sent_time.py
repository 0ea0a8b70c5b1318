"""A retried reply shows when it really went out (newcomer 15): in the console's timeline."""
from __future__ import annotations

import pytest

from store import Store
from store.models import Receipt
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_the_timeline_shows_the_time_a_retried_reply_went_out(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    reply = s.queue_reply(ids["bob"], "We ship to Norway, yes.", "alice")
    [out] = s.claim_due()
    s.mark_failed(out.outbox_id, "connection refused", None)
    s.retry(reply, "alice")
    clock.advance(8 * 60 + 30)  # the retry goes out eight and a half minutes after it was written
    [out] = s.claim_due()
    s.mark_sent(out.outbox_id, Receipt("x1"))
    written, sent = s.message(reply).sent_at, s.message(reply).delivered_at
    s.close()
    from store.timefmt import format_clock

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await until(pilot, lambda: "✓ sent" in screen_text(app))
        line = next(line for line in screen_text(app).splitlines() if "✓ sent" in line)
        assert format_clock(sent, clock()) in line and format_clock(written, clock()) not in line
