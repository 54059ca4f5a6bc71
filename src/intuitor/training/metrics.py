"""Label-free rollout metrics logged every step: repetition and group agreement.

Both feed the collapse guard: the paper's exploited offline annotator showed repetition and length blow-ups, and in
our prototype self-certainty-only runs decayed while the answers of a group stopped agreeing.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable


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


def group_agreement(answers: list, group_size: int) -> float:
    """Mean over groups of the share of samples whose answer equals the group's plurality answer.

    No answer (None) never counts as agreeing.
    >>> group_agreement(["1", "1", "2", None, "3", "3", "3", "3"], 4)
    0.75
    """
    if not answers or group_size < 1 or len(answers) % group_size:
        return float("nan")
    shares = []
    for start in range(0, len(answers), group_size):
        group = answers[start : start + group_size]
        counts = Counter(a for a in group if a is not None)
        shares.append(counts.most_common(1)[0][1] / group_size if counts else 0.0)
    return sum(shares) / len(shares)


_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def generic_extract(text: str) -> str | None:
    """Last \\boxed{...} content, else the last number; None when neither exists.

    >>> generic_extract("so x = \\\\boxed{\\\\frac{1}{2}}"), generic_extract("about 1,200 apples"), generic_extract("no")
    ('\\\\frac{1}{2}', '1200', None)
    """
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def answer_extractor(task_name: str | None, dataset=None) -> Callable[[str], str | None]:
    """The extractor of `task_name` (a registered task), else the generic boxed/last-number one."""
    if task_name:
        from intuitor.tasks import get_task

        return get_task(task_name).extract
    return generic_extract
