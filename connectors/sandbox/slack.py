"""A loopback Slack Web API server, with Socket Mode, for a real `slack_sdk`.

Covers what omnidesk uses: auth.test, conversations.list/history/replies/open/
info, users.conversations, users.info (profile e-mail), chat.postMessage,
files.getUploadURLExternal + the upload URL + files.completeUploadExternal
(what `files_upload_v2` calls), authenticated file downloads, and
apps.connections.open returning a ws:// URL on this same server where events
arrive in Socket Mode envelopes that the client acks. (Socket Mode: slack_socket.py;
stored files, uploads and downloads: slack_files.py, both beside this module.)

    with SlackSandbox() as slack:
        client = WebClient(slack.bot_token, base_url=slack.api_url)
        jane = slack.user("U100", "jane", "Jane Roe", email="jane@example.com")
        dm = slack.dm(jane)
        slack.post(jane, dm, "hi")
        slack.wait_sent(1)

Errors look like Slack's: `invalid_auth` for a bad token (HTTP 200), 429 with
a Retry-After header, injectable 5xx; a download without the bearer token gets
an HTML login page, as on Slack.
"""
from __future__ import annotations

import bisect
import itertools
import json
import mimetypes
import time
import uuid
from typing import Any

from aiohttp import web

from connectors.sandbox._server import LoopbackServer, read_params
from connectors.sandbox.slack_files import SlackFiles
from connectors.sandbox.slack_socket import SlackSocketMode

MAX_TEXT = 40_000
TYPES = {"im": "is_im", "mpim": "is_mpim", "public_channel": "public", "private_channel": "private"}


class SlackError(Exception):
    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


class SlackSandbox(SlackSocketMode, SlackFiles, LoopbackServer):
    def __init__(self, bot_token: str = "xoxb-sandbox-bot-token", app_token: str = "xapp-1-sandbox-app-token",
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.bot_token = bot_token
        self.app_token = app_token
        self.valid_tokens = {bot_token, app_token}
        self.team_id = "T0SANDBOX"
        self.bot_user = {"id": "U0BOT", "name": "omnidesk", "real_name": "omnidesk", "is_bot": True,
                         "profile": {"bot_id": "B0BOT", "real_name": "omnidesk", "display_name": "omnidesk"}}
        self.users: dict[str, dict] = {"U0BOT": self.bot_user}
        self.conversations: dict[str, dict] = {}
        self.messages: dict[str, list[dict]] = {}  # conversation -> messages (top level and replies) by ts
        self.files: dict[str, dict] = {}
        self.sent: list[dict] = []  # what the bot posted: channel, ts, text, thread_ts, files
        self.envelopes: list[dict] = []  # Socket Mode envelopes pushed
        self.acked: set[str] = set()
        self.dropped_events: list[dict] = []  # events while no socket was connected
        self.limits: dict[str, tuple[int, list[float]]] = {}  # method -> (per minute, recent call times)
        self._sockets: list[web.WebSocketResponse] = []
        self._ids = itertools.count(1)
        self._last_ts = 0  # microseconds

    # -- addresses -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"  # slack_sdk wants the trailing slash

    def revoke_token(self) -> None:
        with self.lock:
            self.valid_tokens.discard(self.bot_token)

    def restore_token(self) -> None:
        with self.lock:
            self.valid_tokens.add(self.bot_token)

    def rate_limit(self, method: str, per_minute: int) -> None:
        """Answer 429 (Retry-After) once `method` is called more than `per_minute` times a minute."""
        with self.lock:
            self.limits[method] = (per_minute, [])

    # -- the workspace ---------------------------------------------------------------------
    def user(self, user_id: str, name: str, real_name: str = "", email: str | None = None,
             display_name: str = "") -> dict:
        profile = {"real_name": real_name or name, "display_name": display_name, "real_name_normalized": real_name}
        if email:
            profile["email"] = email
        u = {"id": user_id, "team_id": self.team_id, "name": name, "real_name": real_name or name, "deleted": False,
             "is_bot": False, "tz": "Europe/London", "profile": profile}
        with self.lock:
            self.users[user_id] = u
        return u

    def _conversation(self, prefix: str, **fields) -> str:
        cid = f"{prefix}{next(self._ids):07d}"
        with self.lock:
            self.conversations[cid] = {"id": cid, "created": int(time.time()), "is_archived": False,
                                       "is_im": False, "is_mpim": False, "is_channel": False, "is_group": False,
                                       "is_private": False, "is_member": True, "members": ["U0BOT"], **fields}
            self.messages[cid] = []
        return cid

    def dm(self, user: dict) -> str:
        """The direct-message conversation between `user` and the bot (created on first use)."""
        with self.lock:
            for c in self.conversations.values():
                if c["is_im"] and c["user"] == user["id"]:
                    return c["id"]
        return self._conversation("D", is_im=True, is_private=True, user=user["id"], members=["U0BOT", user["id"]])

    def group_dm(self, users: list[dict]) -> str:
        name = "mpdm-" + "--".join(u["name"] for u in users) + "-1"
        return self._conversation("G", name=name, is_mpim=True, is_group=True, is_private=True,
                                  members=["U0BOT", *(u["id"] for u in users)])

    def channel(self, name: str, members: list[dict] = (), private: bool = False, bot_member: bool = True) -> str:
        members_ids = (["U0BOT"] if bot_member else []) + [u["id"] for u in members]
        return self._conversation("C", name=name, is_channel=not private, is_group=private, is_private=private,
                                  is_member=bot_member, members=members_ids)

    def invite_bot(self, channel: str) -> None:
        """Someone adds the bot to a channel (member_joined_channel in Socket Mode)."""
        with self.lock:
            conv = self.conversations[channel]
            conv["is_member"] = True
            conv["members"].append("U0BOT")
            self._event(channel, {"type": "member_joined_channel", "user": "U0BOT", "ts": self._next_ts()})

    def _next_ts(self) -> str:
        # Strictly increasing, counted in whole microseconds: float seconds near 1.8e9
        # are only good to ~0.2 us, and two posts could round to the same ts.
        now = max(time.time_ns() // 1000, self._last_ts + 1)
        self._last_ts = now
        return f"{now // 1_000_000}.{now % 1_000_000:06d}"

    @staticmethod
    def channel_type(conv: dict) -> str:
        if conv["is_im"]:
            return "im"
        if conv["is_mpim"]:
            return "mpim"
        return "group" if conv["is_private"] else "channel"

    # -- acting as the customer ----------------------------------------------------------------
    def external_user(self, user_id: str, name: str, real_name: str, team: str = "T0OTHER") -> dict:
        """A Slack Connect user from another workspace: users.info does not know them
        (user_not_found); their messages carry `user_profile` and `user_team`."""
        return {"id": user_id, "team_id": team, "name": name, "real_name": real_name, "external": True,
                "profile": {"real_name": real_name, "display_name": name}}

    def post(self, user: dict, channel: str, text: str, *, thread_ts: str | None = None,
             files: list[tuple[str, str, bytes]] = (), broadcast: bool = False, at: float | None = None,
             subtype: str | None = None, **fields) -> dict:
        """`user` writes in `channel` (in a thread if `thread_ts`); files are (name, mimetype, bytes).
        `at` posts with an older timestamp (epoch seconds), as if sent then; `subtype` and
        `fields` (e.g. attachments) go into the message as given."""
        with self.lock:
            msg: dict[str, Any] = {"type": "message", "user": user["id"], "text": text,
                                   "ts": self._next_ts() if at is None else self._old_ts(channel, at),
                                   "team": user.get("team_id", self.team_id), "client_msg_id": str(uuid.uuid4())}
            if user.get("external"):  # Slack Connect: the sender's profile travels with the message
                msg["user_team"] = user["team_id"]
                msg["user_profile"] = {"name": user["name"], "real_name": user["real_name"],
                                       "display_name": user["profile"]["display_name"], "team": user["team_id"]}
            if files:
                msg["files"] = [self._add_file(name, mimetype, data, user["id"]) for name, mimetype, data in files]
                msg["upload"] = True
                msg["subtype"] = "file_share"
            if subtype:
                msg["subtype"] = subtype
            msg.update(fields)
            self._append(channel, msg, thread_ts, broadcast)
            return dict(msg)

    def post_bot(self, channel: str, text: str, *, bot_id: str = "B0OTHER", username: str = "deploy-bot",
                 thread_ts: str | None = None, **fields) -> dict:
        """Another app's bot posts (subtype bot_message: a bot_id and no user)."""
        with self.lock:
            msg: dict[str, Any] = {"type": "message", "subtype": "bot_message", "bot_id": bot_id, "username": username,
                                   "text": text, "ts": self._next_ts(), **fields}
            self._append(channel, msg, thread_ts)
            return dict(msg)

    def join(self, user: dict, channel: str, leave: bool = False) -> dict:
        """`user` joins (or leaves) a channel: Slack posts a channel_join/leave message."""
        verb = "left" if leave else "joined"
        return self.post(user, channel, f"<@{user['id']}> has {verb} the channel",
                         subtype="channel_leave" if leave else "channel_join")

    def unfurl(self, message: dict, attachments: list[dict], channel: str | None = None) -> dict:
        """Slack adds link previews to a message after it was posted: the message gains
        `attachments` and a message_changed event without `edited` is sent."""
        with self.lock:
            channel, stored = self._find(message, channel)
            previous = dict(stored)
            stored["attachments"] = attachments
            self._event(channel, {"type": "message", "subtype": "message_changed", "hidden": True,
                                  "message": dict(stored), "previous_message": previous, "ts": self._next_ts()})
            return dict(stored)

    def _old_ts(self, channel: str, at: float) -> str:
        taken = {m["ts"] for m in self.messages[channel]}
        micros = int(at * 1_000_000)
        while f"{micros // 1_000_000}.{micros % 1_000_000:06d}" in taken:
            micros += 1
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def edit(self, message: dict, text: str, channel: str | None = None) -> dict:
        with self.lock:
            channel, stored = self._find(message, channel)
            previous = dict(stored)
            stored["text"] = text
            stored["edited"] = {"user": stored.get("user"), "ts": self._next_ts()}
            self._event(channel, {"type": "message", "subtype": "message_changed", "hidden": True,
                                  "message": dict(stored), "previous_message": previous, "ts": self._next_ts()})
            return dict(stored)

    def delete(self, message: dict, channel: str | None = None) -> None:
        with self.lock:
            channel, stored = self._find(message, channel)
            msgs = self.messages[channel]
            if stored.get("reply_count"):  # a parent with replies leaves a tombstone
                previous = dict(stored)
                stored.clear()
                stored.update({"type": "message", "subtype": "tombstone", "hidden": True, "text":
                               "This message was deleted.", "user": "USLACKBOT", "ts": previous["ts"],
                               "thread_ts": previous["ts"], "reply_count": previous["reply_count"]})
            else:
                previous = stored
                msgs.remove(stored)
                if stored.get("thread_ts") not in (None, stored["ts"]):  # a reply: the parent counts one less
                    parent = next((m for m in msgs if m["ts"] == stored["thread_ts"]), None)
                    if parent is not None:
                        replies = [m["ts"] for m in msgs if m.get("thread_ts") == parent["ts"] and m is not parent]
                        parent["reply_count"] = len(replies)
                        parent["latest_reply"] = max(replies, key=float) if replies else parent["ts"]
            self._event(channel, {"type": "message", "subtype": "message_deleted", "hidden": True,
                                  "deleted_ts": previous["ts"], "previous_message": dict(previous),
                                  "ts": self._next_ts()})

    def _find(self, message: dict, channel: str | None) -> tuple[str, dict]:
        for cid, msgs in self.messages.items():
            if channel not in (None, cid):
                continue
            for m in msgs:
                if m["ts"] == message["ts"]:
                    return cid, m
        raise KeyError(f"no message {message['ts']}")

    def _append(self, channel: str, msg: dict, thread_ts: str | None, broadcast: bool = False) -> None:
        msgs = self.messages[channel]
        if thread_ts:
            parent = next(m for m in msgs if m["ts"] == thread_ts)
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = max(msg["ts"], parent.get("latest_reply") or "0", key=float)
            parent["reply_users"] = sorted(set(parent.get("reply_users", [])) | {msg.get("user", "")})
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = parent.get("user")
            if broadcast:
                msg["subtype"] = "thread_broadcast"
        if msgs and float(msgs[-1]["ts"]) > float(msg["ts"]):  # posted `at` an older time: in its place
            msgs.insert(bisect.bisect(msgs, float(msg["ts"]), key=lambda m: float(m["ts"])), msg)
        else:
            msgs.append(msg)
        self._event(channel, dict(msg))

    # -- reading what the bot did ------------------------------------------------------------------------
    def wait_sent(self, n: int = 1, timeout: float = 30.0) -> list[dict]:
        return self.wait_for(lambda: list(self.sent) if len(self.sent) >= n else None, timeout)

    # -- HTTP ----------------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{fid}", self._upload)
        app.router.add_get("/files-pri/{key}/{name}", self._download)
        app.router.add_get("/link/", self._socket)
        return app

    @staticmethod
    def _token(request: web.Request, params: dict) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else params.get("token")

    def _limited(self, method: str) -> float | None:
        with self.lock:
            if method not in self.limits:
                return None
            per_minute, times = self.limits[method]
            now = time.monotonic()
            times[:] = [t for t in times if now - t < 60]
            if len(times) >= per_minute:
                return max(1.0, 60 - (now - times[0]))
            times.append(now)
            return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        self.record(method, {k: v for k, v in params.items() if k != "token" and not isinstance(v, tuple)})
        fault = self.take_fault(method)
        if fault and not fault.after:
            if fault.status == 429:
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                         headers={"Retry-After": str(int(fault.retry_after or 1))})
            return web.json_response({"ok": False, "error": "fatal_error"}, status=fault.status)
        wait = self._limited(method)
        if wait:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(int(wait))})
        token = self._token(request, params)
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token not in self.valid_tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if (method == "apps.connections.open") != token.startswith("xapp-"):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        try:
            with self.lock:
                result = handler(params)
        except SlackError as e:
            return web.json_response({"ok": False, "error": e.error})
        await self.misbehave(request, fault)
        return web.json_response({"ok": True, **result})

    # -- methods (run under self.lock) -------------------------------------------------------------------
    def _m_auth_test(self, p):
        return {"url": f"{self.url}/", "team": "Sandbox", "user": "omnidesk", "team_id": self.team_id,
                "user_id": "U0BOT", "bot_id": "B0BOT", "is_enterprise_install": False}

    @staticmethod
    def _page(items: list, p: dict, default: int = 100) -> tuple[list, str]:
        limit = max(1, min(1000, int(p.get("limit") or default)))
        start = int(p.get("cursor") or 0) if str(p.get("cursor") or "0").isdigit() else 0
        page = items[start:start + limit]
        return page, (str(start + limit) if start + limit < len(items) else "")

    def _typed(self, p: dict, member_only: bool) -> list[dict]:
        wanted = (p.get("types") or "public_channel").split(",")
        out = []
        for c in self.conversations.values():
            kind = {"im": "im", "mpim": "mpim", "group": "private_channel", "channel": "public_channel"}[
                self.channel_type(c)]
            if kind in wanted and (not member_only or c["is_member"]):
                out.append({k: v for k, v in c.items() if k != "members"})
        return out

    def _m_conversations_list(self, p):
        page, nxt = self._page(self._typed(p, member_only=False), p)
        return {"channels": page, "response_metadata": {"next_cursor": nxt}}

    def _m_users_conversations(self, p):
        page, nxt = self._page(self._typed(p, member_only=True), p)
        return {"channels": page, "response_metadata": {"next_cursor": nxt}}

    def _conv(self, p: dict, key: str = "channel", member: bool = True) -> dict:
        conv = self.conversations.get(p.get(key) or "")
        if conv is None:
            raise SlackError("channel_not_found")
        if member and not conv["is_member"]:
            raise SlackError("not_in_channel")
        return conv

    def _m_conversations_info(self, p):
        return {"channel": {k: v for k, v in self._conv(p, member=False).items() if k != "members"}}

    @staticmethod
    def _window(msgs: list[dict], p: dict) -> list[dict]:
        inclusive = str(p.get("inclusive") or "0") in ("1", "true")
        oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or 0) or float("inf")
        if inclusive:
            return [m for m in msgs if oldest <= float(m["ts"]) <= latest]
        return [m for m in msgs if oldest < float(m["ts"]) < latest]

    def _m_conversations_history(self, p):
        conv = self._conv(p)
        top = [m for m in self.messages[conv["id"]]
               if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"]
        newest_first = list(reversed(self._window(top, p)))
        page, nxt = self._page(newest_first, p)
        return {"messages": [dict(m) for m in page], "has_more": bool(nxt),
                "response_metadata": {"next_cursor": nxt}}

    def _m_conversations_replies(self, p):
        conv = self._conv(p)
        ts = p.get("ts")
        msgs = self.messages[conv["id"]]
        parent = next((m for m in msgs if m["ts"] == ts), None)
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in msgs if m.get("thread_ts") == ts and m["ts"] != ts]
        page, nxt = self._page([parent] + self._window(replies, p), p)
        return {"messages": [dict(m) for m in page], "has_more": bool(nxt),
                "response_metadata": {"next_cursor": nxt}}

    def _m_conversations_open(self, p):
        ids = [u for u in (p.get("users") or "").split(",") if u]
        if not ids or any(u not in self.users for u in ids):
            raise SlackError("user_not_found")
        if len(ids) == 1:
            return {"channel": {"id": self.dm(self.users[ids[0]])}}
        return {"channel": {"id": self.group_dm([self.users[u] for u in ids])}}

    def _m_users_info(self, p):
        user = self.users.get(p.get("user") or "")
        if user is None:
            raise SlackError("user_not_found")
        return {"user": json.loads(json.dumps(user))}

    def _m_chat_postMessage(self, p):
        conv = self._conv(p)
        text = p.get("text") or ""
        if not text.strip() and not p.get("blocks"):
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        thread_ts = p.get("thread_ts") or None
        if thread_ts and not any(m["ts"] == thread_ts for m in self.messages[conv["id"]]):
            raise SlackError("thread_not_found")
        msg = {"type": "message", "user": "U0BOT", "bot_id": "B0BOT", "app_id": "A0SANDBOX", "text": text,
               "ts": self._next_ts(), "team": self.team_id}
        self._append(conv["id"], msg, thread_ts, bool(p.get("reply_broadcast")))
        self.sent.append({"method": "chat.postMessage", "channel": conv["id"], "ts": msg["ts"], "text": text,
                          "thread_ts": thread_ts, "mrkdwn": p.get("mrkdwn", True), "files": []})
        self.changed()
        return {"channel": conv["id"], "ts": msg["ts"], "message": dict(msg)}

    def _m_files_getUploadURLExternal(self, p):
        if not p.get("filename") or not str(p.get("length") or "").isdigit():
            raise SlackError("invalid_arguments")
        fid = f"F{next(self._ids):08d}"
        self.files[fid] = {"meta": {"id": fid, "name": p["filename"], "title": p["filename"],
                                    "size": int(p["length"])}, "data": None}
        return {"upload_url": f"{self.url}/upload/{fid}", "file_id": fid}

    def _m_files_completeUploadExternal(self, p):
        entries = json.loads(p.get("files") or "[]")
        out = []
        for entry in entries:
            f = self.files.get(entry.get("id"))
            if f is None or f["data"] is None:
                raise SlackError("file_not_found")
            f["meta"]["title"] = entry.get("title") or f["meta"]["name"]
            out.append(f)
        channel = p.get("channel_id") or ""
        thread_ts = p.get("thread_ts") or None
        metas = []
        for f in out:
            mimetype = mimetypes.guess_type(f["meta"]["name"])[0] or "application/octet-stream"
            real = self._add_file(f["meta"]["name"], mimetype, f["data"], "U0BOT")
            metas.append({**real, "id": f["meta"]["id"], "title": f["meta"]["title"]})
        if channel:
            conv = self._conv({"channel": channel})
            msg = {"type": "message", "user": "U0BOT", "bot_id": "B0BOT", "text": p.get("initial_comment") or "",
                   "ts": self._next_ts(), "files": metas, "upload": True}
            self._append(conv["id"], msg, thread_ts)
            self.sent.append({"method": "files.completeUploadExternal", "channel": conv["id"], "ts": msg["ts"],
                              "text": msg["text"], "thread_ts": thread_ts,
                              "files": [{"name": f["meta"]["name"], "title": f["meta"]["title"], "data": f["data"]}
                                        for f in out]})
            self.changed()
        return {"files": [{"id": m["id"], "title": m["title"]} for m in metas]}

    def _m_files_info(self, p):
        f = self.files.get(p.get("file") or "")
        if f is None:
            raise SlackError("file_not_found")
        return {"file": dict(f["meta"])}
