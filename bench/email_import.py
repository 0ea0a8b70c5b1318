"""E-mail import speed, compared with notmuch and mu on the same input; IDLE latency.

    .venv/bin/python bench/email_import.py [PATH] [--count 20000] [--jobs N] [--idle 20] [--json]

PATH is a Maildir (root with sub-folders, as mbsync/offlineimap keep it) or an
mbox file. Without PATH a realistic test Maildir is generated (seeded, so runs
compare): customers writing in several charsets, HTML alternatives, quoted
replies, signatures, attachments, plus the shared MIME corpora with fresh
Message-IDs.

omnidesk's figure is parse + store + full-text index (FTS5 triggers) +
attachments written to disk, from cold process start to committed rows.
`notmuch new` and `mu index` index the same files (an mbox is first unpacked to
a Maildir for them, untimed). The page cache is warmed for all three first.

Measured 2026-11-25 on the 2-core dev VM, 20,000 generated messages (83 MB),
best of 3 interleaved rounds, other sessions' tests running alongside:
    omnidesk import   3265-3664 msg/s   0.48 ms CPU/msg (parse, store, FTS, attachments to disk)
    mu index          2428-2588 msg/s   0.53-0.57 ms CPU/msg
    notmuch new       1111-1139 msg/s   0.87-0.90 ms CPU/msg
    IMAP IDLE latency (Dovecot APPEND done -> row in the store): median 0.51 s, max 0.52 s
    (Dovecot itself batches IDLE notifications for about half a second)
"""
from __future__ import annotations

import argparse
import email.base64mime
import email.header
import email.utils
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
CORPORA = ROOT.parent / "shared" / "corpora"

FIRST = ["Jane", "Bob", "Ana", "Luis", "Mia", "Noah", "Olga", "Pierre", "Sven", "Yuki", "Chen", "Fatima", "Jürgen",
         "Zoë", "Иван", "Мария", "Ahmed", "Priya", "Tomás", "Ewa"]
LAST = ["Roe", "Li", "Silva", "García", "Müller", "Dubois", "Novak", "Kowalska", "Tanaka", "Smith", "Petrov",
        "Hansen", "Rossi", "Khan", "O'Brien", "Nguyen"]
WORDS = ("order delivery parcel broken refund invoice address shipping tracking number please thanks help "
         "question size colour color replacement return label arrived yesterday today week still waiting box "
         "damaged wrong item missing payment card charged twice discount code account password login update "
         "cancel subscription email phone store opening hours warranty repair receipt photo attached").split()
SUBJECTS = ["Order #{n} arrived broken", "Where is my parcel {n}?", "Invoice for order {n}", "Refund request",
            "Wrong size (order {n})", "Question about delivery", "Payment charged twice", "Cancel my subscription",
            "Warranty repair", "Discount code not working"]


# -- input generation -------------------------------------------------------------
def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _paragraphs(rng: random.Random) -> str:
    paras = []
    for _ in range(rng.randint(1, 4)):
        sentences = [_words(rng, rng.randint(5, 16)).capitalize() + "." for _ in range(rng.randint(1, 4))]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def _header(value: str) -> str:
    return email.header.Header(value, "utf-8").encode() if not value.isascii() else value


def synthetic(rng: random.Random, i: int, customers: list[tuple[str, str]]) -> bytes:
    name, addr = rng.choice(customers)
    subject = rng.choice(SUBJECTS).format(n=rng.randint(1000, 99999))
    body = f"Hello,\n\n{_paragraphs(rng)}\n\nBest regards,\n{name}\n"
    headers = [f"From: {_header(name)} <{addr}>", "To: Shop Support <support@shop.test>",
               f"Message-ID: <bench{i}.{rng.getrandbits(32):x}@mail.example.org>",
               f"Date: {email.utils.formatdate(1_600_000_000 + i * 37)}", "MIME-Version: 1.0",
               "Received: from mx.example.org by mail.shop.test; " + email.utils.formatdate(1_600_000_000 + i * 37)]
    kind = rng.random()
    if kind < 0.3:  # a reply with the quoted history below
        parent = f"<bench{max(0, i - rng.randint(1, 50))}@mail.example.org>"
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
        subject = "Re: " + subject
        quoted = "\n".join("> " + line for line in _paragraphs(rng).splitlines())
        body += f"\nOn Mon, 2 Mar 2026 at 10:{i % 60:02d}, Shop Support <support@shop.test> wrote:\n{quoted}\n"
    headers.append(f"Subject: {_header(subject)}")
    if kind < 0.55:
        charset = rng.choice(["utf-8", "utf-8", "iso-8859-1"]) if body.encode("latin-1", "ignore").decode("latin-1") == body else "utf-8"
        payload = body.encode(charset, "replace")
        headers += [f'Content-Type: text/plain; charset="{charset}"', "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + payload.replace(b"\n", b"\r\n")
    boundary = f"=_b{rng.getrandbits(48):x}"
    html = "<html><body>" + "".join(f"<p>{p}</p>" for p in body.split("\n\n")) + "</body></html>"
    alt = (f"--{boundary}a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"{body}\r\n--{boundary}a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}a--\r\n")
    if kind < 0.9:
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}a"')
        return ("\r\n".join(headers) + "\r\n\r\n" + alt).encode()
    data = email.base64mime.body_encode(rng.randbytes(rng.randint(2_000, 40_000)))
    headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}m"')
    text = (f"--{boundary}m\r\nContent-Type: multipart/alternative; boundary=\"{boundary}a\"\r\n\r\n{alt}"
            f"--{boundary}m\r\nContent-Type: image/jpeg; name=\"photo {i}.jpg\"\r\n"
            f"Content-Disposition: attachment; filename=\"photo {i}.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{data}\r\n--{boundary}m--\r\n")
    return ("\r\n".join(headers) + "\r\n\r\n" + text).encode()


def corpus_copy(raw: bytes, i: int) -> bytes:
    """A corpus message with a fresh Message-ID (the old one is renamed, not removed)."""
    head, sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    head = head.replace(b"\nMessage-ID:", b"\nX-Old-Message-ID:").replace(b"\nMessage-Id:", b"\nX-Old-Message-ID:")
    return b"Message-ID: <corpus" + str(i).encode() + b"@bench.example.org>\n" + head + sep + body


def generate(root: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    customers = []
    for k in range(max(50, count // 8)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        customers.append((f"{first} {last}", f"{first.lower()}.{k}@example{k % 17}.org".encode("ascii", "ignore").decode()))
    corpus = [p.read_bytes() for p in sorted(CORPORA.rglob("*.eml"))] if CORPORA.exists() else []
    folders = [root / "INBOX", root / "Archive"]
    for f in folders:
        for sub in ("cur", "new", "tmp"):
            (f / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        raw = corpus_copy(corpus[i % len(corpus)], i) if corpus and i % 10 == 0 else synthetic(rng, i, customers)
        folder = folders[0] if i % 4 else folders[1]
        sub, flags = ("new", "") if i % 7 == 0 else ("cur", ":2,S")
        (folder / sub / f"{1_600_000_000 + i}.M{i}P1.bench{flags}").write_bytes(raw)


def mbox_to_maildir(mbox_path: Path, root: Path) -> None:
    from connectors.email.bulk import mbox_tasks, read_task

    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, task in enumerate(mbox_tasks(mbox_path)):
        (root / "cur" / f"{i}.mbox.bench:2,S").write_bytes(read_task(task)[0])


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


def run_omnidesk(source: Path, work: Path, jobs: int | None) -> dict:
    from connectors.email import bulk
    from store import Store

    t0, c0 = time.perf_counter(), cpu_seconds()
    tasks = bulk.mbox_tasks(source) if source.is_file() else bulk.maildir_tasks(source)
    store = Store(work / "omnidesk.db")
    stats = bulk.import_into(store, tasks, "bench", workers=jobs)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    t1 = time.perf_counter()
    hits = len(store.search("refund"))
    search_ms = (time.perf_counter() - t1) * 1000
    store.close()
    return {"tool": f"omnidesk import ({jobs or os.cpu_count()} procs)", "messages": stats.seen,
            "seconds": elapsed, "rate": stats.seen / elapsed, "added": stats.added, "cpu": cpu,
            "note": f"{stats.added} stored; search 'refund': {hits} hits in {search_ms:.0f} ms"}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="Maildir root or mbox file (default: generate one)")
    ap.add_argument("--count", type=int, default=20000, help="messages to generate when no PATH is given")
    ap.add_argument("--jobs", type=int, default=0, help="omnidesk parser processes (default: all cores)")
    ap.add_argument("--idle", type=int, default=10, help="IDLE latency samples against a local Dovecot (0: skip)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per tool; the best is reported (shared machines are noisy)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="odbench"))
    try:
        if args.path:
            source = Path(args.path).expanduser().resolve()
        else:
            source = work / "Mail"
            t0 = time.perf_counter()
            generate(source, args.count)
            print(f"generated {args.count} messages in {source} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
        maildir = source
        if source.is_file():  # notmuch and mu read Maildirs only
            maildir = work / "from-mbox"
            mbox_to_maildir(source, maildir)
        size = warm(maildir)  # page cache warm for everyone
        if source.is_file():
            size = warm(source)
        from connectors.email.bulk import maildir_tasks

        files = len(maildir_tasks(maildir))
        contenders = (("omnidesk", lambda w: run_omnidesk(source, w, args.jobs or None)),
                      ("notmuch", lambda w: run_notmuch(maildir, w, files)),
                      ("mu", lambda w: run_mu(maildir, w, files)))
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
        report = {"input": str(source), "bytes": size, "cores": os.cpu_count(), "results": results, "idle": idle}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"input: {source} ({size / 1e6:.1f} MB), {os.cpu_count()} cores")
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
