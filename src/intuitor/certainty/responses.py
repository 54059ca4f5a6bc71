"""Response-level statistics: per-response means (and per-token values) of self-certainty and entropy.

`response_statistics` is the separate pass over given completions (evaluation, the trainer's scoring fallback): the
backbone's hidden states at the scored positions go through the model's own logit map (`head.logit_head`) chunk
by chunk, so the full logits are never materialised. `response_token_statistics` is the plain stand-alone pass for
the token-level estimators. The recorders (`recorder.py`) give the same values during generation, for free.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from intuitor.certainty import kernel
from intuitor.certainty.head import _unwrap, logit_head
from intuitor.certainty.kernel import (
    CHUNK_ELEMENTS,
    _chunk_rows,
    token_log_probs,
    token_statistics,
)


@dataclass
class ResponseStatistics:
    """Per-response means over completion tokens: self-certainty and token entropy, float32 [B]."""

    self_certainty: torch.Tensor
    entropy: torch.Tensor


@dataclass
class TokenStatistics(ResponseStatistics):
    """ResponseStatistics plus per-token values of each response: log p of the sampled token and the entropy of
    the position that sampled it, float32 [len(response)] per response (what the token-level estimators read)."""

    token_log_probs: list[torch.Tensor] | None = None
    token_entropies: list[torch.Tensor] | None = None


@torch.no_grad()
def response_statistics(
    model,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    temperature: float = 1.0,
    shifted: bool = False,
    batch_size: int = 8,
    padding_side: str = "right",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> ResponseStatistics:
    """Mean self-certainty and entropy of each completion under `model`, batched, never materialising [B, T, V].

    Args:
        prompt_ids, completion_ids: unpadded token ids, one list per sequence (lengths may differ).
        temperature: logits are divided by it before the statistics (1.0: the model's own distribution).
        shifted: the authors' off-by-one alignment (compatibility only): score the positions of the completion
            tokens themselves, i.e. skip the first response position and score the one after the last token.
        padding_side: how batches are padded internally; results do not depend on it (tested).
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    base = _unwrap(model)
    head = logit_head(base)  # refuses, before any work, a model whose logits it cannot reproduce
    backbone = head.backbone_of(base)
    accepts = inspect.signature(backbone.forward).parameters
    extra = {"use_cache": False} if "use_cache" in accepts else {}
    device = next(model.parameters()).device
    pad_id = 0
    n = len(prompt_ids)
    sc_out = torch.zeros(n, dtype=torch.float32)
    ent_out = torch.zeros(n, dtype=torch.float32)
    for start in range(0, n, batch_size):
        rows = range(start, min(start + batch_size, n))
        seqs = [list(prompt_ids[r]) + list(completion_ids[r]) for r in rows]
        # Positions whose logits score each completion token (paper: the ones that predict it).
        offset = 0 if shifted else -1
        spans = [(len(prompt_ids[r]) + offset, len(completion_ids[r])) for r in rows]
        if any(p < 0 and c > 0 for p, c in spans):
            raise ValueError("an empty prompt has no position that predicts the first completion token")
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        starts = []
        for b, s in enumerate(seqs):
            left = width - len(s) if padding_side == "left" else 0
            input_ids[b, left : left + len(s)] = torch.tensor(s, dtype=torch.long)
            mask[b, left : left + len(s)] = 1
            starts.append(left)
        # Positions follow the tokens, not the padding, so left and right padding give the same scores.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        if "position_ids" in accepts:
            extra["position_ids"] = position_ids.to(device)
        out = backbone(input_ids=input_ids.to(device), attention_mask=mask.to(device), **extra)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (b, T, H)
        # Gather only the scored positions: (N, H) with N = total completion tokens of this batch.
        index_b = torch.cat([torch.full((c,), b, dtype=torch.long) for b, (_, c) in enumerate(spans)])
        index_t = torch.cat([torch.arange(c) + starts[b] + p for b, (p, c) in enumerate(spans)])
        if index_b.numel() == 0:
            continue
        h = hidden[index_b.to(device), index_t.to(device)]  # (N, H)
        step = _chunk_rows(base.config.get_text_config().vocab_size, chunk_elements)
        sc_tok, ent_tok = [], []
        for s in range(0, h.size(0), step):
            # kernel's attribute, read at call time: benchmarks/kernel.py swaps in older kernels
            sc, ent = kernel._stats_chunk(head(base, h[s : s + step]), temperature, entropy=True)
            sc_tok.append(sc)
            ent_tok.append(ent)
        sc_tok, ent_tok = torch.cat(sc_tok).cpu(), torch.cat(ent_tok).cpu()  # (N,)
        counts = torch.tensor([c for _, c in spans], dtype=torch.float32)
        sums_sc = torch.zeros(len(spans)).index_add_(0, index_b, sc_tok)
        sums_ent = torch.zeros(len(spans)).index_add_(0, index_b, ent_tok)
        sc_out[start : start + len(spans)] = sums_sc / counts.clamp(min=1)
        ent_out[start : start + len(spans)] = sums_ent / counts.clamp(min=1)
    return ResponseStatistics(self_certainty=sc_out, entropy=ent_out)


def response_self_certainty(
    model, prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float = 1.0, shifted=False, **kw
) -> torch.Tensor:
    """Mean self-certainty of each completion under `model`: float32 [B] (paper eq. 4; 0.0 for an empty one)."""
    return response_statistics(model, prompt_ids, completion_ids, temperature, shifted=shifted, **kw).self_certainty


@torch.no_grad()
def response_token_statistics(
    model, prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float = 1.0
) -> TokenStatistics:
    """Per-token log-probabilities and entropies of each completion under `model`, one forward per sequence.

    For stand-alone use (a token-level reward on a stock GRPOTrainer, tests): it runs the model's own forward and
    reads its logits, [T, V] per sequence; inside IntuitorTrainer the recorder gives the same values for free.
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    device = next(model.parameters()).device
    sc, ent, lps, ents = [], [], [], []
    for p, c in zip(prompt_ids, completion_ids, strict=True):  # lengths checked above
        if not c:
            sc.append(0.0), ent.append(0.0), lps.append(torch.zeros(0)), ents.append(torch.zeros(0))
            continue
        if not p:
            raise ValueError("an empty prompt has no position that predicts the first completion token")
        ids = torch.tensor([list(p) + list(c)], device=device)
        logits = model(input_ids=ids).logits[0, len(p) - 1 : len(p) + len(c) - 1]  # (|c|, V): each predicts c[i]
        s, e = token_statistics(logits, temperature)
        lps.append(token_log_probs(logits, torch.tensor(c, device=device), temperature).cpu())
        ents.append(e.cpu())
        sc.append(s.mean().item()), ent.append(e.mean().item())
    return TokenStatistics(torch.tensor(sc), torch.tensor(ent), lps, ents)
