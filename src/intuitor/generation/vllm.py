"""The vLLM backend (optional: `pip install intuitor[vllm]`, needs a GPU).

vLLM is imported only when a `VLLMGenerator` is built, so this module imports anywhere. What the backend sends
and reads is built by pure functions (`sampling_kwargs`, `build_requests`, `parse_outputs`) that the tests check
without vLLM. Requests are token ids (`{"prompt_token_ids": ...}`): vLLM sees exactly the tokens the harness
rendered, and the same ids are scored for self-certainty. Greedy is `temperature=0`; sampling is pure temperature
sampling (top-k off, no repetition penalty), the same law as the transformers backend, and the same stop tokens
(`stop_token_ids`) and the task's stop strings (`stop`).

vLLM only generates: self-certainty is computed by the harness on the HF copy of the model, so both models share
the GPU. `gpu_memory_utilization` defaults to 0.6 (not vLLM's 0.9) to leave room for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from intuitor.generation.base import Completion, Generator, Prompt, check_sampling, stop_token_ids


def sampling_kwargs(
    n: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 512,
    seed: int | None = None,
    top_p: float = 1.0,
    stop_token_ids: Sequence[int] = (),
    stop: Sequence[str] = (),
) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for one call.

    >>> sampling_kwargs(n=4, temperature=0.6, max_new_tokens=128, seed=3)["top_k"]
    -1
    >>> sampling_kwargs(stop=["Question:"])["stop"]
    ['Question:']
    """
    check_sampling(n, temperature, max_new_tokens, top_p)
    kw = dict(
        n=n,
        temperature=float(temperature),
        top_p=float(top_p) if temperature > 0 else 1.0,
        top_k=-1,
        repetition_penalty=1.0,
        max_tokens=max_new_tokens,
        skip_special_tokens=True,
    )
    if stop_token_ids:  # besides the model's EOS, which vLLM stops at anyway
        kw["stop_token_ids"] = [int(t) for t in stop_token_ids]
    if stop:  # a task's stop strings: vLLM ends there and leaves them out of the text (include_stop_str_in_output)
        kw["stop"] = [str(s) for s in stop]
    if seed is not None:
        kw["seed"] = int(seed)
    return kw


def build_requests(prompt_ids: Sequence[Sequence[int]]) -> list[dict[str, list[int]]]:
    """vLLM token prompts (`TokensPrompt` is a TypedDict, so plain dicts are what vLLM expects).

    >>> build_requests([[1, 2], [3]])
    [{'prompt_token_ids': [1, 2]}, {'prompt_token_ids': [3]}]
    """
    return [{"prompt_token_ids": [int(t) for t in p]} for p in prompt_ids]


def parse_outputs(request_outputs, n: int) -> list[Completion]:
    """Flatten vLLM's `RequestOutput`s (in request order) into prompt-major completions."""
    out = []
    for r in request_outputs:
        if len(r.outputs) != n:
            raise RuntimeError(f"vLLM returned {len(r.outputs)} completions for a request that asked for {n}")
        out.extend(Completion([int(t) for t in o.token_ids], o.text) for o in r.outputs)
    return out


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(
            f"--backend vllm needs the vllm package ({e}). Install it on a GPU machine with "
            "`pip install 'intuitor[vllm]'`, or use --backend hf."
        ) from None
    return vllm


class VLLMGenerator(Generator):
    """Generate with a vLLM engine built from `model` (hub id or folder; a GGUF file needs `tokenizer=`)."""

    name = "vllm"
    chunk_size = 4096  # sequences per call: vLLM schedules them itself

    def __init__(
        self,
        model: str,
        tokenizer,
        dtype: str = "auto",
        seed: int = 0,
        gpu_memory_utilization: float = 0.6,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        **llm_kwargs,
    ):
        super().__init__(tokenizer)
        self.stop_ids = stop_token_ids(tokenizer)
        vllm = import_vllm()
        self._sampling_params = vllm.SamplingParams
        kw = dict(
            model=model,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            **llm_kwargs,
        )
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kw)

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 512,
        seed: int | None = None,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        kw = sampling_kwargs(n, temperature, max_new_tokens, seed, top_p, stop_token_ids=self.stop_ids, stop=stop)
        params = self._sampling_params(**kw)
        outputs = self.llm.generate(build_requests(self.prompt_ids(prompts)), params, use_tqdm=False)
        return parse_outputs(outputs, n)
