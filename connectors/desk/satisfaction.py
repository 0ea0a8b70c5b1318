"""Satisfaction: an optional question when a case is done, and its answer.

    [satisfaction]
    template = "closing"   # sent when a customer is set to done (the starter set has one)
    expires = "7d"         # an answer later than this is treated as a new message

The question goes out on the channel the customer used last, only when a
person answered them in that case (no survey after closing spam); on e-mail it
answers the customer's own thread (their subject, "Re: ..."), the template's
subject is used only when there is no thread. Their next inbound message, if
it is only an answer, is recorded as a rating (1-5) and the case stays done;
anything else leaves the question open only to a direct reply to it (a
Telegram reply to the question, a Slack reply in its thread, a mail answering
it) and is handled as a normal message. The rating is read from the customer's
new words only: the text above the quote in an e-mail (the parser's new_text),
without Slack @mentions. Recognised answers, with or without "thanks":

    1 .. 5, 5️⃣, "4/5", "4 of 5", "4 out of 5", "5 stars", "4 von 5", "4 sur 5"   -> that number
    ★★★★☆ ⭐⭐⭐⭐ :star::star::star: *****                                -> the stars counted
    👍 :+1: :thumbsup: 😍 -> 5   🙂 -> 4   😐 -> 3   🙁 -> 2   👎 :-1: :thumbsdown: 😡 -> 1
    words in English, German, French, Spanish, Italian, Dutch, Portuguese and
    Swedish: great, super, sehr gut, excellent, excelente, ottimo ... -> 5;
    good, gut, bien, bueno, goed, bom, bra ... -> 4; ok, okay, so so, moyen,
    regular ... -> 3; bad, schlecht, mauvais, malo ... -> 2; terrible,
    sehr schlecht, nul, pésimo ... -> 1
"""
from __future__ import annotations

import re
from typing import Any, TYPE_CHECKING

from connectors.schema import ConfigError

if TYPE_CHECKING:
    from connectors.config import Config
from connectors.desk.targets import parse_duration

KEYS = ("template", "expires")
WORDS = {
    # English
    "great": 5, "excellent": 5, "perfect": 5, "awesome": 5, "amazing": 5, "fantastic": 5, "very good": 5,
    "brilliant": 5, "super": 5, "good": 4, "fine": 4, "ok": 3, "okay": 3, "so so": 3, "so-so": 3, "average": 3,
    "bad": 2, "poor": 2, "terrible": 1, "awful": 1, "horrible": 1, "very bad": 1,
    # German
    "sehr gut": 5, "ausgezeichnet": 5, "perfekt": 5, "toll": 5, "gut": 4, "geht so": 3, "mittel": 3,
    "schlecht": 2, "sehr schlecht": 1, "furchtbar": 1,
    # French
    "parfait": 5, "très bien": 5, "tres bien": 5, "génial": 5, "bien": 4, "bon": 4, "moyen": 3, "bof": 3,
    "mauvais": 2, "très mauvais": 1, "nul": 1,
    # Spanish, Portuguese, Italian
    "excelente": 5, "perfecto": 5, "muy bien": 5, "muy bueno": 5, "bueno": 4, "regular": 3, "malo": 2,
    "muy malo": 1, "pésimo": 1, "pesimo": 1, "ótimo": 5, "otimo": 5, "muito bom": 5, "bom": 4, "ruim": 2,
    "péssimo": 1, "ottimo": 5, "eccellente": 5, "perfetto": 5, "buono": 4, "bene": 4, "così così": 3,
    "male": 2, "pessimo": 1,
    # Dutch, Swedish
    "uitstekend": 5, "heel goed": 5, "goed": 4, "prima": 4, "matig": 3, "slecht": 2, "heel slecht": 1,
    "utmärkt": 5, "mycket bra": 5, "bra": 4, "dålig": 2, "dåligt": 2,
}
THUMBS = {"👍": 5, ":+1:": 5, ":thumbsup:": 5, ":thumbs_up:": 5, "👎": 1, ":-1:": 1, ":thumbsdown:": 1,
          ":thumbs_down:": 1, "😍": 5, "🤩": 5, "🙂": 4, "😊": 4, ":slightly_smiling_face:": 4, "😐": 3,
          ":neutral_face:": 3, "🙁": 2, "☹": 2, ":slightly_frowning_face:": 2, "😡": 1, "😠": 1, ":rage:": 1}
_POLITE = re.compile(r"(?<!\w)(thanks|thank you|thx|ty|cheers|danke|merci|gracias|grazie|obrigad[oa]|bedankt|"
                     r"dank je|tack)(?!\w)", re.I)
# "5", "5/5", "4 of 5", "4 out of 5", "5 stars", "4 von 5", "4 sur 5", "4 de 5", "4 su 5", "4 uit 5", "4 av 5"
_NUMBER = re.compile(r"([1-5])(?:[.,]0)?\s*(?:(?:/|of|out of|von|sur|de|su|uit|av)\s*5)?\s*"
                     r"(?:stars?|sterne?|étoiles?|estrellas?|stelle|sterren|stjärnor|points?|punkte|⭐|★|:star:)?")
_STARS = re.compile(r"(?:[★⭐]|:star:|\*)+[☆]*")
_SKIN = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F\u20E3]|:skin-tone-[2-6]:")
_MENTION = re.compile(r"<[@!#][^>]*>")  # Slack: <@U123> and the like


def validate(table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError('[satisfaction]: expected a table like [satisfaction] template = "closing"')
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"satisfaction.{key}: unknown key; expected one of {', '.join(KEYS)}")
    if "template" in table and (not isinstance(table["template"], str) or not table["template"]):
        raise ConfigError(f"satisfaction.template: expected a template name, got {table['template']!r}")
    if "expires" in table:
        parse_duration(table["expires"], "satisfaction.expires")




def parse_answer(text: str | None) -> int | None:
    """A score 1-5 if the whole message is a rating (see the module docstring), else None."""
    t = _MENTION.sub(" ", (text or "")[:120])
    t = _POLITE.sub(" ", _SKIN.sub("", t).lower())
    t = " ".join(t.split()).strip(" !.,;-–—")
    if not t or len(t) > 40:
        return None
    if _STARS.fullmatch(t.replace(" ", "")):
        n = len(re.findall(r"[★⭐*]|:star:", t))
        return n if 1 <= n <= 5 else None
    if not re.fullmatch(r"(:[a-z0-9_+-]+:\s*)+", t):  # keep :+1: whole; drop a trailing "5:"
        t = t.strip(" :")
    compact = t.replace(" ", "")
    for form, score in THUMBS.items():  # 👍, 👍👍, 👍 👍
        if compact == form * (len(compact) // len(form)):
            return score
    number = _NUMBER.fullmatch(t)
    if number:
        return int(number.group(1))
    return WORDS.get(t)


_CONTEXT = re.compile(r"\[(?:in reply to|forwarded from|shared a message from)\b[^\]]*\]")


def new_words(message) -> str:
    """What the customer wrote this time: an e-mail's text above the quote (the
    parser's new_text); elsewhere the text without the quoted lines ("> ...")
    and the notes about them that a Telegram reply-with-quote or a Slack share
    carries."""
    meta = message.meta or {}
    new = meta.get("new_text")
    if isinstance(new, str) and new.strip():
        return new
    lines = [line for line in (message.text or "").splitlines()
             if not line.lstrip().startswith(">") and not _CONTEXT.fullmatch(line.strip())]
    return "\n".join(lines)


class Satisfaction:
    def __init__(self, table: dict | None = None, config: Config | None = None):
        table = table or {}
        validate(table)
        self.template = table.get("template")
        self.expires = parse_duration(table.get("expires", "7d"), "satisfaction.expires")
        self.config = config

    @classmethod
    def from_config(cls, config: Config | None) -> "Satisfaction":
        return cls((config.extra.get("satisfaction") if config else None) or {}, config)

    def ask(self, store, customer_id: int, done_at: float) -> int | None:
        """Queue the question after a case was set to done; returns the reply's id."""
        if not self.template:
            return None
        if not store.had_agent_reply_since(customer_id, store.case_start(customer_id, before=done_at) or -1e18):
            # never silent: the event log says why this customer got no question
            store.log_event("survey_skipped", "satisfaction", customer_id, reason="no reply of ours in this case")
            return None
        from connectors.desk import templates

        customer = store.customer(customer_id)
        channel = customer.last_channel or (customer.channels[0] if customer.channels else None)
        if channel is None:
            store.log_event("survey_skipped", "satisfaction", customer_id, reason="no channel to ask on")
            return None
        agent = self.config.agent if self.config else "omnidesk"
        rendered = templates.render_for_customer(store, customer_id, self.template, channel, agent, config=self.config)
        # on e-mail, answer in the customer's thread: the store gives it "Re: <their subject>"
        last = store.last_inbound_id(customer_id, channel)
        subject = None if last is not None and store.message(last).subject else rendered.subject
        message_id = store.queue_auto_reply(customer_id, rendered.source, "satisfaction", channel=channel,
                                            subject=subject, author="satisfaction", event="survey")
        store.ask_survey(customer_id, channel, message_id)
        return message_id

    def take_answer(self, store, message) -> int | None:
        """If `message` answers a pending question, record it; returns the score.
        Any other message leaves the question open only to a direct reply to it."""
        survey = store.pending_survey(message.customer_id)
        if survey is None:
            return None
        if store.clock() > survey["asked_at"] + self.expires:
            store.drop_survey(message.customer_id)
            return None
        question = store.message(survey["message_id"]) if survey["message_id"] else None
        direct = bool(question is not None and message.reply_to and message.reply_to in _answers_to(question))
        score = parse_answer(new_words(message))
        if score is None or message.sent_at < survey["asked_at"] - 60 or not (survey["open"] or direct):
            if survey["open"] and not direct:
                store.close_survey(message.customer_id)  # something else was said: only a direct reply counts now
            return None
        store.record_rating(message.customer_id, message.id, message.channel, score, new_words(message)[:80])
        return score


def _answers_to(question) -> set[str]:
    """What a direct answer's reply_to is: the question's own id (a Telegram
    reply, a mail's In-Reply-To, a Slack thread on it), or on Slack the thread
    the question was posted in."""
    ids = {question.external_id} if question.external_id else set()
    thread = (question.meta or {}).get("thread_ts")
    if question.channel == "slack" and thread and question.external_id:
        ids.add(f"{question.external_id.split(':', 1)[0]}:{thread}")
    return ids
