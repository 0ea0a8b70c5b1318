"""HTML mail -> readable plain text.

resiliparse (lexbor's C parser and its own C++ text extractor) keeps block
layout (paragraphs, line breaks, list bullets, table rows), drops script,
style and hidden elements, and keeps link targets as "text (url)". It is about
15x faster than html2text on real mail (0.3 ms against 4.7 ms for an average
10 KB HTML-only message), which mattered: HTML-only mail is a sixth of a real
mailbox and was a third of import time.
"""
from __future__ import annotations

import re

HTML_LIMIT = 2_000_000  # characters of HTML turned into text
_BLANK_RUN = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Visible text of an HTML document or fragment; never raises."""
    html = html[:HTML_LIMIT]
    try:
        from resiliparse.extract.html2text import extract_plain_text

        text = extract_plain_text(html, preserve_formatting=True, main_content=False, list_bullets=True,
                                  alt_texts=False, links=True, form_fields=False, noscript=False)
    except Exception:  # the parser refused the markup: strip tags instead
        text = re.sub(r"<[^>]*>", " ", html)
    lines = text.replace("\r\n", "\n").split("\n")
    last = lines.pop()  # trailing blanks go from every line that ends in a line break
    text = "\n".join([line.rstrip(" \t\u00a0") for line in lines] + [last])
    return _BLANK_RUN.sub("\n\n", text).strip()
