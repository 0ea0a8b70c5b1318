"""Keys typed while the console moves from one dialog to the next are held, then
given to whatever takes them next, in the order typed.

A person types ahead: "e", enter, "Robert Li", enter edits a name in one burst.
Between two dialogs (the picker has answered, the prompt it leads to is not up
yet; a dialog is pushed but its input has no focus yet; a template's values are
being looked up before their prompts open) those keys would reach the main
screen and run its bindings, or be lost. So while anything of the kind is in
progress the app holds them (`hold()` ... `release()`, counted: they nest), and
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

from textual import events

LONGEST = 40.0  # seconds; a safety net only: every hold is released when its step ends


class KeyHold:
    def __init__(self, app) -> None:
        self.app = app
        self._count = 0
        self._held: list[events.Event] = []
        self._timer = None

    @property
    def holding(self) -> bool:
        return self._count > 0

    def hold(self) -> None:
        """A step that may lead to a dialog has begun."""
        self._count += 1
        if self._count == 1 and self._timer is None:
            self._timer = self.app.set_timer(LONGEST, self._give_up)

    def release(self) -> None:
        """The step has ended; when none is left, the held keys go out again."""
        self._count = max(0, self._count - 1)
        if self._count == 0:
            self._replay()

    def sent(self) -> None:
        """A key was handed to the console: the next waits until it is quiet again."""
        self.hold()
        self.app.call_later(self._wait_quiet)

    def _wait_quiet(self) -> None:
        if self._quiet():
            self.release()
        else:  # look again soon (a widget is still at work: layout, a mount, a callback)
            self.app.set_timer(0.002, self._wait_quiet)

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
        if self._count == 0 or not isinstance(event, (events.Key, events.Paste)):
            return False
        self._held.append(event)
        return True

    def drop(self, why: str) -> None:
        """Forget the keys held so far (what they were typed for did not happen)."""
        if self._held:
            n = sum(1 for e in self._held if isinstance(e, events.Key))
            self._held = []
            self.app.notify(f"{n} key{'s' if n != 1 else ''} typed meanwhile dropped: {why}", severity="warning")

    def _give_up(self) -> None:
        self._timer = None
        if self._count:
            self.app.log.warning(f"keys held for {LONGEST}s: dropped")
            self._count = 0
            self.drop("the console was busy for too long")

    def _replay(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        held, self._held = self._held, []
        for event in held:  # fresh events: the old ones were handled (stopped) once already
            again = (events.Paste(event.text) if isinstance(event, events.Paste)
                     else events.Key(event.key, event.character))  # type: ignore[attr-defined]  # held: Key or Paste
            again.set_sender(self.app)  # as the driver's: from the app (else it stops bubbling at its sender)
            self.app.post_message(again)


# Textual keeps each widget's messages in an asyncio.Queue; a message being
# handled still counts as unfinished until its handler returns.
def _busy(node) -> bool:
    queue = node._message_queue
    return bool(queue.qsize() or getattr(queue, "_unfinished_tasks", 0))


def _queued(node) -> list:
    """The messages waiting at `node`, the one it has peeked at (taken off its queue to see
    whether the next can replace it) first."""
    pending = getattr(node, "_pending_message", None)
    return ([pending] if pending is not None else []) + list(getattr(node._message_queue, "_queue", ()))
