"""Driving the real console with Textual's Pilot: a seeded store, the app, and waits for
what a person would see (never fixed pauses)."""
from __future__ import annotations

import contextlib
import time

import pytest
from textual.worker import WorkerCancelled, WorkerFailed

from connectors.config import validate
from console import keymap
from console.app import OmnideskApp
from store import Store
from store.models import AttachmentIn, InboundMessage, Sender

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC

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


def type_fast(pilot, *keys: str) -> None:
    """Every key at once, as a terminal delivers a fast typist's burst: no waiting
    for the console between keys (Pilot's press waits for it to go idle after each).
    A key is a Textual key name ("enter", "ctrl+t") or one character."""
    from textual import events
    from textual.keys import _character_to_key

    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else None
        name = key if len(key) > 1 or key.isalnum() else _character_to_key(key)
        event = events.Key(name, char)
        event.set_sender(app)  # as the driver's are
        app.post_message(event)


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
    try:
        await until(pilot, lambda: app.current is not None and app.current.id == cid and app.focused is app.timeline)
    except AssertionError:  # say what the console was doing instead (a rare failure must explain itself)
        keys = app.keys
        raise AssertionError(
            f"customer {cid} did not open with the timeline focused: showing "
            f"{app.current.id if app.current else None}, focus on {app.focused!r}, opening {app.desk._opening!r}, "
            f"key holds {sorted(h.why for h in keys._holds)}, {len(keys._held)} keys held, "
            f"workers {[(w.group, w.state.name) for w in app.workers]}\n{screen_text(app)}") from None


# -- tests ---------------------------------------------------------------------------
