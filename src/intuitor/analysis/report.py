"""One self-contained HTML page per training run: config, curves, evaluations, calibration, sample completions.

The page has no script and loads nothing: figures are PNGs embedded as base64 `data:` URIs, the style sheet is
inline, and a Content-Security-Policy meta tag forbids every other source, so it opens offline, from an e-mail
attachment or a CI artefact alike. Every piece of text read from the run (config, prompts, completions, task and
checkpoint names) is HTML-escaped. A part that the run folder lacks becomes a short note, never an error.

Read from RUN_DIR: `config.json` or `config.yaml` (the resolved config), `metrics.jsonl`, `eval/*/results.json`
and `eval/*/samples.jsonl` (one folder per evaluated checkpoint; `eval/` itself may also be one), and
`completions.jsonl` (sampled completions during training: {"step", "prompt", "completion", "reward"...}).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from pathlib import Path

from intuitor.analysis import figure_png, natural_key, png_data_uri, read_jsonl

MAX_TEXT_CHARS = 3000

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#666;font-size:.9rem}nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6rem;overflow-x:auto;white-space:pre-wrap;
word-break:break-word;font-size:.82rem;max-height:28rem;overflow-y:auto}
img{max-width:100%;height:auto;border:1px solid #eee}
.note{color:#777;font-style:italic}.ok{color:#1a7f37}.bad{color:#cf222e}
details{margin:.4rem 0}summary{cursor:pointer}
.completion{border-left:3px solid #ccc;padding-left:.8rem;margin:.8rem 0}
"""

# No script, no remote anything: only inline styles and data: images may load.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

SECTIONS = (
    ("config", "Configuration"),
    ("curves", "Training curves"),
    ("evaluation", "Evaluation"),
    ("calibration", "Calibration of self-certainty"),
    ("answer-types", "Answer types (code tasks)"),
    ("completions", "Sample completions"),
)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _img(fig, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{png_data_uri(figure_png(fig))}">'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _num(v, digits: int = 4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _e(v) if v is not None else "&ndash;"
    if isinstance(v, float) and not math.isfinite(v):
        return "&ndash;"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _text_of(value) -> str:
    """Prompts may be strings or chat messages [{"role", "content"}]; completions likewise."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in value)
    return json.dumps(value, ensure_ascii=False, indent=1)


# ---------------------------------------------------------------- reading the run


def find_config(run_dir: Path) -> tuple[Path, str] | None:
    for name in ("config.json", "config.yaml", "config.yml"):
        p = run_dir / name
        if p.is_file():
            text = p.read_text(encoding="utf-8")
            if p.suffix == ".json":
                try:
                    text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
                except json.JSONDecodeError:
                    pass
            return p, text
    return None


def find_evals(run_dir: Path) -> dict[str, Path]:
    """{checkpoint label: eval folder} for eval/ and each eval/* holding results.json or samples.jsonl, ordered."""
    root = run_dir / "eval"
    found = {}
    if not root.is_dir():
        return found
    has = lambda d: (d / "results.json").is_file() or (d / "samples.jsonl").is_file()  # noqa: E731
    if has(root):
        found["eval"] = root
    for d in sorted((d for d in root.iterdir() if d.is_dir() and has(d)), key=lambda d: natural_key(d.name)):
        found[d.name] = d
    return found


# ---------------------------------------------------------------- sections


def _config_section(run_dir: Path) -> str:
    found = find_config(run_dir)
    if not found:
        return _note("No config.json or config.yaml in the run folder.")
    path, text = found
    return f"<p>From <code>{_e(path.name)}</code>.</p><pre>{_e(text)}</pre>"


def _curves_section(run_dir: Path) -> str:
    from intuitor.analysis.curves import curves_grid_figure, read_metrics, summarize_metrics

    try:
        rows = read_metrics(run_dir)
    except FileNotFoundError:
        return _note("No metrics.jsonl in the run folder.")
    if not rows:
        return _note("metrics.jsonl is empty.")
    fig = curves_grid_figure({run_dir.name: rows})
    parts = [_img(fig, "training curves") if fig is not None else _note("No plottable metric in metrics.jsonl.")]
    summary = summarize_metrics(rows)
    body = "".join(
        f'<tr><td class="l">{_e(k)}</td><td>{s["n"]}</td><td>{_num(s["first"])}</td><td>{_num(s["last"])}</td>'
        f"<td>{_num(s['min'])}</td><td>{_num(s['max'])}</td><td>{_num(s['last_step'])}</td></tr>"
        for k, s in summary["metrics"].items()
    )
    parts.append(
        "<details><summary>All logged metrics (first / last / min / max)</summary><table>"
        '<tr><th class="l">metric</th><th>points</th><th>first</th><th>last</th><th>min</th><th>max</th>'
        f"<th>last step</th></tr>{body}</table></details>"
    )
    return "".join(parts)


def _evaluation_section(evals: dict[str, Path]) -> str:
    results = {}
    for label, d in evals.items():
        p = d / "results.json"
        if p.is_file():
            try:
                results[label] = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                results[label] = {"error": f"{p}: malformed JSON ({e.msg})"}
    if not results:
        return _note("No eval/*/results.json in the run folder (run `intuitor eval ... --out-dir RUN_DIR/eval/NAME`).")
    tasks = sorted({t for r in results.values() for t in (r.get("tasks") or {})})
    head = "".join(f"<th>{_e(t)}</th>" for t in tasks)
    rows = []
    for label, r in results.items():
        cells = []
        for t in tasks:
            res = (r.get("tasks") or {}).get(t)
            if not isinstance(res, dict):
                cells.append("<td>&ndash;</td>")
                continue
            n = f' <span class="meta">(n={_e(res["n"])})</span>' if "n" in res else ""
            cells.append(f"<td>{_num(res.get('score'))}{n}</td>")
        model = f'<br><span class="meta">{_e(r["model"])}</span>' if r.get("model") else ""
        err = f'<br><span class="bad">{_e(r["error"])}</span>' if r.get("error") else ""
        rows.append(f'<tr><td class="l">{_e(label)}{model}{err}</td>{"".join(cells)}</tr>')
    return f'<table><tr><th class="l">checkpoint</th>{head}</tr>{"".join(rows)}</table>'


def _load_eval_samples(evals: dict[str, Path]) -> dict[str, list[dict]]:
    out = {}
    for label, d in evals.items():
        p = d / "samples.jsonl"
        if p.is_file():
            out[label] = read_jsonl(p)
    return out


def _calibration_section(samples: dict[str, list[dict]]) -> str:
    from intuitor.analysis.calibration import calibration_figure, calibration_stats

    if not samples:
        return _note("No eval/*/samples.jsonl in the run folder.")
    stats = {label: calibration_stats(rows) for label, rows in samples.items()}
    rows = "".join(
        f'<tr><td class="l">{_e(label)}</td><td>{s["n_correct"]}</td><td>{s["n_incorrect"]}</td>'
        f"<td>{_num(s['auroc'], 3)}</td><td>{_num(s['effect_size_r'], 3)}</td><td>{_num(s['p_value'], 3)}</td>"
        f"<td>{_num(s['mean_self_certainty_correct'])}</td><td>{_num(s['mean_self_certainty_incorrect'])}</td></tr>"
        for label, s in stats.items()
    )
    return (
        "<p>Self-certainty of correct vs incorrect responses. AUROC: probability that a correct response is more "
        "self-certain than an incorrect one (0.5 = chance); r = Z/&radic;N of the Mann-Whitney U test (paper Fig. 8)."
        "</p>"
        + _img(calibration_figure(samples, stats=stats), "calibration histograms")
        + '<table><tr><th class="l">checkpoint</th><th>correct</th><th>incorrect</th><th>AUROC</th><th>r</th>'
        f"<th>p</th><th>mean SC correct</th><th>mean SC incorrect</th></tr>{rows}</table>"
    )


def _answer_types_section(samples: dict[str, list[dict]]) -> str:
    from intuitor.analysis.answer_types import ANSWER_TYPES, answer_type_counts, answer_types_figure, is_code_task

    per = {}
    for label, rows in samples.items():
        for task in sorted({str(r.get("task", "")) for r in rows if is_code_task(str(r.get("task", "")))}):
            per[f"{label} / {task}"] = answer_type_counts([r for r in rows if str(r.get("task", "")) == task])
    if not per:
        return _note("No code task among the evaluations.")
    head = "".join(f"<th>{_e(t.replace('_', ' '))}</th>" for t in ANSWER_TYPES)
    body = "".join(
        f'<tr><td class="l">{_e(k)}</td>'
        + "".join(f"<td>{c['fractions'][t]:.1%} ({c['counts'][t]})</td>" for t in ANSWER_TYPES)
        + "</tr>"
        for k, c in per.items()
    )
    return _img(answer_types_figure(per), "answer types") + (
        f'<table><tr><th class="l">checkpoint / task</th>{head}</tr>{body}</table>'
    )


def _pick_steps(steps: list, n: int) -> list:
    """Up to n steps spread evenly from the first to the last.

    >>> _pick_steps([0, 10, 20, 30, 40], 3)
    [0, 20, 40]
    """
    if len(steps) <= n:
        return steps
    if n == 1:
        return [steps[-1]]
    return [steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)]


def _completion_html(prompt, completion, fields: dict) -> str:
    extra = " ".join(f"<b>{_e(k)}</b>={_num(v)}" for k, v in fields.items())
    return (
        f'<div class="completion"><div class="meta">{extra}</div>'
        f"<details><summary>prompt</summary><pre>{_e(_truncate(_text_of(prompt)))}</pre></details>"
        f"<pre>{_e(_truncate(_text_of(completion)))}</pre></div>"
    )


def _completions_section(run_dir: Path, samples: dict[str, list[dict]], n_steps: int, per_step: int) -> str:
    parts = []
    path = run_dir / "completions.jsonl"
    if path.is_file():
        rows = read_jsonl(path, allow_partial_last_line=True)
        by_step: dict = {}
        for r in rows:
            by_step.setdefault(r.get("step"), []).append(r)
        numeric = lambda s: isinstance(s, (int, float)) and not isinstance(s, bool)  # noqa: E731
        steps = sorted(by_step, key=lambda s: (0, s, "") if numeric(s) else (1, 0, str(s)))
        parts.append(f'<h3>During training <span class="meta">({_e(path.name)})</span></h3>')
        for step in _pick_steps(steps, n_steps):
            parts.append(f"<h4>step {_e(step)}</h4>")
            for r in by_step[step][:per_step]:
                fields = {
                    k: v
                    for k, v in r.items()
                    if k not in ("step", "prompt", "completion")
                    and isinstance(v, (int, float, bool, str))
                    and len(str(v)) < 80
                }
                parts.append(_completion_html(r.get("prompt", ""), r.get("completion", ""), fields))
    if samples:
        parts.append("<h3>Evaluation responses</h3>")
        for label in _pick_steps(list(samples), n_steps):
            rows = [r for r in samples[label] if r.get("sample", 0) == 0][:per_step] or samples[label][:per_step]
            parts.append(f"<h4>{_e(label)}</h4>")
            for r in rows:
                ok = r.get("correct")
                fields = {
                    "task": r.get("task"),
                    "id": r.get("id"),
                    "answer": r.get("answer"),
                    "correct": ok,
                    "self_certainty": r.get("self_certainty"),
                    "num_tokens": r.get("num_tokens"),
                }
                parts.append(
                    _completion_html(
                        r.get("prompt", ""), r.get("response", ""), {k: v for k, v in fields.items() if v is not None}
                    )
                )
    return "".join(parts) or _note("No completions.jsonl and no eval samples in the run folder.")


def build_report(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    n_steps: int = 3,
    per_step: int = 2,
    title: str | None = None,
) -> Path:
    """Write the HTML report of `run_dir` to `out_path` (default RUN_DIR/report.html); returns its path.

    n_steps: how many training steps / checkpoints to show completions from (spread first to last);
    per_step: completions shown at each.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    out_path = Path(out_path) if out_path else run_dir / "report.html"
    evals = find_evals(run_dir)
    samples = _load_eval_samples(evals)
    name = title or run_dir.resolve().name
    bodies = {
        "config": _config_section(run_dir),
        "curves": _curves_section(run_dir),
        "evaluation": _evaluation_section(evals),
        "calibration": _calibration_section(samples),
        "answer-types": _answer_types_section(samples),
        "completions": _completions_section(run_dir, samples, n_steps, per_step),
    }
    nav = "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{_e(t)}</h2>{bodies[sid]}</section>' for sid, t in SECTIONS)
    from intuitor import __version__

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>intuitor report: {_e(name)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(name)}</h1>"
        f'<p class="meta">{_e(run_dir.resolve())} &middot; generated {stamp} by intuitor {_e(__version__)}</p>'
        f"<nav>{nav}</nav>{sections}</body></html>\n"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path
