"""The command palette's ranking: what the agent most likely means first.

Textual's fuzzy score alone put "Set status" above "Stats per channel" for `stat`
(its letters come early in both). People type the start of a word of the title
they want, so a title that starts with the query comes first, then one with a word
that starts with it, then other fuzzy matches; the fuzzy score orders each group.
"""
from __future__ import annotations

from textual.command import Hit, Hits
from textual.system_commands import SystemCommandsProvider


def rank(query: str, title: str, fuzzy: float) -> float:
    """A score in 0..1 for `title` against `query`; `fuzzy` is Textual's fuzzy score (> 0)."""
    q, t = " ".join(query.lower().split()), title.lower()
    if q and t.startswith(q):
        tier = 2
    elif q and any(word.startswith(q) for word in t.replace(":", " ").split()):
        tier = 1
    else:
        tier = 0
    return (tier + max(0.0, fuzzy) / (1 + max(0.0, fuzzy))) / 3  # the fuzzy score, squeezed below 1


class CommandsProvider(SystemCommandsProvider):
    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback, *_ in self.app.get_system_commands(self.screen):
            if (match := matcher.match(name)) > 0:
                yield Hit(rank(query, name, match), matcher.highlight(name), callback, help=help_text)
