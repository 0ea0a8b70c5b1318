"""Quoted history and signatures: CRLF and LF mail fold the same way (issue 13.5)."""
from __future__ import annotations

import json

import pytest

from connectors.email.parse import parse
from connectors.email.quotes import fold, split_reply
from console.cli import main
from store import Store
from tests.support.console import make_app, open_customer, screen_text, settle

pytestmark = pytest.mark.anyio

BODY = ("Hi,\n\nthe parcel came today but the lid is cracked.\nCan you send a new one?\n\n"
        "Best regards,\nJane Roe\n\n"
        "On Mon, 14 Sep 2026 at 10:02, Shop Support <support@shop.test> wrote:\n"
        "> Your order 1042 has shipped.\n> Tracking: 00340434161094042557\n")


def mail(body: str, ident: str, newline: str) -> bytes:
    head = (f"From: Jane Roe <jane@roe.example>\nTo: support@shop.test\nSubject: Re: Order 1042\n"
            f"Message-ID: <{ident}@roe.example>\nDate: Tue, 15 Sep 2026 09:00:00 +0000\n"
            "Content-Type: text/plain; charset=utf-8\n\n")
    return (head + body).replace("\n", newline).encode()


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_crlf_and_lf_mail_split_alike():
    lf, crlf = parse(mail(BODY, "lf", "\n"), "w"), parse(mail(BODY, "crlf", "\r\n"), "w")
    assert "\r" not in crlf.text and crlf.text == lf.text
    for item in (lf, crlf):
        assert item.meta["new_text"] == "Hi,\n\nthe parcel came today but the lid is cracked.\nCan you send a new one?"
        assert item.meta["signature"] == "Best regards,\nJane Roe"
    # a lone-CR body (old Mac mail) too
    assert split_reply(BODY.replace("\n", "\r")).new_text == lf.meta["new_text"]


def test_a_stored_crlf_text_folds_like_lf():
    """Rows stored before line ends were normalized still fold: new text once, the rest apart."""
    reply = split_reply(BODY)
    shown = fold(BODY.replace("\n", "\r\n"), reply.new_text, reply.signature)
    assert shown.new == reply.new_text and not shown.interleaved
    assert shown.signature == "Best regards,\nJane Roe"
    assert shown.quoted.startswith("On Mon, 14 Sep 2026") and shown.quoted.count("\n") == 2
    assert shown.summary() == "signature and 3 quoted lines folded"


def test_a_signature_alone_is_not_called_quoted():
    shown = fold("Thanks, the lid fits now.\n\n-- \nJane Roe\nRoe Ceramics")
    assert shown.new == "Thanks, the lid fits now." and shown.quoted == ""
    assert shown.summary() == "signature folded"


def test_a_sign_off_word_inside_a_sentence_is_text():
    text = "Hello,\nThanks, the new vase arrived today and it is perfect.\nTake care"
    assert split_reply(text).new_text == text  # neither "Thanks," nor "Tak" end the message here


def test_json_text_has_no_crlf(capsys, tmp_path):
    db = str(tmp_path / "o.db")
    store = Store(db)
    result = store.ingest(parse(mail(BODY, "json", "\r\n"), "w"))
    store.close()
    assert main(["--db", db, "--json", "show", str(result.customer_id)]) == 0
    out = capsys.readouterr().out
    assert "\\r" not in out and "the parcel came today" in out
    json.loads(out)


async def test_console_folds_crlf_and_lf_mail_the_same(db_path, clock, tmp_path):
    store = Store(db_path, clock=clock)
    ids = [store.ingest(parse(mail(BODY, name, nl), "w")).customer_id for name, nl in (("a", "\n"), ("b", "\r\n"))]
    store.close()
    assert ids[0] == ids[1]  # the same customer: both mails on one timeline
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids[0])
        text = screen_text(app)
        assert text.count("the lid is cracked") == 2  # each mail's new text, once
        assert text.count("signature and 3 quoted lines folded") == 2
        assert "Your order 1042 has shipped" not in text and "Jane Roe\n" not in text.split("cracked")[1][:40]
        await pilot.press("z", "k", "z")  # unfold both mails
        await settle(pilot)
        text = screen_text(app)
        assert text.count("the lid is cracked") == 2  # unfolded, each mail shows its new text once, not twice
        assert text.count("Your order 1042 has shipped") == 2 and text.count("Best regards,") == 2


HEADER_BLOCKS = [
    "Thanks!\nFrom: Shop <support@shop.test>\nSent: Monday\nTo: Jane\nSubject: Order",
    "ok\n> From: Shop <support@shop.test>\n> Sent: Monday\n> To: Jane",
    "Danke\n**Von:** Shop\n**Gesendet:** Montag\n**An:** Jane",
    "tak\nxx-----Oprindelig meddelelse-----\nFra: Shop\nSendt: mandag\nTil: Jane",  # mid-line separator
    "tak\n------OPRINDELIG MEDDELELSE-----\nFra: Shop\nSendt: mandag",
    "hi\n-----Original Message-----\nFrom: a\nnothing else",
    "Od: Shop\nno second key line",  # Polish needs one key line only
    "merci\nDe : Shop\nEnvoyé : lundi\nÀ : Jane",
    "From: not a header block, one key line only\nand prose after it",
    "no header here at all\njust text: with colons\n\n",
]


def test_header_block_search_tries_line_starts_only_and_finds_what_the_pattern_finds():
    """The header-block pattern is tried only where a match can begin (a line start, a
    line end, a Danish separator): the same match as the library pattern's own search."""
    from connectors.email.quotes import _LineAnchored, _regexes

    block = _regexes()[1]
    assert isinstance(block, _LineAnchored)  # the library's patterns still begin as expected
    for window in HEADER_BLOCKS + [w.replace("\n", "\n\n") for w in HEADER_BLOCKS]:
        fast, slow = block.search(window), block.pattern.search(window)
        assert (fast and (fast.span(), fast.group(0))) == (slow and (slow.span(), slow.group(0))), window
    assert block.search(HEADER_BLOCKS[3]).group(0).startswith("-----Oprindelig")
