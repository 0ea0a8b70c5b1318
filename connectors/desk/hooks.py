"""Hooks: run a command when something happens, with the event as JSON on stdin.

    [[hook]]
    on = "message_received"          # or a list: ["status_changed", "customers_merged"]
    command = "notify-send omnidesk \"$(jq -r .message.text)\""
    timeout = 10                     # seconds; the command is killed after that

The command runs with /bin/sh (it is the owner's own config, not customer
input); the event only ever travels on stdin and in $OMNIDESK_EVENT (its
kind), never inside the command line, so nothing a customer writes can
become a shell word. Hooks run in a small worker pool: a failing or slow hook
never blocks ingest, sending or the console. Every run is a line in
hooks.log next to the store; failed runs also become 'hook_failed' events.

What arrives on stdin (times are unix seconds):
    message_received, reply_sent:
        {"event": ..., "message": {id, customer_id, channel, account, direction, subject, text,
                                   sent_at, author, sender?}, "customer": {id, name, status, ...}}
    status_changed, target_breached, customers_merged, reply_failed, rule_fired, satisfaction:
        {"event": ..., "customer_id": N, "customer": {...},
         "event_data": {id, kind, actor, at, data}}   # data as in `omnidesk events --json`
    a rule's own `hook = "..."` action:
        {"event": "rule_fired", "rule": name, "customer": {...}, "message": {...}}
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors import config as config_mod
from connectors.config import ConfigError

log = logging.getLogger("omnidesk.hooks")

EVENTS = ("message_received", "reply_sent", "reply_failed", "status_changed", "target_breached",
          "customers_merged", "rule_fired", "satisfaction")
KEYS = ("on", "command", "timeout", "name")
DEFAULT_TIMEOUT = 10.0
MAX_PENDING = 200  # beyond this, new runs are dropped (and logged) rather than piling up


def _check_hook(n: int, table: Any) -> None:
    where = f"hook[{n}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table ([[hook]] with on = ... and command = ...)")
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"{where}.{key}: unknown key; expected one of {', '.join(KEYS)}")
    on = table.get("on")
    kinds = [on] if isinstance(on, str) else on
    if not kinds or not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"{where}.on: missing; expected one of {', '.join(EVENTS)} (or a list of them)")
    for kind in kinds:
        if kind not in EVENTS:
            raise ConfigError(f"{where}.on: unknown event {kind!r}; expected one of {', '.join(EVENTS)}")
    command = table.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{where}.command: missing; expected the command to run (a string)")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}.timeout: expected a number of seconds above 0, got {timeout!r}")


def validate(hooks: Any) -> None:
    if not isinstance(hooks, list):
        raise ConfigError("[hook]: expected [[hook]] tables (double brackets), one per hook")
    for n, table in enumerate(hooks):
        _check_hook(n, table)


config_mod.FREEFORM["hook"] = validate


class HookRunner:
    """Runs commands in worker threads and writes one log line per run."""

    def __init__(self, hooks: list[dict] | None = None, log_path: str | os.PathLike | None = None,
                 workers: int = 2):
        hooks = hooks or []
        validate(hooks)
        self.hooks = []
        for h in hooks:
            kinds = [h["on"]] if isinstance(h["on"], str) else list(h["on"])
            self.hooks.append({"on": kinds, "command": h["command"], "timeout": float(h.get("timeout", DEFAULT_TIMEOUT)),
                               "name": h.get("name") or h["command"][:40]})
        self.log_path = Path(log_path) if log_path else None
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omnidesk hook")
        self._pending = 0
        self._lock = threading.Lock()
        # failed runs, for the automation to record as 'hook_failed' events (it owns a store; we do not)
        self.failures: deque[dict] = deque(maxlen=100)
        self.recent: deque[str] = deque(maxlen=100)  # the latest log lines (`omnidesk hooks test` prints them)

    @classmethod
    def from_config(cls, config: config_mod.Config | None, log_path=None) -> "HookRunner":
        return cls((config.extra.get("hook") if config else None) or [], log_path)

    def wants(self, kind: str) -> bool:
        return any(kind in h["on"] for h in self.hooks)

    def fire(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue every hook for `kind`; returns how many were queued. Never blocks."""
        n = 0
        for h in self.hooks:
            if kind in h["on"]:
                self.run_command(h["command"], kind, payload, h["timeout"], h["name"])
                n += 1
        return n

    def run_command(self, command: str, kind: str, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT,
                    name: str | None = None) -> bool:
        """Queue one command (also used by the rules' `hook` action)."""
        with self._lock:
            if self._pending >= MAX_PENDING:
                self._log(kind, name or command, "dropped", 0.0, f"{MAX_PENDING} hook runs already waiting")
                return False
            self._pending += 1
        data = json.dumps({"event": kind, **payload}, ensure_ascii=False, default=str).encode()
        self.pool.submit(self._run, command, kind, data, timeout, name or command[:40])
        return True

    def _run(self, command: str, kind: str, data: bytes, timeout: float, name: str) -> None:
        start = time.monotonic()
        try:
            env = {**os.environ, "OMNIDESK_EVENT": kind}
            # its own process group, so a timeout kills whatever the shell started too
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
            try:
                _, err = proc.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                self._log(kind, name, "timeout", time.monotonic() - start, f"killed after {timeout:g}s")
                return
            # stderr may carry terminal escapes; the log and the console get printable text only
            tail = " ".join("".join(c if c.isprintable() else " " for c in err.decode(errors="replace")).split())[-300:]
            outcome = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            self._log(kind, name, outcome, time.monotonic() - start, tail)
        except Exception as e:  # a broken hook must never take the runner down
            self._log(kind, name, "error", time.monotonic() - start, f"{type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._pending -= 1

    def _log(self, kind: str, name: str, outcome: str, seconds: float, detail: str) -> None:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        line = f"{at} {kind} [{name}] {outcome} in {seconds:.2f}s" + (f": {detail}" if detail else "")
        (log.info if outcome == "ok" else log.warning)("hook %s", line)
        self.recent.append(line)
        if outcome != "ok":
            self.failures.append({"hook": name, "on": kind, "outcome": outcome, "detail": detail})
        if self.log_path:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError:
                log.exception("cannot write %s", self.log_path)

    def wait(self, timeout: float = 30.0) -> bool:
        """Wait until every queued run has finished (tests, `omnidesk sync --once`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

    def close(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=not wait)
