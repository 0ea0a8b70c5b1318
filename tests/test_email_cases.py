"""The shared mail cases (../shared/cases/mail-*), one test each, plus other
inputs of the same kinds (rebuilt from public bug reports against mail clients
and helpdesks): who the person is, headers as a client shows them, forwarded
mail and TNEF, reply subjects, sub-addresses, bounces and auto-replies."""
from __future__ import annotations

import base64
import email
import itertools

import pytest

from connectors.email.compose import compose
from connectors.email.parse import parse
from store.models import Receipt
from tests.conftest import CORPORA

CASES = CORPORA.parent / "cases"


def case(folder: str, name: str, **replace: str) -> bytes:
    raw = (CASES / folder / name).read_bytes()
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def ingest(store, raw: bytes, account: str = "shop"):
    return store.ingest(parse(raw, account))


def reply(store, customer_id: int, text: str = "Thanks, we are on it."):
    """Queue a reply, compose it as the e-mail connector does, and mark it sent:
    (the composed message, its bare Message-ID)."""
    store.queue_reply(customer_id, text, "agent")
    out = store.claim_due()[0]
    msg, message_id = compose(out, {"from_address": "support@example.com", "from_name": "Example Shop"})
    store.mark_sent(out.outbox_id, Receipt(message_id, {"message_id": f"<{message_id}>"}))
    return msg, message_id


def customers_by_name(store) -> dict[str, object]:
    return {c.name: c for c in (store.customer(r.customer_id) for r in store.queue("all", limit=100))}


_numbers = itertools.count(1)


def mail(headers: str, body: str = "Hello.") -> bytes:
    return (headers.strip() + "\nMessage-ID: <m%d@t>\nDate: Mon, 30 Nov 2026 08:00:00 +0000\n\n" % next(_numbers)
            + body + "\n").encode("utf-8")


# -- 1. the person behind a mail --------------------------------------------------------
def test_web_form_mail_is_two_customers_and_the_reply_goes_to_the_first(store):
    ingest(store, case("mail-person-in-reply-to", "1.eml"))
    ingest(store, case("mail-person-in-reply-to", "2.eml"))
    people = customers_by_name(store)
    assert set(people) == {"Alice Archer", "Bob Baker"}  # not one "Website Form"
    alice = people["Alice Archer"]
    assert [i.address for i in alice.identities] == ["alice@example.com"]
    first = store.timeline(alice.id)[0]
    assert first.meta["via"] == "noreply@www.example.com"  # the relay is kept on the message
    msg, _ = reply(store, alice.id)
    assert msg["To"] == "alice@example.com"
    assert msg["In-Reply-To"] == "<form-1@www.example.com>"


@pytest.mark.parametrize("headers, person, via", [
    # Google Groups rewrites From for DMARC and keeps the writer in X-Original-From / Reply-To
    ("From: 'Jane Roe' via Shop Owners <owners@googlegroups.com>\nReply-To: Jane Roe <jane@example.org>\n"
     "X-Original-From: Jane Roe <jane@example.org>\nList-Id: <owners.googlegroups.com>\nTo: owners@googlegroups.com",
     ("jane@example.org", "Jane Roe"), "owners@googlegroups.com"),
    # Mailman's DMARC mitigation: From is the list, the writer only in the "via" name and Reply-To/Cc
    ("From: Tom Lee via Users <users@lists.example.net>\nReply-To: Tom Lee <tom@lee.example>\n"
     "List-Id: Users <users.lists.example.net>\nList-Post: <mailto:users@lists.example.net>\nTo: users@lists.example.net",
     ("tom@lee.example", "Tom Lee"), "users@lists.example.net"),
    # a role mailbox that names the person who wrote
    ("From: Acme Info <info@acme.example>\nReply-To: Ola Nord <ola@acme.example>\nTo: support@example.com",
     ("ola@acme.example", "Ola Nord"), "info@acme.example"),
    # Sympa's DMARC protection: the writer only in "(on behalf of ...)" (sympa#1678)
    ("From: \"mail-headers Mailing List\" (on behalf of tmclaren@example.edu) <mail-headers@lists.example.edu>\n"
     "List-Id: <mail-headers.lists.example.edu>\nTo: mail-headers@lists.example.edu",
     ("tmclaren@example.edu", ""), "mail-headers@lists.example.edu"),
    # "do-not-reply" with the visitor in X-Original-From
    ("From: do-not-reply@forms.example\nX-Original-From: Kim Park <kim@park.example>\nTo: support@example.com",
     ("kim@park.example", "Kim Park"), "do-not-reply@forms.example"),
])
def test_relays_are_not_people(store, headers, person, via):
    item = parse(mail(headers), "shop")
    assert (item.sender.address, item.sender.display_name) == person
    assert item.meta["via"] == via
    store.ingest(item)
    (c,) = customers_by_name(store).values()
    assert [i.address for i in c.identities] == [person[0]]
    msg, _ = reply(store, c.id)
    assert msg["To"] == person[0]  # a list's Reply-To would reach every member: a private reply


def test_list_mail_that_names_nobody_else_keeps_from_and_marks_the_list(store):
    item = parse(mail("From: Lee via Users <users@lists.example.net>\nList-Id: <users.lists.example.net>\n"
                      "Reply-To: users@lists.example.net"), "shop")
    assert item.sender.address == "users@lists.example.net" and item.sender.display_name == "Lee"
    assert item.meta["via"] == "users@lists.example.net" and "reply_to" not in item.meta


def test_sender_on_behalf_of_from_is_the_from_person():
    item = parse(mail("From: Boss Person <boss@corp.example>\nSender: Assistant <pa@corp.example>"), "shop")
    assert item.sender.address == "boss@corp.example"
    assert item.meta["sender"] == "pa@corp.example"


def test_a_person_s_own_reply_to_is_where_the_reply_goes(store):
    store.ingest(parse(mail("From: Jane <jane@home.example>\nReply-To: Jane Work <jane@work.example>"), "shop"))
    (c,) = customers_by_name(store).values()
    msg, _ = reply(store, c.id)
    assert msg["To"] == "jane@work.example"


def test_a_reply_never_reaches_a_different_customer(store):
    store.ingest(parse(mail("From: Bob <bob@example.com>"), "shop"))
    # Alice's mail asks replies to go to Bob's address (a shared form, a typo, a trick)
    store.ingest(parse(mail("From: Alice <alice@example.com>\nReply-To: bob@example.com"), "shop"))
    alice = customers_by_name(store)["Alice"]
    msg, _ = reply(store, alice.id)
    assert msg["To"] == "alice@example.com"


# -- 2. headers as a mail client shows them ------------------------------------------------
def test_encoded_word_next_to_raw_utf8_decodes_to_a_real_dash():
    item = parse(case("mail-mixed-header-encoding", "1.eml"), "shop")
    assert item.subject == "Can you make [Special Event] DevBeat 2013 \u2013 Nov 12-13th?"


@pytest.mark.parametrize("raw_subject, shown", [
    # a multi-byte character split across two encoded words (Outlook, old Thunderbird)
    (b"=?UTF-8?B?0J/RgNC40LI=?= =?UTF-8?B?0LXRgg==?=", "Привет"),
    (b"=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9_au_lait?=", "café au lait"),
    # misspelt and unknown charsets
    (b"=?utf8?Q?na=C3=AFve?=", "naïve"),
    (b"=?x-unknown?Q?caf=E9?=", "café"),
    (b"=?ks_c_5601-1987?B?vsiz58fPvLy/5A==?=", "안녕하세요"),
    # raw legacy 8-bit text next to an encoded word of the same charset
    (b"=?iso-8859-1?Q?R=E9f?= commande n\xb0 12", "Réf commande n° 12"),
    # no encoded word, raw Windows-1252 bytes
    (b"\x93Quoted\x94 order", "\u201cQuoted\u201d order"),
    # broken encoded word: shown as it came, never an escape
    (b"=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
])
def test_headers_never_show_escapes(raw_subject, shown):
    raw = b"From: Ann <ann@example.com>\nSubject: " + raw_subject + b"\nMessage-ID: <s@t>\n\nbody\n"
    item = parse(raw, "shop")
    assert item.subject == shown
    assert "\\u" not in item.subject and "\\x" not in item.subject


def test_display_names_decode_too():
    raw = b"From: =?utf-8?Q?J=C3=B6rg?= M\xc3\xbcller <jm@example.de>\nSubject: x\n\nbody\n"
    item = parse(raw, "shop")
    assert item.sender.display_name == "Jörg Müller"


# -- 3. content inside content -----------------------------------------------------------
@pytest.mark.parametrize("name, own_words", [("1.eml", ""), ("2.eml", "This is what your shop sent me, but nothing arrived.")])
def test_forwarded_mail_is_shown_kept_and_searchable(store, name, own_words):
    result = ingest(store, case("mail-forwarded-message", name))
    m = store.message(result.message_id)
    shown = m.meta["new_text"]
    assert shown.startswith(own_words or "---------- Forwarded message")
    for line in ("From: Example Shop <orders@example.com>", "Subject: Your order 7781 has shipped",
                 "Date: Mon, 01 Jan 2024 08:00:00 +0000", "tracking number ZX123450987"):
        assert line in shown  # the agent sees the forwarded mail whole, not as folded history
    assert m.meta["forwarded"][0]["subject"] == "Your order 7781 has shipped"
    (att,) = m.attachments
    assert att.filename.endswith(".eml") and att.content_type == "message/rfc822"
    kept = email.message_from_bytes(store.files.path(att.path).read_bytes())
    assert kept["Message-ID"] == "<ship-7781@example.com>"
    assert [h.message_id for h in store.search("ZX123450987")] == [m.id]
    customer = store.customer(m.customer_id)
    assert customer.name == "Nora Diaz"  # the forwarded mail's sender is not the customer


def test_a_digest_shows_every_enclosed_mail():
    raw = (b"From: List <list@example.org>\nSubject: Digest 12\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: a@example.org\nSubject: first\n\none\n"
           b"--d\n\nFrom: b@example.org\nSubject: second\n\ntwo\n--d--\n")
    item = parse(raw, "shop")
    assert [f["subject"] for f in item.meta["forwarded"]] == ["first", "second"]
    assert "Subject: second\n\ntwo" in item.text
    assert [a.filename for a in item.attachments] == ["first.eml", "second.eml"]


def test_tnef_winmail_body_is_the_text_and_searchable(store):
    result = ingest(store, case("mail-tnef-winmail", "1.eml"))
    m = store.message(result.message_id)
    assert "invoice 4410" in m.text and "3 chairs" in m.text and "we ordered 4" in m.text
    assert m.meta["new_text"].startswith("Hello, the invoice 4410")
    assert [h.message_id for h in store.search("chairs")] == [m.id]
    assert all(a.filename != "winmail.dat" for a in m.attachments)


def test_unreadable_tnef_is_named_to_the_agent(store):
    blob = base64.b64encode(b"\x78\x9f\x3e\x22" + b"\x00garbage" * 4).decode()
    raw = ("From: Olga <olga@example.com>\nSubject: Invoice\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/ms-tnef; name=winmail.dat\n"
           "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=winmail.dat\n\n"
           f"{blob}\n--b--\n").encode()
    m = store.message(ingest(store, raw).message_id)
    assert "winmail.dat" in m.text and "could not be read" in m.text
    assert [a.filename for a in m.attachments] == ["winmail.dat"]  # kept for the agent to open elsewhere


# -- 4. reply subjects ---------------------------------------------------------------------
def test_piled_up_prefixes_collapse_to_one_re_and_threading_stays(store):
    ingest(store, case("mail-reply-subject-prefixes", "1.eml"))
    result = ingest(store, case("mail-reply-subject-prefixes", "2.eml"))
    msg, _ = reply(store, result.customer_id)
    assert msg["Subject"] == "Re: Lieferung 3391"
    assert msg["In-Reply-To"] == "<k3@example.de>"
    assert msg["References"].split() == ["<k1@example.de>", "<OUTLOOK-STAFF-99@example.com>", "<k3@example.de>"]


@pytest.mark.parametrize("subject", ["RE[2]: Order 5", "Re:Re: Order 5", "SV: Sv: Order 5", "WG: AW: Order 5",
                                     "Antw: Order 5", "Ynt: Order 5", "Fwd: RE: Order 5", "Re (3): Order 5",
                                     "Odp: Order 5", "RIF: R: Order 5", "回复：Order 5", "Order 5"])
def test_reply_subject_prefixes_in_many_languages(store, subject):
    store.ingest(parse(mail(f"From: Ann <ann@example.com>\nSubject: {subject}"), "shop"))
    (c,) = customers_by_name(store).values()
    msg, _ = reply(store, c.id)
    assert msg["Subject"] == "Re: Order 5"


# -- 7. sub-addresses ----------------------------------------------------------------------
def test_sub_addresses_are_suggested_never_merged(store):
    for n in range(1, 6):
        ingest(store, case("mail-sub-address", f"{n}.eml"))
    everyone = [store.customer(r.customer_id) for r in store.queue("all", limit=100)]
    people = {i.address: c.id for c in everyone for i in c.identities}
    assert people["jane@example.com"] != people["jane+shop@example.com"] != people["jane+returns@example.com"]
    assert len(set(people.values())) == 3  # case folds (1, 2); sub-addresses stay apart until an agent merges
    suggestions = store.merge_suggestions()
    pairs = {frozenset((s.customer_id, s.other_id)): s.evidence for s in suggestions}
    returns = pairs[frozenset((people["jane@example.com"], people["jane+returns@example.com"]))]
    assert returns[0] == "same mailbox (sub-address) jane@example.com"
    assert any(e.startswith("same mailbox (sub-address)")
               for e in pairs[frozenset((people["jane@example.com"], people["jane+shop@example.com"]))])


# -- 9. mail written by machines about our mail -------------------------------------------
def nina_replied(store):
    result = ingest(store, case("mail-bounce-and-auto-reply", "1-customer.eml"))
    _, our_id = reply(store, result.customer_id, "Sorry! A blue mug ships today.")
    assert store.customer(result.customer_id).waiting_since is None
    return result.customer_id, our_id


def test_a_bounce_of_our_reply_marks_it_not_delivered_and_nina_waits_again(store):
    nina, our_id = nina_replied(store)
    ingest(store, case("mail-bounce-and-auto-reply", "2-bounce-of-our-reply.eml", **{"OUR-REPLY-ID": our_id}))
    assert list(customers_by_name(store)) == ["Nina Berg"]  # no "Mail Delivery Subsystem"
    ours = [m for m in store.timeline(nina) if m.direction == "out"][0]
    assert ours.state == "failed"
    assert "550 5.1.1" in ours.error and "mailbox unavailable" in ours.error
    c = store.customer(nina)
    assert c.waiting_since is not None and c.status == "open"
    bounce = [m for m in store.timeline(nina) if m.meta.get("bounce")]
    assert len(bounce) == 1  # the report itself is on her timeline, for the record


def test_an_out_of_office_reply_shows_but_does_not_make_nina_wait(store):
    nina, our_id = nina_replied(store)
    ingest(store, case("mail-bounce-and-auto-reply", "3-out-of-office.eml", **{"OUR-REPLY-ID": our_id}))
    c = store.customer(nina)
    assert c.waiting_since is None
    auto = [m for m in store.timeline(nina) if m.direction == "in" and m.meta.get("auto_reply")]
    assert [m.text.strip() for m in auto] == ["I am away until Monday and will read your message then."]
    assert all(r.customer_id != nina for r in store.queue("waiting"))


BOUNCE_FORMS = {
    # Exim: plain text, X-Failed-Recipients, the returned message inline
    "exim": ("From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nTo: support@example.com\n"
             "Subject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: nina@example.org\n"
             "Auto-Submitted: auto-replied\n\nThis message was created automatically by mail delivery software.\n\n"
             "A message that you sent could not be delivered to one or more of its recipients.\n\n"
             "  nina@example.org\n    host mx.example.org [192.0.2.1]\n    SMTP error from remote mail server after RCPT TO:"
             "<nina@example.org>:\n    550 5.1.1 User unknown\n\n------ This is a copy of the message, including all the headers."
             " ------\n\nMessage-ID: <{id}>\nFrom: support@example.com\nSubject: Re: Wrong colour\n\nSorry!\n"),
    # qmail: no structure, only the text and the null return path
    "qmail": ("Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.org\nTo: support@example.com\n"
              "Subject: failure notice\n\nHi. This is the qmail-send program at mx.example.org.\n"
              "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
              "<nina@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\n"
              "Message-ID: <{id}>\nFrom: support@example.com\n\nSorry!\n"),
    # Exchange: multipart/report with text/rfc822-headers only
    "exchange": ("From: postmaster@corp.example\nTo: support@example.com\nSubject: Undeliverable: Re: Wrong colour\n"
                 "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\n\n"
                 "--x\nContent-Type: text/plain\n\nDelivery has failed to these recipients.\n--x\n"
                 "Content-Type: message/delivery-status\n\nReporting-MTA: dns;corp.example\n\n"
                 "Final-Recipient: rfc822;nina@example.org\nAction: failed\nStatus: 5.2.2\n"
                 "Diagnostic-Code: smtp;554 5.2.2 mailbox full\n\n--x\nContent-Type: text/rfc822-headers\n\n"
                 "Message-ID: <{id}>\nFrom: support@example.com\n\n--x--\n"),
}


@pytest.mark.parametrize("form", sorted(BOUNCE_FORMS))
def test_older_and_other_bounce_forms_match_our_reply(store, form):
    nina, our_id = nina_replied(store)
    raw = BOUNCE_FORMS[form].replace("{id}", our_id)
    store.ingest(parse(raw.encode(), "shop"))
    assert list(customers_by_name(store)) == ["Nina Berg"]
    ours = [m for m in store.timeline(nina) if m.direction == "out"][0]
    assert ours.state == "failed" and ours.error.startswith("not delivered")
    assert store.customer(nina).waiting_since is not None


def test_a_delay_notice_is_automatic_and_the_reply_stays_sent(store):
    nina, our_id = nina_replied(store)
    raw = BOUNCE_FORMS["exchange"].replace("{id}", our_id).replace("Action: failed", "Action: delayed")
    store.ingest(parse(raw.encode(), "shop"))
    ours = [m for m in store.timeline(nina) if m.direction == "out"][0]
    assert ours.state == "sent"
    assert store.customer(nina).waiting_since is None
    assert list(customers_by_name(store)) == ["Nina Berg"]


@pytest.mark.parametrize("header", ["X-Autoreply: yes", "X-Autorespond: vacation", "Precedence: auto_reply",
                                    "Auto-Submitted: auto-generated"])
def test_autoresponder_headers(store, header):
    nina, our_id = nina_replied(store)
    raw = mail(f"From: Nina Berg <nina@example.org>\nSubject: Re: Wrong colour\nIn-Reply-To: <{our_id}>\n{header}",
               "Thanks for your mail, we answer within 3 days.")
    store.ingest(parse(raw, "shop"))
    assert store.customer(nina).waiting_since is None


def test_an_auto_reply_from_another_address_lands_on_the_customer_we_wrote_to(store):
    nina, our_id = nina_replied(store)
    raw = mail(f"From: Helpdesk Robot <robot@example.org>\nSubject: Ticket 5\nIn-Reply-To: <{our_id}>\n"
               "Auto-Submitted: auto-replied", "We got your mail.")
    store.ingest(parse(raw, "shop"))
    assert list(customers_by_name(store)) == ["Nina Berg"]
    assert store.customer(nina).waiting_since is None


def test_a_bounce_for_mail_we_never_sent_waits_for_nobody(store):
    raw = case("mail-bounce-and-auto-reply", "2-bounce-of-our-reply.eml", **{"OUR-REPLY-ID": "old@elsewhere"})
    store.ingest(parse(raw, "shop"))
    assert store.queue("waiting") == []
    assert store.search("mailbox unavailable")  # stored, not lost


def test_machine_mail_in_a_big_batch_takes_the_careful_path(store):
    nina, our_id = nina_replied(store)
    items = [parse(mail(f"From: P{n} <p{n}@example.com>\nSubject: hi {n}"), "shop") for n in range(40)]
    items.append(parse(case("mail-bounce-and-auto-reply", "2-bounce-of-our-reply.eml", **{"OUR-REPLY-ID": our_id}),
                       "shop"))
    store.ingest_batch(items)
    assert "Mail Delivery Subsystem" not in customers_by_name(store)
    assert [m for m in store.timeline(nina) if m.direction == "out"][0].state == "failed"


# -- more of the same kinds, from public reports ----------------------------------------------
@pytest.mark.parametrize("raw_subject, shown", [
    # zammad#2953: Outlook split "ö" across base64 words
    (b"=?utf-8?B?ZGlkYWN0YSAyMDIwIHdpcmQgdmVyc2Nob2JlbiAtICBCZWjD?=\n =?utf-8?B?tnJkZW4gdmVyZsO8Z2VuIFZl?=",
     "didacta 2020 wird verschoben - Behörden verfügen Ve"),
    # neomutt#1015: the same with Q words
    (b"=?UTF-8?Q?pasi=C5=BEad=C4?=\n =?UTF-8?Q?=97jim=C5=B3_girliand=C4=85!?=", "pasižadėjimų girliandą!"),
    # postal-mime#68: ISO-2022-JP words, each base64 word padded on its own
    (b"=?ISO-2022-JP?B?GyRCRUUbKEI=?= =?ISO-2022-JP?B?GyRCO1IbKEI=?=", "電子"),
])
def test_encoded_words_split_by_real_mailers(raw_subject, shown):
    item = parse(b"From: a@example.com\nSubject: " + raw_subject + b"\n\nbody\n", "shop")
    assert item.subject == shown


def test_an_out_of_office_reply_does_not_reopen_a_done_customer(store):
    """osTicket#1744: auto-replies are for the record, not a reason to reopen."""
    nina, our_id = nina_replied(store)
    store.set_status(nina, "done", "agent")
    ingest(store, case("mail-bounce-and-auto-reply", "3-out-of-office.eml", **{"OUR-REPLY-ID": our_id}))
    assert store.customer(nina).status == "done"


def test_no_acknowledgement_for_a_bounce_or_an_auto_reply(store, tmp_path):
    """faveo-helpdesk#150, odoo#66329: acknowledging machine mail starts a mail loop."""
    from tests.test_rules import _templates, make_auto

    _templates(tmp_path)
    auto = make_auto(tmp_path, '[[rule]]\nname = "ack"\nthen = { acknowledge = "ack" }\n')
    nina, our_id = nina_replied(store)
    store.on_ingest[:] = [lambda results: auto.on_ingest(store, results)]
    store.claim_new()
    for name in ("2-bounce-of-our-reply.eml", "3-out-of-office.eml"):
        store.ingest_batch([parse(case("mail-bounce-and-auto-reply", name, **{"OUR-REPLY-ID": our_id}), "shop")])
    assert [m.author for m in store.timeline(nina) if m.direction == "out"] == ["agent"]


def test_a_web_form_that_sends_as_our_own_address_is_the_visitor(store):
    """freescout#2833: the form sends From our own mailbox with Reply-To the visitor
    and Precedence: junk. The visitor is the customer, and waits."""
    raw = mail("From: Shop <support@example.com>\nReply-To: Mister Customer <customer@example.net>\n"
               "Precedence: junk\nSubject: Contact form", "Where is my order?")
    item = parse(raw, "shop", own_address="support@example.com")
    assert item.sender.address == "customer@example.net" and item.meta["via"] == "support@example.com"
    assert "ours" not in item.meta
    result = store.ingest(item)
    assert store.customer(result.customer_id).waiting_since is not None
    msg, _ = reply(store, result.customer_id)
    assert msg["To"] == "customer@example.net"


def test_a_read_receipt_is_automatic_and_lands_on_the_customer_we_wrote_to(store):
    """RFC 8098 disposition notification: machine mail about our reply."""
    nina, our_id = nina_replied(store)
    raw = ("From: Nina Berg <nina@example.org>\nTo: support@example.com\nSubject: Read: Re: Wrong colour\n"
           "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; boundary=r\n\n"
           "--r\nContent-Type: text/plain\n\nYour message was read.\n--r\n"
           "Content-Type: message/disposition-notification\n\nFinal-Recipient: rfc822;nina@example.org\n"
           f"Original-Message-ID: <{our_id}>\nDisposition: manual-action/MDN-sent-manually; displayed\n--r--\n")
    item = parse(raw.replace("From: Nina Berg <nina@example.org>", "From: Nina's phone <mdn@phone.example>")
                 .encode(), "shop")
    assert item.meta["auto_reply"] and item.meta["reported"] == [our_id]
    store.ingest(item)
    assert store.customer(nina).waiting_since is None
    assert list(customers_by_name(store)) == ["Nina Berg"]
    assert sorted(m.direction for m in store.timeline(nina)) == ["in", "in", "out"]


def test_a_no_reply_form_that_names_the_visitor_only_in_the_body(store):
    """Contact forms without Reply-To (handesk#295, faveo#72): the visitor is in the body."""
    for n, who in enumerate(("Alice Archer", "Bob Baker")):
        first = who.split()[0].lower()
        store.ingest(parse(mail(f"From: Website <no-reply@www.example.com>\nSubject: Contact form {n}",
                                f"Name: {who}\nEmail: {first}@example.com\nMessage: hello"), "shop"))
    people = customers_by_name(store)
    assert set(people) == {"Alice Archer", "Bob Baker"}
    msg, _ = reply(store, people["Alice Archer"].id)
    assert msg["To"] == "alice@example.com"


def _tnef_attr(level: int, name: int, kind: int, data: bytes) -> bytes:
    """One TNEF attribute (MS-OXTNEF 2.1.3.1): level, id, type, length, data, checksum."""
    import struct

    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def test_tnef_files_inside_winmail_are_attachments(store):
    import struct

    blob = struct.pack("<IH", 0x223E9F78, 1)
    blob += _tnef_attr(1, 0x9006, 8, b"\x00\x00\x01\x00")  # TNEF version
    blob += _tnef_attr(1, 0x9007, 6, struct.pack("<II", 1252, 0))  # OEM code page
    blob += _tnef_attr(1, 0x8008, 7, b"IPM.Microsoft Mail.Note\x00")
    blob += _tnef_attr(1, 0x800C, 2, b"Please see the attached list of chairs.\r\n\x00")
    blob += _tnef_attr(2, 0x9002, 6, b"\x01\x00" + b"\xff" * 12)  # an attachment starts
    blob += _tnef_attr(2, 0x8010, 1, b"chairs.csv\x00")
    blob += _tnef_attr(2, 0x800F, 6, b"model,count\nOslo,4\n")
    raw = ("From: Olga <olga@example.com>\nSubject: Chairs\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/ms-tnef; name=winmail.dat\n"
           "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(blob).decode() + "\n--b--\n").encode()
    m = store.message(store.ingest(parse(raw, "shop")).message_id)
    assert m.text.startswith("Please see the attached list of chairs.")
    [att] = m.attachments
    assert att.filename == "chairs.csv"
    assert store.files.path(att.path).read_bytes() == b"model,count\nOslo,4\n"


def test_raw_utf8_header_in_a_latin1_mail_is_utf8():
    """A webmail writes the Subject as raw UTF-8 and the body as Latin-1: the header is not mojibake."""
    raw = ("From: a@b.c\nSubject: Grüße aus Köln\nContent-Type: text/plain; charset=iso-8859-1\n"
           "Content-Transfer-Encoding: 8bit\n\n").encode("utf-8") + "Grüße".encode("latin-1") + b"\n"
    item = parse(raw, "shop")
    assert (item.subject, item.text.strip()) == ("Grüße aus Köln", "Grüße")



@pytest.mark.parametrize("body, kind", [
    ("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e\n\n--e\n"
     "Content-Type: application/pgp-encrypted\n\nVersion: 1\n--e\nContent-Type: application/octet-stream;"
     " name=encrypted.asc\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----\n--e--\n", "OpenPGP"),
    ("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
     "Content-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n", "S/MIME"),
])
def test_encrypted_mail_is_named_to_the_agent_not_shown_empty(store, body, kind):
    raw = ("From: Ann <ann@example.com>\nSubject: Secret\nMIME-Version: 1.0\n" + body).encode()
    m = store.message(store.ingest(parse(raw, "shop")).message_id)
    assert f"This message is encrypted ({kind})" in m.meta["new_text"]
    assert m.attachments  # the encrypted data is kept for a mail client that holds the key
    assert store.customer(m.customer_id).waiting_since is not None
