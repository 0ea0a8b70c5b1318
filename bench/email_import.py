"""E-mail import speed, compared with notmuch and mu on the same input; memory; IDLE latency.

    .venv/bin/python bench/email_import.py [PATH] [--generated N] [--count 20000] [--jobs N] [--json]
    .venv/bin/python bench/email_import.py PATH --baseline /tmp/wt-old   # before/after in the same rounds
    .venv/bin/python bench/email_import.py --memory        # a 60 MB attachment; a 1 GB mbox

PATH is a Maildir (root with sub-folders, as mbsync/offlineimap keep it), an
mbox file, or a folder tree of raw message files (laid out as a Maildir here).
Without PATH a test Maildir is generated (seeded, so runs compare) with the mix
of a real mailbox (see bench/mail_gen.py); `--generated N` measures omnidesk on N
generated mails in the same run as PATH, so both figures compare.

The real corpus: the SpamAssassin public corpus (6,294 ham and spam mails of
2002, 38 MB of mail: mailing lists, HTML-only newsletters and spam, quoted
replies, a dozen charsets), as the ML_for_Hackers repository on GitHub keeps
it under 03-Classification/data (easy_ham, hard_ham, spam ... folders; the
`spam` folders are renamed so the import does not skip them as junk folders).

omnidesk's figure is parse + store + full-text index + attachments written to
disk, in the import's processes (CPU of the pool workers included), to
committed rows. `notmuch new` and `mu index` index the same files (an mbox is
first unpacked to a Maildir for them, untimed). The page cache is warmed for
all three first, and omnidesk's modules are compiled to bytecode first, as
`pip install` leaves them (a shell with PYTHONDONTWRITEBYTECODE=1 would
otherwise compile ~70 modules from source on every start: 0.2 s of CPU).
Peak memory is the largest import process's.

Mail the store does not take again is counted: "N stored, M duplicates by
Message-ID" (the same Message-ID with the same subject and text: a corpus
that holds one mail in two folders), and mails that share a Message-ID but
differ, which the store keeps (under the id plus a content hash).

`--baseline DIR` also runs omnidesk from another source tree (a git worktree
at the commit to compare with) in the same interleaved rounds, on the same
installed libraries: a before/after that load on a shared machine hits alike.

Figures: see README.md ("Performance"), measured with this script.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.mail_gen import generate, synthetic  # noqa: E402


def mbox_to_maildir(mbox_path: Path, root: Path) -> None:
    from connectors.email.bulk import mbox_tasks, read_task

    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, task in enumerate(mbox_tasks(mbox_path)):
        (root / "cur" / f"{i}.mbox.bench:2,S").write_bytes(read_task(task)[0])


def as_maildir(tree: Path, root: Path) -> Path:
    """A folder tree of raw message files (a corpus) laid out as a Maildir with one
    sub-folder per folder (hard links, so nothing is copied)."""
    if any(p.name in ("cur", "new") for p in tree.rglob("*") if p.is_dir()):
        return tree  # a Maildir already
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith((".", "cmds"))):
        folder = root / ("corpus-" + "-".join(path.relative_to(tree).parent.parts) or "corpus")
        (folder / "cur").mkdir(parents=True, exist_ok=True)
        (folder / "new").mkdir(exist_ok=True)
        target = folder / "cur" / f"{path.name}:2,S"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return root


def warm(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                total += len(f.read())
    return total


# -- the contenders ------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children (pool workers, notmuch, mu)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


# Runs a command and prints the peak RSS of its largest process (KB) on the last line.
MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
           " print(done.stdout); print(done.stderr[-2000:], file=sys.stderr); sys.stdout.flush();"
           " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def compile_bytecode(tree: Path) -> None:
    """omnidesk's modules compiled as `pip install` compiles them (untimed)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(tree / p) for p in ("console", "connectors", "store"))],
                   check=True, stdout=subprocess.DEVNULL)


def omnidesk_import(source: Path, db: Path, jobs: int | None, config: Path | None = None,
                    tree: Path | None = None) -> tuple[dict, float]:
    """`omnidesk import` in a process of its own: (its JSON report, peak RSS in MB).
    `tree`: run omnidesk's code from that source tree instead of the installed one."""
    exe = shutil.which("omnidesk", path=os.path.dirname(sys.executable)) or "omnidesk"
    cmd = [exe, "--db", str(db), *(["--config", str(config)] if config else []), "--json", "import",
           "mbox" if source.is_file() else "maildir", str(source), "--jobs", str(jobs or os.cpu_count())]
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree else None
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads("\n".join(lines[:-1])), int(lines[-1]) / 1024
    except (ValueError, IndexError):
        raise RuntimeError(f"omnidesk import failed: {done.stderr[-500:]}") from None


def duplicates(source: Path) -> dict:
    """Mails that share a Message-ID with an earlier one (`shared`), and mails without
    one whose bytes repeat an earlier one's (`same_bytes`): what an import may skip."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    from connectors.email.bulk import maildir_tasks, mbox_tasks, read_task
    from connectors.email.parse import bare_id, raw_id

    ids, hashes, shared, same_bytes = set(), set(), 0, 0
    tasks = mbox_tasks(source) if source.is_file() else maildir_tasks(source)
    for task in tasks:
        raw = read_task(task)[0]
        ident = bare_id(BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID"))
        if ident:
            shared += ident in ids
            ids.add(ident)
        else:
            same_bytes += raw_id(raw) in hashes
            hashes.add(raw_id(raw))
    return {"shared": shared, "same_bytes": same_bytes}


def stored_note(report: dict, dups: dict | None) -> str:
    """'6168 stored, 126 duplicates by Message-ID (88 mails share a Message-ID but differ: kept)'."""
    note = f"{report['added']} stored"
    skipped = report["messages"] - report["added"]
    if dups is None or not skipped:
        return note + (f", {skipped} already there" if skipped else "")
    by_id = skipped - dups["same_bytes"]
    note += f", {by_id} duplicates by Message-ID"
    if dups["same_bytes"]:
        note += f", {dups['same_bytes']} byte-identical copies without one"
    if dups["shared"] > by_id:
        note += f" ({dups['shared'] - by_id} mails share a Message-ID but differ: kept)"
    return note


def run_omnidesk(source: Path, work: Path, jobs: int | None, label: str = "", tree: Path | None = None,
                 dups: dict | None = None) -> dict:
    from store import Store

    t0, c0 = time.perf_counter(), cpu_seconds()
    report, peak = omnidesk_import(source, work / "omnidesk.db", jobs, tree=tree)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    store = Store(work / "omnidesk.db")
    t1 = time.perf_counter()
    hits = len(store.search("refund"))
    search_ms = (time.perf_counter() - t1) * 1000
    store.close()
    seen = report["messages"]
    return {"tool": f"omnidesk import ({jobs or os.cpu_count()} procs){label}", "messages": seen, "peak_mb": peak,
            "seconds": elapsed, "rate": seen / elapsed, "added": report["added"], "cpu": cpu,
            "note": f"{stored_note(report, dups)}, peak {peak:.0f} MB; search 'refund': {hits} hits in {search_ms:.0f} ms"}


def run_notmuch(maildir: Path, work: Path, count: int) -> dict:
    if not shutil.which("notmuch"):
        return {"tool": "notmuch new", "skipped": "notmuch is not installed (apt-get install notmuch)"}
    cfg = work / "notmuch-config"
    cfg.write_text(f"[database]\npath={work / 'notmuch-db'}\nmail_root={maildir}\n[new]\ntags=inbox;unread;\n"
                   f"[maildir]\nsynchronize_flags=false\n[user]\nname=Bench\nprimary_email=support@shop.test\n")
    env = {**os.environ, "NOTMUCH_CONFIG": str(cfg)}
    (work / "notmuch-db").mkdir()
    t0, c0 = time.perf_counter(), cpu_seconds()
    done = subprocess.run(["notmuch", "new", "--quiet"], env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if done.returncode:
        return {"tool": "notmuch new", "skipped": f"failed: {done.stderr.strip()[:300]}"}
    n = int(subprocess.run(["notmuch", "count", "--output=files", "*"], env=env, capture_output=True,
                           text=True).stdout.strip() or 0)
    return {"tool": "notmuch new", "messages": count, "seconds": elapsed, "rate": count / elapsed, "cpu": cpu,
            "note": f"{n} files indexed"}


def run_mu(maildir: Path, work: Path, count: int) -> dict:
    if not shutil.which("mu"):
        return {"tool": "mu index", "skipped": "mu is not installed (apt-get install maildir-utils)"}
    home = work / "mu"
    init = subprocess.run(["mu", "init", f"--muhome={home}", f"--maildir={maildir}"], capture_output=True, text=True)
    if init.returncode:
        return {"tool": "mu index", "skipped": f"mu init failed: {init.stderr.strip()[:300]}"}
    t0, c0 = time.perf_counter(), cpu_seconds()
    done = subprocess.run(["mu", "index", f"--muhome={home}", "--quiet"], capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if done.returncode:
        return {"tool": "mu index", "skipped": f"failed: {done.stderr.strip()[:300]}"}
    found = subprocess.run(["mu", "find", f"--muhome={home}", "--fields=l", ""], capture_output=True, text=True)
    n = len(found.stdout.splitlines())
    return {"tool": "mu index", "messages": count, "seconds": elapsed, "rate": count / elapsed, "cpu": cpu,
            "note": f"{n} messages indexed"}


def best_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if "skipped" not in r]
    if not ok:
        return runs[0]
    best = dict(min(ok, key=lambda r: r["seconds"]))
    best["all_rates"] = [round(r["rate"]) for r in ok]
    return best


# -- IDLE latency ---------------------------------------------------------------------
def idle_latency(samples: int, work: Path) -> dict:
    """Seconds from a finished IMAP APPEND (another client delivering) to the row in the store."""
    from connectors.base import OK
    from connectors.email import build
    from connectors.engine import Engine
    from store import Store
    from tests.support.dovecot import Dovecot

    server = Dovecot({"support": "bench-pw"})
    server.start()
    db = work / "idle.db"
    engine = Engine(db, [build("support", server.options("support"))], poll_interval=300.0)
    store = Store(db)
    latencies = []
    try:
        engine.start()
        deadline = time.monotonic() + 20
        while store.health().get("email:support", {}).get("state") != OK and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        for i in range(samples):
            raw = (f"From: Jane <jane@example.com>\r\nMessage-ID: <idle{i}@bench>\r\nSubject: idle probe {i}\r\n\r\n"
                   f"probe{i}x\r\n").encode()
            server.deliver("support", raw)
            t0 = time.monotonic()
            while not store.search(f"probe{i}x"):
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("a delivered message did not arrive within 30 s")
                time.sleep(0.005)
            latencies.append(time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        engine.stop()
        store.close()
        server.cleanup()
    return {"samples": len(latencies), "median_s": statistics.median(latencies), "max_s": max(latencies),
            "min_s": min(latencies)}


def memory(work: Path, jobs: int | None, gigabytes: float) -> dict:
    """Peak memory of `omnidesk import`: one mail with a 60 MB attachment, then an
    mbox of `gigabytes` (generated mail, every 200th with the 60 MB attachment)."""
    config = work / "config.toml"
    config.write_text("[attachments]\nmax_bytes = 104857600\n")  # keep the 60 MB files (default cap: 25 MB)
    big = work / "Big"
    for sub in ("cur", "new", "tmp"):
        (big / sub).mkdir(parents=True)
    attachment = base64.encodebytes(random.Random(1).randbytes(60 << 20)).replace(b"\n", b"\r\n")

    def big_mail(i: int) -> bytes:
        return (f"From: Jane Roe <jane@roe.example>\r\nMessage-ID: <big{i}@roe.example>\r\nSubject: photos {i}\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
                "Content-Type: text/plain\r\n\r\nThe photos.\r\n--b1\r\nContent-Type: application/zip; name=p.zip\r\n"
                "Content-Disposition: attachment; filename=p.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                ).encode() + attachment + b"--b1--\r\n"

    (big / "cur" / "1.big:2,S").write_bytes(big_mail(0))
    out = {}
    t0 = time.perf_counter()
    report, peak = omnidesk_import(big, work / "big.db", 1, config)
    out["attachment_60mb"] = {"peak_mb": peak, "seconds": time.perf_counter() - t0, "added": report["added"]}
    if gigabytes:
        mbox, rng, size, i = work / "big.mbox", random.Random(11), 0, 0
        customers = [(f"Customer {k}", f"c{k}@example{k % 13}.org") for k in range(2000)]
        with open(mbox, "wb") as f:
            while size < gigabytes * 1e9:
                raw = big_mail(i) if i % 200 == 199 else synthetic(rng, i, customers)
                raw = raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
                f.write(b"From bench@example.org Mon Nov 30 00:00:00 2026\n" + raw + b"\n")
                size += len(raw) + 50
                i += 1
        t0, c0 = time.perf_counter(), cpu_seconds()
        report, peak = omnidesk_import(mbox, work / "mbox.db", jobs, config)
        out["mbox"] = {"bytes": size, "messages": report["messages"], "added": report["added"], "peak_mb": peak,
                       "seconds": time.perf_counter() - t0, "cpu_ms": (cpu_seconds() - c0) * 1000 / report["messages"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="Maildir root, mbox file or folder of mail files (default: generate)")
    ap.add_argument("--count", type=int, default=20000, help="messages to generate when no PATH is given")
    ap.add_argument("--generated", type=int, default=0, help="with PATH: also measure omnidesk on N generated mails")
    ap.add_argument("--jobs", type=int, default=0, help="omnidesk parser processes (default: all cores)")
    ap.add_argument("--idle", type=int, default=0, help="IDLE latency samples against a local Dovecot (0: skip)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per tool; the best is reported (shared machines are noisy)")
    ap.add_argument("--baseline", type=Path, help="also run omnidesk from this source tree (before/after, same rounds)")
    ap.add_argument("--skip", default="", help="contenders to leave out, comma-separated (notmuch, mu)")
    ap.add_argument("--memory", action="store_true", help="measure peak memory instead (60 MB attachment, big mbox)")
    ap.add_argument("--mbox-gb", type=float, default=1.0, help="size of the generated mbox for --memory (0: skip)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="odbench"))
    try:
        if args.memory:
            compile_bytecode(ROOT)
            report = memory(work, args.jobs or None, args.mbox_gb)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                a = report["attachment_60mb"]
                print(f"  one mail with a 60 MB attachment: peak {a['peak_mb']:.0f} MB, {a['seconds']:.1f} s")
                if "mbox" in report:
                    m = report["mbox"]
                    print(f"  {m['bytes'] / 1e9:.2f} GB mbox, {m['messages']:,} mails: peak {m['peak_mb']:.0f} MB,"
                          f" {m['seconds']:.0f} s, CPU {m['cpu_ms']:.2f} ms/msg")
            return 0
        if args.path:
            source = Path(args.path).expanduser().resolve()
            if source.is_dir():
                source = as_maildir(source, work / "Corpus")
        else:
            source = work / "Mail"
            t0 = time.perf_counter()
            generate(source, args.count)
            print(f"generated {args.count} messages in {source} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
        generated = None
        if args.path and args.generated:
            generated = work / "Generated"
            generate(generated, args.generated)
            warm(generated)
        maildir = source
        if source.is_file():  # notmuch and mu read Maildirs only
            maildir = work / "from-mbox"
            mbox_to_maildir(source, maildir)
        size = warm(maildir)  # page cache warm for everyone
        if source.is_file():
            size = warm(source)
        from connectors.email.bulk import maildir_tasks

        files = len(maildir_tasks(maildir))
        compile_bytecode(ROOT)
        dups = duplicates(source)
        contenders = [("omnidesk", lambda w: run_omnidesk(source, w, args.jobs or None, dups=dups)),
                      ("notmuch", lambda w: run_notmuch(maildir, w, files)),
                      ("mu", lambda w: run_mu(maildir, w, files))]
        contenders = [c for c in contenders if c[0] not in args.skip.split(",")]
        if args.baseline:
            baseline = args.baseline.resolve()
            compile_bytecode(baseline)
            contenders.insert(0, ("baseline", lambda w: run_omnidesk(source, w, args.jobs or None,
                                                                     f", baseline {baseline.name}", baseline, dups)))
        if generated:
            contenders.append(("generated", lambda w: run_omnidesk(generated, w, args.jobs or None,
                                                                   f", {args.generated} generated mails")))
        runs: dict[str, list[dict]] = {name: [] for name, _ in contenders}
        for round_no in range(args.rounds):  # interleaved, so background load hits everyone alike
            for name, fn in contenders:
                print(f"round {round_no + 1}/{args.rounds}: {name} ...", file=sys.stderr)
                out = work / f"{name}-{round_no}"
                out.mkdir()
                runs[name].append(fn(out))
                shutil.rmtree(out, ignore_errors=True)
        results = [best_of(r) for r in runs.values()]
        idle = idle_latency(args.idle, work) if args.idle else None
        report = {"input": str(args.path or source), "bytes": size, "cores": os.cpu_count(), "results": results,
                  "idle": idle}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"input: {report['input']} ({size / 1e6:.1f} MB), {os.cpu_count()} cores")
            for r in results:
                if "skipped" in r:
                    print(f"  {r['tool']:<28} skipped: {r['skipped']}")
                else:
                    print(f"  {r['tool']:<28} {r['messages']:>7} msgs {r['seconds']:>7.2f} s {r['rate']:>8.0f} msg/s"
                          f"  CPU {r['cpu'] * 1000 / r['messages']:.2f} ms/msg"
                          f"  (all runs: {', '.join(map(str, r['all_rates']))} msg/s)"
                          + (f"  {r['note']}" if r.get("note") else ""))
            if idle:
                print(f"  IDLE latency (APPEND -> row in store), {idle['samples']} samples: median "
                      f"{idle['median_s'] * 1000:.0f} ms, min {idle['min_s'] * 1000:.0f} ms, max {idle['max_s'] * 1000:.0f} ms")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
