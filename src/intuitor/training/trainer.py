"""IntuitorTrainer: TRL's GRPOTrainer whose rollouts carry the policy's own self-certainty.

The only change to GRPOTrainer is one override, `_generate_single_turn`, the one place that sees both the prompt
ids and the sampled completion ids. Around it:
- online annotator, transformers generation: a hook on the LM head reduces the logits `generate` computes at each
  decoding step to self-certainty and entropy. These are the logits that sampled each token, from the weights
  that generated the rollout, so the reward costs no forward pass of its own (the authors' code runs one more).
- online with vLLM (or the compatibility `shifted_self_certainty`): one no-grad pass of the policy, chunked over
  positions through the LM head so the [B, T, V] logits never exist.
- offline annotator: the same pass with a frozen model (the initial policy by default).
Rewards that need these statistics (`needs_policy_statistics`) are bound to the trainer and read them; everything
else about GRPO (loss, KL, vLLM, accelerate, DeepSpeed, PEFT) is TRL's. `tests/test_trl_contract.py` pins the TRL
behaviour this relies on.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import nullcontext

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from intuitor import check_trl_version
from intuitor.certainty import ResponseStatistics, record_generation, response_statistics
from intuitor.rewards import build_rewards, get_reward
from intuitor.training import metrics as rollout_metrics
from intuitor.training.callbacks import MetricsJsonlCallback
from intuitor.training.config import IntuitorConfig


class IntuitorTrainer(GRPOTrainer):
    """GRPO with self-certainty rewards. Drop-in for GRPOTrainer:

        IntuitorTrainer(model="Qwen/Qwen2.5-1.5B", args=IntuitorConfig(...), train_dataset=ds)

    Without `reward_funcs`, the rewards come from `args.rewards` (default: self-certainty alone). `reward_funcs`
    may mix registry names ("self_certainty", "accuracy") and TRL-style callables; `args.reward_weights` weighs them.
    """

    def __init__(self, model, reward_funcs=None, args: IntuitorConfig | None = None, train_dataset=None, **kwargs):
        check_trl_version()
        args = args or IntuitorConfig(output_dir="intuitor-output")
        if not isinstance(args, IntuitorConfig):
            raise TypeError("args must be an IntuitorConfig (it extends GRPOConfig with INTUITOR's options)")
        if train_dataset is not None and len(train_dataset) == 0:
            raise ValueError("train_dataset is empty: nothing to train on")
        if train_dataset is not None and "prompt" not in train_dataset.column_names:
            raise ValueError(
                f"train_dataset has no 'prompt' column (columns: {', '.join(train_dataset.column_names)}): "
                "rename your prompt column to 'prompt'"
            )
        if reward_funcs is None:
            reward_funcs, weights = build_rewards(args.rewards, args)
            if args.reward_weights is None:
                args.reward_weights = weights
        else:
            reward_funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
            reward_funcs = [get_reward(f, args) if isinstance(f, str) else f for f in reward_funcs]
        callbacks = list(kwargs.pop("callbacks", None) or []) + [MetricsJsonlCallback()]
        if args.guard != "off":
            from intuitor.training.guard import CollapseGuard

            callbacks.append(CollapseGuard(args))
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                         callbacks=callbacks, **kwargs)
        self._rollout: tuple[list[list[int]], ResponseStatistics] | None = None
        self.annotator = self._load_annotator() if args.annotator == "offline" else None
        for func in self.reward_funcs:
            if getattr(func, "needs_policy_statistics", False):
                func.bind(self)
        self._extract_answer = rollout_metrics.answer_extractor(args.answer_extractor, train_dataset)
        self._post_init_rewards()

    def _post_init_rewards(self) -> None:
        """Hook for reward wrappers that need the trainer (group-aware rewards gather across processes)."""
        for func in self.reward_funcs:
            if hasattr(func, "attach"):
                func.attach(self)
        if self.args.advantage_std_floor is not None:
            from intuitor.rewards.group import apply_std_floor

            apply_std_floor(self)

    def _load_annotator(self):
        """The offline annotator: a frozen model, `annotator_model` or the initial policy."""
        if self.args.annotator_model:
            from intuitor.models import load_model_and_tokenizer

            annotator, tok = load_model_and_tokenizer(self.args.annotator_model)
            if tok.get_vocab() != self.processing_class.get_vocab():
                raise ValueError(f"annotator_model {self.args.annotator_model!r} has another vocabulary than the policy")
        elif self.ref_model is not None:
            return self.ref_model  # already the frozen initial policy (beta > 0): no second copy
        else:
            annotator = copy.deepcopy(self.accelerator.unwrap_model(self.model))
        annotator.to(self.accelerator.device).eval().requires_grad_(False)
        return annotator

    # ---- the one override ---------------------------------------------------------------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = self.args
        capture = (
            self.annotator is None
            and not self.use_vllm
            and not self.use_transformers_continuous_batching
            and not args.shifted_self_certainty
        )
        policy = self.accelerator.unwrap_model(self.model)
        with record_generation(policy, args.self_certainty_temperature) if capture else nullcontext() as recorder:
            completion_ids, logprobs = super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        if capture:
            stats = recorder.statistics([len(c) for c in completion_ids])
        elif self.annotator is not None or self._needs_statistics():
            scorer = self.annotator if self.annotator is not None else policy
            stats = response_statistics(
                scorer, prompt_ids, completion_ids, args.self_certainty_temperature, shifted=args.shifted_self_certainty,
                batch_size=args.per_device_train_batch_size,
            )
        else:  # vLLM and no reward needs them: don't pay for a pass just to log
            stats = None
        self._rollout = (completion_ids, stats)
        self._log_rollout(completion_ids, stats)
        return completion_ids, logprobs

    # ---- what rewards and metrics read --------------------------------------------------------------------------
    def _needs_statistics(self) -> bool:
        return any(getattr(f, "needs_policy_statistics", False) for f in self.reward_funcs)

    def rollout_statistics(self, completion_ids) -> ResponseStatistics:
        """Statistics of the current rollout; checks they belong to exactly these completions."""
        if self._rollout is None or self._rollout[1] is None:
            raise RuntimeError("no rollout statistics recorded: rewards were called outside a generation step")
        recorded, stats = self._rollout
        if [list(c) for c in completion_ids] != [list(c) for c in recorded]:
            raise RuntimeError(
                "the completions given to the reward differ from the ones generated (tool calls or a rollout_func "
                "rewrote them): self-certainty must be scored on the generated tokens"
            )
        return stats

    def _log_rollout(self, completion_ids, stats: ResponseStatistics | None) -> None:
        mode = "train" if self.model.training else "eval"
        m = self._metrics[mode]
        if stats is not None:
            sc = self.accelerator.gather(stats.self_certainty.to(self.accelerator.device))
            ent = self.accelerator.gather(stats.entropy.to(self.accelerator.device))
            m["self_certainty/mean"].append(sc.mean().item())
            m["self_certainty/std"].append(sc.std().item() if sc.numel() > 1 else 0.0)
            m["token_entropy/mean"].append(ent.mean().item())
        rep = torch.tensor(rollout_metrics.repetition_rates(completion_ids), device=self.accelerator.device)
        m["completions/repetition_rate"].append(self.accelerator.gather(rep).mean().item())
        if self._extract_answer is not None:
            texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
            answers = gather_object([self._extract_answer(t) for t in texts])
            group = self.num_generations if mode == "train" else self.num_generations_eval
            m["completions/agreement"].append(rollout_metrics.group_agreement(answers, group))


def warn_once(msg: str) -> None:
    warnings.warn(msg, stacklevel=2)
