"""`omnidesk demo`: messages arrive through every channel, replies reach the
simulated customers, and stopping leaves no process or file behind."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT


def omnidesk(db, *args):
    proc = subprocess.run([sys.executable, "-m", "console.cli", "--db", db, "--agent", "you", *args, "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(predicate, timeout=45.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_demo_every_channel_in_and_out_then_clean_exit(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "demo", "--headless", "--speed", "4"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        db, root = info["db"], Path(info["dir"])
        assert root.is_dir() and Path(info["config"]).exists()

        def by_channel():
            customers = omnidesk(db, "customers")
            channels = {ch for c in customers for ch in c["channels"]}
            return customers if {"email", "telegram", "slack"} <= channels and len(customers) >= 5 else None

        customers = wait_for(by_channel)
        names = {c["name"]: c for c in customers}
        # the Slack user whose profile e-mail matches an e-mail customer is one customer
        assert sorted(names["Priya Nair"]["channels"]) == ["email", "slack"]
        attachments = [a for m in omnidesk(db, "show", "bob@lifamily.example")["messages"] for a in m["attachments"]]
        # the demo's rules capture the order number Jane gives on Telegram
        order = wait_for(lambda: {f["key"]: f for f in omnidesk(db, "show", "@janeroe")["facts"]}.get("order_number"))
        assert (order["value"], order["channel"]) == ("1042", "telegram")
        assert attachments and attachments[0]["filename"] == "order-1039.pdf"

        # the demo's agent has a name: a template introduces them by it
        proc2 = subprocess.run([sys.executable, "-m", "console.cli", "--db", db, "--config", info["config"], "templates",
                                "render", "greeting", "--customer", "@janeroe", "--json"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert proc2.returncode == 0, proc2.stderr
        greeting = json.dumps(json.loads(proc2.stdout), ensure_ascii=False)
        assert "I'm Alex" in greeting and "I'm you" not in greeting

        omnidesk(db, "reply", "@janeroe", "-m", "A replacement ships today.")
        # an e-mail template reply with a paragraph and a link far over SMTP's 998-octet line limit
        from connectors.config import config_dir
        from connectors.desk.templates import install_starter_templates

        install_starter_templates(config_dir() / "templates")
        status = "Invoice attached; " + "it left our warehouse this morning and is on its way. " * 40
        url = "https://tracking.example.com/parcel?" + "&".join(f"k{n}=v{n}" for n in range(200))
        omnidesk(db, "reply", "bob@lifamily.example", "--template", "order-status", "--set", "order_number=1039",
                 "--set", f"status={status}", "--set", f"tracking_url={url}")
        omnidesk(db, "reply", "U0MARCO", "-m", "Yes, 3-5 days to Italy.")
        for ref, thanks in (("@janeroe", "Thank you so much"), ("bob@lifamily.example", "Got it"),
                            ("U0MARCO", "Grazie")):
            wait_for(lambda: any(m["direction"] == "in" and thanks in m["text"]
                                 for m in omnidesk(db, "show", ref)["messages"]))
        sent = [m for ref in ("@janeroe", "bob@lifamily.example", "U0MARCO")
                for m in omnidesk(db, "show", ref)["messages"] if m["direction"] == "out"]
        assert {m["channel"] for m in sent} == {"telegram", "email", "slack"} and all(m["state"] == "sent" for m in sent)
        # the customer's e-mail answer threads back to our reply
        bob = omnidesk(db, "show", "bob@lifamily.example")["messages"]
        ours = [m for m in bob if m["direction"] == "out"][0]
        assert bob[-1]["reply_to"] == ours["external_id"]

        kids = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["stopped"]
        assert not root.exists()
        wait_for(lambda: not [k for k in kids if Path(f"/proc/{k}").exists()], timeout=30)  # children exit too
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_cli_hint_names_a_command_that_runs_from_another_shell(tmp_path):
    """Newcomer: `omnidesk queue` from a second terminal said "command not found" (the venv was
    not activated). The demo's hint gives the full path then, the bare name when it is on PATH."""
    exe = Path(sys.executable).with_name("omnidesk")
    probe = ("import sys; sys.argv = [sys.argv[1]]\n"
             "from console.commands.demo import _command; print(_command())")

    def hint(path: str) -> str:
        return subprocess.run([sys.executable, "-c", probe, str(exe)], capture_output=True, text=True, check=True,
                              env={**os.environ, "PATH": path}, cwd=tmp_path).stdout.strip()
    assert hint("/usr/bin:/bin") == str(exe)
    assert hint(f"{exe.parent}:/usr/bin:/bin") == "omnidesk"
