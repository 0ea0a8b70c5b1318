"""`omnidesk templates`: list, render (exactly what would be sent), install the starter set."""
from __future__ import annotations

import sys

from console.commands.common import UserError, values as parse_values
from store.text import clean
from store.terms import CHANNELS


def register(sub, parents) -> None:
    p = sub.add_parser("templates", parents=parents, help="reply templates: list, render, install",
                       description="Reply templates live in <config dir>/templates/*.md (see `templates install`).")
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 0)[1])
    tsub = p.add_subparsers(dest="templates_command", metavar="ACTION")

    q = tsub.add_parser("list", parents=parents, help="the templates, with their variables and prompts")
    q.set_defaults(func=cmd_list)

    q = tsub.add_parser("render", parents=parents, help="show exactly what a template sends on a channel",
                        description="Render NAME as it would be sent; --json gives the parts.")
    q.add_argument("name")
    q.add_argument("--customer", help="id, e-mail address, @handle or Slack user (fills name and facts)")
    q.add_argument("--channel", choices=CHANNELS, help="default: the channel the customer used last")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a value for a prompt or variable")
    q.set_defaults(func=cmd_render)

    q = tsub.add_parser("install", parents=parents, help="copy the starter templates (never overwrites yours)")
    q.set_defaults(func=cmd_install)


def cmd_list(args, ctx) -> int:
    from connectors.desk import templates as tpl

    directory = tpl.templates_dir(ctx.config)
    errors: list[str] = []
    bad: list[str] = []
    items = [{"name": t.name, "description": t.description, "subject": t.subject,
              "channels_overridden": sorted(t.overrides), "variables": t.variables(),
              "prompts": t.prompts, "path": str(t.path)} for t in tpl.list_templates(directory, errors, bad)]

    def human(items):
        broken = f"{len(errors)} broken template file(s) not listed: {', '.join(bad)} (why: below)" if errors else ""
        if not items:
            if errors:
                return f"No usable templates in {directory}; {broken}."
            return f"No templates in {directory} (`omnidesk templates install` adds the starter set)."
        width = max(len(i["name"]) for i in items)
        lines = [f"{i['name']:<{width}}  {i['description']}" for i in items]
        return "\n".join(lines + ([f"({broken})"] if broken else []))

    ctx.emit(items, human)
    for error in errors:  # the good ones are listed; a broken file is named, and the exit status says so
        print(f"omnidesk: error: {error}", file=sys.stderr)
    return 1 if errors else 0


def cmd_render(args, ctx) -> int:
    from connectors.desk import templates as tpl

    values = parse_values(args.set)
    if args.customer:
        s = ctx.store
        cid = ctx.customer(args.customer)
        channel = args.channel or s.pick_identity(cid, None).channel
        rendered = tpl.render_for_customer(s, cid, args.name, channel, ctx.agent, values, config=ctx.config)
    else:
        if not args.channel:
            raise UserError("give --channel (or --customer to use the channel they wrote on last)")
        context = tpl.context_for("", ctx.agent, args.channel, None, values)
        rendered = tpl.render(args.name, args.channel, context, config=ctx.config)

    def human(r: tpl.Rendered) -> str:
        out = []
        if r.subject is not None:
            out.append(f"Subject: {r.subject}")
        for i, part in enumerate(r.parts, 1):
            label = {"email": "text/plain", "telegram": "Telegram HTML", "slack": "Slack mrkdwn"}[r.channel]
            head = f"--- {label}" + (f", message {i} of {len(r.parts)}" if len(r.parts) > 1 else "")
            out += [f"{head} ({len(part)} characters) ---", part]
        if r.html:
            out.append(f"--- plus a text/html alternative ({len(r.html)} characters; --json shows it) ---")
        return clean("\n".join(out), tab=None)

    ctx.emit(rendered, human)
    return 0


def cmd_install(args, ctx) -> int:
    from connectors.desk import templates as tpl

    directory = tpl.templates_dir(ctx.config)
    written = tpl.install_starter_templates(directory)
    data = {"directory": str(directory), "installed": [str(p) for p in written]}
    count = sum(p.suffix == ".md" for p in written)
    ctx.emit(data, f"{count} starter template(s) installed in {directory}"
                   + ("" if written else " (all were already there; yours are never overwritten)"))
    return 0
