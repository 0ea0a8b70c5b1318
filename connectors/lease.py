"""Who holds the polling lease, in words.

One process per store polls the channels and sends the outbox: the console or
`omnidesk sync`. Its lease holder names it: "host:pid:id|program|user|since" (program
"console", "sync" or "demo"; the login user; since = unix seconds it started). Older
holders are plain "host:pid:id" and are described as well as they can be.

    holder_id("sync")                     -> "vm:19143:7f6e…|sync|alex|1796020811"
    describe(holder, heartbeat, now)      -> "the console of user alex on vm (pid 19143, running since 06:31)"
"""
from __future__ import annotations

import getpass
import os
import socket
import sys
import time

from store.timefmt import format_clock

__all__ = ["holder_id", "describe", "guess_program", "FRESH"]

FRESH = 120.0  # seconds: a heartbeat older than this is a poller that stopped (doctor's rule too)
_WORDS = {"console": "the console", "demo": "the demo console", "sync": "`omnidesk sync`"}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without USER): the uid says who
        return f"uid {os.getuid()}"


_VALUED = ("--db", "--config", "--agent")  # the CLI's options that take the next word as their value


def guess_program(argv: list[str] | None = None) -> str:
    """Which omnidesk program this process is, from its command line: "sync", "demo" or "console".
    `omnidesk --db URL sync` is sync too: an option's value is not the command."""
    args, skip = [], False
    for a in sys.argv[1:] if argv is None else argv:
        if skip:
            skip = False
        elif a.startswith("-"):
            skip = a in _VALUED
        else:
            args.append(a)
    return args[0] if args and args[0] in ("sync", "demo") else "console"


def holder_id(program: str, token: object = None) -> str:
    """A lease holder naming this process: host:pid:token|program|user|start time."""
    token = f"{id(token):x}" if token is not None else "0"
    return f"{socket.gethostname()}:{os.getpid()}:{token}|{program}|{_user()}|{int(time.time())}"


def _parts(holder: str) -> tuple[str, str, str, str, float | None]:
    where, *rest = (holder or "").split("|")
    host, _, pid = where.partition(":")
    pid = pid.partition(":")[0]
    program, user, since = (rest + ["", "", ""])[:3]
    try:
        started = float(since) if since else None
    except ValueError:
        started = None
    return host, pid, program, user, started


def describe(holder: str, heartbeat: float | None = None, now: float | None = None) -> str:
    """The holder in words: which program, which user, on which machine, since when."""
    now = time.time() if now is None else now
    host, pid, prog, user, started = _parts(holder)
    what = _WORDS.get(prog, "another omnidesk")
    if user:
        what += f" of user {user}"
    notes = [f"pid {pid}"] if pid else []
    if started is not None:
        notes.append(f"running since {format_clock(started, now)}")
    if heartbeat is not None and now - heartbeat > 5:
        notes.append(f"last heard {format_clock(heartbeat, now)}")
    return what + f" on {host or '?'}" + (f" ({', '.join(notes)})" if notes else "")
