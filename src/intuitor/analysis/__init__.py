"""Analysis: seeing what the model learned, from the files that training and evaluation write.

Everything here reads files (`samples.jsonl` and `results.json` from `intuitor eval`, `metrics.jsonl`,
`run_config.json` (or `config.json|yaml`) and `completions.jsonl` from a training run) and never imports the trainer or torch, so it runs
on a laptop against a run copied from a cluster.

- `calibration`: is self-certainty higher on correct answers? Mann-Whitney U, effect size r, AUROC (paper Fig. 8).
- `answer_types`: no valid code / code without reasoning / reasoning then code (paper Fig. 6).
- `select`: best-of-N by self-certainty, Borda voting and majority vote, against pass@1 and pass@K.
- `curves`: training curves from `metrics.jsonl`, several runs overlaid.
- `compare`: accuracy with a Wilson interval, the exact McNemar test of two models on the same items.
- `report`: one self-contained HTML page for one run or a comparison (the first run is the base).
- `preflight`: is a model worth training with INTUITOR? Its samples' self-certainty, right vs wrong, and a verdict
  (the one module here that generates: it calls the evaluation harness, imported when it runs).
- `cli`: the `intuitor analyze | curves | select | report | preflight` commands.

Where a run keeps its files is `intuitor.layout`.

matplotlib is imported only when a figure is drawn, and figures are drawn with `matplotlib.figure.Figure`
(the Agg renderer) without pyplot, so drawing never changes the caller's backend or global state.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from intuitor.layout import natural_key  # noqa: F401  (re-exported: the layout sorts checkpoints with it)


__all__ = [
    "read_jsonl",
    "write_json",
    "jsonable",
    "mann_whitney",
    "calibration_stats",
    "analyze_samples",
    "analyze_models",
    "load_models",
    "plot_calibration",
    "classify_answer",
    "answer_type_counts",
    "is_code_task",
    "select_answers",
    "selection_accuracy",
    "read_metrics",
    "plot_curves",
    "summarize_metrics",
    "build_report",
    "wilson_interval",
    "mcnemar_exact",
    "preflight_stats",
]

# Public names re-exported lazily (module __getattr__) so that `import intuitor.analysis` stays cheap.
_LAZY = {
    "mann_whitney": "calibration",
    "calibration_stats": "calibration",
    "analyze_samples": "calibration",
    "analyze_models": "calibration",
    "load_models": "calibration",
    "plot_calibration": "calibration",
    "classify_answer": "answer_types",
    "answer_type_counts": "answer_types",
    "is_code_task": "answer_types",
    "select_answers": "select",
    "selection_accuracy": "select",
    "read_metrics": "curves",
    "plot_curves": "curves",
    "summarize_metrics": "curves",
    "build_report": "report",
    "wilson_interval": "compare",
    "mcnemar_exact": "compare",
    "preflight_stats": "preflight",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_jsonl(path: str | Path, allow_partial_last_line: bool = False) -> list[dict]:
    """Rows of a JSON-lines file. A malformed line raises with file and line number.

    `allow_partial_last_line`: skip (with a warning) a malformed *last* line, as a run still writing its
    `metrics.jsonl` may leave one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if allow_partial_last_line and lineno == len(lines):
                warnings.warn(f"{path}:{lineno}: skipped a malformed last line (run still writing?)", stacklevel=2)
                continue
            raise ValueError(f"{path}:{lineno}: malformed JSON row ({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def jsonable(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by None, recursively; tuples become lists.

    >>> jsonable({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write `obj` as indented, strictly valid JSON (NaN -> null), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def unique_labels(labels: list[str]) -> list[str]:
    """Make display labels unique by appending #2, #3... to repeats.

    >>> unique_labels(["a", "b", "a"])
    ['a', 'b', 'a#2']
    """
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def new_figure(width: float, height: float):
    """A matplotlib Figure rendered by Agg, created without pyplot (imported here, lazily)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig))
    return path


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
