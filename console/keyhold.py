"""Keys typed while the console moves from one dialog to the next are held, then
given to whatever takes them next, in the order typed.

A person types ahead: "e", enter, "Robert Li", enter edits a name in one burst.
Between two dialogs (the picker has answered, the prompt it leads to is not up
yet; a dialog is pushed but its input has no focus yet; a template's values are
being looked up before their prompts open) those keys would reach the main
screen and run its bindings, or be lost. So while anything of the kind is in
progress the app holds them (`h = hold(why)` ... `h.release()`; several at once), and
when nothing is left in progress posts them again: the next dialog, or the
screen below when no dialog follows, gets them as if typed then.

Keys are also handed out one at a time: a key is "in flight" (a hold) until
the console is quiet again, every widget having handled what the key set off.
Textual gives a key to the widget focused when the key arrives; in a burst
("e", enter, "R", ...) all of them would go to the timeline before "e" had
opened its picker.

When the step they wait for fails (a customer that could not be opened) or a hold
is never released (a bug), the keys held are dropped, and a toast says so: given to
whatever is on screen instead, "r", a reply and ctrl+s could go to another customer.
No hold lasts more than `LONGEST` seconds (longer than the store waits for a lock).
"""
from __future__ import annotations

from typing import Callable

from textual import events

from console.later import Debounce, later

LONGEST = 40.0  # seconds; a safety net only: every hold is released when its step ends


class Hold:
    """One step in progress (a dialog opening, a read whose result may open one, a key in
    flight). `release()` ends it; releasing again, or after the safety net gave up, does
    nothing, so no step can end another's hold early.

    A hold may let some keys past (`passes(event)`: moving on in the queue while the
    customer under the cursor is still on the way) and be told to hurry (`hurry()`) when
    a key it does not let past has to wait for it."""

    def __init__(self, keys: KeyHold, why: str, passes: Callable[[events.Event], bool] | None = None,
                 hurry: Callable[[], object] | None = None) -> None:
        self.keys, self.why, self.passes, self.hurry = keys, why, passes, hurry

    def release(self) -> None:
        self.keys._release(self)


class KeyHold:
    def __init__(self, app) -> None:
        self.app = app
        self._holds: set[Hold] = set()
        self._held: list[events.Event] = []
        # the safety net; like every delay here not Textual's set_timer, which may never fire
        # under load (console/later.py: a 2 ms look for quiet as set_timer held keys for 40 s)
        self._net = Debounce(app, LONGEST, self._give_up)
        # the held key posted again and not yet handed out: keys arriving before it wait behind it
        self._replaying: events.Event | None = None
        self._replay_hold: Hold | None = None

    @property
    def holding(self) -> bool:
        return bool(self._holds)

    def hold(self, why: str = "", *, passes: Callable[[events.Event], bool] | None = None,
             hurry: Callable[[], object] | None = None) -> Hold:
        """A step that may lead to a dialog has begun: keys wait until its `release()`
        (those `passes` lets past go on at once, while no key waits; a key that waits calls
        `hurry()`)."""
        hold = Hold(self, why, passes, hurry)
        self._holds.add(hold)
        if not self._net.pending:
            self._net.poke()
        return hold

    def _release(self, hold: Hold) -> None:
        """The step has ended; when none is left, the held keys go out again."""
        if hold not in self._holds:
            return
        self._holds.discard(hold)
        if not self._holds:
            self._replay()
        elif self._held and all(h.passes for h in self._holds):  # only holds that let some keys past
            if self._lets_past(self._held[0]):
                self._replay()
            else:
                self._hurry()

    def _lets_past(self, event: events.Event) -> bool:
        return all(h.passes is not None and h.passes(event) for h in self._holds)

    def _hurry(self) -> None:
        for h in list(self._holds):
            if h.hurry is not None:
                h.hurry()

    def sent(self, event: events.Event | None = None) -> None:
        """A key was handed to the console: the next waits until it is quiet again."""
        hold = self.hold("a key in flight")
        if event is not None and event is self._replaying:  # its turn came: the next held one waits for quiet
            self._replaying = None
            if self._replay_hold is not None:
                self._replay_hold.release()
                self._replay_hold = None
        self.app.call_later(self._wait_quiet, hold)

    def _wait_quiet(self, hold: Hold) -> None:
        if hold not in self._holds:  # the safety net gave up on it
            return
        if self._quiet():
            hold.release()
        else:  # look again soon (a widget is still at work: layout, a mount, a callback)
            later(self.app, 0.002, lambda: self._wait_quiet(hold))

    def _quiet(self) -> bool:
        """Nothing left to do for any widget on screen, nor for the app but keys."""
        app = self.app
        # keys waiting at the app are typed ones (held as they come), unless they bubbled
        # back up from a widget: then their bindings have yet to run
        if app._next_callbacks or any(not isinstance(m, (events.Key, events.Paste)) or m.is_forwarded
                                      for m in _queued(app)):
            return False
        for screen in app.screen_stack:
            for node in screen.walk_children(with_self=True):
                if node._next_callbacks or _busy(node):
                    return False
        return True

    def take(self, event: events.Event) -> bool:
        """Keep `event` (a key or a paste) if keys are being held; True if kept."""
        if not isinstance(event, (events.Key, events.Paste)) or event is self._replaying:
            return False
        if not self._holds and not self._held:
            return False
        if not self._held and self._lets_past(event):  # e.g. j, j, j down the queue: no need to wait
            return False
        self._held.append(event)  # in the order typed: behind the keys still to be replayed
        self._hurry()
        return True

    def drop(self, why: str) -> None:
        """Forget the keys held so far (what they were typed for did not happen)."""
        if self._held:
            n = sum(1 for e in self._held if isinstance(e, events.Key))
            self._held = []
            self.app.notify(f"{n} key{'s' if n != 1 else ''} typed meanwhile dropped: {why}", severity="warning")

    def _give_up(self) -> None:
        if self._holds:  # a bug: say which step never ended
            self.app.log.warning(f"keys held for {LONGEST}s by {sorted(h.why for h in self._holds)}: dropped")
            self._holds.clear()
            self._replaying = self._replay_hold = None
            self.drop("the console was busy for too long")

    def _replay(self) -> None:
        self._net.cancel()
        if not self._held:
            return
        # One at a time, under a hold: a key typed later that reaches the app's queue before
        # this one is handled waits behind the rest (posting all at once let it jump ahead:
        # "Hello" + ctrl+s in a burst sent "He").
        event = self._held.pop(0)
        # a fresh event: the old one was handled (stopped) once already
        again = (events.Paste(event.text) if isinstance(event, events.Paste)
                 else events.Key(event.key, event.character))  # type: ignore[attr-defined]  # held: Key or Paste
        again.set_sender(self.app)  # as the driver's: from the app (else it stops bubbling at its sender)
        self._replaying = again
        self._replay_hold = self.hold("a held key replayed")
        self.app.post_message(again)


# Textual keeps each widget's messages in its own queue (textual._queue.Queue: a deque
# `values`; older versions used an asyncio.Queue, `_queue`, where a message being handled
# still counted as unfinished until its handler returned).
def _busy(node) -> bool:
    queue = node._message_queue
    return bool(queue.qsize() or getattr(queue, "_unfinished_tasks", 0))


def _queued(node) -> list:
    """The messages waiting at `node`, the one it has peeked at (taken off its queue to see
    whether the next can replace it) first."""
    pending = getattr(node, "_pending_message", None)
    queue = node._message_queue
    waiting = getattr(queue, "values", None)
    return ([pending] if pending is not None else []) + list(waiting if waiting is not None else getattr(queue, "_queue", ()))
