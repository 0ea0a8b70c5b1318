"""Shared by the line-rendered widgets (queue, timeline): component styles
memoised per theme, and a re-render only when a colour really changed."""
from __future__ import annotations

from rich.style import Style


class StyledLines:
    def styles_changed(self) -> None:
        """Drop whatever was rendered with the old colours (the widget's own cache)."""

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.__dict__["_style_memo"] = {}
        if not self.is_mounted:
            return
        # focus changes land here too: only re-render when a colour really changed
        signature = (self.rich_style, *(self.get_component_rich_style(n, partial=True)
                                        for n in sorted(self.COMPONENT_CLASSES)))
        if signature != getattr(self, "_signature", None):
            self._signature = signature
            self.styles_changed()

    def _style(self, name: str) -> Style:
        cache = self.__dict__.setdefault("_style_memo", {})
        style = cache.get(name)
        if style is None:
            # the full style (alpha colours blended), background only where the class sets one
            # (cursors, notes, and badges such as the unread count)
            full = self.get_component_rich_style(name)
            if name.endswith(("cursor", "cursor-blur", "note")):
                style = Style(bgcolor=full.bgcolor)
            else:
                style = Style(color=full.color, bold=full.bold, italic=full.italic, underline=full.underline,
                              strike=full.strike, bgcolor=full.bgcolor if name.endswith("count") else None)
            cache[name] = style
        return style

    @property
    def _base(self) -> Style:
        cache = self.__dict__.setdefault("_style_memo", {})
        style = cache.get(None)
        if style is None:
            style = cache[None] = self.rich_style
        return style
