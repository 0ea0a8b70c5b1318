"""Small modal screens: a prompt, a fuzzy picker, a confirmation."""
from __future__ import annotations

import os
import re

from typing import Any, Callable

from rapidfuzz import fuzz, process
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.suggester import Suggester
from textual.widgets.option_list import Option

from console.widgets.safe_text import safe


class Dialog:
    """A small modal screen that answers once, and takes the keys typed ahead.

    Keys typed while it opens are held by the app (console/keyhold.py) until its
    input has focus, then given to it; keys typed after it answered are held until
    the callback has run, so they reach the next dialog of a chain (picker, then
    prompt) or the screen below, never the wrong one. A second answer (keys
    reaching a dialog that answered but is not yet gone) is ignored: it would pop
    a screen twice or act on a stale choice."""

    _answered = False
    _opening = None  # the app's key hold while the dialog opens (console/keyhold.py)
    _callback: Callable[[Any], Any] | None = None

    def opened(self, hold, callback: Callable[[Any], Any] | None) -> None:
        """Pushed by the app: `hold` until ready, then `callback(answer)`."""
        self._opening, self._callback = hold, callback

    # (Textual calls each class's own handler along the MRO: no super() calls here)
    def _on_mount(self, event: events.Mount) -> None:
        field = next(iter(self.query(Input)), None)  # type: ignore[attr-defined]
        if field is not None:
            field.focus()
        self.call_after_refresh(self._take_keys)  # type: ignore[attr-defined]

    def _take_keys(self) -> None:
        """Ready (or answered, or gone): the keys held while it opened go on."""
        if self._opening is not None:
            self._opening.release()

    def _on_unmount(self) -> None:
        self._take_keys()  # gone before it was ready: never keep the keys held

    def answer_once(self, value) -> None:
        if self._answered:
            return
        self._answered = True
        keys = getattr(self.app, "keys", None)  # type: ignore[attr-defined]
        # keys typed from now on wait until the callback has run (it may open the next dialog)
        answering = keys.hold(f"{type(self).__name__} answered") if keys is not None else None
        callback = self._callback

        def run() -> None:
            try:
                if callback is not None:
                    callback(value)
            finally:
                if answering is not None:
                    answering.release()
        try:
            self._take_keys()
            self.dismiss(value)  # type: ignore[attr-defined]
        except BaseException:
            if answering is not None:
                answering.release()
            raise
        # The callback runs as the app's, not as the pusher's (Textual's way): a pusher
        # that is gone by now (a closed screen or widget) would never run it, and the
        # keys would stay held.
        self.app.call_next(run)  # type: ignore[attr-defined]


class Searching:
    """For a dialog whose list a search in a worker thread fills as the agent types.

    Searches may finish in any order: results are shown only when newer than those on
    screen (never an older query's over a newer one's). Enter typed before the list
    shows what was typed last waits for it ("ann", enter typed fast chooses from what
    "ann" found, not from "a"'s list), and keys typed after that enter wait with it: the
    "y" of m, "Carol", enter, y is for the confirmation that follows, not the search box.
    They go on once the answer has been acted on (the confirmation is up), or to the
    search box when enter found nothing to choose (as typed slowly), or when the dialog
    closes."""

    _asked = 0  # searches asked for: the newest one's number
    _shown = 0  # the number of the search whose results are on screen
    _enter_pending = False  # enter typed before the list showed what was typed last
    _enter_hold = None  # the app's key hold meanwhile (console/keyhold.py)

    def _asking(self) -> int:
        """A search begins: its number."""
        self._asked += 1
        return self._asked

    def _newer(self, seq: int) -> bool:
        """Search `seq` has finished: True when its results are to be shown."""
        if seq <= self._shown:
            return False
        self._shown = seq
        return True

    @property
    def searching(self) -> bool:
        """The list does not show what was typed last yet."""
        return self._shown < self._asked

    def _enter_waits(self) -> bool:
        """Enter was typed: True when it must wait for the search running (keys held meanwhile)."""
        if not self.searching:
            return False
        keys = getattr(self.app, "keys", None)  # type: ignore[attr-defined]
        if self._enter_hold is None and keys is not None:
            self._enter_hold = keys.hold(f"{type(self).__name__}: enter waits for the search")
        self._enter_pending = True
        return True

    def _results_shown(self, enter: Callable[[], None]) -> None:
        """Call after showing a search's results: an enter that waited for them runs now
        (`enter()`: choose the highlighted line), then the keys typed after it go on."""
        if self.searching or not self._enter_pending:
            return
        self._enter_pending = False
        try:
            enter()
        finally:
            self._stop_holding()

    def _stop_holding(self) -> None:
        hold, self._enter_hold = self._enter_hold, None
        if hold is not None:
            hold.release()

    def _on_unmount(self) -> None:
        self._stop_holding()  # closed while enter waited: never keep the keys held


class PromptScreen(Dialog, ModalScreen[str | None]):
    """Ask for one line of text. `check(text)` returns an error or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, placeholder: str = "", value: str = "", help: str = "",
                 check: Callable[[str], str | None] | None = None, suggester: Suggester | None = None):
        super().__init__()
        self.title_text, self.placeholder, self.value, self.help_text, self.check = title, placeholder, value, help, check
        self.suggester = suggester  # completion shown greyed after the text; → takes it

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input", suggester=self.suggester)
            yield Static(self.help_text, classes="dialog-help", id="prompt-help")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if self.check and event.value.strip():
            error = self.check(event.value)
            self.query_one("#prompt-help", Static).update(
                Text(error, style="red") if error else Text(self.help_text, style="dim"))

    def on_key(self, event) -> None:
        """Keys typed before the input has focus (the dialog is still opening, as when
        "e", enter and a name are typed fast) go into it, not astray."""
        field = self.query_one("#prompt-input", Input)
        if self.focused is field:
            return
        if event.is_printable and event.character:
            field.insert_text_at_cursor(event.character)
        elif event.key == "enter":
            self._submit(field.value)
        else:
            return
        event.stop()
        event.prevent_default()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self._submit(event.value)

    def _submit(self, value: str) -> None:
        if self.check:
            error = self.check(value)
            if error:
                self.query_one("#prompt-help", Static).update(Text(error, style="red"))
                return
        self.answer_once(value)

    def action_cancel(self) -> None:
        self.answer_once(None)


def rank(query: str, labels: list[str]) -> list[int]:
    """Indexes of the labels that match `query`, best first: what the agent
    typed the start of ("pend" -> "pending ..."), then a word starting with it,
    then containing it, then fuzzy matches ("ordr stat" -> "order-status")."""
    q = query.casefold()

    def how(label: str) -> int:
        text = label.casefold()
        if text.startswith(q):
            return 0
        if any(word.startswith(q) for word in re.split(r"[\W_]+", text)):
            return 1
        return 2 if q in text else 3
    fuzzy = {i: score for _, score, i in process.extract(query, labels, scorer=fuzz.WRatio, limit=50, score_cutoff=40)}
    found = [i for i, label in enumerate(labels) if i in fuzzy or how(label) < 3]
    return sorted(found, key=lambda i: (how(labels[i]), -fuzzy.get(i, 0), i))


class PathSuggester(Suggester):
    """Completes a file path as a shell does: the rest of the only entry (or of
    what all entries share) that starts with what was typed; folders end in /."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        folder, _, prefix = value.rpartition("/")
        base = os.path.expanduser(folder + "/" if folder or value.startswith("/") else ".")
        try:
            names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(base)
                           if e.name.startswith(prefix) and (prefix.startswith(".") or not e.name.startswith(".")))
        except OSError:
            return None
        if not names:
            return None
        common = os.path.commonprefix(names)
        return value + common[len(prefix):] if len(common) > len(prefix) else None


class PickerScreen(Searching, Dialog, ModalScreen[Any]):
    """Choose one of many, filtering by fuzzy match on the typed text.

    `items` is a list of (label, value); `search(query)` (run in a thread)
    replaces the list while typing when given (and fills it at the start with
    `search("")` when `search_at_start`)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, title: str, items: list[tuple[str | Text, Any]], *, placeholder: str = "type to filter",
                 search: Callable[[str], list[tuple[str | Text, Any]]] | None = None, help: str = "",
                 search_at_start: bool = False, preselect: bool = True):
        """`preselect` False: nothing is highlighted until the agent moves or types (the
        merge picker: enter must never take a suggestion the agent did not choose)."""
        super().__init__()
        self.search_at_start = search_at_start
        self.preselect = preselect
        self._query = ""
        self.title_text, self.items, self.search_fn, self.placeholder, self.help_text = title, items, search, placeholder, help
        self.shown: list[tuple[str | Text, Any]] = list(items)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder=self.placeholder, id="picker-input")
            yield OptionList(id="picker-list")
            if self.help_text:
                yield Static(self.help_text, classes="dialog-help")

    def on_mount(self) -> None:
        self._fill(self.items)
        if self.search_at_start and self.search_fn is not None:
            self._search("")

    def _fill(self, items) -> None:
        self.shown = list(items)
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options([Option(label if isinstance(label, Text) else safe(label, single_line=True)) for label, _ in self.shown])
        if self.shown and (self.preselect or self._query):
            ol.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        query = event.value.strip()
        self._query = query
        if self.search_fn is not None:
            self._search(query)
            return
        if not query:
            self._fill(self.items)
            return
        labels = [label.plain if isinstance(label, Text) else str(label) for label, _ in self.items]
        self._fill([self.items[i] for i in rank(query, labels)])

    def _search(self, query: str) -> None:
        self._run_search(query, self._asking())

    @work(thread=True, group="picker-search")
    def _run_search(self, query: str, seq: int) -> None:
        try:
            items = self.search_fn(query)
        except Exception as e:  # show the problem, keep the picker usable
            items = [(Text(f"{e}", style="red"), None)]
        self.app.call_from_thread(self._searched, seq, items)

    def _searched(self, seq: int, items) -> None:
        if self._newer(seq):
            self._fill(items)
            self._results_shown(self._choose)  # "ann", enter typed fast: choose from what "ann" found

    def action_move(self, delta: int) -> None:
        ol = self.query_one(OptionList)
        if ol.option_count:
            if ol.highlighted is None:  # nothing chosen yet: down takes the first, up the last
                ol.highlighted = 0 if delta > 0 else ol.option_count - 1
            else:
                ol.highlighted = max(0, min(ol.option_count - 1, ol.highlighted + delta))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if not self._enter_waits():  # (else it chooses once the list shows what was typed)
            self._choose()

    def _choose(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and ol.highlighted < len(self.shown):
            value = self.shown[ol.highlighted][1]
            if value is not None:
                self.answer_once(value)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.shown) and self.shown[event.option_index][1] is not None:
            self.answer_once(self.shown[event.option_index][1])

    def action_cancel(self) -> None:
        self.answer_once(None)


class ConfirmScreen(Dialog, ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, body: Any = "", yes: str = "y / enter: yes    n / esc: no"):
        super().__init__()
        self.title_text, self.body, self.yes = title, body, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Label(self.title_text, classes="dialog-title")
            if self.body:
                yield Static(self.body, classes="dialog-body")
            yield Static(self.yes, classes="dialog-help")

    def action_answer(self, yes: bool) -> None:
        self.answer_once(yes)
