"""Running the desk's triage rules the way the engine does: a rules.toml, an Automation
attached to a real store, and the rule events it leaves."""
from __future__ import annotations

import textwrap

from connectors import config as config_mod
from connectors.desk.automation import Automation

T_MON_1000 = 1_789_984_800.0  # Monday 2026-09-21 10:00 UTC
T_SAT_1000 = T_MON_1000 + 5 * 86400


def make_auto(tmp_path, rules_toml: str, **kw) -> Automation:
    path = tmp_path / "rules.toml"
    path.write_text(textwrap.dedent(rules_toml))
    config = config_mod.validate(kw.pop("config_data", {}), tmp_path / "config.toml")
    return Automation(config, rules_path=path, timer_every=0, log_path=tmp_path / "hooks.log", **kw)


def ingest(store, auto, *items):
    """Store messages the way the engine does, with the automation attached."""
    store.on_ingest[:] = [lambda results: auto.on_ingest(store, results)]
    return store.ingest_batch(list(items))


def rule_events(store, rule=None):
    return [e for e in store.events(limit=500, kind="rule") if rule is None or e.data["rule"] == rule]
