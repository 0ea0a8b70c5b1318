"""Telegram through python-telegram-bot's `Bot`, used directly (no Application,
no webhook).

Inbound: `getUpdates` long polling. `wait()` is the long poll; what it returns
is buffered and handed out by the next `fetch()`. The cursor is the update
offset: Telegram forgets updates only when a later call passes a higher offset,
and we pass the offset saved with the committed rows, so a crash at any point
loses nothing, and a restart does not fetch anything twice.

What the agent sees of each Message field: connectors/telegram_message.py.

Threads: the Bot lives on a private event loop in its own thread. The engine's
poller thread (fetch/wait) and its outbox thread (send) both submit coroutines
to that loop, so the library only ever runs on one thread; long polls use the
Bot's getUpdates connection and sends use its separate pool, so a reply never
waits for a long poll.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dtm
import json
import logging
import os
import threading
import time
import urllib.parse
import warnings

import httpx

from telegram import Bot, ReplyParameters
from telegram import error as tg_error
from telegram.request import HTTPXRequest

from connectors.base import Batch, BaseConnector, ConnectorError, PermanentError, RejectedError, UncertainError
from connectors.secrets import resolve_secret
from connectors.schema import TELEGRAM_FILE_LIMIT, TELEGRAM_OPTIONS, ConfigError, Option
from connectors.formatting import telegram_parts
from connectors.telegram_message import STICKER_FORMATS, describe, is_service
from store.models import AttachmentIn, InboundMessage, OutboundMessage, Receipt, Sender



class _ScrubTokens(logging.Filter):
    """Bot API URLs contain the token, and httpx (INFO) and PTB (DEBUG) log URLs:
    replace every known token in their records."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for s in self.secrets:
                message = message.replace(s, "<token>")
            record.msg, record.args = message, ()
        return True


_SCRUB = _ScrubTokens()
for _logger in (logging.getLogger("httpx"), Bot._LOGGER):
    _logger.addFilter(_SCRUB)

BOT_API_FILE_LIMIT = TELEGRAM_FILE_LIMIT  # getFile refuses larger files
PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto refuses larger photos
UPDATES = ["message", "edited_message"]
BATCH = 100

OPTIONS: dict[str, Option] = TELEGRAM_OPTIONS  # declared in connectors/schema.py

def build(account: str, options: dict, config=None) -> "TelegramConnector":
    where = f"telegram.{account}"
    token = resolve_secret(options, "token", where)
    if not token:
        raise ConfigError(f"{where}: no bot token; set token_env, token_command or token_keyring")
    cap = options.get("max_download_bytes", BOT_API_FILE_LIMIT)
    if config is not None:
        cap = min(cap, config.get("attachments", "max_bytes"))
    return TelegramConnector(account, token, base_url=options.get("base_url", OPTIONS["base_url"].default),
                             base_file_url=options.get("base_file_url", OPTIONS["base_file_url"].default),
                             long_poll=options.get("long_poll_seconds", 25), max_download_bytes=cap,
                             timeout=options.get("timeout", 20.0))


def _seconds(e: tg_error.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta
        warnings.simplefilter("ignore")
        after = e.retry_after
    return after.total_seconds() if isinstance(after, dtm.timedelta) else float(after)


def _after_sending(e: tg_error.NetworkError) -> bool:
    """True when the request may have reached Telegram: the connection failed
    after it was made (read timeout, dropped). False when it never connected,
    or when Telegram answered with an error (a 5xx has no httpx cause)."""
    cause = e.__cause__
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    return isinstance(cause, httpx.HTTPError)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


class TelegramConnector(BaseConnector):
    channel = "telegram"

    def __init__(self, account: str, token: str, *, base_url: str = "https://api.telegram.org/bot",
                 base_file_url: str = "https://api.telegram.org/file/bot", long_poll: int = 25,
                 max_download_bytes: int = BOT_API_FILE_LIMIT, timeout: float = 20.0):
        super().__init__(account)
        self._secrets = {token, urllib.parse.quote(token, safe="")}
        _SCRUB.secrets.update(self._secrets)
        self.long_poll = max(0, int(long_poll))
        self.max_download_bytes = min(max_download_bytes, BOT_API_FILE_LIMIT)
        self.timeout = timeout
        self._bot = Bot(token, base_url=base_url, base_file_url=base_file_url,
                        request=HTTPXRequest(connection_pool_size=8, read_timeout=timeout, write_timeout=timeout),
                        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=timeout))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"omnidesk {self.name} loop", daemon=True)
        self._thread.start()
        self._ready = False
        self._offset: int | None = None  # the offset of the last cursor handed out
        self._buffer: tuple[int | None, tuple] | None = None  # (offset asked, updates) from wait()

    # -- running the async library from engine threads ---------------------------------
    def _submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, coro, timeout: float | None = None):
        return self._result(self._submit(coro), timeout or self.timeout * 3)

    def _result(self, fut: concurrent.futures.Future, timeout: float):
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ConnectorError("Telegram did not answer in time") from None
        except tg_error.TelegramError as e:
            raise self._map_error(e) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<token>")
        return " ".join(text.split())[:300]


    scrub = _scrub  # the engine scrubs health and errors through this
    def _map_error(self, e: tg_error.TelegramError) -> ConnectorError:
        if isinstance(e, tg_error.RetryAfter):
            seconds = _seconds(e)
            return ConnectorError(f"Telegram rate limit: retry after {seconds:.0f}s", retry_after=seconds)
        if isinstance(e, tg_error.InvalidToken):
            return PermanentError("Telegram rejected the bot token (401 Unauthorized); check the token in the config")
        if isinstance(e, tg_error.Conflict):
            if "webhook" in e.message.lower():
                return PermanentError("this bot has a webhook set, so it cannot be polled; delete the webhook "
                                      "(deleteWebhook) or use another bot")
            return ConnectorError("another program is polling this bot (409 Conflict)")
        if isinstance(e, tg_error.Forbidden):  # e.g. the customer blocked the bot: this chat only
            return RejectedError(f"Telegram refused: {self._scrub(e.message)}")
        if isinstance(e, tg_error.BadRequest):  # e.g. chat not found: retrying sends the same request
            return RejectedError(f"Telegram rejected the request: {self._scrub(e.message)}")
        if isinstance(e, tg_error.TimedOut):
            return ConnectorError("Telegram did not answer in time")
        if isinstance(e, tg_error.NetworkError):
            if not isinstance(e.__cause__, httpx.HTTPError):  # Telegram answered, with a 5xx
                return ConnectorError(f"Telegram server error: {self._scrub(e.message)}")
            return ConnectorError(f"cannot reach Telegram: {self._scrub(e.message)}")
        return ConnectorError(f"Telegram error: {self._scrub(e.message)}")

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._call(self._bot.initialize())  # getMe: checks the token
            self._ready = True

    def probe(self) -> str:
        """A live check for `omnidesk doctor`: the token works and polling is possible."""
        self._ensure_ready()
        me = self._bot.bot
        webhook = self._call(self._bot.get_webhook_info())
        note = "; a webhook is set, so getUpdates will fail (delete it)" if webhook.url else ""
        return f"bot @{me.username} (id {me.id}){note}"

    # -- inbound ---------------------------------------------------------------------------
    def fetch(self, cursor: dict[str, str]) -> Batch:
        self._ensure_ready()
        offset = int(cursor["offset"]) if cursor.get("offset") else None
        buffered, self._buffer = self._buffer, None
        if buffered is not None and buffered[0] == offset:
            updates = buffered[1]
        else:
            updates = self._call(self._bot.get_updates(offset=offset, limit=BATCH, timeout=0,
                                                       allowed_updates=UPDATES))
        items = self._call(self._convert_all(updates), timeout=self.timeout * (2 + len(updates)))
        if updates:
            offset = updates[-1].update_id + 1
        self._offset = offset
        return Batch(items, {"offset": str(offset)} if offset is not None else {}, more=len(updates) >= BATCH)

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Long-poll until updates arrive (kept for the next fetch), the timeout
        passes or `stop` is set (the poll is then abandoned)."""
        seconds = int(min(timeout, self.long_poll))
        if self._buffer is not None or stop.is_set():
            return
        if seconds <= 0 or not self._ready:
            stop.wait(max(0.0, timeout))
            return
        offset = self._offset
        fut = self._submit(self._bot.get_updates(offset=offset, limit=BATCH, timeout=seconds,
                                                 allowed_updates=UPDATES))
        done = threading.Event()
        fut.add_done_callback(lambda _f: done.set())
        while not done.wait(0.05):
            if stop.is_set():
                fut.cancel()
                return
        if fut.cancelled():
            return
        updates = self._result(fut, 1)
        if updates:
            self._buffer = (offset, updates)

    async def _convert_all(self, updates) -> list[InboundMessage]:
        out = []
        for update in updates:
            item = await self._convert(update)
            if item is not None:
                out.append(item)
        return out

    async def _convert(self, update) -> InboundMessage | None:
        msg = update.message or update.edited_message
        if msg is None or is_service(msg) or msg.is_automatic_forward:
            return None  # service messages; a channel's post copied into its discussion group
        user = msg.from_user
        if msg.sender_chat is not None:  # sent as a chat (anonymous admin, a channel): the chat speaks
            sender = Sender("telegram", str(msg.sender_chat.id), msg.sender_chat.effective_name or "",
                            msg.sender_chat.username or "")
        elif user is None or user.is_bot:
            return None
        else:
            sender = None
        seen = describe(msg)
        if sender is None:
            sender = Sender("telegram", str(user.id), user.full_name, user.username or "", phones=seen.phones)
        chat_id = msg.chat.id
        edit = update.edited_message is not None
        attachments: list[AttachmentIn] = []
        skipped: list[dict] = []
        notes: list[str] = []
        # an edit carries the same notes but downloads nothing again
        await self._download_media(seen.media, attachments, skipped, notes, download=not edit)
        text = "\n".join(filter(None, [seen.text, *notes]))
        meta = {"chat_id": chat_id, "message_id": msg.message_id, "chat_type": msg.chat.type, **seen.meta}
        if skipped:
            meta["skipped_files"] = skipped
        sent_at = msg.date.timestamp()
        if edit:
            meta["edited_at"] = (msg.edit_date or msg.date).timestamp()
        reply_to = msg.reply_to_message
        return InboundMessage(
            channel="telegram", account=self.account, external_id=f"{chat_id}:{msg.message_id}",
            sender=sender, text=text, sent_at=sent_at, thread_key=str(chat_id),
            reply_to=f"{chat_id}:{reply_to.message_id}" if reply_to else None,
            attachments=attachments, raw=json.dumps(update.to_dict(), ensure_ascii=False).encode("utf-8"),
            meta=meta, kind="edit" if edit else "message",
        )

    async def _download_media(self, media: list, attachments: list, skipped: list, notes: list,
                              download: bool) -> None:
        for m in media:
            name, ctype, obj = m.name, m.content_type, m.obj
            size = obj.file_size or 0
            if size > self.max_download_bytes:
                skipped.append({"filename": name, "size": size, "file_id": obj.file_id})
                attachments.append(AttachmentIn(name, ctype, None, size=size))
                notes.append(f"[{name}, {_mb(size)}: not downloaded, larger than the "
                             f"{_mb(self.max_download_bytes)} limit]")
                continue
            if not download:
                continue
            try:
                tg_file = await self._bot.get_file(obj.file_id)
                data = bytes(await tg_file.download_as_bytearray())
            except tg_error.BadRequest as e:  # gone or too big: keep the message, say so
                skipped.append({"filename": name, "size": size, "file_id": obj.file_id})
                attachments.append(AttachmentIn(name, ctype, None, size=size))
                notes.append(f"[{name}: could not be downloaded: {self._scrub(e.message)}]")
                continue
            ext = os.path.splitext(tg_file.file_path or "")[1].lower()
            if m.field == "sticker" and ext in STICKER_FORMATS:  # the file's own format decides
                name, ctype = os.path.splitext(name)[0] + ext, STICKER_FORMATS[ext]
            attachments.append(AttachmentIn(name, ctype, data))

    # -- outbound ----------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> Receipt:
        self._ensure_ready()
        parent = message.parent if message.parent and message.parent.channel == "telegram" else None
        meta = parent.meta if parent else {}
        chat_id = meta.get("chat_id") or int(message.to_address)
        reply_to = meta.get("message_id")
        for att in message.attachments:
            if not att.path or not os.path.exists(att.path):
                raise ConnectorError(f"attachment {att.filename!r} is not in the store (over the size cap?); remove it")
        # One part at a time from this (the outbox) thread, each recorded as it goes
        # out, so a retry resumes at the next part and never repeats one.
        ids = [int(i) for i in message.parts_done]
        # only the first part answers the customer's message
        first = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        calls = [lambda part=part, reply=(first if n == 0 else None):
                 self._bot.send_message(chat_id, part, parse_mode="HTML", reply_parameters=reply)
                 for n, part in enumerate(telegram_parts(message.text))]
        for att in message.attachments:
            photo = att.content_type in ("image/jpeg", "image/png") and att.size <= PHOTO_LIMIT

            async def upload(att=att, photo=photo):
                with open(att.path, "rb") as f:
                    if photo:
                        return await self._bot.send_photo(chat_id, f, filename=att.filename)
                    return await self._bot.send_document(chat_id, f, filename=att.filename)
            calls.append(upload)
        for call in calls[len(ids):]:
            part_id = self._deliver(call, first=not ids)
            ids.append(part_id)
            if message.on_part:
                message.on_part(str(part_id))
        return Receipt(external_id=f"{chat_id}:{ids[0]}",
                       meta={"chat_id": chat_id, "message_id": ids[0], "message_ids": ids})

    def _deliver(self, call, first: bool) -> int:
        """Send one part; its message id. Short flood waits after the first part
        are waited out here; a timeout or a dropped connection after the request
        went out is "may have been delivered" (UncertainError), never retried."""
        for _ in range(3):
            fut = self._submit(call())
            try:
                return fut.result(self.timeout * 3).message_id
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise UncertainError("Telegram did not answer in time") from None
            except tg_error.RetryAfter as e:
                seconds = _seconds(e)
                if first or seconds > 10:
                    raise self._map_error(e) from None
                time.sleep(seconds)
            except tg_error.TelegramError as e:
                if isinstance(e, tg_error.NetworkError) and _after_sending(e):
                    raise UncertainError(f"Telegram: no answer after sending ({self._scrub(e.message)})") from None
                raise self._map_error(e) from None
        raise ConnectorError("Telegram kept rate-limiting the rest of a long reply")

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def shutdown():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await self._bot.shutdown()

        try:
            self._submit(shutdown()).result(5)
        except Exception:  # closing is best effort
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
