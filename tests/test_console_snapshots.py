"""Snapshots of the console at 80x24 (SSH) and 120x40, on a seeded store with a fixed clock.

Update after a deliberate change with `pytest tests/test_console_snapshots.py --snapshot-update`
and look at the SVGs in tests/snapshots/ before committing them.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import pytest_textual_snapshot

from tests.support.console import make_app, screen_text, seed, settle, until

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture(autouse=True)
def _stable(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/agent/.config")  # shown on the help screen; never written
    time.tzset()
    # keep our SVGs in tests/snapshots/<module>/ rather than syrupy's __snapshots__
    monkeypatch.setattr(pytest_textual_snapshot.SVGImageExtension, "dirname",
                        classmethod(lambda cls, *, test_location: str(SNAPSHOTS / test_location.basename)))
    yield
    time.tzset()


@pytest.fixture
def app(db_path, clock, tmp_path):
    seed(db_path, clock)
    return make_app(db_path, clock, tmp_path)


async def _open_jane(pilot):
    app = pilot.app
    await settle(pilot)
    app.queue.select_customer(3)
    await pilot.press("enter")
    # drawn, and the timeline has taken focus (a moment later; the focus shows in the borders)
    await until(pilot, lambda: app.current is not None and app.current.id == 3 and app.focused is app.timeline)


def test_open_customer_80x24(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=_open_jane)


def test_open_customer_120x40(snap_compare, app):
    assert snap_compare(app, terminal_size=(120, 40), run_before=_open_jane)


def test_composer_with_preview_120x40(snap_compare, app):
    async def run_before(pilot):
        await _open_jane(pilot)
        await pilot.press("r", *"Sorry! A **new vase** ships today.", "ctrl+r")
        await until(pilot, lambda: "as sent on" in screen_text(pilot.app))  # the preview is drawn

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_composer_80x24(snap_compare, app):
    async def run_before(pilot):
        await _open_jane(pilot)
        await pilot.press("r", *"On its way!")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_search_80x24(snap_compare, app):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("slash", *"vase")
        await until(pilot, lambda: getattr(pilot.app.screen, "hits", None))

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_120x40(snap_compare, app):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
