"""The results table of the SmolLM2-135M experiment (README "On a real model") from its run folder.

    python scripts/smollm2_table.py runs/smollm2 docs/smollm2     # after scripts/smollm2_experiment.sh

Reads OUT/<model>/eval/{greedy,gsm8k,sampled8}/ (written by `intuitor eval`), each run's metrics.jsonl and
OUT/timings.tsv; writes DEST/results.json (every number, per model and seed) and DEST/results.md (the table: mean
and half the range over seeds, and the paired test of each run against the base model on the same problems).

Significance: McNemar's exact test on the 200 held-out problems, each run against the base (greedy, so both are
deterministic): among problems one of the two gets right and the other wrong, is the split 50/50? Two-sided
binomial p (scipy.stats.binomtest). One p per seed; a seed's run is its own experiment.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from scipy.stats import binomtest

from intuitor.analysis.calibration import calibration_stats
from intuitor.analysis.select import selection_accuracy
from intuitor.evaluation.harness import read_samples
from intuitor.tasks import get_task


KIND_OF = {row["id"]: row["kind"] for row in get_task("arithmetic").load()}  # samples.jsonl keeps no `kind`

METHODS = {
    "base": "base (SmolLM2-135M-Instruct)",
    "intuitor": "INTUITOR (self-certainty, no answers)",
    "grpo-gold": "GRPO, gold answers",
    "grpo-pv": "GRPO-PV (plurality vote)",
}


def mcnemar(base: dict[str, bool], run: dict[str, bool]) -> dict:
    """Exact McNemar test of paired outcomes (same ids): wins, losses and the two-sided p.

    >>> mcnemar({"a": True, "b": False, "c": False}, {"a": True, "b": True, "c": True})["wins"]
    2
    """
    ids = sorted(base)
    if set(ids) != set(run):
        raise ValueError("the two evaluations are not on the same problems")
    wins = sum(run[i] and not base[i] for i in ids)
    losses = sum(base[i] and not run[i] for i in ids)
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return {"wins": wins, "losses": losses, "p_value": p}


def _outcomes(rows: list[dict]) -> dict[str, bool]:
    return {str(r["id"]): bool(r["correct"]) for r in rows}


def _done(samples: Path) -> bool:
    """Whether `intuitor eval` finished: its results.json (written at the start too) counts every response asked
    for (limit x samples per task) and samples.jsonl holds them."""
    try:
        results = json.loads((samples.parent / "results.json").read_text())
    except (OSError, ValueError):
        return False
    config, tasks = results.get("config", {}), results.get("tasks", {})
    want = (config.get("limit") or 0) * (config.get("samples") or 1)
    got = [tasks.get(t, {}).get("num_samples", 0) for t in config.get("tasks", [])]
    return bool(got) and all(n == want for n in got) and len(read_samples(samples)) == sum(got)


def model_numbers(folder: Path) -> dict:
    """Every number of one model: greedy accuracy (+ per kind), length, self-certainty, GSM8K, best-of-8, AUROC."""
    out: dict = {}
    greedy = folder / "eval" / "greedy" / "samples.jsonl"
    if _done(greedy):
        rows = read_samples(greedy)
        out["greedy"] = 100 * statistics.mean(r["correct"] for r in rows)
        out["n"] = len(rows)
        out["length"] = statistics.mean(r["num_tokens"] for r in rows)
        out["self_certainty"] = statistics.mean(r["self_certainty"] for r in rows)
        kinds = defaultdict(list)
        for r in rows:
            kinds[KIND_OF[r["id"]]].append(r["correct"])
        out["by_kind"] = {k: 100 * statistics.mean(v) for k, v in sorted(kinds.items())}
        out["outcomes"] = _outcomes(rows)
    ood = folder / "eval" / "gsm8k" / "samples.jsonl"
    if _done(ood):
        rows = read_samples(ood)
        out["gsm8k"] = 100 * statistics.mean(r["correct"] for r in rows)
        out["gsm8k_n"] = len(rows)
    sampled = folder / "eval" / "sampled8" / "samples.jsonl"
    if _done(sampled):
        rows = read_samples(sampled)
        sel = selection_accuracy(rows)
        out["pass@1"] = 100 * sel["pass@1"]["accuracy"]
        out["best_of_8_sc"] = 100 * sel["self_certainty"]["accuracy"]
        out["majority_of_8"] = 100 * sel["majority"]["accuracy"]
        out["pass@8"] = 100 * sel["pass@k"]["accuracy"]
        out["sampled_n"] = sel["pass@1"]["n_items"]
        cal = calibration_stats(rows)
        out["auroc"] = cal.get("auroc")
        out["mw_p"] = cal.get("p_value")
    metrics = folder / "metrics.jsonl"
    if metrics.exists():
        steps = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        steps = [s for s in steps if "loss" in s]
        if steps:
            first, last = steps[0], steps[-1]
            out["train"] = {
                "steps": last["step"],
                "label_accuracy_first": 100 * first.get("rewards/accuracy/mean", float("nan")),
                "label_accuracy_last": 100 * last.get("rewards/accuracy/mean", float("nan")),
                "length_first": first.get("completions/mean_length"),
                "length_last": last.get("completions/mean_length"),
                "self_certainty_first": first.get("self_certainty/mean"),
                "self_certainty_last": last.get("self_certainty/mean"),
                "kl_last": last.get("kl"),
            }
    return out


def _spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f}±{(max(values) - min(values)) / 2:.1f}"


def build(out: Path) -> dict:
    timings = {}
    tsv = out / "timings.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            name, seconds = line.split("\t")
            timings[name] = int(seconds)
    models = {"base": model_numbers(out / "base")}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and "-seed" in p.name):
        models[folder.name] = model_numbers(folder)
    base = models["base"].get("outcomes")
    for name, numbers in models.items():
        if name != "base" and base and "outcomes" in numbers:
            numbers["vs_base"] = mcnemar(base, numbers["outcomes"])
        # job names: train-<run>, eval-<kind>-<model>
        numbers["wall_s"] = {
            k.split("-")[0] if k.startswith("train-") else k.split("-")[1]: v
            for k, v in timings.items()
            if k.endswith(f"-{name}")
        }
    return models


COLUMNS = [
    ("greedy", "held-out greedy %"),
    ("pass@1", "sampled pass@1 %"),
    ("best_of_8_sc", "best of 8 by SC %"),
    ("majority_of_8", "majority of 8 %"),
    ("pass@8", "pass@8 %"),
    ("gsm8k", "GSM8K (OOD) %"),
    ("length", "length (tokens)"),
    ("self_certainty", "SC"),
    ("auroc", "SC AUROC right vs wrong"),
]


def table(models: dict) -> str:
    lines = [
        "| method | " + " | ".join(h for _, h in COLUMNS) + " | vs base (McNemar, per seed) |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for method, label in METHODS.items():
        names = ["base"] if method == "base" else [n for n in models if n.rsplit("-seed", 1)[0] == method]
        if not names:
            continue
        cells = []
        for key, _ in COLUMNS:
            vals = [models[n].get(key) for n in names]
            cells.append(_auroc(vals) if key == "auroc" else _spread(vals))
        tests = ", ".join(
            f"+{models[n]['vs_base']['wins']}/-{models[n]['vs_base']['losses']} p={models[n]['vs_base']['p_value']:.2g}"
            for n in names
            if "vs_base" in models[n]
        )
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {tests or '-'} |")
    return "\n".join(lines)


def _one(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _auroc(values: list) -> str:
    values = [v for v in values if v is not None]
    return "-" if not values else "/".join(f"{v:.2f}" for v in values)


def main(out: str, dest: str) -> None:
    out_dir, dest_dir = Path(out), Path(dest)
    models = build(out_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    slim = {n: {k: v for k, v in m.items() if k != "outcomes"} for n, m in models.items()}
    (dest_dir / "results.json").write_text(json.dumps(slim, indent=1, sort_keys=True) + "\n")
    per_seed = [
        "| run | greedy % | GSM8K % | best of 8 by SC % | train: label acc. first→last step | length first→last "
        "| SC first→last | wall: train / evals (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, m in models.items():
        t = m.get("train", {})
        walls = m.get("wall_s", {})
        evals = " + ".join(f"{v} ({k})" for k, v in sorted(walls.items()) if k != "train")
        per_seed.append(
            f"| {n} | {_one(m.get('greedy'))} | {_one(m.get('gsm8k'))} | {_one(m.get('best_of_8_sc'))} | "
            + (
                f"{t['label_accuracy_first']:.0f}→{t['label_accuracy_last']:.0f} | "
                f"{t['length_first']:.0f}→{t['length_last']:.0f} | "
                f"{t['self_certainty_first']:.2f}→{t['self_certainty_last']:.2f}"
                if t
                else "- | - | -"
            )
            + f" | {walls.get('train', '-')} / {evals or '-'} |"
        )
    kinds = sorted({k for m in models.values() for k in m.get("by_kind", {})})
    by_kind = ["| model | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for n, m in models.items():
        if "by_kind" in m:
            by_kind.append(f"| {n} | " + " | ".join(f"{m['by_kind'].get(k, float('nan')):.0f}" for k in kinds) + " |")
    text = (
        "<!-- written by scripts/smollm2_table.py from runs/smollm2; do not edit -->\n\n"
        + table(models)
        + "\n\nPer run:\n\n"
        + "\n".join(per_seed)
        + "\n\nHeld-out greedy accuracy (%) by kind of problem (25 each):\n\n"
        + "\n".join(by_kind)
        + "\n"
    )
    (dest_dir / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
