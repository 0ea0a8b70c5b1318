"""Issue 16.9: words for people. Events read as sentences, counts agree with their
nouns, init and doctor say what is true, and a keymap clash is named."""
from __future__ import annotations

import json
import re

from store import Store
from tests.conftest import inbound
from tests.support.cli import run_in_process
from tests.test_rules import ingest, make_auto

T0 = 1_790_000_000.0


def test_events_read_as_sentences_not_dicts_or_epoch_numbers(tmp_path, store, db_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "refunds to alice"
        when = { text = "refund" }
        then = { tag = "refund", assign = "alice" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(text="refund please", name="Jane"))
    cid = r.customer_id
    store.set_status(cid, "pending", "ann")
    store.assign(cid, "bob", "ann")
    store.undo("ann")
    store.close()
    rc, out, err = run_in_process("--db", str(db_path), "--agent", "ann", "events", "--customer", str(cid))
    assert rc == 0, err
    assert "rule 'refunds to alice' tagged refund" in out
    assert "rule 'refunds to alice' assigned to alice" in out
    assert "you set status pending" in out
    assert "you undid “assigned to bob”" in out and "you assigned to bob — undone" in out
    assert "{" not in out and not re.search(r"\b1[0-9]{9}\b", out)  # no dicts, no epoch numbers
    rc, out, _ = run_in_process("--db", str(db_path), "--agent", "bob", "events", "--customer", str(cid))
    assert "ann set status pending" in out  # "you" is whoever reads


def test_counts_agree_with_their_nouns(tmp_path):
    db = tmp_path / "o.db"
    s = Store(db)
    cid = s.ingest(inbound("email", "jane@roe.com", "hello", sent_at=T0)).customer_id
    s.close()
    rc, out, _ = run_in_process("--db", str(db), "show", str(cid))
    assert "this case: 1 message on email" in out and "1 messages" not in out
    rc, out, _ = run_in_process("--db", str(db), "--config", str(tmp_path / "none.toml"), "doctor")
    assert "1 message" in out and "1 messages" not in out


def test_doctor_does_not_call_a_missing_config_ok(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIDESK_DB", str(tmp_path / "o.db"))
    rc, out, _ = run_in_process("doctor", "--json")
    rows = {r["channel"]: r for r in json.loads(out)}
    assert rc == 1
    assert rows["config"]["ok"] is False and "does not exist" in rows["config"]["detail"]
    assert "omnidesk init" in rows["config"]["fix"]
    assert rows["store"]["ok"] is True  # the rest is still checked


def test_init_counts_templates_and_points_to_sections_that_exist(tmp_path, monkeypatch):
    from tests.conftest import ROOT

    cfg = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("OMNIDESK_CONFIG", str(cfg))
    monkeypatch.setenv("OMNIDESK_DB", str(tmp_path / "o.db"))
    rc, out, err = run_in_process("init", "--yes", "--name", "Ann")
    assert rc == 0, err
    templates = sorted((tmp_path / "cfg" / "templates").glob("*.md"))
    n = len(templates)
    assert f"templates: {n} templates installed in" in out  # the README beside them is not a template
    rc, out, err = run_in_process("init", "--yes", "--force", "--name", "Ann")
    assert rc == 0, err
    assert f"templates: {n} templates already in" in out and "kept as they are" in out
    readme = (ROOT / "README.md").read_text()
    headings = {h.strip() for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)}
    for section in re.findall(r"README\.md > ([^.\n]+)", cfg.read_text()):
        assert section.strip() in headings, f"config points to a README section that does not exist: {section}"


def test_a_keymap_override_taking_a_bound_key_names_both(tmp_path, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    (tmp_path / "keybindings.toml").write_text('[queue]\nopen = "j"\n')
    rc, out, err = run_in_process("--config", str(cfg), "keys")
    assert rc == 1
    assert "[queue] open = 'j'" in err and "already bound to queue.down (Next customer)" in err
    (tmp_path / "keybindings.toml").write_text('[queue]\nopen = "f9"\n[timeline]\nfold = "f9"\n')
    rc, out, err = run_in_process("--config", str(cfg), "keys")
    assert rc == 0, err  # the same key in two contexts is fine
