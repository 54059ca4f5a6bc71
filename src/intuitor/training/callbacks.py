"""Callbacks: every run writes its resolved config and a metrics.jsonl that `intuitor curves` reads, and a few of its
training rollouts per logging step in completions.jsonl that `intuitor report` shows (paths: intuitor.analysis.layout).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback

from intuitor.layout import COMPLETIONS_FILE, METRICS_FILE, RUN_CONFIG_FILE


def versions() -> dict[str, str]:
    """What `intuitor --version` prints: intuitor.versions(), from the installed metadata."""
    from intuitor import versions as stack_versions

    return stack_versions()


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _truncate_after(path: Path, step: int) -> None:
    """On resume, drop the rows a JSONL file holds for steps after `step` (they belong to the abandoned run)."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in kept if json.loads(line).get("step", 0) <= step]
        path.write_text("".join(line + "\n" for line in kept))


class CompletionsJsonlCallback(TrainerCallback):
    """Writes the first `per_step` rollouts of each logged step's generation batch to OUTPUT_DIR/completions.jsonl:
    {"step", "prompt", "completion", one value per reward function (by its name), "advantage"}.

    It reads the buffer GRPOTrainer keeps for its own completion logging (`trainer._logs`: the latest generation
    batch, gathered from every process), so it costs no generation, draws no random number and does not depend on
    TRL's `log_completions`. TRL repeats each prompt `num_generations` times in a row, so the first rows are samples of
    one prompt: the group its advantages compare. Bounded: `per_step` rows per logging step, each text cut at
    `max_chars` characters. On resume, rows after the checkpoint's step are dropped, as in metrics.jsonl.
    """

    def __init__(self, logs: dict, per_step: int = 4, max_chars: int = 2000):
        self.logs, self.per_step, self.max_chars = logs, per_step, max_chars
        self._last_step = None

    def _text(self, value):
        if isinstance(value, str):
            return value[: self.max_chars]
        if isinstance(value, list):  # chat messages [{"role", "content"}]
            return [{**m, "content": self._text(m.get("content", ""))} if isinstance(m, dict) else m for m in value]
        return value

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            _truncate_after(Path(args.output_dir) / COMPLETIONS_FILE, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        # One write per training step: not for evaluation logs nor the end-of-training summary of the same step.
        if not state.is_world_process_zero or state.global_step == self._last_step:
            return
        if any(k.startswith("eval_") for k in logs or {}) or not self.logs["prompt"]:
            return
        self._last_step = state.global_step
        n = min(self.per_step, len(self.logs["prompt"]))
        rewards = {name: list(values)[:n] for name, values in self.logs["rewards"].items()}
        advantages = list(self.logs["advantages"])[:n]
        prompts, completions = list(self.logs["prompt"])[:n], list(self.logs["completion"])[:n]
        with open(Path(args.output_dir) / COMPLETIONS_FILE, "a") as f:
            for i in range(n):
                row = {
                    "step": state.global_step,
                    "prompt": self._text(prompts[i]),
                    "completion": self._text(completions[i]),
                }
                row.update({name: _clean(v[i]) for name, v in rewards.items() if i < len(v)})
                if i < len(advantages):
                    row["advantage"] = _clean(advantages[i])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


class MetricsJsonlCallback(TrainerCallback):
    """Writes OUTPUT_DIR/run_config.json at the start and one JSON object per logging step to OUTPUT_DIR/metrics.jsonl.

    On resume, rows logged after the checkpoint's step are dropped so the file matches the resumed run.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = {"config": json.loads(args.to_json_string()), "versions": versions()}
        (out / RUN_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        _truncate_after(out / METRICS_FILE, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch, **{k: _clean(v) for k, v in logs.items()}}
        with open(Path(args.output_dir) / METRICS_FILE, "a") as f:
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
