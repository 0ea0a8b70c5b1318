"""The config file edited while the console runs (newcomer trial 2, finding 30): the
newcomer fixed their sendmail command and pressed R; the console retried with the old one
and nothing said why. The console now says that its settings apply from the next start."""
from __future__ import annotations

import os

import pytest

from connectors.config import load
from console import keymap
from console.app import OmnideskApp
from tests.support.console import ids, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_an_edited_config_says_restart_to_use_it(db_path, clock, tmp_path, ids):
    path = tmp_path / "config.toml"
    path.write_text('[agent]\nname = "Pat"\n\n[console]\nbell = false\n')
    app = OmnideskApp(db_path, load(path), "Pat", clock=clock, cursor_blink=False, start_engine=False,
                      keymap=keymap.load(False), poll_interval=0.1)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        assert "changed: restart omnidesk" not in screen_text(app)
        before = path.stat().st_mtime_ns
        path.write_text('[agent]\nname = "Pat"\n\n[console]\nbell = true\n')
        os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))  # a later edit, whatever the clock's grain
        await until(pilot, lambda: "config.toml changed: restart omnidesk to use it" in screen_text(app))
        assert any("keeps its settings until you restart it" in n.message for n in app._notifications)
