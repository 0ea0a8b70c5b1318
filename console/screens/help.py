"""Keys and help, generated from the live keymap."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console import keymap
from console.screens.pickers import Dialog

TITLES = {"global": "Everywhere", "queue": "Queue", "timeline": "Timeline", "composer": "Composer"}


def help_table(live: dict[str, str]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold", no_wrap=True)
    table.add_column()
    table.add_column(style="dim")
    context = None
    for ctx, keys, description, binding_id in keymap.help_rows(live):
        if ctx != context:
            if context is not None:
                table.add_row("", "", "")
            table.add_row(Text(TITLES[ctx], style="bold underline"), "", "")
            context = ctx
        table.add_row(Text(keys or "—"), Text(description), Text(binding_id))
    return table


class HelpScreen(Dialog, ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", show=False)]

    def __init__(self, live: dict[str, str], user_file: str = ""):
        super().__init__()
        self.live = live
        self.user_file = user_file

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_table(self.live), id="help-table")
            yield Static(Text(f"Change keys in {self.user_file} (same tables as keybindings.toml) · "
                              "ctrl+p lists every action · esc closes", style="dim"), classes="dialog-help")

    def action_close(self) -> None:
        self.answer_once(None)
