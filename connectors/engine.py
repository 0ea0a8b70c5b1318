"""The sync engine: drives every connector, ingests, sends the outbox.

Threads: one poller per connector, one outbox sender, one lease keeper.
Each thread has its own store connection. Only the process holding the
polling lease polls and sends, so two consoles on one store never both poll.
No thread dies: each loop runs under a guard that notes whatever it raised
(store errors included: "store locked by another process", "disk full"),
backs off and runs it again; the lease keeper watches the others and writes
the engine's own health row ("sync") when one is stuck or stopped.

Guarantees:
- a batch's rows and its cursor are committed in one transaction, so a crash
  at any point loses nothing and doubles nothing (at-least-once fetch,
  exactly-once rows);
- errors back off exponentially with jitter and show up as channel health
  (connectors/failures.py);
- a reply is sent at most once: it is retried only when the channel showed it
  was not delivered (refused connection, 429, an error answer); after a timeout
  or a dropped connection it is failed as "may have been delivered" for the
  agent to decide. Each delivered part of a long reply is recorded at once, and
  a retry resumes at the next part.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from connectors.base import (FAILED, OK, RETRYING, ConnectorError, PermanentError, RejectedError,
                             UncertainError)
from connectors.failures import backoff, describe
from store import Store
from store.db import store_problem

log = logging.getLogger("omnidesk.engine")


ENGINE = "sync"  # the health row of the engine itself (its threads)


class Engine:
    def __init__(self, store_path, connectors: list, *, holder: str | None = None,
                 poll_interval: float = 30.0, lease_seconds: float = 30.0, max_attempts: int = 5,
                 permanent_retry: float = 300.0, clock: Callable[[], float] = time.time,
                 store_options: dict | None = None):
        self.store_path = store_path
        self.connectors = list(connectors)
        self.by_name = {c.name: c for c in self.connectors}
        from connectors.lease import guess_program, holder_id

        self.holder = holder or holder_id(guess_program(), self)  # names program, user and start (in words)
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
        self._live: dict[str, tuple[str, str]] = {}  # what is true now, written or not (the store may be locked)
        self._beats: dict[str, float] = {}  # thread name -> monotonic time of its last loop turn
        self._faults: dict[str, str] = {}  # thread name -> what it last raised, until it turns again
        self._sending: set[int] = set()  # outbox ids this process is sending (not "interrupted")
        self.outcomes: list[dict] = []  # what each send attempt of run_once() came to, for `sync --once`
        self.stuck_after = max(180.0, 4 * poll_interval)  # a loop turn this late means the thread hangs

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
        self._beats[name] = time.monotonic()
        t = threading.Thread(target=self._guard, args=(name, target, args), name=f"omnidesk {name}", daemon=True)
        t.start()
        self.threads.append(t)

    def _guard(self, name: str, target, args) -> None:
        """Run a loop until stop() whatever it raises: note the cause, back off,
        run it again (with a new store connection)."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                target(*args)
                failures = 0
            except Exception as e:
                failures += 1
                self._faults[name] = describe(e)
                log.exception("%s stopped; restarting it", name)
            self._beat(name)
            self.stop_event.wait(backoff(failures, 1.0, 60.0) if failures else 0.1)

    def _beat(self, name: str) -> None:
        self._beats[name] = time.monotonic()

    def thread_report(self) -> dict[str, str]:
        """Every engine thread and how it is: {"poll telegram:main": "ok" | "stopped" |
        "stuck for 300s" | "retrying: store locked by another process"}."""
        now = time.monotonic()
        out = {}
        for t in self.threads:
            name = t.name.removeprefix("omnidesk ")
            if not t.is_alive():
                out[name] = "stopped"
            elif now - self._beats.get(name, now) > self.stuck_after:
                out[name] = f"stuck for {now - self._beats[name]:.0f}s"
            elif name in self._faults:
                out[name] = f"retrying: {self._faults[name]}"
            else:
                out[name] = "ok"
        return out

    def threads_alive(self) -> tuple[int, int]:
        """(threads running and turning, threads started)."""
        report = self.thread_report()
        return sum(1 for v in report.values() if v == "ok" or v.startswith("retrying")), len(report)

    def live_health(self) -> dict[str, dict]:
        """Health as this process knows it now, for a console running the engine:
        the store may be too locked to hold it yet."""
        out = {name: {"state": st, "detail": detail} for name, (st, detail) in self._live.items()}
        alive, total = self.threads_alive()
        if total and alive < total:
            out[ENGINE] = {"state": FAILED, "detail": self._engine_detail()}
        return out

    def _engine_detail(self) -> str:
        report = self.thread_report()
        bad = [f"{name} {state}" for name, state in report.items() if state != "ok" and not state.startswith("retrying")]
        alive = len(report) - len(bad)
        return f"{alive}/{len(report)} threads alive" + (": " + "; ".join(bad) if bad else "")

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

    def _set_health(self, s: Store, name: str, state: str, detail: str = "", *, write: bool = True) -> None:
        """Note a channel's health, and write it when it changed (either thread may
        change it). Never raises: a store that cannot take it now gets it on the
        next change or the next turn (`write=False` when the store is the problem)."""
        self._live[name] = (state, detail)
        if write and self._health.get(name) != (state, detail):
            try:
                s.set_health(name, state, detail)
            except Exception as e:
                log.warning("cannot write health of %s: %s", name, describe(e))
                return
            self._health[name] = (state, detail)

    def _flush_health(self, s: Store) -> None:
        """Write health the store could not take when it changed."""
        for name, (state, detail) in list(self._live.items()):
            self._set_health(s, name, state, detail)

    def wake_outbox(self) -> None:
        self.outbox_wake.set()

    # -- the lease --------------------------------------------------------------
    def _lease_loop(self) -> None:
        s = self._store()
        renewed = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self._beat("lease")
                store_trouble = None
                try:
                    held = s.acquire_lease(self.holder, self.lease_seconds)
                    renewed = time.monotonic()
                    if self._faults.pop("lease", None) is not None:
                        log.warning("lease: the store answers again")
                except Exception as e:
                    # The store is locked or full, or its server away (a PostgreSQL store
                    # reconnects by itself): nobody else can take the lease either, so keep
                    # what we had until it would have expired.
                    store_trouble = store_problem(e, self.store_path) or describe(e)
                    if self._faults.get("lease") != store_trouble:  # said once, not every turn
                        log.warning("lease: %s", store_trouble)
                    self._faults["lease"] = store_trouble
                    held = self.has_lease.is_set() and time.monotonic() - renewed < self.lease_seconds
                if held and not self.has_lease.is_set():
                    try:
                        n = s.recover_interrupted(exclude=set(self._sending))
                    except Exception as e:
                        self._faults["lease"] = describe(e)
                        n, held = 0, False  # try again next turn; no polling before that
                    if n:
                        log.warning("%d replies were interrupted mid-send and are marked 'may have been delivered'", n)
                    if held:
                        self.has_lease.set()
                        self.outbox_wake.set()
                elif not held and self.has_lease.is_set():
                    if store_trouble:  # the truth: nobody took it; the store did not answer
                        log.warning("lease: %s; polling and sending paused until the store answers", store_trouble)
                    else:
                        log.warning("lost the polling lease to another process")
                    self.has_lease.clear()
                if store_trouble and not held:
                    self._set_health(s, ENGINE, RETRYING, f"{store_trouble}; polling and sending paused", write=False)
                if held and "lease" not in self._faults:
                    for hook in self.tick_hooks:
                        try:
                            hook(s)
                        except Exception:
                            log.exception("timer hook")
                    self._flush_health(s)
                    self._set_health(s, ENGINE, OK if self._all_alive() else FAILED, self._engine_detail())
                self.stop_event.wait(min(self.lease_seconds / 3, 5.0))
        finally:
            s.close()

    def _all_alive(self) -> bool:
        alive, total = self.threads_alive()
        return alive == total

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
        name = f"poll {connector.name}"
        s = self._store()
        failures = 0
        try:
            while not self.stop_event.is_set():
                self._beat(name)
                if not self.has_lease.wait(0.5):
                    continue
                try:
                    _, more = self._poll_once(s, connector)
                    failures = 0
                    self._faults.pop(name, None)
                    self._set_health(s, connector.name, OK)
                    if not more:
                        connector.wait(self.poll_interval, self.stop_event)
                except PermanentError as e:
                    failures += 1
                    detail = describe(e, connector)
                    self._set_health(s, connector.name, FAILED, detail)
                    log.error("%s: %s", connector.name, detail)
                    self.stop_event.wait(min(self.permanent_retry, backoff(failures, 5.0, self.permanent_retry)))
                except Exception as e:  # ConnectorError, the store, anything unexpected: retry
                    failures += 1
                    retry_after = getattr(e, "retry_after", None)
                    delay = retry_after if retry_after else backoff(failures, 1.0, 60.0)
                    problem = store_problem(e, self.store_path)
                    if problem:
                        self._faults[name] = problem
                    elif not isinstance(e, ConnectorError):
                        log.exception("%s: unexpected error", connector.name)
                    detail = f"{problem or describe(e, connector)}; retrying in {delay:.0f}s"
                    self._set_health(s, connector.name, RETRYING, detail, write=not problem)
                    self.stop_event.wait(delay)
        finally:
            s.close()

    # -- sending -------------------------------------------------------------------
    def _outbox_loop(self) -> None:
        s = self._store()
        names = set(self.by_name)
        failures = 0
        try:
            while not self.stop_event.is_set():
                self._beat("outbox")
                self.outbox_wake.wait(1.0 if not failures else backoff(failures, 1.0, 60.0))
                self.outbox_wake.clear()
                if not self.has_lease.is_set():
                    continue
                try:
                    self.flush_outbox(s, names)
                    failures = 0
                    self._faults.pop("outbox", None)
                except Exception as e:
                    failures += 1
                    self._faults["outbox"] = describe(e)
                    if store_problem(e, self.store_path):
                        log.warning("outbox: %s", self._faults["outbox"])
                    else:
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
        self._sending.add(out.outbox_id)
        try:
            self._send_and_record(s, connector, out)
        finally:
            self._sending.discard(out.outbox_id)

    def _send_and_record(self, s: Store, connector, out) -> None:
        # each delivered part is in the store before the next one goes out
        out.on_part = lambda part_id: self._record(s.record_part, out.outbox_id, part_id)

        def note(outcome: str, error: str = "") -> None:
            self.outcomes.append({"message_id": out.message_id, "channel": connector.name, "outcome": outcome,
                                  "error": error})
        try:
            receipt = connector.send(out)
        except RejectedError as e:  # this message only; the channel is fine
            self._record(s.mark_failed, out.outbox_id, describe(e, connector), None)
            note("failed", describe(e, connector))
            return
        except PermanentError as e:
            self._record(s.mark_failed, out.outbox_id, describe(e, connector), None)
            self._set_health(s, connector.name, FAILED, describe(e, connector))
            note("failed", describe(e, connector))
            return
        except UncertainError as e:  # it went out and no answer came: never a blind retry
            self._record(s.mark_failed, out.outbox_id, describe(e, connector), None, uncertain=True)
            note("uncertain", describe(e, connector))
            return
        except ConnectorError as e:  # the channel showed it was not delivered: retry
            if out.attempts >= self.max_attempts:
                error = f"{describe(e, connector)} (after {out.attempts} attempts)"
                self._record(s.mark_failed, out.outbox_id, error, None)
                note("failed", error)
            else:
                delay = e.retry_after or backoff(out.attempts, 2.0, 600.0)
                self._record(s.mark_failed, out.outbox_id, describe(e, connector), self.clock() + delay)
                note("retrying", f"{describe(e, connector)}; next try in {delay:.0f}s")
            return
        except Exception as e:  # we cannot tell whether it went out
            log.exception("%s: unexpected error while sending", connector.name)
            self._record(s.mark_failed, out.outbox_id, describe(e, connector), None, uncertain=True)
            note("uncertain", describe(e, connector))
            return
        self._record(s.mark_sent, out.outbox_id, receipt)
        note("sent")

    def _record(self, write, *args, **kw) -> None:
        """Write what happened to a reply, waiting out a locked or full store: the
        channel already acted, and forgetting it would send the reply again. If we
        are stopped first, the reply stays 'sending' and the next start marks it
        'may have been delivered'."""
        failures = 0
        while True:
            try:
                write(*args, **kw)
                self._faults.pop("outbox", None)
                return
            except Exception as e:
                failures += 1
                self._faults["outbox"] = describe(e)
                log.warning("outbox: cannot record a send yet: %s", self._faults["outbox"])
                self._beat("outbox")
                if self.stop_event.wait(backoff(failures, 0.5, 30.0)):
                    raise

    # -- one pass, for cron and tests ---------------------------------------------------
    def run_once(self) -> dict[str, int]:
        """Poll every connector until it has nothing more, then send the outbox.
        Returns rows ingested per connector. Holds the lease, with a heartbeat,
        for the whole pass (a long first import must not let a second poller in)."""
        s = self._store()
        counts: dict[str, int] = {}
        self.outcomes = []
        if not s.acquire_lease(self.holder, self.lease_seconds):
            holder = s.lease_holder()
            s.close()
            from connectors.lease import describe as describe_holder

            who = describe_holder(holder[0], holder[1]) if holder else "another omnidesk"
            raise ConnectorError(f"{who} already polls this store and sends its replies (it holds the polling"
                                 f" lease); nothing to do while it runs: quit it first to run a pass here")
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
                    self._set_health(s, connector.name, FAILED, describe(e, connector))
                except Exception as e:
                    problem = store_problem(e, self.store_path)
                    self._set_health(s, connector.name, RETRYING, problem or describe(e, connector),
                                     write=not problem)
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
                try:
                    s.release_lease(self.holder)
                except Exception as e:  # it expires by itself
                    log.warning("cannot release the lease: %s", describe(e))
            self.has_lease.clear()
            s.close()
        return counts

    def _heartbeat(self, done: threading.Event) -> None:
        s = self._store()
        try:
            while not done.wait(max(0.2, self.lease_seconds / 3)):
                try:
                    held = s.acquire_lease(self.holder, self.lease_seconds)
                except Exception as e:  # locked: nobody else can take it meanwhile
                    log.warning("lease: %s", describe(e))
                    continue
                if not held:
                    log.warning("lost the polling lease to another process")
                    self.has_lease.clear()
                    return
        finally:
            s.close()
