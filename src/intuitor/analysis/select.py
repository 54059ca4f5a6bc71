"""Best-of-N selection: choose one answer per item from its K samples, by self-certainty or by voting.

Self-certainty as a selection score (Kang et al. 2025, "Scalable Best-of-N Selection for LLMs via
Self-Certainty") is what INTUITOR turns into a reward; this module checks how well it picks answers.

An *item* is one (task, id) pair of a `samples.jsonl`; its samples are its rows, ordered by their `sample` index.
Samples are grouped by *answer*: the extracted `answer` fields that the task's own comparison holds equal, exactly as
the plurality-vote reward groups them (`intuitor.tasks.answers.answer_grouper`: math tasks, and task names this
version does not know, by math-verify equivalence, so `\\frac12` and `0.5` are one answer; other tasks by their
answer strings). A group is named by its first sample's answer. A sample whose answer is null (nothing extracted)
agrees with no other sample: it forms a group of its own.

Methods:
- `self_certainty`: the answer of the sample with the highest self-certainty.
- `borda`: samples are ranked by self-certainty, descending (rank 1 = most certain); the sample ranked r of N
  gives (N - r + 1)^p votes to its answer, and the answer with the most votes wins. p = 0 is majority vote;
  large p approaches `self_certainty`.
- `majority`: the answer given by the most samples.

Ties, deterministic and the same for every method (so Borda with p = 0 is exactly `majority`):
- equal self-certainties are ranked by `sample` index, lower first (ordinal ranks, no averaging);
  a missing or NaN self-certainty ranks below every number;
- equal vote totals go to the answer whose first sample (lowest `sample` index) comes first.

Correctness of a selected answer: the answer is correct when *any* sample of the item with that same answer is
`correct` (for a null answer: that one sample's `correct`). Samples with the same extracted answer are normally all
correct or all incorrect; "any" makes the rule total when a scorer sees more than the extracted string.

Baselines: pass@1 is the mean over items of the fraction of correct samples; oracle pass@K is the fraction of
items with at least one correct sample. Accuracies are over items; `by_task` splits them per task.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass


METHODS = ("self_certainty", "borda", "majority")


@dataclass
class Selection:
    """The answer chosen for one item and whether it is correct."""

    task: str
    id: str
    answer: str | None
    correct: bool
    n_samples: int


def group_items(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """{(task, id): rows ordered by `sample`} in order of first appearance."""
    items: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for i, row in enumerate(rows):
        if "id" not in row:
            raise ValueError(f"row {i} has no `id`: samples of one item are grouped by (task, id)")
        items[(str(row.get("task", "")), str(row["id"]))].append(row)
    return {k: sorted(v, key=lambda r: _sample_index(r)) for k, v in items.items()}


def _sample_index(row: dict) -> int:
    s = row.get("sample", 0)
    return int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else 0


def _answer_keys(samples: list[dict], classes=None) -> list[tuple]:
    """The group key of each sample: ("answer", the answer of the group's first sample), or ("none", own index)."""
    answers = [None if r.get("answer") is None else str(r["answer"]).strip() for r in samples]
    if classes is None:
        from intuitor.tasks.answers import answer_grouper

        classes = answer_grouper(str(samples[0].get("task", "")) or None)
    ids = classes(answers, None)
    return [("none", i) if c is None else ("answer", answers[c]) for i, c in enumerate(ids)]


def _certainty(row: dict) -> float:
    v = row.get("self_certainty")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return -math.inf


def select_item(samples: list[dict], method: str, power: float = 1.0, classes=None) -> tuple[tuple, bool]:
    """(answer key, correct) chosen among one item's samples (ordered by `sample`) by `method`.

    `classes(answers, group_size)` groups equal answers (default: the item's task's grouping, see above).

    >>> s = [{"answer": "1", "self_certainty": 0.2, "correct": True},
    ...      {"answer": "2", "self_certainty": 0.9, "correct": False},
    ...      {"answer": "1", "self_certainty": 0.3, "correct": True}]
    >>> select_item(s, "majority")[1], select_item(s, "self_certainty")[1]
    (True, False)
    """
    if method not in METHODS:
        raise ValueError(f"Unknown selection method '{method}'; choose one of: {', '.join(METHODS)}")
    if not samples:
        raise ValueError("an item needs at least one sample")
    keys = _answer_keys(samples, classes)
    n = len(samples)
    # Rank by self-certainty descending; ties by position (samples are ordered by `sample` index).
    order = sorted(range(n), key=lambda i: (-_certainty(samples[i]), i))
    if method == "self_certainty":
        chosen = keys[order[0]]
    else:
        p = 0.0 if method == "majority" else float(power)
        votes: dict[tuple, float] = defaultdict(float)
        for rank, i in enumerate(order, 1):
            votes[keys[i]] += float(n - rank + 1) ** p
        first = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        chosen = max(votes, key=lambda k: (votes[k], -first[k]))
    correct = any(bool(r.get("correct")) for r, k in zip(samples, keys) if k == chosen)
    return chosen, correct


def select_answers(rows: list[dict], method: str, power: float = 1.0) -> list[Selection]:
    """One `Selection` per item (task, id) of `rows`, in order of first appearance."""
    out = []
    for (task, item_id), samples in group_items(rows).items():
        key, correct = select_item(samples, method, power)
        answer = key[1] if key[0] == "answer" else None
        out.append(Selection(task, item_id, answer, correct, len(samples)))
    return out


def _acc(flags: list[float]) -> dict:
    return {"accuracy": sum(flags) / len(flags) if flags else float("nan"), "n_items": len(flags)}


def _summary(per_item: list[tuple[str, float]]) -> dict:
    out = _acc([v for _, v in per_item])
    tasks = sorted({t for t, _ in per_item})
    out["by_task"] = {t: _acc([v for tt, v in per_item if tt == t]) for t in tasks}
    return out


def selection_accuracy(rows: list[dict], methods: tuple[str, ...] | list[str] = METHODS, power: float = 1.0) -> dict:
    """{method: {accuracy, n_items, by_task}} for each method, plus the baselines `pass@1` and `pass@k`.

    The extra key `k` gives {min, max} samples per item.
    """
    items = group_items(rows)
    if not items:
        raise ValueError("no samples to select from")
    out = {}
    for method in methods:
        out[method] = _summary([(s.task, float(s.correct)) for s in select_answers(rows, method, power)])
        if method == "borda":
            out[method]["power"] = power
    pass1, passk = [], []
    for (task, _), samples in items.items():
        flags = [bool(r.get("correct")) for r in samples]
        pass1.append((task, sum(flags) / len(flags)))
        passk.append((task, float(any(flags))))
    out["pass@1"] = _summary(pass1)
    out["pass@k"] = _summary(passk)
    sizes = [len(s) for s in items.values()]
    out["k"] = {"min": min(sizes), "max": max(sizes)}
    return out
