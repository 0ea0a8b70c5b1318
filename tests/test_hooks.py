"""Hooks: real commands with the event as JSON on stdin; success, failure and
timeout are logged, and a slow hook never holds up ingest. Also the real
sync engine with the automation attached."""
from __future__ import annotations

import json
import os
import time

import pytest

from connectors import paths

from connectors import config as config_mod
from connectors.desk.automation import Automation, attach
from connectors.config import ConfigError
from connectors.engine import Engine
from connectors.desk.hooks import HookRunner
from store import Store
from tests.conftest import inbound
from tests.support.chat import wait_until
from tests.support.fake_channel import FileChannel

pytestmark = pytest.mark.both_backends


def automation(tmp_path, hooks, **data):
    cfg = config_mod.validate({"hook": hooks, **data}, tmp_path / "config.toml")
    return Automation(cfg, rules_path=tmp_path / "rules.toml", log_path=tmp_path / "hooks.log", timer_every=0)


@pytest.fixture
def gate(tmp_path):
    """A file the tests' hook commands wait for. Made at teardown whatever happened, so
    a failed test does not leave its shell loops polling for it for ever."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def attach_to(store, auto):
    store.claim_new()
    store.on_ingest[:] = [lambda results: auto.on_ingest(store, results)]


def collect(directory):
    """A hook command that keeps each run's stdin in its own file (runs are concurrent)."""
    directory.mkdir(exist_ok=True)
    return f'cat > "$(mktemp -p {directory})"'


def collected(directory):
    return [json.loads(p.read_text()) for p in sorted(directory.iterdir(), key=lambda p: p.stat().st_mtime_ns)]


def log_lines(tmp_path, started=False):
    """hooks.log's lines for finished runs (with started=True: also the 'started' lines)."""
    path = tmp_path / "hooks.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return lines if started else [x for x in lines if " started" not in x and " queued (" not in x]


def test_message_received_hook_gets_the_message_as_json_on_stdin(store, clock, tmp_path):
    out = tmp_path / "got.json"
    auto = automation(tmp_path, [{"on": "message_received", "command": f"cat > {out}", "name": "save"}])
    attach_to(store, auto)
    store.ingest_batch([inbound(name="Ann", handle="ann", text="where is my order? $(touch pwned)")])
    assert auto.hooks.wait(10)
    data = json.loads(out.read_text())
    assert data["event"] == "message_received"
    assert data["message"]["text"] == "where is my order? $(touch pwned)"
    assert data["message"]["sender"] == {"address": "1001", "handle": "ann", "name": "Ann"}
    assert data["customer"]["name"] == "Ann" and data["customer"]["status"] == "open"
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")
    [line] = log_lines(tmp_path)
    assert "message_received [save] ok in" in line


def test_the_event_kind_is_in_the_environment(tmp_path):
    out = tmp_path / "kind"
    runner = HookRunner([{"on": "reply_sent", "command": f'printf %s "$OMNIDESK_EVENT" > {out}'}])
    runner.fire("reply_sent", {})
    assert runner.wait(10)
    assert out.read_text() == "reply_sent"


def test_a_failing_hook_is_logged_with_its_exit_status_and_stderr(store, clock, tmp_path):
    auto = automation(tmp_path, [{"on": "message_received",
                                  "command": "printf 'no route to host\\033]0;pwned\\007' >&2; exit 3"}])
    attach_to(store, auto)
    [r] = store.ingest_batch([inbound()])
    assert auto.hooks.wait(10)
    [line] = log_lines(tmp_path)
    assert "exit 3" in line and "no route to host" in line and "\x1b" not in line and "\x07" not in line
    assert store.customer(r.customer_id).status == "open"  # ingest went on regardless
    auto.tick(store)
    [ev] = store.events(kind="hook_failed")
    assert ev.data["on"] == "message_received" and ev.data["outcome"] == "exit 3"
    assert ev.customer_id == r.customer_id  # shown under the customer, not as "#None"
    assert "no route to host" in ev.data["detail"]


def test_a_slow_hook_is_killed_at_its_timeout_and_never_blocks_ingest(store, clock, tmp_path):
    pidfile = tmp_path / "pid"
    auto = automation(tmp_path, [{"on": "message_received", "command": f"echo $$ > {pidfile}; sleep 30", "timeout": 2}])
    attach_to(store, auto)
    results = store.ingest_batch([inbound(), inbound(address="2")])
    # ingest is back while the hooks still run (a blocking ingest would return after the kill):
    # a condition, not a stopwatch
    assert auto.hooks.busy() and len(results) == 2
    assert auto.hooks.wait(10)
    lines = log_lines(tmp_path)
    assert len(lines) == 2 and all("timeout" in x and "killed after 2s" in x for x in lines)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_status_merge_and_reply_hooks_fire_for_what_other_processes_did(store, clock, tmp_path, store_location):
    out = tmp_path / "events"
    auto = automation(tmp_path, [{"on": ["status_changed", "customers_merged", "reply_sent"], "command": collect(out)}])
    attach_to(store, auto)
    store.ingest_batch([inbound(), inbound(address="2")])
    other = Store(store_location, clock=clock)  # e.g. the console or the CLI, another connection
    other.set_status(1, "done", "ann")
    other.merge(1, 2, "ann", evidence=["same person"])
    mid = other.queue_reply(1, "Thanks!", "ann")
    [out_msg] = other.claim_due()
    from store.models import Receipt

    other.mark_sent(out_msg.outbox_id, Receipt("tg-9"))
    other.close()
    auto.tick(store)
    assert auto.hooks.wait(10)
    events = collected(out)
    kinds = sorted(e["event"] for e in events)
    assert kinds == ["customers_merged", "reply_sent", "status_changed"]
    sent = next(e for e in events if e["event"] == "reply_sent")
    assert sent["message"]["id"] == mid and sent["message"]["text"] == "Thanks!"
    status = next(e for e in events if e["event"] == "status_changed")
    assert status["event_data"]["data"]["new"] == "done" and status["event_data"]["actor"] == "ann"
    auto.tick(store)
    assert auto.hooks.wait(10)
    assert len(collected(out)) == 3  # each once


@pytest.mark.parametrize("hooks,message", [
    ({"on": "message_received", "command": "x"}, "[hook]: expected [[hook]] tables"),
    ([{"command": "x"}], "[[hook]] #1 on: missing"),
    ([{"on": "lunch", "command": "x"}], "[[hook]] #1 on: unknown event 'lunch'"),
    ([{"on": "reply_sent"}], "[[hook]] #1 command: missing"),
    ([{"on": "reply_sent", "command": "x", "timeout": 0}], "[[hook]] #1 timeout: expected a number of seconds"),
    ([{"on": "reply_sent", "command": "x", "shell": True}], "[[hook]] #1 shell: unknown key"),
])
def test_wrong_hooks_are_clear_errors(tmp_path, hooks, message):
    with pytest.raises(ConfigError) as e:
        config_mod.validate({"hook": hooks}, tmp_path / "config.toml")
    assert message in str(e.value)


def test_the_real_engine_runs_rules_and_hooks_at_ingest(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    server.write_text("".join(json.dumps({"from": str(500 + i), "name": f"C{i}", "text": text, "at": time.time()}) + "\n"
                              for i, text in enumerate(["hello", "I want a refund", "refund now!!"])))
    (tmp_path / "rules.toml").write_text('[[rule]]\nname = "refunds"\nwhen = { text = "refund" }\n'
                                         'then = { tag = "refund", assign = "alice" }\n')
    out = tmp_path / "received"
    cfg = config_mod.validate({"hook": [{"on": "message_received", "command": collect(out)}]},
                              tmp_path / "config.toml")
    Store(store_location).close()
    engine = Engine(store_location, [FileChannel(server)], poll_interval=0.05, lease_seconds=2)
    auto = attach(engine, cfg)
    engine.run_once()
    assert auto.hooks.wait(10)
    s = Store(store_location)
    tagged = sorted(c.name for c in s.customers() if "refund" in c.tags)
    assert tagged == ["C1", "C2"] and all(c.assignee == "alice" for c in s.customers() if "refund" in c.tags)
    assert sorted(e.data["rule"] for e in s.events(kind="rule")) == ["refunds", "refunds"]
    s.close()
    assert sorted(e["message"]["text"] for e in collected(out)) == ["I want a refund", "hello", "refund now!!"]
    assert paths.beside_store(store_location, "hooks.log").exists()  # next to a store file, else the data dir
    # a second run sees nothing new and does nothing twice
    engine.run_once()
    assert auto.hooks.wait(10)
    assert len(collected(out)) == 3


def test_hooks_test_runs_them_now_with_a_real_payload(store_location, clock, tmp_path, capsys):
    from console.cli import main

    out = tmp_path / "got"
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(f'[[hook]]\non = "message_received"\ncommand = "cat > {out}"\n'
                        f'[[hook]]\non = "message_received"\ncommand = "exit 4"\nname = "broken"\n')
    s = Store(store_location, clock=clock)
    s.ingest(inbound(name="Ann", text="hi there"))
    s.close()
    base = ["--db", str(store_location), "--config", str(cfg_path), "hooks"]
    assert main([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert f"message_received: cat > {out}  (timeout 10s, 1 at a time)" in listing and "[broken]: idle" in listing
    assert main([*base, "test", "message_received"]) == 1  # one of them fails
    text = capsys.readouterr().out
    assert " ok in " in text and "[broken] exit 4" in text
    data = json.loads(out.read_text())
    assert data["test"] is True and data["message"]["text"] == "hi there" and data["customer"]["name"] == "Ann"
    assert main([*base, "test", "reply_sent"]) == 1
    assert "no hook runs on reply_sent" in capsys.readouterr().err


# -- each hook its own queue -----------------------------------------------------------------------
def test_each_hook_has_its_own_queue_and_concurrency(store, clock, tmp_path, gate):
    slow_log, fast = tmp_path / "slow.log", tmp_path / "fast"
    wait_gate = f"echo start >> {slow_log}; while [ ! -e {gate} ]; do sleep 0.02; done"
    auto = automation(tmp_path, [{"on": "message_received", "command": wait_gate, "name": "slow", "timeout": 60},
                                 {"on": "message_received", "command": wait_gate, "name": "pair", "timeout": 60,
                                  "concurrency": 2},
                                 {"on": "message_received", "command": collect(fast), "name": "fast"}])
    attach_to(store, auto)
    store.ingest_batch([inbound(address=str(n), text=f"m{n}") for n in range(3)])
    # three runs of "fast" done while "slow" holds its one slot and "pair" its two
    wait_until(lambda: len(list(fast.iterdir())) == 3 and slow_log.exists()
               and slow_log.read_text().count("start") == 3, what="fast done, slow and pair started")
    assert store.hook_queue()["slow"] == {**store.hook_queue()["slow"], "running": 1, "queued": 2}
    assert store.hook_queue()["pair"] == {**store.hook_queue()["pair"], "running": 2, "queued": 1}
    started = [x for x in log_lines(tmp_path, started=True) if " started" in x]
    assert any("[slow] started (2 queued behind)" in x for x in started)
    queued = [x for x in log_lines(tmp_path, started=True) if " queued (" in x]
    assert sum("[slow] queued" in x for x in queued) == 2 and sum("[pair] queued (2 ahead of it)" in x for x in queued) == 1
    gate.touch()
    assert auto.hooks.wait(20, store=store)
    assert store.hook_queue() == {}
    done = log_lines(tmp_path)
    assert sum("[slow] ok" in x for x in done) == 3 and sum("[pair] ok" in x for x in done) == 3


def test_queued_runs_survive_a_stop_and_run_at_the_next_start(store, clock, tmp_path, store_location, gate):
    out = tmp_path / "out"
    hooks = [{"on": "status_changed", "name": "ticket", "timeout": 60,
              "command": f"while [ ! -e {gate} ]; do sleep 0.02; done; {collect(out)}"}]
    auto = automation(tmp_path, hooks, automation={"hook_grace": 0.1})
    attach_to(store, auto)
    store.ingest_batch([inbound(), inbound(address="2")])
    store.set_status(1, "done", "ann")
    store.set_status(2, "done", "ann")
    auto.tick(store)
    wait_until(lambda: store.hook_queue().get("ticket", {}).get("running") == 1, what="the first run started")
    auto.close()  # omnidesk stops: the running one is cut off and queued again, the other waits on
    assert store.hook_queue()["ticket"]["queued"] == 2 and store.hook_queue()["ticket"]["running"] == 0
    assert any("[ticket] stopped" in x and "queued again" in x for x in log_lines(tmp_path))

    gate.touch()
    later = automation(tmp_path, hooks)  # the next start
    later.tick(store)
    assert later.hooks.wait(20, store=store)
    assert sorted(e["customer"]["id"] for e in collected(out)) == [1, 2]  # each once, in the end


def test_a_run_left_running_by_a_dead_process_is_queued_again(store, clock, tmp_path):
    out = tmp_path / "out"
    auto = automation(tmp_path, [{"on": "status_changed", "command": collect(out), "name": "h"}])
    attach_to(store, auto)
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for n, holder in enumerate([f"{socket.gethostname()}:{dead.pid}:1", "otherhost:1:1", f"{socket.gethostname()}:{os.getpid()}:2"]):
        run = store.queue_hook_run("h", "status_changed", collect(out), 10, {"customer": {"id": n}})
        assert store.claim_hook_run("h", holder)["id"] == run
    auto.tick(store)  # the run of the process that is gone is queued again and runs
    assert auto.hooks.wait(10, store=store)
    assert [e["customer"]["id"] for e in collected(out)] == [0]
    assert store.hook_queue()["h"]["running"] == 2  # another machine's, and a live process's: still theirs
    clock.advance(21)  # past their timeout (10 s) and the slack: their runners would have killed them
    auto.tick(store)
    assert auto.hooks.wait(10, store=store)
    assert sorted(e["customer"]["id"] for e in collected(out)) == [0, 1, 2]


def test_two_processes_pumping_at_once_handle_each_event_once(tmp_path, store_location, clock):
    import threading

    out = tmp_path / "out"
    hooks = [{"on": "status_changed", "command": collect(out), "name": "h", "concurrency": 4}]
    setup = Store(store_location, clock=clock)
    setup.ingest_batch([inbound(address=str(n)) for n in range(40)])
    for cid in range(1, 41):
        setup.set_status(cid, "done", "ann")
    setup.close()
    autos = [automation(tmp_path, hooks) for _ in range(2)]
    stores = [Store(store_location, clock=clock) for _ in range(2)]
    threads = [threading.Thread(target=a.pump, args=(s,)) for a, s in zip(autos, stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for a, s in zip(autos, stores):
        assert a.hooks.wait(20, store=s)
        s.close()
    assert sorted(e["customer"]["id"] for e in collected(out)) == list(range(1, 41))
