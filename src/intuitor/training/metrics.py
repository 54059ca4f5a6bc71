"""Label-free rollout metrics logged every step: repetition and group agreement (and, with gold answers, alignment).

Both feed the collapse guard: the paper's exploited offline annotator showed repetition and length blow-ups, and in
our prototype self-certainty-only runs decayed while the answers of a group stopped agreeing. Which answers agree is
`intuitor.tasks.answers`' call (the task's own equality), the same as the vote reward's and `select`'s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

# What an answer is and when two are equal live with the tasks; re-exported here, where they used to be.
from intuitor.tasks.answers import (  # noqa: F401
    answer_extractor,
    answer_grouper,
    canonical_answer,
    generic_extract,
    string_classes,
)


def repetition_rate(ids: list[int], n: int = 4) -> float:
    """Share of a sequence's n-grams that repeat an earlier one (0 = none repeated).

    >>> repetition_rate([1, 2, 3, 1, 2, 3, 1, 2, 3], n=3)
    0.5714285714285714
    >>> repetition_rate([1, 2, 3], n=4)
    0.0
    """
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def repetition_rates(batch: list[list[int]], n: int = 4) -> list[float]:
    return [repetition_rate(list(ids), n) for ids in batch]


def group_agreement(answers: list, group_size: int, classes: Callable | None = None) -> float:
    """Mean over groups of the share of samples whose answer equals the group's plurality answer.

    Equal means grouped together by `classes(answers, group_size)` (`intuitor.tasks.answers.answer_grouper(task)`;
    default: the math grouping of `intuitor.tasks.mathverify.answer_classes`, where `\\frac12` = `0.5`). No answer
    (None) never counts as agreeing.
    >>> group_agreement(["1", "1", "2", None, "3", "3.0", "\\\\dfrac{6}{2}", "3"], 4)
    0.75
    """
    if not answers or group_size < 1 or len(answers) % group_size:
        return float("nan")
    ids = (classes or answer_grouper(None))(list(answers), group_size)
    shares = []
    for start in range(0, len(ids), group_size):
        counts = Counter(c for c in ids[start : start + group_size] if c is not None)
        shares.append(counts.most_common(1)[0][1] / group_size if counts else 0.0)
    return sum(shares) / len(shares)


def vote_calibration(scores: list[float], answers: list, group_size: int, classes: Callable | None = None) -> float:
    """Does self-certainty still rank a group's plurality answers above its dissenters? Mean within-group AUROC.

    For each group with a plurality answer and at least one dissenter (no answer counts as dissent), the share of
    (agreeing, dissenting) pairs whose agreeing sample has the higher score (ties count 1/2); averaged over those
    groups. 0.5 = self-certainty says nothing about the vote; NaN when no group has both kinds (label-free: the
    vote stands in for the gold answer, as in GRPO-PV). Answers agree as the vote groups them (`classes`, as in
    `group_agreement`; ties to the earliest answer).
    >>> vote_calibration([3.0, 2.0, 1.0, 2.0, 5.0, 5.0, 5.0, 5.0], ["7", "7", "8", None, "1", "1", "1", "1"], 4)
    0.875
    """
    if not answers or group_size < 1 or len(answers) % group_size or len(scores) != len(answers):
        return float("nan")
    ids = (classes or answer_grouper(None))(list(answers), group_size)
    aurocs = []
    for start in range(0, len(answers), group_size):
        group, sc = ids[start : start + group_size], scores[start : start + group_size]
        counts = Counter(c for c in group if c is not None)
        if not counts:
            continue
        top = counts.most_common(1)[0][0]  # first seen among the most common: the earliest answer's class
        agree = [s for c, s in zip(group, sc) if c == top]
        dissent = [s for c, s in zip(group, sc) if c != top]
        if not dissent:
            continue
        wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in agree for y in dissent)
        aurocs.append(wins / (len(agree) * len(dissent)))
    return sum(aurocs) / len(aurocs) if aurocs else float("nan")


def alignment(scores: list[float], correct: list[float], group_size: int) -> dict[str, float]:
    """How well a reward ranks right above wrong answers within each group (label-aware: gold answers judge it).

    `auroc`: per group holding both right and wrong samples, the share of (right, wrong) pairs whose right sample
    scores higher (ties count 1/2), averaged over those groups; 0.5 = the reward says nothing about correctness.
    `top1`: the share of groups whose top-scored sample is right (a tie at the top counts the tied samples' mean
    correctness, the expected value of breaking it at random), over every group with a scored sample. Samples whose
    score or correctness is NaN (the reward or the gold gave none) are left out. NaN where no group qualifies.

    >>> a = alignment([3.0, 2.0, 1.0, 2.0, 5.0, 5.0, 1.0, 0.0], [1, 0, 0, 1, 1, 0, 0, 0], 4)
    >>> a["auroc"] == (3.5 / 4 + 2.5 / 3) / 2, a["top1"] == (1.0 + 0.5) / 2
    (True, True)
    """
    nan = float("nan")
    if group_size < 1 or len(scores) != len(correct) or len(scores) % group_size:
        return {"auroc": nan, "top1": nan}
    aurocs, tops = [], []
    for start in range(0, len(scores), group_size):
        pairs = [
            (s, c)
            for s, c in zip(scores[start : start + group_size], correct[start : start + group_size])
            if not (math.isnan(s) or math.isnan(c))
        ]
        if not pairs:
            continue
        best = max(s for s, _ in pairs)
        top = [c > 0.5 for s, c in pairs if s == best]
        tops.append(sum(top) / len(top))
        right = [s for s, c in pairs if c > 0.5]
        wrong = [s for s, c in pairs if c <= 0.5]
        if right and wrong:
            wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in right for y in wrong)
            aurocs.append(wins / (len(right) * len(wrong)))
    return {"auroc": sum(aurocs) / len(aurocs) if aurocs else nan, "top1": sum(tops) / len(tops) if tops else nan}
