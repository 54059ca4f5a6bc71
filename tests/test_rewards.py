"""The reward suite: hand-made completions with known answers, the registry, one IntuitorTrainer step with every
reward, TRL's mixing of weighted rewards (both aggregation modes) checked against hand-computed advantages, the
group-std floor, and the metrics a run writes to metrics.jsonl."""

import json
import math
import pickle
import statistics
import time

import pytest
from datasets import Dataset

from intuitor.rewards import build_rewards, get_reward, load_all, parse_reward_spec
from intuitor.rewards.accuracy import AccuracyReward
from intuitor.rewards.format import FormatReward
from intuitor.rewards.group import GroupAware, apply_std_floor, completion_text, group_std_floor_divisors
from intuitor.rewards.plurality_vote import PluralityVoteReward, canonical_answer, plurality_labels
from intuitor.rewards.random_reward import RandomReward


def msg(text):
    return [{"role": "assistant", "content": text}]


# ---- accuracy ---------------------------------------------------------------------------------------------------


def test_accuracy_math_verify_equivalences():
    r = AccuracyReward()
    completions = [
        "The answer is $\\boxed{\\frac{1}{2}}$.",  # 1/2 == 0.5
        "so we get \\boxed{0.5}",
        "Total: 1,234 apples",  # plain number with a thousands comma
        "\\boxed{3} at first, but finally \\boxed{4}",  # the last box counts
        "I think it is 7",
        "no answer at all",
    ]
    golds = ["0.5", "\\frac{1}{2}", "1234", "3", "7", "7"]
    assert r(prompts=["q"] * 6, completions=completions, answer=golds) == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_accuracy_gsm8k_gold_and_conversational_completions():
    r = AccuracyReward()
    gold = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"
    out = r(
        prompts=["q"] * 3, completions=[msg("48 + 24 = 72"), msg("\\boxed{72}"), msg("it is 70")], answer=[gold] * 3
    )
    assert out == [1.0, 1.0, 0.0]


def test_accuracy_without_gold_is_none_and_missing_column_says_what_to_do():
    r = AccuracyReward()
    assert r(prompts=["q"] * 2, completions=["\\boxed{1}", "\\boxed{1}"], answer=["", "1"]) == [None, 1.0]
    with pytest.raises(ValueError, match="no 'answer' column"):
        r(prompts=["q"], completions=["1"])


def test_accuracy_pathological_answer_is_false_within_the_time_limit():
    # SymPy would build a 370-million-digit integer: the check must give up, count as wrong, and not hang.
    r = AccuracyReward(timeout_s=1.0)
    start = time.monotonic()
    assert r(prompts=["q"], completions=["\\boxed{9^{9^{9^{9}}}}"], answer=["1"]) == [0.0]
    assert time.monotonic() - start < 15  # 1 s limit + killing and restarting the helper on a loaded machine
    assert r(prompts=["q"], completions=["\\boxed{2}"], answer=["2"]) == [1.0]  # the checker recovered


def test_accuracy_uses_the_task_scorer_when_the_task_has_one():
    r = AccuracyReward(task="addition")  # the demo task: answers are spaced digits, "answer 9 3 6"
    assert r(prompts=["q"] * 2, completions=["answer 9 3 6", "answer 9 3 5"], answer=["936", "936"]) == [1.0, 0.0]


# ---- plurality vote ---------------------------------------------------------------------------------------------


def test_plurality_labels_ties_and_none():
    assert plurality_labels(["2", "1", "1", "2"], 4) == ["2"]  # tie: the earliest answer wins
    assert plurality_labels([None, None, "3", None], 4) == ["3"]  # None never votes
    assert plurality_labels([None, None], 2) == [None]


def test_plurality_vote_rewards():
    r = PluralityVoteReward(num_generations=4)
    completions = [
        "\\boxed{1/2}",
        "x = \\boxed{1/2}",
        "\\boxed{2}",
        "nothing",  # plurality 1/2; None scores 0
        "7",
        "8",
        "8",
        "7",  # tie between 7 and 8: 7 comes first
        "no",
        "numbers",
        "here",
        "at all",  # no answers: all 0
    ]
    assert r(prompts=["q"] * 12, completions=[msg(c) for c in completions]) == [
        1.0,
        1.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    assert canonical_answer("1,000") == canonical_answer("1000.00") == "1000"


def test_plurality_vote_with_a_task_extractor_and_pickling():
    r = PluralityVoteReward(extractor="addition", num_generations=2)
    assert r(prompts=["q"] * 2, completions=["answer 1 2", "7 + 5 = 1 2 ; answer 1 2"]) == [1.0, 1.0]
    clone = pickle.loads(pickle.dumps(r))
    assert clone(prompts=["q"] * 2, completions=["answer 1 2", "answer 1 3"]) == [1.0, 0.0]


def test_group_aware_needs_whole_groups():
    with pytest.raises(ValueError, match="whole groups of G=4"):
        PluralityVoteReward(num_generations=4)(prompts=["q"] * 6, completions=["1"] * 6)
    with pytest.raises(ValueError, match="group size G is unknown"):
        PluralityVoteReward()(prompts=["q"] * 2, completions=["1"] * 2)
    assert completion_text([{"role": "tool", "content": "42"}, {"role": "assistant", "content": "7"}]) == "7"


# ---- format, random -----------------------------------------------------------------------------------------------


def test_format():
    r = FormatReward()
    assert r(prompts=["q"] * 4, completions=["\\boxed{x^{2}}", msg("so \\boxed{3}."), "\\boxed{}", "3"]) == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]
    r = FormatReward(pattern=r"```python\n.+?```")
    assert r(prompts=["q"] * 2, completions=["```python\nprint(1)\n```", "print(1)"]) == [1.0, 0.0]


def test_random_is_deterministic_given_seed_and_call_count():
    a, b, c = RandomReward(seed=3), RandomReward(seed=3), RandomReward(seed=4)
    kw = dict(prompts=["q"] * 5, completions=["x"] * 5)
    first, second = a(**kw), a(**kw)
    assert first == b(**kw) and second == b(**kw)  # same seed, same call count: same rewards
    assert first != second and first != c(**kw)
    assert all(0.0 <= v < 1.0 for v in first + second)
    replay = pickle.loads(pickle.dumps(RandomReward(seed=3)))
    assert replay(**kw) == first


# ---- registry -----------------------------------------------------------------------------------------------------


def test_registry_names_origins_typos_and_specs():
    rewards = load_all()
    assert {"self_certainty", "negative_entropy", "accuracy", "plurality_vote", "format", "random"} <= set(rewards)
    assert all(entry.origin and entry.summary for entry in rewards.values())
    with pytest.raises(KeyError, match="Did you mean: accuracy"):
        get_reward("acuracy")
    assert parse_reward_spec("plurality_vote:0.5") == ("plurality_vote", 0.5)
    assert parse_reward_spec("accuracy:0") == ("accuracy", 0.0)
    with pytest.raises(ValueError, match="must be a number"):
        parse_reward_spec("accuracy:half")
    funcs, weights = build_rewards(["self_certainty", "accuracy:0", "plurality_vote:0.5"])
    assert [f.__name__ for f in funcs] == ["self_certainty", "accuracy", "plurality_vote"]
    assert weights == [1.0, 0.0, 0.5]
    for name in rewards:  # picklable, as TRL and multiprocessing may need
        reward = get_reward(name)
        assert pickle.loads(pickle.dumps(reward)).__name__ == reward.__name__ == name


# ---- the group-std floor, unit level -------------------------------------------------------------------------------


def test_std_floor_divisors_follow_trl_weighted_sum_and_nan_rules():
    nan = math.nan
    rows = [[1.0, 0.0], [1.0, 2.0], [nan, nan], [3.0, nan]]  # 2 groups of 2, rewards weighted 1 and 0.5
    divisors, floored = group_std_floor_divisors(rows, [1.0, 0.5], 2, floor=0.1)
    # group 1: sums 1 and 2 -> std 0.7071; group 2: one scorable sample (3) -> std undefined -> floor
    assert divisors == pytest.approx([0.70710678, 0.70710678, 0.1, 0.1])
    assert floored == [False, True]


# ---- through IntuitorTrainer ----------------------------------------------------------------------------------------

PROMPTS = [f"What is {i} + {i}? Put the answer in \\boxed{{}}." for i in range(8)]


def make_dataset():
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": p}], "answer": str(2 * i)} for i, p in enumerate(PROMPTS)]
    )


def make_trainer(tiny_model_dir, tmp_path, reward_funcs=None, **kw):
    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    base = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
    )
    base.update(kw)
    return IntuitorTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=IntuitorConfig(**base),
        train_dataset=make_dataset(),
        processing_class=tok,
    )


def capture_advantages(trainer):
    """Record the `advantages` TRL computes in _generate_and_score_completions (before any shuffling)."""
    seen = []
    inner = trainer._generate_and_score_completions

    def spy(inputs):
        out = inner(inputs)
        seen.append(out["advantages"].tolist())
        return out

    trainer._generate_and_score_completions = spy
    return seen


def read_metrics(tmp_path):
    return [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_one_step_with_every_reward_and_the_monitoring_metrics(tiny_model_dir, tmp_path):
    specs = ["self_certainty", "negative_entropy:0.5", "accuracy:0", "plurality_vote:0.5", "format:0.5", "random:0"]
    trainer = make_trainer(tiny_model_dir, tmp_path, rewards=specs, beta=0.04)
    assert trainer.reward_func_names == [parse_reward_spec(s)[0] for s in specs]
    assert trainer.reward_weights.tolist() == [1.0, 0.5, 0.0, 0.5, 0.5, 0.0]
    trainer.train()
    row = next(r for r in read_metrics(tmp_path) if "rewards/self_certainty/mean" in r)
    for name in ("self_certainty", "negative_entropy", "accuracy", "plurality_vote", "format", "random"):
        # every reward's mean and std, weight 0 included (accuracy:0 = the label accuracy of the rollouts)
        assert row[f"rewards/{name}/mean"] is not None and row[f"rewards/{name}/std"] is not None, name
    assert row["rewards/self_certainty/mean"] == pytest.approx(row["self_certainty/mean"], rel=1e-4)
    assert row["rewards/negative_entropy/mean"] == pytest.approx(-row["token_entropy/mean"], rel=1e-4)
    assert 0.0 <= row["rewards/accuracy/mean"] <= 1.0 and 0.0 <= row["rewards/plurality_vote/mean"] <= 1.0
    for key in (
        "completions/mean_length",
        "completions/max_length",
        "completions/clipped_ratio",
        "completions/repetition_rate",
        "completions/agreement",
        "kl",
        "entropy",
    ):
        assert key in row and row[key] is not None, key


@pytest.mark.slow
@pytest.mark.parametrize(
    "specs, options",
    [
        (["accuracy"], {}),
        (["plurality_vote"], {}),
        (["self_certainty", "accuracy:0.5"], {}),
        (["self_certainty", "plurality_vote:0.5"], {"advantage_std_floor": 0.05}),  # the options against decay
    ],
)
def test_one_step_with_a_label_reward_or_a_mix(tiny_model_dir, tmp_path, specs, options):
    trainer = make_trainer(tiny_model_dir, tmp_path, rewards=specs, **options)
    trainer.train()
    row = next(r for r in read_metrics(tmp_path) if "reward" in r)
    assert all(f"rewards/{parse_reward_spec(s)[0]}/mean" in row for s in specs)
    if options:
        assert "rewards/self_certainty/raw_mean" in row and "rewards/std_floor/frac_floored" in row


# Fixed rewards for 2 prompts x G=4 samples: TRL's advantages are checked against hand computation.
R1 = [1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 1.0, 5.0]
R2 = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
W = [1.0, 0.5]


def fixed_r1(prompts, completions, **kwargs):
    return list(R1)


def fixed_r2(prompts, completions, **kwargs):
    return list(R2)


def groups(values, g=4):
    return [values[i : i + g] for i in range(0, len(values), g)]


def zscore(values, eps):
    mean, std = statistics.fmean(values), statistics.stdev(values)  # stdev: Bessel-corrected, like TRL's nanstd
    return [(v - mean) / (std + eps) for v in values]


def hand_sum_then_normalize():
    s = [W[0] * a + W[1] * b for a, b in zip(R1, R2)]
    return [a for grp in groups(s) for a in zscore(grp, 1e-4)]


def hand_normalize_then_sum():
    z1 = [a for grp in groups(R1) for a in zscore(grp, 1e-4)]
    z2 = [a for grp in groups(R2) for a in zscore(grp, 1e-4)]
    s = [W[0] * a + W[1] * b for a, b in zip(z1, z2)]
    return zscore(s, 1e-4)  # then over the whole batch


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, expected",
    [("sum_then_normalize", hand_sum_then_normalize), ("normalize_then_sum", hand_normalize_then_sum)],
)
def test_trl_mixes_weighted_rewards_as_documented(tiny_model_dir, tmp_path, mode, expected):
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        reward_funcs=[fixed_r1, fixed_r2],
        reward_weights=W,
        multi_objective_aggregation=mode,
        per_device_train_batch_size=8,
    )
    seen = capture_advantages(trainer)
    trainer.train()
    assert seen[0] == pytest.approx(expected(), abs=1e-5)
    row = next(r for r in read_metrics(tmp_path) if "reward" in r)
    assert row["rewards/fixed_r1/mean"] == pytest.approx(statistics.fmean(R1))
    assert row["rewards/fixed_r2/std"] == pytest.approx(statistics.stdev(R2))


def small_spread(prompts, completions, **kwargs):
    return [1.0, 1.01, 0.99, 1.0, 0.0, 1.0, 2.0, 3.0]  # group 1: std 0.008 < floor; group 2: std 1.29


def monitor(prompts, completions, **kwargs):
    return [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.slow
def test_std_floor_through_trl(tiny_model_dir, tmp_path):
    floor = 0.1
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        reward_funcs=[small_spread, monitor],
        reward_weights=[1.0, 0.0],
        advantage_std_floor=floor,
        per_device_train_batch_size=8,
    )
    assert trainer.scale_rewards == "none"
    assert [f.__name__ for f in trainer.reward_funcs] == ["small_spread", "monitor"]  # metric keys unchanged
    seen = capture_advantages(trainer)
    trainer.train()
    raw = small_spread(None, None)
    expected = []
    for grp in groups(raw):
        mean, d = statistics.fmean(grp), max(statistics.stdev(grp), floor)
        expected += [(v - mean) / d for v in grp]
    assert seen[0] == pytest.approx(expected, abs=1e-5)
    assert max(abs(a) for a in seen[0][:4]) < 0.11  # the nearly-tied group is not blown up to unit scale
    row = next(r for r in read_metrics(tmp_path) if "reward" in r)
    assert row["rewards/small_spread/raw_mean"] == pytest.approx(statistics.fmean(raw))
    assert row["rewards/monitor/mean"] == pytest.approx(0.375)  # weight 0: logged unscaled
    assert row["rewards/std_floor/frac_floored"] == pytest.approx(0.5)


def test_std_floor_refuses_normalize_then_sum(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="set multi_objective_aggregation: sum_then_normalize"):
        make_trainer(
            tiny_model_dir,
            tmp_path,
            reward_funcs=[small_spread],
            advantage_std_floor=0.1,
            multi_objective_aggregation="normalize_then_sum",
            per_device_train_batch_size=8,
        )


class _FakeAccelerator:
    process_index, num_processes = 0, 1


class _FakeTrainer:
    """What GroupAware.attach reads from a trainer."""

    def __init__(self, training=True):
        self.accelerator, self.num_generations, self.num_generations_eval = _FakeAccelerator(), 4, 2
        self.model = type("M", (), {"training": training})()


def test_group_size_follows_the_trainer_mode():
    r = PluralityVoteReward()
    r.attach(_FakeTrainer(training=False))  # evaluation groups are num_generations_eval = 2
    assert r(prompts=["q"] * 4, completions=["1", "2", "3", "3"]) == [1.0, 0.0, 1.0, 1.0]
    assert isinstance(r, GroupAware) and pickle.loads(pickle.dumps(r))._trainer is None
    assert callable(apply_std_floor)
