"""IntuitorConfig: TRL's GRPOConfig plus the few options INTUITOR adds, each documented once, here.

Defaults follow the paper (Zhao et al. 2025, Sec. 4 / App. B) where the paper sets them: G=7 samples per prompt,
lr 3e-6, beta (KL to the initial model) 0.005, temperature 0.9, completions up to 3,072 tokens, cosine schedule with
10% warm-up (`warmup_steps: 0.1`: transformers 5 has no `warmup_ratio`), and the KL penalty as plain k3, the
estimator of the paper and of the authors' TRL (TRL 1.16 multiplies it by the importance ratio by default, which
changes its gradient). Everything else is GRPOConfig's own (see TRL's docs). The loss aggregation and sampling
`top_k` of the authors' runs (`loss_type: bnpo`, `top_k: 50`, TRL 0.18's defaults) are set by the paper recipes,
not here: recipes/README.md lists every field of every recipe with its source. YAML recipes set these fields by
name and CLI flags override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trl import GRPOConfig


ANNOTATORS = ("online", "offline")
SELF_CERTAINTY_SOURCES = ("auto", "generation", "logprob_pass", "separate_pass")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


GUARD_ACTIONS = ("off", "warn", "stop")
SCHEDULINGS = ("static", "refill")  # generation_scheduling (intuitor.training.rollouts)


@dataclass
class IntuitorConfig(GRPOConfig):
    # --- INTUITOR ----------------------------------------------------------------------------------------------
    rewards: list[str] = field(
        default_factory=lambda: ["self_certainty"],
        metadata={
            "help": "Rewards as NAME[:WEIGHT] from the registry (`intuitor rewards` lists them), e.g. "
            "`self_certainty accuracy:0` (weight 0 = logged for monitoring only, as the paper does with accuracy). "
            "Ignored when reward_funcs are passed to the trainer directly."
        },
    )
    annotator: str = field(
        default="online",
        metadata={
            "help": "Who scores self-certainty: `online` (the current policy, the paper's method: scores come from "
            "the very weights that generated the rollouts) or `offline` (a frozen model: the paper's Figure 7 "
            "comparison, which the policy learns to exploit)."
        },
    )
    annotator_model: str | None = field(
        default=None,
        metadata={"help": "Offline annotator: a model path or hub id. Default: a frozen copy of the initial policy."},
    )
    self_certainty_temperature: float = field(
        default=1.0,
        metadata={
            "help": "Temperature applied to the logits before self-certainty. 1.0 scores the model's own "
            "distribution p(.|q,o<i) as in the paper's definition; set it to `temperature` to score the sampling "
            "distribution instead."
        },
    )
    shifted_self_certainty: bool = field(
        default=False,
        metadata={
            "help": "Compatibility only: reproduce the authors' off-by-one alignment (skips the first response "
            "position, scores the one after the last token). Forces a separate scoring pass."
        },
    )
    self_certainty_source: str = field(
        default="auto",
        metadata={
            "help": "Where the online annotator's statistics come from. `auto`: the logits `generate` computes "
            "(transformers generation, plain decoding), else TRL's old-policy log-prob pass when TRL runs one "
            "(vLLM with vllm_importance_sampling_correction, or gradient_accumulation_steps not a multiple of "
            "steps_per_generation x num_iterations), else a separate chunked pass. `generation`, `logprob_pass`, "
            "`separate_pass` force one (an error says when it cannot be taken)."
        },
    )
    generation_scheduling: str = field(
        default="static",
        metadata={
            "help": "How the transformers path generates rollouts. `static`: TRL's `model.generate` on the padded "
            "batch, decoding finished rows as padding until the longest one ends. `refill`: intuitor's scheduler "
            "(the one `intuitor eval` uses): a finished completion leaves the batch, the G copies of a prompt share "
            "one prefill; the same sampling law, another random stream (so other draws than `static`). Not with "
            "vLLM, continuous batching, beam search or repetition penalties (an error says which)."
        },
    )
    allow_low_precision_weights: bool | None = field(
        default=None,
        metadata={
            "help": "Train bf16/fp16 weights without fp32 master weights (a plain, DDP or FSDP launch of a model "
            "loaded with model_dtype: bfloat16)? AdamW steps below bf16's resolution (~0.4% of a weight) round "
            "away, so most weights barely move. `false`: refused (what `intuitor train` uses when unset); `true`: "
            "allowed; unset in Python: a warning, as GRPOTrainer (a drop-in must not refuse what TRL accepts). "
            "Fix: load float32 weights (bf16 autocast still computes in bf16) or launch with DeepSpeed "
            "(recipes/accelerate/zero2.yaml, zero3.yaml), which keeps fp32 master weights."
        },
    )
    answer_extractor: str | None = field(
        default=None,
        metadata={
            "help": "Task whose answer extractor the label-free rewards and metrics use (plurality vote, group "
            "agreement). Default: the training task."
        },
    )
    advantage_std_floor: float | None = field(
        default=None,
        metadata={
            "help": "Floor on each group's reward std when z-scoring (guards against amplified noise once a "
            "group's samples are nearly alike). Needs scale_rewards='none' (set automatically)."
        },
    )
    # --- Collapse guard ---------------------------------------------------------------------------------------
    guard: str = field(
        default="off",
        metadata={"help": "Collapse guard action: `off`, `warn` (log a warning) or `stop` (save a checkpoint, stop)."},
    )
    guard_window: int = field(
        default=10, metadata={"help": "Trailing window (logging steps) that spikes and drops are measured against."}
    )
    guard_warmup: int = field(default=5, metadata={"help": "Logging steps before the guard starts judging."})
    guard_patience: int = field(
        default=2, metadata={"help": "Consecutive logging steps a condition must hold before the guard acts."}
    )
    guard_self_certainty_drop: float | None = field(
        default=0.10,
        metadata={
            "help": "Label-free: act when the mean self-certainty falls this fraction below its running peak "
            "(None disables)."
        },
    )
    guard_agreement_drop: float | None = field(
        default=0.15,
        metadata={
            "help": "Label-free: act when group answer agreement (share matching the plurality) falls this much "
            "(absolute) below its running peak (None disables)."
        },
    )
    guard_length_spike: float | None = field(
        default=2.0, metadata={"help": "Act when mean completion length exceeds this multiple of the trailing mean."}
    )
    guard_repetition_spike: float | None = field(
        default=0.25,
        metadata={"help": "Act when the repeated-n-gram share rises this much (absolute) over the trailing mean."},
    )
    guard_entropy_collapse: float | None = field(
        default=0.25,
        metadata={"help": "Act when token entropy falls below this fraction of the trailing mean."},
    )
    guard_kl_spike: float | None = field(
        default=5.0, metadata={"help": "Act when KL to the reference exceeds this multiple of the trailing mean."}
    )
    guard_baseline: int = field(
        default=10,
        metadata={
            "help": "Logging steps after the warm-up whose mean is the early-training baseline that slow "
            "drifts (length_drop/growth, repetition_rise, kl_growth) and the noise of self_certainty_rise are "
            "measured against."
        },
    )
    guard_length_drop: float | None = field(
        default=0.5,
        metadata={
            "help": "Act when the smoothed mean completion length falls below this fraction of the baseline "
            "(length collapse; None disables)."
        },
    )
    guard_length_growth: float | None = field(
        default=3.0,
        metadata={
            "help": "Act when the smoothed mean completion length exceeds this multiple of the baseline "
            "(length explosion; None disables)."
        },
    )
    guard_repetition_rise: float | None = field(
        default=0.15,
        metadata={"help": "Act when the smoothed repeated-n-gram share exceeds the baseline by this much (absolute)."},
    )
    guard_kl_growth: float | None = field(
        default=None,
        metadata={
            "help": "Act when the smoothed KL to the reference exceeds this multiple of its baseline (and "
            "0.05). Off by default: on the demo it rose in healthy learning too (README, Collapse guard)."
        },
    )
    guard_self_certainty_rise: float | None = field(
        default=None,
        metadata={
            "help": "Reward-explosion budget: act when smoothed self-certainty gains more than this many of its "
            "own step-to-step noise sigmas within guard_window steps (None disables)."
        },
    )
    guard_vote_calibration_drop: float | None = field(
        default=0.10,
        metadata={
            "help": "Label-free: act when the smoothed within-group AUROC of self-certainty for agreeing with "
            "the plurality answer (`completions/vote_calibration`) falls this much below its running peak."
        },
    )
    guard_save_steps: int | None = field(
        default=None,
        metadata={
            "help": "The guard saves a checkpoint every this many steps (whatever save_strategy says), so "
            "that one from before an alarm exists for the guard to name in guard_keep.json."
        },
    )

    # --- Paper defaults for fields GRPOConfig already has ------------------------------------------------------
    learning_rate: float = field(default=3e-6, metadata={"help": "Paper: 3e-6 (MATH), 1e-6 (INTUITOR-Code)."})
    beta: float = field(default=0.005, metadata={"help": "KL coefficient to the initial model. Paper: 0.005."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature. Paper: 0.9."})
    num_generations: int | None = field(default=7, metadata={"help": "Samples per prompt (G). Paper: 7."})
    per_device_train_batch_size: int = field(
        default=7,
        metadata={
            "help": "Completions per device per step. Default 7, one group of G=7, so the defaults are valid on any "
            "number of processes (TrainingArguments' 8 is no multiple of 7). The paper's 128 prompts x 7 = 896 "
            "completions per update is a recipe's choice, e.g. 14 per device x 8 GPUs x 8 accumulation steps."
        },
    )
    per_device_eval_batch_size: int = field(
        default=7, metadata={"help": "Completions per device per evaluation step; 7 holds one group of G=7."}
    )
    max_completion_length: int | None = field(default=3072, metadata={"help": "Paper: 3,072 tokens."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Paper: cosine."})
    warmup_steps: float = field(
        default=0.1,
        metadata={
            "help": "Linear warm-up: an integer is a number of updates, a float in [0, 1) a fraction of the run "
            "(transformers 5: its scheduler reads only this field; there is no `warmup_ratio`). Paper: 10%."
        },
    )
    use_bias_correction_kl: bool = field(
        default=False,
        metadata={
            "help": "TRL's bias-corrected KL: the k3 term times the importance ratio (DeepSeek-V3.2), whose gradient "
            "differs from plain k3 even on-policy. False = plain k3, the estimator of the paper and of the authors' "
            "TRL (TRL 1.16's own default is True)."
        },
    )

    def __post_init__(self):
        if self.bf16 is None and not self.fp16 and (self.use_cpu or not _cuda()):
            # GRPOConfig turns bf16 on by default; on a CPU that means bf16 autocast, which changes the samples
            # of small fp32 models. Off unless asked for explicitly.
            self.bf16 = False
        if self.annotator not in ANNOTATORS:
            raise ValueError(f"annotator={self.annotator!r}: choose one of {', '.join(ANNOTATORS)}")
        if self.annotator_model and self.annotator != "offline":
            raise ValueError("annotator_model is set but annotator is 'online': set annotator: offline to use it")
        if self.self_certainty_source not in SELF_CERTAINTY_SOURCES:
            raise ValueError(
                f"self_certainty_source={self.self_certainty_source!r}: choose one of {', '.join(SELF_CERTAINTY_SOURCES)}"
            )
        if self.generation_scheduling not in SCHEDULINGS:
            raise ValueError(
                f"generation_scheduling={self.generation_scheduling!r}: choose one of {', '.join(SCHEDULINGS)}"
            )
        if self.guard not in GUARD_ACTIONS:
            raise ValueError(f"guard={self.guard!r}: choose one of {', '.join(GUARD_ACTIONS)}")
        if self.self_certainty_temperature <= 0:
            raise ValueError("self_certainty_temperature must be > 0")
        if self.num_generations is not None and self.num_generations < 2:
            raise ValueError(
                f"num_generations={self.num_generations}: group-normalised rewards need at least 2 samples per "
                "prompt; set num_generations >= 2"
            )
        world = int(os.environ.get("WORLD_SIZE", "1"))
        batch = self.per_device_train_batch_size * world * self.gradient_accumulation_steps
        if (
            self.num_generations
            and self.generation_batch_size is None
            and self.steps_per_generation is None
            and batch % self.num_generations
        ):
            raise ValueError(
                f"num_generations={self.num_generations} does not divide the batch of completions per update "
                f"(per_device_train_batch_size={self.per_device_train_batch_size} x {world} process(es) x "
                f"gradient_accumulation_steps={self.gradient_accumulation_steps} = {batch}): every prompt's group "
                "must fit in one batch; change per_device_train_batch_size or num_generations"
            )
        if self.advantage_std_floor is not None:
            if self.advantage_std_floor <= 0:
                raise ValueError("advantage_std_floor must be > 0 (or unset)")
            if self.multi_objective_aggregation != "sum_then_normalize":
                raise ValueError(
                    "advantage_std_floor: set multi_objective_aggregation: sum_then_normalize "
                    "('normalize_then_sum' z-scores each reward per group again, undoing the floor)"
                )
            self.scale_rewards = "none"  # the floor-normalised reward is already z-scored
        if self.activation_checkpointing is None and self.gradient_checkpointing is not None:
            # GRPOConfig still sets the pre-5.x name (its default is True), so transformers would warn on every run
            # about a field nobody set: carry the value over to its 5.x name, which is what transformers reads.
            self.activation_checkpointing = self.gradient_checkpointing
        super().__post_init__()
