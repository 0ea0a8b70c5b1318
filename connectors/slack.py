"""Slack through `slack_sdk.WebClient` with a bot token; Socket Mode when an
app-level token is configured.

Polling: every conversation the bot is in (DMs, group DMs, channels) is read
with conversations.history from its own cursor (`c:<channel>` = newest ts
seen), all pages. Threads are read with conversations.replies from `t:<channel>:
<thread ts>`: at once when history shows a parent with new replies, every poll
for "hot" threads (we answered in them, or they had a reply within the hour),
and via a rescan of the last day every `rescan_seconds`, which also catches
edits and deletions, of thread replies too (deletions of messages this process
has seen). Every `thread_scan_seconds` history is read `thread_days` back, so a
reply to an old thread shows as its parent's newer `latest_reply`: one call per
200 messages of a conversation instead of one per thread. The `t:` cursors live
in the store with the others (a restart forgets nothing) until a thread has been
quiet for `thread_days`.

What the agent sees of each message subtype: a person's message, file_share,
thread_broadcast (a thread reply, marked `broadcast`) and me_message (`/me …`)
are kept; bot_message, other apps' bot users, channel_join/leave, tombstones
and other system subtypes are not messages from a customer and are skipped
(a tombstone marks its message deleted). A shared message is shown quoted with
its author, never as the sharer's words; link previews (unfurls) are not shown
and are not edits. Text is made readable by connectors/markup.py.

Why the polling interval: conversations.history and conversations.replies are
Tier 3, about 50 calls a minute per workspace for an internal (custom) app. A
poll costs one call per conversation (per page) plus one per hot thread, and
the next poll waits at least `poll_seconds` (default 5 s) and long enough to
keep those calls under `calls_per_minute` (default 40, 80 % of Tier 3): with
30 conversations that is a poll every 45 s. (Apps distributed outside the
Marketplace since 2025 get 1 call a minute: use Socket Mode there.) Socket Mode
pushes events in well under a second and polls only to catch up after each
(re)connect and every `catchup_seconds`.

Socket Mode events advance the cursors only when the socket has been connected
since the start of the last catch-up poll and that poll has read the
conversation (a channel the bot just joined is backfilled first), so a gap is
always read back from history: nothing is lost, and the store's idempotent
ingest makes the overlap harmless.
"""
from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientNotConnectedError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from connectors.base import Batch, BaseConnector, ConnectorError, PermanentError, RejectedError, UncertainError
from connectors.secrets import resolve_secret
from connectors.schema import SLACK_OPTIONS, ConfigError, Option
from connectors.formatting import slack_parts
from connectors.markup import slack_text
from store.models import AttachmentIn, InboundMessage, OutboundMessage, Receipt, Sender

log = logging.getLogger("omnidesk.slack")

TYPES = "im,mpim,private_channel,public_channel"
KEEP_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
               "not_allowed_token_type", "missing_scope", "no_permission"}
# Errors about one conversation or message: the reply fails, the channel stays healthy.
MESSAGE_ERRORS = {"channel_not_found", "is_archived", "not_in_channel", "msg_too_long", "no_text",
                  "cannot_dm_bot", "user_not_found", "user_disabled", "restricted_action"}
HOT_SECONDS = 3600
RESCAN_WINDOW = 86400.0  # the rescan re-reads the last day of each conversation
CONVERSATIONS_REFRESH = 60.0
USER_CACHE_SECONDS = 3600.0

OPTIONS: dict[str, Option] = SLACK_OPTIONS  # declared in connectors/schema.py


def build(account: str, options: dict, config=None) -> "SlackConnector":
    where = f"slack.{account}"
    token = resolve_secret(options, "token", where)
    if not token:
        raise ConfigError(f"{where}: no bot token; set token_env, token_command or token_keyring")
    app_token = resolve_secret(options, "app_token", where)
    base_url = options.get("base_url", OPTIONS["base_url"].default)
    if not base_url.endswith("/"):
        raise ConfigError(f"{where}.base_url: must end with '/' (got {base_url!r})")
    cap = options.get("max_download_bytes", OPTIONS["max_download_bytes"].default)
    if config is not None:
        cap = min(cap, config.get("attachments", "max_bytes"))
    kw = {k: options[k] for k in ("poll_seconds", "calls_per_minute", "catchup_seconds", "rescan_seconds",
                                  "backfill_days", "thread_days", "thread_scan_seconds", "timeout") if k in options}
    return SlackConnector(account, token, app_token=app_token, base_url=base_url, max_download_bytes=cap, **kw)


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """Absorb short 429 waits inside the client; longer ones go to the engine's
    backoff so that stopping stays prompt."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = [v for k, v in response.headers.items() if k.lower() == "retry-after"]
        try:
            return float(values[0][0] if isinstance(values[0], list) else values[0]) <= 3
        except (IndexError, ValueError):
            return False


def plain_text(text: str) -> str:
    """Slack's message markup to plain text (mentions without a label keep their id)."""
    return slack_text(text)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


class SlackConnector(BaseConnector):
    channel = "slack"

    def __init__(self, account: str, token: str, *, app_token: str | None = None,
                 base_url: str = "https://slack.com/api/", poll_seconds: float = 5.0, calls_per_minute: int = 40,
                 catchup_seconds: float = 300.0, rescan_seconds: float = 120.0, backfill_days: float = 2.0,
                 thread_days: float = 30.0, thread_scan_seconds: float = 600.0, max_download_bytes: int = 25 * 1024 * 1024, timeout: float = 30.0):
        super().__init__(account)
        self._token = token
        self._secrets = [s for s in (token, app_token) if s]
        self.base_url = base_url
        self.app_token = app_token
        self.poll_seconds = poll_seconds
        self.calls_per_minute = max(1, calls_per_minute)
        self.catchup_seconds = catchup_seconds
        self.rescan_seconds = rescan_seconds
        self.backfill_seconds = backfill_days * 86400
        self.thread_seconds = thread_days * 86400
        self.thread_scan_seconds = thread_scan_seconds
        self.max_download_bytes = max_download_bytes
        self.timeout = timeout
        self.client = WebClient(token=token, base_url=base_url, timeout=int(timeout),
                                retry_handlers=[ConnectionErrorRetryHandler(), ShortRateLimitRetry(max_retry_count=1)])
        # Sends never retry a dropped connection: the request may have been delivered.
        self._send_client = WebClient(token=token, base_url=base_url, timeout=int(timeout),
                                      retry_handlers=[ShortRateLimitRetry(max_retry_count=1)])
        self._lock = threading.Lock()  # caches shared by the poller, the outbox and the socket threads
        self._me: tuple[str, str] | None = None  # (bot user id, bot id)
        self._team = ""  # our workspace
        self._users: dict[str, tuple[float, Sender, bool]] = {}  # id -> (when, sender, is a bot)
        self._convs: dict[str, str] = {}  # id -> channel type (im, mpim, channel, group)
        self._conv_names: dict[str, str] = {}
        self._convs_at = 0.0
        self._hot: dict[tuple[str, str], float] = {}  # (channel, thread ts) -> until
        self._known: dict[str, set[str]] = {}  # channel -> ts seen in this process (for deletions)
        self._known_replies: dict[tuple[str, str], set[str]] = {}  # (channel, thread ts) -> reply ts seen
        self._last_thread_scan = 0.0
        self._reread_at: dict[str, float] = {}  # thread cursor key -> next whole re-read
        self._next_poll = 0.0
        self._next_catchup = 0.0
        self._last_rescan = 0.0
        self._last_cursor: dict[str, str] | None = None
        self._calls = 0  # Tier 3 calls made (history and replies pages)
        # Socket Mode
        self._socket = None
        self._events: queue.Queue = queue.Queue()
        self._wake = threading.Event()
        self._socket_retry_at = 0.0
        self._epoch = 0  # +1 on every (re)connect
        self._polled_epoch = -1  # the epoch the last catch-up poll started in

    # -- errors --------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "<token>")
        return " ".join(text.split())[:300]


    scrub = _scrub  # the engine scrubs health and errors through this
    def _api(self, method: str, **kw):
        """Call a WebClient method by name; map failures to connector errors."""
        try:
            return getattr(self.client, method)(**kw)
        except SlackApiError as e:
            raise self._map(method, e) from None
        except (SlackClientError, urllib.error.URLError, OSError) as e:
            raise ConnectorError(f"cannot reach Slack: {self._scrub(str(e)) or type(e).__name__}") from None

    def _map(self, method: str, e: SlackApiError) -> ConnectorError:
        resp = e.response
        status = resp.status_code
        error = resp.get("error") if isinstance(resp.data, dict) else None
        name = method.replace("_", ".")
        if status == 429:
            after = float(resp.headers.get("Retry-After") or resp.headers.get("retry-after") or 30)
            return ConnectorError(f"Slack rate limit on {name}: retry after {after:.0f}s", retry_after=after)
        if error in AUTH_ERRORS:
            needed = f" (needs {resp.get('needed')})" if resp.get("needed") else ""
            return PermanentError(f"Slack rejected the token: {error}{needed}; check the token and the app's scopes")
        if status >= 500:
            return ConnectorError(f"Slack server error {status} on {name}")
        if error in MESSAGE_ERRORS:  # this conversation or message only; the workspace is fine
            return RejectedError(f"Slack refused {name}: {error}")
        return ConnectorError(f"Slack refused {name}: {error or status}")

    # -- setup -----------------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        if self._me is None:
            r = self._api("auth_test")
            self._me = (r.get("user_id") or "", r.get("bot_id") or "")
            self._team = r.get("team_id") or ""
        if self.app_token and self._socket is None and time.time() >= self._socket_retry_at:
            try:
                self._start_socket()
            except PermanentError:
                raise
            except ConnectorError as e:  # poll meanwhile; try the socket again later
                log.warning("%s: %s; polling until it works", self.name, e)
                self._socket_retry_at = time.time() + 30.0

    def _start_socket(self) -> None:
        from slack_sdk.socket_mode.builtin import SocketModeClient
        from slack_sdk.socket_mode.response import SocketModeResponse

        def on_message(client, message: dict, raw: str) -> None:
            if message.get("type") == "hello":
                self._epoch += 1
                self._wake.set()

        def on_request(client, req) -> None:
            try:
                client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            except SlackClientNotConnectedError:
                # closing or reconnecting: Slack redelivers an unacked envelope, and the
                # catch-up poll after the reconnect reads anything missed
                return
            if req.type == "events_api" and isinstance(req.payload, dict):
                self._events.put((self._epoch, req.payload.get("event") or {}))
                self._wake.set()

        web = WebClient(base_url=self.base_url, timeout=int(self.timeout))
        sm = SocketModeClient(self.app_token, web_client=web, logger=logging.getLogger("omnidesk.slack.socket"))
        sm.message_listeners.append(on_message)
        sm.socket_mode_request_listeners.append(on_request)
        try:
            sm.connect()
        except SlackApiError as e:
            sm.close()
            raise self._map("apps.connections.open", e) from None
        except Exception as e:  # network: poll meanwhile and try again next time
            sm.close()
            raise ConnectorError(f"cannot open Slack Socket Mode: {self._scrub(str(e)) or type(e).__name__}") from None
        self._socket = sm

    def probe(self) -> str:
        """A live check for `omnidesk doctor`: the bot token, the conversations it
        can read, and the app token for Socket Mode."""
        r = self._api("auth_test")
        convs = self._conversations()
        detail = f"bot @{r.get('user')} in {r.get('team')}, in {len(convs)} conversation(s)"
        if self.app_token:
            try:
                WebClient(base_url=self.base_url, timeout=int(self.timeout)).apps_connections_open(
                    app_token=self.app_token)
            except SlackApiError as e:
                raise self._map("apps.connections.open", e) from None
            detail += "; Socket Mode available"
        else:
            detail += "; polling (add an app token for Socket Mode)"
        return detail

    @property
    def socket_connected(self) -> bool:
        return self._socket is not None and self._socket.is_connected()

    # -- inbound -----------------------------------------------------------------------------
    def fetch(self, cursor: dict[str, str]) -> Batch:
        self._ensure_ready()
        new = dict(cursor)
        items: list[InboundMessage] = []
        now = time.time()
        uncommitted = self._last_cursor is not None and cursor != self._last_cursor
        if now >= self._next_due() or uncommitted and now >= self._next_poll:
            self._poll_once(cursor, new, items)
        while not self._events.empty():  # after the poll, so a failed poll leaves them queued
            epoch, event = self._events.get_nowait()
            self._on_event(event, epoch, new, items)
        self._last_cursor = {k: v for k, v in new.items() if v != ""}  # as the store keeps it
        return Batch(items, new)

    def _poll_once(self, cursor: dict, new: dict, items: list) -> None:
        started, before = self._epoch, self._calls
        try:
            self._poll(cursor, new, items)  # partial results stay consistent with `new`
        except ConnectorError as e:
            if isinstance(e, PermanentError) or not self.socket_connected:
                raise
            # Socket Mode still delivers; catch up later (events do not advance cursors meanwhile)
            log.warning("%s: catch-up poll failed, retrying later: %s", self.name, e)
            self._next_poll = time.time() + (e.retry_after or 30.0)
            return
        finally:
            calls = self._calls - before
            self._next_poll = max(self._next_poll, time.time() + max(self.poll_seconds,
                                                                    calls * 60.0 / self.calls_per_minute))
        self._polled_epoch = started
        self._next_catchup = time.time() + self.catchup_seconds

    def _next_due(self) -> float:
        """When the next poll may run: the rate budget's time, and in Socket Mode
        (while connected) only the periodic catch-up."""
        if self.socket_connected and self._polled_epoch == self._epoch:
            return max(self._next_poll, self._next_catchup)
        return self._next_poll  # polling, or a (re)connect to catch up on

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + max(0.0, min(timeout, self._next_due() - time.time()))
        while not stop.is_set():
            if self._wake.wait(0.05):
                self._wake.clear()
                return
            if time.monotonic() >= deadline:
                return

    # -- polling -------------------------------------------------------------------------------
    def _conversations(self) -> dict[str, str]:
        with self._lock:
            if self._convs and time.time() - self._convs_at < CONVERSATIONS_REFRESH:
                return dict(self._convs)
        found: dict[str, str] = {}
        names: dict[str, str] = {}
        page = None
        while True:
            r = self._api("users_conversations", types=TYPES, exclude_archived=True, limit=200, cursor=page)
            for c in r.get("channels", []):
                found[c["id"]] = ("im" if c.get("is_im") else "mpim" if c.get("is_mpim")
                                  else "group" if c.get("is_private") else "channel")
                if c.get("name"):
                    names[c["id"]] = c["name"]
            page = (r.get("response_metadata") or {}).get("next_cursor")
            if not page:
                break
        with self._lock:
            self._convs, self._convs_at = found, time.time()
            self._conv_names.update(names)
        return dict(found)

    def _pages(self, method: str, **kw) -> list[dict]:
        out, page = [], None
        while True:
            r = self._api(method, limit=200, cursor=page, **kw)
            self._calls += 1  # each page counts against Tier 3
            out.extend(r.get("messages", []))
            page = (r.get("response_metadata") or {}).get("next_cursor")
            if not page or not r.get("has_more", True):
                return out

    def _poll(self, cursor: dict, new: dict, items: list) -> None:
        """Read everything new since `cursor` into `items` and `new`.

        Each conversation's history is read from its cursor; at a rescan from a day
        back (edits, deletions, new replies to recent threads) and at a thread scan
        from `thread_days` back, so a reply to a thread of any age within that is
        found by its parent's `latest_reply`. Threads with new replies are read from
        their own cursor (`t:<channel>:<thread ts>` = the newest reply read, kept in
        the store with the other cursors); threads active within the day are read
        whole at a rescan, for edits and deletions of replies."""
        convs = self._conversations()
        now = time.time()
        rescan = now - self._last_rescan >= self.rescan_seconds
        thread_scan = now - self._last_thread_scan >= self.thread_scan_seconds
        horizon = now - self.thread_seconds
        threads: dict[tuple[str, str], bool] = {}  # (channel, thread ts) -> read it whole
        starts: dict[tuple[str, str], str] = {}  # threads without a cursor: read from here
        for cid, ctype in convs.items():
            key = f"c:{cid}"
            first = not cursor.get(key)
            oldest = cursor.get(key) or f"{now - self.backfill_seconds:.6f}"
            # f:<channel>: since when replies in this conversation are ours to read (its backfill,
            # or when this version first read it), so a thread seen for the first time never
            # brings back replies from before that
            floor = cursor.get(f"f:{cid}") or (oldest if first else f"{now:.6f}")
            new[f"f:{cid}"] = floor
            window = float(oldest)
            if rescan:
                window = min(window, now - RESCAN_WINDOW)
            if thread_scan or first:
                window = min(window, horizon)
            try:
                msgs = self._pages("conversations_history", channel=cid, oldest=f"{window:.6f}")
            except ConnectorError as e:
                if "not_in_channel" in str(e) or "channel_not_found" in str(e):
                    continue  # left since the last refresh
                raise
            msgs.sort(key=lambda m: float(m["ts"]))
            latest = oldest
            for m in msgs:
                ts = m["ts"]
                if float(ts) > float(oldest):
                    item = self._message_item(cid, ctype, m)
                    if item:
                        items.append(item)
                    latest = ts
                elif m.get("subtype") == "tombstone":  # deleted, replies kept
                    items.append(self._delete_item(cid, ts))
                else:
                    self._check_edit(cid, ctype, m, cursor, new, items)
                last_reply = m.get("latest_reply")
                if not last_reply:
                    continue
                seen = cursor.get(f"t:{cid}:{ts}") or max(ts, floor, key=float)
                if float(last_reply) > float(seen):
                    threads.setdefault((cid, ts), False)
                    starts[(cid, ts)] = seen
            if float(window) < float(oldest):
                self._check_deletions(cid, window, {m["ts"] for m in msgs}, items)
            self._known.setdefault(cid, set()).update(m["ts"] for m in msgs)
            new[key] = latest
        if rescan:
            self._last_rescan = now
        if thread_scan:
            self._last_thread_scan = now
        with self._lock:  # hot threads: answered by us lately
            self._hot = {k: until for k, until in self._hot.items() if until > now}
            for k in self._hot:
                if k[0] in convs:
                    threads.setdefault(k, False)
        for key, value in cursor.items():
            if not key.startswith("t:"):
                continue
            cid, thread_ts = key[2:].split(":", 1)
            last = float(value or 0)
            if last < horizon:
                new[key] = ""  # over: the store forgets it
                self._reread_at.pop(key, None)
            elif cid in convs and last > now - HOT_SECONDS:
                threads.setdefault((cid, thread_ts), False)  # a reply within the hour: every poll
            if cid in convs and rescan and last > now - RESCAN_WINDOW and self._reread_at.get(key, 0) <= now:
                # whole, for edits and deletions of replies: every rescan within the hour of the
                # last reply, then less often (every N rescans N hours after), to spare the budget
                threads[(cid, thread_ts)] = True
                self._reread_at[key] = now + self.rescan_seconds * max(1.0, (now - last) / 3600)
        for (cid, thread_ts), whole in sorted(threads.items()):
            self._poll_thread(cid, convs[cid], thread_ts, cursor, new, items, whole, starts.get((cid, thread_ts)))

    def _poll_thread(self, cid: str, ctype: str, thread_ts: str, cursor: dict, new: dict, items: list,
                     whole: bool = False, start: str | None = None) -> None:
        """Read a thread's new replies (after `start` if it has no cursor yet); `whole`:
        all of it, applying edits and deletions of replies read before (by this
        process: Slack lists no deleted replies)."""
        key = f"t:{cid}:{thread_ts}"
        seen = cursor.get(key) or start or thread_ts
        try:
            msgs = self._pages("conversations_replies", channel=cid, ts=thread_ts, oldest=thread_ts if whole else seen)
        except ConnectorError as e:
            if "thread_not_found" in str(e):
                return
            raise
        latest, present = seen, set()
        for m in sorted(msgs, key=lambda m: float(m["ts"])):
            ts = m["ts"]
            if ts == thread_ts:
                continue
            present.add(ts)
            if float(ts) > float(seen):
                item = self._message_item(cid, ctype, m)
                latest = max(latest, ts, key=float)
            elif m.get("edited"):  # the store ignores an edit it has already applied
                item = self._message_item(cid, ctype, m, kind="edit", edited_at=float(m["edited"]["ts"]),
                                          download=False)
            else:
                item = None
            if item:
                items.append(item)
        known = self._known_replies.setdefault((cid, thread_ts), set())
        if whole:
            items.extend(self._delete_item(cid, ts) for ts in sorted(known - present, key=float))
            known.clear()
        known.update(present)
        new[key] = latest

    def _check_edit(self, cid: str, ctype: str, m: dict, cursor: dict, new: dict, items: list) -> None:
        edited = (m.get("edited") or {}).get("ts")
        key = f"e:{cid}"
        if edited and float(edited) > float(new.get(key) or cursor.get(key) or 0):
            item = self._message_item(cid, ctype, m, kind="edit", edited_at=float(edited), download=False)
            if item:
                items.append(item)
            new[key] = max(edited, new.get(key) or "0", key=float)

    def _check_deletions(self, cid: str, since: float, present: set[str], items: list) -> None:
        known = self._known.get(cid, set())
        for ts in sorted(known):
            if float(ts) > since and ts not in present:
                items.append(self._delete_item(cid, ts))
        self._known[cid] = {ts for ts in known if float(ts) > since and ts in present}

    # -- Socket Mode events ----------------------------------------------------------------------
    def _on_event(self, event: dict, epoch: int, new: dict, items: list) -> None:
        if event.get("type") == "member_joined_channel" and self._me and event.get("user") == self._me[0]:
            with self._lock:
                self._convs_at = 0.0  # re-read the conversation list at the next poll
            self._next_poll = self._next_catchup = 0.0
            return
        if event.get("type") != "message" or not event.get("channel"):
            return
        cid, subtype = event["channel"], event.get("subtype")
        ctype = event.get("channel_type") or self._convs.get(cid, "channel")
        if subtype == "message_changed":
            m = event.get("message") or {}
            if m.get("subtype") == "tombstone":  # a parent with replies deleted: Slack sends it as a change
                items.append(self._delete_item(cid, m.get("ts") or "", event.get("previous_message")))
                return
            if not m.get("edited"):
                return  # reply counts, unfurls...: not a change of the text
            item = self._message_item(cid, ctype, m, kind="edit", edited_at=float(m["edited"]["ts"]),
                                      download=False)
        elif subtype == "message_deleted":
            item = self._delete_item(cid, event.get("deleted_ts") or "", event.get("previous_message"))
        else:
            item = self._message_item(cid, ctype, event)
            # no gap since the catch-up poll began, and that poll has read this conversation
            if item and epoch == self._polled_epoch and f"c:{cid}" in new:
                thread_ts = item.meta.get("thread_ts")
                key = f"t:{cid}:{thread_ts}" if thread_ts else f"c:{cid}"
                new[key] = max(new.get(key) or "0", item.meta["ts"], key=float)
        if item:
            items.append(item)

    # -- converting ----------------------------------------------------------------------------------
    def _user(self, user_id: str, profile: dict | None = None) -> tuple[Sender, bool]:
        """The person behind a user id, and whether it is a bot user. `profile` is
        the message's `user_profile` (Slack Connect users from other workspaces,
        whom users.info may not know)."""
        with self._lock:
            hit = self._users.get(user_id)
        if hit and time.time() - hit[0] < USER_CACHE_SECONDS:
            return hit[1], hit[2]
        try:
            u = self._api("users_info", user=user_id).get("user") or {}
        except ConnectorError as e:
            if e.retry_after is not None or isinstance(e, PermanentError) or "user_not" not in str(e):
                raise
            u = {"profile": profile or {}, "name": (profile or {}).get("name")}  # external or deleted
        p = u.get("profile") or {}
        name = (p.get("real_name") or u.get("real_name") or p.get("display_name") or u.get("name") or user_id)
        email = p.get("email")  # absent without the users:read.email scope, or hidden by the person
        sender = Sender("slack", user_id, name, u.get("name") or "", emails=(email,) if email else ())
        is_bot = bool(u.get("is_bot")) or user_id == "USLACKBOT"
        with self._lock:
            self._users[user_id] = (time.time(), sender, is_bot)
        return sender, is_bot

    def _sender(self, user_id: str) -> Sender:
        return self._user(user_id)[0]

    def _user_name(self, user_id: str) -> str | None:
        # a rate limit or outage raises: the poll is retried, rather than a mention kept as an id for good
        sender = self._sender(user_id)
        return sender.display_name if sender.display_name != user_id else None

    def _channel_name(self, cid: str) -> str | None:
        with self._lock:
            return self._conv_names.get(cid)

    def _text(self, m: dict) -> str:
        """What the person wrote, readable, plus what they shared (quoted, with its author)."""
        text = slack_text(m.get("text", ""), self._user_name, self._channel_name)
        if m.get("subtype") == "me_message":
            text = f"/me {text}"
        for a in m.get("attachments") or ():
            if a.get("is_share") or a.get("is_msg_unfurl"):  # someone's message shared: their words, not these
                author = a.get("author_name") or a.get("author_subname") or (
                    self._user_name(a["author_id"]) if a.get("author_id") else None) or "someone"
                body = slack_text(a.get("text") or a.get("fallback") or "", self._user_name, self._channel_name)
                quoted = "\n".join("> " + line for line in body.split("\n"))
                where = f" ({a['from_url']})" if a.get("from_url") else ""
                text = "\n".join(filter(None, [text, f"[shared a message from {author}{where}]", quoted]))
            elif not (a.get("from_url") or a.get("original_url")):  # link previews repeat the text's URL
                parts = [a.get("pretext"), a.get("title"), a.get("text") or a.get("fallback")]
                body = " · ".join(slack_text(p, self._user_name, self._channel_name) for p in parts if p)
                if body:
                    text = "\n".join(filter(None, [text, f"[attachment: {body}]"]))
        return text

    def _message_item(self, cid: str, ctype: str, m: dict, *, kind: str = "message", edited_at: float | None = None,
                      download: bool = True) -> InboundMessage | None:
        """A person's message as an inbound item; None for what is not one: our own
        posts, other apps' bots, joins and leaves, tombstones and other system subtypes."""
        user = m.get("user")
        if m.get("subtype") not in KEEP_SUBTYPES or not user or (self._me and user == self._me[0]):
            return None
        sender, is_bot = self._user(user, m.get("user_profile"))
        if is_bot:  # another app's bot user (a person's message through an app keeps its person)
            return None
        ts = m["ts"]
        thread_ts = m.get("thread_ts") if m.get("thread_ts") not in (None, ts) else None
        text = self._text(m)
        meta: dict = {"channel": cid, "ts": ts, "channel_type": ctype}
        if thread_ts:
            meta["thread_ts"] = thread_ts
        if m.get("subtype") == "thread_broadcast":
            meta["broadcast"] = True  # a thread reply also sent to the channel
        team = m.get("user_team") or (m.get("user_profile") or {}).get("team")
        if team and self._team and team != self._team:
            meta["external_team"] = team  # Slack Connect: a person from another workspace
        if edited_at is not None:
            meta["edited_at"] = edited_at
        attachments: list[AttachmentIn] = []
        if m.get("files"):  # an edit carries the same notes but downloads nothing again
            notes = self._download_files(m["files"], attachments, meta, download)
            text = "\n".join(filter(None, [text, *notes]))
        return InboundMessage(
            channel="slack", account=self.account, external_id=f"{cid}:{ts}", sender=sender,
            text=text, sent_at=float(ts), thread_key=f"{cid}:{thread_ts}" if thread_ts else cid,
            reply_to=f"{cid}:{thread_ts}" if thread_ts else None, attachments=attachments,
            raw=json.dumps(m, ensure_ascii=False).encode("utf-8"), meta=meta, kind=kind)

    def _delete_item(self, cid: str, ts: str, previous: dict | None = None) -> InboundMessage:
        user = (previous or {}).get("user") or ""
        return InboundMessage(channel="slack", account=self.account, external_id=f"{cid}:{ts}",
                              sender=Sender("slack", user), text="", sent_at=float(ts or 0),
                              meta={"channel": cid, "ts": ts}, kind="delete")

    def _download_files(self, files: list[dict], attachments: list, meta: dict, download: bool) -> list[str]:
        notes = []
        for f in files:
            if download and f.get("file_access") == "check_file_info":
                f = self._api("files_info", file=f["id"]).get("file") or f
            name = f.get("name") or f.get("title") or f.get("id") or "file"
            size = int(f.get("size") or 0)
            url = f.get("url_private_download") or f.get("url_private")
            problem = None
            if size > self.max_download_bytes:
                problem = f"{_mb(size)}: not downloaded, larger than the {_mb(self.max_download_bytes)} limit"
            elif not url or f.get("mode") in ("tombstone", "hidden_by_limit"):
                problem = "not available from Slack"
            elif download:
                data, problem = self._fetch_file(url)
                if data is not None:
                    attachments.append(AttachmentIn(name, f.get("mimetype") or "application/octet-stream", data))
            if problem:
                attachments.append(AttachmentIn(name, f.get("mimetype") or "application/octet-stream", None, size=size))
                notes.append(f"[{name}, {problem}]")
                meta.setdefault("skipped_files", []).append({"filename": name, "size": size, "id": f.get("id")})
        return notes

    def _fetch_file(self, url: str) -> tuple[bytes | None, str | None]:
        host = urllib.parse.urlsplit(url).hostname or ""
        api_host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if host != api_host and not (host == "slack.com" or host.endswith((".slack.com", ".slack-edge.com"))):
            return None, f"not downloaded: unexpected file host {host}"
        req = urllib.request.Request(url)
        req.add_unredirected_header("Authorization", f"Bearer {self._token}")  # never sent on to a redirect
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                if resp.headers.get_content_type() == "text/html":
                    return None, "not downloaded: Slack sent its sign-in page (the app needs the files:read scope)"
                data = resp.read(self.max_download_bytes + 1)
        except urllib.error.HTTPError as e:
            if e.code == 429 or e.code >= 500:
                raise ConnectorError(f"Slack file download failed ({e.code})",
                                     retry_after=float(e.headers.get("Retry-After") or 0) or None) from None
            return None, f"not downloaded: HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            raise ConnectorError(f"cannot reach Slack for a file: {type(e).__name__}") from None
        if len(data) > self.max_download_bytes:
            return None, f"not downloaded, larger than the {_mb(self.max_download_bytes)} limit"
        return data, None

    # -- outbound -------------------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> Receipt:
        parent = message.parent if message.parent and message.parent.channel == "slack" else None
        meta = parent.meta if parent else {}
        channel = meta.get("channel")
        if not channel:
            channel = self._api("conversations_open", users=message.to_address)["channel"]["id"]
        # In a thread stay in it; in a channel answer in a thread on the message; in DMs answer inline.
        thread_ts = meta.get("thread_ts") or (meta.get("ts") if meta.get("channel_type") in ("channel", "group")
                                              else None)
        for att in message.attachments:
            if not att.path:
                raise ConnectorError(f"attachment {att.filename!r} was not kept (over the size cap); remove it")
        # One part at a time, each recorded as it goes out, so a retry resumes at
        # the next part and never repeats one.
        stamps: list[str] = list(message.parts_done)
        calls = [("chat_postMessage", dict(channel=channel, text=part, thread_ts=thread_ts, mrkdwn=True,
                                           unfurl_links=False, unfurl_media=False))
                 for part in slack_parts(message.text)]
        calls += [("files_upload_v2", dict(channel=channel, file=att.path, filename=att.filename, title=att.filename,
                                           thread_ts=thread_ts)) for att in message.attachments]
        for method, kw in calls[len(stamps):]:
            r = self._deliver(method, first=not stamps, **kw)
            stamp = r.get("ts") or (r.get("files") or [{}])[0].get("id") or ""
            stamps.append(stamp)
            if message.on_part:
                message.on_part(stamp)
        if thread_ts:
            with self._lock:
                self._hot[(channel, thread_ts)] = time.time() + HOT_SECONDS
        receipt_meta = {"channel": channel, "ts": stamps[0], "ts_parts": stamps}
        if thread_ts:
            receipt_meta["thread_ts"] = thread_ts
        return Receipt(external_id=f"{channel}:{stamps[0]}", meta=receipt_meta)

    def _deliver(self, method: str, first: bool, **kw):
        """One part through the send client (no blind retry of a dropped request).
        Short rate limits after the first part are waited out here; a timeout or a
        dropped connection once the request went out is "may have been delivered"."""
        for _ in range(3):
            try:
                return getattr(self._send_client, method)(**kw)
            except SlackApiError as e:
                err = self._map(method, e)
                if first or isinstance(err, PermanentError) or not err.retry_after or err.retry_after > 10:
                    raise err from None
                time.sleep(err.retry_after)
            except urllib.error.URLError as e:  # failed while connecting or writing the request
                if isinstance(e.reason, (ConnectionRefusedError, socket.gaierror, TimeoutError)):
                    raise ConnectorError(f"cannot reach Slack: {self._scrub(str(e.reason))}") from None
                raise UncertainError(f"Slack: connection lost while sending ({self._scrub(str(e.reason))})") from None
            except (OSError, http.client.HTTPException) as e:  # while waiting for the answer
                raise UncertainError(f"Slack did not answer ({type(e).__name__})") from None
            except SlackClientError as e:
                raise ConnectorError(f"Slack: {self._scrub(str(e)) or type(e).__name__}") from None
        raise ConnectorError("Slack kept rate-limiting the rest of a long reply")

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:  # closing is best effort
                pass
            self._socket = None
