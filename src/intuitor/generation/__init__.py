"""Generation backends for evaluation (transformers `hf`, `vllm`) behind one interface, `Generator.generate`.

Import the backends from their modules (`intuitor.generation.hf.HFGenerator`, `intuitor.generation.vllm.
VLLMGenerator`); this package itself imports neither torch nor vLLM.
"""

from intuitor.generation.base import (
    BACKENDS,
    Completion,
    Generator,
    check_backend,
    check_sampling,
    render_prompt,
    stop_token_ids,
)


__all__ = ["BACKENDS", "Completion", "Generator", "check_backend", "check_sampling", "render_prompt", "stop_token_ids"]
