"""The collapse guard judged on the demo: does a label-free alarm come before training accuracy falls?

Labels are used here only to judge the guard, never by it. For a long run (the demo's `--full` collapse run: 4x the
steps at 3x the learning rate, guard on `warn`, a checkpoint every 10 steps) we record: the step of the guard's
first alarm (the live run's guard.jsonl), the step where training accuracy (`rewards/accuracy/mean`, its 10-step
trailing mean, so one easy batch does not set the peak) first falls 10 points below its running peak, the lead time
between them, and the held-out greedy accuracy of the checkpoint the guard kept against the best of all the run's
checkpoints. The README's "Collapse guard" section reports these per seed.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path


ACCURACY_KEY = "rewards/accuracy/mean"


def accuracy_fall_step(rows: list[dict], window: int = 10, drop: float = 0.10) -> dict:
    """First step where the `window`-step trailing mean of training accuracy is `drop` below its running peak.

    >>> rows = [{"step": s, ACCURACY_KEY: a} for s, a in enumerate([0.5, 0.7, 0.9, 0.9, 0.75, 0.6], 1)]
    >>> accuracy_fall_step(rows, window=2, drop=0.10)
    {'fall_step': 6, 'peak': 0.9, 'peak_step': 4}
    """
    acc = [(r["step"], r[ACCURACY_KEY]) for r in rows if isinstance(r.get(ACCURACY_KEY), (int, float))]
    peak, peak_step = float("-inf"), None
    for i in range(window - 1, len(acc)):
        mean = statistics.fmean(a for _, a in acc[i - window + 1 : i + 1])
        if mean > peak:
            peak, peak_step = mean, acc[i][0]
        elif mean < peak - drop:
            return {"fall_step": acc[i][0], "peak": peak, "peak_step": peak_step}
    return {"fall_step": None, "peak": peak if peak_step else None, "peak_step": peak_step}


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def judge_run(run_dir: Path, checkpoint_accuracy: dict[int, float] | None = None, settings=None) -> dict:
    """Lead time of the guard's first alarm over the accuracy fall; the kept checkpoint vs the best one.

    The live run's guard.jsonl is judged, or with `settings` (guard fields) a replay of its metrics.jsonl through
    the same guard code (`intuitor guard`), e.g. to judge recorded runs with other thresholds."""
    rows = _rows(run_dir / "metrics.jsonl")
    if settings is not None:
        from intuitor.training.guard import read_metrics, replay

        guard = replay(rows, settings, read_metrics(run_dir)[2])
        guard_rows = guard.events + ([guard.keep] if guard.keep else [])
    else:
        guard_rows = _rows(run_dir / "guard.jsonl")
    alarms = [r for r in guard_rows if "condition" in r]
    keep = next((r for r in guard_rows if r.get("event") == "keep"), None)
    fall = accuracy_fall_step(rows)
    first = alarms[0] if alarms else None
    result = {
        "run": str(run_dir),
        "first_alarm_step": first["step"] if first else None,
        "first_alarm": first["condition"] if first else None,
        **fall,
        "lead_steps": fall["fall_step"] - first["step"] if first and fall["fall_step"] else None,
        "alarms": [(r["step"], r["condition"]) for r in alarms],
        "kept_checkpoint": keep["checkpoint"] if keep else None,
    }
    if checkpoint_accuracy:
        best_step = max(checkpoint_accuracy, key=checkpoint_accuracy.get)
        result["best_checkpoint"] = f"checkpoint-{best_step}"
        result["best_greedy_accuracy"] = checkpoint_accuracy[best_step]
        kept_step = keep["checkpoint_step"] if keep else None
        result["kept_greedy_accuracy"] = checkpoint_accuracy.get(kept_step)
    return result


def checkpoint_accuracies(run_dir: Path, cfg, max_step: int | None = None) -> dict[int, float]:
    """Held-out greedy accuracy (the demo's `eval_items` test problems) of every checkpoint-N in `run_dir`."""
    from intuitor.models import load_model_and_tokenizer

    out = {}
    for path in sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(path.name.split("-")[1])
        if max_step is not None and step > max_step:
            continue
        model, tok = load_model_and_tokenizer(str(path))
        out[step] = _greedy(model.eval(), tok, cfg)
    return out


def _greedy(model, tok, cfg) -> float:
    from intuitor.evaluation.harness import evaluate
    from intuitor.tasks.addition import AdditionTask

    rows = evaluate(
        (model, tok),
        [AdditionTask(split="test")],
        limit=cfg.eval_items,
        max_new_tokens=cfg.max_completion_length,
        progress=False,
        seed=0,
        return_samples=True,
        batch_size=64,
    )["samples"]
    return sum(bool(r["correct"]) for r in rows) / len(rows)
