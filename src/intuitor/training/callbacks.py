"""Callbacks: every run writes its resolved config and a metrics.jsonl that `intuitor curves` reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback


def versions() -> dict[str, str]:
    """What `intuitor --version` prints: intuitor.versions(), from the installed metadata."""
    from intuitor import versions as stack_versions

    return stack_versions()


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsJsonlCallback(TrainerCallback):
    """Writes OUTPUT_DIR/config.json at the start and one JSON object per logging step to OUTPUT_DIR/metrics.jsonl.

    On resume, rows logged after the checkpoint's step are dropped so the file matches the resumed run.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = {"config": json.loads(args.to_json_string()), "versions": versions()}
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        path = out / "metrics.jsonl"
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [line for line in kept if json.loads(line).get("step", 0) <= state.global_step]
            path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch, **{k: _clean(v) for k, v in logs.items()}}
        with open(Path(args.output_dir) / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
