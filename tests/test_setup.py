"""`omnidesk init` and `omnidesk doctor` as a newcomer runs them."""
import json
import os
import stat
import subprocess
import sys
import tomllib

from tests.conftest import ROOT


def run(tmp_path, *args, env=None):
    e = {**os.environ, "OMNIDESK_CONFIG": str(tmp_path / "cfg" / "config.toml"),
         "OMNIDESK_DB": str(tmp_path / "omnidesk.db"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_init_writes_valid_commented_config_templates_and_keymap(tmp_path):
    proc = run(tmp_path, "init", "--yes", "--name", "Alex", "--email", "shop@gmail.com",
               "--telegram-token-env", "TG_TOKEN", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    cfg_path = tmp_path / "cfg" / "config.toml"
    text = cfg_path.read_text()
    data = tomllib.loads(text)
    assert data["agent"]["name"] == "Alex"
    assert data["email"]["main"]["imap_host"] == "imap.gmail.com"  # provider preset from the domain
    assert data["telegram"]["main"] == {"token_env": "TG_TOKEN"}
    assert "# poll_interval = 30.0" in text and "# confirm_send = false" in text
    assert stat.S_IMODE(cfg_path.stat().st_mode) == 0o600
    assert len(out["templates"]) >= 5 and (tmp_path / "cfg" / "keybindings.toml").exists()
    assert any("app password" in n for n in out["next"])
    # a second init refuses to clobber the owner's edits
    again = run(tmp_path, "init", "--yes")
    assert again.returncode == 1 and "exists" in again.stderr


def test_doctor_says_what_to_fix_without_leaking_secrets(tmp_path):
    run(tmp_path, "init", "--yes", "--telegram-token-env", "TG_TOKEN")
    proc = run(tmp_path, "doctor")
    assert proc.returncode == 1
    assert "TG_TOKEN is not set" in proc.stdout and "FIX" in proc.stdout
    proc = run(tmp_path, "doctor", env={"TG_TOKEN": "123:SECRET-never-shown"})
    assert "SECRET-never-shown" not in proc.stdout + proc.stderr


def test_doctor_on_a_broken_config(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.toml").write_text("[agent]\nname = 3\n")
    proc = run(tmp_path, "doctor", "--json")
    rows = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert rows[0]["channel"] == "config" and "agent.name: expected a string" in rows[0]["detail"]


def test_init_for_gmail_keeps_no_sent_copy(tmp_path):
    """Gmail files sent mail by itself; a copy in "Sent" would be a second, stray label."""
    proc = run(tmp_path, "init", "--yes", "--email", "shop@gmail.com")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "cfg" / "config.toml").read_text()
    assert tomllib.loads(text)["email"]["main"]["sent_folder"] == ""
    assert 'sent_folder = ""' in text
    other = tmp_path / "other"
    proc = run(other, "init", "--yes", "--email", "shop@example.com")
    assert proc.returncode == 0, proc.stderr
    assert "sent_folder" not in tomllib.loads((other / "cfg" / "config.toml").read_text())["email"]["main"]
