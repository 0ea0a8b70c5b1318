"""Keys typed fast across a chain of dialogs (picker, then prompt; template, then its
value prompts; status, then snooze; merge search, then confirm) reach the dialog
they were meant for, in order: none is lost, none runs a main-screen binding.
Each test types its whole sequence in one burst (tests/support/console.py
`type_fast`: no waiting for the console between keys), then checks the result."""
from __future__ import annotations

import pytest

from console.screens.pickers import Dialog
from store import Store
from tests.support.console import NOW, ids, make_app, open_customer, screen_text, settle, type_fast, until  # noqa: F401

pytestmark = pytest.mark.anyio


def _calm(app) -> bool:
    """No dialog up, no keys held, nothing running: the burst has been typed out."""
    return not isinstance(app.screen, Dialog) and not app.keys.holding and not app.busy()


async def test_a_new_name_typed_fast_through_picker_and_prompt_arrives_whole(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        # e: the edit picker; enter: its first line, the name; the new name; enter
        type_fast(pilot, "e", "enter", *"Robert Li", "enter")
        await until(pilot, lambda: _calm(app) and app.current.name == "Robert Li")
        assert app.focused is app.timeline  # nothing typed ran a main-screen binding (no 'R'etry, 'L', 'i'...)
        assert app.current.status == "open" and not app.current.tags
    s = Store(db_path, clock=clock)
    assert s.customer(ids["bob"]).name == "Robert Li"
    s.close()


async def test_a_fact_typed_fast_then_a_main_screen_key_goes_where_it_belongs(db_path, clock, tmp_path, ids):
    """Keys typed after a chain ends reach the main screen (t: tag), in order, once
    the dialogs have taken theirs."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        type_fast(pilot, "e", *"add", "enter", *"plan=gold", "enter", "t", *"vip", "enter")
        await until(pilot, lambda: _calm(app) and app.current.facts.get("plan") == "gold" and "vip" in app.current.tags)
    s = Store(db_path, clock=clock)
    assert s.customer(ids["carol"]).facts["plan"] == "gold" and s.customer(ids["carol"]).tags == ["vip"]
    s.close()


async def test_a_template_and_its_values_typed_fast_then_more_text(db_path, clock, tmp_path, ids):
    """The value prompts open after a background render: keys typed meanwhile wait for
    them, and what is typed after the last value goes into the reply after the template."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        type_fast(pilot, "r", "ctrl+t", *"order-status", "enter", *"A-1042", "enter", *"shipped today", "enter",
                  *"https://t.example/1", "enter", *"Cheers")
        await until(pilot, lambda: _calm(app) and app.composer.area.text.endswith("Cheers"))
        text = app.composer.area.text
        assert "Order **A-1042**: shipped today." in text and "https://t.example/1" in text
        assert app.focused is app.composer.area


async def test_status_then_snooze_typed_fast(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        type_fast(pilot, "S", *"snoo", "enter", *"2h", "enter")
        await until(pilot, lambda: _calm(app) and app.current.status == "snoozed")
        assert app.current.snoozed_until == NOW + 7200


async def test_merge_search_and_confirm_typed_fast_merge_the_customer_typed(db_path, clock, tmp_path, ids):
    """The merge picker searches in the background: enter typed before the results of
    "carol" are shown waits for them (it would have merged whoever was listed first)."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        type_fast(pilot, "m", *"Carol", "enter", "y")
        await until(pilot, lambda: _calm(app) and len(app.current.identities) == 2)
    s = Store(db_path, clock=clock)
    assert {i.address for i in s.customer(ids["bob"]).identities} == {"bob@li.example", "U123"}
    s.close()


async def test_cc_and_attachment_typed_fast(db_path, clock, tmp_path, ids):
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 tiny")
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        type_fast(pilot, "r", "ctrl+b", *"ann@example.com", "enter", "ctrl+f", *str(invoice), "enter", *"See attached")
        await until(pilot, lambda: _calm(app) and app.composer.area.text == "See attached")
        assert app.composer.cc == ["ann@example.com"] and app.composer.attachments == [str(invoice)]


async def test_keys_typed_right_after_opening_a_customer_are_for_them(db_path, clock, tmp_path, ids):
    """enter opens Carol (read in the background, here held up while the sync engine holds
    the store's write lock): r and the reply typed at once go to her composer, not to Bob's,
    who was open before."""
    import sqlite3

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        app.queue.focus()
        assert app.queue.select_customer(ids["carol"])
        engine = sqlite3.connect(db_path, isolation_level=None)
        engine.execute("BEGIN IMMEDIATE")  # opening marks her read: it waits for the lock
        try:
            type_fast(pilot, "enter", "r", *"Hi Carol, jk")
            # (not `until`: it settles, and the console is busy until the lock goes)
            for _ in range(1500):  # 30 s at most
                if app.desk._opening is not None and app.desk.reader.busy():
                    break
                await pilot.pause(0.02)
            await pilot.pause(0.3)  # a person's pause: the keys must still be waiting
            assert app.keys.holding and app.current.id == ids["bob"] and app.composer.area.text == ""
        finally:
            engine.execute("COMMIT")
            engine.close()
        await until(pilot, lambda: _calm(app) and app.composer.area.text == "Hi Carol, jk")
        assert app.current.id == ids["carol"] and app.composer.customer.id == ids["carol"]
        assert app.queue.selected_id == ids["carol"]
        assert app.composer.draft_for(ids["bob"]) is None  # nothing went to Bob


async def test_keys_typed_right_after_done_are_for_the_next_customer(db_path, clock, tmp_path, ids):
    """d marks Bob done and opens whoever waits longest next (Дмитрий): r and a reply typed
    at once are for that next customer, even while the store is busy (here locked by the
    engine) and Bob is still on screen."""
    import sqlite3

    app = make_app(db_path, clock, tmp_path, next_after_done=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        engine = sqlite3.connect(db_path, isolation_level=None)
        engine.execute("BEGIN IMMEDIATE")  # the done waits for the lock
        try:
            type_fast(pilot, "d", "r", *"Hello")
            for _ in range(1500):  # 30 s at most (not `until`: it settles, busy until the lock goes)
                if app.desk.reader.busy() and app.keys._held:
                    break
                await pilot.pause(0.02)
            await pilot.pause(0.3)  # a person's pause: the keys must still be waiting
            assert app.current.id == ids["bob"] and app.composer.area.text == ""
        finally:
            engine.execute("COMMIT")
            engine.close()
        await until(pilot, lambda: _calm(app) and app.composer.area.text == "Hello")
        assert app.current.id == ids["dmitry"] and app.composer.customer.id == ids["dmitry"]
        assert app.composer.draft_for(ids["bob"]) is None


async def test_keys_go_on_when_the_console_is_descheduled_between_two_clock_reads(db_path, clock, tmp_path, ids,
                                                                                   monkeypatch):
    """On a loaded machine the console's process is taken off the CPU for milliseconds at
    a time. Textual's one-shot timer reads the clock twice when it starts and never fires
    if more than its delay passed in between: the 2 ms look for a quiet console after a
    key was such a timer, so once in a while that key stayed "in flight" and every key
    typed after it was held for 40 s, then dropped. Here every clock read of Textual's
    timers comes 5 ms after the one before (a process descheduled each time)."""
    import itertools

    from textual import _time

    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 tiny")
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", "ctrl+f")
        await until(pilot, lambda: "Attach a file" in screen_text(app))
        real, late = _time.get_time, itertools.count(1)
        monkeypatch.setattr(_time, "get_time", lambda: real() + 0.005 * next(late))
        await pilot.press(*str(invoice), "enter", "ctrl+b", *"ann@example.com", "enter", *"See attached")
        await until(pilot, lambda: _calm(app) and app.composer.area.text == "See attached", timeout=20)
        assert app.composer.attachments == [str(invoice)] and app.composer.cc == ["ann@example.com"]


def _crowd(db_path, n: int = 20_000, text: str = "hello") -> None:
    """`n` more customers (one e-mail each, newer than the seeded ones, so those stay at the
    head of the queue): a name search then reads them all, tens of milliseconds or more,
    longer on a loaded machine."""
    from store.models import InboundMessage, Sender

    s = Store(db_path)
    for start in range(0, n, 5000):
        s.ingest_batch([InboundMessage("email", "main", f"crowd{i}", Sender("email", f"person{i}@crowd.example",
                                                                           f"Person {i}"), text, NOW - 60 + i / n)
                        for i in range(start, min(n, start + 5000))])
    s.close()


async def test_merge_typed_fast_while_the_search_is_slow(db_path, clock, tmp_path, ids):
    """m, a name, enter and y in one burst while the merge picker's search is still reading
    a store of 20,000 customers: enter waits for what "Carol" finds, and the y typed after
    it waits too (it is for the confirmation that follows, not the search box: "Caroly"
    finds nobody and nothing is merged)."""
    from textual.widgets import Input

    from console.screens.pickers import PickerScreen

    _crowd(db_path)
    typed: list[str] = []  # what the merge picker's search box showed, change by change

    def seen(message) -> None:
        if isinstance(message, Input.Changed) and message.input.id == "picker-input":
            typed.append(message.value)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), message_hook=seen) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        type_fast(pilot, "m", *"Carol", "enter", "y")
        # (ends either way: merged, or the picker left waiting for more typing)
        await until(pilot, lambda: (_calm(app) and len(app.current.identities) == 2)
                    or (isinstance(app.screen, PickerScreen) and not app.busy()))
        assert typed and typed[-1] == "Carol" and not any("y" in t for t in typed), (typed, screen_text(app))
        assert _calm(app) and len(app.current.identities) == 2, screen_text(app)
    s = Store(db_path, clock=clock)
    assert {i.address for i in s.customer(ids["bob"]).identities} == {"bob@li.example", "U123"}
    s.close()


async def test_search_typed_fast_opens_a_hit_for_what_was_typed(db_path, clock, tmp_path, ids):
    """/, words, enter, r and a reply in one burst, the store holding 20,000 messages about a
    vase: enter opens the first hit for "vase photo" (Jane's Telegram photo), not a hit for
    the "vase" typed before (someone in the crowd), however late its search ends; and r and
    the reply wait for her to open."""
    _crowd(db_path, text="my vase arrived broken")
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        type_fast(pilot, "/", *"vase photo", "enter", "r", *"Hi Jane")
        await until(pilot, lambda: _calm(app) and app.composer.area.text == "Hi Jane")
        assert app.current.id == ids["jane"] and app.composer.customer.id == ids["jane"]
        assert app.composer.draft_for(ids["bob"]) is None
