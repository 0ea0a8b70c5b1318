"""What the full-text index sees: text with common folds applied and
Chinese/Japanese/Korean characters set apart.

SQLite's unicode61 tokenizer splits words at spaces and punctuation, so a run
of CJK text ("请问什么时候发货") is one token and no word inside it can be
found. Here each CJK character becomes a token of its own; a CJK search word
becomes the phrase of its characters ("发 货"), which matches them adjacent,
anywhere in a run. The folds unicode61 lacks are applied to the index and to
the query alike: ё -> е (Russian writes пришел for пришёл), ß -> ss, æ, œ, ø.
(Accents such as café -> cafe are already folded by the tokenizer.)

Registered as the SQL function fts_text() on every store connection, because
the index triggers (schema v11) must feed it the same text to delete a row.
Text without any of these characters comes back unchanged (the fast path,
and the reason rows indexed before v10 stay valid).
"""
from __future__ import annotations

import re

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9f"
_NEEDS = re.compile(f"[{_CJK}ёЁßæÆœŒøØ]")
_CJK_CHAR = re.compile(f"([{_CJK}])")
_FOLDS = str.maketrans({"ё": "е", "Ё": "Е", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o",
                        "Ø": "O"})


def fts_text(text: str | None) -> str | None:
    """`text` as the index stores it (None stays None)."""
    if not text or not isinstance(text, str) or not _NEEDS.search(text):
        return text
    return _CJK_CHAR.sub(r" \1 ", text.translate(_FOLDS))
