"""The omnidesk console: one keyboard-driven view over every channel.

This is the shell: configuration, keymap, theme, the UI thread's Store, the
screens every context can open (help, stats, the command palette). The work
happens on the desk screen (console/desk.py) and the rooms it routes to.

The UI thread reads through one Store; writes and slow reads run in Textual
thread workers with pooled Stores (console/reader.py). Changes made by other
processes (the sync engine, other agents) are noticed by polling
`PRAGMA data_version` once a second (console/live.py).
"""
from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.screen import Screen

from console import keymap as keymap_mod
from console.desk import APP_ACTIONS, DeskScreen
from console.keyhold import KeyHold
from console.palette import CommandsProvider
from console.screens.help import HelpScreen
from console.screens.pickers import ConfirmScreen, Dialog
from console.screens.stats import StatsScreen
from console.triage import CHANNELS, FILTERS
from console.widgets.badges import CHANNEL_NAME
from console.widgets.composer import Composer
from console.widgets.queue import QueueSource, QueueView
from console.widgets.safe_text import one_line
from console.widgets.statusbar import StatusBar
from console.widgets.timeline import TimelineView
from connectors.desk.targets import Targets
from connectors.paths import is_url
from store import Store

STYLES = Path(__file__).parent / "styles"
log = logging.getLogger("omnidesk.console")


class OmnideskApp(App):
    CSS_PATH = [STYLES / "app.tcss"]
    TITLE = "omnidesk"
    BINDINGS = [b for b in keymap_mod.bindings("global") if b.id.split(".")[1] in APP_ACTIONS]
    COMMANDS = {lambda: CommandsProvider}  # our ranking: a title starting with what is typed first
    # a screen under another (the desk under a dialog) carries this class: its toasts hide
    # there (app.tcss), or they showed twice, the dialog having toasts of its own
    SUSPENDED_SCREEN_CLASS = "-covered"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (116, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def __init__(self, store_path, config=None, agent: str | None = None, engine_factory=None, *,
                 clock: Callable[[], float] = time.time, keymap: dict[str, str] | None = None,
                 poll_interval: float = 1.0, cursor_blink: bool = True, start_engine: bool = True,
                 banner: str | None = None):
        super().__init__()
        self.banner = banner  # e.g. the demo says so, always visible
        self.store_path = store_path if is_url(store_path) else Path(store_path)  # a URL stays whole
        self.config = config
        self.agent = agent or (config.agent if config is not None else os.environ.get("USER", "agent"))
        self.clock = clock
        self.engine_factory = engine_factory
        self.start_engine = start_engine
        self.poll_interval = poll_interval
        self.cursor_blink = cursor_blink
        self.keymap = keymap if keymap is not None else keymap_mod.load(keymap_mod.user_path(config))
        self.store = Store(self.store_path, clock=clock, **self._store_options())
        self.first_paint_at: float | None = None
        self.keys = KeyHold(self)  # keys typed between two dialogs wait for the next one
        self._warnings: list[str] = []  # said once the screen is up
        try:
            self.targets = Targets.from_config(config)
        except Exception as e:  # a config that was not validated (the CLI validates it)
            self.targets = Targets()
            self._warnings.append(f"[targets] ignored: {e}")
        theme = self.setting("console", "theme", "textual-dark")
        try:
            self.theme = theme
        except Exception:  # an unknown theme name: keep the default, say so once mounted
            self._warnings.insert(0, f"unknown theme {theme!r} in [console] theme; using the default")

    def setting(self, section: str, key: str, default):
        """A config value, or `default` without a config (tests, bench)."""
        try:
            return self.config.get(section, key)
        except Exception:  # no config (tests, bench) or an older config module
            return default

    def _store_options(self) -> dict:
        # The console holds a few connections (UI, and one per read running at once):
        # 16 MB of page cache each is as fast here as 64 MB (bench/console.py) and
        # keeps a long session on a big store under 200 MB.
        options: dict[str, Any] = {"cache_kb": 16_000}
        max_bytes = self.setting("attachments", "max_bytes", None)
        if max_bytes:
            options["max_attachment_bytes"] = max_bytes
        if self.setting("store", "url", None) is not None:  # a real config: the PostgreSQL password, if set
            from connectors.config import store_options

            options["password"] = store_options(self.config).get("password")
        return options

    def worker_store(self) -> Store:
        """A new Store for a worker thread (the reader pools them)."""
        return Store(self.store_path, clock=self.clock, **self._store_options())

    _desk: DeskScreen | None = None

    def get_default_screen(self) -> Screen:
        self._desk = DeskScreen()
        return self._desk

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        for warning in self._warnings:
            self.notify(warning, severity="warning", timeout=8)

    async def on_unmount(self) -> None:
        if self._desk is not None:
            self._desk.live.stop()  # the engine stops, this agent's presence goes
            self._desk.reader.close()
        try:
            self.store.close()
        except Exception:
            pass

    # -- an unexpected error --------------------------------------------------------------
    crash: str | None = None  # what `run` tells the terminal after an unexpected error

    def _handle_exception(self, error: Exception) -> None:
        """A bug in a key's action must not cost the agent their drafts: before Textual
        closes the console, every draft is written to the store (on this thread: no
        worker may run again) and the traceback goes to the log (omnidesk.log)."""
        if self.crash is None:
            kept = "no draft to keep"
            try:
                if self._desk is not None:
                    n = self._desk.drafts.keep_now()
                    kept = f"{n} draft{'s' if n != 1 else ''} kept" if n else kept
            except Exception as e:  # the store itself failing: say so, the traceback still goes to the log
                kept = f"drafts NOT kept: {type(e).__name__}: {e}"
            log.error("the console stopped on an unexpected error (%s)\n%s", kept,
                      "".join(traceback.format_exception(error)).rstrip())
            self.crash = f"the console stopped on an unexpected error ({type(error).__name__}); {kept}"
        super()._handle_exception(error)

    # -- keys typed ahead across dialogs (console/keyhold.py) --------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            if self.keys.take(event):  # an earlier key, or a dialog chain, is still at work
                return
            self.keys.sent(event)
        await super().on_event(event)

    def push_screen(self, screen, callback=None, wait_for_dismiss: bool = False, **kw):
        """A dialog holds the keys typed until it is ready for them; its answer
        holds them until its callback has run (which may open the next dialog).
        Both holds belong to the dialog (Dialog in console/screens/pickers.py), which
        releases them on every way out: ready, answered, gone, or its callback failing."""
        if not isinstance(screen, Dialog):
            return super().push_screen(screen, callback, wait_for_dismiss, **kw)
        screen.opened(self.keys.hold(f"{type(screen).__name__} opening"), callback)
        return super().push_screen(screen, None, wait_for_dismiss, **kw)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Toasts never interpret markup: they often quote customers (names, text, errors).
        They cover part of the screen: news goes after 3 s, warnings and errors stay 6 s."""
        if timeout is None:
            timeout = 3 if severity == "information" else 6
        super().notify(one_line(message, 160) if not markup else message, title=title, severity=severity,
                       timeout=timeout, markup=markup)

    def from_thread(self, fn, *args, **kw) -> None:
        """`fn(*args, **kw)` on the UI thread, from a worker; nothing once the app is gone."""
        try:
            self.call_from_thread(fn, *args, **kw)
        except RuntimeError:  # the app has gone away
            pass

    # -- the desk, as tests, the benchmark and the palette see it ---------------------
    @property
    def desk(self) -> DeskScreen:
        assert self._desk is not None, "the app is not running"
        return self._desk

    @property
    def queue(self) -> QueueView:
        return self.desk.queue

    @property
    def timeline(self) -> TimelineView:
        return self.desk.timeline

    @property
    def composer(self) -> Composer:
        return self.desk.composer

    @property
    def status(self) -> StatusBar:
        return self.desk.status

    @property
    def current(self):
        """The open customer (a store.models.Customer), or None."""
        return self.desk.current

    @property
    def source(self) -> QueueSource:
        return self.desk.source

    @property
    def engine(self):
        return self.desk.live.engine

    def busy(self) -> bool:
        """Reads in flight, workers running or typed keys held (tests and the benchmark wait for these)."""
        return self.desk.busy() or any(w.is_running for w in self.workers) or self.keys.holding

    def make_outgoing(self, customer_id: int, text: str, channel: str, subject: str | None = None):
        """The reply exactly as it will be queued and sent on `channel`."""
        return self.desk.reply.make_outgoing(customer_id, text, channel, subject)

    # -- on every screen ----------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit once every draft is kept in the store; if they cannot be (a read-only
        store), ask first: those drafts are lost when the console closes."""
        if self._desk is None:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return
        self._desk.drafts.flush(then=self._quit_when_kept)

    def _quit_when_kept(self, kept: bool) -> None:
        desk = self._desk
        unsaved = sorted(desk.drafts.unsaved()) if desk is not None and not kept else []
        if not unsaved:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return
        names = []
        for cid in unsaved[:5]:
            try:
                names.append(one_line(self.store.customer(cid).name or f"#{cid}", 30))
            except Exception:
                names.append(f"#{cid}")
        more = f" and {len(unsaved) - 5} more" if len(unsaved) > 5 else ""
        n = len(unsaved)
        self.push_screen(ConfirmScreen(f"Quit with {n} unsent draft{'s' if n > 1 else ''} not kept?",
                                       f"They could not be kept ({desk.drafts.error}). Drafts to {', '.join(names)}"
                                       f"{more} are lost when the console closes.",
                                       yes="y: quit anyway    n / esc: stay"),
                         lambda yes: yes and self.exit())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap, str(keymap_mod.user_path(self.config))))

    def action_stats(self) -> None:
        if not isinstance(self.screen, StatsScreen):
            self.push_screen(StatsScreen(self.store_path, clock=self.clock))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own "Keys" (a cramped side panel that esc does not close) would
        # sit next to ours ("Keys and help", the help screen): only ours is offered
        yield from (c for c in super().get_system_commands(screen) if c.title != "Keys")
        for action in keymap_mod.ACTIONS:
            if action.context == "global" and action.name in ("command_palette", "quit"):
                continue
            keys = keymap_mod.display(self.keymap.get(action.id, "")) if self.keymap.get(action.id) else ""
            yield SystemCommand(action.description, f"{action.id}  ({keys})" if keys else action.id,
                                self._palette_callback(action))
        desk = self.desk
        for f in FILTERS:
            yield SystemCommand(f"Queue: {f}", f"show {f} customers", lambda f=f: desk.set_filter(filter=f))
        for ch in CHANNELS:
            yield SystemCommand(f"Queue: only {CHANNEL_NAME[ch]}", f"channel:{ch}",
                                lambda ch=ch: desk.set_filter(channel=ch))

    def _palette_callback(self, action) -> Callable[[], Any]:
        def run():  # run_action is a coroutine: hand it back for the palette to await
            desk = self.desk
            if action.context == "global":
                target = self if action.name in APP_ACTIONS else desk
            else:
                target = {"queue": desk.queue, "timeline": desk.timeline}.get(action.context, desk.composer)
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
    if app.crash:
        import sys

        from connectors.paths import beside_store

        print(f"omnidesk: {app.crash}. The details are in {beside_store(ctx.db_path, 'omnidesk.log')}; "
              f"please report it.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # development: python -m console.app PATH
    import sys

    from connectors import config as config_mod

    cfg = config_mod.load()
    OmnideskApp(sys.argv[1] if len(sys.argv) > 1 else config_mod.default_db_path(), cfg, cfg.agent).run()
