"""One self-contained HTML page for one run or a comparison of runs: config diff, curves, evaluations, calibration,
answer types, sample completions side by side.

`build_report([BASE, RUN, ...])`: with several runs the FIRST is the base (a base model's folder such as the demo's
`runs/demo/base`, or any run): every evaluation table gives each run's delta against it and, where both scored the
same items with one response each, the exact McNemar test (`intuitor.analysis.compare`). Runs are read by the one
layout of `intuitor.layout` (run_config.json, config.json|yaml, metrics.jsonl, completions.jsonl, eval/SETTING/ and
eval/checkpoint-N/SETTING/ holding samples.jsonl + results.json); evaluations are compared setting by setting.

The page has no script and loads nothing: figures are PNGs embedded as base64 `data:` URIs, the style sheet is
inline, and a Content-Security-Policy meta tag forbids every other source, so it opens offline, from an e-mail
attachment or a CI artefact alike. Every piece of text read from the runs (config, prompts, completions, task and
checkpoint names) is HTML-escaped. A part that the runs lack becomes a short note naming the command that fills it,
never an error.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from intuitor.analysis import unique_labels
from intuitor.analysis.report_html import (
    CSP,
    CSS,
    SECTIONS,
    _cmd,
    _e,
    _hint,
    _img,
    _note,
    _num,
)
from intuitor.analysis.report_samples import _completions_section
from intuitor.analysis.runs import Run
from intuitor.layout import (
    PREFLIGHT_SETTING,
    EvalRef,
    eval_dir,
    eval_hint,
)


# ---------------------------------------------------------------- reading the runs

# Config keys that differ between any two runs without saying anything about them.
IGNORED_CONFIG_KEYS = {"output_dir", "logging_dir", "run_name", "hub_model_id"}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------- sections


def _config_section(runs: list[Run]) -> str:
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    where = "".join(f'<td class="l"><code>{_e(r.path)}</code></td>' for r in runs)
    kinds = "".join(
        f'<td class="l">{"training run" if r.metrics is not None else "evaluations only"}, '
        f"{len(r.evals)} evaluation(s)</td>"
        for r in runs
    )
    role = "".join(f'<td class="l">{"base" if i == 0 and len(runs) > 1 else "run"}</td>' for i, r in enumerate(runs))
    parts = [
        f'<table><tr><th class="l"></th>{head}</tr><tr><td class="l">folder</td>{where}</tr>'
        f'<tr><td class="l">role</td>{role}</tr><tr><td class="l">holds</td>{kinds}</tr></table>'
    ]
    flat = {r.label: _flatten(r.config) for r in runs if isinstance(r.config, dict)}
    if len(runs) > 1 and len(flat) > 1:
        keys = sorted({k for f in flat.values() for k in f} - IGNORED_CONFIG_KEYS)
        keys = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat.values()}) > 1]
        keys = [k for k in keys if k.split(".")[-1] not in IGNORED_CONFIG_KEYS]
        if keys:

            def value(r: Run, k: str) -> str:
                return _e(json.dumps(flat[r.label].get(k), default=str)) if r.label in flat else "&ndash;"

            rows = "".join(
                f'<tr><td class="l">{_e(k)}</td>'
                + "".join(f'<td class="l">{value(r, k)}</td>' for r in runs)
                + "</tr>"
                for k in keys
            )
            parts.append(f'<h3>Config differences</h3><table><tr><th class="l">field</th>{head}</tr>{rows}</table>')
        else:
            parts.append(_note("The configs of these runs are identical (output folders aside)."))
    for r in runs:
        if r.config_path is None:
            continue
        text = json.dumps(r.config, indent=2, ensure_ascii=False) if isinstance(r.config, dict) else r.config
        if r.config_path.suffix != ".json":
            text = r.config_path.read_text(encoding="utf-8")
        parts.append(
            f"<details><summary>{_e(r.label)}: full config from <code>{_e(r.config_path.name)}</code>"
            f"</summary><pre>{_e(text)}</pre></details>"
        )
    if not any(r.config_path for r in runs):
        parts.append(
            _note("No run_config.json (nor config.json|yaml) in the run folder(s): `intuitor train` writes one.")
        )
    return "".join(parts)


def _curves_section(runs: list[Run]) -> str:
    from intuitor.analysis.curves import curves_grid_figure, summarize_metrics

    with_metrics = {r.label: r.metrics for r in runs if r.metrics}
    if not with_metrics:
        return _hint(
            "No metrics.jsonl in the run folder(s): training writes one per run, e.g.",
            ["intuitor train recipes/tiny-cpu.yaml --output_dir RUN"],
        )
    fig = curves_grid_figure(with_metrics)
    parts = [_img(fig, "training curves") if fig is not None else _note("No plottable metric in metrics.jsonl.")]
    skipped = [r.label for r in runs if not r.metrics]
    if skipped:
        parts.append(_note(f"No training curves for {', '.join(skipped)} (no metrics.jsonl: not a training run)."))
    for label, rows in with_metrics.items():
        summary = summarize_metrics(rows)
        body = "".join(
            f'<tr><td class="l">{_e(k)}</td><td>{s["n"]}</td><td>{_num(s["first"])}</td><td>{_num(s["last"])}</td>'
            f"<td>{_num(s['min'])}</td><td>{_num(s['max'])}</td><td>{_num(s['last_step'])}</td></tr>"
            for k, s in summary["metrics"].items()
        )
        parts.append(
            f"<details><summary>{_e(label)}: all logged metrics (first / last / min / max)</summary><table>"
            '<tr><th class="l">metric</th><th>points</th><th>first</th><th>last</th><th>min</th><th>max</th>'
            f"<th>last step</th></tr>{body}</table></details>"
        )
    return "".join(parts)


def _settings(runs: list[Run]) -> dict[str, list[tuple[Run, EvalRef]]]:
    """{setting: [(run, evaluation)...]}: runs in the given order, each run's checkpoints in layout order."""
    out: dict[str, list] = {}
    for r in runs:
        for ref in r.evals:
            out.setdefault(ref.setting, []).append((r, ref))
    return out


def _base_label(base: Run, ref: EvalRef) -> str | None:
    """The base's evaluation to compare `ref` with: the same checkpoint and setting, else its final model's."""
    labels = {x.label: x for x in base.evals}
    if ref.label in labels:
        return ref.label
    return next((x.label for x in base.evals if x.setting == ref.setting and x.checkpoint == "final"), None)


def _accuracy_of(run: Run, label: str) -> dict[str, dict]:
    """{task: accuracy numbers} from samples.jsonl, else from results.json (score x n)."""
    from intuitor.analysis.compare import task_accuracy, wilson_interval

    if label in run.samples:
        found = task_accuracy(run.samples[label])
        if found:
            return found
    out = {}
    for task, res in ((run.results.get(label) or {}).get("tasks") or {}).items():
        if isinstance(res, dict) and isinstance(res.get("score"), (int, float)) and isinstance(res.get("n"), int):
            k = round(res["score"] * res["n"])
            low, high = wilson_interval(k, res["n"])
            out[task] = {
                "accuracy": res["score"],
                "k": k,
                "n": res["n"],
                "low": low,
                "high": high,
                "samples_per_item": res.get("num_samples", 1),
            }
    return out


def _fill_command(run_dir: Path, setting: str, task: str, config: dict | None) -> str:
    """The command that writes RUN/eval/SETTING with the settings another run's results.json records."""
    config = config if isinstance(config, dict) else {}
    flags = ""
    for key, flag in (
        ("limit", "--limit"),
        ("samples", "--samples"),
        ("temperature", "--temperature"),
        ("max_new_tokens", "--max-new-tokens"),
    ):
        if config.get(key) is not None:
            flags += f" {flag} {config[key]:g}" if isinstance(config[key], float) else f" {flag} {config[key]}"
    if setting == PREFLIGHT_SETTING:  # intuitor preflight takes the same flags (and --task)
        out = eval_dir(run_dir, setting).as_posix()
        return f"intuitor preflight {run_dir.as_posix()} --task {task}{flags} --output-dir {out}"
    return eval_hint(run_dir, setting, task, flags)


def _evaluation_section(runs: list[Run]) -> str:
    from intuitor.analysis.compare import paired

    settings = _settings(runs)
    if not settings:
        return _hint(
            "No evaluation in the run folder(s) (looked for eval/SETTING/results.json and samples.jsonl, "
            "see intuitor.layout). Fill it with:",
            [eval_hint(r.path, task=r.task_hint) for r in runs],
        )
    base = runs[0] if len(runs) > 1 else None
    parts = [
        "<p>Accuracy over scored responses with its 95% Wilson interval (with K samples per item the n "
        "responses are not independent: the interval is then too narrow). "
        + (
            "&Delta;: points against the base (the first run). Paired: exact McNemar test over the items both "
            "scored with one response each; b = right for the base only, c = right for this run only.</p>"
            if base
            else "</p>"
        )
    ]
    width = 8 if base else 4
    for setting, members in settings.items():
        acc = {(r.label, ref.label): _accuracy_of(r, ref.label) for r, ref in members}
        tasks = sorted({t for a in acc.values() for t in a})
        for task in tasks:
            head = "<th>accuracy</th><th>95% interval</th><th>n</th><th>K</th>"
            if base:
                head += "<th>&Delta; vs base</th><th>paired n</th><th>b / c</th><th>McNemar p</th>"
            rows = []
            for r, ref in members:
                a = acc[(r.label, ref.label)].get(task)
                name = _e(r.label) + (
                    "" if ref.checkpoint == "final" else f' <span class="meta">{_e(ref.checkpoint)}</span>'
                )
                if a is None:
                    rows.append(
                        f'<tr><td class="l">{name}</td><td colspan="{width}" class="l"><span class="note">'
                        f"{_e(task)} not in this evaluation</span></td></tr>"
                    )
                    continue
                cells = (
                    f"<td>{100 * a['accuracy']:.1f}%</td><td>{100 * a['low']:.1f}&ndash;{100 * a['high']:.1f}%"
                    f"</td><td>{a['n']}</td><td>{_e(a['samples_per_item'])}</td>"
                )
                if base and r is base:
                    cells += "<td>base</td><td></td><td></td><td></td>"
                elif base:
                    other = _base_label(base, ref)
                    ref_acc = _accuracy_of(base, other).get(task) if other else None
                    delta = f"{100 * (a['accuracy'] - ref_acc['accuracy']):+.1f}" if ref_acc else "&ndash;"
                    p = paired(base.samples.get(other, []), r.samples.get(ref.label, [])).get(task) if other else None
                    cells += f"<td>{delta}</td>" + (
                        f"<td>{p['n']}</td><td>{p['b']} / {p['c']}</td><td>{_num(p['p'], 3)}</td>"
                        if p
                        else "<td>&ndash;</td><td>&ndash;</td><td>&ndash;</td>"
                    )
                rows.append(f'<tr><td class="l">{name}</td>{cells}</tr>')
            evaluated = {r.label for r, _ in members}
            first, first_ref = members[0]
            for r in runs:  # a run without this evaluation: the command that adds it, with the same settings
                if r.label not in evaluated:
                    cmd = _fill_command(
                        r.path, setting, task, (first.results.get(first_ref.label) or {}).get("config")
                    )
                    weights = "" if r.has_model else ' <span class="note">(once the folder holds the model)</span>'
                    rows.append(
                        f'<tr><td class="l">{_e(r.label)}</td><td colspan="{width}" class="l">'
                        f'<span class="note">not evaluated: </span>{_cmd(cmd)}{weights}</td></tr>'
                    )
            parts.append(
                f"<h3>{_e(task)} &middot; {_e(setting)}</h3>"
                f'<table><tr><th class="l">run</th>{head}</tr>{"".join(rows)}</table>'
            )
    return "".join(parts)


def _calibration_section(runs: list[Run]) -> str:
    from intuitor.analysis.calibration import calibration_figure, calibration_stats

    panels = {f"{r.label} · {label}": rows for r in runs for label, rows in r.samples.items()}
    panels = {k: v for k, v in panels.items() if any(isinstance(x.get("correct"), bool) for x in v)}
    if not panels:
        return _hint(
            "No scored eval samples in the run folder(s). Sampled responses show it best, e.g.:",
            [eval_hint(r.path, "sampled", r.task_hint, " --samples 8 --temperature 1.0") for r in runs],
        )
    stats = {label: calibration_stats(rows) for label, rows in panels.items()}
    rows = "".join(
        f'<tr><td class="l">{_e(label)}</td><td>{s["n_correct"]}</td><td>{s["n_incorrect"]}</td>'
        f"<td>{_num(s['auroc'], 3)}</td><td>{_num(s['effect_size_r'], 3)}</td><td>{_num(s['p_value'], 3)}</td>"
        f"<td>{_num(s['mean_self_certainty_correct'])}</td><td>{_num(s['mean_self_certainty_incorrect'])}</td></tr>"
        for label, s in stats.items()
    )
    verdicts = "".join(
        f"<li><b>{_e(r.label)} &middot; {_e(label)}</b>: {_e(pf.get('verdict', ''))}</li>"
        for r in runs
        for label, pf in r.preflight.items()
    )
    return (
        "<p>Self-certainty of correct vs incorrect responses, per run and evaluation. AUROC: probability that a "
        "correct response is more self-certain than an incorrect one (0.5 = chance); r = Z/&radic;N of the "
        "Mann-Whitney U test (paper Fig. 8).</p>"
        + _img(calibration_figure(panels, stats=stats), "calibration histograms")
        + '<table><tr><th class="l">run &middot; evaluation</th><th>correct</th><th>incorrect</th><th>AUROC</th>'
        f"<th>r</th><th>p</th><th>mean SC correct</th><th>mean SC incorrect</th></tr>{rows}</table>"
        + (f"<p>Preflight verdicts (<code>intuitor preflight</code>):</p><ul>{verdicts}</ul>" if verdicts else "")
    )


def _answer_types_section(runs: list[Run]) -> str:
    from intuitor.analysis.answer_types import (
        ANSWER_TYPES,
        answer_type_counts,
        answer_types_figure,
        is_code_task,
    )

    per = {}
    for r in runs:
        for label, rows in r.samples.items():
            for task in sorted({str(x.get("task", "")) for x in rows if is_code_task(str(x.get("task", "")))}):
                per[f"{r.label} · {label} / {task}"] = answer_type_counts(
                    [x for x in rows if str(x.get("task", "")) == task]
                )
    if not per:
        return _hint(
            "Answer types (no valid code / code without reasoning / reasoning then code, paper Fig. 6) are "
            "counted for code tasks; none was evaluated. For example:",
            [eval_hint(runs[-1].path, "humaneval", "humaneval", " --max-new-tokens 512")],
        )
    head = "".join(f"<th>{_e(t.replace('_', ' '))}</th>" for t in ANSWER_TYPES)
    body = "".join(
        f'<tr><td class="l">{_e(k)}</td>'
        + "".join(f"<td>{c['fractions'][t]:.1%} ({c['counts'][t]})</td>" for t in ANSWER_TYPES)
        + "</tr>"
        for k, c in per.items()
    )
    return _img(answer_types_figure(per), "answer types") + (
        f'<table><tr><th class="l">run &middot; evaluation / task</th>{head}</tr>{body}</table>'
    )


def build_report(
    run_dirs: str | Path | list[str | Path],
    out_path: str | Path | None = None,
    n_steps: int = 3,
    per_step: int = 2,
    title: str | None = None,
) -> Path:
    """Write the HTML report of one run, or of several (the first is the base), to `out_path`; returns its path.

    Default `out_path`: RUN/report.html for one run, FIRST_RUN/compare.html for several. n_steps: training steps
    to show rollouts from (spread first to last); per_step: rollouts shown at each (and 2 x per_step prompts side
    by side from the evaluations).
    """
    paths = [Path(p) for p in ([run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs)]
    if not paths:
        raise ValueError("no run folder given")
    for p in paths:
        if not p.is_dir():
            raise FileNotFoundError(f"run folder not found: {p}")
    labels = unique_labels([p.resolve().name for p in paths])
    runs = [Run(p, label) for p, label in zip(paths, labels)]
    out_path = Path(out_path) if out_path else paths[0] / ("report.html" if len(paths) == 1 else "compare.html")
    name = title or (labels[0] if len(runs) == 1 else f"{labels[0]} vs {', '.join(labels[1:])}")
    bodies = {
        "config": _config_section(runs),
        "curves": _curves_section(runs),
        "evaluation": _evaluation_section(runs),
        "calibration": _calibration_section(runs),
        "answer-types": _answer_types_section(runs),
        "completions": _completions_section(runs, n_steps, per_step),
    }
    nav = "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{_e(t)}</h2>{bodies[sid]}</section>' for sid, t in SECTIONS)
    from intuitor import __version__

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    where = " &middot; ".join(_e(p) for p in paths)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>intuitor report: {_e(name)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(name)}</h1>"
        f'<p class="meta">{where} &middot; generated {stamp} by intuitor {_e(__version__)}</p>'
        f"<nav>{nav}</nav>{sections}</body></html>\n"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path
