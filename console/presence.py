"""Presence: who else has this customer open, and who is writing to them.

What this console tells the others is derived, never remembered: the agent is
"replying" to the customer on screen exactly while the composer holds unsent
reply text for that customer, and "viewing" them otherwise. So a send (the
composer is cleared), leaving with an empty composer, or opening another
customer whose draft is empty all read as "viewing", whatever order the
widgets' messages arrive in. `update()` is called whenever that could have
changed (the composer's text, the customer on screen, a send) and on every
poll; it writes only when the state changed or the heartbeat is due.

A console that exits removes its row; one that dies is recognised at once on
the same machine (its process is gone) and elsewhere within
store.PRESENCE_TTL of its last heartbeat.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
from typing import TYPE_CHECKING

from console.widgets.safe_text import one_line
from store import StoreError

if TYPE_CHECKING:
    from console.desk import DeskScreen

HEARTBEAT = 10.0  # seconds between writes while nothing changes (the row's "still here")
PROCESS = f"{socket.gethostname()}:{os.getpid()}"  # lets other consoles see that this one died


class Presence:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app
        self._written: tuple[int | None, str] | None = None
        self._at = float("-inf")
        self._seq = 0
        self._lock = threading.Lock()  # writes land in the order they were asked for
        self._gone = False  # the console is closing: nothing more is written

    @property
    def activity(self) -> str:
        return self.state()[1]

    def state(self) -> tuple[int | None, str]:
        """(customer on screen, "replying" | "viewing")."""
        current = self.desk.current
        if current is None:
            return None, "viewing"
        composer = self.desk.composer
        writing = (composer.mode == "reply" and composer.customer is not None and composer.customer.id == current.id
                   and bool(composer.area.text.strip()))
        return current.id, "replying" if writing else "viewing"

    def update(self) -> None:
        if self._gone:
            return
        state, now = self.state(), self.app.clock()
        if state == self._written and now - self._at < HEARTBEAT:
            return
        self._written, self._at = state, now
        with self._lock:
            self._seq += 1
            seq = self._seq
        agent = self.app.agent
        customer_id, activity = state

        def write(s) -> None:
            with self._lock:
                if seq == self._seq and not self._gone:  # a newer state was asked for meanwhile: that one is the truth
                    s.set_presence(agent, customer_id, activity, process=PROCESS)
        self.desk.reader.run(write, group="presence", failed=lambda e: self._forget())

    def _forget(self) -> None:
        self._written = None  # the write failed (a busy store): try again at the next poll

    def notice(self, customer_id: int) -> str:
        """The status bar's line about the other agents on `customer_id`."""
        try:
            others = self.app.store.presence(customer_id, exclude=self.app.agent)
        except (StoreError, sqlite3.Error):  # a locked store, a server away: no notice now
            return ""
        replying = [one_line(a, 20) for a, act in others if act == "replying"]
        viewing = [one_line(a, 20) for a, act in others if act != "replying"]
        if replying:
            return f"{', '.join(replying)} {'is' if len(replying) == 1 else 'are'} replying to this customer"
        if viewing:
            return f"{', '.join(viewing)} also {'has' if len(viewing) == 1 else 'have'} this customer open"
        return ""

    def leave(self) -> None:
        """The console is closing: the others stop seeing this agent at once."""
        with self._lock:
            self._gone = True
            self.app.store.set_presence(self.app.agent, None)
