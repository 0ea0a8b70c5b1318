"""Reply templates: files, per-channel adaptation, sandboxed values, the CLI."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors import config as config_mod
from connectors.desk import templates as T
from connectors.config import ConfigError
from tests.conftest import ROOT
from tests.test_formatting import slack_text, telegram_text

SHIPPED = """+++
description = "Order shipped"
subject = "Order {{ order_number }} has shipped"

[prompts]
carrier = "Carrier name"
+++
Good news: order **{{ order_number }}** left our warehouse with {{ carrier }}.

- Track it: [parcel status](https://track.example/{{ order_number }})
- Questions? Just reply.
<!-- channel: slack -->
Order **{{ order_number }}** shipped with {{ carrier }}: <https://track.example/{{ order_number }}>
"""

SIGNATURE = "Ann Lee · Shop Example\nhttps://shop.example"

# A customer named `<b>*_&`, with emoji, right-to-left text and an RLO override.
TORTURE_NAME = "<b>*_& 😀 שלום \u202eevil"
FSI, PDI = "\u2068", "\u2069"


@pytest.fixture
def tdir(tmp_path) -> Path:
    d = tmp_path / "templates"
    d.mkdir()
    (d / "shipped.md").write_text(SHIPPED, encoding="utf-8")
    return d


@pytest.fixture
def cfg():
    return config_mod.validate({"agent": {"name": "Ann Lee"}, "channels": {"email": {"signature": SIGNATURE}}})


def ctx(name="Jane Roe", facts=None, **values):
    return T.context_for(name, "Ann Lee", "", {"Order number": "1042"} if facts is None else facts, values)


# -- one template, three channels ------------------------------------------------------
def test_one_template_rendered_for_every_channel(tdir, cfg):
    email = T.render("shipped", "email", ctx(carrier="DHL"), config=cfg, directory=tdir)
    assert email.subject == "Order 1042 has shipped"
    assert email.parts == [email.text] and email.text == (
        "Hello Jane,\n\n"
        "Good news: order *1042* left our warehouse with DHL.\n\n"
        "- Track it: parcel status <https://track.example/1042>\n- Questions? Just reply.\n\n"
        "Best regards,\nAnn Lee\n\n"
        "-- \nAnn Lee · Shop Example\nhttps://shop.example")
    assert ('<p>Good news: order <strong>1042</strong> left our warehouse with DHL.</p>\n<ul>\n'
            '<li>Track it: <a href="https://track.example/1042">parcel status</a></li>') in email.html
    assert "<p>Hello Jane,</p>" in email.html and "Ann Lee · Shop Example<br />" in email.html

    tg = T.render("shipped", "telegram", ctx(carrier="DHL"), config=cfg, directory=tdir)
    assert tg.subject is None and tg.html is None
    assert tg.parts == ['Hi Jane!\n\nGood news: order <b>1042</b> left our warehouse with DHL.\n\n'
                        '• Track it: <a href="https://track.example/1042">parcel status</a>\n'
                        '• Questions? Just reply.']  # no sign-off, no signature block in a chat

    slack = T.render("shipped", "slack", ctx(carrier="DHL"), config=cfg, directory=tdir)
    assert slack.parts == ["Hi Jane,\n\nOrder *1042* shipped with DHL: <https://track.example/1042>"]


def test_rendered_parts_are_what_the_connectors_will_send(tdir, cfg):
    from connectors import formatting

    for channel in T.CHANNELS:
        r = T.render("shipped", channel, ctx(carrier="DHL"), config=cfg, directory=tdir)
        expected = {"email": lambda s: [formatting.email_bodies(s)[0]], "telegram": formatting.telegram_parts,
                    "slack": formatting.slack_parts}[channel](r.source)
        assert r.parts == expected


# -- escaping torture --------------------------------------------------------------------
TORTURE_TEMPLATE = """Dear **{{ name }}**, your code is `{{ code }}`.
Note: {{ note }}
[Track]({{ url }})"""

NASTY = {"code": "A`1 <x>", "note": "{{ agent }} [x](javascript:alert(1)) # not a heading\n\n- nor a list &amp;",
         "url": "https://t.example/a b?x=1&y=<2>"}


def _torture(channel):
    t = T.parse(TORTURE_TEMPLATE, "torture")
    return T.render(t, channel, ctx(TORTURE_NAME, {}, **NASTY))


def test_torture_telegram():
    r = _torture("telegram")
    [part] = r.parts
    text = telegram_text(part)  # valid Telegram HTML
    assert f"Dear {FSI}<b>*_& 😀 שלום \u202eevil{PDI}" in text  # the name, as text, isolated
    assert part.count("<b>") == 1  # only the template's own bold
    assert "{{ agent }}" in text and "Ann Lee" not in text  # a value is never evaluated again
    assert "javascript" in text and 'href="javascript' not in part
    assert "# not a heading" in text and "- nor a list &amp;" in text
    assert "<code>A\u02cb1 &lt;x&gt;</code>" in part
    assert '<a href="https://t.example/a%20b?x=1&amp;y=%3C2%3E">Track</a>' in part
    assert part.startswith("Hi &lt;b&gt;*_&amp;!")  # the greeting's first name, escaped too


def test_torture_slack():
    [part] = _torture("slack").parts
    text = slack_text(part)
    assert "<b>" not in part and "&lt;b&gt;" in part and "<javascript" not in part
    assert part.startswith("Hi &lt;b&gt;\u2217\u02cd&amp;,")
    assert f"Dear *{FSI}&lt;b&gt;\u2217\u02cd&amp; 😀 שלום \u202eevil{PDI}*" in part
    assert "{{ agent }}" in text and "Ann Lee" not in text
    assert "<https://t.example/a%20b?x=1&amp;y=%3C2%3E|Track>" in part


def test_torture_email():
    r = _torture("email")
    assert f"Dear *{FSI}<b>*_& 😀 שלום \u202eevil{PDI}*" in r.text
    assert "<b>*_&" not in r.html and f"<strong>{FSI}&lt;b&gt;*_&amp; 😀 שלום \u202eevil{PDI}</strong>" in r.html
    assert "javascript:" not in r.html.split("javascript:alert(1))")[0].split("href=")[-1]
    assert 'href="javascript' not in r.html and "<h1>" not in r.html and "<li>" not in r.html
    assert "{{ agent }}" in r.text


def test_subject_is_one_line_of_text():
    t = T.parse('+++\nsubject = "About {{ topic }}"\n+++\nbody', "s")
    r = T.render(t, "email", ctx(topic="x\r\nBcc: evil@example.com **b**"))
    assert r.subject == "About x Bcc: evil@example.com **b**"


def test_control_characters_are_dropped_from_values():
    r = T.render(T.parse("Hi {{ note }}", "c"), "telegram", ctx(note="a\x1b[31mred\x00"))
    assert r.parts == ["Hi Jane!\n\nHi a[31mred"]


# -- missing values and the sandbox --------------------------------------------------------
def test_missing_values_are_all_named_before_anything_is_rendered(tdir):
    with pytest.raises(T.MissingValues) as e:
        T.render("shipped", "email", ctx(facts={}), directory=tdir)
    assert e.value.missing == [("order_number", ""), ("carrier", "Carrier name")]
    assert "order_number" in str(e.value) and "--set carrier=..." in str(e.value)


def test_empty_value_counts_as_missing_and_fallbacks_fill_in():
    t = T.parse('Hello {{ first_name | "there" }}, about {{ topic }}', "f")
    with pytest.raises(T.MissingValues):
        T.render(t, "slack", ctx(name="", topic="   "))
    r = T.render(t, "slack", ctx(name="", topic="refunds"))
    assert r.parts == ["Hi there,\n\nHello there, about refunds"]


@pytest.mark.parametrize("body", ["{{ name.upper() }}", "{{ 1 + 1 }}", "{{ __import__('os').system('id') }}",
                                  "{{ name | upper }}", "{{name}", "{{ }}"])
def test_expressions_are_refused(body):
    with pytest.raises(T.TemplateError, match="only"):
        T.parse(body, "bad")


def test_literal_braces():
    r = T.render(T.parse(r"Use \{{ name }} in your own templates, {{ first_name }}", "lit"), "slack", ctx())
    assert r.parts == ["Hi Jane,\n\nUse {{ name }} in your own templates, Jane"]


def test_unknown_template_and_bad_front_matter(tdir):
    with pytest.raises(T.TemplateError, match="have: shipped"):
        T.load("nope", tdir)
    with pytest.raises(T.TemplateError, match="not a template name"):
        T.load("../etc/passwd", tdir)
    with pytest.raises(T.TemplateError, match="unknown front matter key 'subjet'"):
        T.parse('+++\nsubjet = "x"\n+++\nbody', "typo")
    with pytest.raises(T.TemplateError, match="not valid TOML"):
        T.parse("+++\nsubject = \n+++\nbody", "toml")
    with pytest.raises(T.TemplateError, match="channel: sms"):
        T.parse("body\n<!-- channel: sms -->\nx", "sms")


# -- overrides and channel settings ---------------------------------------------------------
def test_per_channel_overrides_and_template_greeting_settings():
    t = T.parse('+++\ngreeting = false\nsign_off = "Cheers, {{ agent_first_name }}"\n+++\n'
                "Long **e-mail** text.\n<!-- channel: telegram, slack -->\nShort chat text.", "o")
    assert T.render(t, "email", ctx()).text == "Long *e-mail* text.\n\nCheers, Ann"
    assert T.render(t, "telegram", ctx()).parts == ["Short chat text.\n\nCheers, Ann"]
    assert T.render(t, "slack", ctx()).parts == ["Short chat text.\n\nCheers, Ann"]


def test_channel_settings_from_config():
    cfg = config_mod.validate({"channels": {
        "telegram": {"greeting": "Hey {{ first_name }} 👋", "sign_off": "— {{ agent }}"},
        "email": {"greeting": "Dear {{ name }},", "sign_off": "Kind regards", "signature": "Shop"}}})
    t = T.parse("Body.", "b")
    assert T.render(t, "telegram", ctx(), config=cfg).parts == ["Hey Jane 👋\n\nBody.\n\n— Ann Lee"]
    assert T.render(t, "email", ctx(), config=cfg).text == "Dear Jane Roe,\n\nBody.\n\nKind regards\n\n-- \nShop"
    assert T.render(t, "slack", ctx(), config=cfg).parts == ["Hi Jane,\n\nBody."]  # defaults elsewhere


@pytest.mark.parametrize("table, message", [
    ({"telegram": {"signature": "x"}}, "no signature block"),
    ({"email": {"greetings": "x"}}, "channels.email.greetings: unknown key"),
    ({"sms": {}}, r"\[channels.sms\]: unknown channel"),
    ({"email": {"greeting": 3}}, "expected a string"),
    ({"email": {"greeting": "{{ name.title() }}"}}, "only"),
])
def test_bad_channel_settings_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        config_mod.validate({"channels": table})


def test_free_text_preview_adds_only_the_email_signature(cfg):
    md = "Your refund is on its way, **{{ not a template }}** <b>"
    r = T.preview(md, "email", {"agent": "Ann Lee"}, config=cfg, subject="Re: refund")
    assert r.subject == "Re: refund"
    assert r.text == ("Your refund is on its way, *{{ not a template }}* <b>\n\n"
                      "-- \nAnn Lee · Shop Example\nhttps://shop.example")
    assert T.preview(md, "telegram", config=cfg).parts == [
        "Your refund is on its way, <b>{{ not a template }}</b> &lt;b&gt;"]


def test_long_template_splits_on_chat_channels():
    note = "\n".join(f"Line {i}: " + "details " * 20 for i in range(60))
    r = T.render(T.parse("Here is everything:\n\n{{ note }}", "long"), "telegram", ctx(note=note))
    assert len(r.parts) > 1 and all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in r.parts)
    joined = "\n".join(telegram_text(p) for p in r.parts)
    assert joined.count("details") == 60 * 20
    s = T.render(T.parse("{{ note }}", "long"), "slack", ctx(note=note))
    assert len(s.parts) > 1 and all(len(p) <= 4000 for p in s.parts)


# -- starter set ---------------------------------------------------------------------------------
STARTER_VALUES = {"status": "shipped today", "tracking_url": "https://t.example/1", "amount": "€20",
                  "days": "5", "problem": "the parcel arrived damaged", "next_step": "a new one ships today"}


def test_starter_templates_install_and_render_everywhere(tmp_path):
    dest = tmp_path / "templates"
    written = T.install_starter_templates(dest)
    assert sorted(p.name for p in written) == ["README.txt", "apology.md", "closing.md", "greeting.md",
                                               "order-status.md", "refund.md"]
    for t in T.list_templates(dest):
        assert t.description
        for channel in T.CHANNELS:
            r = T.render(t.name, channel, ctx(**STARTER_VALUES), directory=dest)
            assert r.parts and "{{" not in r.source
            if channel == "email":
                assert r.subject and r.html
    closing = T.render("closing", "telegram", ctx(), directory=dest)
    assert "1 (poor) to 5 (great)" in closing.parts[0]


def test_install_never_overwrites_edited_templates(tmp_path):
    dest = tmp_path / "templates"
    dest.mkdir()
    (dest / "refund.md").write_text("my own refund text", encoding="utf-8")
    written = T.install_starter_templates(dest)
    assert (dest / "refund.md").read_text(encoding="utf-8") == "my own refund text"
    assert dest / "refund.md" not in written and len(written) == 5  # four templates and the README
    assert T.install_starter_templates(dest) == []


def test_templates_dir_follows_the_config_file(tmp_path):
    cfg = config_mod.validate({}, tmp_path / "conf" / "config.toml")
    assert T.templates_dir(cfg) == tmp_path / "conf" / "templates"
    assert T.templates_dir() == config_mod.config_dir() / "templates"


# -- with the store ------------------------------------------------------------------------------
def _customer(store, make_inbound, name="Jane Roe"):
    store.ingest(make_inbound("telegram", "1001", "where is my order?", name=name, handle="jane"))
    cid = store.find_customer("@jane")
    store.set_fact(cid, "Order number", "1042", "ann")
    return cid


def test_render_for_customer_uses_name_and_facts(store, make_inbound, tdir, cfg):
    cid = _customer(store, make_inbound)
    r = T.render_for_customer(store, cid, "shipped", "telegram", "Ann Lee", {"carrier": "UPS"},
                              config=cfg, directory=tdir)
    assert r.parts[0].startswith("Hi Jane!\n\nGood news: order <b>1042</b> left our warehouse with UPS.")
    r = T.preview_for_customer(store, cid, "Thanks!", "email", "Ann Lee", config=cfg)
    assert r.text.startswith("Thanks!\n\n-- \nAnn Lee")


# -- the CLI, end to end --------------------------------------------------------------------------
def _cli(tmp_path, *args, stdin=None):
    """The CLI in this process, on this test's own config and store."""
    from types import SimpleNamespace

    from tests.support.cli import run_in_process

    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
           "OMNIDESK_DB": str(tmp_path / "cli.db"), "OMNIDESK_CONFIG": str(tmp_path / "conf" / "config.toml")}
    rc, out, err = run_in_process(*args, stdin=stdin or "", env=env)
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


@pytest.fixture
def cli_home(tmp_path, make_inbound):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.toml").write_text('[agent]\nname = "Ann Lee"\n\n[channels.email]\nsignature = "Shop Example"\n',
                                      encoding="utf-8")
    from store import Store

    s = Store(tmp_path / "cli.db")
    s.ingest(make_inbound("telegram", "1001", "where is it?", name=TORTURE_NAME, handle="jane"))
    s.ingest(make_inbound("email", "jane@example.com", "hello?", name="Jane", subject="Order"))
    s.set_fact(s.find_customer("@jane"), "Order number", "1042", "ann")
    s.close()
    return tmp_path


def test_cli_install_list_render(cli_home):
    done = _cli(cli_home, "templates", "install")
    assert done.returncode == 0 and "5 starter template(s) installed" in done.stdout
    assert (cli_home / "conf" / "templates" / "refund.md").exists()
    listed = json.loads(_cli(cli_home, "templates", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["apology", "closing", "greeting", "order-status", "refund"]
    assert listed[3]["prompts"]["tracking_url"] == "Tracking link"

    done = _cli(cli_home, "templates", "render", "order-status", "--customer", "@jane", "--channel", "telegram",
                "--set", "status=shipped *today*", "--set", "tracking_url=https://t.example/1", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["channel"] == "telegram" and r["subject"] is None
    [part] = r["parts"]
    telegram_text(part)
    assert part.startswith("Hi &lt;b&gt;*_&amp;!\n\nOrder <b>1042</b>: shipped *today*.")

    done = _cli(cli_home, "templates", "render", "order-status", "--customer", "jane@example.com",
                "--channel", "email", "--set", "status=shipped", "--set", "tracking_url=https://t.example/1",
                "--set", "order_number=77")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Subject: Your order 77\n--- text/plain")
    assert "-- \nShop Example" in done.stdout and "text/html alternative" in done.stdout


def test_cli_missing_value_is_an_error_not_a_message(cli_home):
    _cli(cli_home, "templates", "install")
    done = _cli(cli_home, "templates", "render", "refund", "--customer", "@jane", "--channel", "slack",
                "--set", "amount=€20")
    assert done.returncode == 1 and done.stdout == ""
    assert "no value for days" in done.stderr and "Traceback" not in done.stderr
    done = _cli(cli_home, "templates", "render", "nope", "--channel", "slack")
    assert done.returncode == 1 and "no template 'nope'" in done.stderr


def test_cli_reply_with_template_queues_what_render_showed(cli_home):
    _cli(cli_home, "templates", "install")
    args = ["--customer", "@jane", "--channel", "telegram", "--set", "amount=€20", "--set", "days=5"]
    shown = json.loads(_cli(cli_home, "templates", "render", "refund", *args, "--json").stdout)
    done = _cli(cli_home, "reply", "@jane", "--template", "refund", "--channel", "telegram",
                "--set", "amount=€20", "--set", "days=5", "--json")
    assert done.returncode == 0, done.stderr
    queued = json.loads(done.stdout)
    assert queued["text"] == shown["source"]
    from connectors.formatting import telegram_parts

    assert telegram_parts(queued["text"]) == shown["parts"]


def test_a_broken_template_is_named_and_the_others_still_listed(tdir):
    (tdir / "broken.md").write_text("Hi {{ name.upper() }}", encoding="utf-8")
    with pytest.raises(T.TemplateError, match="broken"):
        T.list_templates(tdir)
    errors: list[str] = []
    assert [t.name for t in T.list_templates(tdir, errors)] == ["shipped"]
    assert len(errors) == 1 and "broken.md" in errors[0]
    with pytest.raises(T.TemplateError, match="prompt 'tracking-url'"):
        T.parse('+++\n[prompts]\n"tracking-url" = "x"\n+++\nbody', "p")


def test_cli_list_reports_a_broken_file(cli_home):
    _cli(cli_home, "templates", "install")
    (cli_home / "conf" / "templates" / "oops.md").write_text("+++\nsubject = \n+++\n", encoding="utf-8")
    done = _cli(cli_home, "templates", "list")
    assert done.returncode == 1 and "oops.md: front matter is not valid TOML" in done.stderr
    assert "refund" in done.stdout
    assert "1 broken template file(s) not listed: oops" in done.stdout  # the list says it is not all
    for good in (cli_home / "conf" / "templates").glob("*.md"):
        if good.stem != "oops":
            good.unlink()
    done = _cli(cli_home, "templates", "list")  # only the broken one: never "No templates"
    assert done.returncode == 1 and "No usable templates" in done.stdout and "oops" in done.stdout
    assert "No templates in" not in done.stdout


def test_channels_config_example_is_valid_and_shows_the_defaults():
    import tomllib

    example = T.channels_config_example()
    cfg = config_mod.validate(tomllib.loads(example))
    for channel in T.CHANNELS:
        assert T.channel_settings(channel, cfg) == T.CHANNEL_DEFAULTS[channel]
    assert "signature" not in example.split("[channels.telegram]")[1]


FUZZ_TEMPLATE = """# About {{ v }}

Hi **{{ v }}**, _{{ v }}_ ~~{{ v }}~~ `{{ v }}` [link {{ v }}](https://x.example/{{ v }})

- {{ v }}
> {{ v }}

{{ v }}"""


@pytest.mark.parametrize("seed", range(40))
def test_any_value_stays_text_on_every_channel(seed):
    import random

    from connectors.sandbox.telegram import parse_html

    rnd = random.Random(seed)
    alphabet = list("<>&*_~`[]()#!\\|{}-+.=:;'\"/ \n\t") + ["&amp;", "<b>", "{{ agent }}", "<!channel>", "😀",
                                                          "שלום", "\u202e", "\x1b[2J", "javascript:", "```", "1. "]
    value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40)))
    t = T.parse(FUZZ_TEMPLATE, "fuzz")
    context = ctx(v=value) if value.strip() else ctx(v="x")
    letters = [c for c in value if c.isalnum()]
    for channel in T.CHANNELS:
        r = T.render(t, channel, context)
        assert "Ann Lee" not in r.source.split("Best regards")[0]  # {{ agent }} in a value is not evaluated
        if channel == "telegram":
            for part in r.parts:
                assert telegram_text(part) == parse_html(part)
                assert 'href="javascript' not in part
        elif channel == "slack":
            for part in r.parts:
                slack_text(part)
                assert "<!" not in part
        else:
            body = r.html.split("<body>")[1]
            assert not set(re.findall(r"</?([a-z0-9]+)", body)) - {"h1", "p", "strong", "em", "s", "code", "a",
                                                                  "ul", "li", "blockquote", "br", "body", "html"}
            assert "\x1b" not in r.text
        # every letter of the value is there, in order, in what is sent
        text = "".join(r.parts)
        pos = 0
        for c in letters:
            pos = text.find(c, pos)
            assert pos >= 0, (channel, value, text)
