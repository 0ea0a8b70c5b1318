"""The console's one way to use the store off the UI thread.

Every slow read and every write runs as a Textual thread worker that borrows a
Store from a small pool and gives it back: connections stay warm (a fresh one
costs a schema check and a cold page cache), and there are never more of them
than reads running at once. The result comes back to the UI thread through a
callback; errors become toasts, never a crash.

    reader.run(lambda s: s.customer(7), show, group="customer", exclusive=True)

`exclusive` cancels the group's older runs: their results are dropped, so a
slow read never overwrites a newer one. The UI thread keeps its own Store
(`app.store`) for the cheap reads a keypress needs at once.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from textual.dom import DOMNode
from textual.worker import Worker, get_current_worker

from store import Store, StoreError


MAX_IDLE = 2  # warm connections kept between reads (each holds up to 16 MB of page cache)


class StoreReader:
    """Thread workers on `node`, each with a pooled Store made by `opener`."""

    def __init__(self, node: DOMNode, opener: Callable[[], Store]):
        self.node = node
        self.opener = opener
        self._idle: list[Store] = []
        self._lock = threading.Lock()
        self._closed = False
        self._pending: set[Worker] = set()  # runs whose result has not been handled yet

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A Store for this thread until the block ends (for code already in a worker)."""
        with self._lock:
            s = self._idle.pop() if self._idle else None
        if s is None:
            s = self.opener()
        try:
            yield s
        finally:
            with self._lock:
                # a Store whose server connection went away is not kept for the next read
                keep = not self._closed and len(self._idle) < MAX_IDLE and not s.connection_lost
                if keep:
                    self._idle.append(s)
            if not keep:  # a burst of reads opened more than stay useful: their caches go
                s.close()

    def run(self, fn: Callable[[Store], Any], done: Callable[[Any], None] | None = None, *,
            group: str = "read", exclusive: bool = False,
            failed: Callable[[Exception], None] | None = None, hold_keys: bool = False) -> Worker:
        """Run `fn(store)` in a worker, then `done(result)` on the UI thread.
        An error calls `failed(error)` there instead (default: an error toast
        with the store's message). `hold_keys`: what comes next may be a dialog
        (a prompt for a template's values): keys typed meanwhile wait for it
        (console/keyhold.py)."""
        app = self.node.app
        keys = getattr(app, "keys", None) if hold_keys else None
        hold = keys.hold(f"read {group}") if keys is not None else None

        def finish(worker: Worker, result: Any, error: Exception | None) -> None:
            self._pending.discard(worker)
            try:
                if worker.is_cancelled:  # a newer run of the group took its place
                    return
                if error is not None:
                    (failed or self._tell)(error)
                elif done is not None:
                    done(result)
            finally:
                if hold is not None:
                    hold.release()

        def work() -> None:
            worker = get_current_worker()
            result, error = None, None
            try:
                with self.store() as s:
                    result = fn(s)
            except Exception as e:  # handed to the UI thread: shown, never fatal
                error = e
            try:
                app.call_from_thread(finish, worker, result, error)
            except RuntimeError:  # the app has gone away
                pass
        worker = self.node.run_worker(work, thread=True, group=group, exclusive=exclusive, exit_on_error=False)
        self._pending.add(worker)
        return worker

    def _tell(self, error: Exception) -> None:
        text = str(error) if isinstance(error, (StoreError, ValueError)) else f"{type(error).__name__}: {error}"
        self.node.app.notify(text, severity="error")

    def busy(self) -> bool:
        """Results still to come (tests and the benchmark wait on this). A
        cancelled run may never start: it does not count."""
        self._pending = {w for w in self._pending if not w.is_cancelled}
        return bool(self._pending)

    def close(self) -> None:
        """Close the idle connections; ones still in use close when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for s in idle:
            try:
                s.close()
            except Exception:
                pass
