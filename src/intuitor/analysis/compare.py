"""Comparing evaluations of several models: accuracy with a 95% interval, and paired tests against a base.

- `wilson_interval(k, n)`: the Wilson score interval of a proportion (scipy's `binomtest(...).proportion_ci`,
  method "wilson"): unlike the normal approximation it stays inside [0, 1] and is sound at 0 or n successes.
  With K samples per item the n responses are not independent, so the interval is then too narrow; the report says so.
- `mcnemar_exact(b, c)`: the exact McNemar test of two models scored on the same items (one response each): of the
  b + c discordant items, b right only for the base and c right only for the other, under H0 b ~ Binomial(b + c,
  1/2); two-sided p from scipy's `binomtest` (as statsmodels' `mcnemar(exact=True)` computes it).
- `task_accuracy(rows)` / `paired(base_rows, rows)`: those numbers from samples.jsonl rows, per task.
"""

from __future__ import annotations

import math
from collections import defaultdict


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) Wilson score interval of k successes in n; (nan, nan) when n = 0.

    >>> [round(v, 4) for v in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n <= 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest  # lazy: scipy is slow to import

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p of b vs c discordant pairs (1.0 when there are none).

    >>> round(mcnemar_exact(0, 6), 5), mcnemar_exact(0, 0)
    (0.03125, 1.0)
    """
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(int(b), int(b + c), 0.5).pvalue)


def _scored_by_task(rows: list[dict]) -> dict[str, dict[tuple[str, int], bool]]:
    """{task: {(id, sample): correct}} of the rows whose `correct` is a bool."""
    out: dict[str, dict] = defaultdict(dict)
    for r in rows:
        if isinstance(r.get("correct"), bool):
            out[str(r.get("task", ""))][(str(r.get("id")), int(r.get("sample", 0) or 0))] = r["correct"]
    return dict(out)


def task_accuracy(rows: list[dict]) -> dict[str, dict]:
    """{task: {accuracy, k (right), n, low, high, samples_per_item}} over scored responses."""
    out = {}
    for task, flags in _scored_by_task(rows).items():
        n, k = len(flags), sum(flags.values())
        low, high = wilson_interval(k, n)
        per_item = max(s for _, s in flags) + 1
        out[task] = {"accuracy": k / n, "k": k, "n": n, "low": low, "high": high, "samples_per_item": per_item}
    return out


def paired(base_rows: list[dict], rows: list[dict]) -> dict[str, dict]:
    """{task: {n, b, c, p, delta}} over the items both scored with one response each (sample 0 only: with K > 1
    samples the pairs are not matched draws, so no test). b: right for the base only; c: right for the other only;
    delta: the other's accuracy minus the base's on those items."""
    base, other = _scored_by_task(base_rows), _scored_by_task(rows)
    out = {}
    for task in sorted(set(base) & set(other)):
        if any(s for _, s in base[task]) or any(s for _, s in other[task]):
            continue  # K > 1
        common = sorted(set(base[task]) & set(other[task]))
        if not common:
            continue
        b = sum(base[task][i] and not other[task][i] for i in common)
        c = sum(other[task][i] and not base[task][i] for i in common)
        out[task] = {"n": len(common), "b": b, "c": c, "p": mcnemar_exact(b, c), "delta": (c - b) / len(common)}
    return out
