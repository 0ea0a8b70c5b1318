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

def toasts(app) -> str:
    """The toasts on screen, each as one line (at 80 columns they wrap between panes)."""
    from textual.widgets._toast import Toast

    return "\n".join(" ".join(t.render().plain.split()) for t in app.screen.query(Toast))


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


# -- finding 1 (console part): absurd snoozes ----------------------------------------------
async def test_an_absurd_snooze_at_the_prompt_is_refused_and_the_prompt_stays(db_path, clock, tmp_path, ids):
    from console.screens.pickers import PromptScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"99999999999d", "enter")
        await until(pilot, lambda: "too far ahead" in screen_text(app))
        assert isinstance(app.screen, PromptScreen) and "at most 5 years" in screen_text(app)
        await pilot.press(*["backspace"] * 12, *"2h", "enter")  # corrected: it snoozes
        await until(pilot, lambda: app.screen is app.desk and "snoozed until" in screen_text(app))
    s = Store(db_path, clock=clock)
    assert s.customer(ids["bob"]).status == "snoozed"
    s.close()


async def test_odd_stored_times_render_as_text_never_a_traceback(db_path, clock, tmp_path, ids):
    """A store written before snoozes were bounded (or by hand): the timeline, queue and
    profile show such values plainly, at any size."""
    absurd = clock() + 99999999999 * 86400.0
    s = Store(db_path, clock=clock)
    cid = ids["bob"]
    with s.tx():
        s.conn.execute("UPDATE customers SET status='snoozed', snoozed_until=? WHERE id=?", (absurd, cid))
        s.log_event("status", "alice", cid, old="open", old_until=None, new="snoozed", until=absurd)
        s.log_event("status", "alice", cid, old="open", old_until=None, new="snoozed", until="soon")
        s.log_event("status", "alice", cid, old="open", new="snoozed", until=float("inf"))  # JSON: Infinity
        odd = s.log_event("tag", "alice", cid, tag="vip")
        s.conn.execute("UPDATE events SET at=? WHERE id=?", (absurd, odd))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.desk.set_filter(filter="snoozed")
        await settle(pilot)
        await open_customer(pilot, cid)
        await until(pilot, lambda: "snoozed until unix 8.64e+15" in screen_text(app))
        text = screen_text(app)
        assert "snoozed until not a time (soon)" in text and "unix 8.64e+15  you tagged vip" in text
        assert "snoozed until not a time (inf)" in text
        assert "Do you ship" in text and "reply via  em  e-mail bob@li.example" in text
        assert "zz?" in next(line for line in text.splitlines() if "│  Bob Li" in line)  # the queue row
        await pilot.resize_terminal(80, 24)  # crashed in describe_event
        await until(pilot, lambda: "Do you ship" in screen_text(app))
        await pilot.press("r", *"still here")
        await until(pilot, lambda: "still here" in screen_text(app))


# -- finding 5: an over-size e-mail asks first -----------------------------------------------
async def test_an_email_over_the_size_limit_asks_first_naming_size_and_limit(db_path, clock, tmp_path, ids):
    from console.screens.pickers import ConfirmScreen, PromptScreen

    big = tmp_path / "catalogue.pdf"
    big.write_bytes(b"%PDF" + b"x" * (12 * 1024 * 1024))
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Here is our catalogue.", "ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*str(big), "enter")
        await until(pilot, lambda: app.screen is app.desk and app.composer.attachments == [str(big)])
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = " ".join(screen_text(app).replace("│", " ").split())  # the dialog wraps its lines
        assert "This reply is big: it is 12.0 MB; the limit for one e-mail is 10 MB. Send it anyway?" in text
        assert "catalogue.pdf 12.0 MB" in text
        await pilot.press("n")  # not sent: all of it still in the composer
        await until(pilot, lambda: app.screen is app.desk)
        assert app.composer.area.text == "Here is our catalogue." and app.composer.attachments == [str(big)]
        s = Store(db_path, clock=clock)
        assert [m for m in s.timeline(ids["bob"]) if m.direction == "out"] == []
        s.close()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "queued" in screen_text(app) and not app.composer.area.text)
    s = Store(db_path, clock=clock)
    out = [m for m in s.timeline(ids["bob"]) if m.direction == "out"]
    assert len(out) == 1 and out[0].attachments and out[0].attachments[0].filename == "catalogue.pdf"
    s.close()


# -- finding 3: esc at a template's prompt -------------------------------------------------
async def test_esc_at_a_template_prompt_returns_to_the_reply_and_says_so(db_path, clock, tmp_path, ids):
    """Esc cancels the dialog and returns where the agent was (the reply, as in aerc or
    neomutt): the toast says nothing was inserted and that keys are text there; esc then
    leaves the reply, after which r starts it again."""
    from console.screens.pickers import PromptScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", "ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press(*"order-status", "enter")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        first = app.screen
        await pilot.press(*"A-1042", "enter")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen is not first)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.desk and app.focused is app.composer.area)
        assert "order-status not inserted · still writing to Bob Li · esc leaves the reply" in toasts(app)
        assert "esc leave" in screen_text(app) and app.composer.area.text == ""  # the open composer says its keys
        await pilot.press("escape", "r", *"Hi")
        await until(pilot, lambda: app.composer.area.text == "Hi")


# -- finding 13: the console's quirks -----------------------------------------------------
async def test_the_palette_runs_the_title_that_starts_with_what_was_typed(db_path, clock, tmp_path, ids):
    """`stat` enter ran "Set status"; it opens "Stats per channel" (status is `status`)."""
    from console.screens.stats import StatsScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"stat")
        await until(pilot, lambda: "Stats per channel" in screen_text(app) and "Set status" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, StatsScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.desk)
        await open_customer(pilot, ids["bob"])
        await pilot.press("ctrl+p", *"set st")
        await until(pilot, lambda: "Set status" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen) and "pending" in screen_text(app))


async def test_the_merge_picker_shows_addresses_and_takes_only_what_was_chosen(db_path, clock, tmp_path, ids):
    from textual.widgets import OptionList

    from console.screens.pickers import ConfirmScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen) and f"#{ids['jane_slack']} Jane Roe" in screen_text(app))
        picker = app.screen
        assert "sl U999 @jroe" in screen_text(app)  # which Jane Roe: her address and handle
        assert picker.query_one(OptionList).highlighted is None
        await pilot.press("enter")  # nothing chosen: nothing happens
        await settle(pilot)
        assert app.screen is picker
        await pilot.press("down", "enter")  # the first suggestion, as the agent saw it
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"Merge #{ids['jane_slack']} Jane Roe into #{ids['jane']} Jane Roe?" in screen_text(app)


async def test_done_on_a_done_customer_says_so_and_logs_nothing(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("d")
        await until(pilot, lambda: app.current.status == "done" and "Bob Li marked done" in toasts(app))
        await pilot.press("d")
        await until(pilot, lambda: "Bob Li is already done." in toasts(app))
    s = Store(db_path, clock=clock)
    assert [e.data.get("new") for e in s.events(ids["bob"]) if e.kind == "status"] == ["done"]
    s.close()


async def test_after_a_reply_the_queue_cursor_stays_on_the_same_customer(db_path, clock, tmp_path, ids):
    """The reply re-sorts the queue (Bob no longer waits): the cursor moves with Bob, so
    going back to the queue and acting hits Bob, the customer on screen, not whoever
    took his old place."""
    from console.screens.pickers import PromptScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        before = app.queue.cursor
        await pilot.press("r", *"Yes, we ship to Norway.", "ctrl+s")
        await until(pilot, lambda: app.composer.area.text == "" and app.queue.cursor != before)
        assert app.queue.selected_id == ids["bob"]  # moved down with him
        await pilot.press("1")
        await settle(pilot)
        assert app.focused is app.queue and app.current.id == ids["bob"]
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"norway", "enter")
        await until(pilot, lambda: "norway" in app.current.tags)
    s = Store(db_path, clock=clock)
    assert s.customer(ids["bob"]).tags == ["norway"] and s.customer(ids["jane"]).tags == []
    s.close()


async def test_nobody_else_waiting_says_which_queue_it_means(db_path, clock, tmp_path, ids):
    """In `mine`, done with the last of mine: the toast says others wait, not "nobody"."""
    s = Store(db_path, clock=clock)
    s.assign(ids["bob"], "alice", "alice")
    s.close()
    app = make_app(db_path, clock, tmp_path, next_after_done=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press(*"mine", "enter")
        await until(pilot, lambda: app.source.filter == "mine" and app.queue.total == 1)
        await open_customer(pilot, ids["bob"])
        await pilot.press("d")
        await until(pilot, lambda: "Nobody else assigned to you is waiting" in toasts(app))
        assert "Nobody else assigned to you is waiting; 4 more in waiting (f changes the filter)." in toasts(app)


async def test_timeline_keys_act_on_the_customer_shown_while_the_queue_has_focus(db_path, clock, tmp_path, ids):
    """The queue's cursor shows a customer: `w` (save the attachment) and `z` (fold) act
    on that timeline without enter first."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.focused is app.queue
        await pilot.press("j", "j")  # Jane Roe (her last message: a photo)
        await until(pilot, lambda: app.current is not None and app.current.id == ids["jane"])
        assert app.focused is app.queue
        await pilot.press("w")
        await until(pilot, lambda: (tmp_path / "saved" / "vase photo.jpg").exists())
        assert app.focused is app.queue


# -- finding 12: layout -----------------------------------------------------------------------
DRAFT = "Thanks for asking about shipping: we ship to Norway every weekday, and parcels usually arrive within five days."


async def test_an_unfocused_draft_reflows_when_the_terminal_is_resized(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *DRAFT, "escape")
        await until(pilot, lambda: app.focused is app.timeline)
        for size in ((80, 24), (100, 30), (80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            lines = []
            await until(pilot, lambda: app.composer.area.size.width == size[0] - 2)

            def shown() -> str:
                lines[:] = [line.strip() for line in screen_text(app).splitlines()
                            if line.startswith(" ") and not line.startswith(" reply via")][:-1]  # minus the status bar
                return " ".join(" ".join(lines).split())
            await until(pilot, lambda: DRAFT in shown())  # every word of it, on lines of the new width
            assert all(len(line) <= size[0] - 2 for line in lines)


async def test_at_80x24_the_open_composer_is_as_tall_as_its_text(db_path, clock, tmp_path, ids):
    """The timeline had about 8 rows with the composer open: now the composer grows with
    the reply (2 to 8 lines), so a short reply leaves the timeline 13."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"On its way!")
        await until(pilot, lambda: "On its way!" in screen_text(app))
        assert app.timeline.size.height >= 12 and "here is a photo of the vase" in screen_text(app)
        await pilot.press(*["enter", "x"] * 10)  # a long reply: the composer grows, to a limit
        await until(pilot, lambda: app.composer.area.size.height == 8)
        assert app.timeline.size.height >= 6
        await pilot.press("escape")  # left: small again
        await until(pilot, lambda: app.timeline.size.height >= 13)


async def test_toasts_leave_the_demo_banner_and_the_timeline_title_readable_at_80x24(db_path, clock, tmp_path, ids):
    from console.demo import banner

    store = tmp_path / "omnidesk-demo-k2x9q1ab" / "omnidesk.db"
    app = make_app(db_path, clock, tmp_path, banner=banner(store))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        app.notify("Carol Diaz: is the API down? getting 502s on every call since this morning", title="New message")
        await until(pilot, lambda: "New message" in toasts(app))
        text = screen_text(app)
        flat = "".join(text.split())  # the banner wraps at 80 columns
        assert "".join(str(store).split()) in flat  # the path to copy is all there
        assert "Jane Roe · tg em" in text or "Jane Roe · em tg" in text  # whom the timeline shows
