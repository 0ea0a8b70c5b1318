"""What a reply becomes on each channel, and templates.

Built on connectors/templates.py and connectors/formatting.py (the templates
helper's modules): the console never formats for a channel itself, so the
preview is exactly what the connector will send, and what is queued is the
same Markdown the preview was made from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from console.widgets.safe_text import safe

SIGNATURE_MARK = "-- \n"


@dataclass
class Outgoing:
    channel: str
    source: str  # the Markdown to queue
    parts: list[str]  # what is sent: e-mail text/plain, Telegram HTML, Slack mrkdwn
    subject: str | None = None
    html: str | None = None


def outgoing(store, customer_id: int | None, text: str, channel: str, agent: str, config: Any = None,
             subject: str | None = None) -> Outgoing:
    """The reply as it will be queued and sent. Free text gets the channel's
    additions (the e-mail signature); text from a template already has them."""
    try:
        from connectors.desk import templates
    except ImportError:
        templates = None
    if templates is not None and channel in templates.CHANNELS:
        if SIGNATURE_MARK in text or customer_id is None:
            r = templates.finish(channel, text, subject)
        else:
            r = templates.preview_for_customer(store, customer_id, text, channel, agent, config=config, subject=subject)
        return Outgoing(channel, r.source, list(r.parts), r.subject, r.html)
    try:
        from connectors import formatting

        return Outgoing(channel, text, formatting.parts_for(channel, text), subject)
    except ImportError:
        return Outgoing(channel, text, [text], subject)


def preview(out: Outgoing | None, error: str | None = None) -> Text:
    """A renderable of exactly what will be sent: Telegram's HTML and Slack's mrkdwn as
    the customer's app shows them, e-mail's text/plain literally."""
    if error:
        return Text(f"cannot preview: {error}", style="red")
    if out is None or not out.source.strip():
        return Text("Nothing to send yet.", style="dim italic")
    what = {"email": "e-mail (plain text shown; an HTML part goes too)",
            "telegram": "Telegram (as the customer's app shows it)",
            "slack": "Slack (as the customer's app shows it)"}.get(out.channel, out.channel)
    head = Text(f"as sent on {what}", style="dim")
    if len(out.parts) > 1:
        head.append(f" · {len(out.parts)} messages", style="bold")
    items: list = [head]
    if out.subject and out.channel == "email":
        items.append(Text("Subject: ", style="bold") + safe(out.subject, single_line=True))
    for n, part in enumerate(out.parts, 1):
        if len(out.parts) > 1:
            items.append(Text(f"── message {n}/{len(out.parts)} ──", style="dim"))
        if out.channel == "telegram":  # the HTML we send, drawn as Telegram draws it
            from console.widgets.telegram_view import telegram_text

            items.append(telegram_text(part))
        elif out.channel == "slack":  # the mrkdwn we send, drawn as Slack draws it (& not &amp;)
            from console.widgets.slack_view import slack_text

            items.append(slack_text(part))
        else:
            items.append(safe(part))
    return Text("\n").join(items)


@dataclass
class TemplateInfo:
    name: str
    description: str = ""
    prompts: dict[str, str] = field(default_factory=dict)


def templates_directory(config: Any) -> Path | None:
    """The agent's templates folder; the starter set when they have none yet."""
    try:
        from connectors.desk import templates
    except ImportError:
        return None
    folder = templates.templates_dir(config)
    if folder.is_dir() and any(folder.glob("*.md")):
        return folder
    return templates.STARTER_DIR


def list_templates(config: Any) -> list[TemplateInfo]:
    """Every template the agent can insert (raises TemplateError for a broken file)."""
    folder = templates_directory(config)
    if folder is None:
        return []
    from connectors.desk import templates

    return [TemplateInfo(t.name, t.description or "", dict(t.prompts or {}))
            for t in templates.list_templates(folder)]


def render_template(store, customer_id: int, name: str, channel: str, agent: str, config: Any,
                    values: dict[str, str] | None = None, greeting: bool = True):
    """Rendered template (raises templates.MissingValues listing what to ask);
    `greeting=False` for a reply already begun."""
    from connectors.desk import templates

    return templates.render_for_customer(store, customer_id, name, channel, agent, values or {}, config=config,
                                         directory=templates_directory(config), greeting=greeting)
