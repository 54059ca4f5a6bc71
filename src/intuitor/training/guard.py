"""CollapseGuard: watch the logged training metrics for the signs of a collapsing run, then warn or stop.

Label-free RL can decay: the paper shows an offline annotator exploited within ~100 steps (length and repetition
blow up, Figure 7), and self-certainty-only runs of our prototype drifted into confident, agreeing-less answers.
The guard reads what the trainer logs anyway (see `IntuitorTrainer`) at each logging step and checks, after
`guard_warmup` logging steps, against a trailing window of the previous `guard_window` logging steps:

    condition            metric key                               fires when (for guard_patience steps in a row)
    length_spike         completions/mean_length                  value > guard_length_spike x trailing mean
    repetition_spike     completions/repetition_rate              value > trailing mean + guard_repetition_spike
    entropy_collapse     token_entropy/mean (fallback `entropy`)  value < guard_entropy_collapse x trailing mean
    kl_spike             kl                                       value > guard_kl_spike x trailing mean, and > 0.05
    self_certainty_drop  self_certainty/mean                      smoothed < peak - guard_self_certainty_drop x |peak|
    agreement_drop       completions/agreement                    smoothed < peak - guard_agreement_drop

The two label-free decay conditions compare a smoothed series (the mean of the last `guard_window` values) with the
running peak of that smoothed series, so one noisy step neither sets the peak nor trips the guard. Each threshold
set to None disables its condition. An event is recorded once per episode (when a condition has held for
`guard_patience` consecutive logging steps; it can fire again after the condition clears). Action `warn` logs a
warning; `stop` also asks the Trainer to save a checkpoint and stop. Events go to `guard.events` and, on the main
process, to OUTPUT_DIR/guard.jsonl as {step, condition, value, reference, action}.

Not in the paper: the authors' code has no guard. The other options against decay (a reward-std floor, no std
scaling, mixing in plurality vote) are in `intuitor.rewards.group`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

KL_ABS_MIN = 0.05  # per-token KL below this is noise: a demo null-control run "spiked" from 0.001 to 0.01 (README)


@dataclass
class Condition:
    """One watched metric; `reference` is the trailing-window mean ("trailing") or the smoothed running peak ("peak")."""

    name: str
    keys: tuple[str, ...]  # the first key present in a log is read
    threshold: float
    kind: str  # "trailing": compare the raw value to the trailing-window mean; "peak": smoothed value to its peak
    test: Callable[[float, float, float], bool]  # (value, reference, threshold) -> hit


def _conditions(args) -> list[Condition]:
    table = [
        Condition("length_spike", ("completions/mean_length",), args.guard_length_spike, "trailing",
                  lambda v, ref, k: ref > 0 and v > k * ref),
        Condition("repetition_spike", ("completions/repetition_rate",), args.guard_repetition_spike, "trailing",
                  lambda v, ref, d: v > ref + d),
        Condition("entropy_collapse", ("token_entropy/mean", "entropy"), args.guard_entropy_collapse, "trailing",
                  lambda v, ref, f: ref > 0 and v < f * ref),
        Condition("kl_spike", ("kl",), args.guard_kl_spike, "trailing",
                  lambda v, ref, k: v > KL_ABS_MIN and v > k * ref),
        Condition("self_certainty_drop", ("self_certainty/mean",), args.guard_self_certainty_drop, "peak",
                  lambda v, peak, f: v < peak - f * abs(peak)),
        Condition("agreement_drop", ("completions/agreement",), args.guard_agreement_drop, "peak",
                  lambda v, peak, d: v < peak - d),
    ]
    return [c for c in table if c.threshold is not None]


class CollapseGuard(TrainerCallback):
    """A TrainerCallback that acts on collapse signs in the logs (see the module docstring for the conditions).

    >>> from types import SimpleNamespace as NS
    >>> args = NS(guard="stop", guard_window=3, guard_warmup=3, guard_patience=1, guard_length_spike=2.0,
    ...           guard_repetition_spike=None, guard_entropy_collapse=None, guard_kl_spike=None,
    ...           guard_self_certainty_drop=None, guard_agreement_drop=None, output_dir="unused")
    >>> guard, control = CollapseGuard(args), NS(should_save=False, should_training_stop=False)
    >>> for step, length in enumerate([10, 11, 10, 10, 40], 1):
    ...     _ = guard.on_log(args, NS(global_step=step, is_world_process_zero=False), control,
    ...                      logs={"completions/mean_length": length})
    >>> guard.events
    [{'step': 5, 'condition': 'length_spike', 'value': 40.0, 'reference': 10.333333333333334, 'action': 'stop'}]
    >>> control.should_save, control.should_training_stop
    (True, True)
    """

    def __init__(self, args):
        if args.guard not in ("warn", "stop"):
            raise ValueError(f"guard={args.guard!r}: CollapseGuard acts with `warn` or `stop`")
        if args.guard_window < 1 or args.guard_patience < 1 or args.guard_warmup < 0:
            raise ValueError("guard_window and guard_patience must be >= 1 and guard_warmup >= 0")
        self.action = args.guard
        self.window, self.warmup, self.patience = args.guard_window, args.guard_warmup, args.guard_patience
        self.conditions = _conditions(args)
        self.events: list[dict] = []
        self.num_logs = 0  # logging steps seen that carried at least one watched metric
        self._history = {c.name: deque(maxlen=self.window) for c in self.conditions}  # raw values, oldest first
        self._peak: dict[str, float] = {}
        self._streak = {c.name: 0 for c in self.conditions}

    # ---- the judgement, free of Trainer state (what the tests drive) ---------------------------------------------
    def observe(self, logs: dict) -> list[dict]:
        """Feed one logging step; return the events it triggered (each {condition, value, reference})."""
        readings = {c.name: _read(logs, c.keys) for c in self.conditions}
        if all(v is None for v in readings.values()):
            return []  # e.g. the end-of-training summary or an evaluation log
        self.num_logs += 1
        judging = self.num_logs > self.warmup
        fired = []
        for c in self.conditions:
            value, history = readings[c.name], self._history[c.name]
            if value is None:
                continue  # a metric missing this step neither hits nor breaks a streak
            if c.kind == "trailing":
                reference = sum(history) / len(history) if history else None
                history.append(value)
                current = value
            else:  # "peak": smoothed series vs its running peak
                history.append(value)
                current = sum(history) / len(history)
                reference = self._peak.get(c.name)
                if len(history) >= min(self.window, max(self.warmup, 1)):
                    self._peak[c.name] = current if reference is None else max(reference, current)
            hit = judging and reference is not None and c.test(current, reference, c.threshold)
            self._streak[c.name] = self._streak[c.name] + 1 if hit else 0
            if self._streak[c.name] == self.patience:
                fired.append({"condition": c.name, "value": current, "reference": reference})
        return fired

    # ---- TrainerCallback ------------------------------------------------------------------------------------------
    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or any(k.startswith("eval_") for k in logs):
            return control
        for event in self.observe(logs):
            event = {"step": state.global_step, **event, "action": self.action}
            self.events.append(event)
            then = "; saving a checkpoint and stopping" if self.action == "stop" else ""
            logger.warning(
                "CollapseGuard: %s at step %d (value %.4g, reference %.4g)%s",
                event["condition"], event["step"], event["value"], event["reference"], then,
            )
            if state.is_world_process_zero:
                out = Path(args.output_dir)
                out.mkdir(parents=True, exist_ok=True)
                with open(out / "guard.jsonl", "a") as f:
                    f.write(json.dumps(event) + "\n")
            if self.action == "stop":
                control.should_save = True
                control.should_training_stop = True
        return control


def _read(logs: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = logs.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None
