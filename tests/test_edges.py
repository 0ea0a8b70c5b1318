"""Bad input at the edges gets a clear error and changes nothing; files are
private by default and shared with a team on purpose (issue 15.5)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from store import Store
from tests.conftest import inbound

OMNIDESK = str(Path(sys.executable).parent / "omnidesk")
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin") or "runuser"
BAD = b"caf\xe9 \xff"  # Latin-1, not UTF-8: the bad byte is the 4th (offset 3)


def run(*args, input=None, env=None, user=None, cwd=None):
    cmd = [OMNIDESK, *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=60, env=env, cwd=cwd)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def desk(tmp_path):
    db = tmp_path / "desk.db"
    s = Store(db)
    cid = s.ingest(inbound("telegram", "4242", "hello", name="Ana")).customer_id
    s.close()
    return db, cid


def test_invalid_utf8_names_the_place_and_the_byte(tmp_path, desk):
    db, cid = desk
    note = run("--db", str(db), "note", str(cid), input=BAD)
    assert note.returncode == 1 and b"stdin: not valid UTF-8 at byte 3 (0xe9)" in note.stderr
    arg = run("--db", str(db), "note", str(cid), "-m", os.fsdecode(BAD))
    assert arg.returncode == 2 and b"argument 6" in arg.stderr and b"not valid UTF-8 at byte 3 (0xe9)" in arg.stderr
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b'[agent]\nname = "' + BAD + b'"\n')
    bad_cfg = run("--db", str(db), "--config", str(cfg), "queue")
    assert bad_cfg.returncode == 1 and f"{cfg}: not valid UTF-8 at byte 19 (0xe9)".encode() in bad_cfg.stderr
    cfg.write_text('[agent]\nname = "ann"\n')
    (tmp_path / "keybindings.toml").write_bytes(b"[global]\nquit = \"" + BAD + b"\"\n")
    keys = run("--db", str(db), "--config", str(cfg), "keys")
    assert keys.returncode == 1 and b"keybindings.toml: not valid UTF-8 at byte 20" in keys.stderr
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "latin.md").write_bytes(b"Hello " + BAD)
    tpl = run("--db", str(db), "--config", str(cfg), "reply", str(cid), "--template", "latin")
    assert tpl.returncode == 1 and b"latin.md: not valid UTF-8 at byte 9 (0xe9)" in tpl.stderr
    s = Store(db)
    assert [m.direction for m in s.timeline(cid)] == ["in"]  # nothing changed
    s.close()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300"])
def test_nan_inf_and_absurd_numbers_are_refused(tmp_path, value):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[sync]\nlease_seconds = {value}\n")
    r = run("--db", str(tmp_path / "x.db"), "--config", str(cfg), "queue")
    assert r.returncode == 1 and b"sync.lease_seconds: expected" in r.stderr
    cli = run("--db", str(tmp_path / "x.db"), "queue", "--limit", "0", "--offset", "-1")
    assert cli.returncode == 2 and b"--offset: expected a number from 0" in cli.stderr
    demo = run("demo", "--headless", "--speed", value)
    assert demo.returncode == 2 and b"--speed: expected" in demo.stderr


def test_a_read_only_store_reads_and_refuses_writes_saying_why(desk):
    db, cid = desk
    os.chmod(db, 0o400)
    queue = run("--db", str(db), "queue", "--filter", "all")
    assert queue.returncode == 0 and b"Ana" in queue.stdout
    note = run("--db", str(db), "note", str(cid), "-m", "hi")
    assert note.returncode == 1 and b"the store is read-only" in note.stderr and b"chmod u+w" in note.stderr
    assert mode(db) == 0o400  # not chmodded back
    os.chmod(db, 0o600)
    s = Store(db)
    assert [m.direction for m in s.timeline(cid)] == ["in"]
    s.close()


def test_a_file_we_did_not_create_keeps_its_mode(tmp_path):
    db = tmp_path / "mine.db"
    Store(db).close()
    os.chmod(db, 0o640)  # the owner's choice
    Store(db).close()
    assert mode(db) == 0o640


def test_new_files_and_directories_are_private(tmp_path):
    from console.commands.common import log_to_file

    db = tmp_path / "data" / "deeper" / "omnidesk.db"
    s = Store(db)
    s.ingest(inbound("telegram", "1", "photo", attachments=[__import__("store.models", fromlist=["x"]).AttachmentIn(
        "a.jpg", "image/jpeg", b"\xff\xd8" + b"x" * 100)]))
    s.close()
    assert mode(db) == 0o600
    assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "deeper") == 0o700
    files = Path(str(db) + ".files")
    assert mode(files) == 0o700
    assert all(mode(p) == (0o700 if p.is_dir() else 0o600) for p in files.rglob("*"))
    log = tmp_path / "logs" / "omnidesk.log"
    import logging
    before = logging.getLogger().handlers[:]
    try:
        log_to_file(log)
        logging.getLogger("omnidesk").warning("a line")
    finally:
        logging.getLogger().handlers[:] = before
    assert mode(log) == 0o600 and mode(log.parent) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_full_disk_says_disk_full(tmp_path, desk):
    mnt = Path(tempfile.mkdtemp(prefix="odfull"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db, cid = desk
        shutil.copy(db, mnt / "desk.db")
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'filler'}", "bs=64k"], capture_output=True)  # fills it
        note = run("--db", str(mnt / "desk.db"), "note", str(cid), input=b"x" * 3_000_000)
        assert note.returncode == 1 and b"disk full" in note.stderr, note.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
        shutil.rmtree(mnt, ignore_errors=True)


# -- a store for a team: two real Unix users ---------------------------------------------------
@pytest.fixture
def team():
    if os.geteuid() != 0:
        pytest.skip("creating Unix users needs root")
    group, users = f"odt{os.getpid() % 100000}", [f"oda{os.getpid() % 100000}", f"odb{os.getpid() % 100000}",
                                                 f"odx{os.getpid() % 100000}"]
    subprocess.run(["groupadd", group], check=True)
    try:
        for u in users:
            extra = ["-G", group] if u != users[2] else []  # the third is not in the team
            subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", *extra, u], check=True)
        yield group, users
    finally:
        for u in users:
            subprocess.run(["userdel", u], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def test_a_shared_store_gives_the_group_read_and_write_and_nobody_else(team, tmp_path):
    group, (alice, bob, outsider) = team
    base = Path(tempfile.mkdtemp(prefix="odshare"))
    os.chmod(base, 0o755)
    # the system Python of the same version runs as the other users (ours lives under /root)
    python = shutil.which("python3.11", path="/usr/bin")
    if python is None:
        pytest.skip("no /usr/bin/python3.11 for the other users")
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    root = Path(__file__).resolve().parent.parent
    if not all(os.access(p, os.R_OK | os.X_OK) for p in (root, site)):
        pytest.skip("the checkout is not readable by other users")

    def as_user(user, *args, input=None):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{root}:{site}", "HOME": str(base),
               "XDG_CONFIG_HOME": str(base / f"cfg-{user}"), "LANG": "C.UTF-8"}
        return subprocess.run([RUNUSER, "-u", user, "--", python, "-m", "console.cli", *args], env=env,
                              input=input, capture_output=True, timeout=60, cwd=base)
    try:
        db = base / "team" / "desk.db"
        cfg = base / "team-config.toml"
        init = run("--db", str(db), "--config", str(cfg), "init", "--shared", group, "--yes")
        assert init.returncode == 0, init.stderr
        assert f'group = "{group}"' in cfg.read_text()
        assert mode(db.parent) == 0o2770 and os.stat(db.parent).st_gid == __import__("grp").getgrnam(group).gr_gid
        assert mode(db) == 0o660
        # alice's message arrives (with an attachment) through her session; bob works on it
        code = (f"from store import Store; from store.models import AttachmentIn; from tests.conftest import inbound;"
                f"s = Store({str(db)!r}); s.ingest(inbound('telegram', '77', 'my photo', name='Cy', attachments="
                f"[AttachmentIn('p.jpg', 'image/jpeg', b'x' * 50)])); s.close()")
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{root}:{site}", "HOME": str(base)}
        ingest = subprocess.run([RUNUSER, "-u", alice, "--", python, "-c", code], env=env, capture_output=True,
                                timeout=60, cwd=base)
        assert ingest.returncode == 0, ingest.stderr
        note = as_user(bob, "--db", str(db), "note", "telegram:77", "-m", "checked the photo")
        assert note.returncode == 0, note.stderr
        shown = as_user(alice, "--db", str(db), "--json", "show", "telegram:77")
        assert shown.returncode == 0, shown.stderr
        assert f'"author": "{bob}"'.encode() in shown.stdout  # each console's agent is its login name
        for p in [db, Path(f"{db}-wal"), Path(f"{db}-shm")]:
            if p.exists():
                assert mode(p) == 0o660 and os.stat(p).st_gid == os.stat(db.parent).st_gid, p
        files = Path(f"{db}.files")
        for p in [files, *files.rglob("*")]:
            assert mode(p) == (0o2770 if p.is_dir() else 0o660), p
        # nobody else
        denied = as_user(outsider, "--db", str(db), "queue", "--filter", "all")
        assert denied.returncode == 1 and b"cannot open the store" in denied.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
