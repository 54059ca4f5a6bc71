"""Math answers in one place: which answer a response states (`extract_answer`), whether two answers are equal
(`math_equal`), and which answers of a group are the same answer (`answer_classes`, for votes).

Every consumer goes through these three: the math tasks (`extract` is what `samples.jsonl` shows as `answer`,
`score` grades exactly that string), the `accuracy` reward, the `plurality_vote` reward, the label-free agreement
metric and `select --method majority|borda`.

Reference: lighteval's extractive-match math metrics (huggingface/lighteval@9619194bdbf42fcdc2078f29db49de6d883bfa2e,
the version the paper's tooling ran: `src/lighteval/metrics/metrics.py` `expr_gold_metric` for GSM8K and
`math_pass_at_1_1n` for MATH500, on `metrics/utils/extractive_match_utils.py` and `metrics/utils/math_comparison.py`),
which are the code of math-verify (huggingface/Math-Verify@5d148cfaaf99214c2e4ffb4bc497ab042c592a7a = 0.9.0, the
pinned dependency: `parser.py`, `grader.py`); we call math-verify for parsing and comparison. Extraction, in order:
1. Boxes: the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept). A run of boxes separated only by commas,
   "and"/"or", spaces or `x =` is one list answer (`\\boxed{1}, \\boxed{2}` -> `1, 2`), as math-verify joins them;
   boxes separated by prose are not (`\\boxed{4} ... wait, \\boxed{5}` -> `5`).
2. GSM8K's own format: the number right after the last `#### `.
3. Bare LaTeX after an answer phrase (`the answer is \\frac{\\sqrt{3}}{2}`), a response that is one bare LaTeX
   expression, or a final line `... = <bare LaTeX>`: that whole expression.
4. Otherwise math-verify's own extraction regexes and priorities ("final answer is", "answer:", the last LaTeX
   environment, the last number or expression), the rightmost match of the best priority.
The answer string is then compared with the gold by math-verify (`parse` of `\\boxed{answer}`, `verify`), after
`normalize_answer` (U+2212 minus, thin-space / space thousands separators).

Departures from lighteval, each on purpose (a careful human grader overrules the reference on them):
- An unterminated final `\\boxed{` (generation cut off mid-answer) means no answer; lighteval falls back to an
  earlier box the response had abandoned.
- `#### N` beats a number in a remark after it (`#### 18` then "Note: it took 3 hours"); lighteval takes the 3.
- Bare LaTeX is read whole; lighteval cuts `the answer is 2\\sqrt{3}` at its first number (2).
- Thousands separators `1\\,234`, `12 000`, `12\\,000` are one number; math-verify reads products (235, 0).
- Exact values must be exactly equal: math-verify compares `1/2006!` and `1/2004!` with `evalf(chop=True)`, which
  rounds their difference to 0; we re-check a "yes" on two exact (Float-free, symbol-free) values to 15 significant
  digits relative. Floats keep math-verify's rounding to 6 decimals (0.333333 = 1/3).
- Math-verify tries the next match when the rightmost one does not parse; step 4 takes the rightmost match that can
  parse (balanced braces) without parsing it, so the answer shown is the answer graded.
- A response cut off inside an expression (`so the total is 26 * 4 =`, last sign an operator: `strip_unfinished`)
  is read without that expression: it states no value of it (lighteval credits 26 * 4 = 104). What comes before it
  is read as usual (`The answer is 104. Check: 26 * 4 =` -> 104).
- An inequality answers an interval (`3 < x \\le 4` for `(3,4]`, `x > 3` for `(3,\\infty)`): we call math-verify's
  `verify` with its `allow_set_relation_comp=True` (Math-Verify@5d148cfa `grader.py`, `sympy_expr_eq`: the relation
  is turned into its solution set), so the comparison is symmetric; lighteval's default call only reads an
  inequality *gold* as a set.
- A plain-text mixed number `2 2/3` (the whole answer, a proper fraction, not a thousands group like `1 234/567`) is
  2 + 2/3, as math-verify reads LaTeX's `2\\frac{2}{3}`; math-verify reads the text as 2 * 2/3, and `#### 2 2/3`
  as 2. Never the leading integer.

Time limit. math-verify bounds each `parse`/`verify` step with `signal.alarm`, which (a) only works in the main
thread (it raises `ValueError` inside TRL's or any other worker thread) and (b) cannot interrupt long C-level work:
`\\boxed{9^{9^{9^{9}}}}` makes SymPy build a 370-million-digit integer and the alarm never fires. So by default
each check runs in one persistent helper process (started on first use, about a second; the start is not charged to
a check): the helper bounds each step with its own timer, set `DEADLINE_GRACE_S` (0.5 s) short of `timeout_s`, and
reports after each one; when a step reaches `timeout_s` without a report (C-level work no signal interrupts), the
caller kills the helper, so no step takes longer than `timeout_s`; the next check starts a new helper. The helper's
address space is capped (`HELPER_MEMORY_BYTES`, 512 MiB, RLIMIT_AS): a power tower (`2^{2^{2^{2^{2^{2}}}}}`) raises
MemoryError or ends the helper instead of growing to gigabytes. A check stopped by either limit counts as wrong and
is logged (a warning naming the answer, the gold and the limit). That works
from any thread and any process (TRL reward calls, evaluation threads, DataLoader workers). `isolate=False` checks
in this process instead: faster for bulk offline scoring, bounded by a SIGALRM timer in the main thread (in other
threads, or when another ITIMER_REAL is running, it falls back to the helper). A check that times out counts as wrong.
Extraction is regular expressions only and runs in the caller.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

__all__ = [
    "math_equal", "answer_equal", "extract_answer", "extract_boxed", "extract_gsm8k_gold", "normalize_answer", "answer_classes",
    "quick_key", "strip_unfinished",
]

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, content) of each top-level box, left to right; content None when the box never closes."""
    out: list[tuple[int, int, str | None]] = []
    pos = 0
    while True:
        m = _BOX.search(text, pos)
        if m is None:
            return out
        i = m.end()
        if text.startswith(" ", i) and not text[i:].lstrip(" ").startswith("{"):  # `\boxed 7`
            arg = re.match(r" +([^\s$]+)", text[i:])
            if arg:
                out.append((m.start(), i + arg.end(), arg.group(1)))
                pos = i + arg.end()
                continue
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "{":
            pos = m.end()
            continue
        depth, j = 0, i
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
        if depth:  # never closed: the response ends inside this box
            out.append((m.start(), len(text), None))
            return out
        out.append((m.start(), j + 1, text[i + 1 : j]))
        pos = j + 1


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` in `text` (nested braces kept), or None.

    None too when the last box never closes: the answer it was starting is lost, an earlier box does not stand in.

    >>> extract_boxed(r"so $x = \\boxed{\\frac{1}{2}}$")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"first \\boxed{4}, finally \\boxed{5}.")
    '5'
    >>> extract_boxed(r"\\boxed 7") , extract_boxed("no box") , extract_boxed(r"\\boxed{4} then \\boxed{unclosed")
    ('7', None, None)
    """
    if not text:
        return None
    boxes = _boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None
    return boxes[-1][2].strip()


def extract_gsm8k_gold(answer: str) -> str:
    """The final number of a GSM8K worked solution: what follows `#### `, thousands commas removed.

    >>> extract_gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18.\\n#### 1,234")
    '1234'
    """
    if "####" not in answer:
        raise ValueError(f"GSM8K answer has no '#### <number>' line: {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "").rstrip(".")


# --------------------------------------------------------------------------------------------------------------
# Extraction (regular expressions only: fast, no SymPy, no time limit needed)

# What may stand between two boxes of one list answer: spaces, math delimiters, commas, "and"/"or", `x =`.
_BETWEEN_BOXES = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;]|\\[,;:! ]|~|\\q?quad|\b(?:and|or)\b|\\text\{\s*(?:and|or|,)?\s*\}"
    r"|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*"
)
_GSM8K_FINAL = re.compile(r"####\s*\$?\s*((?:-|\u2212)?\d[\d,]*(?:\.\d+)?(?:[ \t]+\d+/\d+(?![\d/]))?)")  # `2 2/3` whole
_ANSWER_PHRASE = re.compile(r"(?i:answer)\s*(?:is|:|=)\s*:?[ \t]*(?P<span>[^\n]*)")
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
_DELIMITED = re.compile(r"\$|\\\(|\\\[")


# A response cut off inside an expression (`so the total is 26 * 4 =`): its last sign, spaces and math delimiters
# aside, is an operator (not `**`, markdown bold). The unfinished expression is the run of math before it on the
# last line: numbers, operators, LaTeX commands, one-letter variables, up to a word or a sentence's end.
_DANGLING_END = re.compile(r"(?:=|\+|[-–−]|(?<!\*)\*|/|[×÷·⋅]|\^|\\(?:times|cdot|div|pm|mp))[\s$]*(?:\\[)\]][\s$]*)?$")
_MATH_RUN = re.compile(
    r"(?:[ \t\d+\-–−*/×÷·⋅^=()<>\[\]{}$|!_]|[.,](?=\S)|\\[a-zA-Z]+|\\[(){}\[\],;:! ]|(?<![a-zA-Z\\])[a-zA-Z](?![a-zA-Z]))*+$"
)


def strip_unfinished(text: str) -> str:
    """`text` without the expression it was cut off in (an answer is never read from a half-written expression).

    >>> strip_unfinished("Each box holds 4. So the total is 26 * 4 ="), strip_unfinished("The answer is **104**")
    ('Each box holds 4. So the total is', 'The answer is **104**')
    >>> strip_unfinished("The answer is 104.\\nCheck: $26 \\\\times 4 = $")
    'The answer is 104.\\nCheck:'
    """
    if not text or not _DANGLING_END.search(text[-200:]):
        return text
    body = text.rstrip()
    tail = _MATH_RUN.search(body, max(body.rfind("\n") + 1, len(body) - 400))  # on the last line
    return body[: tail.start()].rstrip() if tail else text


def _balanced(answer: str) -> bool:
    depth = 0
    for ch in answer:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def _is_bare_latex(span: str) -> bool:
    """A LaTeX expression without `$`/`\\(` delimiters and without prose: `2\\sqrt{3}`, `\\frac{\\pi}{2}`."""
    if not span or len(span) > 200 or _DELIMITED.search(span) or not _LATEX_COMMAND.search(span) \
            or not _balanced(span):
        return False
    words = re.sub(r"\\(?:text|mathrm|mbox|operatorname)\{[^{}]*\}|\\[a-zA-Z]+", " ", span)
    return re.search(r"[a-zA-Z]{2,}", words) is None  # no word outside commands ("so", "pi", "and"): not prose


def _trim_span(span: str) -> str:
    span = re.split(r"(?i)\s*I hope\b|\.\s|\.$", span.strip(), maxsplit=1)[0]
    return span.strip().rstrip(".").strip()


@functools.lru_cache(maxsize=1)
def _mv_regexes():
    from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig, get_extraction_regexes

    # math-verify's defaults (lighteval's MATH metric), boxes already handled by step 1.
    latex = LatexExtractionConfig(boxed_match_priority=-1)
    patterns = [(p, prio, cfg) for pats, cfg in get_extraction_regexes([latex, ExprExtractionConfig()])
                for p, prio in pats]
    return sorted(patterns, key=lambda x: x[1])


def _match_string(match: re.Match, config) -> str | None:
    """The answer text of one math-verify regex match (LaTeX normalised as math-verify does; a list joined)."""
    from latex2sympy2_extended.latex2sympy2 import normalize_latex
    from math_verify.parser import LatexExtractionConfig

    groups = match.groupdict()
    if isinstance(config, LatexExtractionConfig):
        parts = []
        for prefix in ["first_"] + [f"next{i}_" for i in range(1, 6)]:
            latex = next((v for k, v in groups.items() if k.startswith(prefix + "latex") and v), None)
            if latex is None:
                continue
            text = normalize_latex(latex, config.normalization_config)
            if groups.get(prefix + "percent"):
                text += "\\%"
            parts.append(text)
        return ", ".join(parts) or None
    if groups.get("expr"):
        # The expression's characters include a final stop and markdown bold (`**104**` -> `104**`).
        return groups["expr"].strip().rstrip(".").strip().strip("*").strip() or None
    integer = next((v for k, v in groups.items() if k.startswith("integer") and v), "")
    decimal = next((v for k, v in groups.items() if k.startswith("decimal") and v), "")
    number = (integer + decimal).strip()
    if not number:
        return None
    return number + ("%" if groups.get("percent") else "")


def _math_verify_extract(text: str) -> str | None:
    """math-verify's extraction (`extract_target_from_pred`): best priority first, rightmost match within it. Where
    math-verify moves on from a match that does not parse, we move on from one that cannot (unbalanced braces,
    e.g. a response cut inside `$\\frac{`) and otherwise take it: no SymPy here."""
    from itertools import groupby

    for _, group in groupby(_mv_regexes(), key=lambda x: x[1]):
        matches = [(m, config) for pattern, _, config in group for m in pattern.finditer(text)]
        matches.sort(key=lambda mc: (-mc[0].end(), mc[0].start()))
        for m, config in matches:
            answer = _match_string(m, config)
            if answer and _balanced(answer):
                return answer
    return None


@functools.lru_cache(maxsize=2048)  # a training step's responses, read by the accuracy reward, the vote and the metric
def extract_answer(text: str | None) -> str | None:
    """The answer `text` (a response, or a bare answer) states, as the string that is graded; None when none.

    >>> extract_answer(r"so $x = \\boxed{\\frac{\\sqrt{3}}{2}}$."), extract_answer(r"$\\boxed{1}$ and $\\boxed{2}$")
    ('\\\\frac{\\\\sqrt{3}}{2}', '1, 2')
    >>> extract_answer("#### 18\\nNote: it took 3 hours."), extract_answer(r"The answer is 2\\sqrt{3}.")
    ('18', '2\\\\sqrt{3}')
    >>> extract_answer(r"\\boxed{4}. Hmm, no: \\boxed{5"), extract_answer("She has 1,234 eggs."), extract_answer("no")
    (None, '1,234', None)
    """
    if not text or not text.strip():
        return None
    text = strip_unfinished(text)  # cut off mid-expression: that expression is no answer (departure, above)
    boxes = _boxes(text)
    if boxes:
        start, _, content = boxes[-1]
        if content is None:
            return None  # cut off inside the final box: the answer is lost (an abandoned earlier box is not it)
        parts = [content.strip()]
        for prev_start, prev_end, prev in reversed(boxes[:-1]):
            if prev is None or not _BETWEEN_BOXES.fullmatch(text[prev_end:start]):
                break
            parts.insert(0, prev.strip())
            start = prev_start
        parts = list(dict.fromkeys(p for p in parts if p))  # a repeated final box is one answer
        return ", ".join(parts) or None
    finals = _GSM8K_FINAL.findall(text)
    if finals:
        return finals[-1]
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        span = _trim_span(phrases[-1].group("span"))
        if _is_bare_latex(span):
            return span
    stripped = text.strip().rstrip(".").strip()
    if "\n" not in stripped and _is_bare_latex(stripped):
        return stripped
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and "=" in lines[-1] and not _DELIMITED.search(lines[-1]):
        rhs = _trim_span(lines[-1].rsplit("=", 1)[1])
        if _is_bare_latex(rhs):
            return rhs
    return _math_verify_extract(text)


# --------------------------------------------------------------------------------------------------------------
# Normalisation and the quick key (pure Python: the vote's fast path)

_THOUSANDS = re.compile(
    r"(?<![\d.,])(\d{1,3})((?:(?:\\[,;:! ]|~|\{,\}|[ \u00a0\u2009\u202f])\d{3})+)(?![\d])"
)
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
    `\\frac{a}{b}`, `\\frac ab`, `a/b`, mixed numbers (`2\\frac{2}{3}`, `2 2/3`), decimals and thousands commas exactly;
    digits split by a space (`1 2`) are never glued into one number. Equal keys mean equal answers; different keys that
    are both ("q", ...) mean different answers; anything else needs math-verify (`answer_classes`).

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


# --------------------------------------------------------------------------------------------------------------
# The checks themselves (run in the helper process, or here with isolate=False)


class _CheckTimeout(BaseException):
    """The helper's step timer. Not an Exception: math-verify's `parse` and SymPy swallow those (`except Exception`),
    which would turn a timeout into an unbounded second attempt."""


logger = logging.getLogger(__name__)
HELPER_MEMORY_BYTES = 512 << 20  # the helper's address space (RLIMIT_AS; it needs ~70 MB): towers fail, not swap
DEADLINE_GRACE_S = 0.5  # the helper's own timer fires this much before `timeout_s`; at `timeout_s` it is killed


class _DropTimeoutDisabledWarning(logging.Filter):
    """We pass math-verify's timeouts as None (we time the whole check ourselves); silence its warning about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


@functools.lru_cache(maxsize=8192)
def _parse_answer(answer: str) -> tuple:
    """math-verify's parse of one answer string, read as if it were boxed (a gold with its own box: that box)."""
    from math_verify import parse

    boxed = extract_boxed(answer)
    text = normalize_answer(boxed if boxed is not None else answer)
    parsed = parse(f"\\boxed{{{text}}}", parsing_timeout=None)  # type: ignore[arg-type]  # None: no signal use
    return tuple(parsed or parse(text, parsing_timeout=None))  # type: ignore[arg-type]


def _is_exact_number(value) -> bool:
    from sympy import Basic, Float

    return isinstance(value, Basic) and not value.free_symbols and not value.atoms(Float) and value.is_number


def _exactly_equal(a, b) -> bool:
    """Re-check of math-verify's "equal" on two exact numbers, to 15 significant digits relative (no chop)."""
    from sympy import Rational

    try:
        diff = (a - b).doit()
        if isinstance(diff, Rational):
            return diff == 0
        d, scale = abs(diff).evalf(30), max(abs(a).evalf(30), abs(b).evalf(30))
        return bool(d <= scale * Rational(1, 10**15))
    except Exception:
        return True  # cannot tell: keep math-verify's verdict


def _verify(gold: tuple, pred: tuple) -> bool:
    from math_verify import verify
    from sympy import Basic

    for g in gold:
        for p in pred:
            # allow_set_relation_comp: `3 < x \le 4` answers `(3,4]` (math-verify's own option; see the docstring)
            if not verify(g, p, allow_set_relation_comp=True, timeout_seconds=None):  # type: ignore[arg-type]
                continue
            if isinstance(g, Basic) and isinstance(p, Basic) and _is_exact_number(g) and _is_exact_number(p) \
                    and not _is_percent(g) and not _is_percent(p) and not _exactly_equal(g, p):
                continue  # 1/2006! vs 1/2004!: math-verify's evalf(chop=True) took a tiny difference for 0
            return True
    return False


def _is_percent(value) -> bool:
    """math-verify reads `28\\%` as 28 * UnevaluatedExpr(1/100) and holds it equal to 28 on purpose."""
    from sympy import UnevaluatedExpr

    return bool(value.find(UnevaluatedExpr))


def _check(pred_answer: str, gold: str) -> bool:
    gold_parsed = _parse_answer(gold.strip())
    pred_parsed = _parse_answer(pred_answer)
    return bool(gold_parsed and pred_parsed and _verify(gold_parsed, pred_parsed))


def _fingerprint(value) -> tuple[str, ...]:
    """A numeric constant to 25 significant digits (evaluated at 35): equal values, however written, agree."""
    import mpmath
    from sympy import Float

    return tuple(mpmath.nstr(mpmath.mpf(Float(part, 35)._mpf_), 25) for part in value.evalf(35).as_real_imag())


def _value_key(answer: str, parsed: tuple) -> tuple | None:
    """(kind, exact key, numeric fingerprint) of one answer, for grouping without pairwise checks:
    "q" an exact rational (`quick_key`'s when it has one), "n" another numeric constant (`\\sqrt{8}`, `\\pi/4`),
    "e" anything else (symbols, sets, tuples, relations: SymPy's `srepr`). None when it did not parse."""
    from sympy import Basic, Eq, Rational, Symbol, srepr

    quick = quick_key(answer)
    if quick is not None and quick[0] == "q":
        return ("q", quick[1], _fingerprint(Rational(quick[1])))
    if not parsed or not isinstance(parsed[0], Basic):
        return None
    v = parsed[0]
    if isinstance(v, Eq) and isinstance(v.lhs, Symbol):
        v = v.rhs  # `x = 3` is the answer 3 (math-verify holds them equal)
    v = v.doit()
    if isinstance(v, Rational):
        return ("q", str(v), _fingerprint(v))
    if getattr(v, "is_number", False):
        try:
            return ("n", srepr(v), _fingerprint(v))
        except Exception:
            pass
    return ("e", srepr(v), None)


@functools.lru_cache(maxsize=8192)
def _answer_key(answer: str) -> tuple | None:
    quick = quick_key(answer)
    return _value_key(answer, () if quick is not None and quick[0] == "q" else _parse_answer(answer))


@functools.lru_cache(maxsize=8192)
def _pair_equal(first: str, other: str) -> bool:
    """math-verify equality of two answers, the group's first answer as the gold (the vote's label)."""
    return _verify(_parse_answer(first), _parse_answer(other))


def _classes_of(answers: list[str], bounded) -> list[int]:
    """For each answer, the index of the first answer it is equal to (itself when none): earliest-first classes.

    Numbers never need `verify`: two exact rationals are equal when their keys are, a rational and another
    constant (`2` and `\\sqrt{4}`, `2\\sqrt{2}` and `\\sqrt{8}`) when their values agree to 25 significant digits.
    Only non-numeric answers (expressions in x, sets, tuples, equations) are compared pairwise with math-verify,
    each against the first answer of each group so far."""
    keys = [bounded(_answer_key, a, default=None) for a in answers]  # parses only what is not a plain number
    reps: list[int] = []
    out = []
    for i in range(len(answers)):
        match = i
        for r in reps:
            ki, kr = keys[i], keys[r]
            if ki is None or kr is None:
                continue  # did not parse (or timed out): equal only to the same string, grouped before
            if ki[:2] == kr[:2]:
                match = r
                break
            if ki[0] in "qn" or kr[0] in "qn":
                if ki[0] in "qn" and kr[0] in "qn" and "n" in (ki[0], kr[0]) and ki[2] == kr[2]:
                    match = r
                    break
                continue  # two different numbers, or a number and a non-number
            if bounded(_pair_equal, answers[r], answers[i], default=False):
                match = r
                break
        if match == i:
            reps.append(i)
        out.append(match)
    return out


def _alarm_usable() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # don't clobber someone else's timer
    )


def _with_alarm(timeout_s: float, tick=None):
    """`bounded(fn, *args, default=...)`: fn(*args) under an ITIMER_REAL timer (main thread); default on timeout
    or error (unparsable or incomparable answers are simply not equal). `bounded.limit` records the last limit hit
    ("time" or "memory"); `tick()`, if given, runs after each step (the helper's heartbeat to its caller)."""

    def bounded(fn, *args, default):
        def on_alarm(signum, frame):
            raise _CheckTimeout

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return fn(*args)
        except _CheckTimeout:
            bounded.limit = "time"
            return default
        except MemoryError:  # the helper's address-space limit
            bounded.limit = "memory"
            return default
        except Exception:
            return default
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if tick is not None:
                tick()

    bounded.limit = None
    return bounded


def _run_request(req: dict, tick=None):
    """One request: a check gives True, False or the limit it hit ("time" / "memory"); classes give lists."""
    bounded = _with_alarm(req["timeout"], tick)
    if req.get("op") == "classes":
        return [_classes_of(group, bounded) for group in req["groups"]]
    verdict = bounded(_check, req["pred"], req["gold"], default=False)
    return bounded.limit or verdict


# --------------------------------------------------------------------------------------------------------------
# The helper process


def _serve() -> None:
    """Helper process main loop: one JSON request per stdin line; a `tick` line after each bounded step, then one
    JSON reply line."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints from SymPy must not corrupt the protocol

    def tick() -> None:
        reply.write("tick\n")
        reply.flush()

    try:
        import resource

        cap = HELPER_MEMORY_BYTES  # a runaway integer raises MemoryError (or GMP aborts the helper), never eats RAM
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass
    import math_verify  # noqa: F401  (warm up before saying ready)

    reply.write("ready\n")
    reply.flush()
    for line in sys.stdin:
        reply.write(json.dumps(_run_request(json.loads(line), tick)) + "\n")
        reply.flush()


class _Helper:
    STARTUP_S = 120.0  # importing SymPy on a loaded machine

    def __init__(self):
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # so the helper imports this very copy of intuitor
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")  # one check at a time: no thread pools (and their address space)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from intuitor.tasks.mathverify import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buf = b""
        if self._readline(self.STARTUP_S) != "ready":
            self.kill()
            raise RuntimeError(
                f"the math-verify helper process did not start; check that `{sys.executable} -c "
                f"'import math_verify, intuitor'` works"
            )

    def _readline(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # helper died
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def request(self, req: dict, step_s: float):
        """The helper's reply, or None when one step ran past `step_s` without a tick, or the helper died (then it
        must be replaced)."""
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        while True:
            line = self._readline(step_s)
            if line != "tick":
                return None if line is None else json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def _in_helper(req: dict):
    """Run one request in the helper; None when a step overran its limit (C-level work the helper's own timer
    could not stop) or the helper died (its memory limit): the helper is then killed, and a new one starts on the
    next request (its start-up is not charged to that request's limit)."""
    global _helper
    with _helper_lock:  # one request at a time; the protocol is strictly request -> reply
        if _helper is None or _helper.owner != os.getpid():  # a forked child must not share its parent's pipes
            _helper = _Helper()
        limit = req["timeout"]  # the helper's own timer fires a little earlier, so that its reply is in time
        result = _helper.request({**req, "timeout": max(limit - DEADLINE_GRACE_S, limit / 2)}, limit)
        if result is None:
            _helper.kill()
            _helper = None
        return result


@atexit.register
def _stop_helper() -> None:
    if _helper is not None and _helper.owner == os.getpid():
        _helper.kill()


def _answers_equal(pred_answer: str, gold: str, timeout_s: float, isolate: bool) -> bool:
    req = {"pred": pred_answer, "gold": gold, "timeout": timeout_s}
    verdict = _run_request(req) if not isolate and _alarm_usable() else _in_helper(req)
    if isinstance(verdict, bool):
        return verdict
    why = {"time": f"ran past its {timeout_s:g} s limit", "memory": "ran out of its memory limit"}.get(
        verdict, f"ran past its {timeout_s:g} s limit or its memory limit (helper killed and restarted)")
    logger.warning("math check of answer %.80r against gold %.80r %s: counted as wrong", pred_answer, gold, why)
    return False


def answer_equal(answer: str | None, gold: str, timeout_s: float = 5.0, isolate: bool = True) -> bool:
    """Whether an answer already extracted (`extract_answer`) states the same value as `gold` (math-verify, after
    `normalize_answer`; exact values exactly). A check that takes longer than `timeout_s` seconds counts as False.

    >>> answer_equal(r"1\\,234", "1234"), answer_equal(r"\\dfrac12", "0.5"), answer_equal("3", "4")
    (True, True, False)
    """
    if answer is None or not str(answer).strip() or gold is None or not str(gold).strip():
        return False
    answer, gold = str(answer), str(gold)
    qp, qg = quick_key(answer), quick_key(extract_boxed(gold) or gold)
    if qp is not None and qp == qg and "=" not in answer + gold:  # `y=3` vs `x=3`: math-verify's call
        return True  # plainly the same (18 / \\$18 / 18.0): no SymPy needed
    return _answers_equal(answer, gold, timeout_s, isolate)


def math_equal(response_or_answer: str, gold: str, timeout_s: float = 5.0, isolate: bool = True) -> bool:
    """Whether `response_or_answer` (a full response or a bare answer) states the same value as `gold`:
    `answer_equal(extract_answer(response_or_answer), gold)`. `isolate=False`: check in this process (see above).

    >>> math_equal(r"... so the answer is $\\boxed{\\frac{1}{2}}$.", "0.5")
    True
    >>> math_equal(r"\\boxed{2}", "2.0"), math_equal("1,234", "1234"), math_equal(r"\\boxed{3}", "4")
    (True, True, False)
    """
    if not response_or_answer:
        return False
    return answer_equal(extract_answer(str(response_or_answer)), gold, timeout_s, isolate)


def answer_classes(
    answers: list, group_size: int | None = None, timeout_s: float = 5.0, isolate: bool = True
) -> list[int | None]:
    """Group equal answers: for each answer, the index of the first answer of its group in `answers` (None for no
    answer). Groups never span two consecutive blocks of `group_size` answers (one prompt's samples).

    Equal means math-verify equal (`\\frac12` = `0.5` = `\\dfrac{1}{2}`, `x=3` = `3`, `\\$18` = `18`): plain numbers
    are grouped by `quick_key` in this process; other answers by their parsed value, then by pairwise `verify`
    against each group's first answer (earliest first, so the result is deterministic), in the helper process under
    the time limit. If the helper overruns, the quick keys alone decide for that call. Numbers are grouped by value
    (exact for rationals, 25 significant digits otherwise) without `verify`: so a decimal only joins a group of the
    same value (`1.414214` is not `\\sqrt{2}` here, while `math_equal` grades it right with math-verify's rounding).

    >>> answer_classes(["18", r"\\$18", None, "17", r"18\\text{ dollars}", "17.0"], group_size=3)
    [0, 0, None, 3, 4, 3]
    """
    n = len(answers)
    size = group_size or n or 1
    out: list[int | None] = [None] * n
    pending = []  # per block: indices of its first-of-a-quick-key answers, when some need math-verify
    for start in range(0, n, size):
        seen: dict = {}
        needs_sympy = False
        for i in range(start, min(start + size, n)):
            key = quick_key(answers[i]) if answers[i] is not None else None
            if key is None:
                continue
            out[i] = seen.setdefault(key, i)
            needs_sympy |= key[0] == "s"
        reps = sorted(set(seen.values()))
        if needs_sympy and len(reps) > 1:
            pending.append(reps)
    if not pending:
        return out
    req = {"op": "classes", "groups": [[str(answers[i]) for i in reps] for reps in pending], "timeout": timeout_s}
    merged = _run_request(req) if not isolate and _alarm_usable() else _in_helper(req)
    if merged is None:
        logger.warning("grouping answers %.200r: a step ran past its %g s limit or the memory limit (helper killed "
                       "and restarted): plain-number keys alone group this call", req["groups"], timeout_s)
        return out
    remap = {}
    for reps, classes in zip(pending, merged):
        for rep, cls in zip(reps, classes):
            remap[rep] = reps[cls]
    return [None if c is None else remap.get(c, c) for c in out]
