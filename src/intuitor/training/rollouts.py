"""Training rollouts through the refill scheduler (`generation_scheduling: refill`, issue 32).

TRL 1.16's transformers path hands one `model.generate` call all G x prompts completions of a generation batch and
decodes the padded batch until its longest completion ends: a row that reached EOS at token 20 is decoded as
padding for the other 108 steps of a 128-token budget, and each prompt's prompt is prefilled G times. On a CPU a
decoding step of SmolLM2-135M costs twice as much at 28 rows as at 8 (benchmarks/README.md), so those rows are paid
for. Here the same rollouts come from `intuitor.generation.scheduling.refill_generate` with every row in flight:
a finished row leaves the batch and its KV cache, and the G copies of a prompt share one prefill.

The sampling law is generate's (temperature, top-k, top-p, min-p warpers, in its order); the random stream is
not (one seeded generator per completion), so a run's draws differ from `static`'s. The completions are cut as
TRL cuts them (through the first EOS), and self-certainty is recorded from the logits that sampled each token,
handed to each completion whatever row it sat in (tests compare it with the float64 forward).
"""

from __future__ import annotations

import torch
from trl.models import unwrap_model_for_generation

from intuitor.certainty import ResponseStatistics
from intuitor.generation.scheduling import refill_generate, request_statistics


# logits processors refill does not implement; any of them set to a non-default value refuses refill
_UNSUPPORTED = {
    "repetition_penalty": (None, 1.0),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "stop_strings": (None,),
}


def one_row_per_step(generation_config) -> bool:
    """Does `generate` run the LM head once per decoding step on exactly the returned rows?

    True for greedy and multinomial sampling. Beam search (num_beams > 1) scores num_beams rows per sequence and
    reorders them; contrastive search, DoLa, assisted/prompt-lookup decoding and custom `generate` code score
    candidate rows or positions that are not the sampled path. Those use the scoring pass instead (and are
    not what the refill scheduler decodes).
    """
    if generation_config is None:
        return True
    get = lambda name, default=None: getattr(generation_config, name, default)  # noqa: E731
    return (
        (get("num_beams") or 1) == 1
        and (get("num_return_sequences") or 1) == 1
        and not get("penalty_alpha")
        and get("dola_layers") is None
        and get("prompt_lookup_num_tokens") is None
        and get("assistant_early_exit") is None
        and get("custom_generate") is None
    )


def refill_refusal(trainer) -> str | None:
    """Why `generation_scheduling: refill` cannot generate this trainer's rollouts (None: it can)."""
    args = trainer.args
    if args.use_vllm:
        return "use_vllm is set (vLLM schedules its own batches)"
    if getattr(trainer, "use_transformers_continuous_batching", False):
        return "use_transformers_continuous_batching is set"
    if getattr(trainer, "_is_vlm", False):
        return "the model is a vision-language model"
    if trainer._needs_token_statistics():
        return "a token-level reward reads per-token log-probabilities, which only the static recorder keeps"
    config = trainer.generation_config
    if not one_row_per_step(config):
        return "the generation config asks for beam search, contrastive, DoLa, assisted or custom decoding"
    for name, defaults in _UNSUPPORTED.items():
        value = getattr(config, name, None)
        if value not in defaults:
            return f"generation option {name}={value!r} is not implemented by the refill scheduler"
    return None


def refill_rollouts(
    trainer, prompt_ids: list[list[int]], recorder
) -> tuple[list[list[int]], ResponseStatistics | None]:
    """Completions of `prompt_ids` (TRL's order: each prompt's G copies side by side), each through its first EOS,
    and their statistics when `recorder` (a `record_generation` of the policy) is given."""
    args, config = trainer.args, trainer.generation_config
    with (
        unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=args.ds3_gather_for_generation,
            generation_kwargs=trainer.generation_kwargs,
            gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs,
        ) as model,
        torch.no_grad(),
        trainer._dist.summon_full_params(trainer.model_wrapped, recurse=False),
    ):
        requests = refill_generate(
            model,
            prompt_ids,
            batch_size=len(prompt_ids),  # every completion in flight: rows only leave
            max_new_tokens=config.max_new_tokens,
            eos_ids=list(trainer.eos_token_ids),
            pad_id=config.pad_token_id if config.pad_token_id is not None else 0,
            temperature=config.temperature if config.do_sample else 0.0,
            top_p=config.top_p if config.top_p is not None else 1.0,
            top_k=config.top_k,
            min_p=config.min_p,
            min_new_tokens=config.min_new_tokens or 0,
            recorder=recorder,
        )
    completions = [r.tokens for r in requests]  # a row ends at its first EOS (kept) or at max_new_tokens
    if recorder is None:
        return completions, None
    return completions, request_statistics(requests, [len(c) for c in completions])  # one step per token
