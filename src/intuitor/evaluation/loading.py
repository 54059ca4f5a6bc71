"""The model an evaluation runs: its name, device and dtype resolved, and the scoring model, tokenizer and
generator loaded (`_prepare`: vLLM first when asked, since it sizes its cache from the free GPU memory).
"""

from __future__ import annotations

from pathlib import Path


def _resolve_device(device: str | None) -> str:
    import torch

    if device and device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device} but no CUDA GPU is visible here: use --device cpu (or leave it out)")
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


DTYPES = ("auto", "float32", "bfloat16", "float16")


def _resolve_dtype(dtype: str | None, device: str) -> str:
    if dtype in (None, "auto"):
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


def _model_name(model, model_name: str | None) -> str:
    if model_name:
        return model_name
    if isinstance(model, (str, Path)):
        return str(model)
    return getattr(getattr(model[0], "config", None), "name_or_path", "") or "in-memory"


def _prepare(model, generator, backend, batch_size, seed, dtype, device, gpu_memory_utilization, config):
    """(scoring model, tokenizer, generator, config with the resolved device and dtype)."""
    from intuitor.models import load_model_and_tokenizer, load_tokenizer, resolve_model_path

    if not isinstance(model, (str, Path)):
        scorer, tokenizer = model
        device = str(next(scorer.parameters()).device)
        dtype = str(next(scorer.parameters()).dtype).replace("torch.", "")
        if generator is None and backend == "vllm":
            raise ValueError("--backend vllm needs a model name or path, not an in-memory model; use backend='hf'")
    else:
        device = _resolve_device(device)
        dtype = _resolve_dtype(dtype, device)
        if generator is None and backend == "vllm":
            from intuitor.generation.vllm import VLLMGenerator

            # vLLM first: it sizes its cache from the free GPU memory; the HF copy only scores.
            generator = VLLMGenerator(
                resolve_model_path(str(model)),
                load_tokenizer(str(model)),
                dtype=dtype,
                seed=seed,
                gpu_memory_utilization=gpu_memory_utilization,
            )
        scorer, tokenizer = load_model_and_tokenizer(str(model), dtype=dtype, device=device)
    if generator is None:
        from intuitor.generation.hf import HFGenerator

        generator = HFGenerator(scorer, tokenizer, batch_size=batch_size)
    return scorer, tokenizer, generator, {**config, "device": device, "dtype": dtype}
