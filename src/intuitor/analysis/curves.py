"""Training curves from `metrics.jsonl`: rewards, label accuracy, self-certainty, length, entropy, KL over steps.

A run folder holds `metrics.jsonl`, one JSON object per logging step (`step`, `epoch` and metric keys). Keys are
gathered into *families* (one panel / PNG each) by glob patterns, so that both TRL's names
(`rewards/self_certainty/mean`) and intuitor's namespaced ones (`reward/self_certainty/mean`) land in the same
plot. Only what exists is plotted: a family none of whose keys appear is skipped, and numeric keys that match no
family are listed under `unplotted` in the summary. Several runs are overlaid: one colour per run, one line
style per key. The x axis is `step` (the row number where a row has none).
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

from intuitor.analysis import new_figure, read_jsonl, save_figure, unique_labels


# (family, title, patterns): a key joins the first family one of whose patterns it matches. Keys cover TRL's logs
# (`reward`, `rewards/<f>/mean`, `completions/mean_length`, `entropy`, `kl`...) and IntuitorTrainer's
# (`self_certainty/mean`, `token_entropy/mean`, `completions/repetition_rate`, `completions/agreement`,
# `rewards/<f>/raw_mean`, `alignment/<f>/auroc|top1`).
FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "accuracy",
        "Label accuracy",
        ("label_accuracy", "reward*/accuracy*/mean", "reward*/accuracy*/raw_mean", "eval/*/accuracy"),
    ),
    (
        "self_certainty",
        "Self-certainty",
        ("self_certainty", "self_certainty/mean", "reward*/self_certainty*/mean", "reward*/self_certainty*/raw_mean"),
    ),
    ("rewards", "Rewards", ("reward", "reward*/*/mean", "reward*/*/raw_mean")),
    ("std", "Standard deviations", ("reward_std", "reward*/*/std", "reward*/*/raw_std", "self_certainty/std")),
    ("length", "Completion length (tokens)", ("completions/*length*",)),
    ("clipped_ratio", "Completions clipped at max length", ("completions/clipped_ratio",)),
    ("entropy", "Token entropy", ("entropy", "entropy/mean", "token_entropy", "token_entropy/mean")),
    ("kl", "KL to reference", ("kl", "kl/mean")),
    ("repetition", "Repetition rate", ("repetition_rate", "*/repetition_rate")),
    ("agreement", "Group answer agreement", ("agreement", "*/agreement")),
    # Label-aware checks of every reward (IntuitorTrainer, when an `accuracy` reward gives the gold): within-group
    # AUROC of the reward against correctness, and the share of groups whose top-rewarded sample is right.
    ("alignment_auroc", "Alignment: within-group AUROC vs correctness", ("alignment/*/auroc",)),
    ("alignment_top1", "Alignment: top-rewarded sample right", ("alignment/*/top1",)),
    ("loss", "Loss", ("loss",)),
    ("grad_norm", "Gradient norm", ("grad_norm",)),
    ("learning_rate", "Learning rate", ("learning_rate",)),
)
X_KEYS = ("step", "epoch", "global_step")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STYLES = ("-", "--", ":", "-.")


def read_metrics(run: str | Path) -> list[dict]:
    """Rows of `RUN/metrics.jsonl` (or of a given .jsonl file) by step; a half-written last line is skipped."""
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.jsonl"
    rows = read_jsonl(path, allow_partial_last_line=True)
    steps = [_step(r, i) for i, r in enumerate(rows)]
    return [r for _, _, r in sorted(zip(steps, range(len(rows)), rows), key=lambda t: (t[0], t[1]))]


def _step(row: dict, index: int) -> float:
    s = row.get("step", row.get("global_step"))
    return float(s) if _number(s) else float(index)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def family_of(key: str) -> str | None:
    """The family a metric key is plotted in, or None.

    >>> family_of("rewards/self_certainty/mean"), family_of("reward"), family_of("completions/mean_length")
    ('self_certainty', 'rewards', 'length')
    >>> family_of("rewards/accuracy/mean"), family_of("step")
    ('accuracy', None)
    """
    if key in X_KEYS:
        return None
    for name, _, patterns in FAMILIES:
        if any(fnmatch.fnmatchcase(key, p) for p in patterns):
            return name
    return None


def series(rows: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """{key: (steps, values)} for every numeric, finite metric value in `rows` (keys in order of first appearance)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, row in enumerate(rows):
        x = _step(row, i)
        for key, v in row.items():
            if key in X_KEYS or not _number(v):
                continue
            xs, ys = out.setdefault(key, ([], []))
            xs.append(x)
            ys.append(float(v))
    return out


def summarize_metrics(rows: list[dict]) -> dict:
    """{"metrics": {key: {n, first, last, min, max, last_step}}, "families": {family: [keys]}, "unplotted": [keys]}."""
    metrics, families, unplotted = {}, {}, []
    for key, (xs, ys) in series(rows).items():
        metrics[key] = {
            "n": len(ys),
            "first": ys[0],
            "last": ys[-1],
            "min": min(ys),
            "max": max(ys),
            "last_step": xs[-1],
        }
        fam = family_of(key)
        if fam is None:
            unplotted.append(key)
        else:
            families.setdefault(fam, []).append(key)
    return {"n_rows": len(rows), "metrics": metrics, "families": families, "unplotted": unplotted}


def load_runs(run_dirs: list[str | Path]) -> dict[str, list[dict]]:
    """{label: metric rows} with labels = run folder names (made unique), in the given order."""
    paths = [Path(p) for p in run_dirs]
    labels = [(p.name if p.is_dir() else p.parent.name) or str(p) for p in paths]
    return dict(zip(unique_labels(labels), (read_metrics(p) for p in paths)))


def _ema(ys: list[float], smoothing: float) -> list[float]:
    if smoothing <= 0:
        return ys
    out, acc = [], ys[0]
    for y in ys:
        acc = smoothing * acc + (1 - smoothing) * y
        out.append(acc)
    return out


def _draw_family(ax, runs: dict[str, dict], family: str, title: str, smoothing: float) -> bool:
    drawn = False
    keys = [k for per_run in runs.values() for k in per_run if family_of(k) == family]
    keys = list(dict.fromkeys(keys))
    for r, (label, per_run) in enumerate(runs.items()):
        for k, key in enumerate(keys):
            if key not in per_run:
                continue
            xs, ys = per_run[key]
            name = label if len(keys) == 1 else (key if len(runs) == 1 else f"{label}: {key}")
            ax.plot(
                xs,
                _ema(ys, smoothing),
                color=COLORS[r % len(COLORS)],
                linestyle=STYLES[k % len(STYLES)],
                marker="." if len(xs) < 30 else None,
                label=name,
            )
            drawn = True
    if drawn:
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if len(keys) > 1 or len(runs) > 1:
            ax.legend(fontsize=7)
        if family == "learning_rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    return drawn


def present_families(runs: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """(family, title) of the families with at least one key in at least one run, in FAMILIES order."""
    keys = {k for rows in runs.values() for k in series(rows)}
    present = {family_of(k) for k in keys} - {None}
    return [(name, title) for name, title, _ in FAMILIES if name in present]


def curves_grid_figure(runs: dict[str, list[dict]], smoothing: float = 0.0, ncols: int = 3):
    """All present families as panels of one figure (None when nothing plottable exists)."""
    fams = present_families(runs)
    if not fams:
        return None
    per_run = {label: series(rows) for label, rows in runs.items()}
    ncols = min(ncols, len(fams))
    nrows = math.ceil(len(fams) / ncols)
    fig = new_figure(4.6 * ncols, 3.3 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (fam, title) in zip(axes, fams):
        _draw_family(ax, per_run, fam, title, smoothing)
    for ax in axes[len(fams) :]:
        ax.set_axis_off()
    return fig


def plot_curves(
    runs: dict[str, list[dict]] | list[str | Path], out_dir: str | Path, smoothing: float = 0.0
) -> dict[str, Path]:
    """Write one PNG per present family (`<family>.png`) and a grid of all (`curves.png`) into `out_dir`.

    runs: {label: metric rows}, or a list of run folders / metrics files. smoothing: EMA factor in [0, 1).
    Returns {family or "grid": path}.
    """
    if not isinstance(runs, dict):
        runs = load_runs(list(runs))
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing={smoothing}: must be in [0, 1) (0 = no smoothing)")
    out_dir = Path(out_dir)
    per_run = {label: series(rows) for label, rows in runs.items()}
    written: dict[str, Path] = {}
    for fam, title in present_families(runs):
        fig = new_figure(6.0, 3.8)
        _draw_family(fig.subplots(), per_run, fam, title, smoothing)
        written[fam] = save_figure(fig, out_dir / f"{fam}.png")
    grid = curves_grid_figure(runs, smoothing)
    if grid is not None:
        written["grid"] = save_figure(grid, out_dir / "curves.png")
    return written
