"""What the agent sees of a Bot API `Message`, field by field.

Two rules: the agent must never take someone else's words for the customer's
(forwards, quotes, replies and shared stories are shown as `> ` lines under
who wrote them), and must never miss that something was sent (every content
field becomes an attachment or a `[...]` note; a field this module does not
know is named, not dropped). Service messages (members joining, pins, title
changes, topics) are not a customer's message and are skipped.

`describe(msg)` works on python-telegram-bot objects and does no I/O: the
connector downloads what `Seen.media` lists.
"""
from __future__ import annotations

import datetime as dtm
import warnings
from dataclasses import dataclass, field

from connectors.markup import telegram_text

# Service messages: something happened in the chat; nobody wrote anything.
SERVICE = ("new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
           "group_chat_created", "supergroup_chat_created", "channel_chat_created", "message_auto_delete_timer_changed",
           "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message", "forum_topic_created", "forum_topic_edited",
           "forum_topic_closed", "forum_topic_reopened", "general_forum_topic_hidden", "general_forum_topic_unhidden",
           "video_chat_scheduled", "video_chat_started", "video_chat_ended", "video_chat_participants_invited",
           "write_access_allowed", "proximity_alert_triggered", "boost_added", "chat_background_set",
           "giveaway_created", "giveaway_completed", "chat_owner_changed", "chat_owner_left",
           "direct_message_price_changed", "paid_message_price_changed", "checklist_tasks_done",
           "checklist_tasks_added", "suggested_post_approved", "suggested_post_approval_failed",
           "suggested_post_declined", "suggested_post_paid", "suggested_post_refunded", "gift_upgrade_sent",
           "managed_bot_created", "poll_option_added", "poll_option_deleted")

# Fields that carry no content of their own (ids, flags, formatting, routing).
_PLAIN = {"message_id", "date", "chat", "from_user", "sender_chat", "edit_date", "text", "entities", "caption",
          "caption_entities", "message_thread_id", "is_topic_message", "media_group_id", "author_signature",
          "has_protected_content", "link_preview_options", "effect_id", "show_caption_above_media",
          "reply_markup", "business_connection_id", "sender_boost_count", "is_from_offline", "has_media_spoiler",
          "reply_to_message", "quote", "external_reply", "reply_to_story", "forward_origin", "via_bot",
          "is_automatic_forward", "paid_star_count", "sender_business_bot", "direct_messages_topic",
          "reply_to_checklist_task_id", "reply_to_poll_option_id", "is_paid_post", "suggested_post_info",
          "sender_tag", "guest_query_id", "guest_bot_caller_user", "guest_bot_caller_chat", "_effective_attachment"}

# (field, default name, default content type); stickers are decided by their format
MEDIA = [
    ("photo", "photo_{id}.jpg", "image/jpeg"),
    ("animation", "animation_{id}.mp4", "video/mp4"),  # before document: Telegram sets both for a GIF
    ("document", "document_{id}", "application/octet-stream"),
    ("voice", "voice_{id}.ogg", "audio/ogg"),
    ("video", "video_{id}.mp4", "video/mp4"),
    ("audio", "audio_{id}.mp3", "audio/mpeg"),
    ("video_note", "video_note_{id}.mp4", "video/mp4"),
    ("sticker", "sticker_{id}.webp", "image/webp"),
    ("live_photo", "live_photo_{id}.mp4", "video/mp4"),
]
STICKER_FORMATS = {".webp": "image/webp", ".tgs": "application/x-tgsticker", ".webm": "video/webm"}
_HANDLED = {m[0] for m in MEDIA} | {"contact", "location", "venue", "poll", "dice", "game", "story", "invoice",
                                    "successful_payment", "refunded_payment", "paid_media", "giveaway",
                                    "giveaway_winners", "checklist", "web_app_data", "users_shared", "chat_shared",
                                    "passport_data", "gift", "unique_gift", "connected_website"}


@dataclass
class Media:
    field: str
    obj: object  # a PTB file object (PhotoSize, Document, Sticker ...)
    name: str
    content_type: str


@dataclass
class Seen:
    text: str = ""
    media: list[Media] = field(default_factory=list)
    phones: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)


def person(user) -> str:
    """A user or chat as the agent reads it: 'Name (@handle)'."""
    if user is None:
        return "someone"
    name = getattr(user, "full_name", None) or getattr(user, "title", None) or getattr(user, "effective_name", None)
    handle = getattr(user, "username", None)
    if name and handle:
        return f"{name} (@{handle})"
    return name or (f"@{handle}" if handle else f"id {user.id}")


def _quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _when(date) -> str:
    return date.astimezone(dtm.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if date else ""


def _duration(obj) -> str:
    with warnings.catch_warnings():  # PTB 22 warns that durations become timedeltas
        warnings.simplefilter("ignore")
        seconds = obj.duration
    if isinstance(seconds, dtm.timedelta):
        seconds = seconds.total_seconds()
    seconds = int(seconds or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def origin(o) -> str:
    """Who wrote a forwarded message (MessageOrigin): user, hidden user, chat or channel."""
    kind = getattr(o, "type", "")
    if kind == "user":
        return person(o.sender_user)
    if kind == "hidden_user":
        return f"{o.sender_user_name} (hidden account)"
    if kind in ("chat", "channel"):
        chat = o.sender_chat if kind == "chat" else o.chat
        who = person(chat)
        return f"{o.author_signature} in {who}" if getattr(o, "author_signature", None) else who
    return "someone"


def _content_notes(msg) -> list[str]:
    """A `[...]` line for every content field other than text and files."""
    notes = []
    if msg.contact:
        c = msg.contact
        notes.append(f"[shared contact: {' '.join(filter(None, [c.first_name, c.last_name]))}, {c.phone_number}]")
    if msg.venue:
        notes.append(f"[venue: {msg.venue.title}, {msg.venue.address} "
                     f"({msg.venue.location.latitude:.5f}, {msg.venue.location.longitude:.5f})]")
    elif msg.location:
        live = " (live location)" if msg.location.live_period else ""
        notes.append(f"[location: {msg.location.latitude:.5f}, {msg.location.longitude:.5f}{live}]")
    if msg.poll:
        p = msg.poll
        options = " / ".join(o.text for o in p.options)
        kind = "quiz" if p.type == "quiz" else "poll"
        notes.append(f"[{kind}: {p.question} — {options}]")
    if msg.dice:
        notes.append(f"[dice {msg.dice.emoji}: {msg.dice.value}]")
    if msg.game:
        notes.append(f"[game: {msg.game.title}]")
    if msg.story:
        notes.append(f"[shared a story by {person(msg.story.chat)}]")
    if msg.invoice:
        i = msg.invoice
        notes.append(f"[invoice: {i.title}, {i.total_amount} {i.currency} (minor units)]")
    if msg.successful_payment:
        p = msg.successful_payment
        notes.append(f"[payment received: {p.total_amount} {p.currency} (minor units), "
                     f"charge {p.telegram_payment_charge_id}, payload {p.invoice_payload!r}]")
    if msg.refunded_payment:
        p = msg.refunded_payment
        notes.append(f"[payment refunded: {p.total_amount} {p.currency}, charge {p.telegram_payment_charge_id}]")
    if msg.paid_media:
        notes.append(f"[paid media: {len(msg.paid_media.paid_media)} item(s) for {msg.paid_media.star_count} "
                     "stars, not visible to the bot]")
    if msg.giveaway or msg.giveaway_winners:
        notes.append("[giveaway]")
    if msg.checklist:
        tasks = "; ".join(t.text for t in msg.checklist.tasks)
        notes.append(f"[checklist: {msg.checklist.title}: {tasks}]")
    if msg.web_app_data:
        notes.append(f"[from the web app button {msg.web_app_data.button_text!r}: {msg.web_app_data.data}]")
    if msg.users_shared:
        notes.append(f"[shared users: {', '.join(str(u.user_id) for u in msg.users_shared.users)}]")
    if msg.chat_shared:
        notes.append(f"[shared a chat: {msg.chat_shared.title or msg.chat_shared.chat_id}]")
    if msg.passport_data:
        notes.append("[Telegram Passport data: not shown]")
    if msg.gift or msg.unique_gift:
        notes.append("[sent a gift]")
    if msg.connected_website:
        notes.append(f"[logged in on {msg.connected_website}]")
    return notes


def _media(msg) -> tuple[list[Media], list[str]]:
    media, notes = [], []
    for name, default_name, default_type in MEDIA:
        obj = getattr(msg, name, None)
        if not obj or (name == "document" and msg.animation):
            continue
        if isinstance(obj, tuple):  # photo sizes: take the largest
            obj = obj[-1]
        filename = getattr(obj, "file_name", None) or default_name.format(id=msg.message_id)
        ctype = getattr(obj, "mime_type", None) or default_type
        if name == "sticker":
            ext = ".tgs" if obj.is_animated else ".webm" if obj.is_video else ".webp"
            filename, ctype = f"sticker_{msg.message_id}{ext}", STICKER_FORMATS[ext]
            notes.append(f"[sticker {obj.emoji or ''}".rstrip() + "]")
        elif name == "voice":
            notes.append(f"[voice message, {_duration(obj)}]")
        elif name == "video_note":
            notes.append(f"[video message, {_duration(obj)}]")
        elif name == "audio" and (obj.title or obj.performer):
            notes.append(f"[audio: {' – '.join(filter(None, [obj.performer, obj.title]))}]")
        media.append(Media(name, obj, filename, ctype))
    if media and msg.has_media_spoiler:
        notes.append("[sent hidden as a spoiler]")
    return media, notes


def _context(msg) -> list[str]:
    """What the message answers or quotes, before the customer's own words."""
    lines = []
    reply = msg.reply_to_message
    quote = msg.quote
    if msg.reply_to_story:
        lines.append(f"[in reply to a story by {person(msg.reply_to_story.chat)}]")
    if msg.external_reply:
        e = msg.external_reply
        where = f" in {person(e.chat)}" if e.chat else ""
        lines.append(f"[in reply to a message by {origin(e.origin)}{where}{', quoting:' if quote else ''}]")
    elif reply is not None and quote:
        lines.append(f"[in reply to {person(reply.sender_chat or reply.from_user)}, quoting:]")
    elif reply is not None and reply.from_user and msg.from_user and reply.from_user.id != msg.from_user.id \
            and not reply.from_user.is_bot:  # in a group: someone else's message, shown so it is not taken for theirs
        said = telegram_text(reply.text or reply.caption or "", reply.entities or reply.caption_entities or ())
        lines.append(f"[in reply to {person(reply.from_user)}:]")
        if said:
            lines.append(_quoted(said[:300] + ("…" if len(said) > 300 else "")))
    if quote:
        lines.append(_quoted(telegram_text(quote.text, quote.entities)))
    return lines


def describe(msg) -> Seen:
    """What the agent must see of `msg` (a PTB Message)."""
    seen = Seen()
    own = telegram_text(msg.text or msg.caption or "", msg.entities or msg.caption_entities or ())
    media, media_notes = _media(msg)
    notes = media_notes + _content_notes(msg)
    unknown = sorted(k for k in (msg.api_kwargs or {}))
    unknown += [k for k in set_fields(msg) if k not in _PLAIN and k not in _HANDLED and k not in SERVICE]
    if unknown:  # a newer Bot API field: name it rather than drop it
        notes.append(f"[this message also has {', '.join(unknown)}, which omnidesk cannot show]")
    body = "\n".join(filter(None, [own, *notes]))
    if msg.forward_origin:  # all of it is someone else's
        o = msg.forward_origin
        seen.meta["forwarded_from"] = origin(o)
        body = f"[forwarded from {origin(o)}, {_when(o.date)}]\n" + _quoted(body)
    if msg.via_bot:
        body += f"\n[sent via the bot {person(msg.via_bot)}]"
        seen.meta["via_bot"] = msg.via_bot.username
    seen.text = "\n".join(filter(None, [*_context(msg), body]))
    seen.media = media
    if msg.contact and msg.contact.user_id == getattr(msg.from_user, "id", None) and not msg.forward_origin:
        seen.phones = (msg.contact.phone_number,)  # their own number: evidence that links identities
    if msg.sender_chat:
        seen.meta["sender_chat"] = msg.sender_chat.id
    if msg.message_thread_id and msg.is_topic_message:
        seen.meta["topic_id"] = msg.message_thread_id
    if msg.media_group_id:
        seen.meta["album"] = msg.media_group_id
    return seen


def set_fields(msg) -> list[str]:
    """The message's set fields (PTB's Message keeps one slot per Bot API field)."""
    return [name for name in type(msg).__slots__
            if not name.startswith("_") and getattr(msg, name, None) not in (None, (), [], False, "")]


def is_service(msg) -> bool:
    """A service message (nobody wrote anything): members, pins, titles, topics..."""
    return any(getattr(msg, f, None) not in (None, (), False) for f in SERVICE)
