"""E-mail greetings and sign-off as a newcomer expected them (trial 1, finding 9): a
template goes into a reply already begun without its own greeting; the [channels.email]
sign-off ends every e-mail reply, typed or from a template, once, and shows in the preview."""
from __future__ import annotations

import subprocess

import pytest

from connectors.config import validate
from console import keymap
from console.app import OmnideskApp
from store import Store
from tests.support.cli import OMNIDESK
from tests.support.console import anyio_backend, ids, open_customer, screen_text, settle, until  # noqa: F401

SIGN_OFF = "Cheers,\n{{ agent }}"


def app_for(db_path, clock, tmp_path, channels: dict | None = None) -> OmnideskApp:
    cfg = validate({"agent": {"name": "Alex Morgan"}, "console": {"next_after_done": False},
                    "attachments": {"save_dir": str(tmp_path / "saved")}, **({"channels": channels} if channels else {})})
    return OmnideskApp(db_path, cfg, "Alex Morgan", clock=clock, cursor_blink=False, start_engine=False,
                       keymap=keymap.load(False), poll_interval=0.1)


async def insert(pilot, name: str) -> None:
    from console.screens.pickers import PickerScreen

    app = pilot.app
    before = app.composer.area.text
    await pilot.press("ctrl+t")
    await until(pilot, lambda: isinstance(app.screen, PickerScreen))
    await pilot.press(*name, "enter")
    await until(pilot, lambda: app.composer.area.text != before)


@pytest.mark.anyio
async def test_a_template_in_a_reply_already_begun_brings_no_second_greeting(db_path, clock, tmp_path, ids):
    app = app_for(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Hi Bob, sure -")
        await insert(pilot, "closing")
        text = app.composer.area.text
        assert text.startswith("Hi Bob, sure -\n") and "Hello Bob" not in text
        assert "I'm glad we could sort this out." in text and "Best regards,\nAlex Morgan" in text
        await pilot.press("escape")
        app.composer.clear()
        await pilot.press("r")
        await insert(pilot, "closing")  # an empty reply: the template greets
        assert app.composer.area.text.startswith("Hello Bob,")


@pytest.mark.anyio
async def test_the_configured_sign_off_ends_a_typed_e_mail_once_and_shows_in_the_preview(db_path, clock, tmp_path,
                                                                                         ids):
    app = app_for(db_path, clock, tmp_path, {"email": {"sign_off": SIGN_OFF}})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Yes, we ship to Norway.")
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r")
        if app.composer.channel != "email":  # her newest is Telegram: answer by e-mail
            from console.screens.pickers import PickerScreen

            await pilot.press("ctrl+o")
            await until(pilot, lambda: isinstance(app.screen, PickerScreen))
            await pilot.press(*"mail", "enter")
            await until(pilot, lambda: app.composer.channel == "email")
        await pilot.press(*"So sorry about the vase.")
        await insert(pilot, "closing")  # the template signs with the same sign-off
        if not app.composer.show_preview:
            app.composer.action_preview()
        await until(pilot, lambda: "Cheers," in screen_text(app))
        assert screen_text(app).count("Cheers,") == 1  # the preview: once
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    bob = [m for m in s.timeline(ids["bob"]) if m.direction == "out"][-1]
    jane = [m for m in s.timeline(ids["jane"]) if m.direction == "out"][-1]
    s.close()
    assert bob.text == "Yes, we ship to Norway.\n\nCheers,\nAlex Morgan"
    assert jane.text.count("Cheers,") == 1 and jane.text.endswith("Cheers,\nAlex Morgan")


def test_cli_replies_end_with_the_sign_off_once(tmp_path):
    from tests.support.console import seed
    from tests.conftest import Clock

    db = tmp_path / "o.db"
    bob = seed(db, Clock())["bob"]
    config = tmp_path / "config.toml"
    config.write_text('[agent]\nname = "Alex Morgan"\n\n[channels.email]\nsign_off = "Cheers,\\n{{ agent }}"\n')

    def reply(text: str) -> str:
        subprocess.run([str(OMNIDESK), "--db", str(db), "--config", str(config), "reply", str(bob), "-m", text],
                       check=True, capture_output=True, timeout=60)
        s = Store(db)
        last = [m for m in s.timeline(bob) if m.direction == "out"][-1].text
        s.close()
        return last

    assert reply("Yes, we ship to Norway.") == "Yes, we ship to Norway.\n\nCheers,\nAlex Morgan"
    assert reply("Yes.\n\nBest,\nAlex") == "Yes.\n\nBest,\nAlex"  # signed by hand: not signed twice


def test_the_signature_goes_on_a_typed_cli_reply_once(tmp_path):
    from tests.conftest import Clock
    from tests.support.console import seed

    db = tmp_path / "o.db"
    bob = seed(db, Clock())["bob"]
    config = tmp_path / "config.toml"
    config.write_text('[agent]\nname = "Alex Morgan"\n\n[channels.email]\nsignature = "Bakers Teas, Main St 1"\n')
    for text in ("Yes.", "Yes.\n\n-- \nBakers Teas, Main St 1"):
        subprocess.run([str(OMNIDESK), "--db", str(db), "--config", str(config), "reply", str(bob), "-m", text],
                       check=True, capture_output=True, timeout=60)
        s = Store(db)
        last = [m for m in s.timeline(bob) if m.direction == "out"][-1].text
        s.close()
        assert last == "Yes.\n\n-- \nBakers Teas, Main St 1"
