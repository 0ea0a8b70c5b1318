"""Issue 20 point 5, end to end: agents on separate machines share one PostgreSQL
database. Two real consoles (Pilot) with different agent names and a real `omnidesk
sync` process, all on the same database, with a Telegram channel on the loopback server:
each sees the others' changes, the collision notice works across them, and exactly one
process polls the channel, also after `omnidesk sync` is killed.

Each process uses its own bot token (all valid at the sandbox) only so that the sandbox
can tell who called getUpdates; the store sees one account, "shop".
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.config import validate
from console import keymap
from console.app import OmnideskApp
from console.screens.pickers import PromptScreen
from store import Store
from tests.conftest import ROOT
from tests.support import postgres
from tests.support.chat import tg, wait_until  # noqa: F401
from tests.support.console import open_customer, screen_text, seed, settle, until

pytestmark = [
              pytest.mark.skipif(not postgres.installed(), reason="PostgreSQL is not installed")]

OMNIDESK = str(Path(sys.executable).parent / "omnidesk")  # the entry point users run
TOKENS = {"sync": "111:sync-TOKEN", "alice": "222:alice-TOKEN", "bob": "333:bob-TOKEN"}
LEASE = 3.0  # seconds: [sync] lease_seconds for every process


@pytest.fixture
def anyio_backend():
    return "asyncio"


def channel_config(tg, who: str) -> dict:
    return {"sync": {"poll_interval": 1, "lease_seconds": LEASE},
            "telegram": {"shop": {"token_env": f"TG_TOKEN_{who.upper()}", "base_url": tg.base_url,
                                  "base_file_url": tg.base_file_url, "long_poll_seconds": 1, "timeout": 2}}}


def console(url: str, tg, agent: str) -> OmnideskApp:
    """A console as `omnidesk` starts it for [agent] name = agent: real time, the default
    once-a-second poll, its own sync engine (which polls only while it holds the lease)."""
    cfg = validate({"agent": {"name": agent},
                    "console": {"confirm_send": False, "bell": False, "next_after_done": False},
                    **channel_config(tg, agent)})
    return OmnideskApp(url, cfg, agent, cursor_blink=False, start_engine=True, keymap=keymap.load(False))


def pollers(tg, since: int = 0) -> set[str]:
    """Who called getUpdates (by token) among the sandbox's calls from index `since`."""
    with tg.lock:
        return {token for method, token in tg.callers[since:] if method == "getUpdates"}


def senders(tg) -> list[str]:
    """The token of each sendMessage call, in order."""
    with tg.lock:
        return [token for method, token in tg.callers if method == "sendMessage"]


def customer_named(url: str, name: str) -> int:
    s = Store(url)
    try:
        return next(c.id for c in s.customers() if c.name == name)
    finally:
        s.close()


def holder(url: str) -> str:
    s = Store(url)
    try:
        held = s.lease_holder()
        return held[0] if held else ""
    finally:
        s.close()


def stored(url: str, text: str) -> int:
    s = Store(url)
    try:
        return s.q1("SELECT count(*) FROM messages WHERE direction='in' AND text=?", (text,))[0]
    finally:
        s.close()


async def seen_by_both(a, b, condition, what: str) -> None:
    """Wait until both consoles show `condition(app)`; print how long each took."""
    start = time.monotonic()
    took: dict[str, float] = {}

    def check() -> bool:
        for app in (a.app, b.app):
            if app.agent not in took and condition(app):
                took[app.agent] = time.monotonic() - start
        return len(took) == 2
    try:
        await until(a, check, timeout=60)
    except AssertionError:
        raise AssertionError(f"{what}: only {sorted(took)} saw it; screens:\n" + "\n=====\n".join(
            screen_text(app) for app in (a.app, b.app))) from None
    print(f"{what}: " + ", ".join(f"{agent} after {t:.2f}s" for agent, t in took.items()))


async def seen_by(pilot, condition, what: str) -> float:
    start = time.monotonic()
    at: list[float] = []

    def check() -> bool:
        if not at and condition():
            at.append(time.monotonic())
        return bool(at)
    await until(pilot, check, timeout=60)
    print(f"{what}: {pilot.app.agent} saw it after {at[0] - start:.2f}s")
    return at[0] - start


@pytest.mark.anyio
async def test_two_consoles_and_sync_on_one_postgres_database(pg_url, tg, tmp_path, monkeypatch):
    ids = seed(pg_url, time.time)
    tg.valid_tokens |= set(TOKENS.values())
    for who, token in TOKENS.items():
        monkeypatch.setenv(f"TG_TOKEN_{who.upper()}", token)
    cfg_path = tmp_path / "sync.toml"
    c = channel_config(tg, "sync")
    t = c["telegram"]["shop"]
    cfg_path.write_text(f"[sync]\npoll_interval = 1\nlease_seconds = {LEASE}\n[telegram.shop]\n"
                        f'token_env = "{t["token_env"]}"\nbase_url = "{t["base_url"]}"\n'
                        f'base_file_url = "{t["base_file_url"]}"\nlong_poll_seconds = 1\ntimeout = 2\n')
    log = (tmp_path / "sync.log").open("w")
    sync = subprocess.Popen([OMNIDESK, "--db", pg_url, "--config", str(cfg_path), "sync"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        # before any console starts: sync is the poller (or it died: say why)
        wait_until(lambda: sync.poll() is not None or "|sync|" in holder(pg_url), 60, what="sync to take the lease")
        assert sync.poll() is None, (tmp_path / "sync.log").read_text()
        alice, bob = console(pg_url, tg, "alice"), console(pg_url, tg, "bob")
        async with bob.run_test(size=(120, 40)) as b:
            async with alice.run_test(size=(120, 40)) as a:
                await settle(a)
                await settle(b)
                await until(a, lambda: alice.desk.live.engine is not None and bob.desk.live.engine is not None)

                # 1. a customer writes on Telegram: sync stores it, both consoles show it
                ana = tg.user(501, "Ana", "Lima")
                tg.send_text(ana, "hello from Ana")
                await seen_by_both(a, b, lambda app: "Ana Lima" in screen_text(app), "new Telegram message")
                assert stored(pg_url, "hello from Ana") == 1

                # 2. alice tags and notes Jane; bob, on Jane too, sees both and that alice is there
                await open_customer(b, ids["jane"])
                await open_customer(a, ids["jane"])
                await seen_by(b, lambda: "alice also has this customer open" in screen_text(bob), "presence")
                await a.press("t")
                await until(a, lambda: isinstance(alice.screen, PromptScreen))
                await a.press(*"breakage", "enter")
                await seen_by(b, lambda: "breakage" in bob.desk.current.tags and "breakage" in screen_text(bob),
                              "tag set by alice")
                await a.press("n", *"called the courier", "ctrl+s")
                await seen_by(b, lambda: "called the courier" in screen_text(bob), "note written by alice")

                # 3. alice starts a reply: bob gets the collision notice for Jane
                await a.press("r", *"We are sending")
                await seen_by(b, lambda: "alice is replying to this customer" in screen_text(bob),
                              "collision notice")

                # 4. a status set by bob shows in alice's console (the other way round)
                await b.press("d")
                await seen_by(a, lambda: alice.desk.current.status == "done", "done set by bob")

                # 5. a reply typed in alice's console goes out once, sent by sync (the lease holder)
                ana_id = customer_named(pg_url, "Ana Lima")
                await open_customer(a, ana_id)
                await a.press("r", *"Hi Ana, how can we help?", "ctrl+s")
                await until(a, lambda: len(tg.sent) >= 1)
                assert [m["text"] for m in tg.sent] == ["Hi Ana, how can we help?"]
                assert senders(tg) == [TOKENS["sync"]]

                # while sync holds the lease, it alone polled the channel
                assert "|sync|" in holder(pg_url)
                assert pollers(tg) == {TOKENS["sync"]}
                assert not alice.desk.live.engine.has_lease.is_set()
                assert not bob.desk.live.engine.has_lease.is_set()

                # 6. sync dies (-9) with a message waiting: one console takes over within the lease
                # time and stores it once; the other never polls
                bea = tg.user(502, "Bea", "Kim")  # a new customer: a row of her own in both queues
                tg.send_text(bea, "are you there?")
                sync.send_signal(signal.SIGKILL)
                sync.wait(30)
                killed_at, mark = time.monotonic(), len(tg.callers)
                assert "Traceback" not in (tmp_path / "sync.log").read_text()
                engines = {"alice": alice.desk.live.engine, "bob": bob.desk.live.engine}
                await until(a, lambda: any(e.has_lease.is_set() for e in engines.values()), timeout=60)
                took = time.monotonic() - killed_at
                taker = next(agent for agent, e in engines.items() if e.has_lease.is_set())
                other = "bob" if taker == "alice" else "alice"
                print(f"after kill -9 of sync, {taker}'s console took the lease after {took:.2f}s"
                      f" (lease {LEASE:.0f}s)")
                assert holder(pg_url) == engines[taker].holder
                await until(a, lambda: stored(pg_url, "are you there?") >= 1, timeout=60)
                await seen_by_both(a, b, lambda app: "Bea Kim" in screen_text(app)
                                   and "are you there?" in screen_text(app),
                                   "message sent while sync died")
                tg.send_text(ana, "after the takeover")
                await until(a, lambda: stored(pg_url, "after the takeover") == 1)
                assert pollers(tg, mark) == {TOKENS[taker]}
                assert TOKENS[other] not in pollers(tg)
                assert not engines[other].has_lease.is_set()
                # a reply written in the other console goes out once, by the new holder
                other_pilot = b if other == "bob" else a
                await open_customer(other_pilot, ana_id)
                await other_pilot.press("r", *f"{other} here: on it", "ctrl+s")
                await until(a, lambda: len(tg.sent) >= 2)
                assert [m["text"] for m in tg.sent] == ["Hi Ana, how can we help?", f"{other} here: on it"]
                assert senders(tg) == [TOKENS["sync"], TOKENS[taker]]
                s = Store(pg_url)
                texts = [r[0] for r in s.q("SELECT text FROM messages WHERE direction='in' AND channel='telegram'"
                                           " AND text IN ('hello from Ana', 'are you there?', 'after the takeover')")]
                s.close()
                assert sorted(texts) == sorted(["hello from Ana", "are you there?", "after the takeover"])
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait(30)
        log.close()


@pytest.mark.parametrize("argv", [["--db", "postgresql://desk@db/omnidesk", "--config", "c.toml", "sync"],
                                  ["--agent", "bob", "sync", "--once"], ["sync"]])
def test_sync_names_itself_in_the_lease_whatever_options_come_first(argv):
    """`omnidesk --db URL sync` holds the lease as `omnidesk sync`, not as "the console"
    (an option's value was taken for the command)."""
    from connectors.lease import guess_program

    assert guess_program(argv) == "sync"
    assert guess_program(["--db", "sync.db"]) == "console"  # a store file named sync.db: the console
