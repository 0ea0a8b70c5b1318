"""The real `omnidesk` process in a real terminal (tmux), read back with capture-pane."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from store import Store
from tests.support.console import seed

ROOT = Path(__file__).resolve().parent.parent
OMNIDESK = Path(sys.executable).parent / "omnidesk"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None or not OMNIDESK.exists(),
                                reason="needs tmux and the installed `omnidesk` entry point")


class Tmux:
    def __init__(self, command: str, env: dict[str, str], size=(100, 30), socket: str | None = None):
        """`socket`: a tmux server of its own (tmux -L NAME), else the default one."""
        self.name = f"omnidesk-test-{uuid.uuid4().hex[:8]}"
        self.tmux = ["tmux", *(["-L", socket] if socket else [])]
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                        *env_args, f"{command}; echo EXIT=$?; sleep 60"], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True)
        if keys[-1] == "Escape":  # a lone ESC must not merge with the next key into alt+key
            time.sleep(0.4)

    def wait_for(self, *texts: str, timeout: float = 60.0) -> str:
        """Wait for one screen that shows all of `texts` (a capture may catch a half-drawn frame)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts!r} never appeared together; the screen was:\n{self.screen()}")

    def wait_for_composer(self, timeout: float = 60.0) -> str:
        """Wait until the composer has the focus ("✎ writing" in its bar), so typed text
        goes into it and not, as keys, to the timeline it was opened from."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if "✎ writing" in screen:  # the composer says so while it has the focus
                return screen
            time.sleep(0.1)
        raise AssertionError(f"the composer never opened; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-session", "-t", self.name], capture_output=True)


def test_omnidesk_console_in_tmux(tmp_path, clock):
    db = tmp_path / "omnidesk.db"
    ids = seed(db, clock)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TZ": "UTC",
           "TERM": "xterm-256color", "USER": "tess"}
    t = Tmux(f"{shlex.quote(str(OMNIDESK))} --db {shlex.quote(str(db))}", env)
    try:
        screen = t.wait_for("Дмитрий Орлов", "Bob Li", "Carol Diaz", "open · 5")
        assert "open · 5" in screen  # the queue, longest wait first
        assert screen.index("Дмитрий Орлов") < screen.index("Bob Li") < screen.index("Carol Diaz")
        t.keys("j", "j", "Enter")
        # the attachment line, the sender and the folded quote: Jane's timeline is open
        t.wait_for("vase photo.jpg", "Jane Roe <jane@roe.example>", "quoted lines folded")
        t.keys("r")
        t.wait_for_composer()
        t.keys("Hello from tmux", literal=True)
        t.keys("C-s")
        t.wait_for("queued")
        s = Store(db)
        last = s.timeline(ids["jane"])[-1]
        assert (last.direction, last.text, last.author, last.state) == ("out", "Hello from tmux", "tess", "queued")
        s.close()
        t.keys("Escape")
        t.keys("?")
        t.wait_for("global.search")  # the help screen, from the live keymap
        t.keys("Escape")
        t.keys("q")
        t.wait_for("EXIT=0")
    finally:
        t.close()


def test_init_asks_for_the_agents_name(tmp_path):
    """Templates introduce and sign with the agent's name: `init` asks for it."""
    import tomllib

    cfg = tmp_path / "cfg" / "config.toml"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color"}
    t = Tmux(f"{shlex.quote(str(OMNIDESK))} --config {shlex.quote(str(cfg))} init", env)
    try:
        t.wait_for("Your name, as customers see it")
        t.keys("Tess Ng", literal=True)
        t.keys("Enter")
        for question in ("Set up e-mail?", "Set up Telegram?", "Set up Slack?"):
            t.wait_for(question)
            t.keys("n", "Enter")
        t.wait_for("EXIT=0")
    finally:
        t.close()
    assert tomllib.loads(cfg.read_text())["agent"]["name"] == "Tess Ng"


def test_ctrl_e_edits_the_reply_in_the_editor(tmp_path, clock):
    """The console steps aside for $EDITOR and takes back what was saved."""
    db = tmp_path / "omnidesk.db"
    ids = seed(db, clock)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TZ": "UTC",
           "TERM": "xterm-256color", "USER": "tess", "VISUAL": "", "EDITOR": "sed -i s/draft/edited/"}
    t = Tmux(f"{shlex.quote(str(OMNIDESK))} --db {shlex.quote(str(db))}", env)
    try:
        t.wait_for("Дмитрий Орлов", "open · 5")
        t.keys("j", "j", "Enter")
        t.wait_for("vase photo.jpg")
        t.keys("r")
        t.wait_for_composer()
        t.keys("my draft reply", literal=True)
        t.wait_for("my draft reply")
        t.keys("C-e")
        t.wait_for("my edited reply")
        t.keys("C-s")
        t.wait_for("queued")
        s = Store(db)
        assert s.timeline(ids["jane"])[-1].text == "my edited reply"
        s.close()
        t.keys("Escape")
        t.keys("q")
        t.wait_for("EXIT=0")
    finally:
        t.close()


def test_the_demo_says_where_its_store_is_so_the_cli_can_be_tried(tmp_path):
    """The README's tour says to try the CLI on the demo: the demo's banner gives the whole
    export line, the config too (newcomer trial 2, finding 1: it gave OMNIDESK_DB only, and the
    CLI then acted as someone else), at 80 columns; copied as shown it runs in a shell."""
    import os
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))  # a TMPDIR as short as a user's
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TZ": "UTC",
           "TERM": "xterm-256color", "USER": "tess", "TMPDIR": str(short),
           "PATH": f"{OMNIDESK.parent}:/usr/bin:/bin"}  # omnidesk on PATH, as after `source .venv/bin/activate`
    t = Tmux(f"{shlex.quote(str(OMNIDESK))} demo --speed 5", env, size=(80, 24))
    try:
        screen = t.wait_for("DEMO", "OMNIDESK_CONFIG=", timeout=60)
        [db] = short.glob("omnidesk-demo-*/omnidesk.db")
        lines = [line.strip() for line in screen.splitlines()]
        at = next(n for n, line in enumerate(lines) if line.startswith("export OMNIDESK_DB="))
        # (this TMPDIR is longer than /tmp: the line has no room for "; omnidesk queue", and says so by leaving it out)
        assert lines[at:at + 2] == [f"export OMNIDESK_DB={db} \\", f"OMNIDESK_CONFIG={db.parent / 'config.toml'}"]
        deadline = time.monotonic() + 60
        while True:  # the two lines, run as shown in another terminal, then the CLI: the demo's customers
            proc = subprocess.run(["bash", "-c", "\n".join(lines[at:at + 2]) + "\nomnidesk queue"],
                                  env={**os.environ, **env},
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            if "Nobody is waiting" not in proc.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "Nobody is waiting" not in proc.stdout
        t.keys("q")
        screen = t.wait_for("EXIT=0", timeout=30)
        flat = screen.replace("\n", "")  # the terminal wraps long lines
        assert f"omnidesk demo: the store is {db}" in flat and "stopped; its store and files" in flat
        assert not db.exists()
    finally:
        t.close()
        shutil.rmtree(short, ignore_errors=True)


def test_keys_typed_ahead_in_a_real_terminal_reach_the_dialogs_they_were_typed_for(tmp_path, clock):
    """A typist's burst in a real terminal: move to Bob, open him, edit his name (picker,
    then prompt) and type the new name, all sent before the console has drawn any of it."""
    db = tmp_path / "omnidesk.db"
    ids = seed(db, clock)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TZ": "UTC",
           "TERM": "xterm-256color", "USER": "tess"}
    t = Tmux(f"{shlex.quote(str(OMNIDESK))} --db {shlex.quote(str(db))}", env, size=(80, 24), socket="flow")
    try:
        t.wait_for("Дмитрий Орлов", "Bob Li", "open · 5")
        t.keys("j", "Enter", "e", "Enter")
        t.keys("Robert Li", literal=True)
        t.keys("Enter")
        t.wait_for("Robert Li", "renamed")
        s = Store(db)
        assert s.customer(ids["bob"]).name == "Robert Li"
        assert s.customer(ids["dmitry"]).name == "Дмитрий Орлов" and not s.customer(ids["bob"]).tags
        s.close()
        t.keys("q")
        t.wait_for("EXIT=0")
    finally:
        t.close()
