"""SQL fingerprints: placeholders only, never parameter values.

String literals, comments, numbers and driver placeholders (``%s``,
``%(name)s``, ``?``, ``:1``, ``$1``) become ``?``; ``IN (?, ?, ...)`` lists
and multi-row ``VALUES`` collapse to one form; whitespace collapses. Queries
that differ only in those parts share a fingerprint, so ``/courses/17/`` and
``/courses/18/`` run the same fingerprint and a ``LIMIT 21`` is a ``LIMIT ?``.

Literals and comments are removed in one left-to-right pass, so a ``--``
inside a string is not taken for a comment (which would keep the rest of the
string) and a quote inside a comment does not open a string. When in doubt the
text is removed: an unterminated quote drops everything after it.

This runs in the flusher, never on the request path.
"""

from __future__ import annotations

import hashlib
import re

_LITERALS = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'        # string, with '' and backslash escapes
      | \$(\w*)\$.*?\$\1\$          # PostgreSQL dollar-quoted string
      | /\*.*?\*/                   # block comment
      | --[^\n]*                    # line comment
    """, re.S | re.X)
_PLACEHOLDERS = re.compile(r"%\([^)]*\)s|%s|\?|\$\d+|(?<![\w:]):\w+")
_NUMBERS = re.compile(r"(?<![\w.\"`])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w\"`])")
_WHITESPACE = re.compile(r"\s+")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.I)
_ROW = r"\((?:[^()]|\([^()]*\))*\)"
_VALUES_LIST = re.compile(rf"\bVALUES\s*{_ROW}(?:\s*,\s*{_ROW})*", re.I)
_SAVEPOINT = re.compile(r"\b(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\s+\"?\w+\"?", re.I)

MAX_SQL_LENGTH = 4000
MAX_INPUT_LENGTH = 20000


def _literal(match: re.Match[str]) -> str:
    return " " if match.group(0)[:2] in ("/*", "--") else "?"


def normalize_sql(sql: str) -> str:
    text = sql if len(sql) <= MAX_INPUT_LENGTH else sql[:MAX_INPUT_LENGTH]
    text = _LITERALS.sub(_literal, text)
    quote = text.find("'")
    if quote != -1:  # unterminated string (or cut by the length limit): drop the rest
        text = text[:quote] + "?"
    text = _PLACEHOLDERS.sub("?", text)
    text = _NUMBERS.sub("?", text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _IN_LIST.sub("IN (...)", text)
    text = _VALUES_LIST.sub("VALUES (...)", text)
    text = _SAVEPOINT.sub(r"\1 ?", text)
    return text[:MAX_SQL_LENGTH]


def fingerprint_of(normalized: str) -> str:
    return hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()


class FingerprintCache:
    """Raw SQL string -> (fingerprint, normalized SQL), bounded.

    Django emits the same SQL strings over and over (placeholders, not values),
    so after warm-up a fingerprint costs one dict lookup.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, str]] = {}

    def get(self, sql: str) -> tuple[str, str]:
        hit = self._entries.get(sql)
        if hit is not None:
            return hit
        normalized = normalize_sql(sql)
        result = (fingerprint_of(normalized), normalized)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[sql] = result
        return result
