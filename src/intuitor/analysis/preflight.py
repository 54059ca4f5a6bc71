"""Preflight: is a model worth training with INTUITOR on a task? Ask its own samples before spending a run.

INTUITOR rewards the policy's self-certainty, so it can only help where self-certainty already tells the base
model's right answers from its wrong ones (the paper's Figure 8 and its note that instruction-tuned models gain
little). `preflight(model, task)` samples K responses per prompt through the evaluation harness (it writes
`samples.jsonl` and `results.json` like `intuitor eval`, so a rerun resumes), then `preflight_stats` measures:

- accuracy (pass@1 over samples, where the task has gold answers) and oracle pass@K;
- self-certainty of right vs wrong samples: Mann-Whitney U, AUROC, effect size r and two-sided p
  (`intuitor.analysis.calibration.mann_whitney`);
- best-of-K by self-certainty vs one sample vs majority vote (`intuitor.analysis.select`): does the signal pick
  better answers than chance and than voting?
- agreement: the share of an item's samples in its largest answer group (as the plurality-vote reward groups them),
  averaged over items; near 1, GRPO's groups carry little signal;
- truncation rate (samples that hit max_new_tokens) and mean length in tokens.

`verdict` turns these into one plain sentence with its reasons. The demo's precondition (`intuitor.demo.runner`) is
this very function on the demo's base model: `intuitor preflight demo-base --task addition` prints the same line.
Thresholds of the verdict (ours; the paper gives none): AUROC >= 0.6 with p < 0.05 separates; accuracy above 90%
leaves little to gain; more than 10% truncated samples hide answers.
"""

from __future__ import annotations

import math
from pathlib import Path

from intuitor.layout import PREFLIGHT_FILE


# The demo's precondition settings (intuitor.demo.runner.DemoConfig reads them from here).
LIMIT, SAMPLES, TEMPERATURE, BATCH_SIZE = 64, 8, 1.0, 64
MAX_NEW_TOKENS = 512  # for models other than demo-base (whose answers fit in the demo's 40 tokens)
SEPARATES_AUROC, SEPARATES_P, CEILING, TRUNCATION = 0.6, 0.05, 0.9, 0.1


def _mean(values) -> float | None:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def agreement_rate(rows: list[dict]) -> float | None:
    """Mean over items of the share of samples in the item's largest answer group (null answers agree with none)."""
    from collections import Counter

    from intuitor.analysis.select import _answer_keys, group_items

    shares = []
    for samples in group_items(rows).values():
        counts = Counter(_answer_keys(samples))
        shares.append(max(counts.values()) / len(samples))
    return _mean(shares)


def preflight_stats(rows: list[dict]) -> dict:
    """The numbers above from the rows of a samples.jsonl with K samples per item (K = the most any item has).

    Keys `auroc`, `p_value`, `n_correct`, `n_incorrect`, `pass@1`, `best_of_{K}_self_certainty`, `majority_of_{K}`,
    `oracle_pass@{K}` are the demo's precondition (demo.json); the rest come on top.
    """
    from intuitor.analysis.calibration import mann_whitney, split_by_correctness
    from intuitor.analysis.select import group_items, selection_accuracy

    if not rows:
        raise ValueError("no samples: nothing to check")
    k = max(len(v) for v in group_items(rows).values())
    right, wrong, unscored = split_by_correctness(rows)
    test = mann_whitney(right, wrong)
    out = {
        "auroc": test.auroc,
        "p_value": test.p_value,
        "effect_size_r": test.effect_size_r,
        "n_correct": len(right),
        "n_incorrect": len(wrong),
        "n_unscored": unscored,
        "k": k,
        "n_items": len(group_items(rows)),
        "n_samples": len(rows),
    }
    scored = [r for r in rows if isinstance(r.get("correct"), bool)]
    if scored:
        picked = selection_accuracy(scored, methods=["self_certainty", "majority"], power=1.0)
        out.update(
            {
                "pass@1": picked["pass@1"]["accuracy"],
                f"best_of_{k}_self_certainty": picked["self_certainty"]["accuracy"],
                f"majority_of_{k}": picked["majority"]["accuracy"],
                f"oracle_pass@{k}": picked["pass@k"]["accuracy"],
            }
        )
    out["accuracy"] = out.get("pass@1")
    out["agreement"] = agreement_rate(rows)
    out["truncation_rate"] = _mean(bool(r.get("truncated")) for r in rows if "truncated" in r)
    out["mean_length"] = _mean(r["num_tokens"] for r in rows if isinstance(r.get("num_tokens"), (int, float)))
    out["verdict"], out["reasons"] = verdict(out)
    return out


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def verdict(s: dict) -> tuple[str, list[str]]:
    """(one-sentence verdict, its reasons) from `preflight_stats` numbers."""
    k, reasons = s.get("k", 1), []
    if s["n_correct"] + s["n_incorrect"] == 0:
        return "no gold answers for this task: whether self-certainty separates right from wrong is unknown", [
            "preflight needs a task that scores its answers (e.g. gsm8k, math500, addition)"
        ]
    if s["n_correct"] == 0:
        return "no sample is right: nothing to separate, and no reward can find what the model never produces", [
            f"0 of {s['n_incorrect']} samples right; try an easier task or a stronger base model"
        ]
    if s["n_incorrect"] == 0:
        return "every sample is right: nothing to learn here", [f"{s['n_correct']} of {s['n_correct']} samples right"]
    auroc, p = s["auroc"], s["p_value"]
    separates = _ok(auroc) and auroc >= SEPARATES_AUROC and _ok(p) and p < SEPARATES_P
    reasons.append(
        f"self-certainty AUROC right vs wrong {auroc:.2f} (Mann-Whitney p = {p:.1e}, r = "
        f"{s['effect_size_r']:.2f}; 0.5 = chance, {SEPARATES_AUROC} and p < {SEPARATES_P} needed)"
    )
    best, one, major = s.get(f"best_of_{k}_self_certainty"), s.get("pass@1"), s.get(f"majority_of_{k}")
    if _ok(best) and _ok(one):
        better = "better" if best > one else "no better"
        reasons.append(
            f"best of {k} by self-certainty {100 * best:.1f}% vs one sample {100 * one:.1f}% ({better}) "
            f"and majority of {k} {100 * major:.1f}%"
        )
    if _ok(s.get("accuracy")) and s["accuracy"] > CEILING:
        reasons.append(f"accuracy is already {100 * s['accuracy']:.1f}%: little room to gain")
    if _ok(s.get("truncation_rate")) and s["truncation_rate"] > TRUNCATION:
        reasons.append(
            f"{100 * s['truncation_rate']:.0f}% of samples hit max_new_tokens: raise --max-new-tokens, "
            "or their answers stay unseen"
        )
    if _ok(s.get("agreement")):
        reasons.append(
            f"samples of one prompt agree {100 * s['agreement']:.0f}% of the time (GRPO learns from "
            "the differences within a group)"
        )
    if separates:
        return f"self-certainty separates right from wrong (AUROC {auroc:.2f}): INTUITOR can help", reasons
    return f"self-certainty does not separate right from wrong (AUROC {auroc:.2f}): expect little", reasons


def summary_line(s: dict) -> str:
    """'self-certainty AUROC right vs wrong = 0.72 (p = 2.8e-17); one sample 50.8%, best of 8 ...' (the demo's)."""
    k = s["k"]
    line = f"self-certainty AUROC right vs wrong = {s['auroc']:.2f} (p = {s['p_value']:.1e})"
    if _ok(s.get("pass@1")):
        line += (
            f"; one sample {100 * s['pass@1']:.1f}%, best of {k} by self-certainty "
            f"{100 * s[f'best_of_{k}_self_certainty']:.1f}%, majority of {k} {100 * s[f'majority_of_{k}']:.1f}%"
        )
    return line


def preflight(
    model,
    task,
    *,
    limit: int = LIMIT,
    samples: int = SAMPLES,
    temperature: float = TEMPERATURE,
    max_new_tokens: int = MAX_NEW_TOKENS,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    output_dir: str | Path | None = None,
    **evaluate_kwargs,
) -> dict:
    """Sample `samples` responses to each of the first `limit` prompts of `task` and return `preflight_stats` of
    exactly those (a resumed output folder may hold more); writes OUTPUT_DIR/preflight.json when given.

    `model` and `task` as `intuitor.evaluation.harness.evaluate` takes them (a name, a folder, or a loaded
    (model, tokenizer) pair; a task name or Task object). The demo's seeding: `batch_size` decides which prompts
    share a generate call, whose seed derives from `seed` and the call's first prompt, so keep it to reproduce.
    """
    from intuitor.analysis import write_json
    from intuitor.evaluation.harness import evaluate, make_task

    task_obj = make_task(task, evaluate_kwargs.pop("data_dir", None)) if isinstance(task, str) else task
    rows = evaluate(
        model,
        [task_obj],
        limit=limit,
        samples=samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        output_dir=output_dir,
        return_samples=True,
        **{"progress": False, **evaluate_kwargs},
    )["samples"]
    ids = {str(r["id"]) for r in task_obj.load(limit)}
    rows = [r for r in rows if r.get("task") == task_obj.name and str(r["id"]) in ids and int(r["sample"]) < samples]
    stats = preflight_stats(rows)
    stats["settings"] = {
        "task": task_obj.name,
        "limit": limit,
        "samples": samples,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "seed": seed,
    }
    if output_dir is not None:
        write_json(stats, Path(output_dir) / PREFLIGHT_FILE)
    return stats
