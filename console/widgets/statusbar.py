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
        self.trouble: str = ""  # the store does not answer now ("store: lost the connection to PostgreSQL ...")
        self.config_note: str = ""  # the config file changed since the console started

    def set(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self, k, v)
        self.update(self._text(), layout=False)

    def _left(self, health: str) -> Text:
        """Notices, setup hint and channel health; `health` is how much room the
        healthy channels get: "full" (● email:shop), "short" (● email) or "count" (● 3 ok)."""
        left = Text(end="", no_wrap=True)
        if self.notice:
            left.append(f" ⚠ {one_line(self.notice, 80)} ", Style(bold=True, color="black", bgcolor="yellow"))
            left.append("  ")
        if self.trouble:
            left.append(f" {one_line(self.trouble, 90)} ", Style(bold=True, color="white", bgcolor="red"))
            left.append("  ")
        if self.config_note:
            left.append(f" {one_line(self.config_note, 60)} ", Style(bold=True, color="black", bgcolor="yellow"))
            left.append("  ")
        if self.setup_hint:
            left.append(f" {one_line(self.setup_hint, 60)} ", Style(bold=True, color="black", bgcolor="yellow"))
            left.append("  ")
        if self.health:
            ok = 0
            for name, h in self.health.items():
                if name == "sync" and h.get("state") == "ok":
                    continue  # the engine's own row speaks only when a thread is stuck or stopped
                if h.get("state") == "ok" and health != "full":
                    ok += 1
                    if health == "count":
                        continue
                    name = name.partition(":")[0]
                mark, col = HEALTH_MARK.get(h.get("state"), ("?", "grey50"))
                left.append(mark + " ", Style(color=col))
                left.append(one_line(name, 24), Style(dim=h.get("state") == "ok"))
                if h.get("state") != "ok" and h.get("detail"):
                    left.append(f" ({one_line(h['detail'], 40)})", Style(color=col))
                left.append("  ")
            if health == "count" and ok:
                left.append("● ", Style(color="green"))
                left.append(f"{ok} ok  ", Style(dim=True))
        elif self.engine:
            left.append(one_line(self.engine, 40) + "  ", Style(dim=True))
        return left

    def _text(self) -> Text:
        width = max(20, self.size.width - 2) if self.size.width else 120
        counts = Text(end="", no_wrap=True)
        for label, n in self.counts.items():
            counts.append(f"{label} ", Style(dim=True))
            counts.append(f"{n:,}", Style(bold=True))
            counts.append("  ")

        def keys_text(hints) -> Text:
            keys = Text(end="", no_wrap=True)
            for key, label in hints:
                keys.append(key, Style(bold=True))
                keys.append(f" {label}  ", Style(dim=True))
            return keys
        keys = keys_text(self.hints)
        # narrow terminals: healthy channels take less room, if that lets all the keys fit;
        # if not, they keep their names and the least important keys go (below)
        for health in ("full", "short", "count"):
            text = self._left(health) + counts
            if text.cell_len + keys.cell_len <= width:
                break
        else:
            text = self._left("full") + counts
        if text.cell_len + keys.cell_len > width and not self.health and not self.notice and self.engine:
            text = counts  # the keys matter more than "syncing"
        hints = list(self.hints)
        while hints[1:] and text.cell_len + keys.cell_len > width:  # then the least important keys go
            hints.pop()
            keys = keys_text(hints)
        if text.cell_len + keys.cell_len <= width:
            pad = width - text.cell_len - keys.cell_len
            text.append(" " * pad)
            text.append_text(keys)
        text.truncate(width, overflow="ellipsis")
        return text

    def on_resize(self) -> None:
        self.update(self._text(), layout=False)
