"""The status bar: channel health, queue counts, who else is here, keys."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from console.widgets.safe_text import one_line

HEALTH_MARK = {"ok": ("●", "green"), "retrying": ("◐", "yellow"), "failed": ("✗", "red")}


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.health: dict[str, dict] = {}
        self.counts: dict[str, int] = {}
        self.notice: str = ""
        self.hints: list[tuple[str, str]] = []
        self.engine: str = ""
        self.setup_hint: str = ""  # what the agent must do before anything arrives ("run `omnidesk init`")

    def set(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self, k, v)
        self.update(self._text(), layout=False)

    def _text(self) -> Text:
        width = max(20, self.size.width - 2) if self.size.width else 120
        left = Text(end="", no_wrap=True)
        if self.notice:
            left.append(f" ⚠ {one_line(self.notice, 80)} ", Style(bold=True, color="black", bgcolor="yellow"))
            left.append("  ")
        if self.setup_hint:
            left.append(f" {one_line(self.setup_hint, 60)} ", Style(bold=True, color="black", bgcolor="yellow"))
            left.append("  ")
        if self.health:
            for name, h in self.health.items():
                if name == "sync" and h.get("state") == "ok":
                    continue  # the engine's own row speaks only when a thread is stuck or stopped
                mark, col = HEALTH_MARK.get(h.get("state"), ("?", "grey50"))
                left.append(mark + " ", Style(color=col))
                left.append(one_line(name, 24), Style(dim=h.get("state") == "ok"))
                if h.get("state") != "ok" and h.get("detail"):
                    left.append(f" ({one_line(h['detail'], 40)})", Style(color=col))
                left.append("  ")
        elif self.engine:
            left.append(one_line(self.engine, 40) + "  ", Style(dim=True))
        counts = Text(end="", no_wrap=True)
        for label, n in self.counts.items():
            counts.append(f"{label} ", Style(dim=True))
            counts.append(f"{n:,}", Style(bold=True))
            counts.append("  ")
        keys = Text(end="", no_wrap=True)
        for key, label in self.hints:
            keys.append(key, Style(bold=True))
            keys.append(f" {label}  ", Style(dim=True))
        text = left + counts
        if text.cell_len + keys.cell_len > width and not self.health and not self.notice and self.engine:
            text = counts  # the keys matter more than "syncing"
        if text.cell_len + keys.cell_len > width and self.setup_hint and self.hints:
            keys = Text(end="", no_wrap=True)  # the setup hint matters more: keep only the first key ("? keys")
            keys.append(self.hints[0][0], Style(bold=True))
            keys.append(f" {self.hints[0][1]}  ", Style(dim=True))
        if text.cell_len + keys.cell_len <= width:
            pad = width - text.cell_len - keys.cell_len
            text.append(" " * pad)
            text.append_text(keys)
        text.truncate(width, overflow="ellipsis")
        return text

    def on_resize(self) -> None:
        self.update(self._text(), layout=False)
