"""Benchmark: an INTUITOR training step against a plain GRPO step, same model, batch and lengths.

Plain GRPO is TRL's `GRPOTrainer` with a cheap rule-based reward (the share of digits in the completion);
INTUITOR is `intuitor.training.IntuitorTrainer` with its default reward, the policy's own self-certainty, which it
records from the logits `generate` computes anyway (`record_generation`), so it should cost no extra forward pass.
Both get identical settings (learning rate, temperature, schedule, beta, lengths), and every completion has
exactly `--completion-length` tokens (`min_new_tokens`), so both do the same decoding work. Each run builds a
fresh trainer from the same initial weights and trains `1 + --steps` steps; a callback times every optimizer step
(generation, reward, loss, backward, update) and the first step of each run is dropped as warm-up. Runs are
interleaved over `--repeats` rounds in alternating order (grpo, intuitor for each beta; then the reverse), so a
drift of the machine's speed hits both alike, and the ratio is median(INTUITOR step) / median(GRPO step), with a
95% bootstrap interval over steps. Target: at most 1.05 on SmolLM2-135M.

On a shared machine steps vary by +-10%, more than the effect sought, so the script also times the code INTUITOR
adds to a step directly (`intuitor_own_time`: the LM-head hook, the per-response means, the reward, the rollout
metrics and the metrics file) and prints `1 + own / GRPO step`: the step-time ratio that this added code implies,
given that the rest of the step is TRL's own and runs the same forward passes (tests/test_trainer.py).

Models: the tests' tiny Qwen2 (`build_tiny_model`, V = 259) and SmolLM2-135M-Instruct from the packaged GGUF file,
converted once to a transformers folder in a temporary directory (TRL builds the beta > 0 reference model from
the policy's folder, which a bare GGUF file cannot provide).

`--source logprob_pass` measures the vLLM path on the CPU: both trainers run with `steps_per_generation=2` (one
generation per two optimizer steps), where TRL runs its old-policy log-prob pass as it does with vLLM, and INTUITOR
reads self-certainty inside that pass (`self_certainty_source: logprob_pass`) instead of from generation. A timed
unit is then one generation cycle (two steps), and the first cycle is the warm-up.

    python benchmarks/train_step.py
    python benchmarks/train_step.py --models tiny --steps 2 --repeats 1
    python benchmarks/train_step.py --models smollm2 --source logprob_pass
    python benchmarks/train_step.py --models smollm2 --scheduling refill --free-length --betas 0.005 \\
        --num-generations 7 --batch 28 --completion-length 128          # the SmolLM2 experiment's shape

`--scheduling refill` generates INTUITOR's rollouts with the refill scheduler (issue 32); with `--free-length` the
completions end at EOS, as in training, so refill has finished rows to drop; the table then gives each trainer's
median completion length and share cut at the budget, the rollouts' statistics the comparison must hold.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CLOCKS,
    Report,
    Verdict,
    bootstrap_ratio,
    clock_note,
    default_clock,
    machine,
    median,
    quiet_hf,
    set_threads,
    spread,
    table,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="tiny,smollm2", help="comma-separated: tiny, smollm2 (default both)")
    p.add_argument("--betas", default="0,0.04", help="comma-separated KL coefficients (default 0,0.04)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run, after one warm-up step (default 3)")
    p.add_argument("--repeats", type=int, default=4, help="interleaved rounds of runs, alternating order (default 4)")
    p.add_argument("--num-generations", type=int, default=4, help="completions per prompt G (default 4)")
    p.add_argument("--batch", type=int, default=4, help="per_device_train_batch_size, in completions (default 4)")
    p.add_argument("--completion-length", type=int, default=32, help="tokens of every completion (default 32)")
    p.add_argument("--max-ratio", type=float, default=1.05, help="target: INTUITOR / GRPO step time (default 1.05)")
    p.add_argument("--target-model", default="smollm2", help="the model the target applies to (default smollm2)")
    p.add_argument(
        "--clock",
        default="auto",
        choices=["auto", "cpu", "wall"],
        help="cpu: process CPU time; auto: cpu on CPU with 1 thread, else wall (default auto)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads, 0 = torch's default (default 1)")
    p.add_argument(
        "--source",
        default="generation",
        choices=["generation", "logprob_pass"],
        help="where INTUITOR reads self-certainty: the generation recorder, or TRL's old log-prob pass "
        "(both trainers then run steps_per_generation=2, so TRL runs that pass) (default generation)",
    )
    p.add_argument(
        "--scheduling",
        default="static",
        choices=["static", "refill"],
        help="INTUITOR's generation_scheduling; GRPO is TRL's own generate either way (default static)",
    )
    p.add_argument(
        "--free-length",
        action="store_true",
        help="completions end at EOS as in training (no min_new_tokens); the table then shows both trainers' "
        "completion lengths, which differ by sampling",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def digit_share(completions, **kwargs) -> list[float]:
    """Cheap rule-based reward: the share of digits among the completion's characters.

    >>> digit_share([[{"role": "assistant", "content": "a1b2"}]])
    [0.5]
    """
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


def make_dataset(n: int):
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {2 * i}? Answer with a number."}]} for i in range(n)]
    )


def model_folder(name: str, workdir: str) -> Path:
    from intuitor.models import SMOLLM2_ALIAS, build_tiny_model, convert_gguf

    if name == "tiny":
        return build_tiny_model(Path(workdir) / "tiny")
    if name == "smollm2":
        return convert_gguf(SMOLLM2_ALIAS, str(Path(workdir) / "smollm2"))
    raise ValueError(f"Unknown model '{name}': use tiny or smollm2")


def make_step_timer(clock: str):
    from transformers import TrainerCallback

    now = CLOCKS[clock]

    class StepTimer(TrainerCallback):
        """Time of each optimizer step (generation + reward + loss + backward + update) on `clock`, and wall time."""

        def __init__(self):
            self.times: list[float] = []
            self.wall: list[float] = []
            self.own_marks: list[float] = []  # INTUITOR's own seconds so far, at the end of each step
            self.own: list[float] = [0.0]
            self._t0 = self._w0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0, self._w0 = now(), time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(now() - self._t0)
            self.wall.append(time.perf_counter() - self._w0)
            self.own_marks.append(self.own[0])

    return StepTimer()


@contextmanager
def intuitor_own_time(clock: str):
    """Accumulate the time spent in the code INTUITOR adds to a GRPO step (yields a one-element list of seconds).

    That is: the LM-head hook and the per-response means of `record_generation`, a scoring pass if one runs, the
    self-certainty reward, the rollout metrics and the metrics.jsonl callback. Everything else in the step is
    TRL's, identical to plain GRPO (tests/test_trainer.py checks the forward-call count is the same).
    """
    from intuitor import certainty
    from intuitor.rewards.self_certainty import PolicyStatisticReward
    from intuitor.training import scoring
    from intuitor.training import trainer as trainer_module
    from intuitor.training.callbacks import MetricsJsonlCallback

    now, spent = CLOCKS[clock], [0.0]
    targets = [
        (certainty.GenerationRecorder, "_hook"),
        (certainty.GenerationRecorder, "statistics"),
        (scoring, "pass_statistics"),
        (scoring.ForwardScorer, "reduce"),
        (scoring.ForwardScorer, "statistics"),
        (PolicyStatisticReward, "__call__"),
        (trainer_module.IntuitorTrainer, "_log_rollout"),
        (MetricsJsonlCallback, "on_log"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name in targets]

    def timed(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t0 = now()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += now() - t0

        return wrapper

    for owner, name, fn in originals:
        setattr(owner, name, timed(fn))
    try:
        yield spent
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)


def run(kind: str, folder: Path, beta: float, args, workdir: str, clock: str):
    """Train 1 + args.steps steps with a fresh trainer.

    Returns the seconds of each step after the first, on `clock` and on the wall, and the seconds per step spent
    in INTUITOR's own code (0 for plain GRPO).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cycle = 2 if args.source == "logprob_pass" else 1  # optimizer steps per generation
    steps = cycle * (1 + args.steps)
    kw = dict(
        output_dir=str(Path(workdir) / f"out-{kind}"),
        max_steps=steps,
        per_device_train_batch_size=args.batch,
        num_generations=args.num_generations,
        max_completion_length=args.completion_length,
        generation_kwargs=None if args.free_length else {"min_new_tokens": args.completion_length},
        beta=beta,
        learning_rate=1e-6,
        temperature=0.9,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=False,
        seed=args.seed,
        disable_tqdm=True,
        # Explicit for both: GRPOConfig defaults to bf16, i.e. bf16 autocast even on CPU, where IntuitorConfig
        # turns it off; left to their defaults, the two trainers would not run the same arithmetic.
        bf16=torch.cuda.is_available(),
        steps_per_generation=cycle,
    )
    data = make_dataset(steps * args.batch // args.num_generations + 1)
    timer = make_step_timer(clock)
    if kind == "grpo":
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[digit_share],
            args=GRPOConfig(**kw),
            train_dataset=data,
            processing_class=tok,
            callbacks=[timer],
        )
    else:
        trainer = IntuitorTrainer(
            model=model,
            args=IntuitorConfig(**kw, self_certainty_source=args.source, generation_scheduling=args.scheduling),
            train_dataset=data,
            processing_class=tok,
            callbacks=[timer],
        )
    from transformers import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # no per-step log dicts between the tables
    trainer.remove_callback(ProgressCallback)
    with intuitor_own_time(clock) if kind == "intuitor" else nullcontext([0.0]) as own:
        timer.own = own
        trainer.train()
    if len(timer.times) != steps:
        raise RuntimeError(f"{kind}: timed {len(timer.times)} steps, expected {steps}")
    per_cycle = [sum(timer.times[i : i + cycle]) for i in range(0, steps, cycle)]  # generation cycles
    wall = [sum(timer.wall[i : i + cycle]) for i in range(0, steps, cycle)]
    # INTUITOR's own time after the warm-up cycle (its first call pays one-off imports and caches, as TRL's does)
    own_after_warmup = timer.own_marks[-1] - timer.own_marks[cycle - 1]
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    rollouts = [(h["completions/mean_length"], h.get("completions/clipped_ratio", 0.0)) for h in logs]
    return per_cycle[1:], wall[1:], own_after_warmup / (steps // cycle - 1), rollouts


def length_note(rollouts: list[tuple[float, float]]) -> str:
    """Mean completion length over all steps of a cell, and the share of completions cut at the token budget."""
    if not rollouts:
        return "-"
    return f"{median([r[0] for r in rollouts]):.1f} ({median([r[1] for r in rollouts]):.2f})"


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    set_threads(args.threads)
    quiet_hf()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clock = default_clock(device) if args.clock == "auto" else args.clock
    print(f"machine: {machine(device)}")
    print(clock_note(clock) + "; `wall` is the median wall time")
    report = Report()
    betas = [float(b) for b in args.betas.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        for name in [m.strip() for m in args.models.split(",")]:
            folder = model_folder(name, workdir)
            cells = [(b, k) for b in betas for k in ("grpo", "intuitor")]
            times: dict[tuple[float, str], list[float]] = {c: [] for c in cells}
            wall: dict[tuple[float, str], list[float]] = {c: [] for c in cells}
            own: dict[float, list[float]] = {b: [] for b in betas}
            rollouts: dict[tuple[float, str], list[tuple[float, float]]] = {c: [] for c in cells}
            for r in range(args.repeats):  # interleaved, ABBA: grpo, intuitor, then intuitor, grpo, ...
                for b, kind in cells if r % 2 == 0 else cells[::-1]:
                    t, w, o, ro = run(kind, folder, b, args, workdir, clock)
                    times[(b, kind)] += t
                    rollouts[(b, kind)] += ro
                    wall[(b, kind)] += w
                    if kind == "intuitor":
                        own[b].append(o)
            rows = []
            for b in betas:
                g, i = median(times[(b, "grpo")]), median(times[(b, "intuitor")])
                ratio = i / g
                lo, hi = bootstrap_ratio(times[(b, "intuitor")], times[(b, "grpo")], seed=args.seed)
                wall_ratio = median(wall[(b, "intuitor")]) / median(wall[(b, "grpo")])
                own_ratio = 1 + median(own[b]) / g  # GRPO's step plus the time spent in INTUITOR's own code
                rows.append(
                    [
                        f"{b:g}",
                        f"{g:.3f}",
                        spread(times[(b, "grpo")]),
                        f"{i:.3f}",
                        spread(times[(b, "intuitor")]),
                        f"{ratio:.3f}",
                        f"{lo:.2f}-{hi:.2f}",
                        f"{wall_ratio:.3f}",
                        f"{median(own[b]) * 1e3:.1f}",
                        f"{own_ratio:.4f}",
                        length_note(rollouts[(b, "grpo")]),
                        length_note(rollouts[(b, "intuitor")]),
                    ]
                )
                report.rows.append(
                    {
                        "model": name,
                        "beta": b,
                        "grpo_s": g,
                        "intuitor_s": i,
                        "ratio": ratio,
                        "ratio_95": (lo, hi),
                        "wall_ratio": wall_ratio,
                        "own_s": median(own[b]),
                        "grpo_rollouts": rollouts[(b, "grpo")],
                        "intuitor_rollouts": rollouts[(b, "intuitor")],
                        "own_ratio": own_ratio,
                    }
                )
                report.ratios[f"{name}/beta={b:g}"] = ratio
                report.ratios[f"{name}/beta={b:g}/own"] = own_ratio
                if name == args.target_model:
                    report.verdicts.append(
                        Verdict(
                            f"{name} beta={b:g} INTUITOR/GRPO step time <= {args.max_ratio:g}",
                            ratio <= args.max_ratio,
                            f"{ratio:.3f} (95% interval {lo:.2f}-{hi:.2f}; INTUITOR's own code: {own_ratio:.4f})",
                        )
                    )
            n = args.repeats * args.steps
            unit = "steps" if args.source == "generation" else "generation cycles of 2 steps (logprob_pass)"
            print(
                f"\n[{name}: {args.batch} completions x {args.completion_length} tokens per step, "
                f"G={args.num_generations}, {n} timed {unit} per cell]"
            )
            print(
                table(
                    [
                        "beta",
                        "GRPO s/step",
                        "range",
                        "INTUITOR s/step",
                        "range",
                        "ratio",
                        "95%",
                        "wall ratio",
                        "own ms/step",
                        "1+own/GRPO",
                        "GRPO length (clipped)",
                        "INTUITOR length (clipped)",
                    ],
                    rows,
                )
            )
    report.print_verdicts()
    return report


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    main()
