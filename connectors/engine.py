"""The sync engine: drives every connector, ingests, sends the outbox.

Threads: one poller per connector, one outbox sender, one lease keeper.
Each thread has its own store connection. Only the process holding the
polling lease polls and sends, so two consoles on one store never both poll.

Guarantees:
- a batch's rows and its cursor are committed in one transaction, so a crash
  at any point loses nothing and doubles nothing (at-least-once fetch,
  exactly-once rows);
- errors back off exponentially with jitter and show up as channel health;
- a reply is sent, retried, or failed with its text kept.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from typing import Callable

from connectors.base import FAILED, OK, RETRYING, ConnectorError, PermanentError, RejectedError
from store import Store

log = logging.getLogger("omnidesk.engine")


def backoff(failures: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter (half to full of the capped delay)."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay * random.uniform(0.5, 1.0)


def _describe(exc: BaseException, connector=None) -> str:
    """One line for health and the outbox; the connector's secrets scrubbed out
    (a library exception may carry a token in a URL)."""
    text = str(exc).strip() or type(exc).__name__
    scrub = getattr(connector, "scrub", None)
    if scrub is not None:
        text = scrub(text)
    return " ".join(text.split())[:300]


class Engine:
    def __init__(self, store_path, connectors: list, *, holder: str | None = None,
                 poll_interval: float = 30.0, lease_seconds: float = 30.0, max_attempts: int = 5,
                 permanent_retry: float = 300.0, clock: Callable[[], float] = time.time,
                 store_options: dict | None = None):
        self.store_path = store_path
        self.connectors = list(connectors)
        self.by_name = {c.name: c for c in self.connectors}
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.permanent_retry = permanent_retry
        self.clock = clock
        self.store_options = store_options or {}
        self.stop_event = threading.Event()
        self.has_lease = threading.Event()
        self.outbox_wake = threading.Event()
        # run by the lease keeper every few seconds (rules timer, ...); snoozes wake here
        # even when no console is looking at the queue
        self.tick_hooks: list[Callable[[Store], None]] = [lambda s: s.wake_snoozed()]
        self.ingest_hooks: list[Callable[[Store, list], None]] = []  # run after each committed batch
        self.stop_hooks: list[Callable[[], None]] = []  # run by stop() at once (the automation stops its hooks)
        self.once_hooks: list[Callable[[Store], None]] = []  # run at the end of run_once (hooks finish their runs)
        self.threads: list[threading.Thread] = []
        self._health: dict[str, tuple[str, str]] = {}  # what we last wrote, shared by the poll and send paths

    def _store(self) -> Store:
        s = Store(self.store_path, clock=self.clock, **self.store_options)
        s.on_ingest.append(lambda results: self._after_ingest(s, results))
        return s

    def _after_ingest(self, s: Store, results: list) -> None:
        for hook in self.ingest_hooks:
            try:
                hook(s, results)
            except Exception:  # automation must never stop ingest
                log.exception("ingest hook")

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self.stop_event.clear()
        self._spawn("lease", self._lease_loop)
        for connector in self.connectors:
            self._spawn(f"poll {connector.name}", self._poll_loop, connector)
        self._spawn("outbox", self._outbox_loop)

    def _spawn(self, name, target, *args) -> None:
        t = threading.Thread(target=target, args=args, name=f"omnidesk {name}", daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread; a batch in flight either commits whole or not at all."""
        self.stop_event.set()
        self.outbox_wake.set()
        for hook in self.stop_hooks:
            try:
                hook()
            except Exception:
                log.exception("stop hook")
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for c in self.connectors:
            try:
                c.close()
            except Exception:  # closing is best effort
                log.exception("closing %s", c.name)
        if self.has_lease.is_set():
            s = self._store()
            s.release_lease(self.holder)
            s.close()
            self.has_lease.clear()
        self.threads = []

    def _set_health(self, s: Store, name: str, state: str, detail: str = "") -> None:
        """Write a channel's health when it changes (either thread may change it)."""
        if self._health.get(name) != (state, detail):
            self._health[name] = (state, detail)
            s.set_health(name, state, detail)

    def wake_outbox(self) -> None:
        self.outbox_wake.set()

    # -- the lease --------------------------------------------------------------
    def _lease_loop(self) -> None:
        s = self._store()
        try:
            while not self.stop_event.is_set():
                try:
                    held = s.acquire_lease(self.holder, self.lease_seconds)
                except Exception:
                    log.exception("lease")
                    held = False
                if held and not self.has_lease.is_set():
                    n = s.recover_interrupted()
                    if n:
                        log.warning("%d replies were interrupted mid-send and are marked failed", n)
                    self.has_lease.set()
                    self.outbox_wake.set()
                elif not held and self.has_lease.is_set():
                    log.warning("lost the polling lease to another process")
                    self.has_lease.clear()
                if held:
                    for hook in self.tick_hooks:
                        try:
                            hook(s)
                        except Exception:
                            log.exception("timer hook")
                self.stop_event.wait(min(self.lease_seconds / 3, 5.0))
        finally:
            s.close()

    # -- polling ----------------------------------------------------------------
    @staticmethod
    def _poll_once(s: Store, connector) -> tuple[int, bool]:
        """One fetch from the saved cursor; rows and the new cursor commit together.
        Returns (rows stored, whether the connector has more right now)."""
        cursor = s.load_cursor(connector.name)
        batch = connector.fetch(cursor)
        stored = 0
        if batch.items or batch.cursor != cursor:
            stored = len(s.ingest_batch(batch.items, connector.name, batch.cursor))
        return stored, batch.more

    def _poll_loop(self, connector) -> None:
        s = self._store()
        failures = 0
        try:
            while not self.stop_event.is_set():
                if not self.has_lease.wait(0.5):
                    continue
                try:
                    _, more = self._poll_once(s, connector)
                    failures = 0
                    self._set_health(s, connector.name, OK)
                    if not more:
                        connector.wait(self.poll_interval, self.stop_event)
                except PermanentError as e:
                    failures += 1
                    detail = _describe(e, connector)
                    self._set_health(s, connector.name, FAILED, detail)
                    log.error("%s: %s", connector.name, detail)
                    self.stop_event.wait(min(self.permanent_retry, backoff(failures, 5.0, self.permanent_retry)))
                except Exception as e:  # ConnectorError and anything unexpected: retry
                    failures += 1
                    retry_after = getattr(e, "retry_after", None)
                    delay = retry_after if retry_after else backoff(failures)
                    if not isinstance(e, ConnectorError):
                        log.exception("%s: unexpected error", connector.name)
                    self._set_health(s, connector.name, RETRYING, f"{_describe(e, connector)}; retrying in {delay:.0f}s")
                    self.stop_event.wait(delay)
        finally:
            s.close()

    # -- sending -------------------------------------------------------------------
    def _outbox_loop(self) -> None:
        s = self._store()
        names = set(self.by_name)
        try:
            while not self.stop_event.is_set():
                self.outbox_wake.wait(1.0)
                self.outbox_wake.clear()
                if not self.has_lease.is_set():
                    continue
                try:
                    self.flush_outbox(s, names)
                except Exception:
                    log.exception("outbox")
        finally:
            s.close()

    def flush_outbox(self, s: Store, names: set[str] | None = None) -> int:
        """Send everything due now, one reply at a time (claimed just before it
        is sent); stops when asked to or when the lease is lost. Returns how many
        were handled."""
        names = names if names is not None else set(self.by_name)
        self._report_stranded(s, names)
        done = 0
        while not self.stop_event.is_set() and self.has_lease.is_set():
            due = s.claim_due(names)
            if not due:
                return done
            self._send_one(s, due[0])
            done += 1
        return done

    def _report_stranded(self, s: Store, names: set[str]) -> None:
        """Replies queued for an account that is no longer configured would wait
        forever without a word: say so where the channel health is shown."""
        for name, n in s.queued_elsewhere(names).items():
            self._set_health(s, name, FAILED, f"{n} repl{'y' if n == 1 else 'ies'} queued, but this account is not"
                                              " in the config; add it back or retry them on another channel")

    def _send_one(self, s: Store, out) -> None:
        connector = self.by_name[f"{out.channel}:{out.account}"]
        try:
            receipt = connector.send(out)
        except RejectedError as e:  # this message only; the channel is fine
            s.mark_failed(out.outbox_id, _describe(e, connector), None)
            return
        except PermanentError as e:
            s.mark_failed(out.outbox_id, _describe(e, connector), None)
            self._set_health(s, connector.name, FAILED, _describe(e, connector))
            return
        except Exception as e:
            if not isinstance(e, ConnectorError):
                log.exception("%s: unexpected error while sending", connector.name)
            if out.attempts >= self.max_attempts:
                s.mark_failed(out.outbox_id, f"{_describe(e, connector)} (after {out.attempts} attempts)", None)
            else:
                delay = getattr(e, "retry_after", None) or backoff(out.attempts, 2.0, 600.0)
                s.mark_failed(out.outbox_id, _describe(e, connector), self.clock() + delay)
            return
        s.mark_sent(out.outbox_id, receipt)

    # -- one pass, for cron and tests ---------------------------------------------------
    def run_once(self) -> dict[str, int]:
        """Poll every connector until it has nothing more, then send the outbox.
        Returns rows ingested per connector. Holds the lease, with a heartbeat,
        for the whole pass (a long first import must not let a second poller in)."""
        s = self._store()
        counts: dict[str, int] = {}
        if not s.acquire_lease(self.holder, self.lease_seconds):
            holder = s.lease_holder()
            s.close()
            raise ConnectorError(f"another omnidesk ({holder[0] if holder else '?'}) holds the polling lease")
        self.has_lease.set()
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), name="omnidesk lease heartbeat", daemon=True)
        heartbeat.start()
        try:
            s.recover_interrupted()
            for connector in self.connectors:
                counts[connector.name] = 0
                try:
                    while self.has_lease.is_set():
                        stored, more = self._poll_once(s, connector)
                        counts[connector.name] += stored
                        if not more:
                            break
                    self._set_health(s, connector.name, OK)
                except PermanentError as e:
                    self._set_health(s, connector.name, FAILED, _describe(e, connector))
                except Exception as e:
                    self._set_health(s, connector.name, RETRYING, _describe(e, connector))
            self.flush_outbox(s)
            for hook in self.tick_hooks:
                try:
                    hook(s)
                except Exception:
                    log.exception("timer hook")
            for hook in self.once_hooks:
                try:
                    hook(s)
                except Exception:
                    log.exception("end-of-pass hook")
        finally:
            done.set()
            heartbeat.join(5)
            if self.has_lease.is_set():
                s.release_lease(self.holder)
            self.has_lease.clear()
            s.close()
        return counts

    def _heartbeat(self, done: threading.Event) -> None:
        s = self._store()
        try:
            while not done.wait(max(0.2, self.lease_seconds / 3)):
                if not s.acquire_lease(self.holder, self.lease_seconds):
                    log.warning("lost the polling lease to another process")
                    self.has_lease.clear()
                    return
        finally:
            s.close()
