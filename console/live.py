"""Live updates and presence: what changes while the agent looks.

Once a second (the poll) the desk asks SQLite whether anything changed
(`PRAGMA data_version`: the sync engine and other agents write from other
processes) and re-reads what is on screen if so; a new inbound message is a
toast (and the bell). Every ten seconds it looks for waits that went past their
target (connectors.desk.targets.BreachWatch decides what is news). Presence
(console/presence.py: who else has this customer open, who is replying) is
kept up to date from the poll and shown in the status bar. The sync engine
runs in a worker for the console's life.
"""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from console import keymap as keymap_mod
from console.presence import Presence
from console.widgets.badges import badge
from console.widgets.safe_text import one_line
from connectors.desk.targets import Breach, BreachWatch, describe_time_left
from store import Store, StoreError
from store.db import store_problem
from store.terms import CHANNELS

if TYPE_CHECKING:
    from console.desk import DeskScreen

BREACH_CHECK_EVERY = 10.0  # seconds between looks for waits that went past their target


def default_engine_factory(store_path, config, agent):
    """The sync engine (with rules, targets and hooks) for the configured accounts,
    or None when there are none."""
    if config is None:
        return None
    from connectors.runtime import build_engine

    return build_engine(store_path, config)


class Live:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app
        self.engine = None
        self.version = None
        self.last_inbound = 0
        self.presence = Presence(desk)
        self._minute = 0
        self._watch = BreachWatch(self.app.targets)
        self._breach_checked_at = 0.0
        self._breach_checking = False

    def start(self) -> None:
        self._config_stamp = self._config_changed_at()
        store = self.app.store
        self.version = store.data_version()
        self.last_inbound = store.latest_inbound_id()
        self.refresh_status()
        self.desk.set_interval(self.app.poll_interval, self.poll, name="poll")
        self.check_breaches()

    # -- the poll -------------------------------------------------------------------
    def poll(self) -> None:
        """A store that does not answer now (locked, or its server away: PostgreSQL
        reconnects by itself) is "not now": said in the status bar until it answers."""
        try:
            self._poll()
        except (StoreError, sqlite3.Error) as e:
            self._trouble(f"store: {store_problem(e) or e}")
            return
        self._trouble("")

    def _trouble(self, text: str) -> None:
        if text != self.desk.status.trouble:
            self.desk.status.set(trouble=text)

    def _poll(self) -> None:
        store, clock = self.app.store, self.app.clock
        version = store.data_version()
        if version != self.version:
            self.version = version
            self.desk.refresh_all(follow=True)
            newest = store.latest_inbound_id()
            if newest > self.last_inbound:
                self._new_inbound(newest)
        now = clock()
        self._check_config()
        self.presence.update()  # the heartbeat, or a change the widgets' messages did not tell of
        if int(now // 60) != self._minute:  # ages and time left count on with the clock
            self._minute = int(now // 60)
            self.desk.queue.refresh()
        if now - self._breach_checked_at >= BREACH_CHECK_EVERY:
            self.check_breaches()
        self.refresh_status(presence_only=version == self.version)

    # -- the config file ----------------------------------------------------------------
    _config_stamp: int | None = None

    def _config_changed_at(self) -> int | None:
        path = getattr(self.app.config, "path", None)
        try:
            return path.stat().st_mtime_ns if path is not None else None
        except OSError:
            return None

    def _check_config(self) -> None:
        """The config file was edited while the console runs: its settings (a sendmail
        command, a token, a template) apply from the next start, and the agent is told so
        instead of `R` retrying with the old ones unseen."""
        if self._config_stamp is None or self.desk.status.config_note:
            return
        if self._config_changed_at() != self._config_stamp:
            name = self.app.config.path.name
            self.desk.status.set(config_note=f"{name} changed: restart omnidesk to use it")
            self.app.notify(f"{name} changed: this console keeps its settings until you restart it"
                            " (q, then omnidesk)", severity="warning", timeout=8)

    def seen_own_write(self) -> None:
        """Our own write is on screen already: the poll need not re-read for it."""
        try:
            self.version = self.app.store.data_version()
        except (StoreError, sqlite3.Error):
            pass  # the poll says so and re-reads when the store answers

    def _new_inbound(self, newest: int) -> None:
        store = self.app.store
        try:
            m = store.message(newest)
            who = store.customer(m.customer_id).name
            text = f"{badge(m.channel)} {one_line(who, 24)}: {one_line(m.text, 44)}"  # two lines at most
        except (StoreError, sqlite3.Error):
            text = "new message"
        self.last_inbound = newest
        if self.app.setting("console", "bell", True):
            self.app.bell()
        self.app.notify(text, title="New message", timeout=4)

    # -- waiting-time targets: say so once when a wait goes past its target ---------
    def check_breaches(self) -> None:
        if not self.app.targets.by_channel or self._breach_checking:
            return
        self._breach_checking = True
        self._breach_checked_at = self.app.clock()

        def done(news: list[Breach]) -> None:
            self._breach_checking = False
            if news:
                self._tell_breaches(news)

        def failed(error: Exception) -> None:  # a busy or changing store: look again next time, quietly
            self._breach_checking = False
        self.desk.reader.run(self._watch.look, done, group="breaches", failed=failed)

    def _tell_breaches(self, news: list[Breach]) -> None:
        def who(b: Breach) -> str:
            return f"{badge(b.channel)} {one_line(b.name, 30)}"
        if len(news) == 1:
            target = self.app.targets.for_channel(news[0].channel)
            limit = f"{describe_time_left(target).removesuffix(' left')} " if target else ""
            text = f"{who(news[0])} has waited past the {limit}target"
        else:
            names = ", ".join(who(b) for b in news[:3])
            text = f"{len(news)} customers have waited past their target: {names}" + (
                f" and {len(news) - 3} more" if len(news) > 3 else "")
        if self.app.setting("console", "bell", True):
            self.app.bell()
        self.app.notify(text, title="Waiting-time target missed", severity="warning", timeout=8)
        self.desk.queue.refresh()

    # -- the status bar and presence -------------------------------------------------
    def refresh_status(self, presence_only: bool = False) -> None:
        """Counts and health (read in a worker), presence (cheap, here)."""
        app, status, current = self.app, self.desk.status, self.desk.current
        notice = ""
        if current is not None:
            notice = self.presence.notice(current.id)
        hints = [(keymap_mod.display(app.keymap.get(i, "").split(",")[0]), label)
                 for i, label in (("global.help", "keys"), ("global.search", "search"),
                                  ("global.reply", "reply"), ("global.command_palette", "commands"))
                 if app.keymap.get(i)]
        if notice != status.notice or hints != status.hints:
            status.set(notice=notice, hints=hints)
        if presence_only and status.counts:
            return
        agent = app.agent

        engine = self.engine

        configured = self.configured_accounts()

        def read(s: Store):
            health = s.health()
            live = engine.live_health() if engine is not None and hasattr(engine, "live_health") else {}
            if configured:  # an account taken out of the config keeps its last stored row: not shown
                health = {name: h for name, h in health.items()
                          if name.partition(":")[0] not in CHANNELS or name in configured}
            health.update(live)  # what the store may be too locked to hold yet
            return health, {"waiting": s.queue_count("waiting"), "mine": s.queue_count("mine", agent=agent)}
        self.desk.reader.run(read, lambda r: status.set(health=r[0], counts=r[1]), group="status",
                             exclusive=True, failed=lambda e: None)

    def configured_accounts(self) -> set[str]:
        """The config's accounts as health names ("email:main"); empty without a config
        that names any (then every stored row is shown, as before)."""
        accounts = getattr(self.app.config, "accounts", None) or {}
        return {f"{channel}:{name}" for channel, named in accounts.items() for name in named}

    def presence_changed(self) -> None:
        """The customer on screen or the composer's text changed (or a reply was sent)."""
        self.presence.update()

    # -- the sync engine ---------------------------------------------------------------
    def start_engine(self) -> None:
        factory = self.app.engine_factory or default_engine_factory
        self.app.run_worker(lambda: self._engine_thread(factory), thread=True, group="engine", exit_on_error=False)

    def _engine_thread(self, factory) -> None:
        app, status = self.app, self.desk.status
        try:
            engine = factory(app.store_path, app.config, app.agent)
            if engine is None:
                # said in the status bar for as long as it is true, not in a toast that goes away
                app.from_thread(status.set, setup_hint="no channels yet: run `omnidesk init`")
                return
            engine.start()
            self.engine = engine
            app.from_thread(status.set, engine="syncing")
        except Exception as e:  # shown, never fatal: the console works on the store alone
            app.from_thread(app.notify, f"sync engine did not start: {e}", severity="error", timeout=10)

    def wake_outbox(self) -> None:
        if self.engine is not None and hasattr(self.engine, "wake_outbox"):
            self.engine.wake_outbox()

    def stop(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                engine.stop(timeout=5)
            except Exception:
                pass
        try:
            self.presence.leave()
        except Exception:
            pass
