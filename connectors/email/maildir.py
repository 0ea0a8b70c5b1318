"""Local Maildir in, a sendmail-compatible command out.

For people who already sync their mail with mbsync or offlineimap: we read the
Maildir they keep and send with `msmtp -t` (or any `sendmail -t` work-alike).

A Maildir has no UIDs. The cursor per folder is the ctime of the last file
read: delivery and every later rename (new/ -> cur/, flag changes) bump a
file's ctime, so nothing new is far behind the cursor; files stamped within a
couple of seconds before it are checked again (timestamps are coarse). A file
read twice is dropped by the store (same Message-ID), so nothing doubles.
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from connectors.base import BaseConnector, Batch, ConnectorError, PermanentError, UncertainError
from connectors.email import backlog
from connectors.email import compose as compose_mod
from connectors.email.parse import parse
from store.models import OutboundMessage, Receipt

log = logging.getLogger("omnidesk.email")
POLL = 0.25  # seconds between looks at the folders while waiting
SLACK_NS = 2_000_000_000  # file times this close to the cursor are checked again
# sendmail exit codes (sysexits.h) that retrying cannot fix
PERMANENT_EXITS = {64: "usage", 65: "data error", 67: "unknown user", 68: "unknown host", 77: "permission denied",
                   78: "configuration error"}


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def folder_path(root: Path, folder: str) -> Path | None:
    """mbsync keeps folders as plain subdirectories (often INBOX/), offlineimap
    and Maildir++ as dot-directories; the root itself is the inbox."""
    candidates = [root / folder, root / f".{folder}"]
    if folder.upper() == "INBOX":
        candidates = [root / folder, root]
    return next((p for p in candidates if is_maildir(p)), None)


def message_files(path: Path) -> list[tuple[int, str, Path]]:
    """(ctime_ns, name, path) for every message in a Maildir folder."""
    out = []
    for sub in ("new", "cur"):
        try:
            entries = os.scandir(path / sub)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # renamed by the mail syncer meanwhile
                    continue
                out.append((st.st_ctime_ns, entry.name, Path(entry.path)))
    return out


_DELIVERY_TIME = re.compile(r"(\d{9,10})\.")  # Maildir file names start with the delivery time


def delivered_at(name: str, mtime: float) -> float:
    """When a Maildir message was delivered, for mail without Date and Received
    headers: the time its file name starts with (as delivery agents write it), else
    the file's mtime (a copied or synced file's mtime is often just now)."""
    named = _DELIVERY_TIME.match(name)
    return float(named[1]) if named and 0 < int(named[1]) <= mtime else mtime


def unique_name(name: str) -> str:
    """The part of a Maildir file name that survives flag changes."""
    return re.split(r"[:!]2,", name, maxsplit=1)[0]


class MaildirConnector(BaseConnector):
    channel = "email"

    def __init__(self, account: str, options: dict):
        super().__init__(account)
        self.options = options
        self.root = Path(os.path.expanduser(options["maildir"]))
        self.folders: list[str] = list(options["folders"]) or ["INBOX"]
        self.chunk = options["fetch_chunk"]
        self._stamp: tuple = ()
        self._recent: dict[str, set] = {}  # folder -> {(ctime_ns, name)} read within SLACK of the cursor
        self._handed_out: dict | None = None
        self._own = (options.get("from_address") or options.get("username") or "").lower()

    def _path(self, folder: str) -> Path:
        path = folder_path(self.root, folder)
        if path is None:
            if not self.root.exists():
                raise ConnectorError(f"Maildir {self.root} does not exist (not mounted or not synced yet?)")
            raise PermanentError(f"Maildir {self.root}: no folder {folder!r}")
        return path

    def probe(self) -> str:
        """A live check for `omnidesk doctor`: the Maildir root and folders are
        there and readable, and the sendmail command's program is on PATH."""
        for folder in self.folders:
            path = self._path(folder)
            for sub in ("new", "cur"):
                if (path / sub).is_dir() and not os.access(path / sub, os.R_OK | os.X_OK):
                    raise PermanentError(f"Maildir {path / sub}: not readable (permission denied)")
        program = self._program()
        found = shutil.which(program)
        if not found:
            raise PermanentError(f"sendmail_command: {program!r} not found")
        self._check_msmtp(found)
        return f"Maildir {self.root}, folders {', '.join(self.folders)}; sends with {found}"

    def _check_msmtp(self, found: str) -> None:
        """msmtp on PATH is not msmtp set up: without --host its account comes from a
        config file, and without one every send fails (exit 78). `--pretend` reads the
        config as a send would, sends nothing."""
        command = shlex.split(self.options["sendmail_command"])
        if os.path.basename(found) != "msmtp" or any(a == "--host" or a.startswith("--host=") for a in command):
            return
        args = [a for a in command[1:] if a not in ("-t", "--read-recipients", "--read-envelope-from")]
        try:
            done = subprocess.run([found, *args, "--pretend"], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PermanentError(f"sendmail_command: msmtp --pretend failed ({e})") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.startswith("msmtp:")] or ["no account"]
            why = lines[-1].removeprefix("msmtp:").strip()[:200]
            raise PermanentError(f"sendmail_command: msmtp is not set up ({why}): write ~/.msmtprc with an account"
                                 " (https://marlam.de/msmtp/msmtp.html#Configuration-files), or give the server"
                                 " in the command: msmtp --host=smtp.example.com ... -t")

    def _program(self) -> str:
        try:
            command = shlex.split(self.options["sendmail_command"])
        except ValueError as e:
            raise PermanentError(f"sendmail_command: cannot be parsed ({e})") from None
        if not command:
            raise PermanentError("sendmail_command: empty; e.g. \"msmtp -t\"")
        return command[0]

    def _dir_stamp(self) -> tuple:
        stamp = []
        for folder in self.folders:
            path = folder_path(self.root, folder)
            for sub in ("new", "cur"):
                try:
                    stamp.append((path / sub).stat().st_mtime_ns if path else None)
                except OSError:
                    stamp.append(None)
        return tuple(stamp)

    def fetch(self, cursor: dict[str, str]) -> Batch:
        self._stamp = self._dir_stamp()  # before scanning, so a change during the scan still wakes wait()
        # What we read in the last batch counts only if the engine stored it (it hands our cursor back)
        recent = self._recent if cursor == self._handed_out else {}
        out, items, budget, more = dict(cursor), [], self.chunk, False
        for folder in self.folders:
            path = self._path(folder)
            mark_ns = cursor.get(folder, "0:").partition(":")[0]
            mark = int(mark_ns) if mark_ns.isdigit() else 0
            seen = recent.get(folder, set())
            first_read = backlog.first_read(cursor, out, folder, time.time())
            # File times are coarse (a few ms): files stamped up to SLACK before the mark
            # may still be new, so they are looked at again unless we just read them.
            files = sorted(f for f in message_files(path) if f[0] >= mark - SLACK_NS and f[:2] not in seen)
            take = files[:budget]
            for ctime_ns, name, file in take:
                try:
                    raw = file.read_bytes()
                    mtime = file.stat().st_mtime
                except FileNotFoundError:
                    continue  # renamed meanwhile: it shows up under its new name
                item = parse(raw, self.account, fallback_time=delivered_at(name, mtime),
                             meta={"folder": folder, "maildir_key": unique_name(name)}, own_address=self._own)
                if self._own and item.sender.address == self._own:
                    item.meta["ours"] = True  # our own mail: filed as our reply (once)
                # A file that was there at the first read, dated (a mail syncer gives
                # old mail fresh file times) long before it.
                if (first_read is not None and ctime_ns < first_read * 1e9
                        and backlog.is_backlog(item.sent_at, first_read, self.options["backlog_days"])):
                    item.meta["backlog"] = True
                items.append(item)
            if take:
                mark = max(mark, take[-1][0])
                out[folder] = f"{mark}:{take[-1][1]}"
            recent[folder] = {k for k in seen | {t[:2] for t in take} if k[0] >= mark - SLACK_NS}
            budget -= len(take)
            if len(files) > len(take) or (budget <= 0 and folder != self.folders[-1]):
                more = True
                break
        self._recent, self._handed_out = recent, out
        return Batch(items, out, more)

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            if self._dir_stamp() != self._stamp:
                return
            stop.wait(min(POLL, max(0.0, deadline - time.monotonic())))

    # -- outbound -----------------------------------------------------------------
    def send(self, message: OutboundMessage) -> Receipt:
        msg, message_id = compose_mod.compose(message, self.options)
        raw = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))  # local files and sendmail want LF
        self._sendmail(raw)
        meta = {"message_id": f"<{message_id}>",
                "references": [f"<{r}>" for r in compose_mod.threading_headers(message)[1]]}
        # delivered: bookkeeping below must not raise, or the reply would be sent twice
        try:
            if self.options["sent_folder"]:
                self._store_sent(raw)
            key = (message.parent.meta or {}).get("maildir_key") if message.parent else None
            if key:
                self._mark_answered(message.parent.meta.get("folder", "INBOX"), key)
        except Exception as e:  # noqa: BLE001
            log.warning("Maildir %s: bookkeeping after sending failed: %s", self.root, e)
            meta["sent_copy_error"] = f"{type(e).__name__}: {e}"[:300]
        return Receipt(external_id=message_id, meta=meta)

    def _sendmail(self, raw: bytes) -> None:
        command = shlex.split(self.options["sendmail_command"])
        try:
            done = subprocess.run(command, input=raw, capture_output=True, timeout=self.options["timeout"] * 4)
        except FileNotFoundError:
            raise PermanentError(f"sendmail_command: {command[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            # it may have queued the message before hanging: never send it blindly again
            raise UncertainError(f"sendmail_command: {command[0]} did not finish in time") from None
        if done.returncode:
            err = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
            detail = f"{command[0]} exited with status {done.returncode}" + (f": {err}" if err else "")
            if done.returncode in PERMANENT_EXITS:
                raise PermanentError(f"{detail} ({PERMANENT_EXITS[done.returncode]})")
            raise ConnectorError(detail)

    def _store_sent(self, raw: bytes) -> None:
        folder = self.options["sent_folder"]
        path = folder_path(self.root, folder)
        if path is None:  # follow the layout the inbox uses
            path = self.root / (folder if (self.root / "INBOX").is_dir() else f".{folder}")
            for sub in ("tmp", "new", "cur"):
                (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns()}.{os.getpid()}_{threading.get_ident()}.{socket.gethostname().replace('/', '_')}"
        tmp = path / "tmp" / name
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.rename(tmp, path / "cur" / f"{name}:2,S")

    def _mark_answered(self, folder: str, key: str) -> None:
        path = folder_path(self.root, folder)
        if path is None:
            return
        for ctime_ns, name, file in message_files(path):
            if unique_name(name) != key:
                continue
            info = name[len(key) + 3:] if name[len(key):len(key) + 3] in (":2,", "!2,") else ""
            flags = "".join(sorted(set(info) | {"R"}))
            file.rename(path / "cur" / f"{key}:2,{flags}")
            return
