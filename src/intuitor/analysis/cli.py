"""The analysis commands: `intuitor analyze | curves | select | report | preflight`.

Plain functions with typer annotations; the top-level CLI registers them (`register(app)`), and this module's own
`app` runs them standalone (`python -m intuitor.analysis.cli --help`). Each prints a rich table and, with
`--json FILE`, writes the same numbers as JSON. Importing this module imports neither torch nor matplotlib.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the printed numbers to this JSON file.")]


def _console():
    from rich.console import Console

    return Console()


def _fail(message: str) -> typer.Exit:
    _console().print(f"[bold red]Error:[/] {message}", highlight=False)
    return typer.Exit(1)


def _f(v, digits: int = 3) -> str:
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def analyze(
    samples: Annotated[
        list[Path],
        typer.Argument(help="samples.jsonl files written by `intuitor eval` (or their folders), one per model."),
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", "-o", help="Where the PNGs go (default: FIRST_FILE_FOLDER/analysis).")
    ] = None,
    json_file: JsonOpt = None,
    answer_types: Annotated[
        bool | None,
        typer.Option(
            "--answer-types/--no-answer-types",
            help="Classify answer types for every task / none (default: code tasks only).",
        ),
    ] = None,
    min_reasoning_words: Annotated[
        int, typer.Option(help="Words of prose before the first code block that count as reasoning.")
    ] = 10,
    bins: Annotated[int, typer.Option(help="Histogram bins.")] = 30,
) -> dict:
    """Calibration of self-certainty: Mann-Whitney U, effect size r and AUROC of correct vs incorrect responses,
    histograms per model side by side (calibration.png), and answer types of code tasks (answer_types.png).
    --json writes {model: {p_value, effect_size_r, auroc, u_statistic, n_correct, n_incorrect, z, by_task, ...}}."""
    from rich.table import Table

    from intuitor.analysis import save_figure, write_json
    from intuitor.analysis.answer_types import ANSWER_TYPES, answer_types_figure
    from intuitor.analysis.calibration import analyze_models, calibration_figure, load_models

    try:
        loaded = load_models(samples)
        results = analyze_models(loaded, answer_types=answer_types, min_reasoning_words=min_reasoning_words)
        models = {label: rows for label, (_, rows) in loaded.items()}
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    out_dir = out_dir or (samples[0] if samples[0].is_dir() else samples[0].parent) / "analysis"
    fig = calibration_figure(models, bins, stats=results)
    figures = {"calibration": str(save_figure(fig, out_dir / "calibration.png"))}
    types = {f"{m} / {t}": c for m, r in results.items() for t, c in r.get("answer_types", {}).items()}
    if types:
        figures["answer_types"] = str(save_figure(answer_types_figure(types), out_dir / "answer_types.png"))

    table = Table(title="Self-certainty: correct vs incorrect (Mann-Whitney U)")
    for col in ("model", "task", "correct", "incorrect", "U", "AUROC", "r", "p", "SC correct", "SC incorrect"):
        table.add_column(col, justify="left" if col in ("model", "task") else "right")
    for label, r in results.items():
        if len(r["by_task"]) == 1:
            groups = [(next(iter(r["by_task"])) or "all", r)]
        else:
            groups = [("all", r), *r["by_task"].items()]
        for task, s in groups:
            table.add_row(
                label,
                task,
                str(s["n_correct"]),
                str(s["n_incorrect"]),
                _f(s["u_statistic"], 6),
                _f(s["auroc"]),
                _f(s["effect_size_r"]),
                _f(s["p_value"]),
                _f(s["mean_self_certainty_correct"], 4),
                _f(s["mean_self_certainty_incorrect"], 4),
            )
    console = _console()
    console.print(table)
    if types:
        t2 = Table(title="Answer types")
        t2.add_column("model / task")
        for t in ANSWER_TYPES:
            t2.add_column(t.replace("_", " "), justify="right")
        for key, c in types.items():
            t2.add_row(key, *(f"{c['fractions'][t]:.1%} ({c['counts'][t]})" for t in ANSWER_TYPES))
        console.print(t2)
    for name, path in figures.items():
        console.print(f"{name}: {path}", highlight=False)
    if json_file:
        write_json(results, json_file)
    return results


def curves(
    run_dirs: Annotated[list[Path], typer.Argument(help="Training run folders (each with metrics.jsonl), overlaid.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", "-o", help="Where the PNGs go (default: FIRST_RUN/plots).")
    ] = None,
    json_file: JsonOpt = None,
    smoothing: Annotated[float, typer.Option(help="Exponential moving average factor in [0, 1); 0 = raw.")] = 0.0,
) -> dict:
    """Training curves from metrics.jsonl (rewards, label accuracy, self-certainty, length, entropy, KL...): one PNG
    per metric family plus a grid (curves.png), several runs overlaid."""
    from rich.table import Table

    from intuitor.analysis import write_json
    from intuitor.analysis.curves import load_runs, plot_curves, summarize_metrics

    try:
        runs = load_runs(run_dirs)
        out_dir = out_dir or (run_dirs[0] if run_dirs[0].is_dir() else run_dirs[0].parent) / "plots"
        written = plot_curves(runs, out_dir, smoothing=smoothing)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    summaries = {label: summarize_metrics(rows) for label, rows in runs.items()}
    table = Table(title="Training metrics")
    for col in ("run", "metric", "points", "first", "last", "min", "max"):
        table.add_column(col, justify="left" if col in ("run", "metric") else "right")
    for label, s in summaries.items():
        for key, m in s["metrics"].items():
            table.add_row(label, key, str(m["n"]), *(_f(m[k], 4) for k in ("first", "last", "min", "max")))
    console = _console()
    console.print(table)
    if not written:
        console.print("[yellow]No plottable metric found.[/]")
    for name, path in written.items():
        console.print(f"{name}: {path}", highlight=False)
    payload = {"runs": summaries, "figures": {k: str(v) for k, v in written.items()}}
    if json_file:
        write_json(payload, json_file)
    return payload


class SelectMethod(str, Enum):
    self_certainty = "self_certainty"
    borda = "borda"
    majority = "majority"


def select(
    samples: Annotated[
        Path, typer.Argument(help="samples.jsonl from `intuitor eval` with K samples per item (or its folder).")
    ],
    method: Annotated[
        list[SelectMethod] | None,
        typer.Option("--method", "-m", help="Selection method(s); repeat for several (default: all)."),
    ] = None,
    power: Annotated[
        float,
        typer.Option("--power", "-p", help="Borda exponent p: rank r of N gives (N-r+1)^p votes; 0 = majority vote."),
    ] = 1.0,
    json_file: JsonOpt = None,
) -> dict:
    """Best-of-N: pick one answer per item by self-certainty, Borda voting or majority vote; compare with pass@1 and
    oracle pass@K."""
    from rich.table import Table

    from intuitor.analysis import read_jsonl, write_json
    from intuitor.analysis.select import METHODS, selection_accuracy

    methods = [m.value if isinstance(m, Enum) else str(m) for m in (method or METHODS)]
    try:
        path = samples / "samples.jsonl" if samples.is_dir() else samples
        result = selection_accuracy(read_jsonl(path), methods, power)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    tasks = sorted(result["pass@1"]["by_task"])
    table = Table(
        title=f"Best-of-N selection ({result['k']['max']} samples per item"
        + (f", min {result['k']['min']}" if result["k"]["min"] != result["k"]["max"] else "")
        + ")"
    )
    table.add_column("method")
    table.add_column("accuracy", justify="right")
    if len(tasks) > 1:
        for t in tasks:
            table.add_column(t, justify="right")
    table.add_column("items", justify="right")
    for name in [*methods, "pass@1", "pass@k"]:
        r = result[name]
        label = f"borda (p={power:g})" if name == "borda" else ("oracle pass@k" if name == "pass@k" else name)
        per_task = [_f(r["by_task"][t]["accuracy"], 4) for t in tasks] if len(tasks) > 1 else []
        table.add_row(label, _f(r["accuracy"], 4), *per_task, str(r["n_items"]))
    _console().print(table)
    if json_file:
        write_json(result, json_file)
    return result


def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders (config, metrics.jsonl, completions.jsonl, eval/SETTING/...). With several, "
            "the FIRST is the base: deltas and paired tests are against it (e.g. runs/demo/base)."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file to write (default: RUN/report.html; FIRST/compare.html)."),
    ] = None,
    n_steps: Annotated[int, typer.Option(help="Training steps to show rollouts from (first to last).")] = 3,
    per_step: Annotated[int, typer.Option(help="Rollouts shown per step (and 2x as many prompts side by side).")] = 2,
    json_file: JsonOpt = None,
) -> dict:
    """One self-contained HTML page (no scripts, no network) for one run or a comparison: config diff, curves
    overlaid, evaluation tables (accuracy, 95% interval, delta and McNemar test vs the base), calibration, answer
    types, and sample completions side by side."""
    from intuitor.analysis import write_json
    from intuitor.analysis.report import build_report
    from intuitor.layout import COMPLETIONS_FILE, METRICS_FILE, find_config, find_evals

    try:
        path = build_report(run_dirs, output, n_steps=n_steps, per_step=per_step)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    runs = {}
    for d in run_dirs:
        config = find_config(d)
        runs[str(d)] = {
            "config": str(config) if config else None,
            "metrics": (d / METRICS_FILE).is_file(),
            "completions": (d / COMPLETIONS_FILE).is_file(),
            "evals": {ref.label: str(ref.path) for ref in find_evals(d)},
        }
    payload = {"report": str(path), "size_bytes": path.stat().st_size, "base": str(run_dirs[0]), "runs": runs}
    _console().print(f"report: {path} ({payload['size_bytes'] / 1024:.0f} KiB)", highlight=False)
    if json_file:
        write_json(payload, json_file)
    return payload


def preflight(
    model: Annotated[
        str, typer.Argument(help="Hub id, folder, GGUF file, checkpoint, 'smollm2-gguf' or 'demo-base'.")
    ],
    task: Annotated[str, typer.Option("--task", "-t", help="A registered task with gold answers: gsm8k, addition...")],
    limit: Annotated[int, typer.Option(help="Prompts: the first N rows of the task.")] = 64,
    samples: Annotated[int, typer.Option(help="Responses per prompt K (best-of-K, agreement).")] = 8,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (> 0).")] = 1.0,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="Longest response in tokens (default: 40 for demo-base, as the demo; else 512).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Sequences per generate call (with --seed, fixes the samples).")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Base seed of sampling.")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the benchmark data, e.g. ../shared/data.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1... (default: cuda when available).")] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="Writes samples.jsonl, results.json and preflight.json here; a rerun resumes "
            "(default: runs/preflight/MODEL-TASK/eval/preflight, a run folder `intuitor report` reads)."
        ),
    ] = None,
) -> dict:
    """Before training: does the model's self-certainty tell its right answers from its wrong ones? Samples K
    responses per prompt, then prints accuracy, AUROC right vs wrong (Mann-Whitney p), best-of-K by self-certainty vs
    one sample vs majority, agreement, truncation and length, and a verdict with its reasons. The defaults are the
    demo's precondition: `intuitor preflight demo-base --task addition` prints its line."""
    from intuitor.analysis.preflight import MAX_NEW_TOKENS, summary_line
    from intuitor.analysis.preflight import preflight as run_preflight
    from intuitor.evaluation.cli import USER_ERRORS, _error_message
    from intuitor.layout import PREFLIGHT_FILE, PREFLIGHT_SETTING, eval_dir
    from intuitor.models import DEMO_BASE_ALIAS, DEMO_MAX_NEW_TOKENS

    if max_new_tokens is None:
        max_new_tokens = DEMO_MAX_NEW_TOKENS if model == DEMO_BASE_ALIAS else MAX_NEW_TOKENS
    name = Path(model.rstrip("/")).name.removesuffix(".gguf")
    output_dir = output_dir or eval_dir(Path("runs/preflight") / f"{name}-{task}", PREFLIGHT_SETTING)
    try:
        s = run_preflight(
            model,
            task,
            limit=limit,
            samples=samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
            output_dir=output_dir,
            data_dir=data_dir,
            device=device,
        )
    except USER_ERRORS as e:
        raise _fail(_error_message(e)) from None
    console = _console()
    k = s["k"]
    console.print(
        f"{model} on {task} ({s['n_samples']} samples: {s['n_items']} prompts x {k}, temperature "
        f"{temperature:g}, up to {max_new_tokens} tokens): {summary_line(s)}",
        highlight=False,
        soft_wrap=True,
    )
    rows = [
        ("accuracy (one sample)", s.get("accuracy"), True),
        (f"oracle pass@{k}", s.get(f"oracle_pass@{k}"), True),
        (f"best of {k} by self-certainty", s.get(f"best_of_{k}_self_certainty"), True),
        (f"majority of {k}", s.get(f"majority_of_{k}"), True),
        ("AUROC right vs wrong", s["auroc"], False),
        ("Mann-Whitney p", s["p_value"], False),
        ("effect size r", s["effect_size_r"], False),
        ("agreement within a prompt", s["agreement"], True),
        ("truncated", s["truncation_rate"], True),
        ("mean length (tokens)", s["mean_length"], False),
    ]
    for label, v, pct in rows:
        text = "n/a" if v is None or v != v else (f"{100 * v:.1f}%" if pct else _f(v, 3))
        console.print(f"  {label:32s} {text}", highlight=False)
    console.print(f"verdict: {s['verdict']}", highlight=False, soft_wrap=True)
    for reason in s["reasons"]:
        console.print(f"  - {reason}", highlight=False, soft_wrap=True)
    console.print(f"wrote {Path(output_dir) / PREFLIGHT_FILE}", highlight=False)
    return s


COMMANDS = {"analyze": analyze, "curves": curves, "select": select, "report": report, "preflight": preflight}


def register(app: typer.Typer) -> typer.Typer:
    """Add the analysis commands to a Typer app (the top-level `intuitor` CLI)."""
    for name, fn in COMMANDS.items():
        app.command(name)(fn)
    return app


app = register(typer.Typer(help="intuitor analysis commands", no_args_is_help=True, add_completion=False))

if __name__ == "__main__":
    app()
