"""Running omnidesk from tests: the installed entry point users run, or in-process."""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

OMNIDESK = Path(sys.executable).parent / "omnidesk"  # the entry point users run (the venv's)


def run_in_process(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`omnidesk ARGS` in this process: (exit status, stdout, stderr). Fast; for
    the many tests that check what a command says and does, not how it starts.
    `env` sets environment variables for the run only."""
    from console.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin, old_env = sys.stdin, {k: os.environ.get(k) for k in (env or {})}
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")  # with .buffer, as a real stdin
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as e:  # argparse: usage errors exit 2
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        sys.stdin = old_stdin
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return rc, out.getvalue(), err.getvalue()


def run_on(db, *args: str, stdin: str = "", env: dict[str, str] | None = None):
    """`omnidesk --db DB ARGS` in this process: .returncode, .stdout, .stderr."""
    from types import SimpleNamespace

    rc, out, err = run_in_process("--db", str(db), *args, stdin=stdin, env=env)
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


def installed_on(db, *args: str, env: dict[str, str] | None = None):
    """`omnidesk --db DB ARGS` through the real entry point in its own process, as a user runs it."""
    import subprocess

    return subprocess.run([str(OMNIDESK), "--db", str(db), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def json_on(db, *args: str, **kw):
    """`omnidesk --db DB ARGS --json`, which must succeed: its parsed output."""
    import json

    proc = run_on(db, *args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
