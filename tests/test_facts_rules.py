"""[[fact]] rules: checked when rules.toml is read (compiles, one group, no
runaway shape), run at ingest on the customer's own words, kept with their
source, listed by `omnidesk rules test`, and the starter rules `init` writes."""
from __future__ import annotations

import json
import textwrap

import pytest

from connectors import config as config_mod
from connectors.config import ConfigError
from connectors.desk import facts as facts_mod
from connectors.desk import rules as rules_mod
from console.cli import main
from tests.conftest import inbound
from tests.support.chat import wait_until
from tests.test_rules import ingest, make_auto

pytestmark = pytest.mark.both_backends

ORDER = r'''
[[fact]]
name = "order_number"
pattern = '(?i)\border\s*(?:number|no\.?)?\s*#?\s*(\d{3,})'
'''


def _auto(store, tmp_path, text):
    store.claim_new()  # the automation starts from "now"
    return make_auto(tmp_path, text)


def _load(text):
    return rules_mod.parse_rules(__import__("tomllib").loads(textwrap.dedent(text)))


@pytest.mark.parametrize("pattern, why", [
    ("(order", "not a valid regular expression"),
    (r"order \d+", "needs exactly one capture group"),
    (r"(order) (\d+)", "needs exactly one capture group"),
    (r"((?:\w+\s?)+)$", "catastrophic backtracking"),
    (r"(\d*)*x", "catastrophic backtracking"),
    (r"((?:a{1,60}){1,60})", "catastrophic backtracking"),
])
def test_a_bad_pattern_is_refused_at_load_with_the_rule_name(pattern, why):
    with pytest.raises(ConfigError, match=rf"fact rule 'ticket': pattern: .*{why}"):
        _load(f"[[fact]]\nname = \"ticket\"\npattern = '{pattern}'\n")


def test_other_mistakes_name_the_rule():
    with pytest.raises(ConfigError, match=r"fact rule 'ticket': colour: unknown key"):
        _load("[[fact]]\nname = \"ticket\"\npattern = '(\\d+)'\ncolour = 1\n")
    with pytest.raises(ConfigError, match=r"fact rule 'ticket': channel: unknown value 'fax'"):
        _load("[[fact]]\nname = \"ticket\"\npattern = '(\\d+)'\nchannel = \"fax\"\n")
    with pytest.raises(ConfigError, match=r"fact rule #1: name"):
        _load("[[fact]]\npattern = '(\\d+)'\n")


def test_a_match_that_runs_away_anyway_is_cut_off_and_recorded(store, tmp_path):
    # alternatives that overlap inside a repetition pass the static check; the time limit catches them
    auto = _auto(store, tmp_path, "[[fact]]\nname = \"code\"\npattern = '(x(?:a|a)*y)'\n")
    ingest(store, auto, inbound(text="x" + "a" * 40))
    [err] = store.events(kind="rule_error")
    assert "fact rule 'code': gave up" in err.data["error"]
    assert store.customer(1).facts == {}


def test_captured_at_ingest_with_its_source_and_a_later_value_wins(store, tmp_path, clock):
    auto = _auto(store, tmp_path, ORDER)
    [first] = ingest(store, auto, inbound(text="Hi, order number 5520 has not come", sent_at=clock() - 7200))
    c = store.customer(first.customer_id)
    assert c.facts == {"order_number": "5520"}
    assert c.fact_sources["order_number"]["message_id"] == first.message_id
    assert c.fact_sources["order_number"]["channel"] == "telegram"
    [second] = ingest(store, auto, inbound(text="sorry, it is order #5521", sent_at=clock() - 60))
    assert store.customer(first.customer_id).facts == {"order_number": "5521"}
    assert [e["value"] for e in store.fact_history(first.customer_id)["order_number"]] == ["5520"]
    [ev] = [e for e in store.events(kind="fact") if e.data["new"] == "5521"]
    assert ev.actor == "rules" and ev.data["rule"] == "order_number" and ev.data["message_id"] == second.message_id


def test_only_the_customers_own_words(store, tmp_path):
    auto = _auto(store, tmp_path, ORDER + 'channel = ["email", "telegram"]\n')
    quoted = inbound(channel="email", address="jane@example.com", text="Thanks!\n\n> Your order number 9999 shipped",
                     meta={"new_text": "Thanks!"})
    [r] = ingest(store, auto, quoted)
    assert store.customer(r.customer_id).facts == {}
    store.queue_reply(r.customer_id, "Your order number 8888 is on its way", "ann")  # our words
    store.add_note(r.customer_id, "order number 7777 per phone", "ann")
    auto.pump(store)
    assert store.customer(r.customer_id).facts == {}
    [s] = ingest(store, auto, inbound(channel="slack", address="U1", text="order 1234"))  # not a channel it watches
    assert store.customer(s.customer_id).facts == {}


def test_rules_see_the_fact_captured_from_the_same_message(store, tmp_path):
    auto = _auto(store, tmp_path, ORDER + '''
        [[rule]]
        name = "has order"
        when = { fact = { order_number = "." } }
        then = { tag = "order" }
    ''')
    [r] = ingest(store, auto, inbound(text="order no. 4242 has not arrived"))
    assert store.customer(r.customer_id).tags == ["order"]


def test_rules_test_lists_what_fact_rules_would_capture(store_location, clock, capsys):
    from store import Store

    rules_file = config_mod.config_dir() / "rules.toml"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    rules_file.write_text(ORDER)
    s = Store(store_location, clock=clock)
    s.ingest(inbound(text="order 5521\x1b[2J please", name="Eve", sent_at=clock.now - 3600))
    s.ingest(inbound(address="2", text="hello", sent_at=clock.now - 3600))
    s.close()
    assert main(["--db", str(store_location), "rules", "test", "--since", "2026-01-01"]) == 0
    out = capsys.readouterr().out
    assert "#1 Eve" in out and "captures order_number = 5521" in out and "\x1b" not in out
    assert "Would fire: fact order_number ×1" in out
    assert main(["--db", str(store_location), "--json", "rules", "test", "--since", "2026-01-01"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["fact"] == {"name": "order_number", "value": "5521", "current": None}
    s = Store(store_location, clock=clock)
    assert s.customer(1).facts == {}  # a dry run
    s.close()
    assert main(["--db", str(store_location), "rules", "list"]) == 0
    assert "fact order_number  [any channel]" in capsys.readouterr().out


def test_the_starter_fact_rules_work_once_uncommented(tmp_path, store):
    path = rules_mod.install_example(tmp_path / "rules.toml")
    assert rules_mod.load_rules(path).facts == []
    lines = path.read_text().splitlines()
    start, end = lines.index("# [[fact]]"), next(n for n, x in enumerate(lines) if x.startswith("# timezone"))
    path.write_text("\n".join(x[2:] for x in lines[start:end] if x.startswith("# ")) + "\n")
    facts = rules_mod.load_rules(path).facts
    assert [f.name for f in facts] == ["order_number", "phone", "email"]

    def found(text, channel="telegram"):
        store.ingest(inbound(channel=channel, address=f"{channel}-u", text=text))
        m = store.message(store.last_inbound_id(store.find_customer(f"{channel}-u")))
        return {rule.name: value for rule, value in facts_mod.find(facts, m)[0]}

    assert found("Order Nr. 004211 still missing") == {"order_number": "004211"}
    assert found("my order number is 5521") == {"order_number": "5521"}
    assert found("call me on +49 30 1234567 or mail jane.doe@example.co.uk") == {
        "phone": "+49 30 1234567", "email": "jane.doe@example.co.uk"}
    assert found("mail jane.doe@example.com", channel="email") == {}  # an e-mail address is its own identity there


def test_hooks_get_the_customers_facts(store, tmp_path):
    out = tmp_path / "payload.json"
    auto = _auto(store, tmp_path, ORDER + f'''
        [[rule]]
        name = "tell"
        when = {{ text = "order" }}
        then = {{ hook = "cat > {out}" }}
    ''')
    ingest(store, auto, inbound(text="order 6001 is late"))
    def written():  # the whole payload, not a file the hook is still writing
        try:
            return json.loads(out.read_text())
        except (OSError, ValueError):
            return None
    payload = wait_until(written, what="the hook's JSON")
    auto.close()
    assert payload["customer"]["facts"] == {"order_number": "6001"}
