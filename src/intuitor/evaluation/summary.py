"""Metrics of an evaluation from its sample rows: per-task score, pass@k and mean self-certainty, and the table.

`summarise(rows)` is what results.json holds under "tasks" (see `intuitor.evaluation.harness`): `score` is the
mean correctness over all responses (accuracy for K=1, the unbiased pass@1 for K>1); `pass@k` (Chen et al. 2021)
for k = 1, 2, 4, ... and K when K > 1; a task may add or override entries with an `aggregate(rows) -> dict` method.
`results_table` prints them in the paper's Table 1 layout.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any


# The paper's Table 1 columns, in its order; other tasks follow these in the printed table.
PAPER_COLUMNS = {
    "gsm8k": "GSM8K",
    "math500": "MATH500",
    "livecodebench": "LCB",
    "cruxeval": "CRUXEval",
    "mmlu_pro": "MMLU-Pro",
    "alpaca_eval": "AlpacaEval",
}


# ----------------------------------------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with n samples of which c are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), the chance that k of the n samples drawn without replacement hold a correct one.

    >>> pass_at_k(5, 2, 1), pass_at_k(5, 2, 2), pass_at_k(4, 0, 3), pass_at_k(4, 2, 3)
    (0.4, 0.7, 0.0, 1.0)
    """
    if not 0 <= c <= n:
        raise ValueError(f"c={c} correct out of n={n} samples: need 0 <= c <= n")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n={n} samples per problem")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_values(max_k: int) -> list[int]:
    """The k reported for K samples: powers of two up to K, and K itself.

    >>> pass_at_k_values(1), pass_at_k_values(8), pass_at_k_values(6)
    ([1], [1, 2, 4, 8], [1, 2, 4, 6])
    """
    ks = [1 << i for i in range(max_k.bit_length()) if 1 << i <= max_k]
    return ks + ([max_k] if ks[-1] != max_k else [])


def summarise_task(rows: Sequence[dict], task=None) -> dict[str, Any]:
    """Metrics of one task from its sample rows (see the module docstring); `task.aggregate(rows)`, when the task
    defines it, adds or overrides entries."""
    by_id: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_id[str(r["id"])].append(bool(r["correct"]))
    per_problem = [sum(v) / len(v) for v in by_id.values()]
    out: dict[str, Any] = {
        "score": sum(per_problem) / len(per_problem) if per_problem else 0.0,
        "n": len(by_id),
        "num_samples": len(rows),
        "metric": getattr(task, "metric", None) or (rows[0].get("metric") if rows else None) or "accuracy",
        "version": rows[0].get("task_version") if rows else getattr(task, "version", None),
        "self_certainty": sum(float(r["self_certainty"]) for r in rows) / len(rows) if rows else 0.0,
    }
    min_n = min((len(v) for v in by_id.values()), default=0)
    if max((len(v) for v in by_id.values()), default=0) > 1:
        for k in pass_at_k_values(min_n):
            out[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in by_id.values()) / len(by_id)
    if task is not None and callable(getattr(task, "aggregate", None)):
        out.update(task.aggregate(list(rows)))
    return out


def summarise(rows: Iterable[dict], tasks: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per-task metrics of all rows, tasks in the paper's column order first."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    tasks = dict(tasks or {})
    for name in by_task:
        if name not in tasks:
            tasks[name] = _task_or_none(name)
    names = sorted(by_task, key=_column_order)
    return {name: summarise_task(by_task[name], tasks.get(name)) for name in names}


def flat_metrics(results: dict, prefix: str = "eval") -> dict[str, float]:
    """Namespaced scalar metrics of a results dict, for loggers: `eval/<task>/score`, `eval/<task>/pass@4`,
    `eval/<task>/self_certainty`...

    >>> flat_metrics({"tasks": {"gsm8k": {"score": 0.5, "n": 2, "metric": "accuracy", "pass@2": 0.75}}})
    {'eval/gsm8k/score': 0.5, 'eval/gsm8k/n': 2, 'eval/gsm8k/pass@2': 0.75}
    """
    return {
        f"{prefix}/{task}/{key}": value
        for task, metrics in results.get("tasks", {}).items()
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "version"
    }


def _column_order(name: str) -> tuple[int, str]:
    order = list(PAPER_COLUMNS)
    return (order.index(name), name) if name in order else (len(order), name)


def _task_or_none(name: str):
    from intuitor.tasks import get_task

    try:
        return get_task(name)
    except Exception:  # a task of an older run that no longer exists: summarise it generically
        return None


# --------------------------------------------------------------------------------------------------------- table


def results_table(results: dict):
    """A rich Table in the paper's layout: one column per benchmark (paper order first), scores in %."""
    from rich.table import Table

    tasks = results.get("tasks", {})
    table = Table(title=f"{results.get('model', '')}")
    table.add_column("metric")
    for name in tasks:
        table.add_column(PAPER_COLUMNS.get(name, name), justify="right")
    metrics = ["score"] + sorted(
        {k for m in tasks.values() for k in m if k.startswith("pass@") and k != "pass@1"},
        key=lambda k: int(k.split("@")[1]),
    )
    for key in metrics:
        cells = [f"{100 * m[key]:.1f}" if isinstance(m.get(key), (int, float)) else "-" for m in tasks.values()]
        table.add_row(key, *cells)
    table.add_row("n", *[str(m.get("n", "-")) for m in tasks.values()])
    table.add_row("self-certainty", *[f"{m.get('self_certainty', 0.0):.3f}" for m in tasks.values()])
    return table


def print_results(results: dict, console=None) -> None:
    from rich.console import Console

    (console or Console()).print(results_table(results))
