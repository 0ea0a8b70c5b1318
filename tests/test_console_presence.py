"""Presence between two real consoles on one store (both driven by Pilot): "replying"
only while the agent has unsent text for that customer, and gone when they leave."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from connectors.config import validate
from console import keymap
from console.app import OmnideskApp
from console.presence import PROCESS
from store import Store
from tests.support.console import open_customer, screen_text, seed, settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def console(db_path, clock, agent: str) -> OmnideskApp:
    cfg = validate({"agent": {"name": agent},
                    "console": {"confirm_send": False, "bell": False, "next_after_done": False}})
    return OmnideskApp(db_path, cfg, agent, clock=clock, cursor_blink=False, start_engine=False,
                       keymap=keymap.load(False), poll_interval=0.1)


async def test_replying_shows_only_while_there_is_unsent_text_for_that_customer(db_path, clock):
    ids = seed(db_path, clock)
    alice, bob = console(db_path, clock, "alice"), console(db_path, clock, "bob")
    async with bob.run_test(size=(120, 40)) as b:
        async with alice.run_test(size=(120, 40)) as a:
            await settle(a)
            await settle(b)
            await open_customer(b, ids["jane"])
            await open_customer(a, ids["jane"])
            await until(b, lambda: "alice also has this customer open" in screen_text(bob))

            await a.press("r")
            await a.press(*"On its way")
            await until(b, lambda: "alice is replying to this customer" in screen_text(bob))

            # sent: the composer is empty again, so is the notice about replying
            sent_at, seen = time.monotonic(), []

            def viewing() -> bool:
                if "alice also has this customer open" in screen_text(bob):
                    seen.append(time.monotonic())
                return bool(seen)
            await a.press("ctrl+s")
            await until(b, viewing)
            print(f"bob's notice said 'viewing' {seen[0] - sent_at:.2f}s after alice pressed send")
            s = Store(db_path, clock=clock)
            assert [m.text for m in s.timeline(ids["jane"]) if m.author == "alice"] == ["On its way"]
            s.close()
            await a.pause(0.3)  # several polls later it still says so: the cleared composer is not typing
            await settle(b)
            assert "alice also has this customer open" in screen_text(bob)

            # a draft left on Jane does not make alice "replying" to Bob Li
            await a.press("r")
            await a.press(*"draft for Jane")
            await until(b, lambda: "alice is replying to this customer" in screen_text(bob))
            await open_customer(b, ids["bob"])
            await open_customer(a, ids["bob"])
            await until(b, lambda: "alice also has this customer open" in screen_text(bob))
            assert "replying" not in screen_text(bob)

            # leaving the composer empty on Bob Li: still just viewing; typing there: replying
            await a.press("r")
            await a.press("escape")
            await settle(a)
            await settle(b)
            assert "alice also has this customer open" in screen_text(bob)
            await a.press("r")
            await a.press(*"hi Bob")
            await until(b, lambda: "alice is replying to this customer" in screen_text(bob))
            await a.press(*["backspace"] * 6)
            await until(b, lambda: "alice also has this customer open" in screen_text(bob))

        # alice closed her console: she is gone at once
        await until(b, lambda: "also has this customer open" not in screen_text(bob))


def test_a_console_that_died_is_not_shown(db_path, clock):
    """Killed consoles write nothing on the way out: their process being gone is enough."""
    s = Store(db_path, clock=clock)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = PROCESS.rpartition(":")[0]
    s.set_presence("alice", 7, "replying", process=f"{host}:{dead.pid}")
    s.set_presence("bob", 7, "viewing", process=PROCESS)
    s.set_presence("carol", 7, "viewing", process=f"elsewhere.example:{dead.pid}")  # another machine: the TTL decides
    assert sorted(s.presence(7)) == [("bob", "viewing"), ("carol", "viewing")]
    clock.advance(31)
    assert s.presence(7) == []
    s.close()


def test_two_real_consoles_in_tmux_and_one_is_killed(tmp_path, clock):
    """Two `omnidesk` processes on one store: alice's notice on bob's screen follows her
    composer, and goes when her console is killed (kill -9: it writes nothing on the way out)."""
    import shlex
    import shutil
    import signal

    from tests.test_console_tmux import OMNIDESK, Tmux

    if shutil.which("tmux") is None or not OMNIDESK.exists():
        pytest.skip("needs tmux and the installed `omnidesk` entry point")
    db = tmp_path / "omnidesk.db"
    seed(db, clock)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TZ": "UTC",
           "TERM": "xterm-256color"}
    # alice stays with Jane after her send (by default the next waiting customer would open)
    (tmp_path / "cfg" / "omnidesk").mkdir(parents=True)
    (tmp_path / "cfg" / "omnidesk" / "config.toml").write_text("[console]\nnext_after_done = false\n")
    cmd = f"{shlex.quote(str(OMNIDESK))} --db {shlex.quote(str(db))} --agent"
    bob, alice = Tmux(f"{cmd} bob", env, size=(140, 30)), Tmux(f"{cmd} alice", env, size=(140, 30))
    try:
        for t in (bob, alice):
            t.wait_for("Bob Li", "Carol Diaz")
            t.keys("j", "j", "Enter")  # Jane Roe
            t.wait_for("vase photo.jpg")
        bob.wait_for("alice also has this customer open")
        alice.keys("r")
        alice.wait_for_composer()
        alice.keys("Let me check", literal=True)
        bob.wait_for("alice is replying to this customer")
        alice.keys("C-s")
        alice.wait_for("queued")
        bob.wait_for("alice also has this customer open")
        pane = subprocess.run(["tmux", "list-panes", "-t", alice.name, "-F", "#{pane_pid}"], capture_output=True,
                              text=True, check=True).stdout.split()[0]
        pid = subprocess.run(["pgrep", "-P", pane, "-f", "omnidesk"], capture_output=True, text=True).stdout.split()
        assert pid, "alice's console process"
        os.kill(int(pid[0]), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "alice also has this customer open" in bob.screen():
            assert time.monotonic() < deadline, "bob still sees alice after her console died"
            time.sleep(0.1)
    finally:
        bob.close()
        alice.close()
