"""`intuitor demo`: the paper's experiment, scaled down to a laptop CPU, through the real trainer and harness.

Steps: (1) check the precondition on the base model: does self-certainty separate its right from its wrong
samples (AUROC), and does best-of-N by self-certainty beat a single sample? (2) train INTUITOR (self-certainty only,
no answers) and GRPO on gold answers from the same base, per seed; (3) evaluate the base and every trained model on
held-out problems: greedy and sampled accuracy, response length, the share of each response style, mean
self-certainty; (4) print one table and write demo.json, each run's metrics.jsonl and completions.jsonl, plots, an
HTML report of the INTUITOR run (report.html) and one comparing the base with every method (compare.html). Folders
follow `intuitor.layout`: RUN/eval/greedy, RUN/eval/sampled, base/eval/preflight (the precondition).
`--full` adds GRPO-PV (plurality vote), the offline annotator, a random-reward null control and a long, aggressive
INTUITOR run that shows the collapse and what the label-free guard makes of it. `--estimators` trains every
label-free estimator alone on the same budget and compares them, with each one's alignment with the gold answers
at the start and end of training (`estimator_markdown`: the README's table).

Nothing here is a separate toy trainer: every run is an `IntuitorTrainer`, every evaluation `intuitor.evaluation`.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from intuitor.analysis import preflight as _preflight
from intuitor.layout import PREFLIGHT_SETTING, eval_dir
from intuitor.models import DEMO_MAX_NEW_TOKENS
from intuitor.tasks.addition import STYLES, AdditionTask, style


PREFLIGHT_BATCH = _preflight.BATCH_SIZE  # prompts sharing a generate call decide its seed: part of the numbers

# Rewards per method: `accuracy:0` is logged (label accuracy over training) but never trains INTUITOR.
METHODS = {
    "intuitor": {"rewards": ["self_certainty", "accuracy:0"]},
    "grpo_gold": {"rewards": ["accuracy"]},
}
FULL_METHODS = {
    "grpo_pv": {"rewards": ["plurality_vote", "accuracy:0"]},
    "intuitor_offline": {"rewards": ["self_certainty", "accuracy:0"], "annotator": "offline"},
    # Training on noise drifts: the guard's vote-calibration alarm fires on it (steps 15 and 54 in two seeds). It
    # only warns here, so that the null control runs the same budget as the others.
    "random": {"rewards": ["random", "accuracy:0"], "guard": "warn"},
}
# `--estimators` (issue 30): every label-free estimator trained alone, with `accuracy:0` for label accuracy and the
# alignment metrics, on the INTUITOR run's budget and guard. Self-certainty alone is the INTUITOR run itself and
# plurality vote alone is GRPO-PV; the others are new runs.
ESTIMATORS = (
    "self_certainty",
    "negative_entropy",
    "trajectory_entropy",
    "sequence_probability",
    "last_chunk_entropy",
    "plurality_vote",
    "cluster_frequency",
)
ESTIMATOR_RUN = {
    name: {"self_certainty": "intuitor", "plurality_vote": "grpo_pv"}.get(name, f"est_{name}") for name in ESTIMATORS
}
ESTIMATOR_METHODS = {
    run: {"rewards": [name, "accuracy:0"]} for name, run in ESTIMATOR_RUN.items() if run != "intuitor"
}
LABELS = {
    **{f"est_{name}": name for name in ESTIMATORS},
    "base": "base",
    "intuitor": "INTUITOR",
    "grpo_gold": "GRPO gold",
    "grpo_pv": "GRPO-PV",
    "intuitor_offline": "INTUITOR offline",
    "random": "random reward",
}


@dataclass
class DemoConfig:
    output_dir: str = "runs/demo"
    seeds: int = 3
    full: bool = False
    estimators: bool = False  # also train every label-free estimator alone (ESTIMATORS) and compare them
    alignment_window: int = 10  # alignment "at start" / "at end": mean over the first / last this many steps
    steps: int = 80  # INTUITOR peaks by ~50 steps and collapses past ~150 at this lr (see README)
    prompts_per_step: int = 8
    num_generations: int = 8
    learning_rate: float = 2e-5
    beta: float = 0.02
    temperature: float = 1.0
    max_completion_length: int = DEMO_MAX_NEW_TOKENS  # worked solutions are ~28 tokens
    eval_items: int = 200
    sampled_k: int = 4
    precondition_items: int = _preflight.LIMIT  # `intuitor preflight`'s defaults are the demo's precondition
    precondition_k: int = _preflight.SAMPLES
    guard: str = "stop"
    long_steps_factor: int = 4
    long_lr_factor: float = 3.0
    threads: int = 1  # tiny matrices: a second thread only adds synchronisation (measured ~18x slower generation)
    base_model: str | None = None  # default: the committed base model in intuitor/demo/assets
    extra: dict = field(default_factory=dict)


def _base(cfg: DemoConfig):
    from intuitor.demo.base_model import ASSETS_DIR
    from intuitor.models import load_model_and_tokenizer

    return load_model_and_tokenizer(cfg.base_model or str(ASSETS_DIR))


def _evaluate(model, tok, cfg: DemoConfig, run_dir: Path | None, seed: int) -> dict:
    """Greedy and sampled accuracy, length, style shares and self-certainty on the held-out problems, written to
    RUN/eval/greedy and RUN/eval/sampled (`intuitor.layout`) when `run_dir` is given."""
    from intuitor.evaluation.harness import evaluate

    task = AdditionTask(split="test")
    common = dict(
        limit=cfg.eval_items,
        max_new_tokens=cfg.max_completion_length,
        progress=False,
        seed=seed,
        return_samples=True,
        batch_size=64,
    )
    out = {s: eval_dir(run_dir, s) if run_dir else None for s in ("greedy", "sampled")}
    greedy = evaluate((model, tok), [task], output_dir=out["greedy"], **common)["samples"]
    sampled = evaluate(
        (model, tok), [task], samples=cfg.sampled_k, temperature=cfg.temperature, output_dir=out["sampled"], **common
    )["samples"]
    styles = [style(r["response"]) for r in sampled]
    return {
        "greedy_accuracy": _mean(r["correct"] for r in greedy),
        "sampled_accuracy": _mean(r["correct"] for r in sampled),
        "mean_length": _mean(r["num_tokens"] for r in sampled),
        "greedy_length": _mean(r["num_tokens"] for r in greedy),
        "self_certainty": _mean(r["self_certainty"] for r in sampled),
        "greedy_style": style(greedy[0]["response"]) if greedy else "other",
        **{f"style_{s}": styles.count(s) / len(styles) for s in (*STYLES, "other")},
    }


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else float("nan")


def precondition(model, tok, cfg: DemoConfig, out: Path) -> dict:
    """Self-certainty as a judge of the base model's own samples: AUROC and best-of-N by self-certainty. This is
    `intuitor preflight demo-base --task addition` (`intuitor.analysis.preflight`), written to base/eval/preflight."""
    from intuitor.analysis.preflight import preflight

    return preflight(
        (model, tok),
        AdditionTask(split="test"),
        limit=cfg.precondition_items,
        samples=cfg.precondition_k,
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_completion_length,
        batch_size=PREFLIGHT_BATCH,
        output_dir=out,
    )


def train(
    method: str,
    spec: dict,
    cfg: DemoConfig,
    seed: int,
    out: Path,
    steps: int | None = None,
    lr: float | None = None,
    guard: str | None = None,
    **overrides,
):
    """One IntuitorTrainer run from the base model; returns the trained model and tokenizer. `overrides` (and
    `cfg.extra`) replace any IntuitorConfig field set here (e.g. `save_strategy`, `guard_*`)."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = _base(cfg)
    steps = steps or cfg.steps
    rows = AdditionTask(split="train", seed=seed).load(limit=steps * cfg.prompts_per_step)
    fields = dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        learning_rate=lr or cfg.learning_rate,
        beta=cfg.beta,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=seed,
        gradient_checkpointing=False,
        disable_tqdm=True,
        answer_extractor="addition",
        guard=guard or spec.get("guard") or cfg.guard,
        rewards=spec["rewards"],
        annotator=spec.get("annotator", "online"),
    )
    args = IntuitorConfig(**{**fields, **cfg.extra, **overrides})
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.remove_callback(PrinterCallback)  # the demo shows one progress bar; per-step logs go to metrics.jsonl
    trainer.train()
    return trainer.model.eval(), tok, trainer


def _summary(per_seed: list[dict]) -> dict:
    keys = [k for k, v in per_seed[0].items() if isinstance(v, (int, float))]
    out = {}
    for k in keys:
        vals = [r[k] for r in per_seed if isinstance(r.get(k), (int, float))]  # alignment: a seed may have none
        out[k] = {
            "mean": statistics.fmean(vals),
            "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
            "values": vals,
        }
    return out


def _targets(results: dict, base: dict) -> dict:
    """The demo's claim, checked per seed: INTUITOR gains >= 30 points greedy over the base, within 5 of GRPO."""
    per_seed = []
    for intu, gold in zip(results["intuitor"], results["grpo_gold"]):
        gain = intu["greedy_accuracy"] - base["greedy_accuracy"]
        gap = gold["greedy_accuracy"] - intu["greedy_accuracy"]
        per_seed.append({"gain_over_base": gain, "gap_to_grpo_gold": gap, "met": gain >= 0.30 and gap <= 0.05})
    return {"per_seed": per_seed, "all_met": all(s["met"] for s in per_seed)}


def run_demo(cfg: DemoConfig, console=None) -> dict:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(cfg.threads)
    hf_logging.disable_progress_bar()  # weight-loading bars, once per run, would drown the demo's own bar
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the demo's business
    console = console or Console(width=max(Console().width, 120))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    methods = {**METHODS, **(FULL_METHODS if cfg.full else {}), **(ESTIMATOR_METHODS if cfg.estimators else {})}
    seeds = list(range(cfg.seeds))
    stages = 2 + len(methods) * len(seeds) + (2 if cfg.full else 0)
    started = time.time()
    report = {"config": asdict(cfg), "precondition": {}, "runs": {}, "summary": {}}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=False
    ) as progress:
        bar = progress.add_task("precondition: self-certainty on the base model's samples", total=stages)
        model, tok = _base(cfg)
        report["precondition"] = precondition(model, tok, cfg, eval_dir(out / "base", PREFLIGHT_SETTING))
        progress.update(bar, advance=1, description="evaluating the base model")
        base = _evaluate(model, tok, cfg, out / "base", seed=0)
        report["runs"]["base"] = [base]
        for method, spec in methods.items():
            report["runs"][method] = []
            for seed in seeds:
                progress.update(bar, advance=1, description=f"training {LABELS[method]}, seed {seed}")
                run_dir = out / f"{method}-seed{seed}"
                trained, tok, trainer = train(method, spec, cfg, seed, run_dir)
                result = _evaluate(trained, tok, cfg, run_dir, seed=seed)
                result["steps"] = trainer.state.global_step
                result.update(_alignment_ends(run_dir, spec["rewards"][0], cfg.alignment_window))
                report["runs"][method].append(result)
        if cfg.full:
            progress.update(bar, advance=1, description="long INTUITOR runs (guard warns only): the collapse")
            report["collapse"] = collapse_study(cfg, out)
        progress.update(bar, advance=1, description="plots and report")
    report["summary"] = {m: _summary(rs) for m, rs in report["runs"].items()}
    report["targets"] = _targets(report["runs"], base)
    report["elapsed_s"] = time.time() - started
    (out / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    _plots(out, methods, seeds)
    print_table(report, console)
    if cfg.estimators:
        report["estimators"] = estimator_rows(report)
        (out / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
        console.print(estimator_markdown(report))
    return report


def _alignment_ends(run_dir: Path, reward: str, window: int) -> dict:
    """The trained reward's alignment with the gold (`alignment/<reward>/auroc|top1`, logged when `accuracy:0` is
    among the rewards) at the start and end of training: means over the first and last `window` logged steps that
    have it (each step's value is already a mean over the step's groups), and the guard's alarms (guard.jsonl)."""
    from intuitor.analysis.curves import read_metrics

    out = {}
    if reward != "accuracy":
        rows = read_metrics(run_dir)
        for key in ("auroc", "top1"):
            values = [r[f"alignment/{reward}/{key}"] for r in rows if r.get(f"alignment/{reward}/{key}") is not None]
            if values:
                out[f"alignment_{key}_start"] = statistics.fmean(values[:window])
                out[f"alignment_{key}_end"] = statistics.fmean(values[-window:])
    guard = run_dir / "guard.jsonl"
    events = [json.loads(line) for line in guard.read_text().splitlines() if line.strip()] if guard.exists() else []
    out["guard_alarms"] = [[e["step"], e["condition"]] for e in events if "condition" in e]
    return out


def estimator_rows(report: dict) -> list[dict]:
    """One row per estimator (trained alone, every seed): held-out numbers, alignment at start and end, guard."""
    rows = []
    for name, run in ESTIMATOR_RUN.items():
        if run not in report["summary"]:
            continue
        summary, seeds = report["summary"][run], report["runs"][run]
        row = {
            "estimator": name,
            "run": run,
            "seeds": len(seeds),
            **{k: v["mean"] for k, v in summary.items()},
            **{f"{k}_std": v["std"] for k, v in summary.items()},
            "steps_run": [r["steps"] for r in seeds],
            "guard_alarms": [r.get("guard_alarms", []) for r in seeds],
        }
        rows.append(row)
    return rows


def estimator_markdown(report: dict) -> str:
    """The README's estimator table, from a demo.json's numbers (`intuitor demo --estimators`)."""

    def pct(row, key):
        return f"{100 * row[key]:.1f}±{100 * row[key + '_std']:.1f}" if key in row else "n/a"

    def ends(row, key):
        a, b = row.get(f"alignment_{key}_start"), row.get(f"alignment_{key}_end")
        return "n/a" if a is None or b is None else f"{a:.2f} → {b:.2f}"

    steps = report["config"]["steps"]
    header = (
        "| estimator (trained alone) | greedy % | sampled % | length | direct % | worked % | restate % | "
        "AUROC start → end | top-1 start → end | guard |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report.get("estimators") or estimator_rows(report):
        stopped = [s for s in row["steps_run"] if s < steps]
        alarms = sum(bool(a) for a in row["guard_alarms"])
        guard = (
            "no alarm"
            if not alarms
            else (
                f"alarm in {alarms}/{row['seeds']}"
                + (f", stopped at {', '.join(map(str, stopped))}" if stopped else "")
            )
        )
        lines.append(
            f"| `{row['estimator']}` | {pct(row, 'greedy_accuracy')} | {pct(row, 'sampled_accuracy')} | "
            f"{row['mean_length']:.1f} | {pct(row, 'style_direct')} | {pct(row, 'style_worked')} | "
            f"{pct(row, 'style_restate')} | {ends(row, 'auroc')} | {ends(row, 'top1')} | {guard} |"
        )
    return "\n".join(lines)


def collapse_study(cfg: DemoConfig, out: Path) -> dict:
    """Train INTUITOR long and hard (4x the steps, 3x the learning rate) per seed with the guard on `warn` and a
    checkpoint every 10 steps: does it collapse, does the label-free guard warn before training accuracy falls 10
    points below its peak, and how good is the checkpoint it keeps? (`intuitor.demo.guard_study`; labels judge only.)"""
    from intuitor.demo.guard_study import checkpoint_accuracies, judge_run

    steps, lr = cfg.steps * cfg.long_steps_factor, cfg.learning_rate * cfg.long_lr_factor
    result = {}
    for seed in range(cfg.seeds):
        run_dir = out / f"intuitor-long-seed{seed}"
        trained, tok, trainer = train(
            "intuitor",
            METHODS["intuitor"],
            cfg,
            seed,
            run_dir,
            steps=steps,
            lr=lr,
            guard="warn",
            guard_save_steps=10,
            save_only_model=True,
        )
        accuracy = checkpoint_accuracies(run_dir, cfg, max_step=steps // 2)  # the collapse is over by then
        result[f"seed{seed}"] = {
            "steps_run": trainer.state.global_step,
            **judge_run(run_dir, accuracy),
            "final_greedy_accuracy": _evaluate(trained, tok, cfg, None, seed=seed)["greedy_accuracy"],
        }
    return result


def _plots(out: Path, methods: dict, seeds: list[int]) -> None:
    from intuitor.analysis.curves import load_runs, plot_curves
    from intuitor.analysis.report import build_report

    runs = [out / f"{m}-seed{s}" for m in methods for s in seeds[:1]]
    plot_curves(load_runs([r for r in runs if (r / "metrics.jsonl").exists()]), out / "plots")
    build_report(out / "intuitor-seed0", out / "report.html", title="intuitor demo: INTUITOR, seed 0")
    build_report(
        [out / "base", *(out / f"{m}-seed{seeds[0]}" for m in methods)],
        out / "compare.html",
        title=f"intuitor demo: base vs each method, seed {seeds[0]}",
    )


def _fmt(summary: dict, key: str, pct: bool = True) -> str:
    v = summary[key]
    scale, digits = (100, 1) if pct else (1, 1)
    text = f"{v['mean'] * scale:.{digits}f}"
    if len(v["values"]) > 1:
        text += f"±{v['std'] * scale:.{digits}f}"
    return text


def print_table(report: dict, console) -> None:
    from rich.table import Table

    pre = report["precondition"]
    console.print(
        f"Precondition (base model, {pre['n_correct'] + pre['n_incorrect']} samples): {_preflight.summary_line(pre)}"
    )
    table = Table(
        title=f"Held-out 3-digit addition ({report['config']['eval_items']} problems, "
        f"{report['config']['seeds']} seed(s), mean ± std). Accuracy and style shares in %; "
        "style shares, length (tokens) and self-certainty (SC) over sampled responses."
    )
    for col in ("method", "greedy", "sampled", "length", "direct", "worked", "restate", "other", "SC"):
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    for method, summary in report["summary"].items():
        table.add_row(
            LABELS[method],
            _fmt(summary, "greedy_accuracy"),
            _fmt(summary, "sampled_accuracy"),
            _fmt(summary, "mean_length", pct=False),
            *[_fmt(summary, f"style_{s}") for s in (*STYLES, "other")],
            _fmt(summary, "self_certainty", pct=False),
        )
    console.print(table)
    t = report["targets"]
    for i, s in enumerate(t["per_seed"]):
        console.print(
            f"seed {i}: INTUITOR {100 * s['gain_over_base']:+.1f} points greedy over the base, "
            f"{100 * s['gap_to_grpo_gold']:.1f} points behind gold-answer GRPO: "
            f"{'target met' if s['met'] else 'target NOT met'} (>= +30, within 5)"
        )
    if "collapse" in report:
        for seed, c in report["collapse"].items():
            fired = (
                f"first alarm at step {c['first_alarm_step']} ({c['first_alarm']})"
                if c["first_alarm_step"]
                else "no alarm"
            )
            fall = f"step {c['fall_step']}" if c["fall_step"] else "never"
            kept = (
                f"{c['kept_checkpoint']} kept: {100 * c['kept_greedy_accuracy']:.1f}% greedy held-out"
                if c.get("kept_greedy_accuracy") is not None
                else "no checkpoint kept"
            )
            console.print(
                f"long run {seed}: {c['steps_run']} steps; train accuracy peak {100 * (c['peak'] or 0):.0f}% "
                f"at step {c['peak_step']}, 10 points below it at {fall}; {fired}; {kept} (best "
                f"{c['best_checkpoint']}: {100 * c['best_greedy_accuracy']:.1f}%); final greedy "
                f"{100 * c['final_greedy_accuracy']:.0f}%"
            )
    console.print(f"written to {report['config']['output_dir']} in {report['elapsed_s']:.0f} s")
