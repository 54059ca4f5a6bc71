"""CollapseGuard: watch the logged training metrics for the signs of a collapsing run, then warn or stop.

Label-free RL can decay: trained long enough the policy becomes confidently wrong (the demo's long run: accuracy
97% -> 0% while self-certainty keeps rising), an exploited offline annotator blows up length and repetition (paper
Figure 7), and a public INTUITOR run (3B, beta 0) shrank its completions to ~7 tokens while the reward jumped. The
guard reads only what the trainer logs anyway, never a label, at each logging step. After `guard_warmup` logging
steps it takes the mean of the next `guard_baseline` steps as the run's early-training *baseline*; "smoothed" below
is the mean of the last `guard_window` values. Conditions (each threshold a config field; None disables it):

    condition              metric key                     kind      fires when
    length_spike           completions/mean_length        spike     value > guard_length_spike x trailing mean
    length_drop            completions/mean_length        baseline  smoothed < guard_length_drop x baseline
    length_growth          completions/mean_length        baseline  smoothed > guard_length_growth x baseline
    repetition_spike       completions/repetition_rate    spike     value > trailing mean + guard_repetition_spike
    repetition_rise        completions/repetition_rate    baseline  smoothed > baseline + guard_repetition_rise
    entropy_collapse       token_entropy/mean | entropy   spike     value < guard_entropy_collapse x trailing mean
    kl_spike               kl                             spike     value > guard_kl_spike x trailing mean, > 0.05
    kl_growth              kl                             baseline  smoothed > guard_kl_growth x baseline, > 0.05
    self_certainty_rise    self_certainty/mean            rise      smoothed gained > guard_self_certainty_rise
                                                                    noise sigmas over the last guard_window steps
    self_certainty_drop    self_certainty/mean            peak      smoothed < peak - guard_self_certainty_drop x |peak|
    agreement_drop         completions/agreement          peak      smoothed < peak - guard_agreement_drop
    vote_calibration_drop  completions/vote_calibration   peak      smoothed < peak - guard_vote_calibration_drop

"spike" compares the raw value with the mean of the previous `guard_window` values (sudden changes); "baseline"
compares the smoothed value with the early-training baseline, so a slow drift that no trailing window sees is caught;
"peak" compares it with the running peak of the smoothed series (so one noisy step neither sets the peak nor trips
the guard); "rise" is a rate budget: the smoothed value's gain over `guard_window` steps in units of the metric's own
step-to-step noise (sigma = std of first differences / sqrt 2 over the baseline steps, so a trend is not noise).
`completions/vote_calibration` (see `intuitor.training.metrics.vote_calibration`) is the within-group AUROC of
self-certainty for "agrees with the group's plurality answer": on the demo's long runs it is the one signal that fell
before training accuracy did (README, "Collapse guard"). A condition missing from the logs is skipped.

A condition must hold for `guard_patience` consecutive logging steps; that *sustained alarm* is one event (it can
fire again after clearing). Action `warn` logs a warning; `stop` also asks the Trainer to save and stop. Events go
to `guard.events` and, on the main process, to OUTPUT_DIR/guard.jsonl as {step, condition, value, reference,
action}. At the first event the guard names the checkpoint to keep: the newest one whose weights generated none of
the rollouts the alarm rests on (for a spike the step where the streak began; otherwise the whole smoothing window
that ended there; metrics logged at step s are of the rollouts of the weights after s - 1 updates). On the demo's
long runs the kept checkpoint is 0-2 points of held-out accuracy from the run's best; the newest one before the
streak alone was up to 6.5 points below (README). It goes to guard.jsonl as {step, event: "keep", checkpoint, ...} and to OUTPUT_DIR/guard_keep.json,
and is marked as the Trainer's `best_model_checkpoint` so `save_total_limit` never rotates it away.
`guard_save_steps` makes the guard save every that many steps whatever `save_strategy` says.

`replay(rows, settings)` runs a logged metrics.jsonl through the very same `CollapseGuard.process` the live callback
calls (`intuitor guard RUN_DIR` prints it). Not in the paper: the authors' code has no guard. The other options
against decay (a reward-std floor, no std scaling, mixing in plurality vote) are in `intuitor.rewards.group`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback


logger = logging.getLogger(__name__)

KL_ABS_MIN = 0.05  # per-token KL below this is noise: a demo null-control run "spiked" from 0.001 to 0.01 (README)
ENTROPY_KEYS = ("token_entropy/mean", "entropy")


@dataclass
class Condition:
    """One watched metric. `kind` says what the value is compared with (see the module docstring)."""

    name: str
    keys: tuple[str, ...]  # the first key present in a log is read
    threshold: float
    kind: str  # "spike" | "baseline" | "peak" | "rise"
    test: Callable[[float, float, float], bool]  # (value, reference, threshold) -> hit


def _conditions(args) -> list[Condition]:
    g = lambda name: getattr(args, name, None)  # noqa: E731  (fields added later default to disabled in replays)
    table = [
        Condition(
            "length_spike",
            ("completions/mean_length",),
            g("guard_length_spike"),
            "spike",
            lambda v, ref, k: ref > 0 and v > k * ref,
        ),
        Condition(
            "length_drop",
            ("completions/mean_length",),
            g("guard_length_drop"),
            "baseline",
            lambda v, ref, f: ref > 0 and v < f * ref,
        ),
        Condition(
            "length_growth",
            ("completions/mean_length",),
            g("guard_length_growth"),
            "baseline",
            lambda v, ref, k: ref > 0 and v > k * ref,
        ),
        Condition(
            "repetition_spike",
            ("completions/repetition_rate",),
            g("guard_repetition_spike"),
            "spike",
            lambda v, ref, d: v > ref + d,
        ),
        Condition(
            "repetition_rise",
            ("completions/repetition_rate",),
            g("guard_repetition_rise"),
            "baseline",
            lambda v, ref, d: v > ref + d,
        ),
        Condition(
            "entropy_collapse",
            ENTROPY_KEYS,
            g("guard_entropy_collapse"),
            "spike",
            lambda v, ref, f: ref > 0 and v < f * ref,
        ),
        Condition("kl_spike", ("kl",), g("guard_kl_spike"), "spike", lambda v, ref, k: v > KL_ABS_MIN and v > k * ref),
        Condition(
            "kl_growth", ("kl",), g("guard_kl_growth"), "baseline", lambda v, ref, k: v > KL_ABS_MIN and v > k * ref
        ),
        Condition(
            "self_certainty_rise",
            ("self_certainty/mean",),
            g("guard_self_certainty_rise"),
            "rise",
            lambda z, _, k: z > k,
        ),
        Condition(
            "self_certainty_drop",
            ("self_certainty/mean",),
            g("guard_self_certainty_drop"),
            "peak",
            lambda v, peak, f: v < peak - f * abs(peak),
        ),
        Condition(
            "agreement_drop",
            ("completions/agreement",),
            g("guard_agreement_drop"),
            "peak",
            lambda v, peak, d: v < peak - d,
        ),
        Condition(
            "vote_calibration_drop",
            ("completions/vote_calibration",),
            g("guard_vote_calibration_drop"),
            "peak",
            lambda v, peak, d: v < peak - d,
        ),
    ]
    return [c for c in table if c.threshold is not None]


class _Track:
    """Per-condition state: recent raw values, smoothed values, the baseline, the running peak, the streak."""

    def __init__(self, window: int, baseline: int):
        self.raw: deque[float] = deque(maxlen=window)
        self.smooth: deque[float] = deque(maxlen=window + 1)  # smoothed values, for the "rise" rate
        self.early: list[float] = []  # the baseline steps' raw values
        self.baseline_size = baseline
        self.peak: float | None = None
        self.streak = 0
        self.streak_start: int | None = None

    @property
    def baseline(self) -> float | None:
        return statistics.fmean(self.early) if len(self.early) >= self.baseline_size else None

    @property
    def noise(self) -> float | None:
        """Step-to-step noise of the baseline steps: std of first differences / sqrt(2) (a trend is not noise)."""
        if len(self.early) < max(self.baseline_size, 3):
            return None
        diffs = [b - a for a, b in zip(self.early, self.early[1:])]
        return statistics.pstdev(diffs) / math.sqrt(2)


class CollapseGuard(TrainerCallback):
    """A TrainerCallback that acts on collapse signs in the logs (see the module docstring for the conditions).

    >>> from types import SimpleNamespace as NS
    >>> args = NS(guard="stop", guard_window=3, guard_warmup=3, guard_patience=1, guard_length_spike=2.0,
    ...           output_dir="unused")  # fields not given are disabled conditions
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
        self.window, self.warmup, self.patience = args.guard_window, args.guard_warmup, args.guard_patience
        self.baseline_steps = getattr(args, "guard_baseline", None) or self.window
        self.save_steps = getattr(args, "guard_save_steps", None)
        for name, value, low in (
            ("guard_window", self.window, 1),
            ("guard_patience", self.patience, 1),
            ("guard_warmup", self.warmup, 0),
            ("guard_baseline", self.baseline_steps, 2),
        ):
            if value < low:
                raise ValueError(f"{name}={value}: must be >= {low}")
        if self.save_steps is not None and self.save_steps < 1:
            raise ValueError(f"guard_save_steps={self.save_steps}: must be >= 1 (or None)")
        self.action = args.guard
        self.conditions = _conditions(args)
        self.events: list[dict] = []
        self.keep: dict | None = None  # the checkpoint to keep, named at the first event
        self.saved_steps: list[int] = []  # steps at which a checkpoint was written
        self.num_logs = 0  # logging steps seen that carried at least one watched metric
        self._tracks = {c.name: _Track(self.window, self.baseline_steps) for c in self.conditions}

    # ---- the judgement, free of Trainer state (what the tests and `replay` drive) --------------------------------
    def observe(self, logs: dict, step: int | None = None) -> list[dict]:
        """Feed one logging step; return the events it triggered (each {condition, value, reference, onset})."""
        readings = {c.name: _read(logs, c.keys) for c in self.conditions}
        if all(v is None for v in readings.values()):
            return []  # e.g. the end-of-training summary or an evaluation log
        self.num_logs += 1
        step = self.num_logs if step is None else step
        judging = self.num_logs > self.warmup
        fired = []
        for c in self.conditions:
            value, t = readings[c.name], self._tracks[c.name]
            if value is None:
                continue  # a metric missing this step neither hits nor breaks a streak
            if judging and len(t.early) < self.baseline_steps:
                t.early.append(value)
            if c.kind == "spike":
                reference = statistics.fmean(t.raw) if t.raw else None
                t.raw.append(value)
                current = value
            else:
                t.raw.append(value)
                current = statistics.fmean(t.raw)
                t.smooth.append(current)
                if c.kind == "baseline":
                    reference = t.baseline
                elif c.kind == "peak":
                    reference = t.peak
                    if len(t.raw) >= min(self.window, max(self.warmup, 1)):
                        t.peak = current if reference is None else max(reference, current)
                else:  # "rise": gain of the smoothed series over the window, in noise sigmas
                    noise = t.noise
                    full = len(t.smooth) > self.window
                    reference = noise
                    current = (t.smooth[-1] - t.smooth[0]) / noise if full and noise else float("-inf")
            hit = judging and reference is not None and c.test(current, reference, c.threshold)
            if hit:
                t.streak += 1
                t.streak_start = step if t.streak == 1 else t.streak_start
            else:
                t.streak, t.streak_start = 0, None
            if t.streak == self.patience:
                # the evidence: a raw value for a spike, else the smoothing window that ended at the streak's start
                evidence = t.streak_start if c.kind == "spike" else t.streak_start - self.window + 1
                fired.append(
                    {
                        "condition": c.name,
                        "value": current,
                        "reference": reference,
                        "onset": t.streak_start,
                        "evidence": max(evidence, 1),
                    }
                )
        return fired

    def process(self, step: int, logs: dict) -> list[dict]:
        """One logging step as the live callback sees it: the events (with step and action), the keep decision made
        at the first one. `replay` calls exactly this."""
        if not logs or any(k.startswith("eval_") for k in logs):
            return []
        events = []
        for raw in self.observe(logs, step):
            onset, evidence = raw.pop("onset"), raw.pop("evidence")
            event = {"step": step, **raw, "action": self.action}
            self.events.append(event)
            events.append(event)
            if self.keep is None:
                # rollouts logged at step s come from the weights after s - 1 updates: keep weights that generated
                # none of the rollouts the alarm rests on
                before = [s for s in self.saved_steps if s < evidence - 1]
                self.keep = {
                    "step": step,
                    "event": "keep",
                    "checkpoint": f"checkpoint-{before[-1]}" if before else None,
                    "checkpoint_step": before[-1] if before else None,
                    "alarm": event["condition"],
                    "alarm_onset": onset,
                    "evidence_from": evidence,
                }
        return events

    # ---- TrainerCallback ------------------------------------------------------------------------------------------
    def on_step_end(self, args, state, control, **kwargs):
        if self.save_steps and state.global_step % self.save_steps == 0:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if not self.saved_steps or self.saved_steps[-1] != state.global_step:
            self.saved_steps.append(state.global_step)
        if self.keep and self.keep["checkpoint"]:
            # rotation (save_total_limit) never deletes the best_model_checkpoint: make that the kept one
            state.best_model_checkpoint = str(Path(args.output_dir) / self.keep["checkpoint"])
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        had_keep = self.keep is not None
        for event in self.process(state.global_step, logs):
            then = "; saving a checkpoint and stopping" if self.action == "stop" else ""
            logger.warning(
                "CollapseGuard: %s at step %d (value %.4g, reference %.4g)%s",
                event["condition"],
                event["step"],
                event["value"],
                event["reference"],
                then,
            )
            rows = [event]
            if not had_keep and self.keep is not None:
                had_keep = True
                rows.append(self.keep)
                if self.keep["checkpoint"]:
                    logger.warning(
                        "CollapseGuard: keep %s, the newest checkpoint before the alarm began (step %d)",
                        self.keep["checkpoint"],
                        self.keep["alarm_onset"],
                    )
                else:
                    logger.warning(
                        "CollapseGuard: no checkpoint was saved before the alarm began (step %d) to keep; "
                        "set guard_save_steps",
                        self.keep["alarm_onset"],
                    )
                if self.keep["checkpoint"]:
                    state.best_model_checkpoint = str(Path(args.output_dir) / self.keep["checkpoint"])
            if state.is_world_process_zero:
                out = Path(args.output_dir)
                out.mkdir(parents=True, exist_ok=True)
                with open(out / "guard.jsonl", "a") as f:
                    f.writelines(json.dumps(row) + "\n" for row in rows)
                if len(rows) > 1:
                    (out / "guard_keep.json").write_text(json.dumps(self.keep, indent=2) + "\n")
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


def replay(rows: list[dict], settings, checkpoints: list[int] = ()) -> CollapseGuard:
    """Run logged rows ({step, metric: value, ...}, as in metrics.jsonl) through the live guard's `process`.

    `settings` carries the guard fields (an IntuitorConfig or any object with them); `checkpoints` are the steps
    at which checkpoints existed (for the keep decision). Returns the guard (events, keep).
    """
    guard = CollapseGuard(settings)
    pending = sorted(checkpoints)
    for i, row in enumerate(rows, 1):
        step = int(row.get("step", i))
        while pending and pending[0] < step:  # a checkpoint written at step s is saved before step s + 1 logs
            guard.saved_steps.append(pending.pop(0))
        guard.process(step, {k: v for k, v in row.items() if k not in ("step", "epoch")})
    return guard


def read_metrics(path: str | Path) -> tuple[list[dict], dict, list[int]]:
    """A run folder or a metrics JSONL -> (rows, the run's resolved config fields or {}, checkpoint steps)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = path / "metrics.jsonl" if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(f"{file}: no metrics file (give a run folder with metrics.jsonl or a JSONL file)")
    from intuitor.tasks.base import read_records  # JSON lines, one object each; errors name file:line

    rows = [row for _, row in read_records(file)]
    from intuitor.layout import read_run_config

    config = read_run_config(folder)
    checkpoints = sorted(
        int(m.group(1)) for p in folder.glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    )
    return rows, config, checkpoints
