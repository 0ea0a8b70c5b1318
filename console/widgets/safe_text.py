"""Customer text is untrusted: turn it into something safe to draw.

- Rich markup is never interpreted: everything becomes a `rich.text.Text`
  built from the plain string (never `Text.from_markup`, never a markup str).
- Terminal control sequences are removed by store/text.py, the one sanitizer.
"""
from __future__ import annotations

from rich.text import Text

from store.text import clean, one_line

__all__ = ["clean", "one_line", "safe"]


def safe(value: object, style: str = "", *, single_line: bool = False) -> Text:
    """A Rich Text of untrusted content: no markup, no escape sequences."""
    return Text(clean(value, single_line=single_line), style=style, no_wrap=single_line, end="")
