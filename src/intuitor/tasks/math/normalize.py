"""Plain-text forms of a math answer: `normalize_answer` (what math-verify should parse: Unicode minus, thousands
separators, plain-text mixed numbers) and `quick_key` (pure Python: plainly equal answers get equal keys, so plain
numbers are compared and grouped without SymPy, the vote's fast path).
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction


_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})((?:(?:\\[,;:! ]|~|\{,\}|[ \u00a0\u2009\u202f])\d{3})+)(?![\d])")
_MINUS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
# A plain-text mixed number as the whole answer (`2 2/3`, `x = -1 1/2`): whole part, space, proper fraction.
_MIXED = re.compile(r"((?:[a-zA-Z]\s*=\s*)?-?)(\d+)[ \t]+(\d+)/(\d+)")


def _mixed(m: re.Match) -> bool:
    """Whether `a b/c` is unambiguously a mixed number: 0 < b < c, and not `1 234/567` (a thousands group)."""
    return 0 < int(m[3]) < int(m[4]) and not (len(m[2]) <= 3 and len(m[3]) == 3)


def normalize_answer(answer: str) -> str:
    """What math-verify should parse: Unicode minus as `-`, thin-space / space thousands separators dropped, and a
    plain-text mixed number written as LaTeX's (`2 2/3` -> `2\\frac{2}{3}`, which math-verify reads as 8/3; as plain
    text it reads 2 * 2/3).

    >>> normalize_answer(r"1\\,234"), normalize_answer("12 000"), normalize_answer("\\u22125"), normalize_answer("1 2")
    ('1234', '12000', '-5', '1 2')
    >>> normalize_answer("2 2/3"), normalize_answer("x = -1 1/2"), normalize_answer("2 5/3")
    ('2\\\\frac{2}{3}', 'x = -1\\\\frac{1}{2}', '2 5/3')
    """
    text = answer.translate(_MINUS).strip()
    m = _MIXED.fullmatch(text)
    if m and _mixed(m):
        return f"{m[1]}{m[2]}\\frac{{{m[3]}}}{{{m[4]}}}"
    return _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)


_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_UNWRAP = [
    (re.compile(r"\\(?:left|right|displaystyle)(?![a-zA-Z])|\\[,;:! ]|~|\s"), ""),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf)\{([^{}]*)\}"), r"\1"),
]
_UNIT_TAIL = re.compile(r"(?<=[\d}])\\(?:text|mbox|mathrm)\{[a-zA-Z. ]*\}(?:\^\{?\d\}?)?$")


@functools.lru_cache(maxsize=16384)
def quick_key(answer: str | None) -> tuple[str, str] | None:
    """A key equal for answers that are plainly the same: ("q", exact rational) for plain numbers, else ("s", text).

    Strips what never changes a value: `$`, `\\$`, spacing, `\\left`/`\\right`, a unit after a number
    (`13\\text{ cm}`), `\\text{13}`, a final `\\%` (as math-verify, 28% = 28), a leading `x =`, `\\dfrac`; reads
    `\\frac{a}{b}`, `\\frac ab`, `a/b`, mixed numbers (`2\\frac{2}{3}`, `2 2/3`), decimals and thousands commas
    exactly; digits split by a space (`1 2`) are never glued into one number. Equal keys mean equal answers;
    different keys that are both ("q", ...) mean different answers; anything else needs math-verify
    (`answer_classes`).

    >>> quick_key(r"\\$18") == quick_key("18.0") == quick_key(r"\\text{18}") == quick_key(r"18\\text{ cm}")
    True
    >>> quick_key(r"\\dfrac12"), quick_key("x = 0.5"), quick_key("\\u22121,000"), quick_key(r"\\sqrt{2}")
    (('q', '1/2'), ('q', '1/2'), ('q', '-1000'), ('s', '\\\\sqrt{2}'))
    >>> quick_key("2 2/3"), quick_key(r"-2\\frac{2}{3}"), quick_key("1 2")
    (('q', '8/3'), ('q', '-8/3'), ('s', '1 2'))
    """
    if answer is None:
        return None
    s = normalize_answer(str(answer))
    if re.search(r"\d\s+\d", s):  # `1 2`: not one plain number (math-verify reads 1 2 as a product or sum)
        return ("s", re.sub(r"\s+", " ", s))
    s = _UNIT_TAIL.sub("", s.strip())
    for pattern, repl in _UNWRAP:
        s = pattern.sub(repl, s)
    s = s.replace("\\$", "").strip("$").rstrip(".")
    s = re.sub(r"^[a-zA-Z](?:_\{?\w+\}?)?=(?=[^=]+$)", "", s)  # `x=3` -> `3` (one assignment only)
    s = re.sub(r"(?:\\%|%|\\text\{percent\})$", "", s)
    if not s:
        return None
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?)(\d*)\\frac(?:\{(-?\d+)\}|(\d))(?:\{(\d+)\}|(\d))", s)
    if m and not (m[2] and m[3] and m[3].startswith("-")):
        num, den = int(m[3] or m[4]), int(m[5] or m[6])
        if den:  # `2\frac{2}{3}` is the mixed number 2 + 2/3, as math-verify reads it
            return ("q", str((int(m[2] or 0) + Fraction(num, den)) * (-1 if m[1] else 1)))
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m and int(m.group(2)):
        return ("q", str(Fraction(int(m.group(1)), int(m.group(2)))))
    if _NUMBER.fullmatch(s):
        return ("q", str(Fraction(s)))
    return ("s", s)
