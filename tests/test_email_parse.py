"""E-mail parsing on real-world and deliberately broken mail."""
from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from connectors.email.parse import parse
from tests.conftest import CORPORA

ALL_FILES = sorted(p for p in CORPORA.rglob("*") if p.is_file())
REPLIES = CORPORA / "replies"


def _norm(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def test_corpus_is_there():
    assert len([p for p in ALL_FILES if p.suffix == ".eml"]) >= 119


def test_every_corpus_file_ingests(store):
    """Every file, mail or not, goes in without an exception; unreadable mail keeps its source."""
    by_external_id = {}
    for path in ALL_FILES:
        raw = path.read_bytes()
        item = parse(raw, "work", fallback_time=1_700_000_000.0)
        result = store.ingest(item)
        if result is None:  # same Message-ID as an earlier file: dropped, not doubled
            assert item.external_id in by_external_id, path
            continue
        by_external_id[item.external_id] = path
        stored = store.message(result.message_id)
        assert stored.channel == "email" and stored.direction == "in"
        assert store.raw_source(result.message_id) == raw
        if stored.parse_error:
            assert "could not be read" in stored.text
    assert len(by_external_id) > 100


@pytest.mark.parametrize("name", ["iphone", "sparrow"])
def test_reply_fixtures_new_text_first(name):
    """talon's expected reply text = the new text, then the signature; the quote is folded away."""
    item = parse((REPLIES / f"{name}.eml").read_bytes(), "work")
    expected = _norm((REPLIES / f"{name}_reply_text").read_text())
    assert item.meta["new_text"] == "Hello"
    assert _norm(item.meta["new_text"] + "\n" + item.meta["signature"]) == expected
    assert ">" not in item.meta["new_text"] and "wrote:" not in item.meta["new_text"]
    assert "Hi" in item.text  # the full body, quote included, is kept


@pytest.mark.parametrize("path", sorted(REPLIES.glob("*.eml")), ids=lambda p: p.stem)
def test_every_client_reply_shows_new_text(path):
    item = parse(path.read_bytes(), "work")
    assert item.meta["new_text"] == "Hello"
    assert len(item.text) > len(item.meta["new_text"])


@pytest.mark.parametrize("path", sorted((REPLIES / "html_replies").glob("*.html")), ids=lambda p: p.stem)
def test_html_only_replies_turn_into_readable_new_text(path):
    msg = EmailMessage()
    msg["From"] = "Alex <alex@example.com>"
    msg["Subject"] = "Re: How are you?"
    msg["Message-ID"] = f"<{path.stem}@example.com>"
    msg.set_content(path.read_bytes().decode("utf-8", "replace"), subtype="html")
    item = parse(msg.as_bytes(), "work")
    assert item.meta["new_text"] == "Hi. I am fine."
    assert "<" not in item.text.split("Hi. I am fine.")[0]
    assert item.html and "<" in item.html  # the HTML is kept for the record


def test_empty_message_id_does_not_crash_and_is_stable():
    raw = b"From: Jane <jane@example.com>\r\nMessage-Id: <>\r\nSubject: Broken id\r\n\r\nHello there\r\n"
    with pytest.raises(Exception):  # why we do not use policy.default for everything
        email.message_from_bytes(raw, policy=email.policy.default)["Message-Id"].msg_id
    a, b = parse(raw, "work"), parse(raw, "work")
    assert a.parse_error is None and a.text.strip() == "Hello there"
    assert a.external_id == b.external_id and a.external_id.startswith("sha256:")
    assert a.sender.address == "jane@example.com"


def test_undeclared_charsets_are_detected():
    body = "Здравствуйте! Мой заказ номер 1042 пришёл разбитым, пожалуйста, помогите.".encode("cp1251")
    raw = (b"From: =?utf-8?b?0JjQstCw0L0=?= <ivan@example.ru>\r\nSubject: \xc7\xe0\xea\xe0\xe7\r\n"
           b"Message-ID: <cp1251@example.ru>\r\nContent-Type: text/plain\r\n\r\n" + body)
    item = parse(raw, "work")
    assert "заказ номер 1042" in item.text
    assert item.sender.display_name == "Иван"
    assert item.subject == "Заказ"


def test_alternative_prefers_plain_and_html_only_becomes_text():
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg.set_content("plain version")
    msg.add_alternative("<p>html <b>version</b></p>", subtype="html")
    assert parse(msg.as_bytes(), "w").text == "plain version"
    html_only = EmailMessage()
    html_only["From"] = "a@example.com"
    html_only.set_content("<p>Hello <b>there</b></p><script>x()</script><ul><li>one</li></ul>", subtype="html")
    text = parse(html_only.as_bytes(), "w").text
    assert "Hello there" in text and "one" in text and "<" not in text


def test_attachments_inline_images_and_hostile_names(store):
    msg = EmailMessage()
    msg["From"] = "Jane <jane@example.com>"
    msg["Message-ID"] = "<att@example.com>"
    msg.set_content("see attached")
    msg.add_alternative('<p>see <img src="cid:logo@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="../../etc/passwd")
    msg.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream",
                       filename="\u202eexe.pdf\x07")
    item = parse(msg.as_bytes(), "work")
    assert item.text.strip() == "see attached"
    names = {a.filename: a for a in item.attachments}
    assert any(a.inline and a.content_type == "image/png" for a in item.attachments)
    assert names["../../etc/passwd"].data == b"%PDF-1.4 invoice"
    stored = store.message(store.ingest(item).message_id)
    saved = {a.filename for a in stored.attachments}
    assert "passwd" in saved and not any("/" in n or "\u202e" in n or "\x07" in n for n in saved)


def test_thread_key_is_the_root_of_references():
    def mail(mid, refs=None, irt=None, subject="Order 1042"):
        head = f"From: a@example.com\r\nSubject: {subject}\r\n" + (f"Message-ID: <{mid}>\r\n" if mid else "")
        if refs:
            head += "References: " + " ".join(f"<{r}>" for r in refs) + "\r\n"
        if irt:
            head += f"In-Reply-To: <{irt}>\r\n"
        return parse((head + "\r\nbody\r\n").encode(), "w")

    assert mail("m1").thread_key == "m1"
    assert mail("m3", refs=["m1", "m2"], irt="m2").thread_key == "m1"
    assert mail("m3", refs=["m1", "m2"], irt="m2").reply_to == "m2"
    assert mail("m2", irt="m1").thread_key == "m1"
    # last resort: a reply that lost its threading headers groups by subject
    assert mail("x1", subject="Re: Order 1042").thread_key == mail("x2", subject="RE: AW: order  1042").thread_key


def test_unreadable_mail_is_kept_raw_with_a_note(store):
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n!!\r\n"
    item = parse(raw, "work")
    assert item.parse_error and "could not be read" in item.text
    result = store.ingest(item)
    assert store.message(result.message_id).parse_error
    assert store.raw_source(result.message_id) == raw


def test_dates_and_controls():
    raw = (b"From: Eve <eve@example.com>\r\nDate: Tue, 3 Apr 2012 16:23:59 +0400\r\n"
           b"Subject: hi\x1b[31m red\r\n\r\nbody \x1b]0;title\x07 text\x00\r\n")
    item = parse(raw, "w")
    assert item.sent_at == 1333455839.0
    assert "\x1b" not in item.subject and "\x1b" not in item.text and "\x00" not in item.text
    future = parse(b"From: a@b.c\r\nDate: Fri, 1 Jan 2100 00:00:00 +0000\r\n\r\nx", "w", fallback_time=5.0)
    assert future.sent_at == 5.0  # far-future dates would jump the queue


def _tree(m):
    payload = [_tree(p) for p in m.get_payload()] if m.is_multipart() else m.get_payload()
    return (tuple(m.raw_items()), m.get_content_type(), m.get_unixfrom(), payload)


EDGE_CASES = [
    b"From: a@b.c\nContent-Type: multipart/mixed; boundary=xx\n\npreamble\n--xx\nContent-Type: text/plain\n\none\n"
    b"--xx-not-a-delimiter\n--xx  \n\nno headers in this part\n--xx--\nepilogue\n",
    b"From: a@b.c\r\nContent-Type: multipart/alternative; boundary=\"a b\"\r\n\r\n--a b\r\n"
    b"Content-Type: multipart/related; boundary=in\r\n\r\n--in\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--in--\r\n"
    b"--a b\r\nContent-Type: text/plain\r\n folded: yes\r\n\r\nplain\r\n--a b--",
    b"From: a@b.c\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\nno close",
    b"From: a@b.c\nContent-Type: multipart/mixed; boundary=q\n\n--q\n--q\nContent-Type: text/plain\n\nx\n--q--\n",
    b"From sender@x Mon Jan  1 00:00:00 2024\nFrom: a@b.c\nSubject: envelope\n\nbody\n",
    b"From: a@b.c\nBroken header line\n\nbody\n",
    b" folded-first: x\nFrom: a@b.c\n\nbody\n",
    b"From: a@b.c\rSubject: bare cr\r\rbody\r",
    b"From: a@b.c\nContent-Type: message/rfc822\n\nFrom: inner@x\n\ninner body\n",
    b"From: a@b.c\nSubject: =?utf-8?q?caf=C3=A9?=\nX-Raw: \xc3\xa9t\xc3\xa9\n\nbody \xff\n",
]


@pytest.mark.parametrize("raw", [p.read_bytes() for p in ALL_FILES] + EDGE_CASES)
def test_fast_mime_path_builds_the_same_tree_as_the_stdlib(raw):
    from connectors.email import mime

    # mime.parse mends a few kinds of header damage first (mime.repair), then must agree with the stdlib
    assert _tree(mime.parse(raw)) == _tree(email.message_from_bytes(mime.repair(raw), policy=email.policy.compat32))


def test_machine_mail_is_marked_for_triage():
    ooo = parse(b"From: a@b.c\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nBack Monday\r\n", "w")
    bulk = parse(b"From: news@b.c\r\nPrecedence: bulk\r\nList-Id: <news.b.c>\r\n\r\nNews\r\n", "w")
    person = parse(b"From: a@b.c\r\nAuto-Submitted: no\r\n\r\nHi\r\n", "w")
    bounce = parse(b"From: MAILER-DAEMON@b.c\r\nContent-Type: multipart/report; report-type=delivery-status;"
                   b" boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nCould not deliver\r\n--r--\r\n", "w")
    assert ooo.meta["automatic"] and bulk.meta["automatic"] and bulk.meta["list_id"] == "<news.b.c>"
    assert "automatic" not in person.meta
    assert bounce.meta["report"] == "delivery-status"


@pytest.mark.parametrize("path", sorted(REPLIES.glob("*.eml")), ids=lambda p: p.stem)
def test_the_console_timeline_shows_the_new_text_first(store, path):
    """End to end: stored, read back, split the way the console's timeline shows it."""
    from console.widgets.timeline import split_quoted

    stored = store.message(store.ingest(parse(path.read_bytes(), "work")).message_id)
    shown_first, folded = split_quoted(stored)
    assert shown_first.strip() == "Hello"
    assert folded  # the quoted history is still there, folded away


N = 50_000
HOSTILE = {
    "long attribution line": b"From: a@b.c\n\nhello\nOn " + b"x " * N + b":\n> q\n",
    "long From": b"From: a" + b" " * N + b"b\n\nbody\n",
    "many References": b"From: a@b.c\nReferences: " + b"<x@y> " * N + b"\n\nbody\n",
    "many encoded words": b"From: a@b.c\nSubject: " + b"=?utf-8?q?a?= " * 5000 + b"\n\nbody\n",
    "key: value body": b"From: a@b.c\n\nhi\n" + b"note:\n" * N,
    "nested multiparts": b"From: a@b.c\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(300)) + b"\nx\n",
    "boundary spam": b"From: a@b.c\nContent-Type: multipart/mixed; boundary=q\n\n" + b"x--q" * N + b"\n--q--\n",
    "deep HTML": b"From: a@b.c\nContent-Type: text/html\n\n" + b"<div>" * 20000 + b"x",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_mail_cannot_stall_the_sync(name):
    import time

    started = time.perf_counter()
    item = parse(HOSTILE[name], "work")
    # quadratic regexes took minutes on some of these; the bound leaves room for a loaded machine
    assert time.perf_counter() - started < 30.0
    assert item.external_id
