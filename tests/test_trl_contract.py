"""Contract tests: the TRL behaviour IntuitorTrainer relies on. If one fails after a TRL upgrade, the seam moved.

IntuitorTrainer overrides exactly one private method, `GRPOTrainer._generate_single_turn`, and assumes:
1. its signature and return value (completion ids per prompt, logprobs);
2. `_generate` calls it once per generation round, with the prompt ids of every local sample;
3. the reward functions then receive the very `completion_ids` it returned, and dataset columns as kwargs;
4. rewards are gathered across processes in process order and viewed as (-1, num_generations) groups.
"""

import inspect

import pytest
import trl
from datasets import Dataset
from trl import GRPOTrainer

import intuitor
from intuitor.training import IntuitorConfig, IntuitorTrainer


def test_trl_is_inside_the_supported_range():
    from packaging.specifiers import SpecifierSet

    assert trl.__version__ in SpecifierSet(intuitor.SUPPORTED_TRL)


def test_generate_single_turn_signature():
    params = list(inspect.signature(GRPOTrainer._generate_single_turn).parameters)
    assert params == ["self", "prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"]
    assert "_generate_single_turn" in IntuitorTrainer.__dict__
    overridden = {
        name
        for name, value in IntuitorTrainer.__dict__.items()
        if name.startswith("_") and callable(value) and hasattr(GRPOTrainer, name)
    }
    # _get_per_token_logps_and_entropies: the vLLM path reads self-certainty inside TRL's old-policy log-prob pass;
    # _issue_warnings_after_load (transformers' Trainer): a resume does not report a tied lm_head as missing;
    # _calculate_rewards: TRL's gathered rewards, read after it for the alignment metrics (returned unchanged)
    assert overridden == {
        "_generate_single_turn",
        "__init__",
        "_get_per_token_logps_and_entropies",
        "_issue_warnings_after_load",
        "_calculate_rewards",
    }, f"more private overrides than intended: {overridden}"
    params = list(inspect.signature(GRPOTrainer._calculate_rewards).parameters)
    assert params == ["self", "inputs", "prompts", "completions", "completion_ids_list"]
    assert list(inspect.signature(GRPOTrainer._issue_warnings_after_load).parameters) == ["self", "load_result"]
    params = list(inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters)
    assert params[:5] == ["self", "model", "input_ids", "attention_mask", "logits_to_keep"]


def test_one_call_per_round_and_rewards_see_the_same_completions(tiny_model_dir, tmp_path):
    from intuitor.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    seen = {"turns": [], "rewards": []}

    def spy_reward(prompts, completions, completion_ids, answer, **kwargs):
        seen["rewards"].append((completion_ids, answer))
        return [0.0] * len(prompts)

    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": f"a{i}"} for i in range(4)])
    args = IntuitorConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        beta=0.0,
        gradient_checkpointing=False,
    )
    trainer = IntuitorTrainer(
        model=model, reward_funcs=["self_certainty", spy_reward], args=args, train_dataset=ds, processing_class=tok
    )
    inner = trainer._generate_single_turn

    def spy_turn(prompt_ids, *a, **kw):
        out = inner(prompt_ids, *a, **kw)
        seen["turns"].append((prompt_ids, out[0]))
        return out

    trainer._generate_single_turn = spy_turn
    trainer.train()
    assert len(seen["turns"]) == 2 == len(seen["rewards"])
    for (prompt_ids, completions), (reward_completions, answers) in zip(seen["turns"], seen["rewards"]):
        assert len(prompt_ids) == 4  # every local sample, prompts already repeated per generation
        assert [list(c) for c in reward_completions] == [list(c) for c in completions]
        assert all(a.startswith("a") for a in answers)  # dataset columns ride along as kwargs


def test_rewards_are_viewed_as_contiguous_groups():
    """TRL computes group statistics with rewards.view(-1, num_generations) on the gathered rewards."""
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "rewards.view(-1, num_generations)" in source
    assert "rewards_per_func = self._calculate_rewards(" in source
    assert "gather(rewards_per_func)" in inspect.getsource(GRPOTrainer._calculate_rewards)


# --- TRL's own GRPO tests, adapted offline (tests/trl_suite/adapt.py); a self-written subset runs here ---------


def _adapt_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "trl_suite" / "adapt.py"
    spec = importlib.util.spec_from_file_location("trl_suite_adapt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRL_LIKE_SOURCE = """import torch
from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

if is_peft_available():
    import peft


def test_x():
    trainer = GRPOTrainer(model="trl-internal-testing/tiny-Qwen2ForCausalLM-2.5",
                          reward_funcs="trl-internal-testing/tiny-Qwen2ForSequenceClassification-2.5")
    assert trainer.reward_func_names == ["tiny-Qwen2ForSequenceClassification-2.5"]
    assert load_dataset("trl-internal-testing/zen", "standard_prompt_only") is not None
"""


def test_adaptation_swaps_the_trainer_and_the_assets_and_keeps_every_assert():
    adapt = _adapt_module()
    out = adapt.adapt_test_source(TRL_LIKE_SOURCE)
    assert "from intuitor.training import IntuitorConfig as GRPOConfig, IntuitorTrainer as GRPOTrainer" in out
    assert "from trl import GRPOConfig" not in out
    assert 'model=_offline_assets.local_model("tiny-Qwen2ForCausalLM-2.5")' in out
    assert "load_dataset = _offline_assets.load_dataset\n\nif is_peft_available():" in out
    assert '"trl-internal-testing/zen"' in out  # datasets are served by the rebound load_dataset, by name
    # every assert line is kept verbatim
    asserts = [line for line in TRL_LIKE_SOURCE.splitlines() if line.strip().startswith("assert")]
    assert asserts and all(line in out.splitlines() for line in asserts)
    baseline = adapt.adapt_test_source(TRL_LIKE_SOURCE, trainer="trl")
    assert "from trl import GRPOConfig, GRPOTrainer" in baseline
    with pytest.raises(ValueError, match="exactly one line"):
        adapt.adapt_test_source(TRL_LIKE_SOURCE.replace("from trl import GRPOConfig, GRPOTrainer\n", ""))


def test_offline_stand_in_models_load_like_trls(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    monkeypatch.setenv("INTUITOR_TRL_ASSETS", str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "trl_suite"))
    sys.modules.pop("assets", None)
    import assets

    causal = AutoModelForCausalLM.from_pretrained(assets.local_model("tiny-Qwen3MoeForCausalLM"))
    reward = AutoModelForSequenceClassification.from_pretrained(
        assets.local_model("tiny-Qwen2ForSequenceClassification-2.5")
    )
    assert type(causal).__name__ == "Qwen3MoeForCausalLM" and reward.config.num_labels == 1
    assert not Path(assets.local_model("tiny-Qwen2VLForConditionalGeneration")).exists()  # no offline stand-in
    sys.modules.pop("assets", None)


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_trl_style_run_with_a_plain_grpo_config_and_a_reward_model(tiny_model_dir, tmp_path, loss_type):
    """The shape of TRL's core GRPO tests: a GRPOConfig, a reward-model path, a conversational zen-like dataset,
    beta > 0 and two iterations per generation; every trainable parameter changes."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from trl import GRPOConfig

    torch.manual_seed(0)
    reward_path = tmp_path / "tiny-reward"
    AutoModelForSequenceClassification.from_config(
        AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    ).save_pretrained(reward_path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(reward_path)
    ds = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": f"What is better than {w}?"}]}
            for w in ("ugly", "implicit", "complex", "nested", "dense", "never")
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        learning_rate=0.1,
        per_device_train_batch_size=3,
        num_generations=3,
        max_completion_length=8,
        beta=0.04,
        num_iterations=2,
        loss_type=loss_type,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        gradient_checkpointing=False,
    )
    trainer = IntuitorTrainer(model=str(tiny_model_dir), reward_funcs=str(reward_path), args=args, train_dataset=ds)
    before = {n: p.clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.state.log_history[-1]["train_loss"] is not None
    for n, p in before.items():
        assert not torch.equal(p, trainer.model.get_parameter(n)), f"Parameter {n} has not changed."


# --- The TRL defaults the paper recipes rely on (recipes/README.md) ------------------------------------------------
# The recipes set every field whose TRL 1.16 default differs from the authors' TRL (0.18.0.dev0 @ 1bca495) and leave
# the rest to TRL. These pins fail when an upgrade moves either kind: then the table and the recipes need a look.


def _grpo_defaults():
    from trl import GRPOConfig

    return GRPOConfig(output_dir="unused", use_cpu=True, bf16=False)


def test_trl_defaults_the_recipes_leave_unset_equal_the_authors():
    c = _grpo_defaults()
    assert (c.epsilon, c.epsilon_high, c.delta, c.num_iterations) == (0.2, None, None, 1)
    assert c.scale_rewards == "group"  # the authors' TRL: scale_rewards=True, the same per-group std
    assert c.importance_sampling_level == "token" and c.mask_truncated_completions is False
    assert (c.top_p, c.min_p, c.repetition_penalty) == (1.0, None, 1.0)
    assert c.shuffle_dataset is True and c.multi_objective_aggregation == "sum_then_normalize"
    assert c.off_policy_mask_threshold is None and c.top_entropy_quantile == 1.0
    assert (c.max_grad_norm, c.weight_decay, c.adam_beta1, c.adam_beta2) == (1.0, 0.0, 0.9, 0.999)


def test_trl_defaults_the_recipes_override():
    """TRL 1.16 changed these from the authors' TRL; the paper recipes set the authors' values explicitly."""
    import dataclasses

    from transformers import TrainingArguments
    from trl import GRPOConfig

    c = _grpo_defaults()
    assert c.loss_type == "dapo"  # authors: bnpo
    assert c.use_bias_correction_kl is True  # authors: plain k3 (no such option)
    assert c.vllm_importance_sampling_correction is True  # authors: none
    assert c.top_k == 0 and c.temperature == 1.0  # authors: 50 and 0.9
    assert c.warmup_steps == 0
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert "warmup_ratio" not in fields and "warmup_ratio" not in {
        f.name for f in dataclasses.fields(TrainingArguments)
    }
    assert "max_prompt_length" not in fields  # authors: 512 (math), 1024 (code); TRL 1.16 never truncates prompts


def test_kl_term_and_bnpo_aggregation_are_what_the_recipes_assume():
    """Plain k3 unless use_bias_correction_kl; bnpo = token mean per micro-batch, divided for accumulation."""
    source = inspect.getsource(GRPOTrainer._compute_loss)
    k3 = "torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1"
    assert k3 in source
    assert "if self.args.use_bias_correction_kl:\n                per_token_kl = per_token_kl * coef_1" in source
    assert "per_token_loss = per_token_loss + self.beta * per_token_kl" in source
    bnpo = source.split('elif self.loss_type == "bnpo":', 1)[1].split("elif", 1)[0]
    assert "loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)" in bnpo
    assert "loss = loss / normalizer" in bnpo and "current_gradient_accumulation_steps" in bnpo


def test_the_scheduler_reads_warmup_steps_as_a_fraction_below_one():
    from transformers import Trainer

    assert "num_warmup_steps=self.args.get_warmup_steps(num_training_steps)" in inspect.getsource(
        Trainer.create_scheduler
    )
    assert "create_scheduler" not in GRPOTrainer.__dict__ and "create_scheduler" not in IntuitorTrainer.__dict__
    c = _grpo_defaults()
    c.warmup_steps = 0.1
    assert [c.get_warmup_steps(n) for n in (58, 117, 174, 50)] == [6, 12, 18, 5]  # ceil(0.1 n)
    c.warmup_steps = 3
    assert c.get_warmup_steps(58) == 3


def test_top_k_reaches_generation():
    """top_k (the recipes' 50) is passed to both generation paths: transformers' GenerationConfig and vLLM."""
    source = inspect.getsource(GRPOTrainer.__init__)
    assert "self.top_k = args.top_k" in source
    assert '"top_k": self.top_k,' in source and "top_k=self.top_k," in source  # transformers, vLLM
