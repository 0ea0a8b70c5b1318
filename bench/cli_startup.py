"""CLI start-up benchmark: `omnidesk queue --json` on an empty store, as a script runs it.

    python bench/cli_startup.py [--runs 20]

Prints the wall time of the installed command (median, min, max of --runs fresh
processes), `python -c pass` for scale, the number of modules the command imports,
whether any of Textual, python-telegram-bot, slack_sdk or httpx is among them, and the
ten slowest imports by `python -X importtime` (cumulative microseconds). Target: under
0.25 s on an idle machine, none of those libraries loaded. No assertion: figures only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("textual", "telegram", "slack_sdk", "httpx")


def wall(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMNIDESK_DB": str(Path(tmp) / "o.db"), "XDG_CONFIG_HOME": str(Path(tmp) / "cfg")}
        env.pop("OMNIDESK_CONFIG", None)
        omnidesk = str(Path(sys.executable).parent / "omnidesk")
        subprocess.run([omnidesk, "queue", "--json"], env=env, check=True, capture_output=True)  # creates the store
        times = wall([omnidesk, "queue", "--json"], env, args.runs)
        bare = wall([sys.executable, "-c", "pass"], env, max(3, args.runs // 4))
        probe = ("import sys; from console.cli import main; main(['queue', '--json']); "
                 "print(len(sys.modules), sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)"
                 % (HEAVY,))
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], env=env, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    count, heavy = lines[-1].split(" ", 1)
    imports = []
    for line in lines[:-1]:
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if cumulative.isdigit():
                imports.append((int(cumulative), name))
    print(f"omnidesk queue --json, empty store, {args.runs} runs: median {statistics.median(times) * 1000:.0f} ms"
          f" (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); python -c pass:"
          f" {statistics.median(bare) * 1000:.0f} ms")
    print(f"modules imported: {count}; of {', '.join(HEAVY)}: {heavy}")
    print("slowest imports (cumulative, importtime):")
    for micros, name in sorted(imports, reverse=True)[:10]:
        print(f"  {micros / 1000:7.1f} ms  {name}")
    print(f"load average now: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
