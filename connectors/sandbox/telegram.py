"""A loopback Telegram Bot API server: enough of the wire format for a real
python-telegram-bot `Bot` (getMe, getUpdates long polling, sendMessage,
sendPhoto/Document/Voice/Video, editMessageText, getFile and downloads).

A test or the demo acts as the customer:

    with TelegramSandbox() as tg:
        bot = telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
        jane = tg.user(1001, "Jane", "Roe", "janeroe")
        tg.send_text(jane, "my order is broken")
        ...
        tg.wait_sent(1)[0]["text"]

HTML parse mode is checked the way Telegram checks it (supported tags only,
balanced, `<`, `>` and `&` escaped; a little stricter about a bare `&`), and
text longer than 4096 UTF-16 units is refused, so formatting bugs show up here.
The Bot API has no update for a deleted private message, so there is no
`delete` here either.
"""
from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from connectors.sandbox._server import LoopbackServer, read_params

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_GET_FILE = 20 * 1024 * 1024  # the Bot API refuses getFile above 20 MB
_STRING_FIELDS = {"text", "caption", "parse_mode", "file_id"}
_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
         "blockquote", "tg-emoji"}
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class BadRequest(Exception):
    pass


def parse_html(text: str) -> str:
    """Telegram's HTML parse mode: return the plain text or raise BadRequest."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            j = text.find(">", i)
            if j < 0:
                raise BadRequest(f"Can't parse entities: unclosed start tag at byte offset {i}")
            body = text[i + 1:j].strip()
            closing = body.startswith("/")
            name = body.lstrip("/").split(None, 1)[0].lower() if body.lstrip("/") else ""
            if name not in _TAGS:
                raise BadRequest(f'Can\'t parse entities: unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not stack or stack[-1] != name:
                    raise BadRequest(f'Can\'t parse entities: can\'t find start tag corresponding to end tag "{name}"')
                stack.pop()
            else:
                stack.append(name)
            i = j + 1
        elif c == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise BadRequest(f"Can't parse entities: unescaped '&' at byte offset {i}")
            ref = m.group(1)
            out.append(_NAMED.get(ref) or chr(int(ref[2:], 16) if ref[1:2] == "x" else int(ref[1:])))
            i = m.end()
        elif c == ">":
            raise BadRequest(f"Can't parse entities: unescaped '>' at byte offset {i}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise BadRequest(f'Can\'t parse entities: can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramSandbox(LoopbackServer):
    def __init__(self, token: str = "123456:sandbox-TOKEN", host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.token = token
        self.valid_tokens = {token}
        self.me = {"id": 700000001, "is_bot": True, "first_name": "omnidesk", "username": "omnidesk_sandbox_bot",
                   "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.updates: list[dict] = []  # not yet confirmed by an offset
        self.delivered: list[dict] = []  # every update ever queued (for tests)
        self.sent: list[dict] = []  # what the bot sent: method, chat_id, text, html, reply_to, files...
        self.chats: dict[int, dict] = {}
        self.messages: dict[tuple[int, int], dict] = {}  # (chat_id, message_id) -> message
        self.files: dict[str, dict] = {}  # file_id -> {data, path, size}
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = {}
        self._file_ids = itertools.count(1)
        self._poll_generation = 0
        self._stopping = False
        self.webhook_url = ""  # set it to see how a bot with a webhook fails to poll
        self.callers: list[tuple[str, str]] = []  # (method, token): which bot (process) asked, e.g. who polls

    # -- addresses for the client --------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def revoke_token(self) -> None:
        """The bot token stops working (401 Unauthorized) until `restore_token`."""
        with self.lock:
            self.valid_tokens.discard(self.token)

    def restore_token(self) -> None:
        with self.lock:
            self.valid_tokens.add(self.token)

    # -- acting as the customer -----------------------------------------------------------
    @staticmethod
    def user(user_id: int, first_name: str, last_name: str = "", username: str | None = None,
             language_code: str = "en") -> dict:
        u = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
        if last_name:
            u["last_name"] = last_name
        if username:
            u["username"] = username
        return u

    @staticmethod
    def group(chat_id: int, title: str) -> dict:
        return {"id": chat_id, "type": "group", "title": title}

    def send_text(self, user: dict, text: str, *, reply_to: dict | None = None, chat: dict | None = None) -> dict:
        return self._customer_message(user, chat, reply_to, text=text)

    def send_photo(self, user: dict, data: bytes, caption: str = "", **kw) -> dict:
        thumb = self._add_file(data[:64], "photos", "jpg")
        sizes = [{**thumb, "width": 90, "height": 90}, {**self._add_file(data, "photos", "jpg"), "width": 800,
                                                       "height": 600}]
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), photo=sizes, caption=caption)

    def send_document(self, user: dict, data: bytes, filename: str, mime_type: str = "application/octet-stream",
                      caption: str = "", **kw) -> dict:
        f = self._add_file(data, "documents", filename.rsplit(".", 1)[-1] if "." in filename else "bin")
        doc = {**f, "file_name": filename, "mime_type": mime_type}
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), document=doc, caption=caption)

    def send_voice(self, user: dict, data: bytes, duration: int = 3, mime_type: str = "audio/ogg", **kw) -> dict:
        voice = {**self._add_file(data, "voice", "oga"), "duration": duration, "mime_type": mime_type}
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), voice=voice)

    def send_video(self, user: dict, data: bytes, filename: str = "video.mp4", mime_type: str = "video/mp4",
                   caption: str = "", duration: int = 5, **kw) -> dict:
        video = {**self._add_file(data, "videos", "mp4"), "width": 640, "height": 360, "duration": duration,
                 "file_name": filename, "mime_type": mime_type}
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), video=video, caption=caption)

    def share_contact(self, user: dict, phone_number: str, **kw) -> dict:
        """The customer shares their own contact card (phone number)."""
        contact = {"phone_number": phone_number, "first_name": user["first_name"], "user_id": user["id"]}
        if user.get("last_name"):
            contact["last_name"] = user["last_name"]
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), contact=contact)

    def share_location(self, user: dict, latitude: float, longitude: float, **kw) -> dict:
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"),
                                      location={"latitude": latitude, "longitude": longitude})

    def send_sticker(self, user: dict, data: bytes, kind: str = "static", emoji: str = "\U0001F600", **kw) -> dict:
        """A sticker: `kind` static (WEBP), animated (TGS, gzipped Lottie) or video (WEBM).
        As on Telegram the Sticker object has no file name or MIME type; the format is in
        is_animated / is_video and in the getFile path."""
        ext = {"static": "webp", "animated": "tgs", "video": "webm"}[kind]
        sticker = {**self._add_file(data, "stickers", ext), "width": 512, "height": 512, "type": "regular",
                   "is_animated": kind == "animated", "is_video": kind == "video", "emoji": emoji,
                   "set_name": "SandboxPack"}
        return self._customer_message(user, kw.get("chat"), kw.get("reply_to"), sticker=sticker)

    def send_message(self, user: dict | None, *, chat: dict | None = None, reply_to: dict | None = None,
                     **fields) -> dict:
        """Any Bot API Message fields as given (forward_origin, quote, poll, dice, via_bot,
        sender_chat, a service field, one no library knows...): the raw wire format.
        `user` None sends without `from` (as channels do)."""
        return self._customer_message(user, chat, reply_to, **fields)

    def add_file(self, data: bytes, folder: str, ext: str) -> dict:
        """A file the customer's message can refer to: {file_id, file_unique_id, file_size}."""
        with self.lock:
            return self._add_file(data, folder, ext)

    def edit(self, message: dict, text: str) -> dict:
        """The customer edits an earlier message (text, or caption for media)."""
        with self.lock:
            stored = self.messages[(message["chat"]["id"], message["message_id"])]
            media = any(k in stored for k in ("photo", "document", "video", "voice"))
            key = "caption" if media or "caption" in stored else "text"
            stored[key] = text
            stored["edit_date"] = int(time.time())
            self._queue({"edited_message": json.loads(json.dumps(stored))})
            return stored

    def _customer_message(self, user: dict | None, chat: dict | None, reply_to: dict | None, **content) -> dict:
        if chat is None:
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
            for k in ("last_name", "username"):
                if user.get(k):
                    chat[k] = user[k]
        content = {k: v for k, v in content.items() if v not in (None, "")}
        with self.lock:
            msg = self._new_message(chat, user, **content)
            if reply_to is not None:
                msg["reply_to_message"] = self.messages[(reply_to["chat"]["id"], reply_to["message_id"])].copy()
                msg["reply_to_message"].pop("reply_to_message", None)
            self._queue({"message": json.loads(json.dumps(msg))})
            return msg

    def _new_message(self, chat: dict, sender: dict, **content) -> dict:
        self.chats.setdefault(chat["id"], chat)
        ids = self._message_ids.setdefault(chat["id"], itertools.count(1))
        msg = {"message_id": next(ids), "from": sender, "chat": chat, "date": int(time.time()), **content}
        if sender is None:
            del msg["from"]
        self.messages[(chat["id"], msg["message_id"])] = msg
        return msg

    def _queue(self, update: dict) -> None:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        self.delivered.append(update)
        self.changed()

    def _add_file(self, data: bytes, folder: str, ext: str) -> dict:
        n = next(self._file_ids)
        file_id = f"FILE{n:06d}{'x' * 20}"
        self.files[file_id] = {"data": bytes(data), "path": f"{folder}/file_{n}.{ext}"}
        return {"file_id": file_id, "file_unique_id": f"U{n:06d}", "file_size": len(data)}

    # -- reading what the bot did -----------------------------------------------------------
    def wait_sent(self, n: int = 1, timeout: float = 30.0) -> list[dict]:
        """Block until the bot has sent at least `n` things; return them all."""
        return self.wait_for(lambda: list(self.sent) if len(self.sent) >= n else None, timeout)

    def pending_updates(self) -> int:
        with self.lock:
            return len(self.updates)

    # -- the HTTP side ---------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    @staticmethod
    def _error(status: int, description: str, **parameters) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await read_params(request)
        params = {k: (v if k in _STRING_FIELDS or not isinstance(v, str) else _json_or_str(v)) for k, v in raw.items()}
        self.record(method, {k: v for k, v in params.items() if not isinstance(v, tuple)})
        with self.lock:
            self.callers.append((method, request.match_info["token"]))
        if request.match_info["token"] not in self.valid_tokens:
            return self._error(401, "Unauthorized")
        fault = self.take_fault(method)
        if fault and not fault.after:
            if fault.status == 429:
                ra = int(fault.retry_after or 1)
                return self._error(429, f"Too Many Requests: retry after {ra}", retry_after=ra)
            return self._error(fault.status, "Internal Server Error" if fault.status >= 500 else "Bad Request")
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return self._error(404, "Not Found")
        try:
            result = await handler(params)
        except BadRequest as e:
            return self._error(400, f"Bad Request: {e}")
        await self.misbehave(request, fault)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self.valid_tokens:
            return self._error(401, "Unauthorized")
        path = request.match_info["path"]
        with self.lock:
            found = next((f for f in self.files.values() if f["path"] == path), None)
        if found is None:
            return self._error(404, "Not Found")
        return web.Response(body=found["data"], content_type="application/octet-stream")

    # -- methods ----------------------------------------------------------------------------------
    async def _m_getMe(self, params):
        return self.me

    async def _m_deleteWebhook(self, params):
        self.webhook_url = ""
        return True

    async def _m_getWebhookInfo(self, params):
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": 0 if self.webhook_url else len(self.updates)}

    async def _m_getUpdates(self, params):
        offset = params.get("offset")
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        if self.webhook_url:
            return self._error(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
        with self.lock:
            if isinstance(offset, int):
                if offset < 0:
                    self.updates = self.updates[offset:]
                else:  # confirmed updates are forgotten, as on Telegram
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
            self._poll_generation += 1
            generation = self._poll_generation
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if generation != self._poll_generation:
                    return self._error(409, "Conflict: terminated by other getUpdates request; "
                                            "make sure that only one bot instance is running")
                ready = self.updates[:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._stopping:
                return ready
            await self.wait_change(remaining)

    def _chat(self, chat_id) -> dict:
        try:
            return self.chats[int(chat_id)]
        except (KeyError, ValueError, TypeError):
            raise BadRequest("chat not found") from None

    def _check_text(self, text: str | None, parse_mode: str | None, limit: int, what: str) -> str:
        text = text or ""
        plain = parse_html(text) if (parse_mode or "").upper() == "HTML" else text
        if what == "message" and not plain.strip():
            raise BadRequest("message text is empty")
        if utf16_len(plain) > limit:
            raise BadRequest("message is too long" if what == "message" else "message caption is too long")
        return plain

    def _reply_target(self, chat_id: int, params: dict) -> int | None:
        rp = params.get("reply_parameters") or {}
        target = rp.get("message_id") if isinstance(rp, dict) else None
        target = target or params.get("reply_to_message_id")
        if target and (chat_id, int(target)) not in self.messages:
            if not (isinstance(rp, dict) and rp.get("allow_sending_without_reply")):
                raise BadRequest("message to be replied not found")
        return int(target) if target else None

    async def _m_sendMessage(self, params):
        with self.lock:
            chat = self._chat(params.get("chat_id"))
            plain = self._check_text(params.get("text"), params.get("parse_mode"), MAX_TEXT, "message")
            reply_to = self._reply_target(chat["id"], params)
            msg = self._new_message(chat, self.me, text=plain)
            self._record_sent("sendMessage", chat["id"], msg, params, reply_to, text=plain, html=params.get("text"))
            return msg

    async def _send_media(self, kind: str, params: dict) -> dict:
        with self.lock:
            chat = self._chat(params.get("chat_id"))
            caption = self._check_text(params.get("caption"), params.get("parse_mode"), MAX_CAPTION, "caption")
            reply_to = self._reply_target(chat["id"], params)
            upload = params.get(kind)
            if isinstance(upload, tuple):
                filename, ctype, data = upload
            elif isinstance(upload, str) and upload in self.files:
                filename, ctype, data = upload, "", self.files[upload]["data"]
            else:
                raise BadRequest(f"there is no {kind} in the request")
            f = self._add_file(data, kind + "s", filename.rsplit(".", 1)[-1] if "." in filename else "bin")
            media = [{**f, "width": 800, "height": 600}] if kind == "photo" else {**f, "file_name": filename,
                                                                                     "mime_type": ctype}
            msg = self._new_message(chat, self.me, **{kind: media}, **({"caption": caption} if caption else {}))
            self._record_sent("send" + kind.capitalize(), chat["id"], msg, params, reply_to, caption=caption,
                              html=params.get("caption"), file={"filename": filename, "content_type": ctype,
                                                                "data": data})
            return msg

    async def _m_sendPhoto(self, params):
        return await self._send_media("photo", params)

    async def _m_sendDocument(self, params):
        return await self._send_media("document", params)

    async def _m_sendVoice(self, params):
        return await self._send_media("voice", params)

    async def _m_sendVideo(self, params):
        return await self._send_media("video", params)

    async def _m_editMessageText(self, params):
        with self.lock:
            chat = self._chat(params.get("chat_id"))
            msg = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
            if msg is None or msg["from"]["id"] != self.me["id"]:
                raise BadRequest("message to edit not found")
            plain = self._check_text(params.get("text"), params.get("parse_mode"), MAX_TEXT, "message")
            msg["text"] = plain
            msg["edit_date"] = int(time.time())
            self._record_sent("editMessageText", chat["id"], msg, params, None, text=plain, html=params.get("text"))
            return msg

    async def _m_getFile(self, params):
        with self.lock:
            f = self.files.get(params.get("file_id") or "")
            if f is None:
                raise BadRequest("invalid file_id")
            if len(f["data"]) > MAX_GET_FILE:
                raise BadRequest("file is too big")
            n = params["file_id"][4:10]
            return {"file_id": params["file_id"], "file_unique_id": f"U{n}", "file_size": len(f["data"]),
                    "file_path": f["path"]}

    def _record_sent(self, method, chat_id, msg, params, reply_to, **fields) -> None:
        self.sent.append({"method": method, "chat_id": chat_id, "message_id": msg["message_id"],
                          "parse_mode": params.get("parse_mode"), "reply_to": reply_to, **fields})
        self.changed()

    async def on_stop(self) -> None:
        with self.lock:
            self._stopping = True  # long polls end with no updates
        self._wake()


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
