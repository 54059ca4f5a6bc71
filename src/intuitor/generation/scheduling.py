"""Refill ("in-flight") batching for the transformers backend: no decoding step is spent on a finished row.

`model.generate` decodes a padded batch until its longest row ends, so a batch of 8 where one response runs to the
token cap decodes the 7 finished rows as padding all the while (27% of SmolLM2's decoding steps on 64 GSM8K problems
at 256 tokens, issue 32). `refill_generate` keeps `batch_size` slots busy instead: when a row ends (stop token, stop
string, token cap), it leaves the batch and its KV cache, and the next waiting prompt is prefilled and joins, so
every decoding step does `batch_size` useful rows until the queue runs dry. This is what vLLM and transformers'
own continuous batching (`generate_batch`, paged attention) do; measured on CPU, transformers' continuous batching
was 17x slower than `generate` on SmolLM2 (16 tokens x 8 prompts: 87 s against 5 s, benchmarks/README.md), so this
file does the same scheduling on the ordinary `DynamicCache`, one decoding step exactly as `generate` takes it.

The KV cache of the running rows is right-aligned: every row's last token sits in the last column, shorter rows are
left-padded (zeros, masked out), as `generate`'s left padding. A joining row is prefilled on its own cache, and the
two are aligned by left-padding the shorter one and stacked along the batch; a leaving row is dropped with
`batch_select_indices`, and columns that became padding for every remaining row are cut. Position ids come from
the attention mask (its running sum), as `generate` computes them, so RoPE sees the same positions whatever the
padding. Each step takes the float32 copy of the last-position logits, greedy argmax or temperature/top-p sampling
with transformers' own warpers, as `generate`'s `_sample` does; greedy responses are those of `generate` (tests
compare them token for token). Sampling draws from the same law with one seeded generator per request, so a
response does not depend on which rows share its batch (another random stream than the static batches').

Shared prefix: the prompts' longest common prefix (an evaluation's system prompt and chat header) is prefilled once
and its keys and values copied into every joining row, which prefills only the rest of its prompt; the row's cache
reads [prefix | padding | suffix], the padding masked and skipped by the position ids like left padding. The same
numbers up to float rounding (other matmul shapes), as batching itself gives; tests compare the responses.
Likewise, rows that join together with the same prompt (GRPO's G completions of a prompt, pass@k's samples) are
prefilled once: the prefill runs on the distinct prompts and its cache rows and logits are copied to each copy.

Self-certainty: the caller's `record_generation(model)` hook sees every forward (a joining batch's prefill, then
each decoding step) and appends one value per row of that forward; after each forward this loop reads that entry
and hands each value to the request that occupies the row, so every response gets the values of exactly the
logits that predicted its tokens, whatever slot it sat in (the shared prefix's forward predicts none: dropped).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from intuitor.certainty import ResponseStatistics


class RefillUnsupported(NotImplementedError):
    """The model's cache is not plain `DynamicLayer`s (sliding windows, quantised, static): use `generate`."""


@dataclass
class Request:
    """One sequence to generate: its prompt, what it generated so far, and the recorder's values per step."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    steps_sc: list[float] = field(default_factory=list)
    steps_ent: list[float] = field(default_factory=list)


def request_statistics(requests: Sequence[Request], lengths: Sequence[int]) -> ResponseStatistics:
    """Each request's self-certainty and entropy: the float64 mean of its first `lengths[i]` recorded steps (the
    steps that predicted the kept tokens), 0 for an empty response."""
    sc = torch.zeros(len(requests), dtype=torch.float32)
    ent = torch.zeros(len(requests), dtype=torch.float32)
    for i, (req, n) in enumerate(zip(requests, lengths)):
        if n:
            sc[i] = torch.tensor(req.steps_sc[:n], dtype=torch.float64).mean()
            ent[i] = torch.tensor(req.steps_ent[:n], dtype=torch.float64).mean()
    return ResponseStatistics(sc, ent)


def _layers(cache) -> list:
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        raise RefillUnsupported(f"refill scheduling needs a DynamicCache of DynamicLayers, got {type(cache).__name__}")
    return layers


def _pad_left(t: torch.Tensor, n: int) -> torch.Tensor:
    """(B, H, T, D) -> (B, H, n + T, D), zeros in front: padding that the attention mask hides."""
    return F.pad(t, (0, 0, n, 0)) if n else t


def _join(cache, new_cache, mask: torch.Tensor, new_mask: torch.Tensor) -> torch.Tensor:
    """Stack `new_cache`'s rows under `cache`'s (in place), right-aligned; returns the joined (B, T) mask."""
    width, new_width = mask.size(1), new_mask.size(1)
    grow, new_grow = max(0, new_width - width), max(0, width - new_width)
    for layer, new in zip(_layers(cache), _layers(new_cache)):
        layer.keys = torch.cat([_pad_left(layer.keys, grow), _pad_left(new.keys, new_grow)], dim=0)
        layer.values = torch.cat([_pad_left(layer.values, grow), _pad_left(new.values, new_grow)], dim=0)
    return torch.cat([F.pad(mask, (grow, 0)), F.pad(new_mask, (new_grow, 0))], dim=0)


def _select(cache, mask: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Keep rows `keep` (in place), then cut the columns that are padding for all of them; returns their mask."""
    idx = torch.tensor(keep, device=mask.device)
    mask = mask[idx]
    cut = int((mask.cumsum(1) == 0).sum(1).min())  # leading columns no remaining row uses
    for layer in _layers(cache):
        layer.keys, layer.values = layer.keys[idx, :, cut:], layer.values[idx, :, cut:]
    return mask[:, cut:]


def _cache_keyword(model) -> str:
    """transformers 5.25 renamed the forward's `past_key_values` to `cache` (the old name warns; gone in 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _forward(model, input_ids, mask, cache, past: int) -> torch.Tensor:
    """One forward over the new tokens (B, q) after `past` cached columns; (B, V) float32 last-position logits."""
    q = input_ids.size(1)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, -q:]  # as `generate`: positions count real tokens only
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=position_ids,
        **{_cache_keyword(model): cache},
        cache_position=torch.arange(past, past + q, device=input_ids.device),
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1].to(copy=True, dtype=torch.float32)


def refill_generate(
    model,
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    pad_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    min_p: float | None = None,
    min_new_tokens: int = 0,
    stopped: Callable[[list[int]], bool] | None = None,
    recorder=None,
    share_prefix: bool = True,
) -> list[Request]:
    """Generate for every prompt with `batch_size` rows in flight; returns the requests in the prompts' order.

    A row ends after a token of `eos_ids` (kept), after `max_new_tokens`, or when `stopped(tokens)` says so (the
    task's stop strings). `recorder` (from `record_generation(model)`, or None) gets its per-step values
    distributed to the requests. `share_prefix`: prefill the prompts' common prefix once (GSM8K's system prompt and
    chat header: 74 of SmolLM2's ~140 prompt tokens); rows joining together with the same prompt (GRPO's G
    completions of a prompt, pass@k samples) share one prefill of it as well. Raises `RefillUnsupported` before
    any decoding when the model's cache cannot be re-batched.
    """
    device = next(model.parameters()).device
    requests = [Request(list(p)) for p in prompts]
    queue = list(range(len(requests)))[::-1]  # pop() takes them in the given order
    eos = torch.tensor(list(eos_ids), device=device)
    warpers = []  # generate's sampling warpers, in its order: temperature, top-k, top-p, min-p
    if temperature > 0:
        warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        if min_p:
            warpers.append(MinPLogitsWarper(min_p))
    # The prompts' common prefix (the system prompt) is prefilled once; its KV is copied into every joining row,
    # which then prefills only its own suffix: [prefix | padding | suffix], the padding masked as any other.
    shared = len(os.path.commonprefix([r.prompt for r in requests])) if len(requests) > 1 and share_prefix else 0
    shared = min(shared, min(len(r.prompt) for r in requests) - 1) if requests else 0
    prefix = None
    if shared > 0:
        prefix = DynamicCache(config=model.config)
        _layers(prefix)
        ids = torch.tensor([requests[0].prompt[:shared]], dtype=torch.long, device=device)  # (1, P)
        _forward(model, ids, torch.ones_like(ids), prefix, 0)
        if recorder is not None:  # this forward predicts no response token
            recorder.steps_sc.pop(), recorder.steps_ent.pop()
    rngs = []
    if warpers:  # seeded from torch's global generator (the caller's seed), one per request
        base = int(torch.randint(0, 2**62, (1,)))
        rngs = [torch.Generator(device=device).manual_seed(base + i) for i in range(len(requests))]
    slots: list[int] = []  # request index of each batch row
    cache, mask = None, None
    next_ids = torch.empty(0, dtype=torch.long, device=device)  # (B,) the token each row feeds next

    def record(rows: list[int], src: list[int] | None = None) -> None:
        """Hand this forward's values to the requests in `rows`; row b read value src[b] (shared prefills)."""
        if recorder is None:
            return
        sc, ent = recorder.steps_sc.pop().tolist(), recorder.steps_ent.pop().tolist()  # (B,); keeps no history
        for b, r in enumerate(rows):
            k = b if src is None else src[b]
            requests[r].steps_sc.append(sc[k])
            requests[r].steps_ent.append(ent[k])

    def choose(logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        if min_new_tokens:  # generate's MinNewTokensLengthLogitsProcessor: no stop token before the minimum
            short = torch.tensor([len(requests[r].tokens) < min_new_tokens for r in rows], device=device)
            logits[short.unsqueeze(1) & torch.isin(torch.arange(logits.size(1), device=device), eos)] = -float("inf")
        if not warpers:
            return logits.argmax(-1)
        for w in warpers:
            logits = w(None, logits)
        probs = F.softmax(logits, dim=-1)  # (B, V)
        # each request draws from its own generator: its tokens do not depend on which rows share its batch
        return torch.cat([torch.multinomial(probs[b], 1, generator=rngs[r]) for b, r in enumerate(rows)])

    while slots or queue:
        if queue and len(slots) < batch_size:  # refill: prefill the waiting prompts together, then join them
            rows = [queue.pop() for _ in range(min(batch_size - len(slots), len(queue)))]
            first: dict[tuple[int, ...], int] = {}  # each distinct prompt among them is prefilled once
            src = [first.setdefault(tuple(requests[r].prompt), len(first)) for r in rows]
            uniq = list(first)  # the distinct prompts, in order of first appearance
            width = max(len(p) for p in uniq) - shared
            ids = torch.full((len(uniq), width), pad_id, dtype=torch.long, device=device)  # (u, S) left-padded
            new_mask = torch.zeros((len(uniq), shared + width), dtype=torch.long, device=device)
            new_mask[:, :shared] = 1
            for b, prompt in enumerate(uniq):
                p = prompt[shared:]
                ids[b, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                new_mask[b, shared + width - len(p) :] = 1
            new_cache = DynamicCache(config=model.config)
            _layers(new_cache)  # fails before any forward when the layers cannot be re-batched
            if prefix is not None:
                for layer, pre in zip(new_cache.layers, prefix.layers):
                    layer.update(pre.keys.expand(len(uniq), -1, -1, -1), pre.values.expand(len(uniq), -1, -1, -1))
            logits = _forward(model, ids, new_mask, new_cache, shared)  # (u, V)
            record(rows, src)
            if len(uniq) < len(rows):  # copies of a prompt: its cache rows and logits, once per copy
                idx = torch.tensor(src, device=device)
                logits, new_mask = logits[idx], new_mask[idx]
                for layer in new_cache.layers:
                    layer.keys, layer.values = layer.keys[idx], layer.values[idx]
            fresh = range(len(slots), len(slots) + len(rows))  # only the joining rows produced a token
            new_ids = choose(logits, rows)
            if cache is None:
                cache, mask = new_cache, new_mask
            else:
                mask = _join(cache, new_cache, mask, new_mask)
            slots += rows
            next_ids = torch.cat([next_ids, new_ids])
        else:  # one decoding step of every row in flight
            mask = torch.cat([mask, mask.new_ones(len(slots), 1)], dim=1)
            logits = _forward(model, next_ids.unsqueeze(1), mask, cache, mask.size(1) - 1)  # (B, V)
            record(slots)
            next_ids = choose(logits, slots)
            fresh = range(len(slots))
        tokens = next_ids.tolist()
        keep = [b for b in range(len(slots)) if b not in fresh]
        for b in fresh:
            req = requests[slots[b]]
            req.tokens.append(tokens[b])
            done = tokens[b] in eos_ids or len(req.tokens) >= max_new_tokens
            if not (done or (stopped is not None and stopped(req.tokens))):
                keep.append(b)
        keep.sort()
        if len(keep) < len(slots):  # rows that ended leave the batch and the cache
            if keep:
                mask = _select(cache, mask, keep)
                next_ids = next_ids[keep]
                slots = [slots[b] for b in keep]
            else:
                cache, mask, slots = None, None, []
                next_ids = next_ids[:0]
    return requests
