"""Whether two math answers are equal: math-verify's `parse` and `verify`, after `normalize_answer`, with the
departures listed in `intuitor.tasks.mathverify` (exact values exactly, inequalities as intervals, percentages).

These are the checks themselves; they run under a time limit (`intuitor.tasks.math.limits`: the helper process, or
this process with `isolate=False`), so none of them bounds its own time: math-verify's timeouts are passed as None.
`_classes_of` groups a list of answers, numbers by value without `verify`, the rest pairwise.
"""

from __future__ import annotations

import functools
import logging

from intuitor.tasks.math.extract import extract_boxed
from intuitor.tasks.math.normalize import normalize_answer, quick_key


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
            if (
                isinstance(g, Basic)
                and isinstance(p, Basic)
                and _is_exact_number(g)
                and _is_exact_number(p)
                and not _is_percent(g)
                and not _is_percent(p)
                and not _exactly_equal(g, p)
            ):
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
