"""Full-text query syntax and a reference matcher, shared by search backends.

A query is parsed once here so that every backend (SQLite FTS5, the
in-memory test backend, a future PostgreSQL one) gives a query the same
meaning [mail-4.4.1-matching]:

* unquoted whitespace separates terms, and every term must be present;
* text in double or single quotes is a phrase; inside it ``\\`` escapes
  the quote, the other quote and ``\\`` itself; an unterminated quote runs
  to the end of the query;
* a term is a sequence of words (runs of letters and digits, case- and
  accent-folded); an unquoted term matches where its words occur in
  sequence with its *last* word as a prefix (``ali`` finds ``alice``,
  ``alice@example.com`` is the phrase alice example com), a quoted phrase
  only matches whole words;
* a term without any word (``-``, ``*``, ``""``) constrains nothing and is
  dropped; a query left without terms matches **nothing**: a blank text
  filter that matched every message would turn a client's empty search box
  into "list everything";
* a query of more than :data:`MAX_TERMS` distinct terms, or
  :data:`MAX_RAW_TERMS` terms in all, matches nothing.

:func:`words` approximates SQLite's ``unicode61 remove_diacritics 2``
tokenizer, so the reference matcher and FTS5 agree on ordinary text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

#: More distinct terms than this (or more than :data:`MAX_RAW_TERMS` in
#: all) make a query match nothing: a bound on the work one request can
#: cause, far above any human search.
MAX_TERMS = 64
MAX_RAW_TERMS = 1024

_WORD = re.compile(r"[^\W_]+")
#: One term: a quoted phrase (to its closing quote or the end) or a run of
#: non-space characters.  Scanned by ``re`` so long hostile queries stay cheap.
_TERM = re.compile(
    r"""
    "((?:[^"\\]++|\\.)*+\\?)(?:"|$)    # a double-quoted phrase (escapes kept for now)
    | '((?:[^'\\]++|\\.)*+\\?)(?:'|$)  # a single-quoted phrase
    | (\S+)                            # an unquoted term
    """,
    re.S | re.X,
)
_ESCAPE = re.compile(r"""\\(["'\\])""")
#: Combining diacritical marks (the blocks that hold accents).
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


class Term(NamedTuple):
    """One required part of a query."""

    #: The term as the user meant it (quotes and escapes removed).
    text: str
    #: Quoted: whole words only; unquoted: the last word is a prefix.
    phrase: bool


def fold(text: str) -> str:
    """Lower-case and strip diacritics (é -> e), as the index does."""
    return _MARKS.sub("", unicodedata.normalize("NFD", text.lower()))


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order."""
    return _WORD.findall(fold(text))


def parse_query(query: str) -> list[Term]:
    """The terms of ``query`` that contain a word, without duplicates; an
    empty list means the query matches nothing (see the module docstring)."""
    terms: dict[Term, None] = {}
    for count, match in enumerate(_TERM.finditer(query)):
        double, single, word = match.groups()
        if word is None:
            term = Term(_ESCAPE.sub(r"\1", double if single is None else single), True)
        else:
            term = Term(word, False)
        if _WORD.search(term.text):
            terms[term] = None
        if len(terms) > MAX_TERMS or count >= MAX_RAW_TERMS:
            return []
    return list(terms)


def term_in(term_words: Sequence[str], prefix: bool, text_words: Sequence[str]) -> bool:
    """Whether ``term_words`` occur in sequence in ``text_words`` (the last
    one as a prefix when ``prefix``)."""
    if not term_words:
        return False
    *head, last = term_words
    for i in range(len(text_words) - len(term_words) + 1):
        if list(text_words[i : i + len(head)]) != head:
            continue
        candidate = text_words[i + len(head)]
        if candidate.startswith(last) if prefix else candidate == last:
            return True
    return False
