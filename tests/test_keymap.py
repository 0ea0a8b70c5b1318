"""keybindings.toml: defaults, user overrides, and errors that name the line."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from console import keymap
from console.keymap import KeymapError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_defaults_cover_every_action():
    data = tomllib.loads((ROOT / "keybindings.toml").read_text())
    ids = {f"{table}.{action}" for table, entries in data.items() for action in entries}
    assert ids == {a.id for a in keymap.ACTIONS}
    assert keymap.default_path() == ROOT / "keybindings.toml"


def test_pyproject_ships_the_defaults_inside_the_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["keybindings.toml"] == "console/keybindings.toml"


def test_user_file_overrides_single_entries(tmp_path):
    user = tmp_path / "keybindings.toml"
    user.write_text('[queue]\ndown = "ctrl+j, n"\n\n[composer]\nsend = "ctrl+enter,f5"\n')
    live = keymap.load(user)
    assert live["queue.down"] == "ctrl+j,n"
    assert live["composer.send"] == "ctrl+enter,f5"
    assert live["queue.up"] == keymap.defaults()["queue.up"]


def test_user_file_in_the_config_dir_is_found(tmp_path, monkeypatch):
    # conftest points XDG_CONFIG_HOME at a temp dir
    path = keymap.user_path()
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text('[global]\nsearch = "ctrl+f"\n')
    assert keymap.load()["global.search"] == "ctrl+f"


def test_single_characters_use_textual_names(tmp_path):
    user = tmp_path / "k.toml"
    user.write_text('[global]\nhelp = "?"\nsearch = "/"\n')
    live = keymap.load(user)
    assert live["global.help"] == "question_mark"
    assert live["global.search"] == "slash"


@pytest.mark.parametrize("text,message", [
    ('[queue]\nup = "k"\nexplode = "x"\n', r"k\.toml:3: unknown action 'explode' in \[queue\]; expected one of .*down"),
    ('[global]\n\nsearch = "ctrl+banana"\n', r"k\.toml:3: \[global\] search: unknown key 'ctrl\+banana'"),
    ('[timeline]\nfold = "hyper+"\n', r"k\.toml:2: .*unknown key 'hyper\+'"),
    ('[timeline]\nfold = "z,,y"\n', r"k\.toml:2: .*unknown key ''"),
    ('[timeline]\nfold = 3\n', r"k\.toml:2: \[timeline\] fold: expected keys as a string"),
    ('[sidebar]\nx = "y"\n', r"k\.toml:1: unknown table \[sidebar\]"),
    ('[queue\ndown = "j"\n', r"k\.toml: not valid TOML"),
])
def test_bad_files_are_clear_errors_naming_the_line(tmp_path, text, message):
    user = tmp_path / "k.toml"
    user.write_text(text)
    with pytest.raises(KeymapError, match=message):
        keymap.load(user)


@pytest.mark.parametrize("key", ["j", "G", "enter", "escape", "ctrl+s", "shift+tab", "f12", "question_mark",
                                 "slash", "space", "ctrl+shift+k", "alt+left", "pagedown", "home", "comma", "1"])
def test_valid_keys(key):
    assert keymap.valid_key(key)


@pytest.mark.parametrize("key", ["", "ctrl+", "banana", "control+s", "f99x", " j", "ctrl+nope"])
def test_invalid_keys(key):
    assert not keymap.valid_key(key)


def test_bindings_carry_ids_for_set_keymap():
    for context in keymap.CONTEXTS:
        for b in keymap.bindings(context):
            assert b.id.startswith(context + ".")
            assert b.key == keymap.defaults()[b.id]


def test_help_rows_follow_the_live_keymap(tmp_path):
    user = tmp_path / "k.toml"
    user.write_text('[queue]\ndown = "ctrl+j"\n')
    rows = {r[3]: r for r in keymap.help_rows(keymap.load(user))}
    assert rows["queue.down"][1] == "^j"
    assert rows["global.help"][1] == "? / f1"


def test_console_entry_reports_a_bad_user_file(tmp_path):
    from types import SimpleNamespace

    from console.app import run

    path = keymap.user_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[queue]\nwarp = "w"\n')
    ctx = SimpleNamespace(db_path=tmp_path / "x.db", config=None, agent="alice")
    with pytest.raises(Exception, match=r"keybindings.toml:2: unknown action 'warp'"):
        run(ctx)


def test_the_keymap_init_installs_next_to_a_chosen_config_is_the_one_used(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    omnidesk = Path(sys.executable).parent / "omnidesk"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "OMNIDESK_DB": str(tmp_path / "o.db")}
    config = tmp_path / "shop" / "config.toml"
    run = lambda *a: subprocess.run([str(omnidesk), "--config", str(config), *a], env=env, capture_output=True,  # noqa: E731
                                    text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert run("init", "--agent", "tess").returncode == 0
    installed = config.parent / "keybindings.toml"
    assert installed.exists()
    installed.write_text('[global]\nreply = "f8"\n')
    rows = {r["id"]: r["keys"] for r in json.loads(run("--json", "keys").stdout)}
    assert rows["global.reply"] == "f8"
    installed.write_text('[global]\nwarp = "w"\n')
    bad = run("keys")
    assert bad.returncode == 1 and "keybindings.toml:2: unknown action 'warp'" in bad.stderr
