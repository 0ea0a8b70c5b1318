"""Key bindings: every action has an id `context.action`; keys come from TOML.

`keybindings.toml` at the repository root (shipped as console/keybindings.toml)
holds the defaults; `<config dir>/omnidesk/keybindings.toml` overrides single
entries. Both have one table per context ([global], [queue], [timeline],
[composer]) with `action = "keys"` entries (Textual key names, commas between
alternatives). The result is a Textual keymap for `App.set_keymap`.
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from store.errors import OmnideskError
from textual.binding import Binding
from textual.keys import KEY_TO_UNICODE_NAME, Keys, _character_to_key, format_key
from store.text import utf8_problem


class KeymapError(OmnideskError):
    """A problem in a keybindings file, naming the file and line."""


@dataclass(frozen=True)
class Action:
    context: str
    name: str
    method: str  # the action string the binding runs
    description: str
    show: bool = False  # shown in the status bar hints
    priority: bool = False

    @property
    def id(self) -> str:
        return f"{self.context}.{self.name}"


CONTEXTS = ("global", "queue", "timeline", "composer")

ACTIONS: list[Action] = [
    # global: work on the selected customer from anywhere
    Action("global", "quit", "quit", "Quit", priority=False),
    Action("global", "help", "help", "Keys and help", show=True),
    Action("global", "command_palette", "command_palette", "Command palette", show=True, priority=True),
    Action("global", "search", "search", "Search messages", show=True),
    Action("global", "filter", "filter", "Filter the queue", show=True),
    Action("global", "reply", "reply", "Reply to the customer", show=True),
    Action("global", "note", "note", "Write an internal note"),
    Action("global", "tag", "tag", "Add a tag"),
    Action("global", "untag", "untag", "Remove a tag"),
    Action("global", "done", "done", "Mark done"),
    Action("global", "status", "status", "Set status"),
    Action("global", "snooze", "snooze", "Snooze until ..."),
    Action("global", "assign", "assign", "Assign to an agent"),
    Action("global", "merge", "merge", "Merge with another customer"),
    Action("global", "split", "split", "Split an identity out"),
    Action("global", "undo", "undo", "Undo the last action on this customer"),
    Action("global", "recent", "recent_actions", "Recent actions (enter undoes one)"),
    Action("global", "edit_profile", "edit_profile", "Edit the customer's name and facts"),
    Action("global", "focus_queue", "focus_queue", "Go to the queue"),
    Action("global", "focus_timeline", "focus_timeline", "Go to the timeline"),
    Action("global", "profile", "toggle_profile", "Show or hide the profile"),
    Action("global", "stats", "stats", "Stats per channel"),
    # queue
    Action("queue", "down", "cursor_down", "Next customer"),
    Action("queue", "up", "cursor_up", "Previous customer"),
    Action("queue", "page_down", "page_down", "Page down"),
    Action("queue", "page_up", "page_up", "Page up"),
    Action("queue", "first", "first", "First customer"),
    Action("queue", "last", "last", "Last customer"),
    Action("queue", "open", "open", "Open the customer"),
    # timeline
    Action("timeline", "down", "cursor_down", "Next message"),
    Action("timeline", "up", "cursor_up", "Previous message"),
    Action("timeline", "first", "first", "Oldest message"),
    Action("timeline", "last", "last", "Newest message"),
    Action("timeline", "fold", "fold", "Show or fold quoted text"),
    Action("timeline", "save_attachment", "save_attachment", "Save attachments"),
    Action("timeline", "open_attachment", "open_attachment", "Open an attachment"),
    Action("timeline", "retry", "retry", "Retry a failed reply"),
    Action("timeline", "back", "back", "Back to the queue"),
    # composer
    Action("composer", "send", "send", "Send", show=True),
    Action("composer", "switch_channel", "switch_channel", "Reply channel", show=True),
    Action("composer", "template", "template", "Insert template", show=True),
    Action("composer", "preview", "preview", "Preview as sent", show=True),
    Action("composer", "note_mode", "note_mode", "Reply / note"),
    Action("composer", "leave", "leave", "Leave the composer"),
    # priority: the text area's own ctrl+e (end of line; `end` does that too) must not win
    Action("composer", "edit", "edit_externally", "Edit in $VISUAL / $EDITOR", priority=True),
    Action("composer", "attach", "attach", "Attach a file"),
    Action("composer", "cc", "cc", "Cc (e-mail)"),
    Action("composer", "discard", "discard_draft", "Discard draft"),
]
BY_ID = {a.id: a for a in ACTIONS}

_MODIFIERS = {"ctrl", "shift", "alt", "meta", "super", "hyper"}
_NAMED = {k.value for k in Keys if "+" not in k.value and not k.value.startswith("<")} | set(KEY_TO_UNICODE_NAME) | {
    "slash", "backslash", "at", "minus", "plus", "underscore", "space", "comma", "colon", "semicolon",
    "apostrophe", "asterisk", "ampersand", "tilde",
}


def default_path() -> Path:
    """The shipped defaults: the repo root in a checkout, console/ when installed."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "keybindings.toml", here.parent / "keybindings.toml"):
        if candidate.exists():
            return candidate
    raise KeymapError("keybindings.toml is missing from the installation")


def user_path(config=None) -> Path:
    """The user's keymap: next to the config file in use (where `init` puts it)."""
    from connectors.config import config_dir

    return (config.base_dir if config is not None else config_dir()) / "keybindings.toml"


def valid_key(key: str) -> bool:
    """A Textual key name, optionally with modifiers: j, G, ctrl+s, shift+tab, f1, question_mark."""
    if not key or key != key.strip():
        return False
    *mods, base = key.split("+") if key != "+" else [key]
    if any(m not in _MODIFIERS for m in mods) or not base:
        return False
    if len(base) == 1:
        return base.isprintable() and not base.isspace()
    if base in _NAMED:
        return True
    # other punctuation by its Unicode name, as Textual names them (e.g. "number_sign");
    # not every character name: "banana" is an emoji, not a key on anyone's keyboard
    try:
        char = unicodedata.lookup(KEY_TO_UNICODE_NAME.get(base, base.replace("_", " ")))
    except KeyError:
        return False
    return len(char) == 1 and not char.isalnum() and ord(char) < 0x3000 and _character_to_key(char) == base


def _line_of(text: str, table: str, key: str | None = None) -> int:
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        m = re.match(r"\[\s*\"?([^\]\"]+)\"?\s*\]", stripped)
        if m:
            current = m.group(1).strip()
            if key is None and current == table:
                return number
            continue
        if key is not None and current == table:
            m = re.match(r"\"?([^\"=\s]+)\"?\s*=", stripped)
            if m and m.group(1) == key:
                return number
    return 0


def parse(text: str, where: str = "keybindings.toml") -> dict[str, str]:
    """Check one file and return {binding id: keys}."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise KeymapError(f"{where}: not valid TOML: {e}") from None
    out: dict[str, str] = {}
    for table, entries in data.items():
        if table not in CONTEXTS:
            raise KeymapError(f"{where}:{_line_of(text, table)}: unknown table [{table}]; "
                              f"expected one of {', '.join('[' + c + ']' for c in CONTEXTS)}")
        if not isinstance(entries, dict):
            raise KeymapError(f"{where}: {table} must be a table ([{table}])")
        known = sorted(a.name for a in ACTIONS if a.context == table)
        for action, keys in entries.items():
            line = _line_of(text, table, action)
            if f"{table}.{action}" not in BY_ID:
                raise KeymapError(f"{where}:{line}: unknown action {action!r} in [{table}]; "
                                  f"expected one of {', '.join(known)}")
            if not isinstance(keys, str) or not keys.strip():
                raise KeymapError(f"{where}:{line}: [{table}] {action}: expected keys as a string like \"j,down\"")
            names = [k.strip() for k in keys.split(",")]
            for k in names:
                if not valid_key(k):
                    raise KeymapError(f"{where}:{line}: [{table}] {action}: unknown key {k!r} "
                                      "(use Textual key names such as j, G, enter, escape, ctrl+s, f1, question_mark)")
            out[f"{table}.{action}"] = ",".join(_character_to_key(k) if len(k) == 1 else k for k in names)
    return out


def load_file(path: Path) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise KeymapError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise KeymapError(utf8_problem(str(path), e)) from None
    return parse(text, str(path))


_DEFAULTS: dict[str, str] | None = None


def defaults() -> dict[str, str]:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = load_file(default_path())
    return dict(_DEFAULTS)


def load(user: Path | None | bool = None) -> dict[str, str]:
    """The live keymap: the defaults, overlaid with the user's file if any.
    `user=False` skips the user's file."""
    keymap = defaults()
    if user is not False:
        path = Path(user) if isinstance(user, (str, Path)) else user_path()
        if path.exists():
            overrides = load_file(path)
            keymap.update(overrides)
            _check_clashes(keymap, overrides, path)
    return keymap


def _check_clashes(keymap: dict[str, str], overrides: dict[str, str], path: Path) -> None:
    """A key the user's file gives to an action may not already run another action of the
    same context (Textual would silently run only one of them): the error names both."""
    for context in CONTEXTS:
        owner: dict[str, str] = {}
        for a in ACTIONS:
            if a.context != context:
                continue
            for key in filter(None, (k.strip() for k in keymap.get(a.id, "").split(","))):
                other = owner.setdefault(key, a.id)
                if other != a.id and (a.id in overrides or other in overrides):
                    mine, theirs = (a.id, other) if a.id in overrides else (other, a.id)
                    raise KeymapError(
                        f"{path}: [{context}] {BY_ID[mine].name} = {key!r}: {key!r} is already bound to"
                        f" {theirs} ({BY_ID[theirs].description}); give one of them another key")


def bindings(context: str) -> list[Binding]:
    """Textual Bindings for one context, keyed by id, with the default keys."""
    keymap = defaults()
    out = []
    for a in ACTIONS:
        if a.context != context:
            continue
        out.append(Binding(keymap.get(a.id, "f24"), a.method, a.description, show=a.show, id=a.id,
                           priority=a.priority, tooltip=a.description))
    return out


def display(keys: str) -> str:
    """Keys as a person reads them: `j / ↓`, `^s`."""
    shown = []
    for k in keys.split(","):
        *mods, base = k.split("+") if k != "+" else [k]
        text = format_key(base)
        if mods:
            text = "+".join(mods + [text])
            text = text.replace("ctrl+", "^")
        shown.append(text)
    return " / ".join(shown)


def help_rows(keymap: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(context, keys as shown, description, binding id) for every action."""
    return [(a.context, display(keymap.get(a.id, "")), a.description, a.id) for a in ACTIONS]
