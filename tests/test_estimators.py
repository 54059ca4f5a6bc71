"""The label-free estimators beyond self-certainty (issue 30): trajectory entropy, sequence probability, last-chunk
entropy and cluster frequency, against float64 recomputations from the model's own logits and hand-computed cases;
the alignment metrics on hand-made groups; and a training run that logs every reward and its alignment."""

import json
import math

import pytest
import torch
from datasets import Dataset

from intuitor.certainty import (
    RecordingMismatch,
    TokenRecorder,
    TokenStatistics,
    record_generation_tokens,
    response_token_statistics,
    token_log_probs,
)
from intuitor.rewards import get_reward, load_all
from intuitor.rewards.cluster_frequency import (
    ClusterFrequencyReward,
    cluster_frequencies,
)
from intuitor.rewards.last_chunk_entropy import LastChunkEntropyReward
from intuitor.rewards.sequence_probability import SequenceProbabilityReward
from intuitor.rewards.trajectory_entropy import TrajectoryEntropyReward
from intuitor.training.metrics import alignment


NEW = ("trajectory_entropy", "sequence_probability", "last_chunk_entropy", "cluster_frequency")


@pytest.fixture(scope="module")
def sharp(tiny_model_dir):
    """The tiny model with sharpened logits (a random init is near uniform: errors would not show)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(20)
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def tiny_config(tmp_path, **overrides):
    """A 1-step CPU run on the tiny model: 4 prompts' worth of G=4, logged every step, no reference model."""
    from intuitor.training import IntuitorConfig

    base = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
    )
    return IntuitorConfig(**{**base, **overrides})


def float64_reference(model, prompt, completion, temperature=1.0):
    """(log p of each completion token, entropy at each position), float64, from one full forward."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        z = model(input_ids=ids).logits[0, len(prompt) - 1 : len(prompt) + len(completion) - 1].double() / temperature
    logp = torch.log_softmax(z, -1)
    return logp[torch.arange(len(completion)), torch.tensor(completion)], -(logp.exp() * logp).sum(-1)


def sample(model, tok, prompts, seed=3, max_new_tokens=12, temperature=1.0):
    width = max(map(len, prompts))
    input_ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(seed)
    with record_generation_tokens(model, temperature) as rec, torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=max_new_tokens,
            temperature=1.0,
            top_k=0,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    completions = []
    for row in out[:, width:].tolist():
        completions.append(row[: row.index(tok.eos_token_id) + 1] if tok.eos_token_id in row else row)
    return rec, completions


# --- the statistics: recorded during generation, equal to float64 from a full forward -------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_recorded_token_log_probs_and_entropies_equal_float64_from_the_logits(sharp, temperature):
    model, tok = sharp
    prompts = [[5, 6, 7, 8], [9, 10], [11, 12, 13]]
    rec, completions = sample(model, tok, prompts, temperature=temperature)
    assert len({len(c) for c in completions}) > 1 or max(map(len, completions)) == 12  # rows of several lengths
    stats = rec.with_tokens(rec.statistics([len(c) for c in completions]), completions)
    for p, c, lp, ent in zip(prompts, completions, stats.token_log_probs, stats.token_entropies):
        ref_lp, ref_ent = float64_reference(model, p, c, temperature)
        assert lp.dtype == torch.float32 and lp.shape == (len(c),)
        assert torch.allclose(lp.double(), ref_lp, atol=1e-4)
        assert torch.allclose(ent.double(), ref_ent, atol=1e-4)
    # The stand-alone pass gives the same values (it is what the rewards use outside the trainer).
    alone = response_token_statistics(model, prompts, completions, temperature)
    for a, b in zip(alone.token_log_probs, stats.token_log_probs):
        assert torch.allclose(a, b, atol=1e-5)


def test_each_estimator_equals_its_float64_definition(sharp):
    model, tok = sharp
    prompts = [[5, 6, 7, 8], [9, 10], [11, 12, 13], [14, 15]]
    rec, completions = sample(model, tok, prompts, seed=5)
    stats = rec.with_tokens(rec.statistics([len(c) for c in completions]), completions)

    class Source:
        def rollout_statistics(self, ids):
            return stats

    refs = [float64_reference(model, p, c) for p, c in zip(prompts, completions)]
    expected = {
        "trajectory_entropy": [lp.mean().item() for lp, _ in refs],
        "sequence_probability": [math.exp(lp.sum().item()) for lp, _ in refs],
        "last_chunk_entropy": [-ent[len(ent) - math.ceil(0.25 * len(ent)) :].mean().item() for _, ent in refs],
    }
    for name, want in expected.items():
        reward = get_reward(name)
        reward.bind(Source())
        got = reward(prompts=["q"] * 4, completions=["x"] * 4, completion_ids=completions)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5), name
    # Stand-alone (model= and tokenizer=), the same numbers from one forward of the given model.
    text = [tok.decode(p) for p in prompts]
    alone = TrajectoryEntropyReward(model=model, tokenizer=tok)
    alone._prompt_ids = lambda _: prompts  # the decoded ids of a random model need not re-encode identically
    assert alone(prompts=text, completions=["x"] * 4, completion_ids=completions) == pytest.approx(
        expected["trajectory_entropy"], rel=1e-4, abs=1e-5
    )


def test_token_log_probs_hand_computed_and_masked_logits():
    z = torch.tensor([[0.0, math.log(3.0), -math.inf]])  # p = (1/4, 3/4, 0)
    got = token_log_probs(z.expand(3, 3), torch.tensor([0, 1, 2]))
    assert got[:2].tolist() == pytest.approx([math.log(0.25), math.log(0.75)], abs=1e-6)
    assert got[2].item() == -math.inf  # a masked token has probability 0, as Categorical.log_prob says
    assert torch.distributions.Categorical(logits=z[0]).log_prob(torch.tensor(2)).item() == -math.inf
    # Temperature: softmax(z / T).
    assert token_log_probs(z, torch.tensor([1]), temperature=2.0).item() == pytest.approx(
        math.log(math.sqrt(3) / (1 + math.sqrt(3))), abs=1e-6
    )
    with pytest.raises(ValueError, match="temperature"):
        token_log_probs(z, torch.tensor([0]), temperature=0)


def test_a_recording_of_other_tokens_is_refused(sharp):
    model, tok = sharp
    rec, completions = sample(model, tok, [[5, 6, 7], [8, 9]], max_new_tokens=6)
    stats = rec.statistics([len(c) for c in completions])
    wrong = [list(c) for c in completions]
    wrong[0][0] = (wrong[0][0] + 1) % 64
    with pytest.raises(RecordingMismatch, match="completion 0"):
        rec.with_tokens(stats, wrong)
    with pytest.raises(RecordingMismatch, match="no decoding step"):
        TokenRecorder().token_statistics([[1, 2]])
    empty = TokenRecorder().token_statistics([[], []])
    assert [t.numel() for t in empty[0]] == [0, 0]


# --- hand-computed cases -----------------------------------------------------------------------------------------


def bound(reward, log_probs, entropies):
    class Source:
        def rollout_statistics(self, ids):
            n = len(log_probs)
            return TokenStatistics(
                torch.zeros(n),
                torch.zeros(n),
                [torch.tensor(v) for v in log_probs],
                [torch.tensor(v) for v in entropies],
            )

    reward.bind(Source())
    n = len(log_probs)
    return reward(prompts=["q"] * n, completions=["x"] * n, completion_ids=[[1] * len(v) for v in log_probs])


def test_hand_computed_values():
    lps = [[math.log(0.5)] * 3, [math.log(0.9)], []]
    ents = [[3.0, 2.0, 1.0], [0.5], []]
    assert bound(TrajectoryEntropyReward(), lps, ents) == pytest.approx([math.log(0.5), math.log(0.9), 0.0])
    assert bound(SequenceProbabilityReward(), lps, ents) == pytest.approx([0.125, 0.9, 1.0])
    assert bound(SequenceProbabilityReward(length_normalized=True), lps, ents) == pytest.approx([0.5, 0.9, 1.0])
    # ceil(0.25 * 3) = 1 last token; ceil(0.5 * 3) = 2; at least one token; an empty response scores 0.
    assert bound(LastChunkEntropyReward(), lps, ents) == pytest.approx([-1.0, -0.5, 0.0])
    assert bound(LastChunkEntropyReward(fraction=0.5), lps, ents) == pytest.approx([-1.5, -0.5, 0.0])
    assert bound(LastChunkEntropyReward(fraction=1.0), lps, ents) == pytest.approx([-2.0, -0.5, 0.0])
    eight = [[0.0] * 8]
    assert bound(LastChunkEntropyReward(), eight, [[8.0, 7, 6, 5, 4, 3, 2, 1]]) == [-1.5]  # exactly 2 of 8
    with pytest.raises(ValueError, match="fraction"):
        LastChunkEntropyReward(fraction=0)


def test_cluster_frequency_follows_empo():
    # Equivalent answers share a cluster (math-verify: 5 = 5.0 = \frac{10}{2}); no answer scores 0; G = 4 divides.
    r = ClusterFrequencyReward(num_generations=4)
    got = r(
        prompts=["q"] * 8,
        completions=[
            "\\boxed{5}",
            "5.0",
            "\\boxed{\\frac{10}{2}}",
            "no idea",
            "\\boxed{1}",
            "\\boxed{2}",
            "\\boxed{3}",
            "\\boxed{4}",
        ],
    )
    assert got == [0.75, 0.75, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0]  # second group: every answer alone, entropy log G
    assert cluster_frequencies([None, None, None, None], 4) == [0.0] * 4
    assert cluster_frequencies([0, 0, 0, 0, 4, 4, None, 7], 4) == [1.0] * 4 + [0.5, 0.5, 0.0, 0.25]


def test_registry_lists_the_new_estimators_and_their_flags():
    from typer.testing import CliRunner

    from intuitor.cli import app

    load_all()
    out = CliRunner().invoke(app, ["rewards"]).output
    for name in NEW:
        assert name in out
        reward = get_reward(name)
        assert reward.__name__ == name
        assert getattr(reward, "needs_token_statistics", False) == (name != "cluster_frequency")


# --- alignment metrics on hand-made groups ----------------------------------------------------------------------


def test_alignment_hand_made_groups():
    nan = float("nan")
    # Group 1: right scores above every wrong -> 1.0, top right. Group 2: reversed -> 0.0, top wrong.
    a = alignment([4, 3, 2, 1, 1, 2, 3, 4], [1, 1, 0, 0, 1, 1, 0, 0], 4)
    assert a == {"auroc": 0.5, "top1": 0.5}
    # All-right and all-wrong groups count for top1 only; ties count 1/2 for both.
    a = alignment([1, 1, 0, 0, 5, 5, 1, 1, 2, 2, 2, 2], [1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0], 4)
    assert a["auroc"] == pytest.approx((0.5 + 1 + 1) / 3)  # one group with both: right 1 vs wrong (1, 0, 0)
    assert a["top1"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # NaN scores or labels are left out; a group with none qualifying is skipped; no group at all gives NaN.
    a = alignment([nan, 1.0, 0.0, 2.0, nan, nan, nan, nan], [1, 0, 1, nan, 1, 0, 1, 0], 4)
    assert a == {"auroc": 0.0, "top1": 0.0}
    a = alignment([1.0, 2.0], [1, 1], 2)
    assert math.isnan(a["auroc"]) and a["top1"] == 1.0
    assert all(math.isnan(v) for v in alignment([1.0, 2.0, 3.0], [1, 0, 1], 2).values())


# --- a run mixing the estimators at weight 0 logs each reward and its alignment ------------------------------------


def test_mixed_run_logs_every_estimator_and_its_alignment(tiny_model_dir, tmp_path):
    """lr = 0 keeps the weights fixed, so the logged values can be recomputed after training."""
    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    seen = {}

    def accuracy(prompts, completions, completion_ids, **kwargs):  # a stand-in gold: every other sample is right
        seen.setdefault("ids", []).append([list(c) for c in completion_ids])
        return [float(i % 2) for i in range(len(completions))]

    names = ["self_certainty", *NEW, "negative_entropy"]
    args = tiny_config(
        tmp_path,
        max_steps=2,
        max_completion_length=8,
        learning_rate=0.0,
        reward_weights=[1.0] + [0.0] * len(NEW) + [0.0, 0.0],
    )
    data = Dataset.from_list([{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(8)])
    trainer = IntuitorTrainer(
        model=model, reward_funcs=[*names, accuracy], args=args, train_dataset=data, processing_class=tok
    )
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert len(train_rows) == 2
    for name in names:
        for key in (f"rewards/{name}/mean", f"alignment/{name}/top1"):
            assert all(key in r for r in train_rows), key
    # Step 2 (one prompt, G = 4 samples): the logged per-sample values are the float64 definition on the generated
    # ids with the unchanged model, and the logged alignment is `alignment` of them against the stand-in gold.
    prompt = tok(list(trainer._logs["prompt"])[-1], add_special_tokens=False)["input_ids"]
    logged = list(trainer._logs["rewards"]["trajectory_entropy"])[-4:]
    want = [float64_reference(model, prompt, c)[0].mean().item() for c in seen["ids"][-1]]
    assert logged == pytest.approx(want, abs=1e-4)
    gold = [0.0, 1.0, 0.0, 1.0]
    for name in names:
        values = list(trainer._logs["rewards"][name])[-4:]
        expected = alignment(values, gold, 4)
        assert train_rows[1][f"alignment/{name}/auroc"] == pytest.approx(expected["auroc"]), name
        assert train_rows[1][f"alignment/{name}/top1"] == pytest.approx(expected["top1"]), name


def test_curves_plot_the_alignment_of_every_reward(tmp_path):
    from intuitor.analysis.curves import plot_curves, summarize_metrics

    rows = [
        {
            "step": s,
            "alignment/self_certainty/auroc": 0.7 - 0.1 * s,
            "alignment/trajectory_entropy/auroc": 0.6,
            "alignment/self_certainty/top1": 0.5,
            "alignment/cluster_frequency/top1": 0.25 * s,
        }
        for s in (1, 2)
    ]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    written = plot_curves([tmp_path / "run"], tmp_path / "plots")
    assert {"alignment_auroc", "alignment_top1", "grid"} <= set(written)
    families = summarize_metrics(rows)["families"]
    assert families["alignment_auroc"] == ["alignment/self_certainty/auroc", "alignment/trajectory_entropy/auroc"]
    assert families["alignment_top1"] == ["alignment/self_certainty/top1", "alignment/cluster_frequency/top1"]


@pytest.mark.slow
def test_demo_compares_the_estimators(tmp_path):
    """`intuitor demo --estimators` at toy sizes: one run per estimator, each with its alignment and guard record,
    and the README table rendered from demo.json's numbers."""
    from rich.console import Console

    from intuitor.demo.runner import (
        ESTIMATORS,
        DemoConfig,
        estimator_markdown,
        run_demo,
    )

    cfg = DemoConfig(
        output_dir=str(tmp_path),
        seeds=1,
        steps=3,
        eval_items=8,
        sampled_k=2,
        precondition_items=4,
        precondition_k=4,
        prompts_per_step=4,
        num_generations=4,
        estimators=True,
        alignment_window=2,
    )
    console = Console(record=True, width=200)
    report = run_demo(cfg, console=console)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert [row["estimator"] for row in saved["estimators"]] == list(ESTIMATORS)
    for row in saved["estimators"]:
        run_dir = tmp_path / f"{row['run']}-seed0"
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        key = f"alignment/{row['estimator']}/top1"
        values = [r[key] for r in rows if r.get(key) is not None]
        assert values and row["alignment_top1_start"] == pytest.approx(sum(values[:2]) / len(values[:2]))
        assert row["alignment_top1_end"] == pytest.approx(sum(values[-2:]) / len(values[-2:]))
        assert all(f"rewards/{row['estimator']}/mean" in r for r in rows if "loss" in r)
        assert row["steps_run"] == [3]
    table = estimator_markdown(saved)
    assert table.count("\n") == len(ESTIMATORS) + 1 and "`trajectory_entropy`" in table
    assert "| `cluster_frequency` |" in console.export_text()
    assert report["estimators"] == saved["estimators"]


def test_token_estimators_train_under_the_std_floor(tiny_model_dir, tmp_path):
    """Wrapped by the std floor, a token-level reward still makes the trainer record per-token statistics."""
    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    args = tiny_config(
        tmp_path,
        max_completion_length=6,
        advantage_std_floor=0.05,
        rewards=["trajectory_entropy", "last_chunk_entropy:0.5"],
    )
    data = Dataset.from_list([{"prompt": f"What is {i} + {i}?"} for i in range(4)])
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    assert trainer._needs_token_statistics()
    trainer.train()
    (row,) = [h for h in trainer.state.log_history if "rewards/trajectory_entropy/raw_mean" in h]
    completions, stats = trainer._rollout
    want = sum(lp.double().mean().item() for lp in stats.token_log_probs) / len(completions)
    assert row["rewards/trajectory_entropy/raw_mean"] == pytest.approx(want, abs=1e-5)


def test_token_estimators_without_the_recorder_say_what_to_change(tiny_model_dir, tmp_path):
    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    args = tiny_config(
        tmp_path,
        max_completion_length=4,
        self_certainty_source="separate_pass",
        rewards=["self_certainty", "sequence_probability:0"],
    )
    trainer = IntuitorTrainer(
        model=model,
        args=args,
        processing_class=tok,
        train_dataset=Dataset.from_list([{"prompt": "What is 1 + 1?"}] * 4),
    )
    with pytest.raises(RuntimeError, match="sequence_probability needs per-token log-probabilities.*generation"):
        trainer.train()


def test_readme_estimator_table_is_the_committed_runs_numbers():
    """The README's comparison is `estimator_markdown` of the committed demo.json, not typed by hand."""
    from pathlib import Path

    from intuitor.demo.runner import ESTIMATORS, estimator_markdown

    root = Path(__file__).resolve().parents[1]
    report = json.loads((root / "docs" / "demo_estimators.json").read_text())
    assert report["config"]["estimators"] and report["config"]["seeds"] == 3
    assert [row["estimator"] for row in report["estimators"]] == list(ESTIMATORS)
    assert all(row["seeds"] == 3 for row in report["estimators"])
    assert estimator_markdown(report) in (root / "README.md").read_text()
