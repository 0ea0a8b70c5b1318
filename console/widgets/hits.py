"""How a search hit reads: who wrote it, and its words as the reader saw them."""
from __future__ import annotations

from store.models import SearchHit


def hit_label(hit: SearchHit, agent: str = "") -> str:
    """The customer for what they wrote; for our reply "you → Bob Li" (or the
    colleague who wrote it): a reply is never passed off as the customer's."""
    if hit.direction != "out":
        return hit.customer_name
    who = "you" if not hit.author or hit.author == agent else hit.author
    return f"{who} → {hit.customer_name}"


def hit_snippet(hit: SearchHit) -> str:
    """Our replies are stored as the Markdown the agent wrote; shown as sent
    (plain rendering: "€25.00", not "**€25.00**"). The «» match marks stay."""
    if hit.direction != "out":
        return hit.snippet
    from connectors.formatting import plain_text

    return " ".join(plain_text(hit.snippet).split())
