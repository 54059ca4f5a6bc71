"""Calibration of self-certainty: does the model know when it is right? (paper Section 5, Figure 8)

For one model (one `samples.jsonl`), the self-certainty of correct responses (x, n1 of them) is compared with that
of incorrect ones (y, n2 of them):

- U: the Mann-Whitney statistic of correct over incorrect, U = #{(i, j): x_i > y_j} + 1/2 #{(i, j): x_i = y_j}
  (scipy's U1 with x = correct).
- AUROC = U / (n1 n2): the probability that a random correct response is more self-certain than a random incorrect
  one, ties counting 1/2. 0.5 is chance.
- p_value: `scipy.stats.mannwhitneyu(x, y, alternative="two-sided")` with scipy's default method ("auto": the exact
  distribution when both groups are smaller than 8 and there are no ties, else the normal approximation with
  continuity correction).
- Z: the normal approximation of U *with tie correction and without continuity correction*,
      Z = (U - n1 n2 / 2) / sigma,  sigma^2 = n1 n2 / 12 * ((N + 1) - sum_k (t_k^3 - t_k) / (N (N - 1))),
  N = n1 + n2 and t_k the size of the k-th group of tied values. Z > 0 when correct responses are more certain.
- effect size r = Z / sqrt(N) (Rosenthal's r, as the paper reports for Figure 8). Signed like Z.

If every value is tied (sigma = 0) Z and r are 0 and p is 1; with no correct or no incorrect response the
statistics are undefined and reported as NaN (null in JSON). Rows whose `correct` or `self_certainty` is missing,
null or NaN are skipped and counted in `n_skipped`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from intuitor.analysis import new_figure, read_jsonl, save_figure, unique_labels


@dataclass
class MannWhitneyResult:
    """Mann-Whitney U test of self-certainty, correct (x) vs incorrect (y) responses."""

    u_statistic: float
    auroc: float
    z: float
    effect_size_r: float
    p_value: float
    n_correct: int
    n_incorrect: int

    def to_dict(self) -> dict:
        return asdict(self)


def _tie_term(values: list[float]) -> float:
    """sum_k (t_k^3 - t_k) over groups of tied values."""
    return float(sum(t**3 - t for t in Counter(values).values() if t > 1))


def u_statistic(x: list[float], y: list[float]) -> float:
    """U of x over y: pairs with x_i > y_j, ties counting 1/2 (O(N log N) via midranks).

    >>> u_statistic([3, 4, 5], [1, 2])
    6.0
    >>> u_statistic([1, 2, 2], [2, 3])
    1.0
    """
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    rank_sum_x = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        midrank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum_x += midrank * sum(1 for k in range(i, j) if pooled[k][1] == 0)
        i = j
    return rank_sum_x - len(x) * (len(x) + 1) / 2


def mann_whitney(correct: Iterable[float], incorrect: Iterable[float]) -> MannWhitneyResult:
    """U, AUROC, Z, r and two-sided p of `correct` over `incorrect` self-certainties (see module docstring).

    >>> r = mann_whitney([3, 4, 5], [1, 2])
    >>> r.u_statistic, r.auroc, round(r.z, 4), round(r.effect_size_r, 4), round(r.p_value, 4)
    (6.0, 1.0, 1.7321, 0.7746, 0.2)
    """
    x = [float(v) for v in correct]
    y = [float(v) for v in incorrect]
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        nan = float("nan")
        return MannWhitneyResult(nan, nan, nan, nan, nan, n1, n2)
    n = n1 + n2
    u = u_statistic(x, y)
    var = n1 * n2 / 12 * ((n + 1) - _tie_term(x + y) / (n * (n - 1)))
    if var <= 0:  # every value tied: no evidence either way
        return MannWhitneyResult(u, u / (n1 * n2), 0.0, 0.0, 1.0, n1, n2)
    z = (u - n1 * n2 / 2) / math.sqrt(var)
    from scipy.stats import mannwhitneyu  # lazy: scipy is slow to import

    p = float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return MannWhitneyResult(u, u / (n1 * n2), z, z / math.sqrt(n), p, n1, n2)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def split_by_correctness(rows: list[dict]) -> tuple[list[float], list[float], int]:
    """(self-certainty of correct rows, of incorrect rows, number of rows skipped for missing values)."""
    correct, incorrect, skipped = [], [], 0
    for row in rows:
        sc, ok = row.get("self_certainty"), row.get("correct")
        if not _finite(sc) or ok is None:
            skipped += 1
            continue
        (correct if ok else incorrect).append(float(sc))
    return correct, incorrect, skipped


def calibration_stats(rows: list[dict]) -> dict:
    """Mann-Whitney statistics of one model's rows plus counts and group means (one flat dict)."""
    correct, incorrect, skipped = split_by_correctness(rows)
    out = mann_whitney(correct, incorrect).to_dict()
    out["n_skipped"] = skipped
    out["mean_self_certainty_correct"] = sum(correct) / len(correct) if correct else float("nan")
    out["mean_self_certainty_incorrect"] = sum(incorrect) / len(incorrect) if incorrect else float("nan")
    return out


def model_label(path: str | Path, rows: list[dict]) -> str:
    """The `model` field of the rows if present, else the name of the folder holding the file."""
    for row in rows:
        if row.get("model"):
            return str(row["model"])
    path = Path(path).resolve()
    return path.parent.name or path.stem


def load_models(paths: list[str | Path], labels: list[str] | None = None) -> dict[str, tuple[Path, list[dict]]]:
    """{label: (path, rows)} for each samples file, labels made unique and kept in the given order.

    A folder is accepted for a file and means its `samples.jsonl`.
    """
    resolved = [Path(p) / "samples.jsonl" if Path(p).is_dir() else Path(p) for p in paths]
    data = [read_jsonl(p) for p in resolved]
    if labels is None:
        labels = [model_label(p, rows) for p, rows in zip(resolved, data)]
        # Several checkpoints of one model share its `model` field: fall back to folder names to tell them apart.
        if len(set(labels)) < len(labels):
            folders = [p.resolve().parent.name for p in resolved]
            if len(set(folders)) == len(folders):
                labels = folders
    return dict(zip(unique_labels(list(labels)), zip(resolved, data)))


def analyze_samples(
    paths: list[str | Path], answer_types: bool | None = None, min_reasoning_words: int | None = None
) -> dict[str, dict]:
    """Per model (one samples file each): `analyze_models` of `load_models(paths)`."""
    return analyze_models(load_models(paths), answer_types, min_reasoning_words)


def analyze_models(
    models: dict[str, tuple[Path, list[dict]]],
    answer_types: bool | None = None,
    min_reasoning_words: int | None = None,
) -> dict[str, dict]:
    """Per model: calibration statistics over all its rows, per task (`by_task`), and answer types.

    models: {label: (path, rows)} as `load_models` returns. answer_types: True classifies every task's responses,
    False none, None (default) only code tasks (`answer_types.is_code_task`).
    """
    from intuitor.analysis.answer_types import MIN_REASONING_WORDS, answer_type_counts, is_code_task

    words = MIN_REASONING_WORDS if min_reasoning_words is None else min_reasoning_words
    out = {}
    for label, (path, rows) in models.items():
        stats = {"file": str(path), **calibration_stats(rows)}
        tasks = sorted({str(r.get("task", "")) for r in rows})
        stats["by_task"] = {t: calibration_stats([r for r in rows if str(r.get("task", "")) == t]) for t in tasks}
        types = {}
        for t in tasks:
            if answer_types or (answer_types is None and is_code_task(t)):
                types[t] = answer_type_counts([r for r in rows if str(r.get("task", "")) == t], words)
        if types:
            stats["answer_types"] = types
        out[label] = stats
    return out


def calibration_figure(models: dict[str, list[dict]], bins: int = 30, stats: dict[str, dict] | None = None):
    """One histogram panel per model (side by side, wrapping after 4): self-certainty, correct vs incorrect."""
    import numpy as np

    n = max(1, len(models))
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = new_figure(4.2 * ncols, 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (label, rows) in zip(axes, models.items()):
        correct, incorrect, _ = split_by_correctness(rows)
        values = correct + incorrect
        if values:
            lo, hi = min(values), max(values)
            edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
            ax.hist(incorrect, bins=edges, alpha=0.55, color="#d62728", label=f"incorrect ({len(incorrect)})")
            ax.hist(correct, bins=edges, alpha=0.55, color="#2ca02c", label=f"correct ({len(correct)})")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no scored responses", ha="center", va="center", transform=ax.transAxes)
        s = (stats or {}).get(label) or calibration_stats(rows)
        ax.set_title(
            f"{label}\nAUROC {_fmt(s['auroc'])}  r {_fmt(s['effect_size_r'])}  p {_fmt(s['p_value'], p=True)}",
            fontsize=9,
        )
        ax.set_xlabel("self-certainty")
        ax.set_ylabel("responses")
    for ax in axes[len(models) :]:
        ax.set_axis_off()
    return fig


def plot_calibration(models: dict[str, list[dict]], out_path: str | Path, bins: int = 30) -> Path:
    """Write the calibration histograms of `models` ({label: rows}) as one PNG; returns its path."""
    return save_figure(calibration_figure(models, bins), out_path)


def _fmt(v: float, p: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.2g}" if p else f"{v:.3f}"
