"""The `omnidesk` command: the console by default, and a scripting CLI.

Every command takes `--json` (stable field names, times in ISO 8601 UTC).
Exit status: 0 ok, 1 user error (message on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import json
import math
import os
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable

from connectors import paths
from console.commands.common import UserError, jsonable, log_to_file
from store.errors import OmnideskError
from store.text import utf8_problem

# Kept for old imports; commands import these from console.commands.common.
__all__ = ["Context", "UserError", "build_parser", "jsonable", "log_to_file", "main"]

# Modules in console/commands/ that add subcommands. Each keeps its top-level imports light
# (heavy ones inside the command's function), so parsing the command line loads no channel
# library and no Textual: `omnidesk queue` imports only what the queue needs.
COMMAND_MODULES = ["core", "sync", "setup", "keys", "demo", "mail_import", "templates", "rules", "stats", "hooks",
                   "facts", "store_copy", "caseload"]


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.json = getattr(args, "json", False)
        self._db_path = paths.store_location(args.db) if args.db else None
        self.config_path = Path(args.config) if args.config else paths.default_config_path()
        self._config = None
        self._store = None

    @property
    def db_path(self):
        """The store: --db, else OMNIDESK_DB, else the config's [store] url, else the default file
        (a Path; a URL stays a str)."""
        if self._db_path is None:
            from connectors import config as config_mod

            location = paths.store_location(None)
            if not os.environ.get("OMNIDESK_DB") and self.config_path.exists():
                try:
                    location = config_mod.store_location(self.config)
                except OmnideskError:  # a broken config: the command says so when it reads it
                    pass
            self._db_path = location
        return self._db_path

    @property
    def config(self):
        """The validated config (connectors.config.Config), loaded on first use."""
        from connectors import config as config_mod

        if self._config is None:
            chosen = self.args.config or os.environ.get("OMNIDESK_CONFIG")
            if chosen and not self.config_path.exists():  # a typo must not look like "no channels"
                raise UserError(f"{self.config_path}: no such config file"
                                f" (`omnidesk --config {self.config_path} init` writes one)")
            self._config = config_mod.load(self.config_path)
        return self._config

    @property
    def agent(self) -> str:
        """Who acts: --agent, else OMNIDESK_AGENT, else the config's [agent] name (the console
        signs with the same name, so `undo` works across the console and the CLI)."""
        return self.args.agent or os.environ.get("OMNIDESK_AGENT", "").strip() or self.config.agent

    @property
    def store(self):
        if self._store is None:
            from store import Store

            from connectors.config import store_options

            try:
                new = isinstance(self.db_path, Path) and not self.db_path.exists()
            except OSError:  # a folder we may not enter: opening the store says so, in its words
                new = False
            self._store = Store(self.db_path, max_attachment_bytes=self.config.get("attachments", "max_bytes"),
                                **store_options(self.config))
            if new:  # a mistyped OMNIDESK_DB would otherwise look like an empty desk
                print(f"omnidesk: note: created a new, empty store at {self.db_path}"
                      " (--db or OMNIDESK_DB chooses another)", file=sys.stderr)
        return self._store

    def customer(self, ref: str) -> int:
        from store import StoreError

        try:
            return self.store.find_customer(ref)
        except StoreError as e:
            if str(e).startswith("no customer matches"):
                raise UserError(f"{e}; `omnidesk customers {shlex.quote(ref)}` finds part of a name") from None
            raise

    def emit(self, data: Any, human: str | Callable[[Any], str] | None = None) -> None:
        if self.json:
            json.dump(jsonable(data), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
            return
        text = human(data) if callable(human) else human
        if text is None:
            text = json.dumps(jsonable(data), ensure_ascii=False, indent=2)
        if text:
            print(text)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _version() -> str:
    """The installed package's version (its metadata, as pip installed it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omnidesk")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="store file (env OMNIDESK_DB)")
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file (env OMNIDESK_CONFIG)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument("--agent", default=argparse.SUPPRESS, help="act as this agent (env OMNIDESK_AGENT; default: config [agent] name, as the console)")
    parser = argparse.ArgumentParser(
        prog="omnidesk", parents=[common],
        description="One terminal console for every customer channel. Without a command, opens the console.",
    )
    parser.add_argument("--version", action="version", version=f"omnidesk {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"console.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"console.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub, [common])
    return parser


def _check_arguments(argv: list[str]) -> str | None:
    """Arguments arrive decoded with surrogate escapes: name one that was not UTF-8."""
    for n, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(arg)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return utf8_problem(f"argument {n} ({raw[:40]!r})", e)
    return None


NUMBER_CAP = 1e9  # no count, id, speed or number of seconds omnidesk takes gets near this


def _absurd_number(args: argparse.Namespace) -> str | None:
    """Every number option at once: nan, inf, negative or absurd values are refused
    (nan once made a loop spin 695k times a second)."""
    for name, value in vars(args).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        option = "--" + name.replace("_", "-")
        if not math.isfinite(value):
            return f"{option}: expected a finite number, got {value!r}"
        if value < 0 or value > NUMBER_CAP:
            return f"{option}: expected a number from 0 to {NUMBER_CAP:g}, got {value!r}"
    return None


GLOBAL_WITH_VALUE = ("--db", "--config", "--agent")


def _command_at(argv: list[str]) -> int | None:
    """Where the command word is in `argv` (after the global options), or None."""
    skip = False
    for n, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in GLOBAL_WITH_VALUE:
            skip = True
        elif arg == "--":
            return None
        elif not arg.startswith("-"):
            return n
    return None


def main(argv: list[str] | None = None) -> int:
    problem = _check_arguments(sys.argv[1:] if argv is None else argv)
    if problem:
        print(f"omnidesk: error: {problem}", file=sys.stderr)
        return 2
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    at = _command_at(argv)
    if at is not None and argv[at] not in commands:  # argparse (3.11) lists every command, suggests none
        import difflib

        close = difflib.get_close_matches(argv[at], list(commands), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        print(f"omnidesk: error: {argv[at]!r} is not a command{hint} (`omnidesk --help` lists them)",
              file=sys.stderr)
        return 2
    if at is not None and argv[at] == "snooze":  # "-5m" is a (past) time, not an option: cmd_snooze says so
        argv = argv[:at + 1] + [" " + a if len(a) > 1 and a[0] == "-" and a[1].isdigit() else a
                                for a in argv[at + 1:]]
    args = parser.parse_args(argv)
    bad = _absurd_number(args)
    if bad:
        parser.error(bad)
    for key, default in (("db", None), ("config", None), ("json", False), ("agent", None)):
        if not hasattr(args, key):
            setattr(args, key, default)
    if not getattr(args, "func", None):
        from console.commands.core import run_console

        args.func = run_console
    ctx = Context(args)
    try:
        return args.func(args, ctx) or 0
    except OmnideskError as e:  # UserError, StoreError, ConfigError, ...
        print(f"omnidesk: error: {e}", file=sys.stderr)
        return 1
    except sqlite3.OperationalError as e:  # e.g. the store stayed locked by another process
        from store.db import store_problem
        from store.postgres import scrub

        print(f"omnidesk: error: {scrub(str(ctx.db_path))}: {store_problem(e, ctx.db_path) or scrub(str(e))}",
              file=sys.stderr)
        return 1
    except BrokenPipeError:  # `omnidesk ... | head` stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit's flush
        return 0
    except OSError as e:  # a file we were asked to read or write
        why = "disk full" if e.errno == errno.ENOSPC else (e.strerror or e)
        print(f"omnidesk: error: {e.filename or ''}: {why}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
