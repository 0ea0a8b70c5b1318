"""Stats on a known data set (exact figures), time engaged, satisfaction
answers, and `omnidesk stats` in its three output forms."""
from __future__ import annotations

import csv
import io
import json
from datetime import timezone

import pytest

from connectors import config as config_mod
from connectors.desk import templates
from connectors.desk.automation import Automation, time_engaged
from connectors.desk.satisfaction import parse_answer
from console.cli import main
from store import Store
from store.models import Receipt
from store.stats import percentile
from tests.conftest import inbound

pytestmark = pytest.mark.both_backends  # the stats are SQL over the whole store: both backends

T0 = 1_789_999_200.0  # Monday 2026-09-21 14:00 UTC
ADDR = {"A": ("telegram", "10"), "B": ("email", "b@x.example"), "C": ("slack", "U3"), "D": ("telegram", "40"),
        "E": ("telegram", "50"), "F": ("email", "f@x.example")}
SCRIPT = [  # (seconds after T0, customer, what)
    (-1000, "E", "in"), (-900, "E", "out"), (-500, "E", "in"),  # E's wait starts before the period
    (0, "A", "in"), (50, "D", "in"), (55, "D", "auto"), (100, "B", "in"), (100, "E", "out"),
    (200, "B", "in"), (500, "C", "in"), (600, "A", "out"), (1000, "F", "in"), (1100, "F", "fail"),
    (1850, "D", "out"), (3600, "A", "in"), (4800, "A", "out"), (7300, "B", "out"), (8000, "B", "done"),
    (20000, "B", "in"), (20300, "B", "out"),
]
END = T0 + 30000


def build(store, clock):
    for offset, who, what in SCRIPT:
        clock.now = T0 + offset
        channel, address = ADDR[who]
        if what == "in":
            store.ingest(inbound(channel=channel, address=address, name=who, sent_at=clock.now))
            continue
        cid = store.find_customer(address if channel != "telegram" else f"telegram:{address}")
        if what == "out":
            store.queue_reply(cid, "answer", "ann")
        elif what == "auto":
            store.queue_auto_reply(cid, "We got your message.", "ack")
        elif what == "done":
            store.set_status(cid, "done", "ann")
        elif what == "fail":
            mid = store.queue_reply(cid, "this one bounces", "ann")
            while due := store.claim_due():
                out = due[0]
                if out.message_id == mid:
                    store.mark_failed(out.outbox_id, "550 mailbox unavailable", None)
                else:
                    store.mark_sent(out.outbox_id, Receipt(f"r{out.message_id}"))
    clock.now = END


def test_percentiles_interpolate_between_ranks():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([300, 600, 1800, 7200], 50) == 1200
    assert percentile([300, 600, 1800, 7200], 90) == pytest.approx(5580)


def test_stats_on_a_known_data_set(store, clock):
    build(store, clock)
    data = store.stats(T0, tz=timezone.utc)
    ch = data["channels"]
    tg, mail, slack, total = ch["telegram"], ch["email"], ch["slack"], ch["all"]
    assert (tg["messages_in"], tg["messages_out"], tg["auto_replies"]) == (3, 4, 1)
    assert (mail["messages_in"], mail["messages_out"], mail["auto_replies"]) == (4, 2, 0)  # the failed one is not out
    assert (slack["messages_in"], slack["messages_out"]) == (1, 0)
    assert (total["messages_in"], total["messages_out"], total["auto_replies"]) == (8, 6, 1)
    # first responses: A 10m, D 30m (the auto-acknowledgement does not count), B 2h, B again 5m (new case)
    assert (tg["first_response_count"], tg["first_response_p50"], tg["first_response_p90"]) == (2, 1200, pytest.approx(1680))
    assert (mail["first_response_count"], mail["first_response_p50"], mail["first_response_p90"]) == (2, 3750, pytest.approx(6510))
    assert (total["first_response_count"], total["first_response_p50"], total["first_response_p90"]) == (4, 1200, pytest.approx(5580))
    assert slack["first_response_p50"] is None
    # every answered wait: A 10m and 20m, D 30m, B 2h and 5m; E's started before the period
    assert (tg["reply_count"], tg["reply_p50"], tg["reply_mean"]) == (3, 1200, 1200)
    assert (total["reply_count"], total["reply_p50"], total["reply_p90"], total["reply_mean"]) == (5, 1200, pytest.approx(5040), 2220)
    # unanswered now: C on Slack, F whose reply failed
    assert (slack["unanswered"], mail["unanswered"], tg["unanswered"], total["unanswered"]) == (1, 1, 0, 2)
    hours = data["hours"]
    assert {h: n for h, n in enumerate(hours["all"]) if n} == {14: 6, 15: 1, 19: 1}
    assert {h: n for h, n in enumerate(hours["email"]) if n} == {14: 3, 19: 1}
    assert {h: n for h, n in enumerate(hours["telegram"]) if n} == {14: 2, 15: 1}


def test_a_later_period_sees_only_its_own_waits(store, clock):
    build(store, clock)
    later = store.stats(T0 + 10000)["channels"]["email"]
    assert (later["messages_in"], later["messages_out"], later["first_response_count"], later["first_response_p50"]) == (1, 1, 1, 300)


def test_time_engaged_counts_gaps_capped_and_restarts_with_a_new_case(store, clock):
    start = clock.now
    for i, gap in enumerate([0, 300, 240, 86400]):  # 5 and 4 minutes, then a day (counted as 10 minutes)
        clock.now += gap
        if i % 2 == 0:
            store.ingest(inbound(sent_at=clock.now))
        else:
            store.queue_reply(1, "ok", "ann")
    engaged = time_engaged(store, 1)
    assert engaged["seconds"] == 300 + 240 + 600 and engaged["messages"] == 4 and engaged["channels"] == ["telegram"]
    assert engaged["since"] is None
    store.set_status(1, "done", "ann")
    clock.advance(60)
    store.ingest(inbound(sent_at=clock.now))
    assert time_engaged(store, 1) == {"seconds": 0, "messages": 1, "channels": ["telegram"], "since": clock.now - 60}
    assert start < clock.now


# -- satisfaction ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,score", [("5", 5), ("1", 1), ("4/5", 4), ("3 stars", 3), ("👍", 5), ("👍🏽 thanks!", 5),
                                        (":+1:", 5), ("👎", 1), ("Great!!", 5), ("good", 4), ("bad", 2),
                                        ("Thanks, 5", 5), ("6", None), ("my order 5 is late", None),
                                        ("not good at all", None), ("", None)])
def test_answers_are_recognised(text, score):
    assert parse_answer(text) == score


def _satisfaction(tmp_path, store):
    templates.install_starter_templates(tmp_path / "templates")
    cfg = config_mod.validate({"satisfaction": {"template": "closing"}}, tmp_path / "config.toml")
    auto = Automation(cfg, rules_path=tmp_path / "rules.toml", timer_every=0)
    store.claim_new()
    store.on_ingest[:] = [lambda results: auto.on_ingest(store, results)]
    return auto


def test_a_done_case_gets_the_question_and_the_answer_is_counted(store, clock, tmp_path):
    auto = _satisfaction(tmp_path, store)
    start = clock.now
    store.ingest_batch([inbound(name="Gus", text="is my order shipped?", sent_at=clock.now)])
    clock.advance(300)
    store.queue_reply(1, "Yes, today.", "ann")
    store.set_status(1, "done", "ann")
    auto.tick(store)
    [question] = [m for m in store.timeline(1) if m.author == "satisfaction"]
    assert "How did we do, from 1 (poor) to 5 (great)?" in question.text and question.channel == "telegram"
    assert question.meta["auto"] == "satisfaction"
    clock.advance(120)
    store.ingest_batch([inbound(text="👍", sent_at=clock.now)])
    c = store.customer(1)
    assert c.status == "done" and store.queue_count("waiting") == 0  # a rating is not a new request
    [ev] = store.events(1, kind="satisfaction")
    assert ev.data["score"] == 5 and ev.data["answer"] == "👍"
    stats = store.stats(start)["channels"]
    assert (stats["telegram"]["ratings"], stats["telegram"]["rating_avg"], stats["telegram"]["rating_positive"]) == (1, 5.0, 1)
    assert stats["all"]["first_response_p50"] == 300 and stats["all"]["messages_out"] == 1  # the question is automatic
    # a later "5" without a question is just a message
    clock.advance(60)
    store.ingest_batch([inbound(text="5", sent_at=clock.now)])
    assert store.customer(1).status == "open" and store.stats(start)["channels"]["all"]["ratings"] == 1


def test_no_question_without_an_answer_from_a_person_and_other_replies_drop_it(store, clock, tmp_path):
    auto = _satisfaction(tmp_path, store)
    store.ingest_batch([inbound(address="1", text="BUY CHEAP", sent_at=clock.now)])
    store.set_status(1, "done", "ann")  # spam: closed without an answer
    store.ingest_batch([inbound(address="2", text="help", sent_at=clock.now)])
    store.queue_reply(2, "sure", "ann")
    store.set_status(2, "done", "ann")
    auto.tick(store)
    assert [m.customer_id for m in store.timeline(1) + store.timeline(2) if m.author == "satisfaction"] == [2]
    clock.advance(60)
    store.ingest_batch([inbound(address="2", text="actually, it broke again", sent_at=clock.now)])
    assert not store.pending_survey(2)["open"] and store.customer(2).status == "open"  # only a direct reply counts now
    assert store.queue("waiting")[0].customer_id == 2 and store.events(kind="satisfaction") == []


# -- omnidesk stats ------------------------------------------------------------------------------------------
@pytest.fixture
def stats_db(store_location, clock):
    s = Store(store_location, clock=clock)
    build(s, clock)
    s.close()
    return store_location


ARGS = ["--since", "2026-09-21T14:00:00+00:00", "--until", "2026-09-22T00:00:00+00:00"]


def test_stats_command_prints_a_table(stats_db, capsys):
    assert main(["--db", str(stats_db), "stats", *ARGS]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("telegram"))
    assert row.split() == ["telegram", "3", "4", "1", "20m", "28m", "20m", "28m", "0", "0", "-"]
    row = next(line for line in out.splitlines() if line.startswith("all"))
    assert row.split()[:8] == ["all", "8", "6", "1", "20m", "1h33m", "20m", "1h24m"]
    assert "Inbound by hour of day" in out


def test_stats_command_json_and_csv(stats_db, capsys):
    assert main(["--db", str(stats_db), "--json", "stats", *ARGS]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["since"] == "2026-09-21T14:00:00Z" and data["channels"]["email"]["first_response_p90"] == pytest.approx(6510)
    assert main(["--db", str(stats_db), "stats", "--csv", *ARGS]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["channel"] for r in rows] == ["email", "telegram", "slack", "all"]
    assert rows[0]["messages_in"] == "4" and rows[0]["first_response_p50"] == "3750.0" and rows[2]["reply_p50"] == ""
    assert main(["--db", str(stats_db), "stats", "--csv", "--hours", *ARGS]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "hour,email,telegram,slack,all" and len(lines) == 25


def test_stats_command_rejects_a_bad_since(stats_db, capsys):
    assert main(["--db", str(stats_db), "stats", "--since", "last tuesday"]) == 1
    assert "--since 'last tuesday': expected a span like 7d" in capsys.readouterr().err


def test_stats_command_sums_up_satisfaction(store_location, clock, tmp_path, capsys):
    s = Store(store_location, clock=clock)
    for n, score in enumerate([5, 4, 2], 1):
        s.ingest(inbound(address=str(n), sent_at=clock.now))
        s.record_rating(n, 1, "telegram", score, str(score))
    s.close()
    assert main(["--db", str(store_location), "stats", "--since", "2026-01-01", "--until", "2026-12-31"]) == 0
    assert "Satisfaction: 3.7 of 5 from 3 answers (67% rated 4 or 5)" in capsys.readouterr().out
