"""A day's support in the console (issue 16): undo, moving on, drafts, what the screen says."""
from __future__ import annotations

import asyncio
import time

import pytest

from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


def flat(app) -> str:
    """The screen as one line of words (a toast may wrap)."""
    return " ".join("".join(c if c not in "│╭╮╰╯▌▐▊▎" else " " for c in screen_text(app)).split())


async def until_closed(app, timeout: float = 60.0) -> None:
    """Wait for the console to close (a loaded box may take a while to shut it down)."""
    deadline = time.monotonic() + timeout
    while app.is_running:
        assert time.monotonic() < deadline, "the console is still open"
        await asyncio.sleep(0.05)


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


def row_line(app, name: str) -> str:
    return next(line for line in screen_text(app).splitlines() if name in line)


async def test_done_snooze_and_send_move_on_to_the_next_waiting_customer(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, next_after_done=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("d")  # Dmitry has waited longest
        await until(pilot, lambda: app.current.id == ids["dmitry"] and app.focused is app.timeline)
        await pilot.press("r", *"Glad it works!", "ctrl+s")  # answered: on to Jane
        await until(pilot, lambda: app.current.id == ids["jane"] and app.focused is app.timeline)
        await pilot.press("s", *"2h", "enter")  # snoozed: on to Carol
        await until(pilot, lambda: app.current.id == ids["carol"])
    s = Store(db_path, clock=clock)
    assert s.customer(ids["bob"]).status == "done" and s.timeline(ids["dmitry"])[-1].text == "Glad it works!"
    assert s.customer(ids["jane"]).status == "snoozed"
    s.close()


async def test_moving_on_can_be_turned_off(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, next_after_done=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("d")
        await settle(pilot, 3)
        assert app.current.id == ids["bob"] and app.current.status == "done"


async def test_quitting_without_drafts_does_not_ask(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await until_closed(app)  # no question in between: the console just closes


async def test_the_status_picker_takes_what_was_typed(db_path, clock, tmp_path, ids):
    from store.models import STATUSES

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("S", *"pend", "enter")  # "open" is a closer fuzzy match; "pending" starts so
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    assert s.customer(ids["bob"]).status == ("pending" if "pending" in STATUSES else "waiting")
    s.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_without_channels_the_console_says_to_run_init(db_path, clock, tmp_path, ids, size):
    app = make_app(db_path, clock, tmp_path, start_engine=True, engine_factory=lambda *a: None)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: "no channels yet: run `omnidesk init`" in screen_text(app).splitlines()[-1])
        assert "? keys" in screen_text(app).splitlines()[-1]


# -- what the screen shows is right (issue 16.7) ------------------------------------------
async def test_queue_rows_show_every_channel_and_an_unmistakable_unread_count(db_path, clock, tmp_path, ids):
    from store.models import InboundMessage, Sender

    s = Store(db_path, clock=clock)
    s.merge(ids["jane"], ids["jane_slack"], "alice")
    for n in range(2):
        s.ingest(InboundMessage("slack", "main", f"c{n}", Sender("slack", "U123", "Carol Diaz", "carol"),
                                f"still 502 ({n})", clock() - 60 + n))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "sl em tg" in row_line(app, "Jane Roe")  # merged: all her channels, the newest first
        assert "Carol Diaz  3 " in row_line(app, "Carol Diaz")
        index = next(i for i in range(app.queue.total) if app.queue.row(i).name == "Carol Diaz")
        segments = list(app.queue.render_line(index * 2 - int(app.queue.scroll_offset.y)))
        name = next(seg for seg in segments if "Carol Diaz" in seg.text)
        count = next(seg for seg in segments if seg.text == " 3 ")
        assert count.style.bgcolor is not None and count.style.bgcolor != name.style.bgcolor  # a badge of its own


async def test_the_profile_shows_notes(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("n", *"prefers e-mail", "ctrl+s")
        await until(pilot, lambda: "Notes" in screen_text(app) and "prefers e-mail · alice" in screen_text(app))


async def test_a_header_with_several_filters_stays_readable_at_80_columns(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.tag(ids["carol"], "vip", "alice")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for choice in ("waiting", "channel: Slack"):
            await pilot.press("f", *choice, "enter")
            await settle(pilot)
        await pilot.press("f", *"tag", "enter")
        await until(pilot, lambda: "#vip  1" in screen_text(app))  # the tags in use are offered
        await pilot.press(*"vip", "enter")
        await settle(pilot)
        assert "╭─ waiting + sl + #vip · 1 ─" in screen_text(app)  # + : the filters combine


async def test_an_empty_queue_says_which_filters_hide_customers_and_how_to_clear_them(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.tag(ids["bob"], "invoice", "alice")  # Bob is open, not pending
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f", *"pending", "enter")
        await settle(pilot)
        await pilot.press("f", *"tag", "enter")
        await until(pilot, lambda: "#invoice  1" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: "pending + #invoice · 0" in screen_text(app))
        text = screen_text(app)
        for line in ("Nothing here. Filters:", "pending + #invoice", "f → clear channel and tag", "shows all pending."):
            assert f"│  {line}" in text
        await pilot.press("f", *"clear channel", "enter")
        await until(pilot, lambda: "╭─ pending · 0 ─" in screen_text(app))
        await pilot.press("f", *"all", "enter")
        await until(pilot, lambda: "Bob Li" in screen_text(app))


async def test_toasts_are_short_and_never_cover_the_composer_at_80x24(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"half-written reply")
        await pilot.press("ctrl+o", "escape")  # a picker and back: the composer has focus
        app.notify("Carol Diaz: is the API down? getting 502s on every call since this morning, "
                   "please have a look as soon as you can", title="New message")
        await until(pilot, lambda: "New message" in screen_text(app))  # the toast is drawn
        lines = screen_text(app).splitlines()
        toast = [n for n, line in enumerate(lines) if "is the API down" in line]
        composer_top = app.composer.region.y
        assert toast and max(toast) < composer_top  # above the composer, never on it
        assert len(toast) <= 3  # short: a few lines at most
        assert "half-written reply" in "\n".join(lines[composer_top:])


async def test_attachment_lines_never_wrap_inside_a_value(db_path, clock, tmp_path, ids):
    from store.models import AttachmentIn, InboundMessage, Sender

    s = Store(db_path, clock=clock)
    s.ingest(InboundMessage("telegram", "main", "long-att", Sender("telegram", "1001", "Jane Roe", "janeroe"),
                            "the invoice", clock() - 30,
                            attachments=[AttachmentIn("invoice for order 1042 from the warehouse, scanned.pdf",
                                                      "application/pdf", b"%PDF" + b"x" * 150_000)]))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        text = screen_text(app)
        assert "application/pdf, 146.5 KB" in text  # type and size whole, on one line
        assert "▪ [1] invoice for order" in text


async def test_after_a_merge_the_timeline_redraws_whole(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("k", "m")
        await settle(pilot)
        await pilot.press(*"jroe")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await until(pilot, lambda: "slack" in app.current.channels)
        await settle(pilot, 3)
        timeline = [line[30:] for line in screen_text(app).splitlines()[:17]]
        header = next(line for line in timeline if "Jane Roe <jane@roe.example>" in line)
        assert header.rstrip(" │").endswith("12:13")  # laid out again for the new width: not "12:1"


# -- compose like a terminal user (issue 16.6) ---------------------------------------------
async def test_attach_a_file_with_path_completion_and_cc_on_e_mail(db_path, clock, tmp_path, ids):
    from connectors.email.compose import compose

    folder = tmp_path / "outbox files"
    folder.mkdir()
    (folder / "invoice-1039.pdf").write_bytes(b"%PDF-1.4 " + b"x" * 3000)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Invoice attached.", "ctrl+f")
        await until(pilot, lambda: "Attach a file" in screen_text(app))
        await pilot.press(*f"{folder}/inv")
        await pilot.pause(0.3)
        await pilot.press("right")  # takes the completion
        await until(pilot, lambda: app.screen.query_one("Input").value == f"{folder}/invoice-1039.pdf")
        await pilot.press("enter")
        await until(pilot, lambda: "📎 invoice-1039.pdf" in screen_text(app))
        await pilot.press("ctrl+b", *"billing@li.example", "enter")
        await until(pilot, lambda: "cc billing@li.example" in screen_text(app))
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    [out] = s.claim_due()
    msg, _ = compose(out, {"from_address": "help@shop.example"})
    assert msg["Cc"] == "billing@li.example" and msg["Subject"] == "Re: Shipping"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["invoice-1039.pdf"]
    s.close()


async def test_a_file_over_the_channels_limit_is_refused_before_sending(db_path, clock, tmp_path, ids):
    big = tmp_path / "screen recording.mp4"
    with open(big, "wb") as f:
        f.truncate(51 * 1024 * 1024)  # Telegram takes 50 MB
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["dmitry"])
        await pilot.press("r", *"the recording", "ctrl+f", *str(big), "enter")
        await until(pilot, lambda: "screen recording.mp4 is 51.0 MB; telegram takes files up to 50.0 MB"
                    in screen_text(app))
        await pilot.press("escape")
        await settle(pilot)
        assert "📎" not in screen_text(app)


async def test_u_right_after_done_takes_it_back_although_the_next_customer_opened(db_path, clock, tmp_path, ids):
    """The toast says "u undoes": it must, even though done moved on to the next customer."""
    app = make_app(db_path, clock, tmp_path, next_after_done=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("d")
        await until(pilot, lambda: app.current.id == ids["dmitry"])
        assert "Bob Li marked done · u undoes" in flat(app)  # the toast says whom: Dmitry is in view now
        await pilot.press("u")
        await until(pilot, lambda: "undid “marked done” for Bob Li" in flat(app) and app.current.id == ids["bob"])
        assert app.current.status == "open"


async def test_u_right_after_snooze_names_and_goes_back_to_the_snoozed_customer(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, next_after_done=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("s", *"2h", "enter")
        await until(pilot, lambda: app.current.id != ids["jane"] and "Jane Roe snoozed until" in flat(app))
        await pilot.press("u")
        await until(pilot, lambda: "undid “snoozed” for Jane Roe" in flat(app) and app.current.id == ids["jane"])
        assert app.current.status == "open"


async def test_at_80x24_no_composer_until_a_customer_is_open_and_the_main_keys_fit(tmp_path, clock):
    db_path = tmp_path / "o.db"
    s = Store(db_path, clock=clock)
    for name in ("email:demo", "slack:demo", "telegram:demo"):
        s.set_health(name, "ok")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: "waiting 0" in screen_text(app))
        status = screen_text(app).splitlines()[-1]
        for hint in ("? keys", "/ search", "r reply", "^p commands"):  # healthy channels make room for them
            assert hint in status, status
        assert "● 3 ok" in status
        assert "No customer selected" not in screen_text(app) and app.composer.region.height == 0
        s = Store(db_path, clock=clock)
        from tests.support.console import NOW
        from store.models import InboundMessage, Sender
        cid = s.ingest(InboundMessage("email", "main", "m1", Sender("email", "ann@x.example", "Ann"), "hello",
                                      NOW - 60)).customer_id
        s.close()
        await until(pilot, lambda: "Ann" in screen_text(app))
        await open_customer(pilot, cid)
        await until(pilot, lambda: app.composer.region.height > 0)  # a customer to answer: the composer is there
