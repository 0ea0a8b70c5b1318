"""Drafts outlive the console: each change to a draft (its text, the channel chosen,
attachments, Cc, note or reply) is kept in the store a moment after the agent stops
typing, and at once when they quit; the next console opens with them (marked ✎ in
the queue). A draft goes when it is sent or emptied.

Writes run one after another in a worker (never two at once, so an older save
never lands after a newer one); only what differs from what the store holds is
written, so opening customers writes nothing.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, cast

from store import Store
from store.drafts import Draft

from console.later import Debounce

if TYPE_CHECKING:
    from console.app import OmnideskApp
    from console.desk import DeskScreen

DELAY = 1.0  # seconds after the last change


def _same(a: Draft | None, b: Draft | None) -> bool:
    if a is None or b is None:
        return a is b
    return dataclasses.replace(a, updated_at=0) == dataclasses.replace(b, updated_at=0)


class DraftKeeper:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = cast("OmnideskApp", desk.app)
        self.saved: dict[int, Draft | None] = {}  # what the store holds, as far as we know
        self.dirty: set[int] = set()
        self.error: str | None = None  # why the last save failed (a read-only store)
        self._soon = Debounce(self.app, DELAY, self.flush)  # (not set_timer: it may never fire under load)
        self._saving = False
        self._waiters: list[Callable[[bool], None]] = []

    def load(self) -> None:
        """This agent's drafts from the store, into the composer and the queue's marks."""
        try:
            drafts = self.app.store.drafts(self.app.agent)
        except Exception as e:  # an unreadable store says so elsewhere; drafts just start empty
            self.app.notify(f"drafts not read: {e}", severity="warning")
            return
        for d in drafts:
            self.saved[d.customer_id] = d
        self.desk.composer.load_drafts(drafts)
        self.desk.queue.set_drafts(self.desk.composer.draft_customers())

    def changed(self, customer_id: int) -> None:
        self.dirty.add(customer_id)
        self._soon.poke()

    def unsaved(self) -> list[int]:
        """Customers whose draft differs from what the store holds."""
        composer = self.desk.composer
        if composer.closing:  # nothing to compare with (never taken for "emptied": that would delete)
            return []
        return [cid for cid in self.dirty if not _same(composer.draft_for(cid), self.saved.get(cid))]

    def forget(self, customer_id: int) -> None:
        """The draft was sent (and removed from the store in the same transaction)."""
        self.saved[customer_id] = None

    def flush(self, then: Callable[[bool], None] | None = None) -> None:
        """Write what changed now; `then(ok)` once everything is kept (ok False: a save failed)."""
        if then is not None:
            self._waiters.append(then)
        self._soon.cancel()
        if self._saving:
            return  # the running save flushes again when it ends
        composer = self.desk.composer
        items = [(cid, composer.draft_for(cid)) for cid in self.unsaved()]
        self.dirty.clear()
        if not items:
            self._answer(True)
            return
        agent = self.app.agent
        self._saving = True

        def write(s: Store) -> None:
            for cid, draft in items:
                if draft is None:
                    s.delete_draft(agent, cid)
                else:
                    s.save_draft(agent, draft)

        def done(_) -> None:
            self._saving = False
            self.error = None
            for cid, draft in items:
                self.saved[cid] = draft
            self.flush() if self.dirty else self._answer(True)

        def failed(error: Exception) -> None:
            self._saving = False
            self.dirty.update(cid for cid, _ in items)  # still to keep
            if self.error is None:
                self.app.notify(f"drafts are not kept: {error}", severity="warning", timeout=8)
            self.error = str(error)
            self._answer(False)
        self.desk.reader.run(write, done, group="drafts", failed=failed)

    def keep_now(self) -> int:
        """Write every draft that differs from the store's at once, on this thread:
        the console is going down (an unexpected error) and no worker may finish.
        Returns how many were written; raises what the store raises."""
        composer = self.desk.composer
        candidates = set(self.dirty) | set(composer.drafts) | set(self.saved)
        if composer.customer is not None:
            candidates.add(composer.customer.id)
        s, agent, n = self.app.store, self.app.agent, 0
        for cid in sorted(candidates):
            draft = composer.draft_for(cid)
            if _same(draft, self.saved.get(cid)) and cid not in self.dirty:
                continue
            if draft is None:
                s.delete_draft(agent, cid)
            else:
                s.save_draft(agent, draft)
                n += 1
            self.saved[cid] = draft
        self.dirty.clear()
        return n

    def _answer(self, ok: bool) -> None:
        waiters, self._waiters = self._waiters, []
        for then in waiters:
            then(ok)
