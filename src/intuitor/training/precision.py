"""Refuse to train bf16/fp16 weights that nothing keeps an fp32 master copy of.

AdamW's step at the paper's lr (3e-6) is far below bf16's resolution (8 bits of mantissa: a step smaller than
about 0.2-0.4% of a weight rounds back to the same value), so a model loaded with `model_dtype: bfloat16` and
trained by a plain, DDP or FSDP launch barely moves: one step at lr 3e-6 left 99.4% of SmolLM2's bf16 weights
unchanged, and 10 steps moved them 1.4e-6 where 3e-5 was intended. TRL and transformers neither keep master weights
nor warn. DeepSpeed does keep fp32 master weights for bf16/fp16 models (its optimizer wrappers), so a DeepSpeed
launch passes; so does a float32 model under `bf16: true`, which is autocast (bf16 compute, fp32 weights). Anything
else is refused by `intuitor train` unless `allow_low_precision_weights: true` (e.g. a deliberate pure-bf16 run
with a stochastic-rounding or Kahan-summing optimizer the user supplies). In Python, with the field unset, it is a
warning instead: IntuitorTrainer is a drop-in for GRPOTrainer, which accepts such models (transformers 5 loads a
hub id in its checkpoint's dtype, bf16 for most LLMs), and a drop-in must not refuse what TRL runs.
"""

from __future__ import annotations

import warnings

import torch


LOW_PRECISION = (torch.bfloat16, torch.float16)


def low_precision_trainable(model) -> dict[torch.dtype, int]:
    """Number of trainable parameters per low-precision dtype (empty when every trainable weight is fp32)."""
    counts: dict[torch.dtype, int] = {}
    for p in model.parameters():
        if p.requires_grad and p.dtype in LOW_PRECISION:
            counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    return counts


def check_weight_precision(model, args, distributed_type) -> None:
    """Raise (`allow_low_precision_weights` False) or warn (unset) when trainable weights are bf16/fp16 without
    fp32 master weights; nothing when the user opted in (True)."""
    allow = getattr(args, "allow_low_precision_weights", None)
    if allow:
        return
    if str(distributed_type).upper().endswith("DEEPSPEED"):
        return  # DeepSpeed's bf16/fp16 optimizers keep fp32 master weights
    counts = low_precision_trainable(model)
    if not counts:
        return
    dtype = max(counts, key=counts.get)
    name = str(dtype).replace("torch.", "")
    message = (
        f"the model's trainable weights are {name} ({sum(counts.values()):,} parameters) and this launch keeps no "
        f"fp32 master weights: AdamW steps below {name}'s resolution (~0.4% of a weight at bf16) round away, so at "
        f"lr {getattr(args, 'learning_rate', '?')} most weights would not move. Load float32 weights "
        "(`model_dtype: float32` in the recipe, or `--model_dtype float32`; `bf16: true` still computes in bf16 "
        "by autocast), or launch with DeepSpeed (recipes/accelerate/zero2.yaml or zero3.yaml keep fp32 master "
        "weights). To train low-precision weights anyway, set `allow_low_precision_weights: true`."
    )
    if allow is None:
        warnings.warn(
            message + " (`intuitor train` refuses this; set allow_low_precision_weights to silence it)", stacklevel=3
        )
        return
    raise ValueError(message)
