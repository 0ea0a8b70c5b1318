"""Slack messages as the agent sees them: who wrote it (users.info, cached), its
text made readable (connectors/markup.py) with what was shared quoted under its
author, which message subtypes are a person's message, and its files downloaded
within the size cap. A mixin of SlackConnector (connectors/slack.py)."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from connectors.base import ConnectorError, PermanentError
from connectors.markup import slack_text
from store.models import AttachmentIn, InboundMessage, Sender

# A person's message, a file shared, a thread reply also sent to the channel, `/me …`;
# bot messages, joins and leaves, tombstones and other system subtypes are skipped.
KEEP_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
USER_CACHE_SECONDS = 3600.0


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


class SlackMessages:
    """Converting Slack messages into inbound items (for SlackConnector)."""

    # set by SlackConnector
    account: str
    base_url: str
    timeout: float
    max_download_bytes: int
    _token: str
    _lock: threading.Lock
    _me: tuple[str, str] | None
    _team: str
    _users: dict[str, tuple[float, Sender, bool]]
    _conv_names: dict[str, str]

    def _api(self, method: str, **kw: Any) -> Any:  # SlackConnector's call of the Web API
        raise NotImplementedError

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
