"""The tasks an evaluation runs: built from names (with their options), their rows checked, responses scored.

`score_all` runs a task's `score` on each response, on threads when the task asks for it (`score_workers`: the code
tasks, whose scoring waits on sandbox subprocesses).
"""

from __future__ import annotations

import inspect
from typing import Any


def make_task(spec, data_dir=None, path: str | None = None, options: dict | None = None):
    """A Task from a registered name (did-you-mean on a typo) or a Task object as is. `options` are passed to the
    task's constructor when it accepts them (e.g. the AlpacaEval judge), ignored otherwise."""
    from intuitor.tasks import TASKS, get_task, load_all

    if not isinstance(spec, str):
        return spec
    load_all()
    kwargs: dict[str, Any] = {"data_dir": str(data_dir) if data_dir else None}
    if path:
        kwargs["path"] = str(path)
    cls = TASKS.get(spec)
    if cls is not None and options:
        params = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs.update({k: v for k, v in options.items() if v is not None and (takes_any or k in params)})
    return get_task(spec, **kwargs)


def parse_tasks(tasks) -> list:
    """'gsm8k,math500' or a list of names / Task objects -> a list without duplicates."""
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    out, seen = [], set()
    for t in tasks:
        key = t if isinstance(t, str) else t.name
        if key not in seen:
            seen.add(key)
            out.append(t)
    if not out:
        raise ValueError("no task given: pass --tasks, e.g. --tasks gsm8k,math500")
    return out


def check_unique_ids(task, rows: list[dict]) -> None:
    """Refuse two data rows sharing one id: they would be merged into one problem (their samples pooled, pass@k
    and resume keyed wrongly). The error names the id and both rows' places in the data file where it can find
    them (a record holding the id as a field value), else their positions among the loaded rows."""
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        rid = str(row["id"])
        if rid not in first:
            first[rid] = i
            continue
        j = first[rid]
        same = "identical rows" if rows[j] == row else "different rows"
        places = _places_of_id(task, rid) or [f"row {j + 1}", f"row {i + 1}"]
        raise ValueError(
            f"{task.name}: {places[0]} and {places[1]} share the id '{rid}' ({same}): ids must be unique, else "
            "both are scored as one problem; give each row its own id"
        )


def _places_of_id(task, rid: str) -> list[str] | None:
    """'file:line' of the first two records of a task's local data file that hold `rid` as a field value."""
    from intuitor.tasks.base import read_records

    try:
        path = task.resolve_path() if hasattr(task, "resolve_path") else None
        records = read_records(path) if path is not None and path.exists() else []
    except (OSError, ValueError):
        return None
    found = [
        where for where, rec in records if any(str(v) == rid for v in rec.values() if not isinstance(v, (dict, list)))
    ]
    return found[:2] if len(found) >= 2 else None


def score_all(task, responses: list[str], rows: list[dict]) -> list[bool]:
    """`task.score` of each response. A task whose scoring waits on subprocesses (the code sandbox) may set
    `score_workers = N` to be scored on N threads; the default is one at a time."""
    workers = int(getattr(task, "score_workers", 1) or 1)
    if workers <= 1 or len(responses) <= 1:
        return [bool(task.score(r, row)) for r, row in zip(responses, rows, strict=True)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(responses))) as pool:
        return [bool(c) for c in pool.map(task.score, responses, rows)]
