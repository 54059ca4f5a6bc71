"""Callbacks: every run writes its resolved config and a metrics.jsonl that `intuitor curves` reads."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

from transformers import TrainerCallback


def versions() -> dict[str, str]:
    import torch
    import transformers
    import trl

    import intuitor

    return {
        "intuitor": intuitor.__version__,
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


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


class ResumedScheduleCallback(TrainerCallback):
    """On resume, the learning rate of the first update is the one the run's schedule gives at that step.

    transformers restores the scheduler's step count and the optimizer's last learning rate from the checkpoint,
    but the schedule itself is rebuilt for this run's length. When that length changed (`max_steps` raised after a
    finished run), the first resumed update trained at the old schedule's last value (0 at the end of a cosine) and
    the next jumped onto the new schedule. Here the first update already follows the new schedule: the run
    continues as if it had been planned with its new length from the start (steps already taken stay as they were).
    Only `LambdaLR` schedules (every `lr_scheduler_type` of transformers') are touched.
    """

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        from torch.optim.lr_scheduler import LambdaLR

        if state.global_step == 0 or optimizer is None or not isinstance(lr_scheduler, LambdaLR):
            return
        step = lr_scheduler.last_epoch
        wanted = [base * fn(step) for base, fn in zip(lr_scheduler.base_lrs, lr_scheduler.lr_lambdas)]
        held = [group["lr"] for group in optimizer.param_groups]
        if all(math.isclose(w, h, rel_tol=1e-9, abs_tol=1e-15) for w, h in zip(wanted, held)):
            return
        for group, lr in zip(optimizer.param_groups, wanted):
            group["lr"] = lr
        lr_scheduler._last_lr = wanted
        if state.is_world_process_zero:
            print(
                f"resume: the schedule now has {state.max_steps} updates, not the checkpoint's: update "
                f"{state.global_step + 1} trains at learning rate {wanted[0]:.3g}, the new schedule's value there "
                f"(the checkpoint's optimizer held {held[0]:.3g})"
            )
