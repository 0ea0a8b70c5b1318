"""The omnidesk console: one keyboard-driven view over every channel.

    queue (who waits longest) | timeline (all channels) | profile
    composer (reply via any channel, templates, preview)
    status bar (channel health, counts, who else is here, keys)

The UI thread reads through one Store; writes and slow reads run in thread
workers with their own Store (one connection per thread). Changes made by
other processes (the sync engine, other agents) are noticed by polling
`PRAGMA data_version` once a second.
"""
from __future__ import annotations

import gc
import os
import shlex
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.widgets import Static
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen

from console import keymap as keymap_mod
from console.screens.help import HelpScreen
from console.screens.pickers import ConfirmScreen, PickerScreen, PromptScreen
from console.screens.search import SearchScreen
from console.screens.stats import StatsScreen
from console.timefmt import WhenError, format_clock, parse_when
from console.widgets.badges import CHANNEL_NAME, badge, color
from console.widgets.composer import Composer
from console.widgets.outgoing import list_templates, outgoing, preview, render_template
from console.widgets.profile import ProfileView
from console.widgets.queue import QueueSource, QueueView
from console.widgets.safe_text import one_line
from console.widgets.statusbar import StatusBar
from console.widgets.timeline import TimelineView
from connectors.desk.targets import Targets, describe_time_left
from store import Store, StoreError
from store.attachments import sanitize_filename

STYLES = Path(__file__).parent / "styles"
_FAILED = object()
TIMELINE_PAGE = 150
FILTERS = ("open", "waiting", "mine", "pending", "snoozed", "done", "all")
BREACH_CHECK_EVERY = 10.0  # seconds between looks for waits that went past their target


def default_engine_factory(store_path, config, agent):
    """The sync engine (with rules, targets and hooks) for the configured accounts,
    or None when there are none."""
    if config is None:
        return None
    from connectors.runtime import build_engine

    return build_engine(store_path, config)


def _setting(config, section: str, key: str, default):
    try:
        return config.get(section, key)
    except Exception:  # no config (tests, bench) or an older config module
        return default


class OmnideskApp(App):
    CSS_PATH = [STYLES / "app.tcss"]
    TITLE = "omnidesk"
    BINDINGS = keymap_mod.bindings("global")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (116, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def __init__(self, store_path, config=None, agent: str | None = None, engine_factory=None, *,
                 clock: Callable[[], float] = time.time, keymap: dict[str, str] | None = None,
                 poll_interval: float = 1.0, cursor_blink: bool = True, start_engine: bool = True,
                 banner: str | None = None):
        super().__init__()
        self.banner = banner  # e.g. the demo says so, always visible
        self.store_path = Path(store_path)
        self.config = config
        self.agent = agent or (config.agent if config is not None else os.environ.get("USER", "agent"))
        self.clock = clock
        self.engine_factory = engine_factory
        self.start_engine = start_engine
        self.engine = None
        self.poll_interval = poll_interval
        self.cursor_blink = cursor_blink
        self.keymap = keymap if keymap is not None else keymap_mod.load(keymap_mod.user_path(config))
        self.store = Store(self.store_path, clock=clock, **self._store_options())
        self.source = QueueSource(self.store, "open", agent=self.agent, opener=self.worker_store)
        try:
            self.targets = Targets.from_config(config)
        except Exception as e:  # a config that was not validated (the CLI validates it)
            self.targets = Targets()
            self._targets_error = f"[targets] ignored: {e}"
        self._breach_seen: set[tuple[int, float]] = set()  # overdue waits already known
        self._breach_event: int | None = None  # newest 'breach' event looked at; None: not looked yet
        self._breach_checked_at = 0.0
        self._breach_checking = False
        self._minute = 0
        self.current: Any = None  # the open Customer
        self.engaged: dict | None = None  # time engaged in the open customer's case
        self.show_profile: bool | None = None  # None: automatic by width
        self._version = None
        self._last_inbound = 0
        self._activity = "viewing"
        self._presence_at = 0.0
        self._open_token = 0
        self.first_paint_at: float | None = None
        theme = _setting(config, "console", "theme", "textual-dark")
        try:
            self.theme = theme
        except Exception:  # an unknown theme name: keep the default, say so once mounted
            self._theme_error = f"unknown theme {theme!r} in [console] theme; using the default"

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Toasts never interpret markup: they often quote customers (names, text, errors)."""
        super().notify(one_line(message, 300) if not markup else message, title=title, severity=severity,
                       timeout=timeout, markup=markup)

    def _store_options(self) -> dict:
        # The console holds up to four connections (UI, queue reader, customer reader,
        # a task): 16 MB of page cache each is as fast here as 64 MB (bench/console.py)
        # and keeps a long session on a big store under 200 MB.
        options = {"cache_kb": 16_000}
        max_bytes = _setting(self.config, "attachments", "max_bytes", None)
        if max_bytes:
            options["max_attachment_bytes"] = max_bytes
        return options

    def worker_store(self) -> Store:
        return Store(self.store_path, clock=self.clock, **self._store_options())

    # -- the reader: one background thread with a warm connection for opening customers
    _reader = None

    def _read(self, fn: Callable[[Store], Any], done: Callable[[Any], None]) -> None:
        """Run `fn(store)` on the reader thread (its own long-lived Store), then
        `done(result)` on the UI thread. Errors become notifications."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="omnidesk reader")
            self._reader_local = threading.local()

        self._reading += 1

        def finish(result) -> None:
            self._reading -= 1
            if result is not _FAILED:
                done(result)

        def job():
            store = getattr(self._reader_local, "store", None)
            if store is None:
                store = self._reader_local.store = self.worker_store()
            try:
                result = fn(store)
            except StoreError as e:
                self._from_thread(self.notify, str(e), severity="error")
                result = _FAILED
            except Exception as e:  # unexpected: shown, never fatal
                self._from_thread(self.notify, f"{type(e).__name__}: {e}", severity="error")
                result = _FAILED
            self._from_thread(finish, result)
        self._reader.submit(job)

    _reading = 0

    def busy(self) -> bool:
        """Reads in flight (tests and the benchmark wait for these)."""
        return bool(self._reading or self._q(QueueView).busy() or
                    any(w.is_running for w in self.workers))

    def _from_thread(self, fn, *args, **kw) -> None:
        try:
            self.call_from_thread(fn, *args, **kw)
        except RuntimeError:  # the app has gone away
            pass

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # widgets are kept by reference: callbacks from threads may land while a modal
        # is on top or while the app shuts down, and must not depend on a DOM query
        w = self._w = {
            "queue": QueueView(self.source, clock=self.clock, targets=self.targets, id="queue"),
            "timeline": TimelineView(clock=self.clock, id="timeline"),
            "profile": ProfileView(clock=self.clock, id="profile"),
            "composer": Composer(cursor_blink=self.cursor_blink, id="composer"),
            "status": StatusBar(id="status"),
            "#queue-pane": Vertical(id="queue-pane"),
            "#timeline-pane": Vertical(id="timeline-pane"),
            "#profile-pane": VerticalScroll(id="profile-pane"),
        }
        if self.banner:
            yield Static(self.banner, id="banner", markup=False)
        with Horizontal(id="main"):
            with w["#queue-pane"]:
                yield w["queue"]
            with w["#timeline-pane"]:
                yield w["timeline"]
            with w["#profile-pane"]:
                yield w["profile"]
        yield w["composer"]
        yield w["status"]

    _NAMES = {QueueView: "queue", TimelineView: "timeline", ProfileView: "profile", Composer: "composer",
              StatusBar: "status"}

    def _q(self, selector, expect_type=None):
        """One of the main view's widgets."""
        return self._w[self._NAMES.get(selector, selector)]

    @property
    def queue(self) -> QueueView:
        return self._w["queue"]

    @property
    def timeline(self) -> TimelineView:
        return self._w["timeline"]

    @property
    def composer(self) -> Composer:
        return self._w["composer"]

    @property
    def status(self) -> StatusBar:
        return self._w["status"]

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        self.queue.reload(follow=False)
        self._update_titles()
        self.queue.focus()
        self._version = self.store.data_version()
        self._last_inbound = self.store.latest_inbound_id()
        self._refresh_status()
        self.composer.refresh_bar()
        if self.queue.selected_id is not None:
            self.open_customer(self.queue.selected_id, mark_read=False)
        self.set_interval(self.poll_interval, self._poll, name="poll")
        self._check_breaches()
        self.call_after_refresh(self._painted)
        if self.start_engine:
            self._start_engine()
        if self._theme_error:
            self.notify(self._theme_error, severity="warning", timeout=8)
        if self._targets_error:
            self.notify(self._targets_error, severity="warning", timeout=8)

    _theme_error = ""
    _targets_error = ""

    def _painted(self) -> None:
        self.first_paint_at = time.perf_counter()
        # Everything built so far lives as long as the app: keep it out of the cyclic
        # GC's scans, and collect young objects less often. Full collections of a big
        # heap were the 50-100 ms hiccups when moving fast through the queue.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)

    def _update_titles(self) -> None:
        pane = self._q("#queue-pane")
        pane.border_title = f"{self.source.describe()} · {self.queue.total:,}"
        tl = self._q("#timeline-pane")
        if self.current is not None:
            channels = " ".join(badge(ch) for ch in self.current.channels)
            tl.border_title = f"{one_line(self.current.name or '#' + str(self.current.id), 40)} · {channels}"
        else:
            tl.border_title = "timeline"
        self._q("#profile-pane").border_title = "profile"

    def on_resize(self) -> None:
        self._apply_profile_visibility()
        self.call_after_refresh(self._sync_profile)

    def _sync_profile(self) -> None:
        profile = self._q(ProfileView)
        if self._profile_visible() and self.current is not None and profile.customer is not self.current:
            profile.show_customer(self.current, engaged=self.engaged)

    def _apply_profile_visibility(self) -> None:
        pane = self._q("#profile-pane")
        if self.show_profile is None:
            pane.styles.clear_rule("display")  # the stylesheet decides by width
        else:
            pane.styles.display = "block" if self.show_profile else "none"

    # -- the engine ---------------------------------------------------------------
    def _start_engine(self) -> None:
        factory = self.engine_factory or default_engine_factory
        self.run_worker(lambda: self._engine_thread(factory), thread=True, group="engine", exit_on_error=False)

    def _engine_thread(self, factory) -> None:
        try:
            engine = factory(self.store_path, self.config, self.agent)
            if engine is None:
                self._from_thread(self.status.set, engine="no channels configured")
                return
            engine.start()
            self.engine = engine
            self._from_thread(self.status.set, engine="syncing")
        except Exception as e:  # shown, never fatal: the console works on the store alone
            self._from_thread(self.notify, f"sync engine did not start: {e}", severity="error", timeout=10)

    async def on_unmount(self) -> None:
        if self._reader is not None:
            local = self._reader_local
            self._reader.submit(lambda: getattr(local, "store", None) and local.store.close())
            self._reader.shutdown(wait=False, cancel_futures=False)
        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                engine.stop(timeout=5)
            except Exception:
                pass
        try:
            self.store.set_presence(self.agent, None)
            self.store.close()
        except Exception:
            pass

    # -- live updates ------------------------------------------------------------
    def _poll(self) -> None:
        try:
            version = self.store.data_version()
        except Exception:
            return
        if version != self._version:
            self._version = version
            self.refresh_all(follow=True)
            newest = self.store.latest_inbound_id()
            if newest > self._last_inbound:
                self._new_inbound(newest)
        now = self.clock()
        if self.current is not None and now - self._presence_at > 30:
            self._set_presence(self._activity)
        if int(now // 60) != self._minute:  # ages and time left count on with the clock
            self._minute = int(now // 60)
            self.queue.refresh()
        if now - self._breach_checked_at >= BREACH_CHECK_EVERY:
            self._check_breaches()
        self._refresh_status(presence_only=version == self._version)

    # -- waiting-time targets: say so once when a wait goes past its target ------------
    def _check_breaches(self) -> None:
        """Look (on the reader thread) for waits that went past their target since
        the last look: ones the engine recorded (breach events, also from other
        processes) and ones nobody recorded yet (no engine running). Each wait is
        told once, as a toast (and the bell); what was overdue before the console
        opened is not news."""
        if not self.targets.by_channel or self._breach_checking:
            return
        self._breach_checking = True
        self._breach_checked_at = self.clock()
        targets, after, seen = self.targets, self._breach_event, self._breach_seen

        def fn(s: Store):
            overdue = {(cid, since): channel for channel, _, cid, since in targets.unbreached(s, limit=5000)}
            if after is None:  # the first look, unbreached first: a breach recorded in between is not news
                newest = s.events(limit=1)
                return set(overdue), [], newest[0].id if newest else 0
            recorded = s.events(kind="breach", after_id=after, limit=500)
            last = max([after, *(e.id for e in recorded)])
            found = dict(overdue)
            for e in recorded:
                if e.customer_id is not None and isinstance(e.data.get("waiting_since"), (int, float)):
                    found.setdefault((e.customer_id, e.data["waiting_since"]), e.data.get("channel"))
            news = []
            for (cid, since), channel in found.items():
                if (cid, since) in seen:
                    continue
                try:
                    name = s.customer(cid).name or f"#{cid}"
                except StoreError:
                    name = f"#{cid}"
                news.append((cid, since, channel, name))
            news.sort(key=lambda n: n[1])
            return set(overdue), news, last

        def guarded(s: Store):
            try:
                return fn(s)
            except Exception:  # a busy or changing store: look again next time, quietly
                return None

        def done(result) -> None:
            self._breach_checking = False
            if result is None:
                return
            overdue, news, last = result
            self._breach_seen = overdue  # what the engine records later comes back as an event: known here
            self._breach_event = last
            if news:
                self._tell_breaches(news)
        self._read(guarded, done)

    def _tell_breaches(self, news: list[tuple[int, float, str | None, str]]) -> None:
        def who(channel, name) -> str:
            return f"{badge(channel)} {one_line(name, 30)}"
        _, _, channel, name = news[0]
        if len(news) == 1:
            target = self.targets.for_channel(channel)
            limit = f"{describe_time_left(target).removesuffix(' left')} " if target else ""
            text = f"{who(channel, name)} has waited past the {limit}target"
        else:
            names = ", ".join(who(ch, n) for _, _, ch, n in news[:3])
            text = f"{len(news)} customers have waited past their target: {names}" + (
                f" and {len(news) - 3} more" if len(news) > 3 else "")
        if _setting(self.config, "console", "bell", True):
            self.bell()
        self.notify(text, title="Waiting-time target missed", severity="warning", timeout=8)
        self.queue.refresh()

    def _new_inbound(self, newest: int) -> None:
        try:
            m = self.store.message(newest)
            who = self.store.customer(m.customer_id).name
            text = f"{badge(m.channel)} {one_line(who, 30)}: {one_line(m.text, 60)}"
        except StoreError:
            text = "new message"
        self._last_inbound = newest
        if _setting(self.config, "console", "bell", True):
            self.bell()
        self.notify(text, title="New message", timeout=4)

    def refresh_all(self, follow: bool = True) -> None:
        """Re-read what is on screen after a change (ours or someone else's)."""
        self.queue.reload_in_background(follow=follow)
        if self.current is not None:
            self.open_customer(self.current.id, keep_position=True, mark_read=False, focus=False)
        self._refresh_status()

    @on(QueueView.Reloaded)
    def _queue_reloaded(self) -> None:
        self._update_titles()

    def _refresh_status(self, presence_only: bool = False) -> None:
        """Counts and health (read in a worker), presence (cheap, here)."""
        notice = ""
        if self.current is not None:
            try:
                others = self.store.presence(self.current.id, exclude=self.agent)
            except StoreError:
                others = []
            replying = [one_line(a, 20) for a, act in others if act == "replying"]
            viewing = [one_line(a, 20) for a, act in others if act != "replying"]
            if replying:
                notice = f"{', '.join(replying)} {'is' if len(replying) == 1 else 'are'} replying to this customer"
            elif viewing:
                notice = f"{', '.join(viewing)} also {'has' if len(viewing) == 1 else 'have'} this customer open"
        hints = [(keymap_mod.display(self.keymap.get(i, "").split(",")[0]), label)
                 for i, label in (("global.help", "keys"), ("global.search", "search"),
                                  ("global.reply", "reply"), ("global.command_palette", "commands"))
                 if self.keymap.get(i)]
        if notice != self.status.notice or hints != self.status.hints:
            self.status.set(notice=notice, hints=hints)
        if presence_only and self.status.counts:
            return
        agent = self.agent

        def job():
            s = self.worker_store()
            try:
                health = s.health()
                counts = {"waiting": s.queue_count("waiting"), "mine": s.queue_count("mine", agent=agent)}
            except Exception:
                return
            finally:
                s.close()
            self._from_thread(self.status.set, health=health, counts=counts)
        self.run_worker(job, thread=True, group="status", exclusive=True, exit_on_error=False)

    def _set_presence(self, activity: str) -> None:
        self._activity = activity
        self._presence_at = self.clock()
        cid = self.current.id if self.current is not None else None
        agent = self.agent

        def job():
            s = self.worker_store()
            try:
                s.set_presence(agent, cid, activity)
            finally:
                s.close()
        self.run_worker(job, thread=True, group="presence", exclusive=True, exit_on_error=False)

    # -- opening a customer ---------------------------------------------------------
    def open_customer(self, customer_id: int, *, focus_message: int | None = None, keep_position: bool = False,
                      mark_read: bool = True, focus: bool = False) -> None:
        """Load a customer's timeline in a worker and show it."""
        self._open_token += 1
        token = self._open_token
        known = self._loaded_count if (keep_position and self.current is not None
                                       and self.current.id == customer_id) else 0
        focused_then = self.focused  # focus moves to the timeline only if the agent has not moved on
        self._read(lambda s: self._load_customer(s, customer_id, focus_message, known, mark_read),
                   lambda r: self._show_customer(token, *r, focus_message, keep_position,
                                                 focused_then if focus else False))

    def _load_customer(self, s: Store, customer_id, focus_message, known, mark_read):
        customer_id = s.live_id(customer_id)
        if mark_read:
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
            identity_id = s.pick_identity(customer_id)["id"]
        except StoreError:
            identity_id = None
        from connectors.desk.automation import time_engaged

        engaged = time_engaged(s, customer_id)
        return customer, messages, events, identity_id, len(messages) >= limit, engaged

    _loaded_count = TIMELINE_PAGE

    def _show_customer(self, token, customer, messages, events, identity_id, has_older, engaged, focus_message,
                       keep_position, focus) -> None:
        if token != self._open_token:
            return  # a newer open is on its way
        changed = self.current is None or self.current.id != customer.id
        self.current = customer
        self.engaged = engaged
        self._loaded_count = len(messages)
        self.timeline.show(customer, messages, events, focus_message=focus_message, keep_position=keep_position,
                           has_older=has_older)
        if self._profile_visible():
            self._q(ProfileView).show_customer(customer, engaged=engaged)
        self.composer.set_customer(customer, identity_id)
        self._update_titles()
        if changed:
            self._set_presence("viewing")
            self._refresh_status(presence_only=True)
        if focus is not False:  # `focus` is what had focus when the open was asked for
            before = focus  # once the customer is on screen (restyling for focus costs a frame)
            self.set_timer(0.035, lambda: self.focused is before and self.screen is self.timeline.screen
                           and self.timeline.focus())

    def _profile_visible(self) -> bool:
        return self._q("#profile-pane").display

    @on(QueueView.Opened)
    def _queue_opened(self, event: QueueView.Opened) -> None:
        if self._preview_timer is not None:  # a pending preview of a highlighted row would
            self._preview_timer.stop()       # reopen it later and pull focus from the composer
            self._preview_timer = None
        self.open_customer(event.customer_id, focus=True)

    @on(QueueView.Highlighted)
    def _queue_highlighted(self, event: QueueView.Highlighted) -> None:
        if event.customer_id is not None and (self.current is None or self.current.id != event.customer_id):
            self._debounce_open(event.customer_id)

    _preview_timer = None

    def _debounce_open(self, customer_id: int) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.2, lambda: self.open_customer(customer_id, mark_read=False))

    # -- timeline requests -----------------------------------------------------------
    @on(TimelineView.Request)
    def _timeline_request(self, event: TimelineView.Request) -> None:
        m = event.message
        if event.action == "back":
            self.queue.focus()
        elif event.action == "older" and self.current is not None:
            self._loaded_count += TIMELINE_PAGE * 2
            self.open_customer(self.current.id, keep_position=True, mark_read=False)
        elif event.action == "retry":
            if m is None or m.direction != "out" or m.state != "failed":
                self.notify("Select a failed reply to retry it.", severity="warning")
                return
            self.task(lambda s: s.retry(m.id, self.agent), done=f"reply #{m.id} queued again")
        elif event.action in ("save", "open"):
            if m is None or not m.attachments:
                self.notify("This message has no attachments.", severity="warning")
                return
            kept = [a for a in m.attachments if a.path]
            if not kept:
                self.notify("The attachment was over the size limit and was not kept.", severity="warning")
                return
            if event.action == "save":
                self.save_attachments(kept)
            elif len(kept) == 1:
                self.open_attachment(kept[0])
            else:
                self.push_screen(PickerScreen("Open which attachment?", [(a.filename, a) for a in kept]),
                                 lambda a: a and self.open_attachment(a))

    def _save_dir(self) -> Path:
        return Path(os.path.expanduser(_setting(self.config, "attachments", "save_dir", "~/Downloads")))

    def _copy_out(self, att) -> Path:
        folder = self._save_dir()
        folder.mkdir(parents=True, exist_ok=True)
        name = sanitize_filename(att.filename)
        target = folder / name
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        n = 1
        while target.exists():
            target = folder / (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
            n += 1
        shutil.copyfile(att.path, target)
        return target

    @work(thread=True, group="files", exit_on_error=False)
    def save_attachments(self, attachments) -> None:
        try:
            paths = [self._copy_out(a) for a in attachments]
        except OSError as e:
            self._from_thread(self.notify, f"could not save: {e.strerror or e}", severity="error")
            return
        self._from_thread(self.notify, "saved " + ", ".join(str(p) for p in paths), title="Attachments")

    @work(thread=True, group="files", exit_on_error=False)
    def open_attachment(self, att) -> None:
        command = _setting(self.config, "attachments", "open_command", "xdg-open")
        try:
            path = self._copy_out(att)
            subprocess.Popen([*shlex.split(command), str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as e:
            self._from_thread(self.notify, f"could not open with {command!r}: {e}", severity="error")
            return
        self._from_thread(self.notify, f"opened {path.name} with {command}")

    # -- store tasks ------------------------------------------------------------------
    def task(self, fn: Callable[[Store], Any], *, done: str | Callable[[Any], str] | None = None,
             then: Callable[[Any], None] | None = None) -> None:
        """Run a store write in a worker, then refresh what is on screen."""
        def job():
            s = self.worker_store()
            try:
                result = fn(s)
            except (StoreError, ValueError) as e:
                self._from_thread(self.notify, str(e), severity="error")
                return
            except Exception as e:  # unexpected: show it rather than crash the console
                self._from_thread(self.notify, f"{type(e).__name__}: {e}", severity="error")
                return
            finally:
                s.close()
            self._from_thread(self._task_done, result, done, then)
        self.run_worker(job, thread=True, group="task", exit_on_error=False)

    def _task_done(self, result, done, then) -> None:
        if then is not None:
            then(result)
        self._version = self.store.data_version()
        self.refresh_all(follow=False)
        if done:
            self.notify(done(result) if callable(done) else done)

    def _need_customer(self) -> bool:
        if self.current is None:
            self.notify("Select a customer first (enter in the queue).", severity="warning")
            return False
        return True

    # -- composer -----------------------------------------------------------------
    @on(Composer.Typing)
    def _typing(self) -> None:
        if self._activity != "replying" and self.current is not None and self.composer.mode == "reply":
            self._set_presence("replying")

    def make_outgoing(self, customer_id: int, text: str, channel: str, subject: str | None = None):
        """The reply exactly as it will be queued and sent on `channel`."""
        return outgoing(self.store, customer_id, text, channel, self.agent, self.config, subject)

    @on(Composer.Send)
    def _send(self, event: Composer.Send) -> None:
        if event.mode == "note":
            self.task(lambda s: s.add_note(event.customer_id, event.text, self.agent), done="note added",
                      then=lambda _: self._sent())
            return
        ident = self.composer.identity
        if ident is None:
            self.notify("This customer has no channel to reply on.", severity="error")
            return
        try:
            out = self.make_outgoing(event.customer_id, event.text, ident.channel, event.subject)
        except Exception as e:  # e.g. a signature template with a missing value
            self.notify(f"cannot send: {e}", severity="error")
            return
        if _setting(self.config, "console", "confirm_send", False):
            where = f"{CHANNEL_NAME.get(ident.channel, ident.channel)} {one_line(ident.address, 40)}"
            self.push_screen(ConfirmScreen(f"Send this reply via {where}?", preview(out)),
                             lambda yes: yes and self._queue_reply(event, out))
        else:
            self._queue_reply(event, out)

    def _queue_reply(self, event: Composer.Send, out) -> None:
        def fn(s: Store):
            return s.queue_reply(event.customer_id, out.source, self.agent, identity_id=event.identity_id,
                                 subject=out.subject or event.subject)
        self.task(fn, done=lambda mid: f"reply #{mid} queued", then=lambda _: self._sent())

    def _sent(self) -> None:
        self.composer.clear()
        self._set_presence("viewing")
        if self.engine is not None and hasattr(self.engine, "wake_outbox"):
            self.engine.wake_outbox()
        self.timeline.focus()

    @on(Composer.Wants)
    def _composer_wants(self, event: Composer.Wants) -> None:
        if event.what == "leave":
            self.timeline.focus() if self.current is not None else self.queue.focus()
            if self._activity == "replying":
                self._set_presence("viewing")
        elif event.what == "channel":
            self.pick_channel()
        elif event.what == "template":
            self.pick_template()

    def pick_channel(self) -> None:
        if not self._need_customer():
            return
        items = []
        for ident in self.current.identities:
            t = Text(end="")
            t.append(f"{badge(ident.channel)} ", Style(color=color(ident.channel), bold=True))
            t.append(f"{CHANNEL_NAME.get(ident.channel, ident.channel)}  {one_line(ident.address, 50)}")
            if ident.handle:
                t.append(f"  @{one_line(ident.handle, 30)}", Style(dim=True))
            if ident.account:
                t.append(f"  via {one_line(ident.account, 20)}", Style(dim=True))
            items.append((t, ident.id))
        self.push_screen(PickerScreen("Reply on which channel?", items),
                         lambda iid: iid is not None and self._set_identity(iid))

    def _set_identity(self, identity_id: int) -> None:
        self.composer.set_identity(identity_id)
        self.composer.area.focus()

    def pick_template(self) -> None:
        if not self._need_customer():
            return
        try:
            templates = list_templates(self.config)
        except Exception as e:  # a broken template file names itself
            self.notify(str(e), severity="error", timeout=8)
            return
        if not templates:
            self.notify("No templates yet (`omnidesk init` installs a starter set).", severity="warning")
            return
        items = []
        for t in templates:
            label = Text(t.name, style="bold", end="")
            if t.description:
                label.append(f"  {one_line(t.description, 60)}", Style(dim=True))
            items.append((label, t.name))
        self.push_screen(PickerScreen("Insert template", items, placeholder="fuzzy name"),
                         lambda name: name and self._insert_template(name))

    def _insert_template(self, name: str, values: dict[str, str] | None = None) -> None:
        cid = self.current.id
        channel = self.composer.channel or "email"
        values = dict(values or {})

        def job():
            from connectors.desk.templates import MissingValues

            s = self.worker_store()
            try:
                rendered = render_template(s, cid, name, channel, self.agent, self.config, values)
            except MissingValues as e:
                self._from_thread(self._ask_values, name, list(e.missing), values)
                return
            except Exception as e:  # a template error names the template and the problem
                self._from_thread(self.notify, str(e), severity="error", timeout=8)
                return
            finally:
                s.close()
            self._from_thread(self._template_ready, rendered)
        self.run_worker(job, thread=True, group="template", exit_on_error=False)

    def _ask_values(self, name: str, missing: list[tuple[str, str]], values: dict[str, str]) -> None:
        key, label = missing[0]

        def answered(value):
            if value is None:
                return
            values[key] = value
            if len(missing) > 1:
                self._ask_values(name, missing[1:], values)
            else:
                self._insert_template(name, values)
        self.push_screen(PromptScreen(f"{name}: {label or key}", placeholder=key,
                                      help=f"{len(missing)} value{'s' if len(missing) > 1 else ''} to fill"), answered)

    def _template_ready(self, rendered) -> None:
        self.composer.insert_text(rendered.source, rendered.subject)
        if not self.composer.show_preview:
            self.composer.action_preview()

    # -- global actions -------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap, str(keymap_mod.user_path(self.config))))

    def action_stats(self) -> None:
        if not isinstance(self.screen, StatsScreen):
            self.push_screen(StatsScreen(self.store_path, clock=self.clock))

    def action_search(self) -> None:
        def run(query: str):
            s = self.worker_store()
            try:
                return s.search(query)
            finally:
                s.close()
        self.push_screen(SearchScreen(run, clock=self.clock), self._search_chosen)

    def _search_chosen(self, hit) -> None:
        if hit is None:
            return
        self.queue.select_customer(hit.customer_id)
        self.open_customer(hit.customer_id, focus_message=hit.message_id, focus=True)

    def action_filter(self) -> None:
        items = [(Text(f), ("filter", f)) for f in FILTERS]
        items += [(Text(f"channel: {CHANNEL_NAME[c]}"), ("channel", c)) for c in ("email", "telegram", "slack")]
        items += [(Text("tag: …"), ("tag", None)), (Text("clear channel and tag"), ("clear", None))]
        self.push_screen(PickerScreen(f"Filter the queue (now: {self.source.describe()})", items), self._filter_chosen)

    def _filter_chosen(self, choice) -> None:
        if not choice:
            return
        kind, value = choice
        if kind == "tag" and value is None:
            self.push_screen(PromptScreen("Show customers tagged", placeholder="vip"),
                             lambda tag: tag and self._filter_chosen(("tag", tag.strip())))
            return
        self.set_filter(**({"filter": value} if kind == "filter" else {"channel": None, "tag": None} if kind == "clear"
                           else {kind: value}))

    def set_filter(self, **kw) -> None:
        src = QueueSource(self.store, kw.get("filter", self.source.filter), agent=self.agent,
                          channel=kw.get("channel", self.source.channel), tag=kw.get("tag", self.source.tag),
                          opener=self.worker_store)
        self.source = src
        self.queue.set_source(src)
        self._update_titles()
        self.queue.focus()

    def action_reply(self) -> None:
        if not self._need_customer():
            return
        if self.composer.mode != "reply":
            self.composer.action_note_mode()
        self.composer.area.focus()

    def action_note(self) -> None:
        if not self._need_customer():
            return
        if self.composer.mode != "note":
            self.composer.action_note_mode()
        self.composer.area.focus()

    def action_tag(self) -> None:
        if not self._need_customer():
            return
        cid = self.current.id
        self.push_screen(PromptScreen(f"Tag {one_line(self.current.name, 40)}", placeholder="vip, refund",
                                      help="several tags: separate with commas"),
                         lambda text: text and self.task(
                             lambda s: [s.tag(cid, t.strip(), self.agent) for t in text.split(",") if t.strip()],
                             done=f"tagged {text}"))

    def action_untag(self) -> None:
        if not self._need_customer():
            return
        if not self.current.tags:
            self.notify("No tags to remove.", severity="warning")
            return
        cid = self.current.id
        self.push_screen(PickerScreen("Remove which tag?", [("#" + t, t) for t in self.current.tags]),
                         lambda tag: tag and self.task(lambda s: s.untag(cid, tag, self.agent), done=f"removed #{tag}"))

    def action_done(self) -> None:
        if not self._need_customer():
            return
        cid = self.current.id
        self.task(lambda s: s.set_status(cid, "done", self.agent), done="marked done · u undoes")

    def action_status(self) -> None:
        if not self._need_customer():
            return
        cid = self.current.id
        items = [(Text("open"), "open"), (Text("pending (waiting on the customer)"), "waiting"),
                 (Text("snoozed …"), "snoozed"), (Text("done"), "done")]

        def chosen(status):
            if status == "snoozed":
                self.action_snooze()
            elif status:
                self.task(lambda s: s.set_status(cid, status, self.agent), done=f"status {status}")
        self.push_screen(PickerScreen("Set status", items), chosen)

    def action_snooze(self) -> None:
        if not self._need_customer():
            return
        cid = self.current.id

        def check(text: str) -> str | None:
            try:
                parse_when(text, self.clock())
            except WhenError as e:
                return str(e)
            return None

        def chosen(text):
            if not text:
                return
            until = parse_when(text, self.clock())
            self.task(lambda s: s.snooze(cid, until, self.agent),
                      done=f"snoozed until {format_clock(until, self.clock())} · u undoes")
        self.push_screen(PromptScreen("Snooze until", placeholder="2h · 30m · tomorrow 9:00 · mon 9:00",
                                      help="2h, 30m, 1d, tomorrow 9:00, mon 9:00, 17:30", check=check), chosen)

    def action_assign(self) -> None:
        if not self._need_customer():
            return
        cid = self.current.id
        self.push_screen(PromptScreen("Assign to", value=self.current.assignee or self.agent,
                                      help="an agent name; empty unassigns"),
                         lambda who: who is not None and self.task(
                             lambda s: s.assign(cid, who.strip() or None, self.agent),
                             done=f"assigned to {who.strip()}" if who.strip() else "unassigned"))

    def action_merge(self) -> None:
        if not self._need_customer():
            return
        target = self.current

        def label(c_id, name, extra="") -> Text:
            t = Text(f"#{c_id} ", style="dim", end="")
            t.append(one_line(name, 40), "bold")
            if extra:
                t.append(f"  {one_line(extra, 80)}", Style(dim=True))
            return t

        def search(query: str):
            s = self.worker_store()
            try:
                if not query:
                    return [(label(sg.other_id, s.customer(sg.other_id).name, "; ".join(sg.evidence)), (sg.other_id, sg.evidence))
                            for sg in s.merge_suggestions(target.id, limit=10)]
                out = []
                for c in s.customers(limit=30, query=query):
                    if c.id == target.id:
                        continue
                    ids = ", ".join(f"{badge(i.channel)} {i.address}" for i in c.identities[:3])
                    out.append((label(c.id, c.name, ids), (c.id, [])))
                return out
            finally:
                s.close()

        def chosen(value):
            if not value:
                return
            other_id, evidence = value
            other = self.store.customer(other_id)
            self.push_screen(ConfirmScreen(
                f"Merge #{other.id} {one_line(other.name, 30)} into #{target.id} {one_line(target.name, 30)}?",
                Text("Their identities, messages, tags and facts move here. u undoes.")),
                lambda yes: yes and self.task(lambda s: s.merge(target.id, other_id, self.agent, evidence),
                                              done=f"merged #{other_id} into #{target.id} · u undoes"))
        picker = PickerScreen(f"Merge into {one_line(target.name, 40)}: find the other customer", [],
                              search=search, placeholder="name, e-mail, @handle",
                              help="suggested duplicates first; type to search everyone")
        self.push_screen(picker, chosen)
        picker.call_after_refresh(lambda: picker._search(""))

    def action_split(self) -> None:
        if not self._need_customer():
            return
        if len(self.current.identities) < 2:
            self.notify("This customer has only one identity; nothing to split.", severity="warning")
            return
        items = [(Text(f"{badge(i.channel)} {one_line(i.address, 50)}" + (f" @{one_line(i.handle, 30)}" if i.handle else "")), i.id)
                 for i in self.current.identities]
        self.push_screen(PickerScreen("Split which identity out into its own customer?", items),
                         lambda iid: iid and self.task(lambda s: s.split(iid, self.agent),
                                                       done=lambda r: f"split out as customer #{r[1]} · u undoes"))

    def action_undo(self) -> None:
        def fn(s: Store):
            event_id = s.undo(self.agent)
            return s.event(event_id)
        self.task(fn, done=lambda ev: f"undid {ev.kind}" if ev else "undone")

    def action_focus_queue(self) -> None:
        self.queue.focus()

    def action_focus_timeline(self) -> None:
        self.timeline.focus()

    def action_toggle_profile(self) -> None:
        visible = self._profile_visible()
        self.show_profile = not visible
        self._apply_profile_visibility()
        if self.show_profile:
            self._q(ProfileView).show_customer(self.current, engaged=self.engaged)

    # -- command palette ---------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in keymap_mod.ACTIONS:
            if action.context == "global" and action.name in ("command_palette", "quit"):
                continue
            keys = keymap_mod.display(self.keymap.get(action.id, "")) if self.keymap.get(action.id) else ""
            yield SystemCommand(action.description, f"{action.id}  ({keys})" if keys else action.id,
                                self._palette_callback(action))
        for f in FILTERS:
            yield SystemCommand(f"Queue: {f}", f"show {f} customers", lambda f=f: self.set_filter(filter=f))
        for ch in ("email", "telegram", "slack"):
            yield SystemCommand(f"Queue: only {CHANNEL_NAME[ch]}", f"channel:{ch}", lambda ch=ch: self.set_filter(channel=ch))

    def _palette_callback(self, action) -> Callable[[], Any]:
        def run():  # run_action is a coroutine: hand it back for the palette to await
            target = {"global": self, "queue": self.queue, "timeline": self.timeline}.get(action.context, self.composer)
            return target.run_action(action.method)
        return run


def run(ctx) -> int:
    """Entry point for `omnidesk` / `omnidesk console`."""
    try:
        keys = keymap_mod.load(keymap_mod.user_path(ctx.config))
    except keymap_mod.KeymapError as e:
        try:
            from console.cli import UserError
        except ImportError:
            raise SystemExit(f"omnidesk: {e}") from None
        raise UserError(str(e)) from None
    app = OmnideskApp(ctx.db_path, ctx.config, ctx.agent, keymap=keys)
    app.run()
    return 0


if __name__ == "__main__":  # development: python -m console.app PATH
    import sys

    from connectors import config as config_mod

    cfg = config_mod.load()
    OmnideskApp(sys.argv[1] if len(sys.argv) > 1 else config_mod.default_db_path(), cfg, cfg.agent).run()
