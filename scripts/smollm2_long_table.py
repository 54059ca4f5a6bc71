"""The long SmolLM2-135M runs' results as data, a table and figures (written by scripts/smollm2_long.sh).

    python scripts/smollm2_long_table.py docs/smollm2/long docs/smollm2

Reads RESULTS/base/eval/greedy/ (update 0) and, per run folder RESULTS/<method>-seed<N>/, its guard.jsonl,
guard_keep.json, metrics.jsonl and eval/checkpoint-<update>/greedy/samples.jsonl (the greedy answers to the 200
held-out `arithmetic` rows). Writes DEST/long.json ({"runs": [{"method", "seed", "checkpoints": [{"update",
"greedy", "interval", "length", "self_certainty"}], "first_alarm", "first_alarm_condition", "kept_checkpoint",
"kept_greedy", "best_update", "best_greedy", "peak_update", "fall_update", "lead_updates", "replay"}],
"early": ...}),
DEST/long.md (one row per run) and DEST/long_accuracy.png, DEST/long_length.png (online vs offline vs gold, the
guard's first alarm marked).

Labels judge the guard here, never drive it. "Fall": the first checkpoint after the peak whose held-out greedy
accuracy is 10 points or more below the peak (the checkpoints are the only held-out measurements, so a fall is
dated to the first checkpoint that shows it). "Lead": fall update minus first-alarm update (positive = the alarm
came first). "early" answers the paper's Table 2 question from the same checkpoints: each method's held-out
accuracy at its first checkpoint, mean over seeds.

"replay": the same run's metrics replayed through the guard (`intuitor guard`) with shorter time constants,
REPLAY below, and the evaluated checkpoints as the ones that existed. The live runs use the defaults (warm-up 5,
baseline 10, window 10), longer than the rise of INTUITOR seed 0 (peak at update 4, fall at 16); REPLAY was chosen
after seeing that run, so seed 0 does not count for it: the later seeds are its test.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from intuitor.analysis.compare import wilson_interval
from intuitor.evaluation.harness import read_samples


FALL = 0.10
REPLAY = {"guard_warmup": 1, "guard_baseline": 3, "guard_window": 3}  # set after online seed 0; tested on the rest
RUN = re.compile(r"(?P<method>intuitor|intuitor-offline|grpo-gold)-seed(?P<seed>\d+)")
CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def evaluation(folder: Path) -> dict | None:
    """Greedy accuracy (with its 95% Wilson interval), mean length and self-certainty of one evaluation folder."""
    path = folder / "samples.jsonl"
    if not path.is_file():
        return None
    rows = read_samples(path)
    right = sum(bool(r["correct"]) for r in rows)
    return {
        "greedy": right / len(rows),
        "interval": list(wilson_interval(right, len(rows))),
        "n": len(rows),
        "length": statistics.fmean(r["num_tokens"] for r in rows),
        "self_certainty": statistics.fmean(r["self_certainty"] for r in rows),
    }


def fall_update(points: list[tuple[int, float]], drop: float = FALL) -> tuple[int | None, int | None]:
    """(peak update, first update after the peak at least `drop` below it) of a (update, accuracy) series.

    >>> fall_update([(0, 0.2), (4, 0.35), (8, 0.30), (12, 0.24), (16, 0.4)])
    (4, 12)
    >>> fall_update([(0, 0.2), (4, 0.25)])
    (4, None)
    """
    peak, peak_update = float("-inf"), None
    for update, acc in points:
        if acc > peak:
            peak, peak_update = acc, update
        elif acc <= peak - drop + 1e-12:
            return peak_update, update
    return peak_update, None


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def run_result(folder: Path, base: dict) -> dict:
    m = RUN.fullmatch(folder.name)
    checkpoints = [{"update": 0, **base}]
    for d in sorted((folder / "eval").glob("checkpoint-*"), key=lambda p: int(CHECKPOINT.fullmatch(p.name)[1])):
        ev = evaluation(d / "greedy")
        if ev is not None:
            checkpoints.append({"update": int(CHECKPOINT.fullmatch(d.name)[1]), **ev})
    alarms = [r for r in _jsonl(folder / "guard.jsonl") if "condition" in r]
    keep_path = folder / "guard_keep.json"
    keep = json.loads(keep_path.read_text()) if keep_path.is_file() else {}
    by_update = {c["update"]: c["greedy"] for c in checkpoints}
    best = max(checkpoints[1:] or checkpoints, key=lambda c: c["greedy"])
    peak, fall = fall_update([(c["update"], c["greedy"]) for c in checkpoints])
    first = alarms[0]["step"] if alarms else None
    kept = keep.get("checkpoint_step")
    return {
        "method": m["method"],
        "seed": int(m["seed"]),
        "checkpoints": checkpoints,
        "first_alarm": first,
        "first_alarm_condition": alarms[0]["condition"] if alarms else None,
        "kept_checkpoint": kept,
        "kept_greedy": by_update.get(kept),
        "best_update": best["update"],
        "best_greedy": best["greedy"],
        "peak_update": peak,
        "fall_update": fall,
        "lead_updates": fall - first if fall is not None and first is not None else None,
        "replay": guard_replay(folder, [c["update"] for c in checkpoints[1:]], by_update, fall),
    }


def guard_replay(folder: Path, checkpoints: list[int], by_update: dict, fall: int | None) -> dict | None:
    """The guard's decisions on this run's logged metrics with the REPLAY settings (None without metrics)."""
    from intuitor.training.guard import read_metrics, replay
    from intuitor.training.guard_cli import guard_settings

    if not (folder / "metrics.jsonl").is_file():
        return None
    rows, config, _ = read_metrics(folder)
    overrides = [item for name, value in REPLAY.items() for item in (f"--{name}", str(value))]
    guard = replay(rows, guard_settings(config, overrides), checkpoints)
    first = guard.events[0] if guard.events else None
    kept = (guard.keep or {}).get("checkpoint_step")
    return {
        "settings": REPLAY,
        "first_alarm": first["step"] if first else None,
        "first_alarm_condition": first["condition"] if first else None,
        "kept_checkpoint": kept,
        "kept_greedy": by_update.get(kept),
        "lead_updates": fall - first["step"] if fall is not None and first else None,
    }


def build(results: Path) -> dict:
    base = evaluation(results / "base" / "eval" / "greedy")
    if base is None:
        raise SystemExit(f"{results}/base/eval/greedy/samples.jsonl: the base model's evaluation is missing")
    runs = [run_result(d, base) for d in sorted(results.iterdir()) if d.is_dir() and RUN.fullmatch(d.name)]
    early = {}
    for method in sorted({r["method"] for r in runs}):
        firsts = [r["checkpoints"][1] for r in runs if r["method"] == method and len(r["checkpoints"]) > 1]
        if firsts:
            early[method] = {
                "update": firsts[0]["update"],
                "greedy": statistics.fmean(c["greedy"] for c in firsts),
                "seeds": len(firsts),
            }
    return {"base_greedy": base["greedy"], "runs": runs, "early": early}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(data: dict) -> str:
    lines = [
        "| run | peak (update) | fall at | first alarm | lead | kept: held-out | best: held-out | last "
        "| replay: first alarm | replay: lead | replay: kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        by = {c["update"]: c["greedy"] for c in r["checkpoints"]}
        alarm = f"{r['first_alarm']} {r['first_alarm_condition']}" if r["first_alarm"] is not None else "none"
        kept = f"{r['kept_checkpoint']}: {_pct(r['kept_greedy'])}%" if r["kept_checkpoint"] is not None else "-"
        lines.append(
            f"| {r['method']} seed {r['seed']} | {_pct(by[r['peak_update']])}% ({r['peak_update']}) | "
            f"{r['fall_update'] if r['fall_update'] is not None else 'no fall'} | {alarm} | "
            f"{r['lead_updates'] if r['lead_updates'] is not None else '-'} | {kept} | "
            f"{r['best_update']}: {_pct(r['best_greedy'])}% | {_pct(r['checkpoints'][-1]['greedy'])}% | "
            + _replay_cells(r.get("replay"))
        )
    early = ", ".join(
        f"{m} {_pct(e['greedy'])}% at update {e['update']} ({e['seeds']} seeds)" for m, e in data["early"].items()
    )
    return "\n".join(lines) + f"\n\nBase model: {_pct(data['base_greedy'])}%. First checkpoint: {early}.\n"


def _replay_cells(rp: dict | None) -> str:
    if rp is None:
        return "- | - | - |"
    alarm = f"{rp['first_alarm']} {rp['first_alarm_condition']}" if rp["first_alarm"] is not None else "none"
    lead = rp["lead_updates"] if rp["lead_updates"] is not None else "-"
    kept = f"{rp['kept_checkpoint']}: {_pct(rp['kept_greedy'])}%" if rp["kept_checkpoint"] is not None else "-"
    return f"{alarm} | {lead} | {kept} |"


def figures(data: dict, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"intuitor": "tab:blue", "intuitor-offline": "tab:orange", "grpo-gold": "tab:green"}
    for key, label, name in [
        ("greedy", "held-out greedy accuracy", "long_accuracy.png"),
        ("length", "mean response length (tokens)", "long_length.png"),
    ]:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in data["runs"]:
            xs = [c["update"] for c in r["checkpoints"]]
            ys = [c[key] for c in r["checkpoints"]]
            ax.plot(xs, ys, marker="o", color=colors[r["method"]], alpha=0.8, label=f"{r['method']} seed {r['seed']}")
            if r["first_alarm"] is not None:
                ax.axvline(r["first_alarm"], color=colors[r["method"]], linestyle=":", alpha=0.6)
        ax.set_xlabel("update (dotted: the guard's first alarm)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(dest / name, dpi=110)
        plt.close(fig)


def main(argv: list[str]) -> None:
    results, dest = Path(argv[0]), Path(argv[1])
    data = build(results)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "long.json").write_text(json.dumps(data, indent=1) + "\n")
    (dest / "long.md").write_text(markdown(data))
    figures(data, dest)
    print(markdown(data))


if __name__ == "__main__":
    main(sys.argv[1:])
