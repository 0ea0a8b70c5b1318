"""The console as newcomer trial 2 met it (/work/notes/newcomer-2.md): each test drives the
real console with Pilot and checks what the person at the keyboard sees."""
from __future__ import annotations

from pathlib import Path

import pytest

from console.screens.pickers import Dialog
from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


def flat(app) -> str:
    """The screen as one line of words (a toast or a title may wrap)."""
    return " ".join("".join(c if c not in "│╭╮╰╯▌▐▊▎" else " " for c in screen_text(app)).split())


def row_line(app, name: str) -> str:
    """The queue's row of `name` (not a pane title that names them)."""
    return next(line for line in screen_text(app).splitlines() if 0 <= line.find(name) < 30 and "─" not in line)


async def dialog_title(pilot, *keys: str) -> str:
    """Press `keys`, wait for the dialog they open, return its title; esc closes it."""
    app = pilot.app
    await pilot.press(*keys)
    await until(pilot, lambda: isinstance(app.screen, Dialog))
    title = str(app.screen.query_one(".dialog-title").render())
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, Dialog))
    return title


async def test_every_dialog_that_acts_on_a_customer_names_them(db_path, clock, tmp_path, ids):
    """Finding 9: `S pend` after a move-on or a re-sorted queue set the wrong customer
    pending, and "Set status" did not say whose; merge already said "Merge ... into #1 Jane Roe"."""
    s = Store(db_path, clock=clock)
    s.add_tags(ids["bob"], ["vip"], "alice")
    s.rename(ids["bob"], "Bob [bold]Li[/bold]", "alice")  # a name is never read as markup
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        name = "Bob [bold]Li[/bold]"
        assert await dialog_title(pilot, "S") == f"Set status of {name}"
        assert await dialog_title(pilot, "s") == f"Snooze {name} until"
        assert await dialog_title(pilot, "t") == f"Tag {name}"
        assert await dialog_title(pilot, "T") == f"Remove a tag from {name}"
        assert await dialog_title(pilot, "a") == f"Assign {name} to"
        await pilot.press("r")  # the reply's dialogs too
        assert await dialog_title(pilot, "ctrl+o") == f"Reply to {name} on which channel?"
        assert await dialog_title(pilot, "ctrl+f") == f"Attach a file to the reply to {name}"
        assert await dialog_title(pilot, "ctrl+b") == f"Cc of the reply to {name}"
        await pilot.press("escape")
        await pilot.press("S")  # and on screen, whole, at 80 columns
        await until(pilot, lambda: f"Set status of {name}" in screen_text(app))


async def test_recent_actions_show_every_tag_of_one_action_the_same_way(db_path, clock, tmp_path, ids):
    """Finding 10: `t Bulk Order, #VIP` then `U` read "tagged #bulk-order, vip"."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("t", *"Bulk Order, #VIP", "enter")
        await until(pilot, lambda: "tagged #bulk-order, #vip" in flat(app))  # the toast
        await pilot.press("U")
        await until(pilot, lambda: "Recent actions" in screen_text(app))
        assert "tagged #bulk-order, #vip Carol Diaz" in flat(app)
        await pilot.press("enter")
        await until(pilot, lambda: "undid “tagged #bulk-order, #vip” for Carol Diaz" in flat(app))


async def test_a_draft_reopened_with_r_takes_typing_at_its_end(db_path, clock, tmp_path, ids):
    """Finding 33: `r` on a saved draft put the cursor at its start: new lines went above it."""
    from store.drafts import Draft

    s = Store(db_path, clock=clock)
    s.save_draft("alice", Draft(ids["carol"], "Thanks, noted.\nMore soon."))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", "enter", *"line 2")
        await until(pilot, lambda: app.composer.area.text.endswith("line 2"))
        assert app.composer.area.text == "Thanks, noted.\nMore soon.\nline 2"


async def test_discarding_a_draft_asks_nothing_forgets_it_and_ctrl_z_brings_it_back(db_path, clock, tmp_path, ids):
    """Finding 33: there was no way to throw a draft away but Backspace until empty. ctrl+g
    (and "Discard draft" in the palette) discards it, the store forgets it at once, the ✎
    goes; ctrl+z in the empty reply brings back all of it (text and Cc)."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"A long answer", "enter", *"over two lines", "ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, Dialog))
        await pilot.press(*"ann@li.example", "enter")
        await until(pilot, lambda: app.composer.cc == ["ann@li.example"])
        app.desk.drafts.flush()
        await until(pilot, lambda: [d.text for d in Store(db_path, clock=clock).drafts("alice")]
                    == ["A long answer\nover two lines"] and "✎" in row_line(app, "Bob Li"))
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Draft to Bob Li discarded" in flat(app))
        assert app.composer.area.text == "" and app.composer.cc == [] and not isinstance(app.screen, Dialog)
        await until(pilot, lambda: Store(db_path, clock=clock).drafts("alice") == [] and "✎" not in row_line(app, "Bob Li"))
        await pilot.press("ctrl+z")
        await until(pilot, lambda: app.composer.area.text == "A long answer\nover two lines")
        assert app.composer.cc == ["ann@li.example"] and "Draft to Bob Li is back" in flat(app)
        await pilot.press(*" ok")  # typing goes on at its end
        await until(pilot, lambda: app.composer.area.text.endswith("lines ok"))

        await pilot.press("escape", "ctrl+p", *"discard dr")  # the palette entry
        await until(pilot, lambda: "Discard draft" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: app.composer.area.text == "" and "✎" not in row_line(app, "Bob Li"))
        await until(pilot, lambda: Store(db_path, clock=clock).drafts("alice") == [])


def _long_mail_and_replies(db_path, clock, jane_id) -> int:
    """A long forwarded mail to Jane, then newer messages: returns the long mail's id."""
    from store.models import InboundMessage, Sender
    from tests.support.console import NOW

    s = Store(db_path, clock=clock)
    body = "Fred, fire up Air Force One!\n\n---------- Forwarded message ----------\n" + "\n".join(
        f"line {n} of the forwarded argentina report" for n in range(1, 120))
    long_id = s.ingest(InboundMessage("email", "main", "long1", Sender("email", "jane@roe.example", "Jane Roe"),
                                      body, NOW - 60, subject="Fwd: the trip")).message_id
    s.close()
    return long_id


async def test_a_search_hit_opens_with_that_message_selected_and_its_start_on_screen(db_path, clock, tmp_path, ids):
    """Finding 23: enter on a hit opened the customer with the newest message selected
    (`w` then said "no attachments"), and a long one scrolled to its end."""
    long_id = _long_mail_and_replies(db_path, clock, ids["jane"])
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"photo of the vase")
        await until(pilot, lambda: "here is a photo of the vase" in screen_text(app) and app.screen is not app.desk)
        await pilot.press("enter")
        await until(pilot, lambda: app.current is not None and app.current.id == ids["jane"]
                    and app.screen is app.desk and app.timeline.selected is not None)
        await settle(pilot, 4)  # the queue's own preview of the row must not take the selection back
        assert "here is a photo of the vase" in app.timeline.selected.text
        await pilot.press("w")  # the found message is the one `w` acts on
        await until(pilot, lambda: (tmp_path / "saved" / "vase photo.jpg").exists())

        await pilot.press("slash", *"argentina report")
        await until(pilot, lambda: "argentina" in screen_text(app) and app.screen is not app.desk)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.desk and app.timeline.selected is not None
                    and app.timeline.selected.id == long_id)
        await settle(pilot, 4)
        assert app.timeline.selected.id == long_id
        text = screen_text(app)
        assert "Fred, fire up Air Force One!" in text and "Jane Roe <jane@roe.example>" in text  # its start, header too


async def test_a_long_newest_mail_opens_at_its_start(db_path, clock, tmp_path, ids):
    """Finding 23: a long mail opened from the queue showed its end (mid-forward), its
    header and first lines above the top."""
    _long_mail_and_replies(db_path, clock, ids["jane"])
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await until(pilot, lambda: "Fred, fire up Air Force One!" in screen_text(app))
        assert "Jane Roe <jane@roe.example>" in screen_text(app)  # its header
        await pilot.press("G")  # G still goes to the very end
        await until(pilot, lambda: "more characters (z shows all)" in screen_text(app)
                    and "Jane Roe <jane@roe.example>" not in screen_text(app))
        app.desk.refresh_all()  # a re-read (the live poll) leaves the end where G put it
        await settle(pilot, 3)
        assert "more characters (z shows all)" in screen_text(app)


async def test_cc_takes_names_and_lists_as_a_mail_client_writes_them(db_path, clock, tmp_path, ids):
    """Finding 25: `Bill <president@whitehouse.gov>` was refused ("not an e-mail address"),
    and at 80 columns the bar showed `… · cc` with the address cut off."""
    import email.utils

    from connectors.email.compose import compose
    from store.models import InboundMessage, Sender
    from tests.support.console import NOW

    s = Store(db_path, clock=clock)
    vp = s.ingest(InboundMessage("email", "main", "vp1", Sender("email", "vice-president@whitehouse.gov", "VP"),
                                 "Who else should know?", NOW - 30, subject="Trip")).customer_id
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, vp)
        await pilot.press("r", *"See you there.", "ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, Dialog))
        await pilot.press(*"Bill <president@whitehouse", "enter")  # not yet an address: says so, stays
        await until(pilot, lambda: "not an e-mail address" in screen_text(app))
        assert isinstance(app.screen, Dialog)
        await pilot.press(*'.gov>, "Doe, John" <john@x.example>', "enter")
        await until(pilot, lambda: not isinstance(app.screen, Dialog)
                    and app.composer.cc == ["Bill <president@whitehouse.gov>", '"Doe, John" <john@x.example>'])
        bar = next(line for line in screen_text(app).splitlines() if "✎ writing via" in line)
        assert "cc Bill, Doe, John" in bar and "…" not in bar.split("cc ")[1]  # whole names at 80 columns
        await pilot.resize_terminal(160, 40)  # room for the whole list
        await until(pilot, lambda: 'cc Bill <president@whitehouse.gov>, "Doe, John" <john@x.example>' in screen_text(app))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.composer.area.text == "" and not app.busy())
    s = Store(db_path, clock=clock)
    [out] = s.claim_due()
    msg, _ = compose(out, {"from_address": "help@shop.example"})
    assert email.utils.getaddresses(msg.get_all("Cc")) == [("Bill", "president@whitehouse.gov"),
                                                           ("Doe, John", "john@x.example")]
    s.close()


async def test_the_slack_preview_shows_what_the_customer_reads_not_the_wire_format(db_path, clock, tmp_path, ids):
    """Finding 35: the preview read `Send the number &amp; I'll check` (mrkdwn as sent);
    Telegram's shows what the app shows. What is sent stays mrkdwn, escaped."""
    from connectors import formatting

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", *"Send the number & I'll check <this> **today**", "ctrl+r")
        preview = lambda: str(app.composer.query_one("#preview").render())  # noqa: E731
        await until(pilot, lambda: "Send the number & I'll check <this> today" in preview())
        assert "as sent on Slack (as the customer's app shows it)" in preview()
        assert "&amp;" not in screen_text(app) and "*today*" not in preview()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.composer.area.text == "" and not app.busy())
    s = Store(db_path, clock=clock)
    sent = s.timeline(ids["carol"])[-1]
    assert formatting.slack_parts(sent.text) == ["Send the number &amp; I'll check &lt;this&gt; *today*"]
    s.close()


def test_the_cli_cc_takes_what_the_console_takes(db_path, clock, tmp_path, ids):
    """Finding 25, the CLI's side: `reply --cc 'Bill <president@whitehouse.gov>'` was refused
    ("give one plain address per --cc") while the console now takes it."""
    import email.utils
    import subprocess

    from connectors.email.compose import compose
    from tests.support.cli import OMNIDESK

    def reply(*cc: str):
        args = [a for c in cc for a in ("--cc", c)]
        return subprocess.run([str(OMNIDESK), "--db", str(db_path), "--agent", "alice", "reply", "bob@li.example",
                               "-m", "Copying them in.", *args], capture_output=True, text=True, timeout=60)
    proc = reply("Bill <president@whitehouse.gov>", '"Doe, John" <john@x.example>, ann@x.example')
    assert proc.returncode == 0, proc.stderr
    s = Store(db_path)  # the command queued it at the real time
    [out] = s.claim_due()
    msg, _ = compose(out, {"from_address": "help@shop.example"})
    assert email.utils.getaddresses(msg.get_all("Cc")) == [
        ("Bill", "president@whitehouse.gov"), ("Doe, John", "john@x.example"), ("", "ann@x.example")]
    s.close()
    proc = reply("Bill <president>")
    assert proc.returncode == 1 and "--cc: not an e-mail address: Bill <president>" in proc.stderr


def _highlighted_rows(app) -> list[str]:
    """The queue's rows drawn with the cursor's background."""
    queue = app.queue
    marks = {queue.get_component_rich_style(c).bgcolor for c in ("queue--cursor", "queue--cursor-blur")}
    rows = []
    for y in range(queue.size.height):
        strip = queue.render_line(y)
        if any(seg.style is not None and seg.style.bgcolor in marks for seg in strip):
            rows.append(strip.text)
    return rows


async def test_a_customer_who_leaves_the_queue_is_named_as_such_and_no_row_is_highlighted(db_path, clock, tmp_path, ids):
    """Finding 5: after `d` (next_after_done off) or `S pending`, the customer shown was no
    longer in the queue, yet a row looked selected or none did, with nothing said. Now the
    timeline's title says "not in open", no row is highlighted, keys act on the customer
    shown; j takes the row now at their place, u brings them back under the cursor."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        assert any("Bob Li" in r for r in _highlighted_rows(app))
        await pilot.press("d")
        await until(pilot, lambda: "Bob Li · em · not in open" in screen_text(app))
        assert _highlighted_rows(app) == [] and app.current.id == ids["bob"]
        await pilot.press("t", *"later", "enter")  # a key still acts on the customer shown, as the title says
        await until(pilot, lambda: "later" in app.current.tags and app.current.id == ids["bob"])
        await pilot.press("u", "u")  # the tag, then the done: Bob is back in the queue, under the cursor
        await until(pilot, lambda: any("Bob Li" in r for r in _highlighted_rows(app)))
        assert "not in open" not in screen_text(app)
        await pilot.press("d")
        await until(pilot, lambda: "not in open" in screen_text(app))
        app.queue.focus()
        below = app.queue.row(app.queue.cursor).customer_id  # the row now where Bob was
        await pilot.press("j")
        await until(pilot, lambda: app.current.id == below and len(_highlighted_rows(app)) == 2)
        assert "not in open" not in screen_text(app)


async def test_the_demo_banner_gives_the_whole_cli_line_in_80_columns(db_path, clock, tmp_path, ids):
    """Finding 1: the banner gave `OMNIDESK_DB=… omnidesk queue` without OMNIDESK_CONFIG (the
    CLI then acted as someone else: undo did not work). tests/test_console_tmux.py runs the
    lines as shown in a shell."""
    from console.demo import banner

    root = Path("/tmp/od-5xxq8aur/omnidesk-demo-k2x9q1ab")  # a TMPDIR longer than /tmp
    app = make_app(db_path, clock, tmp_path, banner=banner(root / "omnidesk.db", root / "config.toml"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = [line.strip() for line in screen_text(app).splitlines()]
        at = lines.index(f"export OMNIDESK_DB={root / 'omnidesk.db'} \\")
        assert lines[at - 1] == "DEMO: simulated customers, nothing leaves this machine. In another terminal:"
        assert lines[at + 1] == f"OMNIDESK_CONFIG={root / 'config.toml'}"  # a long TMPDIR: no room for more
    short = banner(Path("/tmp/omnidesk-demo-k2x9q1ab/omnidesk.db"), Path("/tmp/omnidesk-demo-k2x9q1ab/config.toml"))
    assert short.splitlines()[-1] == "OMNIDESK_CONFIG=/tmp/omnidesk-demo-k2x9q1ab/config.toml; omnidesk queue"
    assert max(len(line) for line in short.splitlines()) <= 80


async def test_the_status_bar_shows_only_the_configured_accounts_health(db_path, clock, tmp_path, ids):
    """Finding 20: with [telegram.main] taken out of the config, the status bar still said
    `◐ telegram:main (cannot reach Telegram: …)` from its last stored health row."""
    from connectors.config import validate
    from console import keymap
    from console.app import OmnideskApp

    s = Store(db_path, clock=clock)
    s.set_health("email:main", "ok")
    s.set_health("telegram:main", "retrying", "cannot reach Telegram: httpx.ConnectError")
    s.close()
    config = validate({"agent": {"name": "alice"}, "email": {"main": {"backend": "maildir", "maildir": str(tmp_path / "Mail")}},
                       "console": {"bell": False, "next_after_done": False}})
    app = OmnideskApp(db_path, config, "alice", clock=clock, cursor_blink=False, start_engine=False,
                      keymap=keymap.load(False), poll_interval=0.1)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: "email:main" in screen_text(app).splitlines()[-1])
        status = screen_text(app).splitlines()[-1]
        assert "telegram" not in status and "cannot reach Telegram" not in status, status


async def test_a_fact_name_with_spaces_is_taken_as_the_cli_takes_it(db_path, clock, tmp_path, ids):
    """Finding 11, the console's side: `e`, add a fact, `gift card=50 EUR` was refused
    ("a fact name is letters, digits, _ and -") while tags normalise; it is gift_card now,
    as `omnidesk fact` takes it."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("e", *"add", "enter")
        await until(pilot, lambda: isinstance(app.screen, Dialog))
        await pilot.press(*"gift card=50 EUR", "enter")
        await until(pilot, lambda: not isinstance(app.screen, Dialog) and app.current.facts.get("gift_card") == "50 EUR")


async def test_an_assigned_customer_keeps_their_name_in_a_narrow_queue(db_path, clock, tmp_path, ids):
    """Finding 37: at 80 columns `@Alex Morg… ✎ sl em 11m` took the row and Priya Nair's
    name was gone. The assignee gives way first: "@me" for the agent at this console, a
    first name or an initial for someone else; the name stays readable."""
    s = Store(db_path, clock=clock)
    s.assign(ids["dmitry"], "alice", "alice")
    s.assign(ids["carol"], "Alexandra Morgan-Smith", "alice")
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rows = screen_text(app).splitlines()
        dmitry = next(line for line in rows if "│● Дмитрий" in line or "│  Дмитрий" in line)
        assert "@me" in dmitry and "Дмитрий Ор" in dmitry
        carol = next(line for line in rows if "Carol Diaz" in line and line.startswith("│"))
        assert "Carol Diaz" in carol and ("@A " in carol or "@Alexa" in carol)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:  # room enough: the assignee as stored
        await settle(pilot)
        assert "@alice" in screen_text(app) and "@Alexandra" in screen_text(app)
