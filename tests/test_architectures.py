"""Self-certainty from exactly the logits forward() returns, on every architecture (issue 12).

Tiny models are built from their configs (random weights, LM head scaled so post-head transforms matter). For each,
both scoring paths are compared with float64 statistics of `model(ids).logits`, one unpadded sequence at a time:
  - the recorder, during `generate` (left padding, several rows, greedy, an EOS that ends one row early);
  - `response_statistics`, the hidden-state chunked path (left and right padding, several rows, an empty
    completion).
A static sweep reads every causal-LM class of the pinned transformers: each is either reproduced (its steps are
checked against what its forward() does) or refused with `UnsupportedArchitecture`, never something in between.
"""

from __future__ import annotations

import math

import pytest
import torch

from intuitor.certainty import UnsupportedArchitecture, logit_head, record_generation, response_statistics


VOCAB = 101
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=128,
)
TWO_LAYERS = ["sliding_attention", "full_attention"]

# model_type -> config overrides: tiny, and the post-head transform switched on with a value that changes results.
ARCHITECTURES = {
    "llama": {},
    "qwen2": {},
    "gemma": {},
    "mistral": {},
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128),
    "gemma2": dict(final_logit_softcapping=30.0, layer_types=TWO_LAYERS),
    "gemma3_text": dict(final_logit_softcapping=30.0, layer_types=TWO_LAYERS),
    "gemma3n_text": dict(
        final_logit_softcapping=30.0,
        layer_types=TWO_LAYERS,
        num_kv_shared_layers=0,
        vocab_size_per_layer_input=VOCAB,
        hidden_size_per_layer_input=8,
        laurel_rank=4,
        activation_sparsity_pattern=[0.0, 0.0],
        altup_num_inputs=2,
    ),
    "gemma4_text": dict(
        final_logit_softcapping=30.0,
        layer_types=TWO_LAYERS,
        vocab_size_per_layer_input=VOCAB,
        hidden_size_per_layer_input=8,
    ),
    "vaultgemma": dict(final_logit_softcapping=30.0, layer_types=TWO_LAYERS),
    "nanochat": dict(final_logit_softcapping=15.0),
    "beam": dict(final_logit_softcapping=30.0),
    "granite": dict(logits_scaling=4.0),
    "granite_swa": dict(logits_scaling=4.0),
    "granitemoe": dict(logits_scaling=4.0, num_local_experts=4, num_experts_per_tok=2),
    "granitemoe_swa": dict(logits_scaling=4.0, num_local_experts=4, num_experts_per_tok=2),
    "granitemoeshared": dict(
        logits_scaling=4.0, num_local_experts=4, num_experts_per_tok=2, shared_intermediate_size=32
    ),
    "cohere": dict(logit_scale=0.25),
    "cohere2": dict(logit_scale=0.25, layer_types=TWO_LAYERS),
    "cohere2_moe": dict(logit_scale=0.25),
    "falcon_h1": dict(
        lm_head_multiplier=0.25, mamba_d_ssm=64, mamba_n_heads=8, mamba_d_head=8, mamba_d_state=8, mamba_chunk_size=16
    ),
    "hyperclovax": dict(logits_scaling=0.25),
    "minicpm3": dict(
        num_key_value_heads=4,
        kv_lora_rank=16,
        q_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=8,
        dim_model_base=8,
    ),
    "inkling_text": dict(
        logits_mup_width_multiplier=4.0,
        unpadded_vocab_size=VOCAB - 4,
        layer_types=["hybrid_sliding", "hybrid"],
        mlp_layer_types=["sparse", "sparse"],
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=1,
        moe_intermediate_size=16,
        swa_num_attention_heads=4,
        swa_num_key_value_heads=2,
        swa_head_dim=8,
    ),
    "inkling2_text": dict(
        final_logit_softcapping=30.0,
        unpadded_vocab_size=VOCAB - 4,
        layer_types=["hybrid_sliding", "hybrid"],
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        swa_num_attention_heads=4,
        swa_num_key_value_heads=2,
        swa_head_dim=8,
        n_layers_per_attn_res_block=1,
    ),
    "recurrent_gemma": dict(
        logits_soft_cap=30.0, lru_width=32, block_types=["recurrent", "attention"], attention_window_size=16
    ),
}

# What each of them does after its backbone, read from forward() (hand-checked against the modeling files).
EXPECTED_STEPS = {
    "llama": (("module", "lm_head", False),),
    "gemma2": (("module", "lm_head", False), ("softcap", "config.final_logit_softcapping", False)),
    "beam": (("module", "lm_head", False), ("softcap", "config.final_logit_softcapping", True)),
    "granite": (("module", "lm_head", False), ("scale", "/", "config.logits_scaling")),
    "cohere": (("module", "lm_head", False), ("scale", "*", "logit_scale")),
    "falcon_h1": (("module", "lm_head", False), ("scale", "*", "model.lm_head_multiplier")),
    "hyperclovax": (("module", "lm_head", False), ("scale", "*", "config.logits_scaling")),
    "minicpm3": (("pre_scale", "/", "config.logits_scaling"), ("module", "lm_head", False)),
    "recurrent_gemma": (("module", "lm_head", False), ("softcap", "config.logits_soft_cap", False)),
    "inkling_text": (
        ("pre_scale", "/", "config.logits_mup_width_multiplier"),
        ("module", "lm_head", False),
        ("vocab", "config.unpadded_vocab_size"),
    ),
    "gemma3n": (("module", "lm_head", False), ("softcap", "text_config.final_logit_softcapping", False)),
    "mamba": (("module", "lm_head", True), ("float",)),
}
# Refused: the transform is not one we can reproduce from hidden states (xLSTM soft-caps in chunks inside an `if`;
# MusicGen stacks several heads; XLNet/XLM compute logits inside a helper), so they must raise, not drift.
EXPECTED_REFUSED = {
    "xlstm",
    "musicgen",
    "musicgen_melody",
    "xlnet",
    "xlm",
    "prophetnet",
    "cpmant",
    "gemma4_assistant",
    "gemma4_unified_assistant",
}


def _causal_lm_classes():
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return {
        mt: getattr(transformers, name)
        for mt, name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items()
        if hasattr(transformers, name)
    }


def test_every_causal_lm_class_is_reproduced_or_refused():
    classes = _causal_lm_classes()
    assert len(classes) > 150
    heads, refused = {}, {}
    for mt, cls in classes.items():
        try:
            heads[mt] = logit_head(cls.__new__(cls))  # reads the class's forward(), needs no weights
        except UnsupportedArchitecture as e:
            refused[mt] = str(e)
    for mt, steps in EXPECTED_STEPS.items():
        assert heads[mt].steps == steps, mt
    assert set(refused) == EXPECTED_REFUSED, sorted(set(refused) ^ EXPECTED_REFUSED)
    assert "cannot reproduce" in refused["xlstm"] and "xLSTMForCausalLM" in refused["xlstm"]
    # Every architecture whose forward() transforms logits after the head has that step, none is silently identity.
    for mt in ARCHITECTURES:
        plain = heads[mt].steps == (("module", "lm_head", False),)
        assert plain == (mt in {"llama", "qwen2", "gemma", "mistral", "gpt2"}), (mt, heads[mt].steps)


def test_an_unknown_post_head_transform_is_refused():
    from transformers import LlamaConfig, LlamaForCausalLM

    class Shifted(LlamaForCausalLM):  # a "new architecture": shifts its logits after the head
        def forward(self, input_ids=None, attention_mask=None, position_ids=None, logits_to_keep=0, **kw):
            outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
            hidden_states = outputs.last_hidden_state
            logits = self.lm_head(hidden_states)
            logits = torch.log_softmax(logits, dim=-1) * 2
            return logits

    model = Shifted(LlamaConfig(**COMMON)).eval()
    with pytest.raises(UnsupportedArchitecture, match=r"Shifted.*log_softmax.*record_generation"):
        response_statistics(model, [[1, 2, 3]], [[4, 5]])


# --- numerical checks on tiny models ------------------------------------------------------------------------------


def build(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    defaults = AutoConfig.for_model(model_type).to_dict()
    kw = {k: v for k, v in COMMON.items() if k in defaults}
    kw.update(tie_word_embeddings=False)  # tied, a random model's logits are one-hot on the input token
    kw.update(ARCHITECTURES[model_type])
    config = AutoConfig.for_model(model_type, **kw)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if getattr(config, key, None) is not None and not 0 <= getattr(config, key) < VOCAB:
            setattr(config, key, 0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    probe = torch.arange(1, 17).unsqueeze(0)
    head = model.get_output_embeddings()
    with torch.no_grad():
        raw = []
        handle = head.register_forward_hook(lambda m, a, out: raw.append(out))
        model(input_ids=probe)
        handle.remove()
        # Raw head outputs of std ~40: beyond a soft-cap of 15-30, and a scale changes every statistic.
        head.weight.mul_(40.0 / raw[0].float().std().clamp(min=1e-3))
    return model


def reference(model, prompt: list[int], completion: list[int]) -> tuple[float, float]:
    """Float64 self-certainty and entropy of the logits forward() returns, one unpadded sequence."""
    if not completion:
        return 0.0, 0.0
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0].double()  # (T, V)
    z = logits[len(prompt) - 1 : len(prompt) - 1 + len(completion)]
    lse = torch.logsumexp(z, -1)
    sc = lse - z.mean(-1) - math.log(z.size(-1))
    ent = lse - (torch.softmax(z, -1) * z).sum(-1)
    return sc.mean().item(), ent.mean().item()


def plain_head_reference(model, prompt, completion) -> float:
    """Self-certainty of the output embeddings applied to the backbone's last hidden state, with no transform
    before or after the head: what a path that ignores the architecture's transforms would score."""
    head = logit_head(model)
    with torch.no_grad():
        hidden = head.backbone_of(model)(input_ids=torch.tensor([prompt + completion]))[0]  # (1, T, H)
        z = model.get_output_embeddings()(hidden)[0].double()[len(prompt) - 1 : len(prompt) - 1 + len(completion)]
    return (torch.logsumexp(z, -1) - z.mean(-1) - math.log(z.size(-1))).mean().item()


PROMPTS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16, 17, 18], [20, 21, 22]]
COMPLETIONS = [[30, 31, 32], [40], [50, 51, 52, 53, 54], []]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def model(request):
    return build(request.param)


def test_hidden_state_path_matches_forward_logits(model):
    ref = torch.tensor([reference(model, p, c) for p, c in zip(PROMPTS, COMPLETIONS)], dtype=torch.float64)
    for side in ("right", "left"):
        got = response_statistics(model, PROMPTS, COMPLETIONS, batch_size=4, padding_side=side)
        assert (got.self_certainty.double() - ref[:, 0]).abs().max() < 1e-4, side
        assert (got.entropy.double() - ref[:, 1]).abs().max() < 1e-4, side
    assert ref[:3, 0].std() > 0.01  # scores differ between rows: the comparison is not vacuous
    steps = logit_head(model).steps
    if steps != (("module", "lm_head", False),):  # the transform matters: the plain head scores differently
        raw = [plain_head_reference(model, p, c) for p, c in zip(PROMPTS[:3], COMPLETIONS[:3])]
        assert max(abs(r - x) for r, x in zip(raw, ref[:3, 0].tolist())) > 0.05


def _generate(model, prompts, eos, max_new_tokens=6):
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            pad_token_id=0,
            eos_token_id=eos,
        )
    return out[:, width:].tolist()


def test_recorder_during_generate_matches_forward_logits(model):
    prompts = PROMPTS[:3]
    model.generation_config.eos_token_id = None
    free = _generate(model, prompts, eos=None)
    # An EOS that ends one row after 2-5 tokens while another runs on: a token a row first produces at step k
    # (k < 5) and some other row never produces.
    eos = next(
        (
            row[k]
            for k in (2, 1, 3, 4)
            for i, row in enumerate(free)
            if row[k] not in row[:k] and any(row[k] not in other for j, other in enumerate(free) if j != i)
        ),
        None,
    )
    assert eos is not None, free
    with record_generation(model) as rec:
        out = _generate(model, prompts, eos=eos)
    completions = [row[: row.index(eos) + 1] if eos in row else row for row in out]
    lengths = [len(c) for c in completions]
    assert min(lengths) < max(lengths)  # EOS mid-batch
    got = rec.statistics(lengths)
    ref = torch.tensor([reference(model, p, c) for p, c in zip(prompts, completions)], dtype=torch.float64)
    assert (got.self_certainty.double() - ref[:, 0]).abs().max() < 1e-4
    assert (got.entropy.double() - ref[:, 1]).abs().max() < 1e-4


def test_trainer_forward_pass_matches_forward_logits(model):
    """The trainer's own pass (`training.scoring`: the separate pass, and the hook inside TRL's log-prob pass) uses
    the same head and post-head steps, with the head's weights projected directly (gathered once when sharded)."""
    from intuitor.training.scoring import pass_statistics

    ref = torch.tensor([reference(model, p, c) for p, c in zip(PROMPTS, COMPLETIONS)], dtype=torch.float64)
    got = pass_statistics(model, PROMPTS, COMPLETIONS, batch_size=3)
    assert (got.self_certainty.double() - ref[:, 0]).abs().max() < 1e-4
    assert (got.entropy.double() - ref[:, 1]).abs().max() < 1e-4
