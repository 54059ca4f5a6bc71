"""IntuitorTrainer on the tiny model: it trains, scores online from generation, offline from a frozen model,
runs no extra forward pass, and works beside a stock GRPOTrainer."""

import json

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from intuitor.certainty import response_statistics
from intuitor.rewards.self_certainty import SelfCertaintyReward
from intuitor.training import IntuitorConfig, IntuitorTrainer


def make_dataset(n=8):
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)} for i in range(n)]
    )


def config_kwargs(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=4,
                max_completion_length=8, logging_steps=1, report_to="none", save_strategy="no", use_cpu=True,
                learning_rate=1e-3, beta=0.0, gradient_checkpointing=False, seed=0)
    base.update(kw)
    return base


def make_config(tmp_path, **kw):
    return IntuitorConfig(**config_kwargs(tmp_path, **kw))


def load(tiny_model_dir):
    from intuitor.models import load_model_and_tokenizer

    return load_model_and_tokenizer(str(tiny_model_dir))


def test_intuitor_trains_changes_weights_and_logs_self_certainty(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=make_dataset(),
                              processing_class=tok)
    trainer.train()
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(before[k], v.detach())]
    assert len(changed) == len(before)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "rewards/self_certainty/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:  # the reward is the policy's self-certainty, logged under both keys
        assert r["rewards/self_certainty/mean"] == pytest.approx(r["self_certainty/mean"], rel=1e-4)
        assert r["self_certainty/mean"] > 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["config"]["annotator"] == "online" and config["versions"]["trl"] == "1.16.0"


class Capture:
    """Wraps _generate_single_turn to compare the recorded online statistics with a separate forward pass."""

    def __init__(self, trainer):
        self.trainer, self.diffs = trainer, []
        self.inner = trainer._generate_single_turn

    def __call__(self, prompt_ids, *args, **kw):
        completion_ids, logprobs = self.inner(prompt_ids, *args, **kw)
        recorded = self.trainer._rollout[1]
        separate = response_statistics(self.trainer.model, prompt_ids, completion_ids)
        self.diffs.append((recorded.self_certainty - separate.self_certainty).abs().max().item())
        return completion_ids, logprobs


def test_online_scores_come_from_the_generating_weights(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    trainer = IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=make_dataset(),
                              processing_class=tok)
    capture = Capture(trainer)
    trainer._generate_single_turn = capture
    trainer.train()
    assert len(capture.diffs) == 2 and max(capture.diffs) < 1e-4


def count_backbone_calls(trainer):
    calls = []
    trainer.model.base_model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


def exact_length_reward(completions, **kwargs):
    return [float(len(c[0]["content"])) for c in completions]


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_no_extra_forward_pass_for_self_certainty(tiny_model_dir, tmp_path, beta):
    """Same number of model forward calls per step as plain GRPO with a rule-based reward."""
    counts = {}
    for name in ("grpo", "intuitor"):
        model, tok = load(tiny_model_dir)
        kw = config_kwargs(tmp_path / name, beta=beta, max_steps=1, max_completion_length=6,
                           generation_kwargs={"min_new_tokens": 6})  # fixed length: same decode steps in both runs
        if name == "grpo":
            trainer = GRPOTrainer(model=model, reward_funcs=[exact_length_reward], args=GRPOConfig(**kw),
                                  train_dataset=make_dataset(), processing_class=tok)
        else:
            trainer = IntuitorTrainer(model=model, args=IntuitorConfig(**kw), train_dataset=make_dataset(),
                                      processing_class=tok)
        calls = count_backbone_calls(trainer)
        trainer.train()
        counts[name] = len(calls)
    assert counts["intuitor"] == counts["grpo"] > 0


def test_offline_annotator_scores_with_the_frozen_initial_model(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    initial, _ = load(tiny_model_dir)
    trainer = IntuitorTrainer(model=model, args=make_config(tmp_path, annotator="offline"),
                              train_dataset=make_dataset(), processing_class=tok)
    seen = []
    inner = trainer._generate_single_turn

    def spy(prompt_ids, *a, **kw):
        completion_ids, lp = inner(prompt_ids, *a, **kw)
        seen.append((trainer._rollout[1].self_certainty, response_statistics(initial, prompt_ids, completion_ids)))
        return completion_ids, lp

    trainer._generate_single_turn = spy
    trainer.train()
    for recorded, frozen in seen:  # step 2 too: the annotator did not move with the policy
        assert torch.allclose(recorded, frozen.self_certainty, atol=1e-5)
    assert all(not p.requires_grad for p in trainer.annotator.parameters())


def test_reward_works_on_a_stock_grpo_trainer(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    reward = SelfCertaintyReward(model=model, tokenizer=tok)
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, report_to="none", save_strategy="no", use_cpu=True, beta=0.0,
                      logging_steps=1)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=make_dataset(),
                          processing_class=tok)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "rewards/self_certainty/mean" in h]
    assert logged and logged[0]["rewards/self_certainty/mean"] > 0


# --- bad input gets one clear error naming the culprit ---------------------------------------------------------

def test_missing_prompt_column(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    bad = Dataset.from_list([{"question": "1+1?"}] * 4)
    with pytest.raises(ValueError, match="no 'prompt' column.*question"):
        IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=bad, processing_class=tok)


def test_empty_dataset(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    with pytest.raises(ValueError, match="empty"):
        IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=Dataset.from_list([]),
                        processing_class=tok)


def test_group_size_must_divide_batch(tmp_path):
    with pytest.raises(ValueError, match="num_generations=3 does not divide.*per_device_train_batch_size=4"):
        make_config(tmp_path, num_generations=3)
    with pytest.raises(ValueError, match="num_generations >= 2"):
        make_config(tmp_path, num_generations=1)


def test_bad_annotator_and_unsupported_trl(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="annotator='onlin'"):
        make_config(tmp_path, annotator="onlin")
    import trl

    from intuitor import check_trl_version

    monkeypatch.setattr(trl, "__version__", "0.19.0")
    with pytest.raises(ImportError, match="trl==1.16.0"):
        check_trl_version()
