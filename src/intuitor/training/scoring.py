"""Self-certainty from a forward pass: read inside the pass TRL already runs, or a separate pass safe under sharding.

Two ways the trainer gets per-response self-certainty and entropy when the generation-time recorder cannot be used
(vLLM generation, an offline annotator, the shifted variant), both built on one hook on the model's backbone
(`ForwardScorer`): it takes the backbone's last hidden states *inside* the model's forward, projects only the
scored positions through the LM head, a chunk of rows at a time (the [B, T, V] logits never exist), and reduces
each chunk with `intuitor.certainty.token_statistics` (float32, the same kernel as everywhere else).

1. `logprob_pass_scorer`: inside TRL's own old-policy log-prob pass. In `GRPOTrainer._generate_and_score_completions`
   (TRL 1.16.0) that pass runs over prompt + completion, with the weights that generated the rollout, *before* the
   rewards are computed, when `gradient_accumulation_steps % (steps_per_generation * num_iterations) != 0` or with
   vLLM and `vllm_importance_sampling_correction` (TRL's default): `trl_runs_logprob_pass` repeats that condition
   (pinned by tests/test_trl_contract.py). The statistics come from the positions that predict each completion
   token, the ones TRL scores. No backbone pass is added; the cost is a second projection of the completion
   positions through the LM head (TRL's fused head computes log-probs at the sampling temperature and no log Z or
   mean logit we could reuse at `self_certainty_temperature`). TRL runs no such pass with transformers/vLLM
   generation when the steps are aligned and (for vLLM) `vllm_importance_sampling_correction=False`; there the
   trainer keeps the separate pass. The reference-model pass (beta > 0) scores the *initial* model, so it can
   serve only an offline annotator; it is not used here.
2. `pass_statistics`: a separate no-grad pass (what `certainty.response_statistics` computes), made collective-safe
   for DeepSpeed ZeRO-3 and FSDP. `response_statistics` calls the unwrapped backbone and the LM head module once
   per chunk of scored positions: under sharding every process must join every gathered forward, and the number
   of batches and chunks follows each process's own completions, so unequal counts hang (or, with FSDP's root
   parameters never gathered, fail). Here every process calls the *wrapped* model (its sharding hooks gather the
   weights as in training) the same number of times: the largest batch count across processes (an all-reduce of
   one integer), padded with a two-token dummy batch that scores nothing; the LM head is gathered once per call
   (`full_tensor()` for an FSDP2 DTensor, TRL's `maybe_gather_lm_head_ctx` under ZeRO-3) and the chunks are then
   plain local matmuls, whose count may differ between processes. The model returns logits for its last position
   only (`logits_to_keep=1`). A LoRA adapter on the LM head itself is called as a module, which is correct but not
   collective-safe under ZeRO-3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from intuitor.certainty import CHUNK_ELEMENTS, ResponseStatistics, logit_head, token_statistics


def trl_runs_logprob_pass(trainer) -> bool:
    """Whether TRL 1.16's `_generate_and_score_completions` runs the old-policy log-prob pass (repeats its test)."""
    generate_every = trainer.args.steps_per_generation * trainer.num_iterations
    return bool(
        trainer.args.gradient_accumulation_steps % generate_every != 0
        or (trainer.use_vllm and trainer.vllm_importance_sampling_correction)
    )


def _base(model):
    """The transformers model under DDP/DeepSpeed/FSDP1 wrappers and PEFT."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class ForwardScorer:
    """A forward hook on the backbone that reduces chosen positions' logits to self-certainty and entropy sums.

    `select(kwargs, hidden)` returns the (row, position) indices to score in this call: the hidden state at
    position t gives the logits that predict token t + 1. Each call appends float32 [B] sums and counts to
    `self.calls`.
    """

    def __init__(self, model, temperature: float = 1.0, chunk_elements: int = CHUNK_ELEMENTS):
        self.base = _base(model)
        self.temperature = temperature
        self.chunk_elements = chunk_elements
        self.select = None
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._handle = None

    def __enter__(self):
        self._handle = self.base.base_model.register_forward_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        self._handle = None
        self.select = None

    def _hook(self, module, args, kwargs, output):
        hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state  # (B, T, H)
        index_b, index_t = self.select(kwargs, hidden)
        self.calls.append(self.reduce(hidden, index_b, index_t))

    @torch.no_grad()
    def reduce(self, hidden: torch.Tensor, index_b: torch.Tensor, index_t: torch.Tensor):
        """Sums of self-certainty and entropy per row of `hidden`, over the given positions, and their counts."""
        rows = hidden.size(0)
        head = self.base.get_output_embeddings()
        plain = type(head) is torch.nn.Linear or not hasattr(head, "base_layer")
        weight, bias = head.weight, getattr(head, "bias", None)
        try:
            from torch.distributed.tensor import DTensor
        except ImportError:  # pragma: no cover - old torch
            DTensor = ()
        if plain and isinstance(weight, DTensor):  # FSDP2 head not gathered by a module call: gather it once
            weight = weight.full_tensor()
            bias = bias.full_tensor() if isinstance(bias, DTensor) else bias
        transform = logit_head(self.base)  # forward()'s own head and post-head steps (soft-cap, logit scales)
        sc_sum = torch.zeros(rows, dtype=torch.float32)
        ent_sum = torch.zeros(rows, dtype=torch.float32)
        counts = torch.bincount(index_b.cpu(), minlength=rows).float()
        with _gathered(weight, bias) if plain else _null():  # once per call, whatever the number of chunks
            h = hidden[index_b.to(hidden.device), index_t.to(hidden.device)]  # (N, H): only the scored positions
            if plain:  # e.g. TRL's cast_lm_head_to_fp32 keeps a float32 head under a bf16 backbone
                h = h.to(weight.device, weight.dtype)
            step = max(1, self.chunk_elements // (weight if plain else head.weight).shape[0])  # rows per chunk
            sc_tok, ent_tok = [], []

            def project(module, x):  # the output embeddings with their gathered weights; other modules as they are
                return F.linear(x.to(weight.device, weight.dtype), weight, bias) if module is head else module(x)

            for s in range(0, h.size(0), step):
                logits = transform(self.base, h[s : s + step], project if plain else None)  # (n, V): forward()'s
                sc, ent = token_statistics(logits, self.temperature)
                sc_tok.append(sc)
                ent_tok.append(ent)
        if sc_tok:
            index = index_b.cpu()
            sc_sum.index_add_(0, index, torch.cat(sc_tok).float().cpu())
            ent_sum.index_add_(0, index, torch.cat(ent_tok).float().cpu())
        return sc_sum, ent_sum, counts

    def statistics(self, expected_counts: list[int] | None = None) -> ResponseStatistics:
        """Per-row means over every call so far, rows in call order (0.0 for a row with no scored token)."""
        if not self.calls:
            raise RuntimeError("the scoring hook saw no forward call of the model")
        sc = torch.cat([c[0] for c in self.calls])
        ent = torch.cat([c[1] for c in self.calls])
        counts = torch.cat([c[2] for c in self.calls])
        if expected_counts is not None and counts.tolist() != [float(c) for c in expected_counts]:
            raise RuntimeError(
                f"the forward pass scored {counts.long().tolist()} tokens per row, the completions have "
                f"{list(expected_counts)}: the pass does not cover exactly these completions"
            )
        denom = counts.clamp(min=1)
        return ResponseStatistics(sc / denom, ent / denom)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _gathered(weight, bias):
    """TRL's ZeRO-3 gather of the LM head for a direct weight access (a null context elsewhere)."""
    try:
        from trl.trainer.utils import maybe_gather_lm_head_ctx
    except ImportError:  # pragma: no cover - TRL is a dependency; keep the module importable without it
        return _null()
    return maybe_gather_lm_head_ctx(weight, bias)


# ---- 1. inside TRL's old-policy log-prob pass ---------------------------------------------------------------------


def logprob_pass_scorer(model, logits_to_keep: int, temperature: float = 1.0) -> ForwardScorer:
    """A scorer for TRL's `_get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep)`.

    TRL left-pads prompts, right-pads completions and keeps the last `logits_to_keep` positions: completion token
    j of a row sits at T - K + j and is predicted by the hidden state at T - K + j - 1; padding has mask 0.
    """
    scorer = ForwardScorer(model, temperature)

    def select(kwargs, hidden):
        mask = kwargs.get("attention_mask")
        width = hidden.size(1)
        if mask is None:
            mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        if width - logits_to_keep - 1 < 0:
            raise ValueError("an empty prompt has no position that predicts the first completion token")
        index_b, j = mask[:, width - logits_to_keep :].nonzero(as_tuple=True)  # completion tokens present
        return index_b, j + (width - logits_to_keep - 1)

    scorer.select = select
    return scorer


# ---- 2. a separate pass, the same number of model calls on every process -------------------------------------------


def _max_across_processes(value: int) -> int:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


@torch.no_grad()
def pass_statistics(
    model,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    temperature: float = 1.0,
    shifted: bool = False,
    batch_size: int = 8,
    pad_id: int = 0,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> ResponseStatistics:
    """Per-response mean self-certainty and entropy under `model` (wrapped or not), by one no-grad forward per
    batch through the model's own `forward`; every process makes the same number of calls (module docstring).

    Same values and arguments as `intuitor.certainty.response_statistics` (tests/test_trainer.py compares them).
    Call it on every process, or on none: it synchronises the number of batches across processes.
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    offset = 0 if shifted else -1  # the position whose logits score completion token 0
    if any(len(p) + offset < 0 and len(c) > 0 for p, c in zip(prompt_ids, completion_ids)):
        raise ValueError("an empty prompt has no position that predicts the first completion token")
    n = len(prompt_ids)
    local_calls = math.ceil(n / batch_size)
    calls = _max_across_processes(local_calls)
    device = next(_base(model).parameters()).device
    sc_out = torch.zeros(n, dtype=torch.float32)
    ent_out = torch.zeros(n, dtype=torch.float32)
    with ForwardScorer(model, temperature, chunk_elements) as scorer:
        for call in range(calls):
            rows = range(call * batch_size, min((call + 1) * batch_size, n))
            if len(rows) == 0:  # padding call: another process still has a batch, join its collectives
                seqs, spans = [[pad_id, pad_id]], [(0, 0)]
            else:
                seqs = [list(prompt_ids[r]) + list(completion_ids[r]) for r in rows]
                spans = [(len(prompt_ids[r]) + offset, len(completion_ids[r])) for r in rows]
            width = max(len(s) for s in seqs)
            input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (b, T) right-padded
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for b, s in enumerate(seqs):
                input_ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
                mask[b, : len(s)] = 1
            index_b = torch.cat([torch.full((c,), b, dtype=torch.long) for b, (_, c) in enumerate(spans)])
            index_t = torch.cat([torch.arange(c, dtype=torch.long) + p for p, c in spans])
            scorer.select = lambda kwargs, hidden, ib=index_b, it=index_t: (ib, it)
            scorer.calls.clear()
            model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=torch.arange(width, device=device).expand(len(seqs), width),
                use_cache=False,
                logits_to_keep=1,
            )
            if len(rows) == 0:
                continue
            if len(scorer.calls) != 1:
                raise RuntimeError(f"the backbone ran {len(scorer.calls)} times in one forward call of the model")
            sc_sum, ent_sum, counts = scorer.calls[0]
            sc_out[rows.start : rows.stop] = sc_sum / counts.clamp(min=1)
            ent_out[rows.start : rows.stop] = ent_sum / counts.clamp(min=1)
    return ResponseStatistics(sc_out, ent_out)


# ---- which source a trainer uses -------------------------------------------------------------------------------


def statistics_source(trainer, one_row_per_step: bool = True) -> str:
    """`generation`, `logprob_pass` or `separate_pass` for this trainer, from `args.self_certainty_source`.

    `auto` prefers the generation-time recorder (no cost at all), then TRL's log-prob pass (one LM-head projection
    of the completion positions), then the separate pass. A forced source that this configuration cannot take is
    an error saying what to change.
    """
    args = trainer.args
    requested = getattr(args, "self_certainty_source", "auto")
    recorder_ok = not trainer.use_vllm and not trainer.use_transformers_continuous_batching and one_row_per_step
    online = args.annotator == "online" and not args.shifted_self_certainty
    pass_ok = trl_runs_logprob_pass(trainer)
    if requested == "separate_pass":
        return requested
    if requested != "auto" and not online:
        why = (
            "annotator='offline' scores with its own model"
            if args.annotator != "online"
            else ("shifted_self_certainty scores other positions")
        )
        raise ValueError(f"self_certainty_source={requested!r}: {why}; use self_certainty_source: auto")
    if requested == "generation" and not recorder_ok:
        raise ValueError(
            "self_certainty_source='generation' needs transformers generation with plain sampling or greedy "
            "decoding (not vLLM, continuous batching, beam search or assisted decoding); use auto"
        )
    if requested == "logprob_pass" and not pass_ok:
        raise ValueError(
            "self_certainty_source='logprob_pass': TRL runs no old-policy log-prob pass in this configuration "
            f"(gradient_accumulation_steps={args.gradient_accumulation_steps} is a multiple of steps_per_generation="
            f"{args.steps_per_generation} x num_iterations={trainer.num_iterations}"
            + (", and vllm_importance_sampling_correction is off" if trainer.use_vllm else ", no vLLM")
            + "); set steps_per_generation or num_iterations > 1 (or use vLLM with its importance-sampling "
            "correction), or use self_certainty_source: auto"
        )
    if requested != "auto":
        return requested
    if online and recorder_ok:
        return "generation"
    if online and pass_ok:
        return "logprob_pass"
    return "separate_pass"
