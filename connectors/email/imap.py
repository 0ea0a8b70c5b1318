"""IMAP in (imapclient), SMTP out (stdlib), one account.

Cursor: one entry per folder, "UIDVALIDITY:last UID". A changed UIDVALIDITY
means the server renumbered the folder: we start that folder over, and the
store drops what it already has (external id = Message-ID, or a hash of the
bytes when there is none), so a resync doubles nothing.

Threads: the engine calls fetch/wait from its poller thread and send from its
outbox thread. fetch and send share the main connection under a lock; IDLE
runs on a second connection so a long IDLE never blocks a reply.
"""
from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from connectors.base import BaseConnector, Batch, ConnectorError, PermanentError
from connectors.schema import ConfigError
from connectors.secrets import resolve_secret
from connectors.email import backlog
from connectors.email import compose as compose_mod
from connectors.email import smtp
from connectors.email.parse import parse
from store.models import OutboundMessage, Receipt

log = logging.getLogger("omnidesk.email")
IDLE_SLICE = 0.25  # seconds between checks of the stop flag while idling
MAX_BATCH_BYTES = 32 * 1024 * 1024  # mail held in memory per fetch, whatever fetch_chunk says
IDLE_MAX = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30 minute timeout
NET_ERRORS = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, EOFError)


class ImapConnector(BaseConnector):
    channel = "email"

    def __init__(self, account: str, options: dict):
        super().__init__(account)
        self.options = options
        self.folders: list[str] = list(options["folders"])
        self.chunk = options["fetch_chunk"]
        self._password: str | None = None
        self._lock = threading.RLock()  # guards the main connection
        self._client: IMAPClient | None = None
        self._idler: IMAPClient | None = None
        self._seen: dict[str, tuple[int, int]] = {}  # folder -> (uidvalidity, last uid handed out)
        self._own = (options.get("from_address") or options.get("username") or "").lower()

    # -- connections ------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"IMAP {self.options['imap_host']}"

    def secrets(self) -> list[str]:
        return [self._password] if self._password else []

    def password(self) -> str | None:
        if self._password is None:
            try:
                self._password = resolve_secret(self.options, "password", f"email.{self.account}")
            except ConfigError as e:
                raise PermanentError(str(e)) from None
        return self._password

    def _connect(self) -> IMAPClient:
        o = self.options
        security = o["imap_security"]
        port = o["imap_port"] or (993 if security == "tls" else 143)
        ctx = smtp.tls_context(o) if security != "plain" else None
        password = self.password() or ""  # a missing secret fails before a connection is opened
        try:
            client = IMAPClient(o["imap_host"], port=port, ssl=security == "tls", ssl_context=ctx,
                                timeout=o["timeout"])
        except ssl.SSLCertVerificationError as e:
            raise PermanentError(f"{self.where}:{port}: certificate not trusted ({e.verify_message}); "
                                 "set ca_file for a private CA") from None
        except NET_ERRORS as e:
            raise ConnectorError(f"{self.where}:{port}: cannot connect ({type(e).__name__}: {e})") from None
        try:
            client.normalise_times = False  # timezone-aware INTERNALDATE
            if security == "starttls":
                client.starttls(ctx)
            client.login(o["username"], password)
        except ssl.SSLCertVerificationError as e:
            _quietly(client.shutdown)
            raise PermanentError(f"{self.where}:{port}: certificate not trusted ({e.verify_message}); "
                                 "set ca_file for a private CA") from None
        except LoginError as e:
            _quietly(client.shutdown)
            detail = _text(e, self._password)
            self._password = None  # re-read the secret next time: the user may have fixed it
            raise PermanentError(f"{self.where}: login failed for {o['username']} ({detail})") from None
        except NET_ERRORS as e:
            _quietly(client.shutdown)
            raise ConnectorError(f"{self.where}: {type(e).__name__}: {_text(e, self._password)}") from None
        return client

    def probe(self) -> str:
        """A live check for `omnidesk doctor`: IMAP login and folders, then SMTP
        login. Nothing is sent, read or changed."""
        o = self.options
        port = o["imap_port"] or (993 if o["imap_security"] == "tls" else 143)
        client = self._connect()
        note = ""
        try:
            for folder in self.folders:
                self._select(client, folder, readonly=True)
            sent = o["sent_folder"]
            if sent and not client.folder_exists(sent):
                note = (f"; note: sent_folder {sent!r} does not exist, the first reply creates it "
                        "(name your Sent folder, or set sent_folder = \"\" if the provider keeps its own copy)")
        except NET_ERRORS as e:
            raise ConnectorError(f"{self.where}: {type(e).__name__}: {_text(e, self._password)}") from None
        finally:
            _quietly(client.logout)
        sending = smtp.check(o, self.password())
        return f"{self.where}:{port} as {o['username']}, folders {', '.join(self.folders)}; {sending}{note}"

    def _main(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            _quietly(self._client.shutdown)
            self._client = None

    # -- inbound ------------------------------------------------------------------
    def fetch(self, cursor: dict[str, str]) -> Batch:
        with self._lock:
            return self._on_main(self._fetch, cursor)

    def _on_main(self, fn, *args):
        """Run fn on the main connection. Servers drop connections that sat idle
        (ours does while IDLE runs on the other one): a reused connection that
        fails gets one fresh retry before anything counts as a channel problem."""
        reused = self._client is not None
        try:
            return fn(*args)
        except (ConnectorError, PermanentError):
            self._drop()
            raise
        except NET_ERRORS as e:
            self._drop()
            if reused:
                log.info("%s: connection went stale (%s); reconnecting", self.where, _text(e, self._password))
                return self._on_main(fn, *args)
            raise ConnectorError(f"{self.where}: {type(e).__name__}: {_text(e, self._password)}") from None

    def _fetch(self, cursor: dict[str, str]) -> Batch:
        client = self._main()
        out = dict(cursor)
        items, budget, more = [], self.chunk, False
        for index, folder in enumerate(self.folders):
            info = self._select(client, folder, readonly=True)
            validity = int(info[b"UIDVALIDITY"])
            saved_validity, _, saved_last = cursor.get(folder, "").partition(":")
            last = int(saved_last) if saved_validity == str(validity) and saved_last.isdigit() else 0
            if saved_validity and saved_validity != str(validity):
                log.warning("%s %s: UIDVALIDITY changed; re-reading the folder (duplicates are dropped)",
                            self.where, folder)
            uidnext = int(info.get(b"UIDNEXT") or 0)
            uids = [] if uidnext and uidnext <= last + 1 else \
                sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)  # n:* always matches the top
            take = self._within_size(client, uids[:budget])
            first_read = self._backlog_mark(cursor, out, folder, validity, uidnext)
            if take:
                items.extend(self._download(client, folder, validity, take, first_read))
                last = take[-1]
            if uidnext and len(take) == len(uids):
                # UIDs below UIDNEXT that are not there now were expunged and never come back;
                # later arrivals get UIDs >= the UIDNEXT seen at SELECT
                last = max(last, uidnext - 1)
            out[folder] = f"{validity}:{last}"
            self._seen[folder] = (validity, last)
            budget -= len(take)
            if len(uids) > len(take) or (budget <= 0 and index < len(self.folders) - 1):
                more = True
                break
        return Batch(items, out, more)

    @staticmethod
    def _backlog_mark(cursor: dict, out: dict, folder: str, validity: int, uidnext: int) -> tuple[float, int] | None:
        """(first read, UIDNEXT then) of a folder, recorded on its first read: only
        mail that was there by then (UID below it) can be backlog. Mail moved in
        later (say, out of Junk) keeps its old INTERNALDATE but gets a new UID."""
        key = f"{folder}#backlog_below"
        fresh = folder not in cursor and f"{folder}#first_read" not in cursor
        first = backlog.first_read(cursor, out, folder, time.time())
        if fresh and uidnext:
            out[key] = f"{validity}:{uidnext}"
        saved_validity, _, below = (cursor.get(key) or out.get(key) or "").partition(":")
        if first is None or saved_validity != str(validity) or not below.isdigit():
            return None  # a renumbered folder: nothing is backlog, all new mail waits
        return first, int(below)

    def _select(self, client: IMAPClient, folder: str, readonly: bool) -> dict:
        try:
            return client.select_folder(folder, readonly=readonly)
        except IMAPClientError as e:
            if "NONEXISTENT" in str(e).upper() or "doesn't exist" in str(e).lower():
                raise PermanentError(f"{self.where}: folder {folder!r} does not exist") from None
            raise

    def _within_size(self, client: IMAPClient, uids: list[int]) -> list[int]:
        """A prefix of `uids` whose messages add up to at most MAX_BATCH_BYTES (at least one)."""
        if len(uids) <= 1:
            return uids
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        total = 0
        for n, uid in enumerate(uids):
            total += int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if total > MAX_BATCH_BYTES and n:
                return uids[:n]
        return uids

    def _download(self, client: IMAPClient, folder: str, validity: int, uids: list[int],
                  mark: tuple[float, int] | None = None) -> list:
        data = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        items = []
        for uid in uids:
            row = data.get(uid)
            if not row or b"BODY[]" not in row:
                continue  # expunged between SEARCH and FETCH
            received = row.get(b"INTERNALDATE")
            item = parse(row[b"BODY[]"] or b"", self.account,
                         fallback_time=received.timestamp() if received else time.time(),
                         meta={"folder": folder, "uid": uid, "uidvalidity": validity}, own_address=self._own)
            if self._own and item.sender.address == self._own:
                # our own mail (a Sent folder in `folders`, a reply written in another mail
                # client): filed as our reply; one sent from here is already there
                item.meta["ours"] = True
            if mark and uid < mark[1] and backlog.is_backlog(received.timestamp() if received else None, mark[0],
                                                             self.options["backlog_days"]):
                item.meta["backlog"] = True
            items.append(item)
        return items

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """IDLE on the first folder; other folders are polled each `timeout`."""
        if not self.options["idle"]:
            stop.wait(timeout)
            return
        try:
            self._idle_wait(min(timeout, IDLE_MAX), stop)
        except (ConnectorError, *NET_ERRORS) as e:
            # let the next fetch report the problem as channel health
            log.info("%s: IDLE unavailable: %s", self.where, _text(e, self._password))
            if self._idler is not None:
                _quietly(self._idler.shutdown)
                self._idler = None
            stop.wait(min(timeout, 1.0))

    def _idle_wait(self, timeout: float, stop: threading.Event) -> None:
        if self._idler is None:
            self._idler = self._connect()
        idler = self._idler
        if not idler.has_capability("IDLE"):
            stop.wait(timeout)
            return
        folder = self.folders[0]
        info = self._select(idler, folder, readonly=True)
        seen = self._seen.get(folder)
        uidnext = info.get(b"UIDNEXT")
        if seen is None or seen[0] != int(info[b"UIDVALIDITY"]) or (uidnext and int(uidnext) > seen[1] + 1):
            return  # mail arrived since the last fetch
        deadline = time.monotonic() + timeout
        try:
            idler.idle()
        except IMAPClientError as e:
            if not _NEWS.search(str(e)):
                raise
            # news before "+ idling": imapclient gives up mid-command, so this connection's
            # state is unknown; the mail is there, fetch it now and IDLE on a fresh one
            _quietly(idler.shutdown)
            self._idler = None
            return
        early_empty = 0
        try:
            if _unread(idler):
                # Mail that came between our SELECT and IDLE is announced right after
                # "+ idling", often in the same packet: imaplib then holds it in its read
                # buffer, where idle_check's poll() cannot see it (it would wait for the
                # next keepalive or the poll interval). Anything said: fetch now.
                return
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                started = time.monotonic()
                responses = idler.idle_check(timeout=min(IDLE_SLICE, left))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
                # imapclient's idle_check swallows EOF and returns nothing at once:
                # a socket that is "readable" yet says nothing, again and again, is closed
                early_empty = early_empty + 1 if not responses and time.monotonic() - started < IDLE_SLICE / 2 else 0
                if early_empty >= 3:
                    raise ConnectorError(f"{self.where}: the server closed the IDLE connection")
        finally:
            _quietly(idler.idle_done)

    # -- outbound -----------------------------------------------------------------
    def send(self, message: OutboundMessage) -> Receipt:
        msg, message_id = compose_mod.compose(message, self.options)
        smtp.send(msg, self.options, self.password())
        meta = {"message_id": f"<{message_id}>",
                "references": [f"<{r}>" for r in compose_mod.threading_headers(message)[1]]}
        # The reply is delivered; what follows is bookkeeping and must not raise
        # (a raise would make the engine send the reply again).
        with self._lock:
            if self.options["sent_folder"]:
                error = self._best_effort(self._append_sent, msg.as_bytes())
                if error:
                    meta["sent_copy_error"] = error
            if message.parent is not None and message.parent.meta.get("uid"):
                self._best_effort(self._mark_answered, message.parent.meta)
        return Receipt(external_id=message_id, meta=meta)

    def _best_effort(self, fn, *args) -> str | None:
        try:
            self._on_main(fn, *args)
            return None
        except Exception as e:  # noqa: BLE001 - see send()
            self._drop()
            detail = _text(e, self._password)
            log.warning("%s: %s failed after sending: %s", self.where, fn.__name__.strip("_"), detail)
            return f"{type(e).__name__}: {detail}"[:300]

    def _append_sent(self, raw: bytes) -> None:
        client = self._main()
        folder = self.options["sent_folder"]
        try:
            client.append(folder, raw, flags=[b"\\Seen"])
        except IMAPClientError as e:
            if "TRYCREATE" not in str(e).upper():
                raise
            client.create_folder(folder)
            client.append(folder, raw, flags=[b"\\Seen"])

    def _mark_answered(self, meta: dict) -> None:
        client = self._main()
        info = self._select(client, meta["folder"], readonly=False)
        if int(info[b"UIDVALIDITY"]) == int(meta.get("uidvalidity", -1)):  # else the uid means another message
            client.add_flags([int(meta["uid"])], [b"\\Answered"])

    def close(self) -> None:
        with self._lock:
            for client in (self._client, self._idler):
                if client is not None:
                    _quietly(client.logout)
            self._client = self._idler = None


def _text(e: BaseException, secret: str | None = None) -> str:
    """An error's text for health and logs; never the password, even if a server echoes it."""
    text = e.args[0] if e.args else str(e)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:200] or type(e).__name__


_NEWS = re.compile(r"\*\s+\d+\s+(EXISTS|RECENT)", re.I)  # an untagged "* 5 EXISTS" in imapclient's error text


def _unread(client: IMAPClient) -> bool:
    """Whether the server's words already wait in imaplib's read buffer (or in TLS's),
    which poll() on the socket, and so idle_check, does not see. Never blocks."""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))  # buffered bytes, else one non-blocking read
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - closing a broken connection
        pass
