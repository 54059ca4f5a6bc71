"""IntuitorTrainer on the tiny model: it trains, scores online from generation, offline from a frozen model,
runs no extra forward pass, and works beside a stock GRPOTrainer."""

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from intuitor.certainty import response_statistics
from intuitor.rewards.self_certainty import SelfCertaintyReward
from intuitor.training import IntuitorConfig, IntuitorTrainer


ROOT = Path(__file__).resolve().parents[1]


def make_dataset(n=8):
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)} for i in range(n)]
    )


def config_kwargs(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        learning_rate=1e-3,
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
    )
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
    trainer = IntuitorTrainer(
        model=model, args=make_config(tmp_path), train_dataset=make_dataset(), processing_class=tok
    )
    trainer.train()
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(before[k], v.detach())]
    assert len(changed) == len(before)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "rewards/self_certainty/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:  # the reward is the policy's self-certainty, logged under both keys
        assert r["rewards/self_certainty/mean"] == pytest.approx(r["self_certainty/mean"], rel=1e-4)
        assert r["self_certainty/mean"] > 0
    config = json.loads((tmp_path / "run_config.json").read_text())
    from intuitor import versions  # every run records its stack, as `intuitor --version` prints it

    assert config["config"]["annotator"] == "online" and config["versions"] == versions()
    assert {"intuitor", "trl", "transformers", "torch", "accelerate", "datasets", "math-verify"} <= set(versions())


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
    trainer = IntuitorTrainer(
        model=model, args=make_config(tmp_path), train_dataset=make_dataset(), processing_class=tok
    )
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
        kw = config_kwargs(
            tmp_path / name, beta=beta, max_steps=1, max_completion_length=6, generation_kwargs={"min_new_tokens": 6}
        )  # fixed length: same decode steps in both runs
        if name == "grpo":
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=[exact_length_reward],
                args=GRPOConfig(**kw),
                train_dataset=make_dataset(),
                processing_class=tok,
            )
        else:
            trainer = IntuitorTrainer(
                model=model, args=IntuitorConfig(**kw), train_dataset=make_dataset(), processing_class=tok
            )
        calls = count_backbone_calls(trainer)
        trainer.train()
        counts[name] = len(calls)
    assert counts["intuitor"] == counts["grpo"] > 0


def test_offline_annotator_scores_with_the_frozen_initial_model(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    initial, _ = load(tiny_model_dir)
    trainer = IntuitorTrainer(
        model=model,
        args=make_config(tmp_path, annotator="offline"),
        train_dataset=make_dataset(),
        processing_class=tok,
    )
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
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        beta=0.0,
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=make_dataset(), processing_class=tok
    )
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
        IntuitorTrainer(
            model=model, args=make_config(tmp_path), train_dataset=Dataset.from_list([]), processing_class=tok
        )


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
    with pytest.raises(ImportError, match=r"needs trl>=1\.16,<1\.17 \(found trl 0\.19\.0\)"):
        check_trl_version()


# --- drop-in for GRPOTrainer (issue 18): each cause a TRL user hit, pinned ------------------------------------


def build_reward_model(tiny_model_dir, out):
    """A sequence-classification reward model (1 label) saved to a folder, the way TRL loads `reward_funcs` strings."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_reward_model_path_in_reward_funcs_follows_trl(tiny_model_dir, tmp_path):
    from transformers import PreTrainedModel

    model, tok = load(tiny_model_dir)
    path = build_reward_model(tiny_model_dir, tmp_path / "tiny-reward-model")
    trainer = IntuitorTrainer(
        model=model,
        reward_funcs=[str(path), "self_certainty"],
        args=make_config(tmp_path / "out", max_steps=1),
        train_dataset=make_dataset(),
        processing_class=tok,
    )
    assert isinstance(trainer.reward_funcs[0], PreTrainedModel) and trainer.reward_funcs[0].config.num_labels == 1
    assert trainer.reward_func_names == ["tiny-reward-model", "self_certainty"]  # TRL names a model by its folder
    trainer.train()
    logged = [h for h in trainer.state.log_history if "rewards/tiny-reward-model/mean" in h]
    assert len(logged) == 1


def test_reward_name_typo_still_gets_a_did_you_mean(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    with pytest.raises(KeyError, match="Did you mean: self_certainty"):
        IntuitorTrainer(
            model=model,
            reward_funcs=["self_certanty"],
            args=make_config(tmp_path),
            train_dataset=make_dataset(),
            processing_class=tok,
        )


def test_defaults_are_valid_out_of_the_box(tiny_model_dir, tmp_path, monkeypatch):
    args = IntuitorConfig(output_dir=str(tmp_path))
    assert args.num_generations == 7  # the paper's G, with a batch it divides
    assert args.per_device_train_batch_size == 7 and args.generation_batch_size % 7 == 0
    import shutil

    monkeypatch.chdir(tmp_path)
    model, tok = load(shutil.copytree(tiny_model_dir, tmp_path / "tiny-qwen2"))
    trainer = IntuitorTrainer(model, train_dataset=make_dataset(14), processing_class=tok)
    assert trainer.args.output_dir == "tiny-qwen2-INTUITOR"  # TRL's habit: `<model>-GRPO`
    assert trainer.num_generations == 7 and trainer.reward_func_names == ["self_certainty"]


def test_streaming_dataset_trains_with_max_steps(tiny_model_dir, tmp_path):
    from datasets import IterableDataset

    model, tok = load(tiny_model_dir)
    stream = make_dataset(16).to_iterable_dataset()
    assert isinstance(stream, IterableDataset)
    trainer = IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=stream, processing_class=tok)
    trainer.train()
    assert trainer.state.global_step == 2
    assert [h["step"] for h in trainer.state.log_history if "rewards/self_certainty/mean" in h] == [1, 2]


def test_streaming_dataset_without_prompt_column_is_named(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    bad = Dataset.from_list([{"question": "1+1?"}] * 4).to_iterable_dataset()
    with pytest.raises(ValueError, match="no 'prompt' column.*question"):
        IntuitorTrainer(model=model, args=make_config(tmp_path), train_dataset=bad, processing_class=tok)


def recorded_vs_pass(trainer):
    """Wrap _generate_single_turn: (statistics the trainer kept, statistics of a separate pass) per round."""
    seen, inner = [], trainer._generate_single_turn

    def spy(prompt_ids, *a, **kw):
        completion_ids, lp = inner(prompt_ids, *a, **kw)
        seen.append((trainer._rollout[1], response_statistics(trainer.model, prompt_ids, completion_ids)))
        return completion_ids, lp

    trainer._generate_single_turn = spy
    return seen


def test_beam_search_scores_with_a_pass(tiny_model_dir, tmp_path):
    """num_beams > 1: the LM head sees num_beams reordered rows per sequence, so the recorder is not used."""
    model, tok = load(tiny_model_dir)
    args = make_config(tmp_path, generation_kwargs={"num_beams": 2})
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=make_dataset(), processing_class=tok)
    seen = recorded_vs_pass(trainer)
    trainer.train()
    assert len(seen) == 2
    for kept, separate in seen:
        assert torch.allclose(kept.self_certainty, separate.self_certainty, atol=1e-5)
        assert kept.self_certainty.abs().min() > 0


def test_beam_search_without_a_self_certainty_reward_costs_nothing(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    args = make_config(tmp_path, generation_kwargs={"num_beams": 2})
    trainer = IntuitorTrainer(
        model=model, reward_funcs=[exact_length_reward], args=args, train_dataset=make_dataset(), processing_class=tok
    )
    calls = count_backbone_calls(trainer)
    inner, per_round = trainer._generate_single_turn, []

    def spy(*a, **kw):
        before = len(calls)
        out = inner(*a, **kw)
        per_round.append((len(calls) - before, max(len(c) for c in out[0])))
        return out

    trainer._generate_single_turn = spy
    trainer.train()
    assert trainer.state.global_step == 2
    for forwards, longest in per_round:  # decoding steps only (prefill + one per new token), no scoring pass
        assert forwards <= longest
    assert not any("self_certainty/mean" in h for h in trainer.state.log_history)  # not logged, as with vLLM


def test_one_row_per_step_rule():
    from transformers import GenerationConfig

    from intuitor.training.rollouts import one_row_per_step as _one_row_per_step

    assert _one_row_per_step(GenerationConfig(do_sample=True, temperature=0.9))
    assert not _one_row_per_step(GenerationConfig(num_beams=4))
    assert not _one_row_per_step(GenerationConfig(prompt_lookup_num_tokens=3))


def test_plain_grpo_config_is_carried_into_an_intuitor_config(tiny_model_dir, tmp_path):
    from transformers.testing_utils import CaptureLogger

    from intuitor.training import trainer as trainer_module

    model, tok = load(tiny_model_dir)
    kw = config_kwargs(tmp_path, learning_rate=0.02, temperature=0.7, generation_batch_size=8)
    grpo = GRPOConfig(**kw)
    with CaptureLogger(trainer_module.logger) as cl:
        trainer = IntuitorTrainer(
            model=model,
            reward_funcs=[exact_length_reward],
            args=grpo,
            train_dataset=make_dataset(),
            processing_class=tok,
        )
    assert "args is a GRPOConfig" in cl.out and "annotator='online'" in cl.out
    args = trainer.args
    assert isinstance(args, IntuitorConfig)
    # the user's GRPO values, not INTUITOR's paper defaults (lr 3e-6, beta 0.005, temperature 0.9, G=7)
    assert (args.learning_rate, args.beta, args.temperature, args.num_generations) == (0.02, 0.0, 0.7, 4)
    assert (args.generation_batch_size, args.steps_per_generation) == (8, 2)
    assert (args.annotator, args.guard, args.rewards) == ("online", "off", ["self_certainty"])
    trainer.train()
    assert trainer.state.global_step == 2


def test_unknown_args_type_is_named(tiny_model_dir):
    model, tok = load(tiny_model_dir)
    with pytest.raises(TypeError, match="IntuitorConfig or a GRPOConfig, got dict"):
        IntuitorTrainer(model=model, args={"lr": 1}, train_dataset=make_dataset(), processing_class=tok)


def test_generate_that_bypasses_the_recorder_is_scored_with_a_pass(tiny_model_dir, tmp_path):
    """A patched generate that never runs the LM head: the scores come from a pass, never silently 0.0."""
    from transformers.testing_utils import CaptureLogger

    from intuitor.training import trainer as trainer_module

    model, tok = load(tiny_model_dir)
    trainer = IntuitorTrainer(
        model=model, args=make_config(tmp_path), train_dataset=make_dataset(), processing_class=tok
    )
    gen = torch.Generator().manual_seed(0)

    def canned_generate(input_ids, **kwargs):  # e.g. a cached or external sampler
        new = torch.randint(3, len(tok), (input_ids.size(0), 5), generator=gen)  # no special tokens: length 5
        return torch.cat([input_ids, new], dim=1)

    trainer.model.generate = canned_generate
    seen = recorded_vs_pass(trainer)
    with CaptureLogger(trainer_module.logger) as cl:
        trainer.train()
    assert "does not match the completions" in cl.out and "separate pass" in cl.out
    assert len(seen) == 2
    for kept, separate in seen:
        assert torch.allclose(kept.self_certainty, separate.self_certainty, atol=1e-5)
        assert kept.self_certainty.abs().min() > 1e-4


def test_recorder_refuses_to_read_an_empty_recording():
    from intuitor.certainty import GenerationRecorder, RecordingMismatch

    with pytest.raises(RecordingMismatch, match="no decoding step"):
        GenerationRecorder().statistics([3, 1])
    assert GenerationRecorder().statistics([0, 0]).self_certainty.tolist() == [0.0, 0.0]


# --- self-certainty read inside TRL's old-policy log-prob pass (the vLLM path, forced with transformers) --------


def logprob_pass_kwargs(tmp_path, **kw):
    # steps_per_generation=2 > gradient_accumulation_steps=1: TRL runs its old-policy log-prob pass, as with vLLM
    return config_kwargs(
        tmp_path,
        steps_per_generation=2,
        max_steps=3,
        max_completion_length=6,
        generation_kwargs={"min_new_tokens": 3},
        **kw,
    )


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_logprob_pass_statistics_equal_the_generation_recorder(tiny_model_dir, tmp_path, beta):
    from intuitor.certainty import record_generation

    model, tok = load(tiny_model_dir)
    args = IntuitorConfig(**logprob_pass_kwargs(tmp_path, beta=beta, self_certainty_source="logprob_pass"))
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=make_dataset(), processing_class=tok)
    assert trainer._statistics_source == "logprob_pass"
    recorded, from_pass = [], []
    inner, log = trainer._generate_single_turn, trainer._log_rollout

    def spy(prompt_ids, *a, **kw):  # the recorder the default path uses, watching the same generation
        with record_generation(trainer.accelerator.unwrap_model(trainer.model)) as rec:
            completion_ids, lp = inner(prompt_ids, *a, **kw)
        assert trainer._rollout[1] is None  # not scored yet: the pass comes after generation
        recorded.append(rec.statistics([len(c) for c in completion_ids]))
        return completion_ids, lp

    trainer._generate_single_turn = spy
    trainer._log_rollout = lambda ids, stats: (from_pass.append(stats), log(ids, stats))
    trainer.train()
    assert len(recorded) == len(from_pass) == 2  # steps 1 and 3 generate (step 2 reuses), after an update
    for rec, got in zip(recorded, from_pass):
        assert got.self_certainty.shape == (8,) and got.self_certainty.abs().min() > 0
        assert torch.allclose(got.self_certainty, rec.self_certainty, atol=1e-4, rtol=0)
        assert torch.allclose(got.entropy, rec.entropy, atol=1e-4, rtol=0)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "rewards/self_certainty/mean" in r] == [1, 3]  # the generating steps


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_logprob_pass_adds_no_forward_call_to_plain_grpo(tiny_model_dir, tmp_path, beta):
    counts = {}
    for name in ("grpo", "intuitor"):
        model, tok = load(tiny_model_dir)
        kw = logprob_pass_kwargs(tmp_path / name, beta=beta)
        kw["generation_kwargs"] = {"min_new_tokens": 6}  # fixed length: same decode steps in both runs
        if name == "grpo":
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=[exact_length_reward],
                args=GRPOConfig(**kw),
                train_dataset=make_dataset(),
                processing_class=tok,
            )
        else:
            trainer = IntuitorTrainer(
                model=model,
                args=IntuitorConfig(**kw, self_certainty_source="logprob_pass"),
                train_dataset=make_dataset(),
                processing_class=tok,
            )
        calls = count_backbone_calls(trainer)
        trainer.train()
        counts[name] = len(calls)
    assert counts["intuitor"] == counts["grpo"] > 0


def test_auto_source_per_configuration(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    plain = IntuitorTrainer(
        model=model, args=make_config(tmp_path), train_dataset=make_dataset(), processing_class=tok
    )
    assert plain._statistics_source == "generation"  # transformers generation: the recorder, free
    shifted = IntuitorTrainer(
        model=model,
        args=make_config(tmp_path, shifted_self_certainty=True),
        train_dataset=make_dataset(),
        processing_class=tok,
    )
    assert shifted._statistics_source == "separate_pass"
    with pytest.raises(ValueError, match="TRL runs no old-policy log-prob pass.*steps_per_generation"):
        IntuitorTrainer(
            model=model,
            args=make_config(tmp_path, self_certainty_source="logprob_pass"),
            train_dataset=make_dataset(),
            processing_class=tok,
        )
    with pytest.raises(ValueError, match="self_certainty_source='pass'"):
        make_config(tmp_path, self_certainty_source="pass")


def test_separate_pass_matches_response_statistics(tiny_model_dir):
    """The collective-safe separate pass (through the model's own forward) gives response_statistics' values."""
    from intuitor.training.scoring import pass_statistics

    model, _ = load(tiny_model_dir)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 259, (n,), generator=g).tolist() for n in (5, 9, 3, 7, 4)]
    completions = [torch.randint(3, 259, (n,), generator=g).tolist() for n in (4, 0, 6, 2, 8)]
    for shifted in (False, True):
        ref = response_statistics(model, prompts, completions, shifted=shifted, batch_size=2)
        got = pass_statistics(model, prompts, completions, shifted=shifted, batch_size=2, chunk_elements=259 * 3)
        assert torch.allclose(got.self_certainty, ref.self_certainty, atol=1e-6)
        assert torch.allclose(got.entropy, ref.entropy, atol=1e-6)
        assert got.self_certainty[1] == 0.0 and got.self_certainty[0] > 0  # empty completion: 0, never NaN


# --- bf16 weights without fp32 master weights (issue 20.2) ------------------------------------------------------


def test_bf16_weights_without_master_weights_are_refused(tiny_model_dir, tmp_path):
    model, tok = load(tiny_model_dir)
    with pytest.raises(
        ValueError,
        match="trainable weights are bfloat16.*model_dtype: float32.*zero2.yaml.*allow_low_precision_weights: true",
    ):
        IntuitorTrainer(
            model=model.to(torch.bfloat16),
            args=make_config(tmp_path, allow_low_precision_weights=False),
            train_dataset=make_dataset(),
            processing_class=tok,
        )
    # Unset, in Python: a warning, as a drop-in for GRPOTrainer (which trains such models) must not refuse them.
    with pytest.warns(UserWarning, match="trainable weights are bfloat16.*`intuitor train` refuses this"):
        IntuitorTrainer(
            model=model.to(torch.bfloat16),
            args=make_config(tmp_path),
            train_dataset=make_dataset(),
            processing_class=tok,
        )


def test_intuitor_train_refuses_bf16_weights_unless_opted_in():
    from intuitor.training.run import resolve_recipe

    _, config = resolve_recipe(str(ROOT / "recipes/tiny-cpu.yaml"), ["--output_dir", "unused"])
    assert config.allow_low_precision_weights is False
    _, config = resolve_recipe(
        str(ROOT / "recipes/tiny-cpu.yaml"), ["--output_dir", "unused", "--allow_low_precision_weights", "true"]
    )
    assert config.allow_low_precision_weights is True


def one_step_update(tiny_model_dir, tmp_path, dtype, lr, **kw):
    model, tok = load(tiny_model_dir)
    model = model.to(dtype)
    weight = model.model.layers[0].mlp.up_proj.weight  # (128, 64): every element gets a gradient
    before = weight.detach().float().clone()
    args = make_config(
        tmp_path, learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, max_steps=1, weight_decay=0.0, **kw
    )
    IntuitorTrainer(model=model, args=args, train_dataset=make_dataset(), processing_class=tok).train()
    return (weight.detach().float() - before).abs()


def test_one_adamw_step_moves_fp32_weights_by_the_learning_rate_and_bf16_weights_mostly_not(tiny_model_dir, tmp_path):
    # AdamW's first step is lr * g / (|g| + eps) per element: lr itself wherever |g| >> eps = 1e-8.
    lr = 1e-5
    delta = one_step_update(tiny_model_dir, tmp_path / "fp32", torch.float32, lr)
    assert (delta == 0).float().mean() < 0.01
    assert delta.median().item() == pytest.approx(lr, rel=0.02)
    # bf16 keeps 8 bits of mantissa: a 1e-5 step rounds away on every weight above ~2e-3 in size (most of them),
    # which is what the guard refuses unless the user opts in.
    delta = one_step_update(tiny_model_dir, tmp_path / "bf16", torch.bfloat16, lr, allow_low_precision_weights=True)
    assert (delta == 0).float().mean() > 0.8
