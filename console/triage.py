"""Triage: what the agent does to the customer in view (tag, status, snooze,
assign, merge, split, undo) and to the queue (filter). Each action asks what it
needs in a picker or prompt, then writes through the store reader; the desk
re-reads what is on screen and a toast says what happened."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

from console.screens.pickers import ConfirmScreen, PickerScreen, PromptScreen
from store.timefmt import WhenError, format_clock, parse_when
from console.widgets.badges import CHANNEL_NAME, badge
from console.widgets.safe_text import one_line
from store import Store, StoreError
from store.tags import parse_tags
from store.merge import UNDOABLE
from store.terms import CHANNELS, QueueFilter

if TYPE_CHECKING:
    from console.desk import DeskScreen

# the order the filter picker offers them
FILTERS = tuple(f.value for f in (QueueFilter.OPEN, QueueFilter.WAITING, QueueFilter.MINE, QueueFilter.PENDING,
                                  QueueFilter.SNOOZED, QueueFilter.DONE, QueueFilter.FAILED, QueueFilter.ALL))


def describe_action(ev) -> str:
    """An event as the agent would say it: "tagged #vip", "marked done"."""
    d = ev.data
    if ev.kind == "status":
        new = d.get("new")
        return {"done": "marked done", "snoozed": "snoozed"}.get(new, f"set status {new}")
    if ev.kind == "assign":
        return f"assigned to {one_line(d['new'], 20)}" if d.get("new") else "unassigned"
    return {
        "tag": lambda: f"tagged {hashtags(d)}",
        "untag": lambda: f"removed {hashtags(d)}",
        "merge": lambda: f"merged #{d.get('source')} in",
        "split": lambda: f"split out #{d.get('new_customer')}",
        "note": lambda: "added a note",
        "priority": lambda: f"set priority {d.get('new')}",
        "fact": lambda: f"set {one_line(str(d.get('key', '')), 20)}",
        "rename": lambda: f"renamed to {one_line(str(d.get('new', '')), 20)}",
        "reply": lambda: "replied",
        "retry": lambda: "retried a reply",
    }.get(ev.kind, lambda: ev.kind)()


def hashtags(data: dict) -> str:
    """The tags of a tag/untag event as the queue and the toasts show them: "#bulk-order, #vip"
    (several tags are one event: "tags" lists them, "tag" joins them in one string)."""
    tags = data.get("tags") or [t.strip() for t in str(data.get("tag", "")).split(",") if t.strip()]
    return ", ".join("#" + one_line(str(t), 20) for t in tags)


def titled(action: str, customer, rest: str = "") -> Text:
    """A dialog's title naming the customer it acts on ("Set status of Jane Roe"), as the
    merge dialog does: a re-sorted queue or a move-on must never leave it unclear whom
    the answer is for. A Text, so a name is never read as markup."""
    return Text(f"{action} {one_line(customer.name, 40) or '#' + str(customer.id)}{rest}")


def customer_name(s: Store, customer_id: int | None) -> str:
    if customer_id is None:
        return "nobody"
    try:
        return s.customer(customer_id).name or f"#{customer_id}"
    except StoreError:
        return f"#{customer_id}"


class Triage:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app

    @property
    def agent(self) -> str:
        return self.app.agent

    def tag(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        cid, agent = customer.id, self.agent
        self.app.push_screen(PromptScreen(titled("Tag", customer), placeholder="vip, refund",
                                          help="several tags: separate with commas"),
                             lambda text: text and self.desk.write(
                                 lambda s: s.add_tags(cid, [text], agent),  # one action: one undo for all
                                 done=lambda _: "tagged " + ", ".join("#" + t for t in parse_tags(text))))

    def untag(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        if not customer.tags:
            self.app.notify("No tags to remove.", severity="warning")
            return
        cid, agent = customer.id, self.agent
        self.app.push_screen(PickerScreen(titled("Remove a tag from", customer), [("#" + t, t) for t in customer.tags]),
                             lambda tag: tag and self.desk.write(lambda s: s.untag(cid, tag, agent),
                                                                 done=f"removed #{tag}"))

    def done(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        cid, agent = customer.id, self.agent
        who = one_line(customer.name, 40) or f"#{cid}"  # the toast outlives the view: say whom
        if customer.status == "done":  # nothing to do: no second "marked done" in the log
            self.app.notify(f"{who} is already done.")
            return
        self.desk.write(lambda s: s.set_status(cid, "done", agent), done=f"{who} marked done · u undoes",
                        then=lambda _: self.desk.move_on(), moves_on=True)

    def status(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        cid, agent = customer.id, self.agent
        who = one_line(customer.name, 40) or f"#{cid}"
        items = [(Text("open"), "open"), (Text("pending (we wait on the customer)"), "pending"),
                 (Text("snoozed …"), "snoozed"), (Text("done"), "done")]

        def chosen(status):
            if status == "snoozed":
                self.snooze()
            elif status and status == customer.status:
                self.app.notify(f"{who} is already {status}.")
            elif status:
                self.desk.write(lambda s: s.set_status(cid, status, agent), done=f"{who}: status {status}" + (" · u undoes" if status == "done" else ""),
                                then=lambda _: status == "done" and self.desk.move_on(), moves_on=status == "done")
        self.app.push_screen(PickerScreen(titled("Set status of", customer), items), chosen)

    def snooze(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        cid, agent, clock = customer.id, self.agent, self.app.clock
        who = one_line(customer.name, 40) or f"#{cid}"

        def check(text: str) -> str | None:
            try:
                parse_when(text, clock())
            except WhenError as e:
                return str(e)
            return None

        def chosen(text):
            if not text:
                return
            until = parse_when(text, clock())
            self.desk.write(lambda s: s.snooze(cid, until, agent),
                            done=f"{who} snoozed until {format_clock(until, clock())} · u undoes",
                            then=lambda _: self.desk.move_on(), moves_on=True)
        self.app.push_screen(PromptScreen(titled("Snooze", customer, " until"), placeholder="2h · 30m · tomorrow 9:00 · mon 9:00",
                                          help="2h, 30m, 1d, tomorrow 9:00, mon 9:00, 17:30", check=check), chosen)

    def assign(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        cid, agent = customer.id, self.agent
        self.app.push_screen(PromptScreen(titled("Assign", customer, " to"), value=customer.assignee or agent,
                                          help="an agent name; empty unassigns"),
                             lambda who: who is not None and self.desk.write(
                                 lambda s: s.assign(cid, who.strip() or None, agent),
                                 done=f"assigned to {who.strip()}" if who.strip() else "unassigned"))

    def merge(self) -> None:
        target = self.desk.need_customer()
        if target is None:
            return
        agent = self.agent

        def label(c_id, name, extra="") -> Text:
            t = Text(f"#{c_id} ", style="dim", end="")
            t.append(one_line(name, 40), "bold")
            if extra:
                t.append(f"  {one_line(extra, 80)}", Style(dim=True))
            return t

        def reach(c) -> str:  # what tells two "Doug Sauder"s apart: their addresses and handles
            ids = ", ".join(f"{badge(i.channel)} {i.address}" + (f" @{i.handle}" if i.handle else "")
                            for i in c.identities[:3])
            return ids + (f" +{len(c.identities) - 3}" if len(c.identities) > 3 else "")

        def search(query: str):  # runs in the picker's worker
            with self.desk.reader.store() as s:
                if not query:
                    out = []
                    for sg in s.merge_suggestions(target.id, limit=10):
                        other = s.customer(sg.other_id)
                        out.append((label(sg.other_id, other.name, f"{reach(other)} · {'; '.join(sg.evidence)}"),
                                    (sg.other_id, sg.evidence)))
                    return out
                out = []
                for c in s.customers(limit=30, query=query):
                    if c.id == target.id:
                        continue
                    out.append((label(c.id, c.name, reach(c)), (c.id, [])))
                return out

        def chosen(value):
            if not value:
                return
            other_id, evidence = value
            other = self.app.store.customer(other_id)
            self.app.push_screen(ConfirmScreen(
                f"Merge #{other.id} {one_line(other.name, 30)} into #{target.id} {one_line(target.name, 30)}?",
                Text("Their identities, messages, tags and facts move here. u undoes.")),
                lambda yes: yes and self.desk.write(lambda s: s.merge(target.id, other_id, agent, evidence),
                                                    done=f"merged #{other_id} into #{target.id} · u undoes"))
        self.app.push_screen(PickerScreen(f"Merge into {one_line(target.name, 40)}: find the other customer", [],
                                          search=search, placeholder="name, e-mail, @handle",
                                          help="suggested duplicates: ↓ to choose one · or type to search everyone",
                                          search_at_start=True, preselect=False), chosen)

    def split(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        if len(customer.identities) < 2:
            self.app.notify("This customer has only one identity; nothing to split.", severity="warning")
            return
        agent = self.agent
        items = [(Text(f"{badge(i.channel)} {one_line(i.address, 50)}"
                       + (f" @{one_line(i.handle, 30)}" if i.handle else "")), i.id)
                 for i in customer.identities]
        def chosen(iid) -> None:
            if not iid:
                return
            identity = next(i for i in customer.identities if i.id == iid)
            # as merge does: moving messages between customers is asked twice
            self.app.push_screen(ConfirmScreen(
                f"Split {badge(identity.channel)} {one_line(identity.address, 40)} out of"
                f" #{customer.id} {one_line(customer.name, 30)}?",
                Text("That identity and its messages become a customer of their own. u undoes.")),
                lambda yes: yes and self.desk.write(lambda s: s.split(iid, agent),
                                                    done=lambda r: f"split out as customer #{r[1]} · u undoes"))
        self.app.push_screen(PickerScreen("Split which identity out into its own customer?", items), chosen)

    def undo(self) -> None:
        """Take back the agent's last action on the customer in view (or their
        last action at all when nobody is open)."""
        agent = self.agent
        cid = self.desk.current.id if self.desk.current is not None else None
        # done/snooze/send moved on to the next customer: until the agent does something
        # here, u still means "take back what I just did" to the one they left
        left = self.desk.moved_from if cid is not None else None

        def fn(s: Store):
            target = cid
            if left is not None and not s.recent_actions(agent, cid, limit=1):
                target = left
            return target, self._undone(s, s.undo(agent, customer_id=target))

        def then(result) -> None:
            target, _ = result
            if target != cid and target is not None:  # back to the customer the undo was for
                self.desk.moved_from = None
                self.desk.select_and_open(target)
        self.desk.write(fn, done=lambda result: result[1], then=then)

    def undo_event(self, event_id: int) -> None:
        agent = self.agent
        self.desk.write(lambda s: self._undone(s, s.undo(agent, event_id)), done=lambda said: said)

    @staticmethod
    def _undone(s: Store, event_id: int) -> str:
        ev = s.event(event_id)
        return f"undid “{describe_action(ev)}” for {customer_name(s, ev.customer_id)}"

    def recent(self) -> None:
        """The agent's recent actions, newest first; enter undoes the one chosen."""
        agent, clock = self.agent, self.app.clock

        def read(s: Store):
            return [(ev, customer_name(s, ev.customer_id)) for ev in s.recent_actions(agent, limit=30)]

        def show(actions) -> None:
            if not actions:
                self.app.notify("Nothing to undo yet.", severity="warning")
                return
            items = []
            for ev, name in actions:
                final = ev.kind not in UNDOABLE
                label = Text(f"{format_clock(ev.at, clock())}  ", style="dim", end="")
                label.append(describe_action(ev), "dim" if final else "bold")
                label.append(f"  {one_line(name, 30)}")
                if final:
                    label.append("  (cannot be undone)", "dim italic")
                items.append((label, None if final else ev.id))
            self.app.push_screen(PickerScreen("Recent actions: enter undoes the one chosen", items,
                                              placeholder="type to filter"),
                                 lambda event_id: event_id and self.undo_event(event_id))
        self.desk.reader.run(read, show, group="recent", hold_keys=True)  # typed ahead: for the picker

    # -- the queue's filter ---------------------------------------------------------
    def filter(self) -> None:
        items = [(Text(f), ("filter", f)) for f in FILTERS]
        items += [(Text(f"channel: {CHANNEL_NAME[c]}"), ("channel", c)) for c in CHANNELS]
        items += [(Text("tag: …"), ("tag", None)), (Text("clear channel and tag"), ("clear", None))]
        self.app.push_screen(PickerScreen(f"Filter the queue (now: {self.desk.source.describe()})", items),
                             self._filter_chosen)

    def _pick_tag(self, counts: list[tuple[str, int]]) -> None:
        """The tags in use, most used first, with how many customers have each."""
        if not counts:
            self.app.notify("No customer has a tag yet (t tags the one in view).", severity="warning")
            return
        items = []
        for tag, n in counts:
            label = Text("#" + one_line(tag, 40), end="")
            label.append(f"  {n}", "dim")
            items.append((label, tag))
        now = self.desk.source.title()
        self.app.push_screen(PickerScreen(f"Show customers tagged (together with {now})", items,
                                          placeholder="type to filter"),
                             lambda tag: tag and self._filter_chosen(("tag", tag)))

    def _filter_chosen(self, choice) -> None:
        if not choice:
            return
        kind, value = choice
        if kind == "tag" and value is None:
            self.desk.reader.run(lambda s: s.tag_counts(), self._pick_tag, group="tags", hold_keys=True)
            return
        if kind == "filter":
            self.desk.set_filter(filter=value)
        elif kind == "clear":
            self.desk.set_filter(channel=None, tag=None)
        else:
            self.desk.set_filter(**{kind: value})
