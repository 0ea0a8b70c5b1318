"""Markdown -> e-mail, Telegram HTML and Slack mrkdwn: what each channel receives."""
from __future__ import annotations

import html
import random
import re

import pytest

from connectors.formatting import email_bodies, plain_text, slack_parts, telegram_parts
from connectors.sandbox.telegram import parse_html as sandbox_parse

SAMPLE = """Hello **Jane**, your order _#1042_ ~~was~~ is [on its way](https://shop.example/t?id=1&k=2).

- tracking: `ZX-1 <2>`
- ETA: Friday

> Where is my parcel?"""

# A customer named `<b>*_&`, with emoji, right-to-left text, an RLO override and a Slack mention.
TORTURE = "Dear <b>*_& Zoë 😀 👨‍👩‍👧 שלום \u202eabc <!channel> &amp; `x`"

TG_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}


def telegram_text(part: str) -> str:
    """Validate one Telegram HTML part the way the Bot API parses it; return its text."""
    stack, out, pos = [], [], 0
    for m in re.finditer(r"<(/?)([a-z]+)((?: [a-z]+=\"[^\"<>]*\")*)>|&(amp|lt|gt|quot);|[<>&]", part):
        out.append(part[pos:m.start()])
        pos = m.end()
        tok = m.group(0)
        assert tok not in "<>&", f"bare {tok!r} in {part!r}"
        if m.group(4):
            out.append(html.unescape(tok))
            continue
        closing, tag, attrs = m.group(1), m.group(2), m.group(3)
        assert tag in TG_TAGS, f"tag {tag} not allowed by Telegram"
        if not closing:  # the Bot API's nesting rules
            assert not set(stack) & {"code", "pre"} or (tag == "code" and stack[-1:] == ["pre"]), part
            assert not (tag in ("a", "code", "pre", "blockquote") and tag in stack), part
            assert not (tag == "code" and "a" in stack), part
        if closing:
            assert stack and stack[-1] == tag, f"unbalanced </{tag}> in {part!r}"
            stack.pop()
        else:
            if tag == "a":
                assert re.fullmatch(r' href="(https?|mailto|tg|tel):[^"]*"', attrs), attrs
            elif tag == "code" and attrs:
                assert re.fullmatch(r' class="language-[\w+-]+"', attrs) and stack[-1:] == ["pre"]
            else:
                assert not attrs, f"<{tag}{attrs}>"
            stack.append(tag)
    out.append(part[pos:])
    assert not stack, f"unclosed {stack} in {part!r}"
    return "".join(out)


def slack_text(part: str) -> str:
    """Check a Slack part's markup is balanced; return its text without markup."""
    assert part.count("```") % 2 == 0, part
    code: list[str] = []

    def stash(m):  # code keeps its characters as they are
        code.append(m.group(2))
        return f"\0{len(code) - 1}\0"

    body = re.sub(r"(```|`)([\s\S]*?)\1", stash, part)
    assert "<" not in re.sub(r"<(https?|mailto|tg|tel):[^<>|]*(\|[^<>]*)?>", "", body), part
    body = re.sub(r"<[^<>|]*\|([^<>]*)>", r"\1", body)  # <url|label> -> label
    urls: list[str] = []
    body = re.sub(r"<([^<>|]*)>", lambda m: urls.append(m.group(1)) or f"\x01{len(urls) - 1}\x01", body)
    assert "`" not in body and body.count("*") % 2 == 0 and body.count("~") % 2 == 0, part
    body = re.sub("\x01(\\d+)\x01", lambda m: urls[int(m.group(1))], body)
    body = re.sub(r"(?m)^ *(?:> ?)+", "", body)  # quote prefixes, nested ones too
    body = body.translate(str.maketrans("\u2217\u02cd\u223c\u02cb", "*_~`"))  # look-alikes are the same text
    body = re.sub(r"[*_~`]", "", body)
    body = re.sub(r"\0(\d+)\0", lambda m: code[int(m.group(1))], body)
    return html.unescape(body)


def squash(s: str) -> str:
    return "".join(s.split())


def utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


# -- one message on each channel ------------------------------------------------------
def test_telegram_html_parse_mode():
    assert telegram_parts(SAMPLE) == [
        'Hello <b>Jane</b>, your order <i>#1042</i> <s>was</s> is '
        '<a href="https://shop.example/t?id=1&amp;k=2">on its way</a>.\n\n'
        '• tracking: <code>ZX-1 &lt;2&gt;</code>\n• ETA: Friday\n\n'
        '<blockquote>Where is my parcel?</blockquote>'
    ]


def test_slack_mrkdwn():
    assert slack_parts(SAMPLE) == [
        'Hello *Jane*, your order _#1042_ ~was~ is <https://shop.example/t?id=1&amp;k=2|on its way>.\n\n'
        '• tracking: `ZX-1 &lt;2&gt;`\n• ETA: Friday\n\n> Where is my parcel?'
    ]


def test_email_plain_and_html():
    plain, doc = email_bodies(SAMPLE)
    assert plain == ("Hello *Jane*, your order _#1042_ ~was~ is on its way <https://shop.example/t?id=1&k=2>.\n\n"
                     "- tracking: ZX-1 <2>\n- ETA: Friday\n\n> Where is my parcel?")
    assert '<a href="https://shop.example/t?id=1&amp;k=2">on its way</a>' in doc
    assert "<strong>Jane</strong>" in doc and "<code>ZX-1 &lt;2&gt;</code>" in doc
    assert doc.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in doc


# -- escaping ------------------------------------------------------------------------
def test_torture_telegram():
    [part] = telegram_parts(TORTURE)
    assert part == ("Dear &lt;b&gt;*_&amp; Zoë 😀 👨‍👩‍👧 שלום \u202eabc &lt;!channel&gt; &amp; <code>x</code>")
    assert telegram_text(part) == sandbox_parse(part) == "Dear <b>*_& Zoë 😀 👨‍👩‍👧 שלום \u202eabc <!channel> & x"


def test_torture_slack_no_live_markup_or_mentions():
    [part] = slack_parts(TORTURE)
    # & < > escaped as Slack requires; formatting characters at word edges cannot pair up
    assert part == "Dear &lt;b&gt;\u2217\u02cd&amp; Zoë 😀 👨‍👩‍👧 שלום \u202eabc &lt;!channel&gt; &amp; `x`"
    assert "<!channel>" not in part


def test_slack_keeps_underscores_inside_words():
    assert slack_parts("order_id is A_1 and *not bold* here") == ["order_id is A_1 and _not bold_ here"]
    assert slack_parts(r"\*not bold\* \_nor italic\_") == ["\u2217not bold\u2217 \u02cdnor italic\u02cd"]


def test_torture_email():
    plain, doc = email_bodies(TORTURE + "\n\n<script>alert(1)</script>")
    assert plain.startswith("Dear <b>*_& Zoë 😀 👨‍👩‍👧 שלום \u202eabc <!channel> & x")
    assert "<script>" not in doc and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "Dear &lt;b&gt;*_&amp; Zoë" in doc


@pytest.mark.parametrize("md", ["[click](javascript:alert(1))", "[click](data:text/html,hi)",
                                "[click](vbscript:x)"])
def test_dangerous_links_never_become_links(md):
    for part in telegram_parts(md):
        assert "<a" not in part
        telegram_text(part)
    assert not any(re.search(r"<(javascript|data|vbscript):", p) for p in slack_parts(md))
    assert "href=\"javascript" not in email_bodies(md)[1]


def test_link_attribute_quotes_are_escaped():
    [part] = telegram_parts('[x](https://e.example/"onmouseover=1)')
    telegram_text(part)
    assert '"onmouseover' not in part


def test_code_block_and_headings():
    md = "# Title\n\n```python\nif a < b:\n    print('&')\n```"
    assert telegram_parts(md) == ['<b>Title</b>\n\n<pre><code class="language-python">if a &lt; b:\n'
                                  "    print('&amp;')</code></pre>"]
    assert slack_parts(md) == ["*Title*\n\n```\nif a &lt; b:\n    print('&amp;')\n```"]
    assert plain_text(md) == "*Title*\n\n    if a < b:\n        print('&')"


def test_nested_lists_and_ordered():
    md = "1. one\n2. two\n   - sub *a*\n\n   para"
    assert telegram_parts(md) == ["1. one\n2. two\n   • sub <i>a</i>\n   para"]


# -- splitting -------------------------------------------------------------------------
def _document(seed: int, paragraphs: int = 40) -> str:
    rnd = random.Random(seed)
    words = ["hello", "<b>", "&amp;", "*x*", "😀", "👨‍👩‍👧", "שלום", "**bold text here**", "_it_",
             "[link](https://e.example/a?b=1&c=2)", "`code <x>`", "~~gone~~", "R&D", "a\\*b"]
    paras = []
    for _ in range(paragraphs):
        kind = rnd.random()
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 120)))
        if kind < 0.15:
            paras.append("\n".join(f"- {line[:60]}" for _ in range(rnd.randint(1, 6))))
        elif kind < 0.25:
            paras.append("> " + line)
        elif kind < 0.3:
            paras.append("```\n" + line.replace(" ", "\n", 5) + "\n```")
        else:
            paras.append(line)
    return "\n\n".join(paras)


@pytest.mark.parametrize("limit", [40, 97, 300, 4096])
@pytest.mark.parametrize("seed", range(4))
def test_telegram_split_parts_are_valid_and_complete(seed, limit):
    md = _document(seed)
    [whole] = telegram_parts(md, limit=10**9)
    parts = telegram_parts(md, limit=limit)
    assert all(utf16(p) <= limit for p in parts)
    texts = [telegram_text(p) for p in parts]  # each part valid on its own
    assert texts == [sandbox_parse(p) for p in parts]  # and so says the Bot API sandbox
    assert all(t.strip() for t in texts)  # Telegram refuses empty messages
    assert squash("".join(texts)) == squash(telegram_text(whole))


@pytest.mark.parametrize("limit", [40, 97, 300, 4000])
@pytest.mark.parametrize("seed", range(4))
def test_slack_split_parts_are_balanced_and_complete(seed, limit):
    md = _document(seed)
    [whole] = slack_parts(md, limit=10**9)
    parts = slack_parts(md, limit=limit)
    assert all(len(p) <= limit for p in parts)
    assert squash("".join(slack_text(p) for p in parts)) == squash(slack_text(whole))


def test_default_limits():
    md = "\n\n".join(f"Paragraph {i}: " + "words and more words " * 30 for i in range(40))
    tg, sl = telegram_parts(md), slack_parts(md)
    assert len(tg) > 1 and all(utf16(p) <= 4096 for p in tg)
    assert len(sl) > 1 and all(len(p) <= 4000 for p in sl)


def test_split_prefers_paragraph_boundaries():
    paras = [f"Paragraph {i} " + "x" * 30 for i in range(10)]
    parts = telegram_parts("\n\n".join(paras), limit=100)
    # no paragraph is cut, and parts hold whole paragraphs joined as they were
    assert all(p in parts or any(p in q for q in parts) for p in paras)
    assert "\n\n".join(parts) == "\n\n".join(paras)


def test_split_then_lines_then_words():
    lines = "\n".join(f"line {i} with some words" for i in range(12))
    parts = telegram_parts(lines, limit=60)
    assert all(not p.startswith(" ") for p in parts)
    assert "\n".join(parts).split("\n") == lines.split("\n")  # cut only between lines
    words = " ".join(f"word{i}" for i in range(50))
    parts = telegram_parts(words, limit=30)
    assert " ".join(parts).split() == words.split()  # cut only between words


def test_split_inside_formatting_reopens_tags():
    md = "**" + " ".join(["bold"] * 40) + "** [" + " ".join(["link"] * 30) + "](https://e.example/x)"
    parts = telegram_parts(md, limit=60)
    assert len(parts) > 3
    for p in parts:
        telegram_text(p)
        assert p.startswith(("<b>", '<a href="https://e.example/x">'))
    sparts = slack_parts(md, limit=60)
    for p in sparts:
        slack_text(p)
        assert p.startswith(("*", "<https://e.example/x|"))


def test_split_long_word_never_breaks_an_entity_or_emoji():
    md = "&" * 300 + " " + "😀" * 100 + " " + "👨‍👩‍👧" * 20
    parts = telegram_parts(md, limit=50)
    assert all(utf16(p) <= 50 for p in parts)
    text = "".join(telegram_text(p) for p in parts)  # raises on a cut "&am" + "p;"
    assert text == "&" * 300 + "😀" * 100 + "👨‍👩‍👧" * 20
    for p in parts:
        assert not p.startswith("\u200d") and not p.endswith("\u200d")


def test_split_code_block_reopens_pre():
    md = "```\n" + "\n".join(f"line {i} <x> & y" for i in range(30)) + "\n```"
    parts = telegram_parts(md, limit=120)
    assert len(parts) > 2
    assert all(p.startswith("<pre>") and p.endswith("</pre>") for p in parts)
    assert "\n".join(telegram_text(p) for p in parts).split("\n") == [f"line {i} <x> & y" for i in range(30)]


def test_empty_and_whitespace():
    assert telegram_parts("") == [] and slack_parts("  \n") == []
    assert email_bodies("")[0] == ""


def test_telegram_link_never_contains_code():
    # Telegram refuses code inside a link entity; bold inside a link is fine
    assert telegram_parts("[`code` **b**](https://x.example) `c`") == [
        '<a href="https://x.example">code <b>b</b></a> <code>c</code>']


def test_slack_quote_cut_mid_line_stays_quoted():
    parts = slack_parts("> " + " ".join(["quoted"] * 30) + "\n> second line", limit=50)
    assert len(parts) > 2 and all(p.startswith("> ") for p in parts)
    assert parts[-1].endswith("\n> second line")


def test_no_doubled_markers_and_code_cannot_be_closed_early():
    assert slack_parts("# Hello **there**") == ["*Hello there*"]
    assert telegram_parts("# Hello **there**") == ["<b>Hello there</b>"]
    assert slack_parts("`` a`b ``\n\n```\nx ``` y\n```") == ["`a\u02cbb`\n\n```\nx \u02cb\u02cb\u02cb y\n```"]


def test_autolinks_on_every_channel():
    md = "Mail <jane@example.com> or <https://x.example/a> or [site](https://x.example)"
    assert slack_parts(md) == ["Mail <mailto:jane@example.com|jane@example.com> or <https://x.example/a> "
                               "or <https://x.example|site>"]
    assert plain_text(md) == "Mail jane@example.com or https://x.example/a or site <https://x.example>"
    assert telegram_parts(md) == ['Mail <a href="mailto:jane@example.com">jane@example.com</a> or '
                                  '<a href="https://x.example/a">https://x.example/a</a> or '
                                  '<a href="https://x.example">site</a>']


FUZZ_PIECES = list("<>&*_~`[]()#!\\|{}-+.=:;'\"/ \n\n\n\t>") + [
    "&amp;", "<b>", "**", "~~", "```\n", "\n- ", "\n> ", "\n1. ", "[a](https://e.x/?a=1&b=2)", "<https://x.y/_z_>",
    "😀", "👨‍👩‍👧", "שלום", "word ", "word ", "word ", "\n\n"]


@pytest.mark.parametrize("seed", range(120))
def test_random_markdown_splits_into_valid_complete_parts(seed):
    rnd = random.Random(seed)
    md = "".join(rnd.choice(FUZZ_PIECES) for _ in range(rnd.randint(1, 400)))
    limit = rnd.choice([30, 45, 64, 100, 250])
    parts = telegram_parts(md, limit)
    assert all(utf16(p) <= limit for p in parts)
    texts = [telegram_text(p) for p in parts]
    assert texts == [sandbox_parse(p) for p in parts]
    assert squash("".join(texts)) == squash("".join(telegram_text(p) for p in telegram_parts(md, 10**9)))
    sparts = slack_parts(md, limit)
    assert all(len(p) <= limit for p in sparts)
    assert squash("".join(map(slack_text, sparts))) == squash("".join(map(slack_text, slack_parts(md, 10**9))))
    plain, doc = email_bodies(md)
    assert "<b>" not in doc
