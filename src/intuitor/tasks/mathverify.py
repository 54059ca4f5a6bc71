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

The code, one concern per file of `intuitor.tasks.math`: `extract` (steps 1-4 above), `normalize` (`normalize_answer`,
`quick_key`), `equivalence` (math-verify's parse and verify, the exactness re-check, grouping) and `limits` (the
helper process, its timers and memory cap). This module is their public face: `answer_equal`, `math_equal` and
`answer_classes` choose where a check runs, and every public name is importable from here.
"""

from __future__ import annotations

import logging

from intuitor.tasks.math import limits
from intuitor.tasks.math.extract import extract_answer, extract_boxed, extract_gsm8k_gold, strip_unfinished
from intuitor.tasks.math.limits import DEADLINE_GRACE_S, HELPER_MEMORY_BYTES, _alarm_usable, _in_helper, _run_request
from intuitor.tasks.math.normalize import normalize_answer, quick_key


__all__ = [
    "math_equal",
    "answer_equal",
    "extract_answer",
    "extract_boxed",
    "extract_gsm8k_gold",
    "normalize_answer",
    "answer_classes",
    "quick_key",
    "strip_unfinished",
    "DEADLINE_GRACE_S",
    "HELPER_MEMORY_BYTES",
]

logger = logging.getLogger(__name__)


def __getattr__(name: str):
    """`_helper`, the live helper process (or None), is rebound inside `limits`: read it there, not a stale copy."""
    if name == "_helper":
        return limits._helper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _answers_equal(pred_answer: str, gold: str, timeout_s: float, isolate: bool) -> bool:
    req = {"pred": pred_answer, "gold": gold, "timeout": timeout_s}
    verdict = _run_request(req) if not isolate and _alarm_usable() else _in_helper(req)
    if isinstance(verdict, bool):
        return verdict
    why = {"time": f"ran past its {timeout_s:g} s limit", "memory": "ran out of its memory limit"}.get(
        verdict, f"ran past its {timeout_s:g} s limit or its memory limit (helper killed and restarted)"
    )
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
        logger.warning(
            "grouping answers %.200r: a step ran past its %g s limit or the memory limit (helper killed "
            "and restarted): plain-number keys alone group this call",
            req["groups"],
            timeout_s,
        )
        return out
    remap = {}
    for reps, classes in zip(pending, merged, strict=True):
        for rep, cls in zip(reps, classes, strict=True):
            remap[rep] = reps[cls]
    return [None if c is None else remap.get(c, c) for c in out]
