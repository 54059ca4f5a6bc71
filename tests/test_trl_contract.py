"""Contract tests: the TRL behaviour IntuitorTrainer relies on. If one fails after a TRL upgrade, the seam moved.

IntuitorTrainer overrides exactly one private method, `GRPOTrainer._generate_single_turn`, and assumes:
1. its signature and return value (completion ids per prompt, logprobs);
2. `_generate` calls it once per generation round, with the prompt ids of every local sample;
3. the reward functions then receive the very `completion_ids` it returned, and dataset columns as kwargs;
4. rewards are gathered across processes in process order and viewed as (-1, num_generations) groups.
"""

import inspect

import trl
from datasets import Dataset
from trl import GRPOTrainer

import intuitor
from intuitor.training import IntuitorConfig, IntuitorTrainer


def test_trl_is_the_pinned_release():
    assert trl.__version__ == intuitor.SUPPORTED_TRL


def test_generate_single_turn_signature():
    params = list(inspect.signature(GRPOTrainer._generate_single_turn).parameters)
    assert params == ["self", "prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"]
    assert "_generate_single_turn" in IntuitorTrainer.__dict__
    overridden = {
        name for name, value in IntuitorTrainer.__dict__.items()
        if name.startswith("_") and callable(value) and hasattr(GRPOTrainer, name)
    }
    assert overridden == {"_generate_single_turn", "__init__"}, f"more private overrides than intended: {overridden}"


def test_one_call_per_round_and_rewards_see_the_same_completions(tiny_model_dir, tmp_path):
    from intuitor.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    seen = {"turns": [], "rewards": []}

    def spy_reward(prompts, completions, completion_ids, answer, **kwargs):
        seen["rewards"].append((completion_ids, answer))
        return [0.0] * len(prompts)

    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": f"a{i}"} for i in range(4)])
    args = IntuitorConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=2,
                          max_completion_length=6, report_to="none", save_strategy="no", use_cpu=True, beta=0.0,
                          gradient_checkpointing=False)
    trainer = IntuitorTrainer(model=model, reward_funcs=["self_certainty", spy_reward], args=args,
                              train_dataset=ds, processing_class=tok)
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
