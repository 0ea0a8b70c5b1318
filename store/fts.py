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
    if not text or not isinstance(text, str) or text.isascii() or not _NEEDS.search(text):
        return text  # (isascii is instant; the regex scans ~7 ns a character)
    return _CJK_CHAR.sub(r" \1 ", text.translate(_FOLDS))


# -- PostgreSQL: the same words, as a tsvector and tsquery built here ----------------------
# PostgreSQL's own parser splits text otherwise than SQLite's unicode61 (an e-mail address
# or a-hyphenated-word stays one token there) and folds no accents in the 'simple'
# configuration. So the store tokenizes in Python the way unicode61 does (letters and
# digits; underscore and punctuation separate), on fts_text()'s output, with Latin
# accents folded (café -> cafe) and case folded, and hands PostgreSQL the finished
# tsvector / tsquery text (cast, never parsed by a text search configuration). Both
# backends then find the same words.
import unicodedata  # noqa: E402

_WORD = re.compile(r"[^\W_]+")
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_POSITIONS = 256  # positions kept per word (PostgreSQL keeps no more)
MAX_LEXEME = 500  # characters; longer "words" (a base64 run) are not searchable anyway
MAX_DOC = 900_000  # bytes of tsvector text: PostgreSQL refuses a tsvector over 1 MB


class _LatinBase(dict):
    """str.translate table: a Latin letter with diacritics to its base letter (é -> e),
    as unicode61's remove_diacritics does; other scripts keep their letters (й stays й)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        parts = unicodedata.normalize("NFD", ch)
        base = ch
        if len(parts) > 1 and ord(parts[0]) < 0x250 and all(unicodedata.combining(p) for p in parts[1:]):
            base = parts[0]
        elif unicodedata.category(ch) == "Mn" and code < 0x370:  # a combining accent left loose
            base = ""
        self[code] = base
        return base


_LATIN_BASE = _LatinBase()


def words(text: str | None) -> list[str]:
    """The index's words of `text`, in order: what unicode61 (remove_diacritics 2) would
    make of fts_text(text)."""
    if not text:
        return []
    folded = fts_text(text) or ""
    if not folded.isascii():
        folded = unicodedata.normalize("NFC", folded).translate(_LATIN_BASE)
    return _WORD.findall(folded.lower())


def tsvector(*columns: str | None) -> str:
    """The tsvector text of a row's columns (subject, text): each word with its positions;
    a gap between columns, so a phrase never runs from one into the next (as in FTS5)."""
    split = [words(column) for column in columns]
    if sum(map(len, split)) < 1000:  # the common case: no limit can be reached
        positions: dict[str, list[int]] = {}
        at = 1
        for ws in split:
            for w in ws:
                seen = positions.get(w)
                if seen is not None:
                    seen.append(at)
                elif len(w) <= MAX_LEXEME:
                    positions[w] = [at]
                at += 1
            at += 1
        return " ".join([f"'{w}':{','.join(map(str, p))}" for w, p in positions.items()])
    positions = {}
    at = 0
    size = 0
    for ws in split:
        for w in ws:
            at += 1
            if len(w) > MAX_LEXEME:
                continue
            seen = positions.get(w)
            if seen is None:
                size += len(w.encode()) + 8
                if size > MAX_DOC:
                    continue
                positions[w] = seen = []
            if len(seen) < MAX_POSITIONS:
                seen.append(min(at, MAX_POSITION))
        at += 1
    return " ".join(f"'{w}':{','.join(map(str, p))}" for w, p in positions.items())


def tsquery_phrase(text: str, prefix: bool = False) -> str:
    """A search term as tsquery text: its words adjacent in order (`<->`), the last a prefix
    (`:*`) when asked; "" when the term has no word."""
    ws = [w for w in words(text) if len(w) <= MAX_LEXEME]
    if not ws:
        return ""
    parts = [f"'{w}'" for w in ws]
    if prefix:
        parts[-1] += ":*"
    return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"


def bm25_doc(tsv: str) -> tuple[str, int]:
    """A tsvector's text (its words are letters and digits only: tsvector() made it) and its
    length in words, what FTS5's bm25 calls the row's size: each word has one position
    more than it has commas."""
    return tsv, tsv.count("':") + tsv.count(",")


def phrase_count(doc: str, ws: list[str], prefix: bool) -> int:
    """How often the phrase `ws` occurs in `doc` (tsvector text: its words at consecutive
    positions; the last a prefix when `prefix`), as FTS5 counts a phrase's hits in a row."""
    return PhraseCounter(ws, prefix)(doc)


class PhraseCounter:
    """phrase_count for one phrase over many rows: its patterns compiled once (ranking
    1,000 rows spent most of its time making them again for each row)."""

    def __init__(self, ws: list[str], prefix: bool):
        self.patterns = [re.compile(f"'{re.escape(w)}{'[^' + chr(39) + ']*' if k == len(ws) - 1 and prefix else ''}'"
                                    ":([0-9,]+)") for k, w in enumerate(ws)]

    def __call__(self, doc: str) -> int:
        first = self.patterns[0].findall(doc)
        if len(self.patterns) == 1:  # one word: how many positions it has
            return sum(p.count(",") + 1 for p in first)
        found = {int(p) for ps in first for p in ps.split(",")}
        for k, pattern in enumerate(self.patterns[1:], 1):
            found &= {int(p) - k for ps in pattern.findall(doc) for p in ps.split(",")}
            if not found:
                return 0
        return len(found)
