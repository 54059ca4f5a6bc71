"""Offline stand-ins for the hub assets TRL's GRPO tests load: tiny models and the `zen` datasets.

TRL's suite reads `trl-internal-testing/tiny-<Architecture>` checkpoints and `trl-internal-testing/zen` from the hub.
Here nothing is downloaded:
- models are built like TRL's `scripts/generate_tiny_models` builds them (the architecture's config shrunk to a few
  layers of width 16-32, random weights), but with our byte-level ChatML tokenizer (`intuitor.models`) instead of
  each family's real tokenizer, which only the hub has. Tests that depend on a family's own chat template (tool
  calling, thinking modes) therefore see ChatML; they are the ones that also fail on TRL's own trainer here.
- the zen datasets are rebuilt in memory by running TRL's own `scripts/generate_zen_dataset.py` from the TRL
  checkout with `push_to_hub` captured, so the rows are TRL's, not a copy.
Vision-language models and the image datasets are not built (no processor/image assets offline).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


# Architecture -> (model_type, auto class, extra config). Shared small dimensions are added below.
TEXT_MODELS = {
    "tiny-Qwen2ForCausalLM-2.5": ("qwen2", "AutoModelForCausalLM", {}),
    "tiny-Qwen2ForSequenceClassification-2.5": ("qwen2", "AutoModelForSequenceClassification", {"num_labels": 1}),
    "tiny-Qwen3ForCausalLM": ("qwen3", "AutoModelForCausalLM", {}),
    "tiny-Qwen3ForSequenceClassification": ("qwen3", "AutoModelForSequenceClassification", {"num_labels": 1}),
    "tiny-Qwen3MoeForCausalLM": (
        "qwen3_moe",
        "AutoModelForCausalLM",
        {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16},
    ),
    "tiny-LlamaForCausalLM-3.2": ("llama", "AutoModelForCausalLM", {}),
    "tiny-LlamaForSequenceClassification-3.2": ("llama", "AutoModelForSequenceClassification", {"num_labels": 1}),
    "tiny-MistralForCausalLM-0.2": ("mistral", "AutoModelForCausalLM", {}),
    "tiny-Gemma2ForCausalLM": ("gemma2", "AutoModelForCausalLM", {}),
    "tiny-Cohere2ForCausalLM": ("cohere2", "AutoModelForCausalLM", {}),
    "tiny-GptOssForCausalLM": ("gpt_oss", "AutoModelForCausalLM", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "tiny-Glm4MoeForCausalLM": (
        "glm4_moe",
        "AutoModelForCausalLM",
        {"n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "first_k_dense_replace": 1},
    ),
}
SMALL = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=512,
)


def assets_dir() -> Path:
    return Path(os.environ.get("INTUITOR_TRL_ASSETS", Path.home() / ".cache" / "intuitor" / "trl-suite-assets"))


def local_model(name: str) -> str:
    """Path of the local stand-in for `trl-internal-testing/<name>`, built on first use.

    A name with no stand-in returns a path that does not exist: loading it fails offline, on TRL's trainer and ours
    alike, which is how such tests are classified (see README, TRL section)."""
    out = assets_dir() / name
    if name in TEXT_MODELS and not (out / "config.json").exists():
        _build(name, out)
    return str(out)


def _build(name: str, out: Path) -> None:
    import torch
    import transformers
    from transformers import AutoConfig

    from intuitor.models import build_tiny_tokenizer

    model_type, auto, extra = TEXT_MODELS[name]
    tok = build_tiny_tokenizer()
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        **{**SMALL, **extra},
    )
    torch.manual_seed(0)
    model = getattr(transformers, auto).from_config(config)
    if hasattr(model, "generation_config") and model.generation_config is not None:
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)  # atomic: a half-written folder is never mistaken for a model


_ZEN: dict[str, object] = {}


def zen(trl_root: str | Path) -> dict:
    """{config_name: DatasetDict} for `trl-internal-testing/zen`, built by TRL's own generator script."""
    if not _ZEN:
        from datasets import DatasetDict

        script = Path(trl_root) / "scripts" / "generate_zen_dataset.py"
        spec = importlib.util.spec_from_file_location("_trl_generate_zen", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        original = DatasetDict.push_to_hub

        def capture(self, repo_id, config_name="default", **kwargs):
            _ZEN[config_name] = self

        DatasetDict.push_to_hub = capture
        try:
            module.main(test_size=0.1, push_to_hub=True, repo_id="trl-internal-testing/zen")
        finally:
            DatasetDict.push_to_hub = original
    return _ZEN


def load_dataset(path, name=None, split=None, streaming=False, trl_root=None, **kwargs):
    """`datasets.load_dataset` for the zen configs, in memory; anything else is not available offline."""
    if path != "trl-internal-testing/zen":
        raise FileNotFoundError(f"{path!r} is not available offline (only trl-internal-testing/zen is rebuilt)")
    configs = zen(trl_root or os.environ["INTUITOR_TRL_ROOT"])
    if name not in configs:
        raise ValueError(f"zen config {name!r} not built; have {', '.join(sorted(configs))}")
    data = configs[name]
    if streaming:
        from datasets import IterableDatasetDict

        data = IterableDatasetDict({k: v.to_iterable_dataset() for k, v in data.items()})
    return data[split] if split else data
