"""Importing big mail in bounded memory (issue 19.3): attachments stream to disk."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from store import Store

MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
           " print(done.stdout); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def big_mail(data: bytes, ident: str) -> bytes:
    body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (f"From: Jane Roe <jane@roe.example>\r\nMessage-ID: <{ident}@roe.example>\r\nSubject: the photos\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nAll the photos of the broken vase.\r\n--b1\r\n"
            "Content-Type: application/zip; name=photos.zip\r\nContent-Disposition: attachment; filename=photos.zip\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + body + b"--b1--\r\n"


@pytest.mark.slow
def test_a_60_mb_attachment_imports_in_bounded_memory(tmp_path):
    data = os.urandom(60 << 20)
    maildir = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    raw = big_mail(data, "big")
    (maildir / "cur" / "1.big:2,S").write_bytes(raw)
    config = tmp_path / "config.toml"
    config.write_text("[attachments]\nmax_bytes = 104857600\n")
    db = tmp_path / "o.db"
    omnidesk = shutil.which("omnidesk", path=os.path.dirname(sys.executable))
    out = subprocess.run([sys.executable, "-c", MEASURE, omnidesk, "--db", str(db), "--config", str(config),
                          "--json", "import", "maildir", str(maildir), "--jobs", "1"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    peak_mb = int(out[-1]) / 1024
    assert json.loads("\n".join(out[:-1]))["added"] == 1
    assert peak_mb < 256, f"peak RSS {peak_mb:.0f} MB"  # was 596 MB: the file, its base64 and copies in memory
    store = Store(db, attachments_dir=str(db) + ".files")
    message_id = store.q1("SELECT id FROM messages")[0]
    assert store.raw_source(message_id) == raw  # the original, byte for byte
    (att,) = store.message(message_id).attachments
    assert att.filename == "photos.zip" and att.size == len(data)
    with open(att.path, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    assert not list((db.parent / "o.db.files" / "spool").iterdir())  # nothing left behind
    store.close()


def test_an_mbox_is_scanned_in_chunks_not_mapped(tmp_path, monkeypatch):
    """A 1 GB mbox is read in pieces to find its messages; "From " lines that straddle
    two pieces are found all the same, and each message reads back whole."""
    from connectors.email import bulk

    monkeypatch.setattr(bulk, "SCAN_CHUNK", 7)  # every "From " line straddles a piece boundary somewhere
    mbox = tmp_path / "big.mbox"
    mails = [b"From jane@roe.example Mon Nov 30 00:00:00 2026\nSubject: order %d\n\nline %d\n>From here\n\n" % (i, i)
             for i in range(40)]
    mbox.write_bytes(b"".join(mails))
    tasks = bulk.mbox_tasks(mbox)
    assert [bulk.read_task(t)[0] for t in tasks] == [b"Subject: order %d\n\nline %d\nFrom here\n" % (i, i)
                                                    for i in range(40)]
