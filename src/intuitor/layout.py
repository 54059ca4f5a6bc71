"""Where a run's files live: the one layout that training, `intuitor eval`, `intuitor demo`, `intuitor preflight`,
scripts/smollm2_experiment.sh and `intuitor report` share.

A *run folder* stands for one model: a training run (`intuitor train --output_dir RUN`), or a base model that was
only evaluated (the demo's `runs/demo/base`). Inside it:

    RUN/run_config.json                resolved training config and the stack's versions (`MetricsJsonlCallback`);
                                       not config.json: the final model is saved into RUN, and its own
                                       config.json is the model's (older runs kept theirs there: still read)
    RUN/metrics.jsonl                  one row per logging step
    RUN/completions.jsonl              a few training rollouts per logging step (`CompletionsJsonlCallback`)
    RUN/eval/SETTING/                  `intuitor eval RUN --output-dir RUN/eval/SETTING`: the run's final model
    RUN/eval/checkpoint-N/SETTING/     the same for an intermediate checkpoint
    RUN/eval/preflight/                `intuitor preflight`: K samples per prompt + preflight.json

SETTING names the decoding settings (the demo and the SmolLM2 script use `greedy`, `sampled`, `sampled8`, `gsm8k`);
an evaluation folder holds `samples.jsonl` and `results.json`. Runs are compared setting by setting: the same
SETTING name under two runs means "the same evaluation of two models". Also read, for folders written before this
layout or by hand: `RUN/eval/` itself, `RUN/eval/checkpoint-N/` (setting `default`), `RUN/eval/final/SETTING/` (the
demo's earlier nesting: `final` is the run's final model), and a RUN that is itself an evaluation folder (setting:
its folder name). `eval_dir` writes, `find_evals` reads: both follow these rules. It imports nothing of intuitor, so
that training (which writes) and analysis (which reads) can both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


RUN_CONFIG_FILE = "run_config.json"
CONFIG_FILES = (RUN_CONFIG_FILE, "config.json", "config.yaml", "config.yml")
METRICS_FILE = "metrics.jsonl"
COMPLETIONS_FILE = "completions.jsonl"
EVAL_DIR = "eval"
SAMPLES_FILE = "samples.jsonl"  # as intuitor.evaluation.harness writes them (that module imports torch lazily only)
RESULTS_FILE = "results.json"
PREFLIGHT_SETTING = "preflight"
PREFLIGHT_FILE = "preflight.json"
FINAL = "final"
DEFAULT_SETTING = "default"
_CHECKPOINT = re.compile(r"^(checkpoint-\d+|final)$")


def eval_dir(run_dir: str | Path, setting: str = "greedy", checkpoint: str | None = None) -> Path:
    """Where an evaluation of RUN's final model (or of `checkpoint`, e.g. 'checkpoint-100') under SETTING goes.

    >>> eval_dir("runs/a", "greedy").as_posix(), eval_dir("runs/a", "sampled", "checkpoint-50").as_posix()
    ('runs/a/eval/greedy', 'runs/a/eval/checkpoint-50/sampled')
    """
    root = Path(run_dir) / EVAL_DIR
    return root / setting if checkpoint in (None, FINAL) else root / checkpoint / setting


def is_eval_folder(path: Path) -> bool:
    return (path / RESULTS_FILE).is_file() or (path / SAMPLES_FILE).is_file()


@dataclass(frozen=True)
class EvalRef:
    """One evaluation folder of a run: which model (`final` or `checkpoint-N`) under which setting."""

    checkpoint: str
    setting: str
    path: Path

    @property
    def label(self) -> str:
        if self.checkpoint == FINAL:
            return self.setting
        return self.checkpoint if self.setting == DEFAULT_SETTING else f"{self.checkpoint} / {self.setting}"


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers numerically: checkpoint-100 before checkpoint-1000.

    >>> sorted(["checkpoint-1000", "checkpoint-100", "base"], key=natural_key)
    ['base', 'checkpoint-100', 'checkpoint-1000']
    """
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def _checkpoint_order(ref: EvalRef) -> tuple:
    return (ref.checkpoint == FINAL, natural_key(ref.checkpoint), natural_key(ref.setting))


def find_evals(run_dir: str | Path) -> list[EvalRef]:
    """Every evaluation folder of RUN by the rules above: checkpoints in numeric order, the final model last."""
    run_dir = Path(run_dir)
    root = run_dir / EVAL_DIR
    found: list[EvalRef] = []
    if not root.is_dir():
        return [EvalRef(FINAL, run_dir.name, run_dir)] if is_eval_folder(run_dir) else []
    if is_eval_folder(root):
        found.append(EvalRef(FINAL, DEFAULT_SETTING, root))
    for d in (d for d in root.iterdir() if d.is_dir()):
        if _CHECKPOINT.match(d.name):
            if is_eval_folder(d):
                found.append(EvalRef(d.name, DEFAULT_SETTING, d))
            found += [EvalRef(d.name, s.name, s) for s in d.iterdir() if s.is_dir() and is_eval_folder(s)]
        elif is_eval_folder(d):
            found.append(EvalRef(FINAL, d.name, d))
    return sorted(found, key=_checkpoint_order)


def find_config(run_dir: str | Path) -> Path | None:
    return next((p for p in (Path(run_dir) / n for n in CONFIG_FILES) if p.is_file()), None)


def read_run_config(run_dir: str | Path) -> dict:
    """The training config a run recorded (`{}` when none): RUN/run_config.json, else a config.json written by an
    older `intuitor train` (one with a "config" key; a model's own config.json has none)."""
    import json

    for name in (RUN_CONFIG_FILE, "config.json"):
        path = Path(run_dir) / name
        if path.is_file():
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("config"), dict):
                return data["config"]
    return {}


def eval_hint(run_dir: str | Path, setting: str = "greedy", task: str = "TASK", extra: str = "") -> str:
    """The command that fills RUN/eval/SETTING (flags of `intuitor eval` as they exist)."""
    run = Path(run_dir).as_posix()
    return f"intuitor eval {run} --tasks {task}{extra} --output-dir {eval_dir(run, setting).as_posix()}"
