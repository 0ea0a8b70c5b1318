"""Run something on the UI thread after a delay, also on a loaded machine.

Textual's one-shot `set_timer` never fires when its task is descheduled for longer than
its delay between the two clock reads that start it: it "skips" the late tick, and a
one-shot timer has no other. A draft saved 1 s after the last change, the reply preview
0.12 s after typing, a queue row's customer shown 0.2 s after the cursor stopped on it,
a 2 ms look for a quiet console: each could then never happen (the draft was kept only
at quit). These delays go through asyncio's own timer (`call_later`), which has no
skipping: late, it still fires.
"""
from __future__ import annotations

import asyncio
from typing import Callable


def later(node, delay: float, fn: Callable[[], object]) -> None:
    """`fn()` on the UI thread, as `node`'s next callback, after `delay` seconds."""
    asyncio.get_running_loop().call_later(delay, node.call_next, fn)


class Debounce:
    """`fn()` once, `delay` seconds after the last `poke()`; each poke starts the wait
    again, `cancel()` forgets it. It runs as `node`'s callback (never once `node` is gone,
    as with set_timer).

        self.preview = Debounce(self, 0.12, self.update_preview)
        self.preview.poke()     # on every change
    """

    def __init__(self, node, delay: float, fn: Callable[[], object]) -> None:
        self.node, self.delay, self.fn = node, delay, fn
        self._handle: asyncio.TimerHandle | None = None
        self._turn = 0  # counts pokes and cancels: a run queued before the last one does nothing
        self._waiting = False

    @property
    def pending(self) -> bool:
        """Poked, and `fn` has not run since (nor was the wait cancelled)."""
        return self._waiting

    def poke(self) -> None:
        self.cancel()
        self._waiting = True
        self._handle = asyncio.get_running_loop().call_later(self.delay, self._due, self._turn)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._turn += 1
        self._waiting = False

    def _due(self, turn: int) -> None:
        self._handle = None
        self.node.call_next(self._run, turn)

    def _run(self, turn: int) -> None:
        if turn != self._turn:  # cancelled, or poked again, after it was queued
            return
        self._waiting = False
        if not self.node.is_attached:  # the console is closing: its widgets are being taken down
            return
        self.fn()
