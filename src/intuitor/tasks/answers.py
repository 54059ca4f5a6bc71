"""What an answer is and when two answers are the same: the one place tasks, votes, metrics and `select` ask.

An answer is what a task's extractor reads from a response (`answer_extractor`: the task's own `extract`, or with no
task the math tasks' `extract_answer`). Two answers are equal as the task groups them (`answer_grouper`): a task with
its own `answer_classes` uses it (the math tasks: math-verify equivalence, `intuitor.tasks.mathverify`; arithmetic:
equal numbers), other tasks compare `canonical_answer` strings, and no task gets the math grouping. A grouping
`classes(answers, group_size)` gives each answer the index of the first equal answer in its block of `group_size`
(one prompt's samples), None for no answer: the plurality vote, the cluster-frequency reward, the agreement metrics
and best-of-N selection all read it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from intuitor.tasks.base import get_task
from intuitor.tasks.mathverify import answer_classes as math_classes
from intuitor.tasks.mathverify import extract_answer


def generic_extract(text: str) -> str | None:
    """The answer a response states when no task is given: `intuitor.tasks.mathverify.extract_answer` (the last
    `\\boxed{}` with nested braces, else `#### N`, else the final stated answer), the math tasks' own extractor.

    >>> generic_extract("so x = \\\\boxed{\\\\frac{\\\\sqrt{3}}{2}}"), generic_extract("1,200 apples")
    ('\\\\frac{\\\\sqrt{3}}{2}', '1,200')
    >>> generic_extract("no") is None
    True
    """
    return extract_answer(text)


def answer_extractor(task_name: str | None, dataset=None) -> Callable[[str], str | None]:
    """The extractor of `task_name` (a registered task), else the generic math one (`generic_extract`)."""
    if task_name:
        return get_task(task_name).extract
    return generic_extract


def canonical_answer(answer: str | None) -> str | None:
    """A light canonical form for comparing answers as strings (tasks without their own grouping); None stays None.

    >>> canonical_answer(" $1,200.50$ "), canonical_answer("2.0"), canonical_answer("x = 3."), canonical_answer("")
    ('1200.5', '2', 'x=3', None)
    """
    if answer is None:
        return None
    a = re.sub(r"\s+", "", str(answer)).strip("$").rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", a):
        a = a.replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", a) and "." in a:
        a = a.rstrip("0").rstrip(".")
    if a in ("-0",):
        a = "0"
    return a or None


def classes_by_key(answers: list, group_size: int | None, key: Callable) -> list[int | None]:
    """Groups of answers with equal `key(answer)` within each block of `group_size` (all answers when None): for
    each answer, the index of its group's first answer; None where the key is None (no answer, or not one).

    >>> classes_by_key(["1", "01", "2", "1", "x", "1"], 3, lambda a: int(a) if a.isdigit() else None)
    [0, 0, 2, 3, None, 3]
    """
    size = group_size or len(answers) or 1
    out: list[int | None] = []
    for start in range(0, len(answers), size):
        first: dict = {}
        for i in range(start, min(start + size, len(answers))):
            k = key(answers[i])
            out.append(None if k is None else first.setdefault(k, i))
    return out


def string_classes(answers: list, group_size: int | None = None) -> list[int | None]:
    """Groups of answers equal as `canonical_answer` strings: for each, the index of its group's first answer.

    >>> string_classes(["A", "B", " A", None, "B"], group_size=None)
    [0, 1, 0, None, 1]
    """
    return classes_by_key(answers, group_size, canonical_answer)


@functools.lru_cache(maxsize=64)
def answer_grouper(task_name: str | None) -> Callable[..., list[int | None]]:
    """How the answers of `task_name` are grouped for votes and agreement: `classes(answers, group_size)`.

    A task with its own `answer_classes` (the math tasks: math-verify equivalence) uses it; other registered tasks
    (letters, code, the demo's digits) compare `canonical_answer` strings; no task (or an unregistered name, e.g.
    a samples file from elsewhere) gets the math grouping, as it gets the math extractor.
    """
    if task_name:
        try:
            task = get_task(task_name)
        except KeyError:
            task = None
        if task is not None:
            return getattr(task, "answer_classes", None) or string_classes
    return math_classes
