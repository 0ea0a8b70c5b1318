"""The desk: the console's main screen, where a day's support happens.

    queue (who waits longest) | timeline (all channels) | profile
    composer (reply via any channel, templates, preview)
    status bar (channel health, counts, who else is here, keys)

The screen lays out the widgets, opens customers and routes what the widgets
ask for (typed messages) to the rooms that do the work:

    console/reader.py       the store off the UI thread (Textual workers)
    console/live.py         polling for changes, presence, breach toasts, the engine
    console/triage.py       tag, status, snooze, assign, merge, split, undo, filter
    console/reply.py        sending, the channel and template pickers
    console/attachments.py  saving and opening attachments
    console/profile_edit.py editing the customer's name and facts

A new console action: a keymap entry (console/keymap.py and keybindings.toml),
an `action_` here that calls the room it belongs to.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import time
from typing import Any, Callable

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from console import keymap as keymap_mod
from console.attachments import Attachments
from console.drafts import DraftKeeper
from console.later import Debounce, later
from console.live import Live
from console.profile_edit import ProfileEdit
from console.reader import StoreReader
from console.reply import Reply
from console.screens.search import SearchScreen
from console.triage import Triage
from console.widgets.badges import badge
from console.widgets.case_header import CaseHeader
from console.widgets.composer import Composer
from console.widgets.profile import ProfileView
from console.widgets.queue import QueueSource, QueueView
from console.widgets.safe_text import one_line
from console.widgets.statusbar import StatusBar
from console.widgets.timeline import TimelineView
from store import Store
from store.models import Customer

TIMELINE_PAGE = 150
log = logging.getLogger("omnidesk.console")
APP_ACTIONS = ("quit", "help", "command_palette", "stats")  # bound on the App: they work on every screen


# The timeline's keys that act on the customer shown work from the queue too (its cursor
# shows someone: `z` there folds that timeline); the queue's own keys come first.
TIMELINE_FROM_QUEUE = ("fold", "save_attachment", "open_attachment", "retry")


class DeskScreen(Screen):
    BINDINGS = [b for b in keymap_mod.bindings("global") if b.id.split(".")[1] not in APP_ACTIONS] + [
        dataclasses.replace(b, action=f"on_timeline('{b.action}')", show=False)
        for b in keymap_mod.bindings("timeline") if b.id.split(".")[1] in TIMELINE_FROM_QUEUE]

    def __init__(self) -> None:
        super().__init__()
        app = self.app
        self.reader = StoreReader(self, app.worker_store)
        self.source = QueueSource(app.store, "open", agent=app.agent)
        self.live = Live(self)
        self.triage = Triage(self)
        self.reply = Reply(self)
        self.attachments = Attachments(self)
        self.profile_edit = ProfileEdit(self)
        self.drafts = DraftKeeper(self)
        self.current: Customer | None = None  # the open customer
        self.engaged: dict | None = None  # time engaged in the open customer's case
        self.notes: list = []  # the open customer's newest notes (store.models.Message)
        self.moved_from: int | None = None  # the customer move_on() left (u can still undo there)
        self.show_profile: bool | None = None  # None: automatic by width
        self._open_token = 0
        self._loaded_count = TIMELINE_PAGE
        # the customer under the queue's cursor shows once the cursor rests there a moment
        # (console/later.py: not set_timer, which may never fire under load)
        self._preview_soon = Debounce(self, 0.2, self._preview_due)
        # while they are on the way, keys for them wait
        self._preview_hold = None
        self._preview_for: int | None = None
        # widgets are kept by reference: callbacks from workers may land while a modal
        # is on top or while the app shuts down, and must not depend on a DOM query
        self.queue = QueueView(self.source, clock=app.clock, targets=app.targets, reader=self.reader, id="queue")
        self.timeline = TimelineView(clock=app.clock, me=app.agent, id="timeline")
        self.case_header = CaseHeader(clock=app.clock, id="case-header")  # facts and topic, seen first
        self.profile = ProfileView(clock=app.clock, id="profile")
        self.composer = Composer(cursor_blink=app.cursor_blink, outgoing=self.reply.make_outgoing, id="composer")
        self.status = StatusBar(id="status")
        self.queue_pane = Vertical(id="queue-pane")
        self.timeline_pane = Vertical(id="timeline-pane")
        self.profile_pane = VerticalScroll(id="profile-pane")

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        if self.app.banner:
            yield Static(self.app.banner, id="banner", markup=False)
        with Horizontal(id="main"):
            with self.queue_pane:
                yield self.queue
            with self.timeline_pane:
                yield self.case_header
                yield self.timeline
            with self.profile_pane:
                yield self.profile
        yield self.composer
        yield self.status

    def on_mount(self) -> None:
        self.queue.reload(follow=False)
        self.drafts.load()
        self.update_titles()
        self.queue.focus()
        self.live.start()
        self.composer.refresh_bar()
        if self.queue.selected_id is not None:
            self.open_customer(self.queue.selected_id, mark_read=False)
        self.call_after_refresh(self._painted)
        if self.app.start_engine:
            self.live.start_engine()

    def _painted(self) -> None:
        self.app.first_paint_at = time.perf_counter()
        # Everything built so far lives as long as the app: keep it out of the cyclic
        # GC's scans, and collect young objects less often. Full collections of a big
        # heap were the 50-100 ms hiccups when moving fast through the queue.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)

    def update_titles(self) -> None:
        # no customer open: the composer would only take rows (4 at 80x24) from the queue
        self.set_class(self.current is None, "-nobody")
        self.queue_pane.border_title = f"{self.source.title()} · {self.queue.total:,}"
        if self.current is not None:
            channels = " ".join(badge(ch) for ch in self.current.channels)
            name = one_line(self.current.name or "#" + str(self.current.id), 40)
            # gone from the queue (S pending, d ...): no row is highlighted; keys act on them still
            away = f" · not in {self.source.title()}" if self.queue.left_out == self.current.id else ""
            self.timeline_pane.border_title = f"{name} · {channels}{away}"
        else:
            self.timeline_pane.border_title = "timeline"
        self.profile_pane.border_title = "profile"

    def on_resize(self) -> None:
        self._apply_profile_visibility()
        self.call_after_refresh(self._sync_profile)
        self.call_after_refresh(self._place_toasts)

    def _place_toasts(self) -> None:
        """Toasts start below the pane borders and, in the demo, below its banner (at 80
        columns they covered the banner's OMNIDESK_DB path, the line to copy)."""
        banner = self.query("#banner")
        top = 1 + (banner.first().outer_size.height if banner else 0)
        for rack in self.query("ToastRack"):
            rack.styles.margin = (top, 0, 0, 0)

    def _sync_profile(self) -> None:
        if self.profile_visible() and self.current is not None and self.profile.customer is not self.current:
            self.profile.show_customer(self.current, engaged=self.engaged, notes=self.notes)

    def _apply_profile_visibility(self) -> None:
        pane = self.profile_pane
        if self.show_profile is None:
            pane.styles.clear_rule("display")  # the stylesheet decides by width
        else:
            pane.styles.display = "block" if self.show_profile else "none"

    def profile_visible(self) -> bool:
        return self.profile_pane.display

    # -- reading and writing ---------------------------------------------------------
    def busy(self) -> bool:
        """Reads in flight (tests and the benchmark wait for these)."""
        return self.reader.busy()

    def write(self, fn: Callable[[Store], Any], *, done: str | Callable[[Any], str] | None = None,
              then: Callable[[Any], None] | None = None, moves_on: bool = False) -> None:
        """Run a store write in a worker, then refresh what is on screen; `done` is the toast
        (or makes it from the result), `then(result)` runs before it. `moves_on`: done, snooze
        or a send, then the next customer opens (move_on): keys typed meanwhile are for them."""
        def finished(result) -> None:
            self.live.seen_own_write()
            # the queue's cursor stays on the customer it was on, wherever the write sorts them
            # (by place, the re-sorted queue put someone else under it, and then on screen)
            self.refresh_all()
            if then is not None:  # after the re-read is asked for: `then` may select someone else
                then(result)
            if done:
                self.app.notify(done(result) if callable(done) else done)
        self.reader.run(fn, finished, group="write",
                        hold_keys=moves_on and self.app.setting("console", "next_after_done", True))

    def refresh_all(self, follow: bool = True) -> None:
        """Re-read what is on screen after a change (ours or someone else's)."""
        self.queue.reload_in_background(follow=follow)
        if self._opening is not None:  # a customer on their way to the screen: re-read that one
            cid = self._opening[0]
            same = self.current is not None and self.current.id == cid
            self.open_customer(cid, keep_position=same, mark_read=False, focus=False)
        elif self.current is not None:
            self.open_customer(self.current.id, keep_position=True, mark_read=False, focus=False)
        self.live.refresh_status()

    def move_on(self) -> None:
        """After done, snooze or send: open the next customer waiting on us (the
        one who has waited longest, within the queue's channel and tag), unless
        [console] next_after_done = false."""
        if not self.app.setting("console", "next_after_done", True):
            return
        done_with = self.current.id if self.current is not None else None
        src, agent = self.source, self.app.agent
        queue = src.filter if src.filter == "mine" else "waiting"

        def read(s: Store) -> tuple[int | None, int]:
            rows = s.queue(queue, limit=5, agent=agent, channel=src.channel, tag=src.tag)
            found = next((r.customer_id for r in rows if r.customer_id != done_with and r.waiting_since), None)
            # in `mine`, nobody of mine waiting is not nobody waiting: say how many others do
            others = s.queue_count("waiting", agent=agent) if found is None and queue == "mine" else 0
            return found, others

        def show(result: tuple[int | None, int]) -> None:
            customer_id, others = result
            if customer_id is None:
                if queue == "mine":
                    text = "Nobody else assigned to you is waiting" + (
                        f"; {others} more in waiting (f changes the filter)." if others else ".")
                else:
                    text = "Nobody else is waiting" + (f" in {src.title()}." if src.channel or src.tag else ".")
                self.app.notify(text, timeout=4)
            elif self.current is None or self.current.id == done_with:  # the agent has not moved on already
                self.select_and_open(customer_id)
                self.moved_from = done_with
        self.reader.run(read, show, group="next", hold_keys=True)  # typed ahead: for whoever opens next

    def select_and_open(self, customer_id: int) -> None:
        """Select `customer_id` in the queue and open them. The queue is read again
        first: after a write the rows it holds are stale, and moving the cursor over
        them would highlight (and so open) whoever was at that place before."""
        self.queue.reload(keep_customer=customer_id)
        self.open_customer(customer_id, focus=True)

    def need_customer(self) -> Customer | None:
        """The open customer, or None after telling the agent to open one."""
        if self.current is None:
            self.app.notify("Select a customer first (enter in the queue).", severity="warning")
        return self.current

    def set_filter(self, **kw) -> None:
        src = QueueSource(self.app.store, kw.get("filter", self.source.filter), agent=self.app.agent,
                          channel=kw.get("channel", self.source.channel), tag=kw.get("tag", self.source.tag))
        self.source = src
        self.queue.set_source(src)
        self.update_titles()
        self.queue.focus()

    # -- opening a customer ---------------------------------------------------------
    def open_customer(self, customer_id: int, *, focus_message: int | None = None, keep_position: bool = False,
                      mark_read: bool = True, focus: bool = False) -> None:
        """Load a customer's timeline in a worker and show it."""
        self._open_token += 1
        token = self._open_token
        known = self._loaded_count if (keep_position and self.current is not None
                                       and self.current.id == customer_id) else 0
        # focus moves to the timeline only if the agent has not moved on since asking
        focused_then = self.app.focused if focus else False
        opening = self._opening
        if opening is not None and opening[0] == customer_id and not focus and focus_message is None:
            # a re-read (the poll saw our own mark_read) overtakes an open the agent asked
            # for: it shows the same customer, so it does what that open would have done
            _, focused_then, focus_message = opening
        self._opening = (customer_id, focused_then, focus_message)
        # opened by the agent (enter, a search hit): what they type next is for this customer
        # (r, j ...), so it waits until they are on screen with the focus on their timeline
        def failed(error: Exception) -> None:
            self.reader._tell(error)
            previewed = self._preview_hold is not None and not self._preview_soon.pending
            if focus or previewed:  # never to the customer on screen what was typed for this one
                self.app.keys.drop("the customer did not open")
            if previewed:
                self._cancel_preview()
        self.reader.run(lambda s: self._load_customer(s, customer_id, focus_message, known, mark_read),
                        lambda r: self._show_customer(token, *r, focus_message, keep_position, focused_then),
                        group="customer", hold_keys=focus, failed=failed)

    _opening: tuple[int, Any, int | None] | None = None  # (customer id, focus, focus message) on its way

    @staticmethod
    def _load_customer(s: Store, customer_id, focus_message, known, mark_read):
        from connectors.desk.automation import time_engaged
        from store import StoreError

        customer_id = s.live_id(customer_id)
        if mark_read and not getattr(s, "read_only", False):  # a read-only store still opens customers
            s.mark_read(customer_id)
        customer = s.customer(customer_id)
        limit = max(TIMELINE_PAGE, known)
        messages = s.timeline(customer_id, limit=limit)
        if focus_message is not None:
            while focus_message not in {m.id for m in messages} and len(messages) >= limit and limit < 20000:
                limit *= 4
                messages = s.timeline(customer_id, limit=limit)
        events = s.events(customer_id, limit=200)
        try:
            identity_id = s.pick_identity(customer_id).id
        except StoreError:
            identity_id = None
        try:  # a figure for the profile: one odd stored event must not keep the customer off screen
            engaged = time_engaged(s, customer_id)
        except Exception:
            log.warning("time engaged not computed for customer %s", customer_id, exc_info=True)
            engaged = None
        return customer, messages, events, identity_id, len(messages) >= limit, engaged, s.fact_history(customer_id)

    @staticmethod
    def _notes(messages) -> list:
        """The newest internal notes, for the profile."""
        return [m for m in messages if m.direction == "note"][-3:][::-1]

    def _show_customer(self, token, customer, messages, events, identity_id, has_older, engaged, earlier,
                       focus_message, keep_position, focus) -> None:
        if token != self._open_token:
            return  # a newer open is on its way
        self._opening = None
        if self._preview_hold is not None and not self._preview_soon.pending:  # the row's customer is here
            self._cancel_preview()
        changed = self.current is None or self.current.id != customer.id
        self.current = customer
        self.engaged = engaged
        self._loaded_count = len(messages)
        self.notes = self._notes(messages)
        self.case_header.show_case(customer, messages)
        self.timeline.show(customer, messages, events, focus_message=focus_message, keep_position=keep_position,
                           has_older=has_older)
        if self.profile_visible():
            self.profile.show_customer(customer, engaged=engaged, earlier=earlier, notes=self._notes(messages))
        self.composer.set_customer(customer, identity_id)
        self.queue.set_drafts(self.composer.draft_customers())
        self.update_titles()
        if changed:
            self.live.presence_changed()
            self.live.refresh_status(presence_only=True)
        if focus is not False:  # `focus` is what had focus when the open was asked for
            before = focus  # once the customer is on screen (restyling for focus costs a frame)
            hold = self.app.keys.hold("focus to the timeline")  # keys typed meanwhile are for the timeline

            def focus_timeline() -> None:
                try:
                    if self.app.focused is before and self.app.screen is self:
                        self.timeline.focus()
                finally:
                    hold.release()
            later(self.app, 0.035, focus_timeline)

    # -- what the widgets ask for -------------------------------------------------------
    @on(QueueView.Reloaded)
    def _queue_reloaded(self) -> None:
        self.update_titles()

    @on(QueueView.Opened)
    def _queue_opened(self, event: QueueView.Opened) -> None:
        self.moved_from = None  # the agent chose whom to open: u is about them now
        self.open_customer(event.customer_id, focus=True)  # (holds the keys typed meanwhile itself)
        # a pending preview of a highlighted row would reopen it later and pull focus from the composer
        self._cancel_preview()

    @on(QueueView.Highlighted)
    def _queue_highlighted(self, event: QueueView.Highlighted) -> None:
        """The cursor moved to another row: that customer shows a moment later (moving
        on through the queue opens no one on the way). Keys typed meanwhile (e, d, m, t)
        are for them, so they wait until they are shown, and hurry the opening; moving
        on (j, k, g ...) goes past at once."""
        self._cancel_preview()
        cid = event.customer_id
        if cid is None or (self.current is not None and self.current.id == cid):
            return
        if self._opening is not None and self._opening[0] == cid:
            return  # already on their way (a search hit, with the message found): no second open
        self._preview_for = cid
        self._preview_hold = self.app.keys.hold("the customer under the cursor", passes=self._moves_in_queue,
                                                hurry=self._preview_now)
        self._preview_soon.poke()

    def _preview_now(self) -> None:
        """A key waits for the customer under the cursor: open them now, not after the pause.
        (The hold that calls this ends with its highlight: `_preview_for` is its customer.)"""
        if self._preview_soon.pending:  # not opened already
            self._preview_soon.cancel()
            self._preview_due()

    def _preview_due(self) -> None:
        if self._preview_for is not None:
            self.open_customer(self._preview_for, mark_read=False)

    def _cancel_preview(self) -> None:
        self._preview_soon.cancel()
        hold, self._preview_hold, self._preview_for = self._preview_hold, None, None
        if hold is not None:
            hold.release()

    def _moves_in_queue(self, event) -> bool:
        """A key that moves the queue's cursor (the keymap's queue.down, up, ...)."""
        if self.app.focused is not self.queue or not isinstance(event, events.Key):
            return False
        keymap = self.app.keymap
        keys = {k for i in ("down", "up", "page_down", "page_up", "first", "last")
                for k in keymap.get(f"queue.{i}", "").split(",") if k}
        return event.key in keys or (event.character is not None and event.character in keys)

    @on(TimelineView.Back)
    def _back(self) -> None:
        self.queue.focus()

    @on(TimelineView.LoadOlder)
    def _older(self) -> None:
        if self.current is not None:
            self._loaded_count += TIMELINE_PAGE * 2
            self.open_customer(self.current.id, keep_position=True, mark_read=False)

    @on(TimelineView.Retry)
    def _retry(self, event: TimelineView.Retry) -> None:
        m, agent = event.message, self.app.agent
        if m is None or m.direction != "out" or m.state != "failed":
            self.app.notify("Select a failed reply to retry it.", severity="warning")
            return
        self.write(lambda s: s.retry(m.id, agent), done=f"reply #{m.id} queued again")

    @on(TimelineView.SaveAttachments)
    def _save_attachments(self, event: TimelineView.SaveAttachments) -> None:
        self.attachments.save(event.message)

    @on(TimelineView.OpenAttachment)
    def _open_attachment(self, event: TimelineView.OpenAttachment) -> None:
        self.attachments.open(event.message)

    @on(Composer.Typing)
    def _typing(self) -> None:
        self.live.presence_changed()
        self.queue.set_drafts(self.composer.draft_customers())

    @on(Composer.Edited)
    def _edited(self, event: Composer.Edited) -> None:
        self.drafts.changed(event.customer_id)
        self.queue.set_drafts(self.composer.draft_customers())

    @on(Composer.Discarded)
    def _discarded(self, event: Composer.Discarded) -> None:
        self.drafts.flush()  # gone from the store now, not a moment later
        self.queue.set_drafts(self.composer.draft_customers())
        self.live.presence_changed()  # nothing being written: "viewing" again
        self.app.notify(f"Draft to {event.name} discarded · ctrl+z in the reply brings it back", timeout=6)

    @on(Composer.Send)
    def _send(self, event: Composer.Send) -> None:
        self.reply.send(event)

    @on(Composer.PickChannel)
    def _pick_channel(self) -> None:
        self.reply.pick_channel()

    @on(Composer.ChannelChanged)
    def _channel_changed(self) -> None:
        self.reply.adapt_template()

    @on(Composer.PickTemplate)
    def _pick_template(self) -> None:
        self.reply.pick_template()

    @on(Composer.EditExternally)
    def _edit_externally(self) -> None:
        self.reply.edit_externally()

    @on(Composer.PickAttachment)
    def _pick_attachment(self) -> None:
        self.reply.pick_attachment()

    @on(Composer.AskCc)
    def _ask_cc(self) -> None:
        self.reply.ask_cc()

    @on(Composer.Leave)
    def _leave(self) -> None:
        self.reply.leave()

    # -- actions (keys in keybindings.toml [global]) ---------------------------------------
    def action_search(self) -> None:
        def run(query: str):  # in the search screen's worker
            with self.reader.store() as s:
                return s.search(query)
        self.app.push_screen(SearchScreen(run, clock=self.app.clock), self._search_chosen)

    def _search_chosen(self, hit) -> None:
        if hit is not None:
            if not self.queue.select_customer(hit.customer_id):
                self.queue.show_outside(hit.customer_id)
            self.open_customer(hit.customer_id, focus_message=hit.message_id, focus=True)

    def action_reply(self) -> None:
        self._open_composer("reply")

    def action_note(self) -> None:
        self._open_composer("note")

    def _open_composer(self, mode: str) -> None:
        if self.need_customer() is None:
            return
        if self.composer.mode != mode:
            self.composer.action_note_mode()
        self.composer.area.focus()
        text = self.composer.area.text
        if text.strip():  # typing goes on after a draft written earlier: never unseen (it would go out with it)
            lines = text.count("\n") + 1
            discard = self.app.keymap.get("composer.discard", "").split(",")[0]
            self.app.notify(f"continuing your unsent {'note' if mode == 'note' else 'reply'} to "
                            f"{one_line(self.current.name or 'this customer', 30)} ({lines} line{'s' if lines != 1 else ''})"
                            + (f" · {keymap_mod.display(discard)} discards it" if discard else ""), timeout=4)

    def action_filter(self) -> None:
        self.triage.filter()

    def action_tag(self) -> None:
        self.triage.tag()

    def action_untag(self) -> None:
        self.triage.untag()

    def action_done(self) -> None:
        self.triage.done()

    def action_status(self) -> None:
        self.triage.status()

    def action_snooze(self) -> None:
        self.triage.snooze()

    def action_assign(self) -> None:
        self.triage.assign()

    def action_merge(self) -> None:
        self.triage.merge()

    def action_split(self) -> None:
        self.triage.split()

    def action_undo(self) -> None:
        self.triage.undo()

    def action_recent_actions(self) -> None:
        self.triage.recent()

    def action_edit_profile(self) -> None:
        self.profile_edit.edit()

    async def action_on_timeline(self, action: str) -> None:
        """A timeline key typed elsewhere (the queue): it acts on the timeline shown."""
        if self.need_customer() is not None:
            await self.timeline.run_action(action)

    def action_focus_queue(self) -> None:
        self.queue.focus()

    def action_focus_timeline(self) -> None:
        self.timeline.focus()

    def action_toggle_profile(self) -> None:
        self.show_profile = not self.profile_visible()
        self._apply_profile_visibility()
        if self.show_profile:
            self.profile.show_customer(self.current, engaged=self.engaged, notes=self.notes)
