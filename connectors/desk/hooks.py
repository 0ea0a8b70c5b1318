"""Hooks: run a command when something happens, with the event as JSON on stdin.

    [[hook]]
    on = "message_received"          # or a list: ["status_changed", "customers_merged"]
    command = "notify-send omnidesk \"$(jq -r .message.text)\""
    timeout = 10                     # seconds; the command is killed after that
    concurrency = 1                  # runs of this hook at once; more wait in its queue

The command runs with /bin/sh (it is the owner's own config, not customer
input); the event only ever travels on stdin and in $OMNIDESK_EVENT (its
kind), never inside the command line, so nothing a customer writes can
become a shell word.

Each hook has its own queue, kept in the store (table hook_runs) and filled in
the same transaction that handles the event, so a slow or hanging hook delays
only its own later runs, and nothing queued is lost when omnidesk stops or
dies. With concurrency = 1 (the default) a hook's runs go in event order.
hooks.log next to the store has a line when a run has to wait (how many are
ahead of it), when it starts (how long it waited, how many are behind it) and
when it ends; failed runs also
become 'hook_failed' events. `omnidesk hooks list` shows each queue.

Stopping (SIGTERM, Ctrl-C, leaving the console) starts no new run and gives
running ones a short grace ([automation] hook_grace, default 1s); then their
process groups are killed and the runs go back to the head of their queue
(at most 3 tries in all), to run again at the next start. A queued run keeps
the command it was queued with, even if config.toml changes meanwhile.

What arrives on stdin (each time twice: X in unix seconds, as hooks have always read it,
and X_iso in ISO 8601 UTC, "2026-11-30T06:31:00Z"; None stays null):
    message_received, reply_sent:
        {"event": ..., "message": {id, customer_id, channel, account, direction, subject, text,
                                   sent_at, sent_at_iso, author, sender?},
         "customer": {id, name, status, ..., waiting_since, waiting_since_iso}}
    status_changed, target_breached, customers_merged, reply_failed, rule_fired, satisfaction:
        {"event": ..., "customer_id": N, "customer": {...},
         "event_data": {id, kind, actor, at, at_iso, data}}   # data's own times: unix seconds
    a rule's own `hook = "..."` action:
        {"event": "rule_fired", "rule": name, "customer": {...}, "message": {...}}
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TYPE_CHECKING

from connectors.schema import ConfigError
from store.text import one_line

if TYPE_CHECKING:
    from connectors.config import Config

log = logging.getLogger("omnidesk.hooks")

EVENTS = ("message_received", "reply_sent", "reply_failed", "status_changed", "target_breached",
          "customers_merged", "rule_fired", "satisfaction")
KEYS = ("on", "command", "timeout", "name", "concurrency")
DEFAULT_TIMEOUT = 10.0
DEFAULT_GRACE = 1.0  # seconds running hooks get when omnidesk stops
MAX_QUEUED = 1000  # per hook: beyond this, new runs are dropped (and logged) rather than piling up
MAX_CONCURRENCY = 16


def _check_hook(n: int, table: Any) -> None:
    where = f"[[hook]] #{n + 1}"  # counted from 1, as people count the tables in the file
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table ([[hook]] with on = ... and command = ...)")
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"{where} {key}: unknown key; expected one of {', '.join(KEYS)}")
    on = table.get("on")
    kinds = [on] if isinstance(on, str) else on
    if not kinds or not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"{where} on: missing; expected one of {', '.join(EVENTS)} (or a list of them)")
    for kind in kinds:
        if kind not in EVENTS:
            raise ConfigError(f"{where} on: unknown event {kind!r}; expected one of {', '.join(EVENTS)}")
    command = table.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{where} command: missing; expected the command to run (a string)")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where} timeout: expected a number of seconds above 0, got {timeout!r}")
    conc = table.get("concurrency", 1)
    if isinstance(conc, bool) or not isinstance(conc, int) or not 1 <= conc <= MAX_CONCURRENCY:
        raise ConfigError(f"{where} concurrency: expected a whole number from 1 to {MAX_CONCURRENCY}, got {conc!r}")
    if "name" in table and (not isinstance(table["name"], str) or not table["name"].strip()):
        raise ConfigError(f"{where} name: expected a short text, got {table['name']!r}")


def validate(hooks: Any) -> None:
    if not isinstance(hooks, list):
        raise ConfigError("[hook]: expected [[hook]] tables (double brackets), one per hook")
    for n, table in enumerate(hooks):
        _check_hook(n, table)


def _printable(text: str, limit: int = 300) -> str:
    """stderr may carry terminal escapes; the log and the console get printable text only."""
    return one_line(text)[-limit:]


class HookRunner:
    """Runs hook commands, each hook from its own queue in the store, and
    writes hooks.log. Without a store (`omnidesk hooks test`) `fire` runs the
    commands at once in threads."""

    def __init__(self, hooks: list[dict] | None = None, log_path: str | os.PathLike | None = None,
                 grace: float = DEFAULT_GRACE):
        hooks = hooks or []
        validate(hooks)
        self.hooks = []
        names: set[str] = set()
        for h in hooks:
            kinds = [h["on"]] if isinstance(h["on"], str) else list(h["on"])
            name = base = (h.get("name") or h["command"][:40]).strip()
            n = 1
            while name in names:  # each hook its own queue, even two with the same command
                n += 1
                name = f"{base} #{n}"
            names.add(name)
            self.hooks.append({"on": kinds, "command": h["command"], "timeout": float(h.get("timeout", DEFAULT_TIMEOUT)),
                               "name": name, "concurrency": int(h.get("concurrency", 1))})
        self.log_path = Path(log_path) if log_path else None
        self.grace = grace
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._lock = threading.Lock()
        self._workers: dict[str, list[threading.Thread]] = {}  # hook name -> live worker threads
        self._procs: dict[int, subprocess.Popen] = {}  # run id -> its running command
        self._stopping = threading.Event()
        self._direct: list[threading.Thread] = []  # runs started by `fire` without a store
        self._dropped: dict[tuple[str, str], int] = {}  # (hook, event) -> runs not queued since the last dispatch
        # failed runs without a store to record them in (`hooks test`); with one, workers log the event
        self.failures: deque[dict] = deque(maxlen=100)
        self.recent: deque[str] = deque(maxlen=100)  # the latest log lines (`omnidesk hooks test` prints them)

    @classmethod
    def from_config(cls, config: Config | None, log_path=None, grace: float = DEFAULT_GRACE) -> "HookRunner":
        return cls((config.extra.get("hook") if config else None) or [], log_path, grace)

    def wants(self, kind: str) -> bool:
        return any(kind in h["on"] for h in self.hooks)

    def concurrency(self, name: str) -> int:
        return next((h["concurrency"] for h in self.hooks if h["name"] == name), 1)

    # -- queueing (inside the caller's transaction) -----------------------------------------
    def enqueue(self, store, kind: str, payload: dict[str, Any]) -> int:
        """Queue a run of every hook for `kind` in the store; returns how many."""
        n = 0
        for h in self.hooks:
            if kind in h["on"]:
                n += self.enqueue_command(store, h["command"], kind, payload, h["timeout"], h["name"])
        return n

    def enqueue_command(self, store, command: str, kind: str, payload: dict[str, Any],
                        timeout: float = DEFAULT_TIMEOUT, name: str | None = None) -> bool:
        """Queue one run (also a rule's `hook` action, under the name "rule NAME")."""
        name = name or command[:40]
        run_id = store.queue_hook_run(name, kind, command, timeout, {"event": kind, **payload}, cap=MAX_QUEUED)
        if run_id is None:  # told once per pass, in dispatch(), not once per run
            with self._lock:
                self._dropped[(name, kind)] = self._dropped.get((name, kind), 0) + 1
            return False
        q = store.hook_backlog(name)
        ahead = q["queued"] - 1 + q["running"]
        if ahead >= self.concurrency(name):  # it cannot start at once: say so now, not only when it runs
            running = f", one running for {store.clock() - q['running_since']:.0f}s" if q.get("running") else ""
            self._log(kind, name, "queued", 0.0, f"{ahead} ahead of it{running}", run_id=run_id)
        return True

    # -- running ---------------------------------------------------------------------------
    def dispatch(self, store) -> int:
        """Start a worker for each hook with queued runs and a free slot; returns
        how many were started. Cheap: call it after every pass."""
        with self._lock:
            dropped, self._dropped = self._dropped, {}
        for (name, kind), n in dropped.items():
            self._log(kind, name, "dropped", 0.0, f"{n} run{'s' if n != 1 else ''} not queued: {MAX_QUEUED} of this"
                      " hook already waiting", store=store)
        if self._stopping.is_set():
            return 0
        started = 0
        for name, q in store.hook_queue().items():
            if not q["queued"]:
                continue
            with self._lock:
                live = [t for t in self._workers.get(name, []) if t.is_alive()]
                free = min(self.concurrency(name), MAX_CONCURRENCY) - len(live)
                for _ in range(min(free, q["queued"])):
                    t = threading.Thread(target=self._worker, args=(store, store.clock, name), daemon=True,
                                         name=f"omnidesk hook {name[:20]}")
                    t.start()
                    live.append(t)
                    started += 1
                self._workers[name] = live
        return started

    def _worker(self, store, clock, name: str) -> None:
        from store import Store  # a connection of its own, as every engine thread has

        try:  # (the same store: a SQLite path, or a PostgreSQL URL with its password)
            s = Store(store.location, clock=clock, password=store.password)
        except Exception:
            log.exception("hook worker for %s: cannot open the store", name)
            return
        try:
            while not self._stopping.is_set():
                run = s.claim_hook_run(name, self.holder)
                if run is None:
                    return
                self._execute(s, run)
        except Exception:  # a broken hook must never take the runner down
            log.exception("hook worker for %s", name)
        finally:
            s.close()

    def _execute(self, s, run: dict) -> None:
        name, kind = run["hook"], run["kind"]
        waited = max(0.0, s.clock() - run["queued_at"])
        behind = s.hook_queue().get(name, {}).get("queued", 0)
        note = f"waited {waited:.1f}s" if waited >= 0.5 else ""
        if behind:
            note += (", " if note else "") + f"{behind} queued behind"
        self._log(kind, name, "started", 0.0, note, run_id=run["id"])
        outcome, seconds, detail = self._spawn(run["id"], run["command"], kind, run["payload"].encode(), run["timeout"])
        if outcome == "shutdown":
            again = s.requeue_hook_run(run["id"])  # not a failure of the hook: it runs again
            self._log(kind, name, "stopped" if again else "killed", seconds, "omnidesk stopped; " + (
                "queued again for the next start" if again else f"dropped after {run['attempts']} tries"),
                      run_id=run["id"], store=s, payload=run["payload"])
            return
        s.finish_hook_run(run["id"])
        self._log(kind, name, outcome, seconds, detail, run_id=run["id"], store=s, payload=run["payload"])

    def _spawn(self, run_id, command: str, kind: str, data: bytes, timeout: float) -> tuple[str, float, str]:
        """Run one command; (outcome, seconds, detail). outcome: ok, exit N,
        timeout, error, or shutdown (killed because omnidesk is stopping)."""
        start = time.monotonic()
        try:
            env = {**os.environ, "OMNIDESK_EVENT": kind}
            # its own process group, so a timeout or shutdown kills whatever the shell started too
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except Exception as e:
            return "error", time.monotonic() - start, f"{type(e).__name__}: {e}"
        with self._lock:
            self._procs[run_id] = proc
            if self._stopping.is_set():  # close() listed the running commands before this one began
                _kill(proc)
        try:
            try:
                _, err = proc.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.communicate()
                return "timeout", time.monotonic() - start, f"killed after {timeout:g}s"
            except Exception as e:  # e.g. a broken pipe: the command did not read its stdin
                _kill(proc)
                proc.communicate()
                return "error", time.monotonic() - start, f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._procs.pop(run_id, None)
        if self._stopping.is_set() and proc.returncode in (-signal.SIGKILL, -signal.SIGTERM):
            return "shutdown", time.monotonic() - start, ""
        outcome = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        return outcome, time.monotonic() - start, _printable(err.decode(errors="replace"))

    def fire(self, kind: str, payload: dict[str, Any]) -> int:
        """Without a store (`omnidesk hooks test`): run every hook for `kind` now,
        each in a thread; `wait` waits for them. Returns how many started."""
        n = 0
        for h in self.hooks:
            if kind in h["on"]:
                data = json.dumps({"event": kind, **payload}, ensure_ascii=False, default=str).encode()
                t = threading.Thread(target=self._direct_run, args=(h, kind, data), daemon=True)
                t.start()
                self._direct.append(t)
                n += 1
        return n

    def _direct_run(self, h: dict, kind: str, data: bytes) -> None:
        outcome, seconds, detail = self._spawn(id(threading.current_thread()), h["command"], kind, data, h["timeout"])
        self._log(kind, h["name"], outcome, seconds, detail)

    # -- the log ---------------------------------------------------------------------------
    def _log(self, kind: str, name: str, outcome: str, seconds: float, detail: str, *, run_id: int | None = None,
             store=None, payload: str | None = None) -> None:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        run = f" run {run_id}" if run_id is not None else ""
        if outcome in ("started", "queued"):
            line = f"{at}{run} {kind} [{name}] {outcome}" + (f" ({detail})" if detail else "")
        else:
            line = f"{at}{run} {kind} [{name}] {outcome} in {seconds:.2f}s" + (f": {detail}" if detail else "")
        (log.warning if outcome not in ("ok", "started", "queued") else log.info)("hook %s", line)
        self.recent.append(line)
        if outcome not in ("ok", "started", "queued", "stopped"):
            failure = {"hook": name, "on": kind, "outcome": outcome, "detail": detail}
            customer_id = _customer_of(payload)
            if store is not None:  # visible in the event log and the console, not only in hooks.log
                try:
                    store.log_event("hook_failed", "hooks", customer_id, **failure)
                except Exception:
                    log.exception("recording a failed hook")
            else:
                self.failures.append(failure)
        if self.log_path:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError:
                log.exception("cannot write %s", self.log_path)

    # -- waiting and stopping ----------------------------------------------------------------
    def busy(self) -> bool:
        with self._lock:
            return any(t.is_alive() for ts in self._workers.values() for t in ts) or \
                any(t.is_alive() for t in self._direct)

    def wait(self, timeout: float = 30.0, store=None) -> bool:
        """Wait until every run has finished: the ones started by `fire`, and with
        `store` every queued run too (`sync --once` does this before it exits).
        False if some were still running after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if store is not None and not self._stopping.is_set():
                self.dispatch(store)
            queued = store is not None and any(q["queued"] for q in store.hook_queue().values())
            if not self.busy() and not queued:
                return True
            time.sleep(0.02)
        return False

    def close(self, wait: bool = True, grace: float | None = None) -> None:
        """Stop: no new runs start; running ones get `grace` seconds (default:
        the configured grace; with wait=True, their own timeouts), then their
        process groups are killed and they are queued again."""
        self._stopping.set()
        if wait and grace is None:
            grace = max((h["timeout"] for h in self.hooks), default=0.0) + 1.0
        deadline = time.monotonic() + (self.grace if grace is None else grace)
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill(proc)
        with self._lock:
            threads = [t for ts in self._workers.values() for t in ts] + self._direct
        for t in threads:  # each records its run as stopped and queued again: quick
            t.join(2.0)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _customer_of(payload: str | None) -> int | None:
    """The customer a run was about, for its 'hook_failed' event."""
    try:
        data = json.loads(payload) if payload else {}
        return (data.get("customer") or {}).get("id") or data.get("customer_id")
    except (ValueError, AttributeError):
        return None
