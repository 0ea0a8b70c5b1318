"""The house keeps its shape: commands load only what they use, no import cycles,
the config is a static schema."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from connectors import config as config_mod
from connectors.schema import ConfigError
from tests.conftest import ROOT
from tests.support.cli import OMNIDESK

HEAVY = ("textual", "telegram", "slack_sdk", "httpx")

PROBE = """
import json, sys
from console.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
print("\\n" + json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""


def _run_probe(args, tmp_path, config_text=None):
    env = {**os.environ, "OMNIDESK_DB": str(tmp_path / "empty.db"), "PYTHONPATH": str(ROOT)}
    env.pop("OMNIDESK_CONFIG", None)
    if config_text is not None:
        cfg = tmp_path / "config.toml"
        cfg.write_text(config_text)
        env["OMNIDESK_CONFIG"] = str(cfg)
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    output, _, last = proc.stdout.rstrip().rpartition("\n")
    report = json.loads(last)
    return output, report["rc"], report["modules"]


def _heavy(modules):
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_queue_json_loads_no_textual_telegram_slack_or_httpx(tmp_path):
    output, rc, modules = _run_probe(["queue", "--json"], tmp_path)
    assert rc == 0 and json.loads(output) == []
    assert _heavy(modules) == []


def test_a_configured_chat_channel_is_not_imported_by_a_command_that_does_not_sync(tmp_path):
    config = '[telegram.main]\ntoken_env = "TG"\n\n[slack.main]\ntoken_env = "SL"\n'
    output, rc, modules = _run_probe(["queue", "--json"], tmp_path, config)
    assert rc == 0 and json.loads(output) == []
    assert _heavy(modules) == []


def test_the_installed_command_answers_queue_json_on_an_empty_store(tmp_path):
    env = {**os.environ, "OMNIDESK_DB": str(tmp_path / "empty.db")}
    env.pop("OMNIDESK_CONFIG", None)
    proc = subprocess.run([str(OMNIDESK), "queue", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def _import_cycles(*packages):
    """Strongly connected groups of modules (Tarjan) in the import graph, function-level
    imports included, TYPE_CHECKING-only ones not."""
    import grimp

    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True)
    adj = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(adj):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_anywhere():
    assert _import_cycles("store", "connectors", "console") == []


def test_config_sections_are_typed_and_a_typo_names_the_key(tmp_path):
    cfg = config_mod.validate({"sync": {"poll_interval": 12}, "console": {"bell": False}}, tmp_path / "c.toml")
    assert cfg.settings.sync.poll_interval == 12.0 and isinstance(cfg.settings.sync.poll_interval, float)
    assert cfg.settings.console.bell is False and cfg.get("console", "bell") is False
    assert cfg.settings.attachments.max_bytes == 25 * 1024 * 1024
    with pytest.raises(ConfigError, match=r"sync\.poll_intervall: unknown key; expected one of .*poll_interval"):
        config_mod.validate({"sync": {"poll_intervall": 12}})
    with pytest.raises(ConfigError, match=r"telegram\.main\.tokn_env: unknown key"):
        config_mod.validate({"telegram": {"main": {"tokn_env": "X"}}})
    with pytest.raises(ConfigError, match=r"\[sink\]: unknown section"):
        config_mod.validate({"sink": {}})


def test_validating_a_config_imports_no_channel_library(tmp_path):
    code = ("import sys; from connectors import config as c; "
            "c.validate({'telegram': {'main': {'token_env': 'X'}}, 'slack': {'main': {'token_env': 'Y'}}}); "
            f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _tool(name):
    from pathlib import Path

    return str(Path(sys.executable).parent / name)


def test_ruff_is_clean():
    """The same check .ci/run makes (pyproject.toml [tool.ruff]); here so a plain test run shows it."""
    proc = subprocess.run([_tool("ruff"), "check", "--quiet", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_import_contracts_hold():
    """store imports nothing of ours; connectors never import console; the engine and the
    channels never import connectors.desk (pyproject.toml [tool.importlinter])."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_public_store_method_says_what_it_returns():
    """The store's facade: each public method has a docstring, and none hands out a
    sqlite3.Row (q/q1 are the store modules' own query helpers)."""
    import inspect
    import re

    from store import Store

    missing, rows = [], []
    for name, member in inspect.getmembers(Store, predicate=inspect.isfunction):
        if name.startswith("_"):
            continue
        if not inspect.getdoc(member):
            missing.append(name)
        if name not in ("q", "q1") and re.search(r"(?<![A-Za-z])Row\b", str(inspect.signature(member).return_annotation)):
            rows.append(name)
    assert missing == [] and rows == []


def test_no_sql_outside_the_store():
    import re

    sql = re.compile(r"""["'][^"'\n]*\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA\s)""")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for pkg in ("console", "connectors")
                 for p in (ROOT / pkg).rglob("*.py")
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if sql.search(line)]
    assert offenders == []


def test_merges_are_followed_to_the_survivor_in_one_place(store, make_inbound):
    from store.customers import follow_merges

    assert follow_merges(1, {1: 2, 2: 3}.get) == 3 and follow_merges(4, {}.get) == 4
    assert follow_merges(1, {1: 2, 2: 1}.get) in (1, 2)  # a damaged cycle ends, it does not hang
    a = store.ingest(make_inbound("email", "a@x.io", "hi")).customer_id
    b = store.ingest(make_inbound("telegram", "77", "hi")).customer_id
    c = store.ingest(make_inbound("slack", "U1", "hi")).customer_id
    store.merge(b, a, "ann")
    store.merge(c, b, "ann")
    assert store.live_id(a) == c and store.find_customer("a@x.io") == c


def test_one_word_one_place():
    """Channels are listed once (store/terms.py), terminal text is cleaned by one
    sanitizer (store/text.py), durations are parsed by one module (store/timefmt.py)."""
    import re

    channels = re.compile(r"""\(\s*["']email["'],\s*["']telegram["'],\s*["']slack["']\s*\)""")
    sanitizer = re.compile(r"isprintable\(\) else")  # the hand-rolled "c if c.isprintable() else ..." kind
    units = re.compile(r"""["']h["']\s*:\s*3600""")  # a table of duration units
    found = {"channels": [], "sanitizer": [], "units": []}
    for pkg in ("console", "connectors", "store"):
        for p in (ROOT / pkg).rglob("*.py"):
            rel = str(p.relative_to(ROOT))
            if "sandbox" in rel:
                continue
            text = p.read_text(encoding="utf-8")
            if channels.search(text) and rel != "store/terms.py":
                found["channels"].append(rel)
            if sanitizer.search(text) and rel != "store/text.py":
                found["sanitizer"].append(rel)
            if units.search(text) and rel != "store/timefmt.py":
                found["units"].append(rel)
    assert found == {"channels": [], "sanitizer": [], "units": []}
