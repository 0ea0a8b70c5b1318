"""The console's shell driven like a person would: palette, help, engine, narrow terminals,
the stats screen and the waiting-time targets in the queue."""
from __future__ import annotations

import pytest

from console import keymap
from console.screens.help import HelpScreen
from store import Store
from tests.support.console import (  # noqa: F401 (fixtures and helpers)
    NOW,
    _utc,
    anyio_backend,
    ids,
    make_app,
    open_customer,
    screen_text,
    seed,
    settle,
    until,
    workers_done,
)

pytestmark = pytest.mark.anyio


async def test_command_palette_lists_every_action(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for action in keymap.ACTIONS:
            if action.name not in ("command_palette", "quit"):
                assert action.description in titles, action.id
        await pilot.press("ctrl+p", *"snooze")
        await until(pilot, lambda: "Snooze until" in screen_text(app))


async def test_the_palette_offers_one_keys_entry_ours(db_path, clock, tmp_path, ids):
    """Textual's own "Keys" (a side panel esc does not close) is not offered next to ours."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"keys")
        await until(pilot, lambda: "Keys and help" in screen_text(app))
        assert "Show help for the focused widget" not in screen_text(app)
        assert [c.title for c in app.get_system_commands(app.screen)].count("Keys") == 0
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and "esc closes" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_help_screen_is_generated_from_the_live_keymap(db_path, clock, tmp_path, ids):
    live = keymap.load(False)
    live["queue.down"] = "ctrl+j,down"
    app = make_app(db_path, clock, tmp_path, keymap=live)
    async with app.run_test(size=(120, 50)) as pilot:  # tall enough to show the queue keys under the global ones
        await settle(pilot)
        await pilot.press("ctrl+j")
        assert app.queue.cursor == 1
        await pilot.press("j")  # no longer bound in the queue
        assert app.queue.cursor == 1
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "^j / ↓" in text and "queue.down" in text


async def test_engine_starts_and_stops_with_the_app(db_path, clock, tmp_path, ids):
    from connectors.engine import Engine

    made = []

    def factory(path, config, agent):
        made.append(Engine(path, [], holder="console-test", lease_seconds=5))
        return made[-1]

    app = make_app(db_path, clock, tmp_path, engine_factory=factory, start_engine=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.engine is made[0] and made[0].threads
    assert made[0].threads == [] and made[0].stop_event.is_set()


async def test_narrow_terminal_collapses_panes(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.query_one("#profile-pane").display
        assert app.query_one("#queue-pane").outer_size.width == 30
        await pilot.press("p")
        await settle(pilot)
        assert app.query_one("#profile-pane").display


async def test_stats_key_opens_the_stats_screen_and_escape_closes_it(db_path, clock, tmp_path, ids):
    from console.screens.stats import StatsScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await until(pilot, lambda: "Stats — last 7 days" in screen_text(app))
        text = screen_text(app)
        rows = {words[0]: words for words in map(str.split, text.splitlines())
                if len(words) > 1 and words[0] in ("email", "telegram", "slack", "all") and words[1].isdigit()}
        # in, out, auto ... waiting: Bob and Jane by e-mail; Dmitry and Jane on Telegram; Carol and Jane on Slack
        assert rows["email"][:4] == ["email", "2", "0", "0"]
        assert rows["telegram"][:4] == ["telegram", "2", "0", "0"]
        assert rows["slack"][:4] == ["slack", "2", "0", "0"]
        assert rows["all"][:4] == ["all", "6", "0", "0"]
        assert "Inbound by hour of day" in text
        await pilot.press("d")  # the console's keys do not reach the customer behind the screen
        await settle(pilot)
        assert isinstance(app.screen, StatsScreen)
        s = Store(db_path, clock=clock)
        assert all(s.customer(cid).status == "open" for cid in ids.values())
        s.close()
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, StatsScreen)
        assert "Stats —" not in screen_text(app) and "Jane Roe" in screen_text(app)
        # the command palette lists it too
        await pilot.press("ctrl+p", *"stats per")
        await until(pilot, lambda: "Stats per channel" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: "Stats — last 7 days" in screen_text(app))
        await pilot.press("escape")
        await settle(pilot)
        # and the help screen
        await pilot.press("question_mark")
        await settle(pilot)
        help_line = next(line for line in screen_text(app).splitlines() if "global.stats" in line)
        assert "D" in help_line and "Stats per channel" in help_line


def _queue_right(app, name: str) -> str:
    """A customer's first line in the queue (the left pane): name, badge and time."""
    return next(line.split("│")[1].strip() for line in screen_text(app).splitlines()
                if line.startswith("│") and name in line.split("│")[1])


async def test_queue_counts_down_to_the_waiting_time_target(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"email": "4h", "chat": "15m"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "1h00m left" in _queue_right(app, "Bob Li")  # e-mail, 3h of 4h
        assert "25h45m over" in _queue_right(app, "Дмитрий Орлов")  # Telegram, 26h of 15m
        assert "10m left" in _queue_right(app, "Carol Diaz")  # Slack, 5m of 15m
        assert "13m left" in text  # Jane on Slack, 100s of 15m
        styles = {seg.text.strip(): seg.style for y in range(app.queue.size.height)
                  for seg in app.queue.render_line(y) if seg.text.strip()}
        overdue, soon, due = (app.queue.get_component_rich_style(c) for c in
                              ("queue--overdue", "queue--due-soon", "queue--due"))
        assert styles["25h45m over"].color == overdue.color and styles["25h45m over"].bold
        assert styles["1h00m left"].color == due.color  # exactly a quarter left: not yet a warning
        clock.advance(2 * 60)  # Bob: 58m of 4h left, under a quarter

        def styles_now() -> dict:
            return {seg.text.strip(): seg.style for y in range(app.queue.size.height)
                    for seg in app.queue.render_line(y) if seg.text.strip()}
        await until(pilot, lambda: "58m left" in styles_now())
        assert styles_now()["58m left"].color == soon.color


async def test_queue_without_targets_shows_the_age(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"email": "4h"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "1h00m left" in _queue_right(app, "Bob Li")
        right = _queue_right(app, "Carol Diaz")  # Slack has no target here
        assert right.endswith("5m") and "left" not in right and "over" not in right


async def test_a_breach_while_open_is_told_once(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path, targets={"chat": "15m"}, bell=True)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)

        def told() -> list[str]:
            return [n.message for n in app._notifications if n.title == "Waiting-time target missed"]

        async def a_check_since(at: float) -> None:
            """Wait until a breach check started at or after `at` (console clock) has finished:
            only then can "nothing was told" be true for the right reason."""
            live = app.desk.live
            await until(pilot, lambda: live._breach_checked_at >= at and not live._breach_checking)
        # Dmitry and Jane (Telegram) were overdue before the console opened: not news
        await a_check_since(clock())
        assert told() == [] and bells == []
        clock.advance(11 * 60)  # Carol (Slack, 5m) goes past 15m; Jane on Slack (100s) not yet
        await until(pilot, lambda: told())
        assert told() == ["sl Carol Diaz has waited past the 15m target"]
        assert "Waiting-time target missed" in screen_text(app)
        assert bells == [1]
        assert "over" in _queue_right(app, "Carol Diaz")
        # the engine records the same breach later: no second toast
        s = Store(db_path, clock=clock)
        carol = s.customer(ids["carol"])
        assert s.record_breach(carol.id, carol.waiting_since, "slack", 900, 1)
        s.close()
        clock.advance(20)
        await a_check_since(clock())
        assert len(told()) == 1
        clock.advance(3 * 60)  # now Jane on Slack too
        await until(pilot, lambda: len(told()) == 2)
        assert told()[1] == "sl Jane Roe has waited past the 15m target"
        clock.advance(60)
        await a_check_since(clock())
        assert len(told()) == 2 and bells == [1, 1]


async def test_profile_shows_time_engaged_in_this_case(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        text = " ".join(line.split("│")[-2].strip() for line in screen_text(app).splitlines() if line.count("│") >= 4)
        # e-mail 2h ago, Telegram 12m ago: one gap, counted up to 10 minutes
        assert "this case: 2 messages on email, telegram, 10m engaged" in " ".join(text.split())


async def test_the_search_syntax_is_shown_whole_at_80x24(db_path, clock, tmp_path, ids):
    """Each hint line of the search dialog fits at 80 columns (one long line wrapped
    mid-item, ending in an ellipsis that read as cut)."""
    from console.screens.search import KEYS, SYNTAX

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"vase")
        await until(pilot, lambda: getattr(app.screen, "hits", None))
        shown = screen_text(app)
        for line in (*SYNTAX, f"3 results · {KEYS}"):
            assert line in shown, line
