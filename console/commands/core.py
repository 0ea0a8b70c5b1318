"""Scripting commands: queue, show, search, reply, note, tag, status, snooze,
assign, merge, split, undo, retry, customers, events, suggest."""
from __future__ import annotations

import argparse
import sys
import time

from console.commands.common import UserError, age, cell, iso, jsonable, plural, read_body, values
from store.terms import CHANNELS, OLD_STATUS_WORDS, QUEUE_FILTERS, SETTABLE_STATUSES, QueueFilter
from store.text import clean


def register(sub, parents) -> None:
    def add(name, func, help, **kw):
        p = sub.add_parser(name, parents=parents, help=help, description=help, **kw)
        p.set_defaults(func=func)
        return p

    add("console", run_console, "open the console (the default)")

    p = add("queue", cmd_queue, "customers waiting for an answer, longest first")
    p.add_argument("--filter", default=QueueFilter.WAITING, choices=QUEUE_FILTERS)
    p.add_argument("--channel", choices=CHANNELS)
    p.add_argument("--tag")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)

    p = add("show", cmd_show, "a customer's profile and timeline across all channels")
    p.add_argument("customer", help="id, e-mail address, Telegram @handle or Slack user")
    p.add_argument("--limit", type=int, default=50, help="newest messages to show")

    p = add("search", cmd_search, "full-text search (filters: channel: from: tag: status: before: after: fact:KEY=VALUE)")
    p.add_argument("query", nargs="+")
    p.add_argument("--limit", type=int, default=50)

    p = add("reply", cmd_reply, "queue a reply (body from -m or stdin); the open console or `omnidesk sync` sends it")
    p.add_argument("customer")
    p.add_argument("-m", "--message", help="reply text (Markdown); default: read stdin")
    p.add_argument("--channel", choices=CHANNELS, help="default: the channel they used last")
    p.add_argument("--identity", type=int, help="reply to this identity id")
    p.add_argument("--template", help="render this template; with -m, the text comes first and the template"
                                      " follows on its own line (as the console inserts one into a reply begun)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="template value")
    p.add_argument("--subject", help="e-mail subject (default: Re: their subject)")
    p.add_argument("--force", action="store_true",
                   help="send even when the reply is over its channel's size limit (10 chat messages, 10 MB e-mail)")
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach a file (repeatable)")
    p.add_argument("--cc", action="append", default=[], metavar="ADDRESS", help="e-mail: a copy to (repeatable)")

    p = add("note", cmd_note, "add an internal note (never sent)")
    p.add_argument("customer")
    p.add_argument("-m", "--message", help="note text; default: read stdin")

    p = add("tag", cmd_tag, "add tags (or remove with -r); case-insensitive: '#VIP' is vip, 'Address Change' is"
                            " address-change")
    p.add_argument("customer")
    p.add_argument("tags", nargs="+")
    p.add_argument("-r", "--remove", action="store_true")

    p = add("status", cmd_status, "set status: open, pending (we wait on the customer), done")
    p.add_argument("customer")
    p.add_argument("status", type=status_word, metavar="{" + ",".join(SETTABLE_STATUSES) + "}")

    p = add("snooze", cmd_snooze, "hide a customer until a time (2h, 30m, tomorrow 9:00, 2026-12-01 09:00)")
    p.add_argument("customer")
    p.add_argument("until", nargs="+")

    p = add("assign", cmd_assign, "assign a customer to an agent (no name: unassign); names match in any case")
    p.add_argument("customer")
    p.add_argument("assignee", nargs="?")

    p = add("merge", cmd_merge, "merge the second customer into the first (undoable)")
    p.add_argument("customer")
    p.add_argument("other")

    p = add("split", cmd_split, "move one identity out into a new customer (undoable)")
    p.add_argument("identity", help="identity id (`omnidesk show CUSTOMER` lists them: 'identity 7: email ...'),"
                                    " or the address or @handle itself")

    p = add("undo", cmd_undo, "undo your last action (or a given event id)")
    p.add_argument("event", nargs="?", type=int)
    p.add_argument("--customer", metavar="REF", help="your last action on this customer (id, e-mail, @handle)")

    p = add("retry", cmd_retry, "queue a failed reply again")
    p.add_argument("message", type=int, help="message id of the failed reply")
    p.add_argument("--delivered", action="store_true",
                   help="it did arrive (you checked a reply marked 'may have been delivered'): mark it sent")

    p = add("customers", cmd_customers, "list customers")
    p.add_argument("query", nargs="?", help="filter by name, address or handle")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)

    p = add("events", cmd_events, "the event log: who did what, when, to whom")
    p.add_argument("--customer")
    p.add_argument("--kind", help="only this kind: status, tag, merge, reply, rule, ... (an unknown one lists them)")
    p.add_argument("--limit", type=int, default=50)

    p = add("suggest", cmd_suggest, "customers that are probably the same person, with the evidence")
    p.add_argument("customer", nargs="?")
    p.add_argument("--limit", type=int, default=20)


def run_console(args, ctx) -> int:
    from console.app import run
    from console.commands.common import log_to_file

    from connectors.paths import beside_store

    log_to_file(beside_store(ctx.db_path, "omnidesk.log"))
    return run(ctx) or 0


def cmd_queue(args, ctx) -> int:
    from connectors.desk.targets import Targets, describe_time_left

    rows = ctx.store.queue(args.filter, limit=args.limit, offset=args.offset, agent=ctx.agent,
                           channel=args.channel, tag=args.tag)
    targets, now = Targets.from_config(ctx.config), time.time()
    data = [{**jsonable(r), "time_left": targets.time_left(r, now)} for r in rows]  # seconds; negative = overdue

    def human(_):
        if not rows:
            return "Nobody is waiting." if args.filter == "waiting" else "No customers."
        from store.timefmt import format_clock

        # a snoozed customer has no target running: the column says until when they sleep
        snoozed = args.filter == "snoozed"
        width = 12 if any(r.status == "snoozed" for r in rows) else 9
        lines = [f"{'ID':>6}  {'WAITING':>8}  {'UNTIL' if snoozed else 'TARGET':>{width}}  {'VIA':<8}  {'NAME':<22}"
                 f"  PREVIEW"]
        for r, d in zip(rows, data):
            when = describe_time_left(d["time_left"])
            if r.status == "snoozed" and r.snoozed_until:  # "zz" as the console marks a sleeper
                when = ("" if snoozed else "zz ") + format_clock(r.snoozed_until, now)
            lines.append(f"{r.customer_id:>6}  {age(r.waiting_since):>8}  {when:>{width}}  "
                         f"{(r.last_channel or '-'):<8}  {cell(r.name, 22):<22}  {cell(r.preview, 50)}")
        return "\n".join(lines)

    ctx.emit(data, human)
    return 0


def cmd_show(args, ctx) -> int:
    s = ctx.store
    cid = ctx.customer(args.customer)
    customer = s.customer(cid)
    messages = s.timeline(cid, limit=args.limit)
    engaged = s.engagement(cid)
    from console.commands.facts import fact_rows, human_facts

    facts = fact_rows(s, cid)  # with their sources and earlier values
    data = {"customer": customer, "facts": facts, "messages": messages, "engaged": engaged}

    def human(_):
        c = customer
        out = [f"#{c.id} {cell(c.name, 60)}  [{c.status}]" + (f"  assigned to {c.assignee}" if c.assignee else "")]
        if c.waiting_since and c.status == "open":  # pending/done/snoozed: nobody waits on us
            out.append(f"waiting {age(c.waiting_since)}")
        elif c.status == "snoozed" and c.snoozed_until is not None:
            from store.timefmt import format_clock

            out.append(f"snoozed until {format_clock(c.snoozed_until, time.time())}")
        if engaged.get("messages"):
            from store.timefmt import format_age

            out.append(f"this case: {plural(engaged['messages'], 'message')} on {', '.join(engaged['channels'])}, "
                       f"{format_age(engaged['seconds'])} engaged")
        for i in c.identities:
            handle = f" @{cell(i.handle, 40)}" if i.handle else ""
            out.append(f"  identity {i.id}: {i.channel} {cell(i.address, 60)}{handle}")
        if c.tags:
            out.append("  tags: " + ", ".join(c.tags))
        out += human_facts(facts, time.time(), indent="  ")
        out.append("")
        from console.handoff import channel_switches

        switches = {sw.id: sw for sw in channel_switches(messages)}
        for m in messages:
            if m.id in switches:
                out.append(f"  ⇄ {switches[m.id].describe()}")
            arrow = {"in": "<-", "out": "->", "note": "##"}[m.direction]
            state = f" ({m.state}{': ' + cell(m.error, None) if m.error else ''})" if m.state and m.state != "sent" else ""
            if m.delivered_at is not None and m.delivered_at - m.sent_at >= 60:  # went out later (a retry)
                state = f" (sent {iso(m.delivered_at)})"
            head = f"[{iso(m.sent_at)}] {arrow} {m.channel}{state}  #{m.id}"
            if m.subject:
                head += f"  {cell(m.subject, None)}"
            out.append(head)
            body = m.meta.get("new_text") or m.text
            if m.direction == "out":  # the agent wrote Markdown: show what was sent, as read
                from connectors.formatting import plain_text

                body = plain_text(body or "")
            out += body_lines(body)
            for a in m.attachments:
                out.append(f"    [attachment {a.id}: {cell(a.filename, 60)}, {a.size} bytes]")
        return "\n".join(out)

    ctx.emit(data, human)
    return 0


def body_lines(body: str | None, indent: str = "    ") -> list[str]:
    """A message's text for `show`, never cut: wrapped to the terminal on a TTY, whole lines
    when piped (a script or `less` gets every word); terminal controls removed."""
    import shutil
    import textwrap

    lines = clean(body or "").splitlines()
    if not sys.stdout.isatty():
        return [indent + line for line in lines]
    width = max(20, shutil.get_terminal_size().columns - len(indent))
    return [indent + part for line in lines
            for part in (textwrap.wrap(line, width, break_on_hyphens=False, drop_whitespace=True) or [""])]


def cmd_search(args, ctx) -> int:
    hits = ctx.store.search(" ".join(args.query), limit=args.limit)

    def human(hits):
        if not hits:
            return "No matches."
        from console.widgets.hits import hit_label, hit_snippet

        return "\n".join(
            f"{h.customer_id:>6}  {h.channel or '-':<8}  {cell(hit_label(h, ctx.agent), 20):<20}"
            f"  {cell(hit_snippet(h), 80)}"
            for h in hits
        )

    ctx.emit(hits, human)
    return 0


def cmd_reply(args, ctx) -> int:
    from connectors.desk.templates import preview_for_customer, render_for_customer
    from connectors.limits import file_too_big, over_limit, read_attachment

    s = ctx.store
    cid = ctx.customer(args.customer)
    ident = s.pick_identity(cid, args.channel, args.identity)
    channel = ident.channel
    if args.template and args.message is not None and args.message.strip():
        # Text and a template together: as the console puts a template into a reply already begun,
        # the text first, the template (without its own greeting) on its own line after it; never
        # a word dropped. The whole is adapted once, so the signature and sign-off come only once.
        part = render_for_customer(s, cid, args.template, channel, ctx.agent, values(args.set), config=ctx.config,
                                   greeting=False)
        rendered = preview_for_customer(s, cid, args.message.rstrip("\n") + "\n" + part.source.strip("\n"),
                                        channel, ctx.agent, config=ctx.config, subject=part.subject)
    elif args.template:
        rendered = render_for_customer(s, cid, args.template, channel, ctx.agent, values(args.set), config=ctx.config)
    else:
        # the same adaptation the console previews: what is queued is what is sent
        rendered = preview_for_customer(s, cid, read_body(args.message, "reply"), channel, ctx.agent, config=ctx.config)
    # In an existing e-mail thread the subject stays "Re: <theirs>" so mail clients keep threading;
    # a template's own subject only starts new conversations.
    subject = args.subject or (None if s.last_inbound(ident.id) else rendered.subject)
    attachments = []
    for path in args.attach:
        try:
            attachments.append(read_attachment(path))
        except OSError as e:
            raise UserError(f"--attach {path}: {e.strerror or e}") from None
        why = file_too_big(channel, attachments[-1].filename, len(attachments[-1].data),
                           ctx.config.get("attachments", "max_bytes") if ctx.config_path.exists() else None)
        if why:
            raise UserError(f"reply not queued: {why}")
    cc = [a.strip() for a in args.cc if a.strip()]
    if cc and channel != "email":
        raise UserError(f"--cc is for e-mail; this reply goes out on {channel}")
    from connectors.email.addresses import parse_list

    try:  # as a mail client writes them: ann@example.com, Bill <bill@example.com>, lists with commas
        cc = [str(a) for given in cc for a in parse_list(given)]
    except ValueError as e:
        raise UserError(f"--cc: {e}; write it as ann@example.com or 'Ann <ann@example.com>'") from None
    over = over_limit(channel, rendered.source, sum(len(a.data) for a in attachments))
    if over and not args.force:
        raise UserError(f"reply not queued: {over}; shorten it, or add --force to send it anyway")
    message_id = s.queue_reply(cid, rendered.source, ctx.agent, identity_id=ident.id, subject=subject,
                               attachments=attachments, meta={"cc": cc} if cc else None)
    m = s.message(message_id)
    from store.terms import Channel

    who = s.customer(cid).name or args.customer
    via = Channel(m.channel).label if m.channel in {c.value for c in Channel} else m.channel
    ctx.emit(m, clean(f"queued reply #{m.id} to {who} (#{cid}) via {via}; {_who_sends(s)}", tab=None))
    return 0


def _who_sends(s) -> str:
    """Who will send a queued reply: the process holding the polling lease now, if any."""
    from connectors.lease import FRESH, describe

    holder = s.lease_holder()
    if holder is None or time.time() - holder[1] > FRESH:
        return "nothing is sending now: `omnidesk sync --once` or the console sends it"
    return f"{describe(holder[0], holder[1])} sends it"  # "the console of user alex on vm (...)"


def cmd_note(args, ctx) -> int:
    cid = ctx.customer(args.customer)
    message_id = ctx.store.add_note(cid, read_body(args.message, "note"), ctx.agent)
    ctx.emit(ctx.store.message(message_id), f"note #{message_id} added")
    return 0


def cmd_tag(args, ctx) -> int:
    s = ctx.store
    cid = ctx.customer(args.customer)
    # one action however many tags (one undo); "a,B, #c" and separate words alike (store/tags.py)
    (s.remove_tags if args.remove else s.add_tags)(cid, args.tags, ctx.agent)
    tags = s.customer(cid).tags
    ctx.emit({"customer_id": cid, "tags": tags}, "tags: " + (", ".join(tags) or "(none)"))
    return 0


def status_word(text: str) -> str:
    """argparse type for `status`: the settable statuses, and the old words quietly
    (cmd_status explains them); an error lists only what the usage shows."""
    if text in SETTABLE_STATUSES or text in OLD_STATUS_WORDS:
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(map(repr, SETTABLE_STATUSES))})")


def cmd_status(args, ctx) -> int:
    status = args.status
    if status in OLD_STATUS_WORDS:  # the old word still works, once explained
        status = OLD_STATUS_WORDS[status]
        print(f"omnidesk: note: status {args.status!r} is now called {status!r} (we wait on the customer);"
              f" the queue's 'waiting' is the customers who wait on us", file=sys.stderr)
    cid = ctx.customer(args.customer)
    event = ctx.store.set_status(cid, status, ctx.agent)
    ctx.emit({"customer_id": cid, "status": status, "event_id": event}, f"#{cid} is now {status}")
    return 0


def cmd_snooze(args, ctx) -> int:
    from store.timefmt import parse_when

    cid = ctx.customer(args.customer)
    text = " ".join(args.until).strip()
    if text.startswith("-"):  # "-5m" (main() keeps argparse from taking it for an option)
        raise UserError(f"{text}: a time in the past is not a snooze; give a time ahead, like 2h, 30m or"
                        f" tomorrow 9:00")
    try:
        until = parse_when(text, time.time())
    except ValueError as e:
        raise UserError(str(e)) from None
    event = ctx.store.snooze(cid, until, ctx.agent)
    ctx.emit({"customer_id": cid, "status": "snoozed", "snoozed_until": until, "event_id": event},
             f"#{cid} snoozed until {iso(until)}")
    return 0


def cmd_assign(args, ctx) -> int:
    cid = ctx.customer(args.customer)
    event = ctx.store.assign(cid, args.assignee, ctx.agent, known=(ctx.agent,))
    assignee = ctx.store.customer(cid).assignee  # as stored: 'alex morgan' is the configured Alex Morgan
    ctx.emit({"customer_id": cid, "assignee": assignee, "event_id": event},
             f"#{cid} assigned to {assignee}" if assignee else f"#{cid} unassigned")
    return 0


def cmd_merge(args, ctx) -> int:
    a, b = ctx.customer(args.customer), ctx.customer(args.other)
    event = ctx.store.merge(a, b, ctx.agent, evidence=["merged by hand"])
    ctx.emit({"customer_id": a, "merged": b, "event_id": event},
             f"merged #{b} into #{a} (undo: omnidesk undo {event})")
    return 0


def cmd_split(args, ctx) -> int:
    identity = _identity_ref(ctx, args.identity)
    event, new_id = ctx.store.split(identity, ctx.agent)
    ctx.emit({"identity_id": identity, "customer_id": new_id, "event_id": event},
             f"identity {identity} is now customer #{new_id} (undo: omnidesk undo {event})")
    return 0


def _identity_ref(ctx, ref: str) -> int:
    """An identity id, or the address / @handle of one (what `show` takes for a customer)."""
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    cid = ctx.customer(ref)
    identities = ctx.store.identities(cid)
    wanted = ref.lower().lstrip("@")
    same = [i for i in identities if wanted in {i.address.lower(), (i.handle or "").lower().lstrip("@")}]
    if len(same) == 1:
        return same[0].id
    listed = "; ".join(f"identity {i.id}: {i.channel} {cell(i.address, 40)}" for i in identities)
    raise UserError(f"{ref!r} is customer #{cid}, not one of their addresses; give the identity to split out: {listed}")


def cmd_undo(args, ctx) -> int:
    if args.event is not None and args.customer:
        raise UserError("give an event id or --customer, not both")
    cid = ctx.customer(args.customer) if args.customer else None
    from store import StoreError

    try:
        event_id = ctx.store.undo(ctx.agent, args.event, customer_id=cid)
    except StoreError as e:
        if not str(e).startswith("nothing to undo"):
            raise
        raise UserError(f"{e} by {ctx.agent}{_others_last_action(ctx, cid)}") from None
    ev = ctx.store.event(event_id)
    ctx.emit(ev, undone_words(ctx.store, ev))
    return 0


def undone_words(store, ev) -> str:
    """What an undo took back, as the user would say it: "reopened 18 customers (undid
    “set status done”, event 26)", "undid “tagged vip” for Jane Roe (event 7)"."""
    from console.sentences import action

    batch = store.batch_of(ev)
    customers = {e.customer_id for e in batch}
    if len(customers) > 1:  # one action on many: done --older-than, import --done
        what, whom = action(ev), plural(len(customers), "customer")
    else:  # one or several changes to one customer: fact a=1 b=2
        what = "; ".join(action(e) for e in batch)
        whom = cell(store.customer(ev.customer_id).name, 40) if ev.customer_id else ""
    if ev.kind == "status" and ev.data.get("new") == "done" and whom:
        return f"reopened {whom} (undid “{what}”, event {ev.id})"
    return f"undid “{what}”" + (f" for {whom}" if whom else "") + f" (event {ev.id})"


def _others_last_action(ctx, cid: int | None) -> str:
    """When we have nothing to undo, whose action there is (signed by another name, such as
    the console's configured agent) and how to take it back."""
    from store.merge import UNDOABLE

    for e in ctx.store.events(cid, limit=50):
        if e.kind in UNDOABLE and not e.undone and e.actor != ctx.agent:
            return (f"; the last undoable action{' there' if cid else ''} is {e.actor}'s (event {e.id}, {e.kind}):"
                    f" `omnidesk undo {e.id}` takes it back; to act as {e.actor} everywhere set [agent] name"
                    f" in the config, OMNIDESK_AGENT or --agent")
    return ""


def cmd_retry(args, ctx) -> int:
    if args.delivered:
        ctx.store.mark_delivered(args.message, ctx.agent)
        ctx.emit(ctx.store.message(args.message), f"reply #{args.message} marked sent")
        return 0
    ctx.store.retry(args.message, ctx.agent)
    ctx.emit(ctx.store.message(args.message), f"reply #{args.message} queued again")
    return 0


def cmd_customers(args, ctx) -> int:
    rows = ctx.store.customers(limit=args.limit, offset=args.offset, query=args.query)

    def human(rows):
        if not rows:
            return "No customers."
        return "\n".join(
            [f"{'ID':>6}  {'STATUS':<8}  {'CHANNELS':<20}  NAME"]  # a header row, as queue has
            + [f"{c.id:>6}  {c.status:<8}  {','.join(c.channels):<20}  {cell(c.name, 40)}" for c in rows]
        )

    ctx.emit(rows, human)
    return 0


def cmd_events(args, ctx) -> int:
    from store.terms import EVENT_KINDS

    if args.kind and args.kind not in EVENT_KINDS:  # "No events." would hide the typo
        raise UserError(f"--kind {args.kind!r}: not a kind of event; the kinds are {', '.join(sorted(EVENT_KINDS))}")
    cid = ctx.customer(args.customer) if args.customer else None
    events = ctx.store.events(cid, limit=args.limit, kind=args.kind)

    def human(events):
        from console.sentences import describe
        from store.timefmt import format_clock

        if not events:
            return "No events."
        now, me = time.time(), ctx.agent
        return "\n".join(
            [f"{'ID':>6}  {'WHEN':>12}  {'WHO':<7} WHAT"]  # a header row, as queue has
            + [f"{e.id:>6}  {format_clock(e.at, now):>12}  {'#' + str(e.customer_id) if e.customer_id is not None else '-':<7} "
               f"{describe(e, me)}" for e in events]
        )

    ctx.emit(events, human)
    return 0


def cmd_suggest(args, ctx) -> int:
    cid = ctx.customer(args.customer) if args.customer else None
    rows = ctx.store.merge_suggestions(cid, limit=args.limit)

    def human(rows):
        if not rows:
            return "No likely duplicates."
        return "\n".join(f"#{r.customer_id} ~ #{r.other_id}  ({r.score:.2f}): {'; '.join(r.evidence)}" for r in rows)

    ctx.emit(rows, human)
    return 0
