"""The console driven like a person would: keys in, screen and store out."""
from __future__ import annotations

import contextlib
import time

import pytest
from textual.worker import WorkerCancelled, WorkerFailed

from connectors.config import validate
from console import keymap
from console.app import OmnideskApp
from console.screens.help import HelpScreen
from store import Store
from store.models import AttachmentIn, InboundMessage, Sender

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


def seed(path, clock) -> dict[str, int]:
    """A small deterministic store: five customers on three channels."""
    s = Store(path, clock=clock)
    n = iter(range(1, 10_000))

    def msg(ch, addr, text, ago, name="", handle="", emails=(), **kw):
        return s.ingest(InboundMessage(ch, "main", f"m{next(n)}", Sender(ch, addr, name, handle, tuple(emails)),
                                       text, NOW - ago, **kw))

    d = msg("telegram", "2002", "спасибо! all good now", 26 * 3600, "Дмитрий Орлов")
    b = msg("email", "bob@li.example", "Do you ship to Norway? [bold red]cheap[/] \x1b[31mRED\x1b[0m\x1b]0;pwned\x07 ok",
            3 * 3600, "Bob Li", subject="Shipping")
    j = msg("email", "jane@roe.example",
            "Hello,\n\nmy order #1042 arrived broken. The vase is in pieces.\n\n"
            "On Mon, Sep 14 2026, Shop <shop@example.com> wrote:\n> Your order has shipped.\n> Thanks!",
            7200, "Jane Roe", subject="Order #1042 arrived broken",
            meta={"new_text": "Hello,\n\nmy order #1042 arrived broken. The vase is in pieces."})
    msg("telegram", "1001", "here is a photo of the vase", 720, "Jane Roe", "janeroe", emails=["jane@roe.example"],
        attachments=[AttachmentIn("vase photo.jpg", "image/jpeg", b"\xff\xd8" + b"x" * 2000)])
    c = msg("slack", "U123", "is the API down? getting 502s", 300, "Carol Diaz", "carol")
    r = msg("slack", "U999", "any update on my vase?", 100, "Jane Roe", "jroe")
    s.close()
    return {"dmitry": d.customer_id, "bob": b.customer_id, "jane": j.customer_id, "carol": c.customer_id,
            "jane_slack": r.customer_id}


def make_app(db_path, clock, tmp_path, **kw) -> OmnideskApp:
    cfg = validate({"agent": {"name": "alice"},
                    "attachments": {"save_dir": str(tmp_path / "saved"), "open_command": "true"},
                    "console": {"confirm_send": kw.pop("confirm_send", False), "bell": kw.pop("bell", False),
                                # on in tests/test_console_workflow.py; here a test stays with its customer
                                "next_after_done": kw.pop("next_after_done", False)},
                    **({"targets": kw.pop("targets")} if "targets" in kw else {})})
    return OmnideskApp(db_path, cfg, "alice", clock=clock, cursor_blink=False, start_engine=kw.pop("start_engine", False),
                       keymap=kw.pop("keymap", None) or keymap.load(False), poll_interval=kw.pop("poll_interval", 0.1),
                       **kw)


async def settle(pilot, rounds: int = 2) -> None:
    """Let the console finish what a key started (workers, background reads)."""
    deadline = time.monotonic() + 30  # a loaded machine: reads can take seconds
    for _ in range(rounds):
        await pilot.pause()
        await workers_done(pilot.app)
        while pilot.app.busy() and time.monotonic() < deadline:
            await pilot.pause(0.02)
            await workers_done(pilot.app)
    await pilot.pause()


async def workers_done(app) -> None:
    """Wait for the workers running now. A newer read of the same group cancels
    an older one (its result is dropped): that is an end too, not an error
    (`workers.wait_for_complete()` raises WorkerCancelled for it)."""
    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await worker.wait()


async def until(pilot, condition, timeout: float = 30.0) -> None:
    """Wait until the screen shows what a person would wait for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the console")
        await pilot.pause(0.05)
    await settle(pilot)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.fixture
def ids(db_path, clock):
    return seed(db_path, clock)


async def open_customer(pilot, cid):
    app = pilot.app
    app.queue.focus()
    assert app.queue.select_customer(cid)
    await pilot.press("enter")
    await until(pilot, lambda: app.current is not None and app.current.id == cid and app.focused is app.timeline)


# -- tests ---------------------------------------------------------------------------
async def test_queue_longest_wait_first_and_open_customer(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        names = [app.queue.row(i).name for i in range(app.queue.total)]
        assert names == ["Дмитрий Орлов", "Bob Li", "Jane Roe", "Carol Diaz", "Jane Roe"]
        await pilot.press("j", "j", "enter")
        # on screen, then the timeline takes focus (a moment after it is drawn)
        await until(pilot, lambda: app.current is not None and app.current.id == ids["jane"]
                    and app.focused is app.timeline)
        channels = [i.obj.channel for i in app.timeline.items if i.kind == "message"]
        assert channels == ["email", "telegram"]  # both channels, one timeline
        text = screen_text(app)
        assert "here is a photo of the vase" in text and "my order #1042 arrived broken" in text
        assert "vase photo.jpg" in text
        assert "quoted line" in text and "Your order has shipped" not in text  # history folded
        assert app.focused is app.timeline
        s = Store(db_path, clock=clock)
        assert s.customer(ids["jane"]).unread == 0
        s.close()


async def test_fold_toggle_shows_quoted_history(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("k", "z")  # the e-mail, then unfold
        await settle(pilot)
        assert "Your order has shipped" in screen_text(app)
        await pilot.press("z")
        await settle(pilot)
        assert "Your order has shipped" not in screen_text(app)


async def test_reply_goes_to_the_last_channel_and_shows_queued(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        assert "Telegram @janeroe" in screen_text(app)
        await pilot.press("r")
        await pilot.press(*"Sorry! A new vase ships today.")
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        last = s.timeline(ids["jane"])[-1]
        assert (last.direction, last.channel, last.state) == ("out", "telegram", "queued")
        assert last.text == "Sorry! A new vase ships today."
        assert "◌ queued" in screen_text(app)
        assert app.composer.area.text == ""
        # the engine reports a failure; the console shows it and retries on R
        s.mark_failed(s.outbox("queued")[0]["id"], "chat not found", None)
        s.close()
        await until(pilot, lambda: "✗ failed" in screen_text(app) and "chat not found" in screen_text(app))
        app.timeline.focus()
        await pilot.press("G", "R")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        assert s.timeline(ids["jane"])[-1].state == "queued"
        s.close()


async def test_switch_channel_then_send_on_email(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"Replacement on its way", "ctrl+o")
        await settle(pilot)
        await pilot.press(*"mail", "enter")
        await settle(pilot)
        assert app.composer.channel == "email"
        assert "e-mail jane@roe.example" in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        last = s.timeline(ids["jane"])[-1]
        assert last.channel == "email" and last.subject == "Re: Order #1042 arrived broken"
        s.close()


async def test_preview_shows_what_each_channel_gets(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"It is **done** <b>x</b>", "ctrl+r")
        await until(pilot, lambda: "as sent on Telegram" in screen_text(app))
        # Telegram HTML drawn as the app shows it: "done" bold, no tags; the agent's own <b> stays text
        assert "It is done <b>x</b>" in screen_text(app)
        assert "<b>done</b>" not in screen_text(app) and "&lt;" not in screen_text(app)
        line = next(s for s in app.screen._compositor.render_strips() if "It is done" in s.text)
        assert any(seg.text.strip() == "done" and seg.style and seg.style.bold for seg in line)
        app.composer.set_identity(next(i.id for i in app.current.identities if i.channel == "email"))
        await until(pilot, lambda: "as sent on e-mail" in screen_text(app))
        assert "It is *done* <b>x</b>" in screen_text(app)


async def test_template_by_fuzzy_name_with_prompts(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        from console.screens.pickers import PickerScreen, PromptScreen

        await pilot.press("r", "ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))  # type only once it is up
        await pilot.press(*"ordr stat", "enter")  # fuzzy: order-status
        asked = None
        for value in ("1042", "shipped today", "https://track.example/1042"):
            # each prompt comes after the template was rendered in the background: wait for a new one
            await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen is not asked)
            asked = app.screen
            await pilot.press(*value, "enter")
        await until(pilot, lambda: "https://track.example/1042" in app.composer.area.text)
        text = app.composer.area.text
        assert "1042" in text and "shipped today" in text and "https://track.example/1042" in text
        assert app.composer.show_preview
        assert "as sent on Telegram" in screen_text(app)


async def test_note_is_kept_and_marked(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("n", *"Called him, prefers e-mail", "ctrl+s")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        assert s.timeline(ids["bob"])[-1].direction == "note"
        s.close()
        text = screen_text(app)
        assert "note · alice" in text and "Called him, prefers e-mail" in text


async def test_merge_then_undo(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("m")
        await settle(pilot)
        await pilot.press(*"jroe")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "Merge #" in screen_text(app)
        await pilot.press("y")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        assert s.find_customer("slack:jroe") == ids["jane"]
        assert "slack" in s.customer(ids["jane"]).channels
        assert "any update on my vase?" in screen_text(app)
        assert "merged customer" in screen_text(app)
        app.queue.focus()
        await pilot.press("u")
        await settle(pilot, 3)
        assert s.find_customer("slack:jroe") == ids["jane_slack"]
        s.close()
        assert "any update on my vase?" not in screen_text(app).split("╭")[2]


async def test_split_an_identity_out(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*"1001", "enter")
        await until(pilot, lambda: "Split tg 1001 out of" in screen_text(app))  # asked first, as merge is
        await pilot.press("n")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        assert s.find_customer("telegram:1001") == ids["jane"]
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*"1001", "enter")
        await until(pilot, lambda: "Split tg 1001 out of" in screen_text(app))
        await pilot.press("y")
        await until(pilot, lambda: "split out as customer" in screen_text(app))
        assert s.find_customer("telegram:1001") != ids["jane"]
        s.close()


async def test_search_opens_the_customer_at_the_message(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"norway")
        await until(pilot, lambda: getattr(app.screen, "hits", None))
        assert "«Norway»" not in screen_text(app) and "Norway" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: app.current.id == ids["bob"])
        assert app.timeline.selected.subject == "Shipping"
        assert app.queue.selected_id == ids["bob"]
        # filters are errors a person can read
        await pilot.press("slash", *"channel:fax")
        await until(pilot, lambda: "expected one of" in screen_text(app))
        assert "channel:fax: expected one of" in screen_text(app)
        await pilot.press("escape")


async def test_snooze_parses_human_times(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("s", *"tomorow")
        await pilot.pause()
        assert "tomorow" in screen_text(app) and "expected" in screen_text(app)
        await pilot.press("enter")  # refused: still asking
        await settle(pilot)
        for _ in "tomorow":
            await pilot.press("backspace")
        await pilot.press(*"2h", "enter")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        c = s.customer(ids["carol"])
        assert c.status == "snoozed" and c.snoozed_until == NOW + 7200
        s.close()
        assert ids["carol"] not in [app.queue.row(i).customer_id for i in range(app.queue.total)]


async def test_tag_assign_done_and_filters(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("t", *"vip, norway", "enter")
        await settle(pilot, 3)
        await pilot.press("a", "enter")  # defaults to me
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        c = s.customer(ids["bob"])
        assert c.tags == ["norway", "vip"] and c.assignee == "alice"
        await pilot.press("f", *"mine", "enter")
        await settle(pilot)
        assert app.queue.total == 1 and app.queue.selected_id == ids["bob"]
        await pilot.press("f", *"telegram", "enter")
        await settle(pilot)
        assert app.source.channel == "telegram"
        await pilot.press("f", *"all", "enter")
        await pilot.press("f", *"clear", "enter")
        await settle(pilot)
        assert app.queue.total == 5
        await pilot.press("d")
        await settle(pilot, 3)
        assert s.customer(app.current.id).status == "done"
        s.close()


async def test_live_update_keeps_the_selected_customer(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # Jane Roe
        assert app.queue.selected_id == ids["jane"]
        other = Store(db_path, clock=clock)  # another process: the engine
        other.ingest(InboundMessage("telegram", "main", "late1", Sender("telegram", "3003", "Eve Early"),
                                    "waiting since forever", NOW - 40 * 3600))
        await until(pilot, lambda: app.queue.total == 6)
        assert app.queue.row(0).name == "Eve Early"  # the new one waited longest
        assert app.queue.selected_id == ids["jane"]  # the cursor stayed on Jane
        assert "Eve Early" in screen_text(app)
        await until(pilot, lambda: "New message" in screen_text(app))  # a toast (and the bell when configured)
        assert "tg Eve Early: waiting since forever" in screen_text(app)
        # presence: another agent opens the same customer
        other.set_presence("bob", app.current.id if app.current else ids["jane"], "replying")
        await until(pilot, lambda: "bob is replying to this customer" in screen_text(app))
        other.close()


async def test_save_attachment(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("w")
        await settle(pilot)
        saved = tmp_path / "saved" / "vase photo.jpg"
        assert saved.read_bytes()[:2] == b"\xff\xd8"
        await pilot.press("w")
        await settle(pilot)
        assert (tmp_path / "saved" / "vase photo (1).jpg").exists()


async def test_command_palette_lists_every_action(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for action in keymap.ACTIONS:
            if action.name not in ("command_palette", "quit"):
                assert action.description in titles, action.id
        await pilot.press("ctrl+p", *"snooze")
        await until(pilot, lambda: "Snooze until" in screen_text(app))


async def test_the_palette_offers_one_keys_entry_ours(db_path, clock, tmp_path, ids):
    """Textual's own "Keys" (a side panel esc does not close) is not offered next to ours."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"keys")
        await until(pilot, lambda: "Keys and help" in screen_text(app))
        assert "Show help for the focused widget" not in screen_text(app)
        assert [c.title for c in app.get_system_commands(app.screen)].count("Keys") == 0
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and "esc closes" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_help_screen_is_generated_from_the_live_keymap(db_path, clock, tmp_path, ids):
    live = keymap.load(False)
    live["queue.down"] = "ctrl+j,down"
    app = make_app(db_path, clock, tmp_path, keymap=live)
    async with app.run_test(size=(120, 50)) as pilot:  # tall enough to show the queue keys under the global ones
        await settle(pilot)
        await pilot.press("ctrl+j")
        assert app.queue.cursor == 1
        await pilot.press("j")  # no longer bound in the queue
        assert app.queue.cursor == 1
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "^j / ↓" in text and "queue.down" in text


async def test_engine_starts_and_stops_with_the_app(db_path, clock, tmp_path, ids):
    from connectors.engine import Engine

    made = []

    def factory(path, config, agent):
        made.append(Engine(path, [], holder="console-test", lease_seconds=5))
        return made[-1]

    app = make_app(db_path, clock, tmp_path, engine_factory=factory, start_engine=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.engine is made[0] and made[0].threads
    assert made[0].threads == [] and made[0].stop_event.is_set()


async def test_narrow_terminal_collapses_panes(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.query_one("#profile-pane").display
        assert app.query_one("#queue-pane").outer_size.width == 30
        await pilot.press("p")
        await settle(pilot)
        assert app.query_one("#profile-pane").display


async def test_confirm_step_before_sending(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, confirm_send=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", *"Looking into it now", "ctrl+s")
        # the question and the reply as it will be sent (rendered in the background)
        await until(pilot, lambda: "Send this reply via Slack U123?" in screen_text(app)
                    and "as sent on Slack" in screen_text(app))
        await pilot.press("n")  # no: nothing queued, the text stays
        await until(pilot, lambda: "Send this reply via" not in screen_text(app))
        s = Store(db_path, clock=clock)
        assert s.timeline(ids["carol"])[-1].direction == "in"
        assert app.composer.area.text == "Looking into it now"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Send this reply via Slack U123?" in screen_text(app))
        await pilot.press("y")
        await until(pilot, lambda: s.timeline(ids["carol"])[-1].direction == "out")  # queued
        s.close()


async def test_channel_health_in_the_status_bar(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.set_health("email:work", "ok")
    s.set_health("telegram:shop", "failed", "Unauthorized: bad bot token")
    s.set_health("slack:team", "retrying", "rate limited, retry in 30s")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        status = screen_text(app).splitlines()[-1]
        assert "● email:work" in status
        assert "✗ telegram:shop (Unauthorized: bad bot token)" in status
        assert "◐ slack:team (rate limited, retry in 30s)" in status
        assert "waiting 5" in status


async def test_unknown_theme_falls_back_with_a_notice(db_path, clock, tmp_path, ids):
    cfg = validate({"console": {"theme": "no-such-theme"}})
    app = OmnideskApp(db_path, cfg, "alice", clock=clock, cursor_blink=False, start_engine=False,
                      keymap=keymap.load(False))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        assert "unknown theme 'no-such-theme'" in screen_text(app)


async def test_edits_and_deletions_are_shown(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.ingest(InboundMessage("slack", "main", "m5", Sender("slack", "U123", "Carol Diaz", "carol"),
                            "is the API down? getting 504s now", NOW - 200, kind="edit"))
    s.ingest(InboundMessage("email", "main", "m2", Sender("email", "bob@li.example", "Bob Li"), "", NOW, kind="delete"))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        text = screen_text(app)
        assert "getting 504s now" in text
        assert "✎ edited" in text and "was: is the API down? getting 502s" in text
        await open_customer(pilot, ids["bob"])
        assert "deleted by the customer" in screen_text(app)
        assert "Do you ship to Norway?" in screen_text(app)  # kept for the record


async def test_open_attachment_with_the_configured_command(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)  # open_command = "true"
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("o")
        await until(pilot, lambda: "opened vase photo.jpg with true" in screen_text(app))
        assert (tmp_path / "saved" / "vase photo.jpg").exists()
        await pilot.press("k", "o")  # the e-mail has none
        await until(pilot, lambda: "This message has no attachments." in screen_text(app))


async def test_status_and_untag(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("t", *"vip", "enter")
        await settle(pilot, 3)
        await pilot.press("T", "enter")
        await settle(pilot, 3)
        await pilot.press("S", *"pending", "enter")
        await settle(pilot, 3)
        s = Store(db_path, clock=clock)
        c = s.customer(ids["bob"])
        assert c.tags == [] and c.status == "pending"
        s.close()
        assert "you set status pending" in screen_text(app)  # the event, inline, in words


async def test_long_history_loads_older_messages(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.ingest_batch([InboundMessage("telegram", "main", f"old{i}", Sender("telegram", "2002", "Дмитрий Орлов"),
                                   f"old message {i}", NOW - 90 * 86400 + i * 60) for i in range(200)])
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["dmitry"])
        assert len([i for i in app.timeline.items if i.kind == "message"]) == 150
        await pilot.press("g")
        # the top reached, the older ones load in the background: wait for the oldest to arrive
        await until(pilot, lambda: "old message 0" in "\n".join(i.obj.text for i in app.timeline.items
                                                                  if i.kind == "message"))
        assert "older messages" not in screen_text(app)


async def test_a_banner_stays_on_screen_when_given(db_path, clock, tmp_path, ids):
    """The demo's banner: always visible, never taken as markup."""
    app = make_app(db_path, clock, tmp_path, banner="DEMO: simulated customers [bold]only[/bold]")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter")
        await settle(pilot)
        assert "DEMO: simulated customers [bold]only[/bold]" in screen_text(app)


async def test_search_labels_our_reply_as_ours_and_shows_it_as_sent(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.queue_reply(ids["bob"], "Yes, we ship to **Norway** in 3 days", "alice")
    s.queue_reply(ids["bob"], "Norway shipping is **free** this week", "bea")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"norway")
        await until(pilot, lambda: len(getattr(app.screen, "hits", None) or []) == 3)
        rows = [line for line in screen_text(app).splitlines() if "Norway" in line]
        assert any("you → Bob Li" in r and "Yes, we ship to *Norway* in 3 days" in r for r in rows)
        assert any("bea → Bob Li" in r and "is *free* this week" in r for r in rows)  # a colleague's, by name
        assert any("Bob Li" in r and "→" not in r and "Do you ship" in r for r in rows)  # his own words
        assert not [r for r in rows if "**" in r]


async def test_our_reply_shows_as_read_not_as_markdown(db_path, clock, tmp_path, ids):
    s = Store(db_path, clock=clock)
    s.queue_reply(ids["carol"], "**Sorry**, it is back. See [status](https://s.io)\n\n- retry now", "alice")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        text = screen_text(app)
        assert "*Sorry*, it is back. See status <https://s.io>" in text  # as in an e-mail's text part
        assert "- retry now" in text
        timeline = [line.split("││")[1] for line in text.splitlines() if line.count("││") == 2]
        assert not [line for line in timeline if "**" in line or "](" in line]
        assert "you: **Sorry**" in text  # the queue says the last word was ours


async def test_stats_key_opens_the_stats_screen_and_escape_closes_it(db_path, clock, tmp_path, ids):
    from console.screens.stats import StatsScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await until(pilot, lambda: "Stats — last 7 days" in screen_text(app))
        text = screen_text(app)
        rows = {words[0]: words for words in map(str.split, text.splitlines())
                if len(words) > 1 and words[0] in ("email", "telegram", "slack", "all") and words[1].isdigit()}
        # in, out, auto ... waiting: Bob and Jane by e-mail; Dmitry and Jane on Telegram; Carol and Jane on Slack
        assert rows["email"][:4] == ["email", "2", "0", "0"]
        assert rows["telegram"][:4] == ["telegram", "2", "0", "0"]
        assert rows["slack"][:4] == ["slack", "2", "0", "0"]
        assert rows["all"][:4] == ["all", "6", "0", "0"]
        assert "Inbound by hour of day" in text
        await pilot.press("d")  # the console's keys do not reach the customer behind the screen
        await settle(pilot)
        assert isinstance(app.screen, StatsScreen)
        s = Store(db_path, clock=clock)
        assert all(s.customer(cid).status == "open" for cid in ids.values())
        s.close()
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, StatsScreen)
        assert "Stats —" not in screen_text(app) and "Jane Roe" in screen_text(app)
        # the command palette lists it too
        await pilot.press("ctrl+p", *"stats per")
        await until(pilot, lambda: "Stats per channel" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: "Stats — last 7 days" in screen_text(app))
        await pilot.press("escape")
        await settle(pilot)
        # and the help screen
        await pilot.press("question_mark")
        await settle(pilot)
        help_line = next(line for line in screen_text(app).splitlines() if "global.stats" in line)
        assert "D" in help_line and "Stats per channel" in help_line


def _queue_right(app, name: str) -> str:
    """A customer's first line in the queue (the left pane): name, badge and time."""
    return next(line.split("│")[1].strip() for line in screen_text(app).splitlines()
                if line.startswith("│") and name in line.split("│")[1])


async def test_queue_counts_down_to_the_waiting_time_target(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"email": "4h", "chat": "15m"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "1h00m left" in _queue_right(app, "Bob Li")  # e-mail, 3h of 4h
        assert "25h45m over" in _queue_right(app, "Дмитрий Орлов")  # Telegram, 26h of 15m
        assert "10m left" in _queue_right(app, "Carol Diaz")  # Slack, 5m of 15m
        assert "13m left" in text  # Jane on Slack, 100s of 15m
        styles = {seg.text.strip(): seg.style for y in range(app.queue.size.height)
                  for seg in app.queue.render_line(y) if seg.text.strip()}
        overdue, soon, due = (app.queue.get_component_rich_style(c) for c in
                              ("queue--overdue", "queue--due-soon", "queue--due"))
        assert styles["25h45m over"].color == overdue.color and styles["25h45m over"].bold
        assert styles["1h00m left"].color == due.color  # exactly a quarter left: not yet a warning
        clock.advance(2 * 60)  # Bob: 58m of 4h left, under a quarter

        def styles_now() -> dict:
            return {seg.text.strip(): seg.style for y in range(app.queue.size.height)
                    for seg in app.queue.render_line(y) if seg.text.strip()}
        await until(pilot, lambda: "58m left" in styles_now())
        assert styles_now()["58m left"].color == soon.color


async def test_queue_without_targets_shows_the_age(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"email": "4h"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "1h00m left" in _queue_right(app, "Bob Li")
        right = _queue_right(app, "Carol Diaz")  # Slack has no target here
        assert right.endswith("5m") and "left" not in right and "over" not in right


async def test_a_breach_while_open_is_told_once(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"chat": "15m"}, bell=True)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)

        def told() -> list[str]:
            return [n.message for n in app._notifications if n.title == "Waiting-time target missed"]

        async def a_check_since(at: float) -> None:
            """Wait until a breach check started at or after `at` (console clock) has finished:
            only then can "nothing was told" be true for the right reason."""
            live = app.desk.live
            await until(pilot, lambda: live._breach_checked_at >= at and not live._breach_checking)
        # Dmitry and Jane (Telegram) were overdue before the console opened: not news
        await a_check_since(clock())
        assert told() == [] and bells == []
        clock.advance(11 * 60)  # Carol (Slack, 5m) goes past 15m; Jane on Slack (100s) not yet
        await until(pilot, lambda: told())
        assert told() == ["sl Carol Diaz has waited past the 15m target"]
        assert "Waiting-time target missed" in screen_text(app)
        assert bells == [1]
        assert "over" in _queue_right(app, "Carol Diaz")
        # the engine records the same breach later: no second toast
        s = Store(db_path, clock=clock)
        carol = s.customer(ids["carol"])
        assert s.record_breach(carol.id, carol.waiting_since, "slack", 900, 1)
        s.close()
        clock.advance(20)
        await a_check_since(clock())
        assert len(told()) == 1
        clock.advance(3 * 60)  # now Jane on Slack too
        await until(pilot, lambda: len(told()) == 2)
        assert told()[1] == "sl Jane Roe has waited past the 15m target"
        clock.advance(60)
        await a_check_since(clock())
        assert len(told()) == 2 and bells == [1, 1]


async def test_profile_shows_time_engaged_in_this_case(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        text = " ".join(line.split("│")[-2].strip() for line in screen_text(app).splitlines() if line.count("│") >= 4)
        # e-mail 2h ago, Telegram 12m ago: one gap, counted up to 10 minutes
        assert "this case: 2 messages on email, telegram, 10m engaged" in " ".join(text.split())
