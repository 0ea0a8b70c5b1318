"""What the second newcomer's 35 minutes with the CLI found (notes/newcomer-2.md), each
through the installed `omnidesk` command on a real store, on both backends."""
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from store import Store
from tests.conftest import inbound
from tests.support.cli import OMNIDESK, run_in_process

T0 = 1_790_000_000.0

pytestmark = pytest.mark.both_backends


def omnidesk(db, *args, stdin="", env=None):
    rc, out, err = run_in_process("--db", str(db), *args, stdin=stdin, env=env)
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


def installed(db, *args, env=None):
    """The real entry point in its own process, as a user runs it."""
    return subprocess.run([str(OMNIDESK), "--db", str(db), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def ok_json(db, *args, **kw):
    proc = omnidesk(db, *args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def desk(store_location):
    s = Store(store_location)
    jane = s.ingest(inbound("telegram", "5001", "Is my teapot on its way?", name="Jane Roe", handle="janeroe",
                            sent_at=T0)).customer_id
    zoe = s.ingest(inbound("email", "zoe@example.com", "Where is my tea?", name="Zoe Muller", subject="Tea",
                           sent_at=T0 + 60)).customer_id
    s.close()
    return SimpleNamespace(jane=jane, zoe=zoe)


@pytest.fixture
def config(tmp_path):
    """A config file with the starter templates beside it, as `omnidesk init` leaves them."""
    starter = Path(__file__).resolve().parent.parent / "connectors" / "desk" / "starter_templates"
    shutil.copytree(starter, tmp_path / "templates")
    path = tmp_path / "config.toml"
    path.write_text('[channels.email]\nsign_off = "Best regards,\\n{{ agent }}"\n')
    return str(path)


# -- 27. reply --template T -m TEXT --------------------------------------------------------

def test_reply_with_a_template_and_text_keeps_the_text_first_then_the_template(store_location, desk, config):
    proc = installed(store_location, "--config", config, "--agent", "Alex Morgan", "reply", "@janeroe", "--template", "greeting",
                     "-m", "Extra text about your teapot.", "--json")
    assert proc.returncode == 0, proc.stderr
    text = json.loads(proc.stdout)["text"]
    assert text.startswith("Extra text about your teapot.\n"), text
    assert "Thanks for reaching out! I'm Alex" in text
    # as in the console: a template going into a reply begun brings no second greeting
    assert text.count("Hi Jane") == 0 and text.index("Extra text") < text.index("Thanks for reaching out")


def test_reply_with_a_template_and_text_by_email_signs_once(store_location, desk, config):
    data = ok_json(store_location, "--config", config, "--agent", "Alex Morgan", "reply", "zoe@example.com",
                   "--template", "greeting", "-m", "Your tea left today.")
    text = data["text"]
    assert text.startswith("Your tea left today.\n") and "Thanks for reaching out" in text
    assert text.count("Best regards") == 1, text
    assert data["subject"] == "Re: Tea"  # in a thread the subject stays theirs
