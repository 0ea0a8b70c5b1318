"""What a reply becomes on each channel, and templates.

Uses connectors/formatting.py and connectors/templates.py (the templates
helper's modules); the console never formats for a channel itself, so the
preview is exactly what the connector will send.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text

from console.widgets.safe_text import safe


def channel_parts(channel: str, markdown: str) -> list[str]:
    """The messages `markdown` becomes on `channel`."""
    try:
        from connectors import formatting
    except ImportError:
        return [markdown]
    if hasattr(formatting, "parts_for"):
        return formatting.parts_for(channel, markdown)
    if channel == "telegram":
        return formatting.telegram_parts(markdown)
    if channel == "slack":
        return formatting.slack_parts(markdown)
    return [formatting.email_bodies(markdown)[0]]


def preview(channel: str, markdown: str, subject: str | None = None) -> Group:
    """A renderable of exactly what will be sent (markup shown literally)."""
    out: list = []
    if not markdown.strip():
        return Group(Text("Nothing to send yet.", style="dim italic"))
    try:
        parts = channel_parts(channel, markdown)
    except Exception as e:  # a formatting bug must not take the console down
        return Group(Text(f"cannot preview: {type(e).__name__}: {e}", style="red"))
    what = {"email": "e-mail (text part; an HTML part is sent too)", "telegram": "Telegram HTML",
            "slack": "Slack mrkdwn"}.get(channel, channel)
    head = Text(f"as sent on {what}", style="dim", end="")
    if len(parts) > 1:
        head.append(f" · {len(parts)} messages", style="bold")
    out.append(head)
    if subject and channel == "email":
        out.append(Text("Subject: " + subject, style="bold"))
    for n, part in enumerate(parts, 1):
        if len(parts) > 1:
            out.append(Text(f"── message {n}/{len(parts)} ──", style="dim"))
        out.append(safe(part))
    return Group(*out)


@dataclass
class TemplateInfo:
    name: str
    description: str = ""


def list_templates(config: Any) -> list[TemplateInfo]:
    """Every template the agent can insert (empty when the module is absent)."""
    try:
        from connectors import templates
    except ImportError:
        return []
    for fname in ("list_templates", "available", "load_templates", "all_templates"):
        fn = getattr(templates, fname, None)
        if fn is None:
            continue
        try:
            result = fn(config)
        except TypeError:
            result = fn()
        out = []
        items = result.values() if isinstance(result, dict) else result
        for t in items:
            if isinstance(t, str):
                out.append(TemplateInfo(t))
            else:
                out.append(TemplateInfo(getattr(t, "name", str(t)), getattr(t, "description", "") or ""))
        return sorted(out, key=lambda t: t.name)
    return []


@dataclass
class Rendered:
    text: str
    subject: str | None = None


def render_template(store, customer_id: int, name: str, channel: str, agent: str, config: Any) -> Rendered:
    from connectors.templates import render_for_customer

    r = render_for_customer(store, customer_id, name, channel, agent, {}, config=config)
    text = r.source if hasattr(r, "source") else getattr(r, "text", str(r))
    return Rendered(text, getattr(r, "subject", None))
