"""`omnidesk demo`: the whole product on loopback servers, no accounts needed."""
from __future__ import annotations

import json
import signal
import threading
import time

from console.commands.common import UserError


def _command() -> str:
    """How to run this omnidesk from another shell: its bare name when that is on PATH,
    else its full path (a venv that is not activated: `omnidesk` would be "command not found")."""
    import os
    import shlex
    import shutil
    import sys

    here = os.path.abspath(sys.argv[0])
    found = shutil.which("omnidesk")
    if os.path.basename(here) != "omnidesk" or (found and os.path.samefile(found, here)):
        return "omnidesk"
    return shlex.quote(here)


def register(sub, parents) -> None:
    p = sub.add_parser("demo", parents=parents, help="try omnidesk with simulated customers (no accounts needed)",
                       description="Starts loopback Telegram and Slack servers, a local Maildir and SMTP server "
                                   "and simulated customers, then the console. Quitting deletes everything.")
    p.add_argument("--speed", type=float, default=1.0, help="simulator speed factor (2 = twice as fast)")
    p.add_argument("--headless", action="store_true",
                   help="no console: print the store and config paths as JSON and run until Ctrl-C/SIGTERM")
    p.add_argument("--seconds", type=float, help="with --headless: stop after this long")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args, ctx) -> int:
    import shlex

    from console.demo import DemoWorld, banner

    from console.commands.common import log_to_file

    world = DemoWorld(speed=args.speed)
    if not args.headless:
        log_to_file(world.root / "omnidesk.log")  # deleted with the rest of the demo
    try:
        world.start()
        config = world.config()
        if args.headless:
            return _headless(world, config, args.seconds)
        from console.app import OmnideskApp

        # said before the console takes the screen (it is there again after quitting) and in its banner
        # with the demo's config too, so the CLI signs as the demo's agent (undo works across both)
        # and finds its templates
        print(f"omnidesk demo: the store is {world.db_path}\n"
              f"  try the CLI in another terminal while the demo runs:\n"
              f"    export OMNIDESK_DB={shlex.quote(str(world.db_path))}"
              f" OMNIDESK_CONFIG={shlex.quote(str(world.config_path))}\n"
              f"    {_command()} queue", flush=True)
        app = OmnideskApp(world.db_path, config, config.agent, banner=banner(world.db_path, world.config_path, _command()))
        app.title = "omnidesk demo"
        app.run()
        if app.crash:
            print(f"omnidesk demo: {app.crash}; the traceback is in {world.root / 'omnidesk.log'}, "
                  f"deleted with the demo (run it again to look at it while it runs).", flush=True)
        print(f"omnidesk demo: stopped; its store and files ({world.root}) are deleted.", flush=True)
        return 0
    except OSError as e:
        raise UserError(f"the demo could not start: {e}") from None
    finally:
        world.stop()


def _headless(world, config, seconds: float | None) -> int:
    from connectors.runtime import build_engine

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine = build_engine(world.db_path, config)
    if engine is None:  # the demo writes its own config with every channel: cannot happen
        raise RuntimeError("the demo config has no channels")
    engine.start()
    print(json.dumps({"demo": True, "dir": str(world.root), "db": str(world.db_path),
                      "config": str(world.config_path), "note": "Ctrl-C or SIGTERM stops and deletes it"}), flush=True)
    deadline = time.monotonic() + seconds if seconds else None
    try:
        while not stop.wait(0.2):
            if deadline and time.monotonic() > deadline:
                break
    finally:
        engine.stop(timeout=5)
    print(json.dumps({"stopped": True, "replies_reached_customers": world.replies}), flush=True)
    return 0
