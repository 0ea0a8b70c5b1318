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
quiet for `thread_days`. (Polling and thread tracking: connectors/slack_threads.py.)

What the agent sees of each message subtype: a person's message, file_share,
thread_broadcast (a thread reply, marked `broadcast`) and me_message (`/me …`)
are kept; bot_message, other apps' bot users, channel_join/leave, tombstones
and other system subtypes are not messages from a customer and are skipped
(a tombstone marks its message deleted). A shared message is shown quoted with
its author, never as the sharer's words; link previews (unfurls) are not shown
and are not edits. Text is made readable by connectors/markup.py. (Converting
messages, users and files: connectors/slack_messages.py.)

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
import logging
import queue
import socket
import threading
import time
import urllib.error

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientNotConnectedError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from connectors.base import Batch, BaseConnector, ConnectorError, PermanentError, RejectedError, UncertainError
from connectors.secrets import resolve_secret
from connectors.schema import SLACK_OPTIONS, ConfigError, Option
from connectors.formatting import slack_parts
from connectors.markup import slack_text
from connectors.slack_threads import HOT_SECONDS, SlackThreads
from store.models import InboundMessage, OutboundMessage, Receipt, Sender

log = logging.getLogger("omnidesk.slack")

AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
               "not_allowed_token_type", "missing_scope", "no_permission"}
# Errors about one conversation or message: the reply fails, the channel stays healthy.
MESSAGE_ERRORS = {"channel_not_found", "is_archived", "not_in_channel", "msg_too_long", "no_text",
                  "cannot_dm_bot", "user_not_found", "user_disabled", "restricted_action"}

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


class SlackConnector(SlackThreads, BaseConnector):
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
