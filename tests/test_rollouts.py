"""Training rollouts through the refill scheduler (`generation_scheduling: refill`, issue 32): finished completions
leave the batch, a prompt's G copies share one prefill, completions are cut as TRL cuts them, and the recorded
self-certainty equals the float64 forward over prompt + completion."""

import copy

import pytest
import torch
from datasets import Dataset

from intuitor.certainty import response_statistics
from intuitor.training import IntuitorConfig, IntuitorTrainer


def dataset(n=8):
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?" + " x" * i}]} for i in range(n)]
    )


def lively_trainer(tiny_model_dir, tmp_path, **kw):
    """The tiny model with larger random weights (its text depends on the context) and two frequent tokens as
    extra EOS ids, so that completions end after different numbers of tokens."""
    from intuitor.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    args = dict(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,  # 2 prompts x G = 4 per step
        max_completion_length=24,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        learning_rate=1e-3,
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
        generation_scheduling="refill",
    )
    args.update(kw)
    trainer = IntuitorTrainer(model=model, args=IntuitorConfig(**args), train_dataset=dataset(), processing_class=tok)
    trainer.eos_token_ids = list(trainer.eos_token_ids) + [198, 184]
    return trainer


def test_refill_rollouts_record_exactly_and_decode_no_finished_row(tiny_model_dir, tmp_path):
    trainer = lively_trainer(tiny_model_dir, tmp_path)
    rows = []  # (batch rows, query length) of every backbone call during generation
    seen, inner = [], trainer._generate_single_turn

    def spy(prompt_ids, *a, **kw):
        rows.clear()
        handle = trainer.model.base_model.register_forward_pre_hook(
            lambda mod, args, kw: rows.append(tuple(kw["input_ids"].shape)), with_kwargs=True
        )
        try:
            completion_ids, lp = inner(prompt_ids, *a, **kw)
        finally:
            handle.remove()
        reference = response_statistics(copy.deepcopy(trainer.model).double(), prompt_ids, completion_ids)
        seen.append((prompt_ids, completion_ids, list(rows), trainer._rollout[1], reference))
        return completion_ids, lp

    trainer._generate_single_turn = spy
    trainer.train()
    assert len(seen) == 2
    eos = set(trainer.eos_token_ids)
    lengths = []
    for prompt_ids, completions, calls, recorded, reference in seen:
        assert len(completions) == 8 and len({tuple(p) for p in prompt_ids}) == 2
        for c in completions:  # cut as TRL cuts: through the first EOS, else the full budget
            assert all(t not in eos for t in c[:-1]) and (c[-1] in eos or len(c) == 24)
        lengths += [len(c) for c in completions]
        # the common prefix once, then the 2 distinct prompts' suffixes (not 8 prompts), then decoding steps whose
        # rows all produce a kept token: the rows decoded are the tokens generated after each first token
        assert calls[0][0] == 1 and calls[1][0] == 2
        steps = [b for b, q in calls[2:]]
        assert all(q == 1 for _, q in calls[2:]) and steps[0] == 8
        assert sum(steps) == sum(len(c) - 1 for c in completions) < 8 * (max(map(len, completions)) - 1)
        assert torch.allclose(recorded.self_certainty.double(), reference.self_certainty.double(), atol=1e-5, rtol=0)
        assert torch.allclose(recorded.entropy.double(), reference.entropy.double(), atol=1e-5, rtol=0)
    assert len(set(lengths)) >= 4 and max(lengths) == 24  # rows really end at different steps
    draws = [c for _, cs, *_ in seen for c in cs]
    assert len({tuple(c) for c in draws}) > 8  # the G copies of a prompt are sampled independently


def test_refill_rollouts_are_reproducible_and_train(tiny_model_dir, tmp_path):
    runs = []
    for name in ("a", "b"):
        trainer = lively_trainer(tiny_model_dir, tmp_path / name, max_steps=1, lr_scheduler_type="constant")
        got = []

        def spy(*a, inner=trainer._generate_single_turn, got=got, **kw):
            got.append(inner(*a, **kw))
            return got[-1]

        trainer._generate_single_turn = spy
        before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        trainer.train()
        assert any(not torch.equal(before[k], v) for k, v in trainer.model.named_parameters())
        runs.append(got[0][0])
    assert runs[0] == runs[1]  # seeded by the run's seed


def test_refill_refuses_what_it_does_not_implement(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="generation_scheduling='paged': choose one of static, refill"):
        IntuitorConfig(output_dir=str(tmp_path), generation_scheduling="paged", use_cpu=True)
    with pytest.raises(
        ValueError, match="refill cannot generate these rollouts: generation option repetition_penalty"
    ):
        lively_trainer(tiny_model_dir, tmp_path, generation_kwargs={"repetition_penalty": 1.2})
    with pytest.raises(ValueError, match="refill cannot generate these rollouts: a token-level reward"):
        lively_trainer(tiny_model_dir, tmp_path, rewards=["trajectory_entropy"])
