"""The e-mail generator of bench/email_import.py: a seeded test Maildir with the mix
of a real mailbox (customers' questions in a dozen charsets, plain, HTML-only and
multipart mail, quoted replies, mailing-list headers, a corpus mail every 50th),
so runs compare."""
from __future__ import annotations

import email.base64mime
import email.header
import email.utils
import quopri
import random
import textwrap
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"

FIRST = ["Jane", "Bob", "Ana", "Luis", "Mia", "Noah", "Olga", "Pierre", "Sven", "Yuki", "Chen", "Fatima", "Jürgen",
         "Zoë", "Иван", "Мария", "Ahmed", "Priya", "Tomás", "Ewa"]
LAST = ["Roe", "Li", "Silva", "García", "Müller", "Dubois", "Novak", "Kowalska", "Tanaka", "Smith", "Petrov",
        "Hansen", "Rossi", "Khan", "O'Brien", "Nguyen"]
WORDS = ("order delivery parcel broken refund invoice address shipping tracking number please thanks help "
         "question size colour color replacement return label arrived yesterday today week still waiting box "
         "damaged wrong item missing payment card charged twice discount code account password login update "
         "cancel subscription email phone store opening hours warranty repair receipt photo attached").split()
SUBJECTS = ["Order #{n} arrived broken", "Where is my parcel {n}?", "Invoice for order {n}", "Refund request",
            "Wrong size (order {n})", "Question about delivery", "Payment charged twice", "Cancel my subscription",
            "Warranty repair", "Discount code not working"]


# -- input generation -------------------------------------------------------------
def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _paragraphs(rng: random.Random, most: int = 4) -> str:
    paras = []
    for _ in range(rng.randint(1, most)):
        sentences = [_words(rng, rng.randint(5, 16)).capitalize() + "." for _ in range(rng.randint(1, 5))]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def _wrap(text: str, width: int = 72) -> str:
    return "\n".join("\n".join(textwrap.wrap(p, width)) if p else "" for p in text.split("\n"))


def _header(value: str) -> str:
    return email.header.Header(value, "utf-8").encode() if not value.isascii() else value


# The mix of a real mailbox, measured on the SpamAssassin public corpus (6,294 mails, see
# the module docstring): 17% HTML-only (tables, inline CSS, ~10 KB), 4% plain+HTML, 2% with
# attachments, 2% signed; 12% quoted-printable and 3% base64 parts; 38% quote history; half
# list mail with a footer; five Received headers on average; mostly ASCII and Latin-1.
CHARSETS = ["us-ascii"] * 8 + ["iso-8859-1"] * 6 + ["windows-1252", "utf-8", "iso-8859-15", "koi8-r", "big5"]
LOCAL_TEXT = {"koi8-r": "Здравствуйте, заказ пришёл разбитым. ", "big5": "請問什麼時候發貨？ ",
              "iso-8859-1": "Grüße, der Artikel ist beschädigt. ", "windows-1252": "Café “déjà” reçu. ",
              "iso-8859-15": "Prix 20 €, très cher. ", "utf-8": "Zoë: “thanks” — 発送はいつですか "}
LISTS = ["exmh-workers", "rpm-list", "spamassassin-talk", "fork", "ilug", "razor-users"]


def _received(rng: random.Random, when: str) -> list[str]:
    hops = []
    for _ in range(rng.choice((2, 3, 4, 5, 5, 6, 7, 8))):
        a, b = rng.randint(1, 254), rng.randint(1, 254)
        hops.append(f"Received: from mx{a}.example{b % 9}.net (mx{a}.example{b % 9}.net [10.{a}.{b}.{a % 7}])\r\n"
                    f"\tby relay{b}.shop.test (Postfix) with ESMTP id {rng.getrandbits(40):X}\r\n"
                    f"\tfor <support@shop.test>; {when}")
    return hops


def _html_page(rng: random.Random, body: str) -> str:
    """A marketing/newsletter-style page: nested tables, inline CSS, links, images."""
    rows = []
    for p in body.split("\n\n"):
        rows.append(f'<tr><td style="font-family:Arial,Helvetica;font-size:12px;color:#333333;padding:4px" '
                    f'bgcolor="#ffffff" width="{rng.randint(200, 600)}"><font face="Verdana" size="2">{p}</font>'
                    f'</td><td><img src="http://img.example.com/{rng.getrandbits(32):x}.gif" width="1" height="1">'
                    f'</td></tr>')
        for _ in range(rng.randint(2, 10)):
            rows.append(f'<tr><td><a href="http://click.example.com/track?u={rng.getrandbits(64):x}&amp;m='
                        f'{rng.getrandbits(32)}" style="color:#0000ff;text-decoration:underline">'
                        f'{_words(rng, rng.randint(2, 6))}</a></td><td>&nbsp;</td></tr>')
    inner = "".join(rows)
    return ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
            '<style type="text/css">td { font-family: Arial; } .x { color: red; }</style></head>'
            '<body bgcolor="#ffffff" leftmargin="0" topmargin="0"><center>'
            f'<table border="0" cellpadding="0" cellspacing="0" width="600"><tr><td>'
            f'<table width="100%" border="0">{inner}</table></td></tr></table>'
            '<p style="font-size:9px">To unsubscribe <a href="http://example.com/u">click here</a></p>'
            '</center></body></html>')


def _qp(text: str, charset: str) -> str:
    return quopri.encodestring(text.encode(charset, "replace")).decode("ascii")


def _leaf(rng: random.Random, ctype: str, text: str, charset: str) -> tuple[str, str]:
    """(headers, encoded body) of one text part in a transfer encoding real mail uses."""
    r = rng.random()
    if r < 0.14:
        cte, data = "quoted-printable", _qp(text, charset)
    elif r < 0.17:
        cte, data = "base64", email.base64mime.body_encode(text.encode(charset, "replace"))
    else:
        cte, data = ("8bit" if not text.isascii() else "7bit"), None
    declared = f'; charset="{charset}"' if charset == "us-ascii" or rng.random() > 0.1 else ""  # some declare none
    head = f'Content-Type: {ctype}{declared}\r\nContent-Transfer-Encoding: {cte}'
    return head, data if data is not None else text


def synthetic(rng: random.Random, i: int, customers: list[tuple[str, str]]) -> bytes:
    """One mail of the real-mailbox mix above (bytes, CRLF line ends as IMAP delivers)."""
    name, addr = rng.choice(customers)
    when = email.utils.formatdate(1_600_000_000 + i * 37)
    subject = rng.choice(SUBJECTS).format(n=rng.randint(1000, 99999))
    charset = rng.choice(CHARSETS)
    local = LOCAL_TEXT.get(charset, "")
    body = f"Hello,\n\n{_wrap(local + _paragraphs(rng, 6))}\n\n{rng.choice(['Thanks,', 'Best regards,', 'Cheers,'])}\n{name}\n"
    if rng.random() < 0.25:
        body += f"\n-- \n{name}\n{_words(rng, 4).title()} Ltd. | +44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}\n"
    headers = _received(rng, when) + [
        f"From: {_header(name)} <{addr}>", "To: Shop Support <support@shop.test>",
        f"Message-ID: <bench{i}.{rng.getrandbits(32):x}@mail.example.org>", f"Date: {when}", "MIME-Version: 1.0",
        f"X-Mailer: {rng.choice(['Microsoft Outlook Express 6.00.2600.0000', 'Mutt/1.4i', 'Ximian Evolution 1.0.8'])}"]
    kind = rng.random()
    if kind < 0.38:  # a reply with the quoted history below, often long
        parent = f"<bench{max(0, i - rng.randint(1, 50))}@mail.example.org>"
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
        subject = "Re: " + subject
        quoted = "\n".join(("> " + line).rstrip() for line in _wrap(_paragraphs(rng, 12)).splitlines())
        if rng.random() < 0.3:
            body += (f"\n-----Original Message-----\nFrom: Shop Support [mailto:support@shop.test]\nSent: {when}\n"
                     f"To: {name}\nSubject: {subject[4:]}\n\n{quoted}\n")
        else:
            body += f"\nOn {when}, Shop Support <support@shop.test> wrote:\n{quoted}\n"
    if rng.random() < 0.53:  # list traffic: list headers and footer
        ml = rng.choice(LISTS)
        headers += [f"List-Id: <{ml}.lists.example.org>", f"List-Unsubscribe: <mailto:{ml}-request@lists.example.org>",
                    f"Sender: {ml}-admin@lists.example.org", "Precedence: bulk"]
        body += (f"\n\n_______________________________________________\n{ml} mailing list\n"
                 f"{ml}@lists.example.org\nhttps://lists.example.org/mailman/listinfo/{ml}\n")
    headers.append(f"Subject: {_header(subject)}")
    boundary = f"=_b{rng.getrandbits(48):x}"
    shape = rng.random()
    if shape < 0.17:  # HTML only
        head, data = _leaf(rng, "text/html", _html_page(rng, body), charset)
        mime = head + "\r\n\r\n" + data
    elif shape < 0.77 or shape >= 0.83:  # plain text
        head, data = _leaf(rng, "text/plain", body, charset)
        mime = head + "\r\n\r\n" + data
    else:  # plain + HTML, sometimes with a file
        ph, pd = _leaf(rng, "text/plain", body, charset)
        hh, hd = _leaf(rng, "text/html", _html_page(rng, body), charset)
        alt = f"--{boundary}a\r\n{ph}\r\n\r\n{pd}\r\n--{boundary}a\r\n{hh}\r\n\r\n{hd}\r\n--{boundary}a--\r\n"
        if shape < 0.80:
            mime = f'Content-Type: multipart/alternative; boundary="{boundary}a"\r\n\r\n{alt}'
        else:
            data = email.base64mime.body_encode(rng.randbytes(rng.randint(2_000, 60_000)))
            mime = (f'Content-Type: multipart/mixed; boundary="{boundary}m"\r\n\r\n'
                    f'--{boundary}m\r\nContent-Type: multipart/alternative; boundary="{boundary}a"\r\n\r\n{alt}'
                    f'--{boundary}m\r\nContent-Type: application/pdf; name="invoice {i}.pdf"\r\n'
                    f'Content-Disposition: attachment; filename="invoice {i}.pdf"\r\n'
                    f'Content-Transfer-Encoding: base64\r\n\r\n{data}\r\n--{boundary}m--\r\n')
    return ("\r\n".join(headers) + "\r\n" + mime.replace("\r\n", "\n").replace("\n", "\r\n")).encode(
        "ascii", "surrogateescape") if mime.isascii() else (
        "\r\n".join(headers) + "\r\n").encode() + mime.replace("\r\n", "\n").replace("\n", "\r\n").encode(
        charset, "replace")


def corpus_copy(raw: bytes, i: int) -> bytes:
    """A corpus message with a fresh Message-ID (the old one is renamed, not removed)."""
    head, sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    head = head.replace(b"\nMessage-ID:", b"\nX-Old-Message-ID:").replace(b"\nMessage-Id:", b"\nX-Old-Message-ID:")
    return b"Message-ID: <corpus" + str(i).encode() + b"@bench.example.org>\n" + head + sep + body


def generate(root: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    customers = []
    for k in range(max(50, count // 8)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        customers.append((f"{first} {last}", f"{first.lower()}.{k}@example{k % 17}.org".encode("ascii", "ignore").decode()))
    corpus = [p.read_bytes() for p in sorted(CORPORA.rglob("*.eml"))] if CORPORA.exists() else []
    folders = [root / "INBOX", root / "Archive"]
    for f in folders:
        for sub in ("cur", "new", "tmp"):
            (f / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        raw = corpus_copy(corpus[i % len(corpus)], i) if corpus and i % 50 == 0 else synthetic(rng, i, customers)
        folder = folders[0] if i % 4 else folders[1]
        sub, flags = ("new", "") if i % 7 == 0 else ("cur", ":2,S")
        (folder / sub / f"{1_600_000_000 + i}.M{i}P1.bench{flags}").write_bytes(raw)
