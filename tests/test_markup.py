"""Inbound markup made readable (connectors/markup.py): what the agent reads and search finds."""
from __future__ import annotations

from connectors.markup import slack_text, telegram_text


def names(uid):
    return {"U1": "Jane Roe"}.get(uid)


def test_slack_links_mentions_channels_and_specials():
    assert slack_text("<@U1> <@U2|bob> <@U3> <#C1|support> <#C2> <!here> <!channel> <!subteam^S1|@ops> "
                      "<!date^1392734382^{date}|Feb 18> <mailto:a@b.c|a@b.c> <tel:+155|call me> "
                      "<https://x.y/a?b=1&amp;c=2|the page> <https://x.y>", names, {"C2": "billing"}.get) == (
        "@Jane Roe @bob @U3 #support #billing @here @channel @ops Feb 18 a@b.c call me "
        "the page (https://x.y/a?b=1&c=2) https://x.y")


def test_slack_emoji_shortcodes_but_not_in_code_or_links():
    assert slack_text(":+1: :white_check_mark: :wave::skin-tone-2: :flag-fr: :simple_smile: :our-logo: "
                      "`:x:` <https://x.y/:tada:|:tada: party>") == (
        "\U0001F44D \u2705 \U0001F44B\U0001F3FB \U0001F1EB\U0001F1F7 \U0001F642 :our-logo: "
        "`:x:` :tada: party (https://x.y/:tada:)")


def test_slack_escapes_are_undone_once():
    assert slack_text("a &lt;b&gt; &amp;amp; c") == "a <b> &amp; c"


def test_telegram_offsets_count_utf16_units():
    text = "\U0001F600\U0001F600 link and more"
    assert telegram_text(text, [{"type": "text_link", "offset": 5, "length": 4, "url": "https://e.com"}]) == (
        "\U0001F600\U0001F600 link (https://e.com) and more")


def test_telegram_a_link_whose_text_is_its_url_is_not_repeated():
    assert telegram_text("go https://e.com", [{"type": "text_link", "offset": 3, "length": 13,
                                               "url": "https://e.com"}]) == "go https://e.com"


def test_telegram_blockquote_becomes_quoted_lines():
    text = "he said\nline one\nline two\nand I disagree"
    assert telegram_text(text, [{"type": "expandable_blockquote", "offset": 8, "length": 17}]) == (
        "he said\n> line one\n> line two\nand I disagree")


def test_telegram_mentions_and_custom_emoji_keep_their_text():
    text = "thanks Jane \U0001F525"
    assert telegram_text(text, [{"type": "text_mention", "offset": 7, "length": 4, "user": {"id": 1}},
                                {"type": "custom_emoji", "offset": 12, "length": 2, "custom_emoji_id": "5"}]) == text
