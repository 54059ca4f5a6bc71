"""IntuitorTrainer: TRL's GRPOTrainer whose rollouts carry the policy's own self-certainty.

The only change to GRPOTrainer is one override, `_generate_single_turn`, the one place that sees both the prompt
ids and the sampled completion ids. Around it:
- online annotator, transformers generation: a hook on the model's output reduces the logits `generate` computes
  at each decoding step (forward()'s own logits) to self-certainty and entropy. These are the logits that sampled
  each token, from the weights that generated the rollout, so the reward costs no forward pass of its own (the authors' code runs one more).
- online with vLLM: read inside TRL's old-policy log-prob pass, which TRL runs anyway (importance-sampling
  correction, on by default) before the rewards; only the completion positions are projected once more through
  the LM head, chunk by chunk (`intuitor.training.scoring`; `self_certainty_source: logprob_pass` takes this path
  with transformers generation too, where TRL runs the pass: steps_per_generation or num_iterations > 1). Where
  TRL runs no such pass (vLLM with `vllm_importance_sampling_correction: false` and aligned steps), and for the
  compatibility `shifted_self_certainty`: one no-grad pass of the policy, chunked over positions through the LM
  head so the [B, T, V] logits never exist, with the same number of model calls on every process (ZeRO-3/FSDP).
- offline annotator: that separate pass with a frozen model (the initial policy by default).
Rewards that need these statistics (`needs_policy_statistics`) are bound to the trainer and read them; everything
else about GRPO (loss, KL, vLLM, accelerate, DeepSpeed, PEFT) is TRL's. `tests/test_trl_contract.py` pins the TRL
behaviour this relies on, and `tests/trl_suite/` runs TRL's own GRPO tests against this class.

Besides, the training prompts are fitted to the chat template where it refuses the system role or is missing
(`_fit_prompts_to_template`, the same `fit_prompt` evaluation renders with), which TRL would otherwise fail on.

Drop-in means TRL's behaviour wherever the user did not ask for INTUITOR: a plain `GRPOConfig` is accepted (carried
into an `IntuitorConfig`), `reward_funcs` strings that are not registry names are reward models as in TRL,
streaming datasets work with `max_steps`. The recorder reads one logits row per sequence per decoding step, so it is
used only for plain sampling/greedy decoding; beam search, assisted or custom decoding fall back to the scoring pass
when a reward needs the statistics (and log no self-certainty metric otherwise, as with vLLM). A recording that does
not line up with the completions (e.g. a patched `generate` that bypassed the LM head) is never read as zeros: the
pass scores them, with a warning.
"""

from __future__ import annotations

import copy
import dataclasses
from contextlib import nullcontext

import torch
from accelerate.utils import gather_object
from transformers.utils import logging
from trl import GRPOConfig, GRPOTrainer

from intuitor import check_trl_version
from intuitor.certainty import (
    RecordingMismatch,
    ResponseStatistics,
    record_generation,
    record_generation_tokens,
)
from intuitor.rewards import build_rewards, check_reward_specs, resolve_reward_func
from intuitor.tasks.answers import answer_extractor, answer_grouper
from intuitor.training import metrics as rollout_metrics
from intuitor.training import rollouts, scoring
from intuitor.training.callbacks import MetricsJsonlCallback, ResumedScheduleCallback
from intuitor.training.config import IntuitorConfig


logger = logging.get_logger(__name__)


class IntuitorTrainer(GRPOTrainer):
    """GRPO with self-certainty rewards. Drop-in for GRPOTrainer:

        IntuitorTrainer(model="Qwen/Qwen2.5-1.5B", args=IntuitorConfig(...), train_dataset=ds)

    Without `reward_funcs`, the rewards come from `args.rewards` (default: self-certainty alone). `reward_funcs`
    may mix registry names ("self_certainty", "accuracy"), TRL-style callables and reward-model ids or paths (loaded
    by TRL as sequence-classification models); `args.reward_weights` weighs them. `args` may be an IntuitorConfig, a
    plain GRPOConfig (its fields are kept, INTUITOR's options take their defaults) or None (all defaults, output to
    `<model name>-INTUITOR` like TRL's `<model name>-GRPO`).
    """

    def __init__(self, model, reward_funcs=None, args: IntuitorConfig | None = None, train_dataset=None, **kwargs):
        check_trl_version()
        args = _intuitor_args(args, model)
        # A streaming IterableDataset has no len() (TRL trains on it with max_steps) and may not know its columns.
        if train_dataset is not None and hasattr(train_dataset, "__len__") and len(train_dataset) == 0:
            raise ValueError("train_dataset is empty: nothing to train on")
        columns = getattr(train_dataset, "column_names", None)
        if columns is not None and "prompt" not in columns:
            raise ValueError(
                f"train_dataset has no 'prompt' column (columns: {', '.join(columns)}): "
                "rename your prompt column to 'prompt'"
            )
        if reward_funcs is None:
            check_reward_specs(args.rewards, args.reward_weights)  # reward_weights must not contradict the specs
            reward_funcs, weights = build_rewards(args.rewards, args)
            if args.reward_weights is None:
                args.reward_weights = weights
        else:
            reward_funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
            reward_funcs = [resolve_reward_func(f, args) for f in reward_funcs]
        callbacks = list(kwargs.pop("callbacks", None) or []) + [MetricsJsonlCallback(), ResumedScheduleCallback()]
        if args.guard != "off":
            from intuitor.training.guard import CollapseGuard

            callbacks.append(CollapseGuard(args))
        super().__init__(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_dataset,
            callbacks=callbacks,
            **kwargs,
        )
        from intuitor.training.callbacks import CompletionsJsonlCallback
        from intuitor.training.precision import check_weight_precision

        self.add_callback(CompletionsJsonlCallback(self._logs))  # reads TRL's rollout buffer: built by super()

        check_weight_precision(self.model, args, self.accelerator.distributed_type)
        self._fit_prompts_to_template()
        self._rollout: tuple[list[list[int]], ResponseStatistics] | None = None
        self.annotator = self._load_annotator() if args.annotator == "offline" else None
        self._statistics_source = scoring.statistics_source(self, rollouts.one_row_per_step(self.generation_config))
        if args.generation_scheduling == "refill" and (why := rollouts.refill_refusal(self)):
            raise ValueError(f"generation_scheduling: refill cannot generate these rollouts: {why}; use static")
        self._pending_pass: list[list[int]] | None = None  # completions whose statistics TRL's log-prob pass gives
        for func in self.reward_funcs:
            if getattr(func, "needs_policy_statistics", False):
                func.bind(self)
        self._extract_answer = answer_extractor(args.answer_extractor, train_dataset)
        self._answer_classes = answer_grouper(args.answer_extractor)  # the task's own equality
        self._post_init_rewards()

    def _issue_warnings_after_load(self, load_result) -> None:
        """Resuming warns only about keys really missing. A checkpoint of a model with tied embeddings stores the
        shared tensor once (`lm_head.weight` is not saved), and transformers 5.23 warned about it on every resume
        (it only exempts `_keys_to_ignore_on_save`, empty for Qwen2): a tied key whose source was loaded is tied
        back, not missing."""
        tied = getattr(self.model, "all_tied_weights_keys", None) or {}
        missing = list(load_result.missing_keys)
        really = [k for k in missing if not (k in tied and tied[k] not in missing)]
        if len(really) < len(missing) and hasattr(load_result, "_replace"):
            self.model.tie_weights()
            load_result = load_result._replace(missing_keys=really)
        super()._issue_warnings_after_load(load_result)

    def _fit_prompts_to_template(self) -> None:
        """Training prompts fitted to the chat template as evaluation fits them (`generation.base.fit_prompt`): a
        template that refuses the system role gets the system text in the first user turn (Gemma 2's raises on
        the first step otherwise); a tokenizer without a template gets the plain format."""
        from intuitor.generation.base import fit_dataset

        if "prompt" in (getattr(self.train_dataset, "column_names", None) or ()):  # streaming data: as TRL has it
            self.train_dataset = fit_dataset(self.train_dataset, self.processing_class)

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
                raise ValueError(
                    f"annotator_model {self.args.annotator_model!r} has another vocabulary than the policy"
                )
        elif self.ref_model is not None:
            return self.ref_model  # already the frozen initial policy (beta > 0): no second copy
        else:
            annotator = copy.deepcopy(self.accelerator.unwrap_model(self.model))
            # TRL's fused LM head is an instance `forward` whose closure calls the *policy's* original forward: in
            # the copy it would run the policy. The annotator needs no fused head: back to the class's forward.
            annotator.__dict__.pop("forward", None)
        annotator.to(self.accelerator.device).eval().requires_grad_(False)
        return annotator

    # ---- the one override ---------------------------------------------------------------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = self.args
        needed = self.annotator is not None or self._needs_statistics()  # a reward reads them (else: metrics only)
        # `generation` already means: online, not shifted, transformers generation with one logits row per step.
        capture = self._statistics_source == "generation"
        policy = self.accelerator.unwrap_model(self.model)
        tokens = self._needs_token_statistics()  # the token-level estimators: keep each sampled token's log p too
        record = record_generation_tokens if tokens else record_generation
        refill = args.generation_scheduling == "refill" and not images and not multimodal_fields
        stats = None
        with record(policy, args.self_certainty_temperature) if capture else nullcontext() as recorder:
            if refill:  # finished rows leave, a prompt's G copies share a prefill (training/rollouts.py)
                completion_ids, stats = rollouts.refill_rollouts(self, prompt_ids, recorder)
                logprobs = None  # as TRL's transformers path
            else:
                completion_ids, logprobs = super()._generate_single_turn(
                    prompt_ids, images, multimodal_fields, num_generations, has_tool_images
                )
        if capture and not refill:
            try:
                stats = recorder.statistics([len(c) for c in completion_ids])
                if tokens:
                    stats = recorder.with_tokens(stats, completion_ids)
            except RecordingMismatch as err:  # never read a recording that does not match as zeros
                logger.warning_once(
                    f"IntuitorTrainer: the generation-time recorder does not match the completions ({err}); "
                    + ("scoring them with a separate pass instead." if needed else "self-certainty is not logged.")
                )
        if stats is None and not capture and self._statistics_source == "logprob_pass":
            # Read in TRL's old-policy log-prob pass, which runs before the rewards (_get_per_token_logps_and_entropies)
            self._pending_pass = completion_ids
            self._rollout = (completion_ids, None)
            return completion_ids, logprobs
        if stats is None and needed:  # vLLM, offline annotator, beam search, or a recording that did not match
            # Through the wrapped model, the same number of calls on every process: safe under ZeRO-3 / FSDP.
            stats = scoring.pass_statistics(
                self.annotator if self.annotator is not None else self.model,
                prompt_ids,
                completion_ids,
                args.self_certainty_temperature,
                shifted=args.shifted_self_certainty,
                batch_size=args.per_device_train_batch_size,
                pad_id=self._pad_id_for_scoring(),
            )
        # else, with no reward needing them and no usable recording: don't pay for a pass just to log
        self._rollout = (completion_ids, stats)
        self._log_rollout(completion_ids, stats)
        return completion_ids, logprobs

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        """TRL's log-prob pass; its first no-grad call on the policy after a `logprob_pass` rollout (the old-policy
        pass: TRL runs it before the reference pass and the rewards) also yields the rollout's statistics."""
        pending = self._pending_pass
        if pending is None or model is not self.model or torch.is_grad_enabled():
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        self._pending_pass = None
        with scoring.logprob_pass_scorer(model, logits_to_keep, self.args.self_certainty_temperature) as scorer:
            out = super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        stats = scorer.statistics([len(c) for c in pending])
        self._rollout = (pending, stats)
        self._log_rollout(pending, stats)
        return out

    def _pad_id_for_scoring(self) -> int:
        pad = getattr(self.processing_class, "pad_token_id", None)
        return int(pad) if pad is not None else 0

    # ---- what rewards and metrics read --------------------------------------------------------------------------
    def _needs_statistics(self) -> bool:
        return any(getattr(f, "needs_policy_statistics", False) for f in self.reward_funcs)

    def _needs_token_statistics(self) -> bool:
        return any(getattr(getattr(f, "func", f), "needs_token_statistics", False) for f in self.reward_funcs)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards (gathered: every process holds all groups), then, when a reward is named `accuracy` (the
        gold answers, `accuracy:0` in every paper recipe), how well each other reward ranks right above wrong within
        its group: `alignment/<reward>/auroc` and `alignment/<reward>/top1` (`intuitor.training.metrics`)."""
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        names = list(self.reward_func_names)
        if "accuracy" in names:
            mode = "train" if self.model.training else "eval"
            group = self.num_generations if mode == "train" else self.num_generations_eval
            table = rewards_per_func.float().cpu()
            correct = table[:, names.index("accuracy")].tolist()
            for k, name in enumerate(names):
                if name == "accuracy":
                    continue
                for key, value in rollout_metrics.alignment(table[:, k].tolist(), correct, group).items():
                    # NaN (null in metrics.jsonl) when no group qualifies, e.g. none holds both right and wrong
                    self._metrics[mode][f"alignment/{name}/{key}"].append(value)
        return rewards_per_func

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
            classes = self._answer_classes
            m["completions/agreement"].append(rollout_metrics.group_agreement(answers, group, classes))
            if stats is not None:  # label-free: does self-certainty still rank the group's vote first? (guard)
                m["completions/vote_calibration"].append(
                    rollout_metrics.vote_calibration(sc.tolist(), answers, group, classes)
                )


def _intuitor_args(args, model) -> IntuitorConfig:
    """The trainer's config: an IntuitorConfig as given, defaults for None, a GRPOConfig carried over field by field."""
    if isinstance(args, IntuitorConfig):
        return args
    if args is None:  # TRL names the default output folder after the model: `<name>-GRPO`
        name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
        return IntuitorConfig(output_dir=f"{name.rstrip('/').split('/')[-1]}-INTUITOR")
    if not isinstance(args, GRPOConfig):
        raise TypeError(f"args must be an IntuitorConfig or a GRPOConfig, got {type(args).__name__}")
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(GRPOConfig) if f.init}
    # GRPOConfig.__post_init__ derived one of these two from the other; give back only what decides both.
    if (
        values["generation_batch_size"]
        == args.per_device_train_batch_size * args.world_size * args.steps_per_generation
    ):
        values["generation_batch_size"] = None
    else:
        values["steps_per_generation"] = None
    new = IntuitorConfig(**values)
    logger.warning(
        "IntuitorTrainer: args is a GRPOConfig; its fields were carried into an IntuitorConfig and INTUITOR's own "
        f"options take their defaults (rewards={new.rewards} when no reward_funcs are given, "
        f"annotator={new.annotator!r}, guard={new.guard!r})."
    )
    return new
