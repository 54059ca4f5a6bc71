"""CollapseGuard: synthetic metric streams for each condition (fires at the expected logging step, not during
warm-up, only after `guard_patience` hits, never when disabled, not on a stable noisy stream), streams shaped like
each reported collapse kind (gradual drift, length drop, length explosion, repetition burst, the 3B public run) under
the default settings, a recorded demo long run (fires before accuracy falls), warn vs stop, the kept checkpoint,
`intuitor guard` replay, and a real tiny run driven to collapse that the guard stops with a checkpoint, whose replay
reports the same alarms."""

import dataclasses
import json
import random
from types import SimpleNamespace

import pytest

from intuitor.training.config import IntuitorConfig
from intuitor.training.guard import CollapseGuard


GUARD_FIELDS = {f.name: f.default for f in dataclasses.fields(IntuitorConfig) if f.name.startswith("guard")}
CONDITION_FIELDS = (
    "guard_length_spike",
    "guard_repetition_spike",
    "guard_entropy_collapse",
    "guard_kl_spike",
    "guard_self_certainty_drop",
    "guard_agreement_drop",
    "guard_length_drop",
    "guard_length_growth",
    "guard_repetition_rise",
    "guard_kl_growth",
    "guard_self_certainty_rise",
    "guard_vote_calibration_drop",
)


def make_args(tmp_path, only=None, **kw):
    """IntuitorConfig's guard defaults; `only` keeps a single condition enabled."""
    values = {**GUARD_FIELDS, "guard": "warn", "output_dir": str(tmp_path)}
    if only is not None:
        values.update({name: None for name in CONDITION_FIELDS if name != only})
    values.update(kw)
    return SimpleNamespace(**values)


def feed(guard, args, stream, start=1):
    """Log each dict of `stream` as one logging step; return the control object."""
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    for step, logs in enumerate(stream, start):
        guard.on_log(args, SimpleNamespace(global_step=step, is_world_process_zero=True), control, logs=logs)
    return control


def fired(guard):
    return [(e["step"], e["condition"]) for e in guard.events]


def series(key, values):
    return [{key: v} for v in values]


# Each case: the condition's field, a stream, and the step (1-based) where the guard must fire with
# guard_warmup=5, guard_window=5, guard_patience=2 (so the 2nd consecutive hit fires).
CASES = [
    (
        "guard_length_spike",
        series("completions/mean_length", [100, 104, 98, 101, 99, 102, 97, 260, 300, 310]),
        9,
        "length_spike",
    ),
    (
        "guard_repetition_spike",
        series("completions/repetition_rate", [0.02, 0.03, 0.02, 0.04, 0.03, 0.02, 0.5, 0.6]),
        8,
        "repetition_spike",
    ),
    (
        "guard_entropy_collapse",
        series("token_entropy/mean", [1.2, 1.1, 1.25, 1.15, 1.2, 1.18, 0.2, 0.1, 0.05]),
        8,
        "entropy_collapse",
    ),
    (
        "guard_entropy_collapse",
        series("entropy", [1.2, 1.1, 1.25, 1.15, 1.2, 1.18, 0.2, 0.1]),  # TRL's key
        8,
        "entropy_collapse",
    ),
    ("guard_kl_spike", series("kl", [0.01, 0.012, 0.011, 0.01, 0.009, 0.011, 0.2, 0.3, 0.3]), 8, "kl_spike"),
    # self-certainty rises (peak of the 5-step mean: 2.0), then decays; the 5-step means of steps 11-14 are 1.96,
    # 1.88, 1.76, 1.6: below 0.9 x 2.0 = 1.8 at steps 13 and 14: fires at 14
    (
        "guard_self_certainty_drop",
        series("self_certainty/mean", [1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.8, 1.6, 1.4, 1.2]),
        14,
        "self_certainty_drop",
    ),
    # agreement 0.8 then 0.4: 5-step means 0.72, 0.64, 0.56 at steps 7-9; below 0.8 - 0.15 at 8 and 9: fires at 9
    ("guard_agreement_drop", series("completions/agreement", [0.8] * 6 + [0.4] * 4), 9, "agreement_drop"),
]


@pytest.mark.parametrize("field, stream, step, condition", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_condition_fires_at_the_expected_step(tmp_path, field, stream, step, condition):
    args = make_args(tmp_path, only=field, guard_warmup=5, guard_window=5, guard_patience=2)
    guard = CollapseGuard(args)
    control = feed(guard, args, stream)
    assert fired(guard) == [(step, condition)]
    assert not control.should_training_stop and not control.should_save  # warn only
    rows = [json.loads(line) for line in (tmp_path / "guard.jsonl").read_text().splitlines()]
    assert [(r["step"], r["condition"], r["action"]) for r in rows if "condition" in r] == [(step, condition, "warn")]
    assert set(rows[0]) == {"step", "condition", "value", "reference", "action"}
    # the first alarm names the checkpoint to keep: none was saved in this stream
    assert rows[1] == {
        "step": step,
        "event": "keep",
        "checkpoint": None,
        "checkpoint_step": None,
        "alarm": condition,
        "alarm_onset": step - 1,
        "evidence_from": max(
            1, step - 1 - (0 if condition.endswith("spike") or condition == "entropy_collapse" else 4)
        ),
    }


@pytest.mark.parametrize("field, stream, step, condition", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_condition_is_disabled_by_none(tmp_path, field, stream, step, condition):
    args = make_args(tmp_path, only=field, guard_warmup=5, guard_window=5, guard_patience=2, **{field: None})
    guard = CollapseGuard(args)
    feed(guard, args, stream)
    assert guard.events == [] and not (tmp_path / "guard.jsonl").exists()


# The conditions measured against the early-training baseline (steps 6-15: guard_warmup=5, guard_baseline=10) or
# as a rate, with guard_window=5, guard_patience=2. Hand-derived steps in the comments.
BASELINE_CASES = [
    # baseline 100; 5-step means from step 16: 84, 68, 52, 36 < 0.5 x 100 at 19 and 20: fires at 20
    ("guard_length_drop", 0.5, series("completions/mean_length", [100] * 15 + [20] * 5), 20, "length_drop"),
    # 5-step means 160, 220, 280, 340, 400: > 3 x 100 at 19 and 20
    ("guard_length_growth", 3.0, series("completions/mean_length", [100] * 15 + [400] * 6), 20, "length_growth"),
    # baseline 0.02; means 0.076, 0.132, 0.188, 0.244: > 0.02 + 0.15 at 18 and 19
    (
        "guard_repetition_rise",
        0.15,
        series("completions/repetition_rate", [0.02] * 15 + [0.3] * 5),
        19,
        "repetition_rise",
    ),
    # baseline 0.04; means 0.072, 0.104: > 2 x 0.04 (and > 0.05) at 17 and 18
    ("guard_kl_growth", 2.0, series("kl", [0.04] * 15 + [0.2] * 5), 18, "kl_growth"),
    # baseline 4.0, 4.2, 4.0, ... (steps 6-15): differences +-0.2, sigma = pstdev(diffs) / sqrt 2 = 0.1405; then 5.0.
    # Gain of the 5-step mean over 5 steps: 0.16, 0.40, 0.52, 0.76 at steps 16-19 = 1.1, 2.8, 3.7, 5.4 sigma: > 3 at
    # 18 and 19
    (
        "guard_self_certainty_rise",
        3.0,
        series("self_certainty/mean", [4.0] * 5 + [4.0, 4.2] * 5 + [5.0] * 5),
        19,
        "self_certainty_rise",
    ),
    # peak of the 5-step mean 0.8; then 0.76, 0.72, 0.68, 0.64: below 0.8 - 0.1 at 13 and 14
    (
        "guard_vote_calibration_drop",
        0.1,
        series("completions/vote_calibration", [0.8] * 10 + [0.6] * 5),
        14,
        "vote_calibration_drop",
    ),
]


@pytest.mark.parametrize(
    "field, threshold, stream, step, condition", BASELINE_CASES, ids=[c[0] for c in BASELINE_CASES]
)
def test_baseline_and_rate_conditions_fire_at_the_expected_step(tmp_path, field, threshold, stream, step, condition):
    args = make_args(
        tmp_path, only=field, guard_warmup=5, guard_window=5, guard_patience=2, guard_baseline=10, **{field: threshold}
    )
    guard = CollapseGuard(args)
    feed(guard, args, stream)
    assert fired(guard) == [(step, condition)]
    args = make_args(tmp_path / "off", only=field, guard_warmup=5, guard_window=5, guard_patience=2, **{field: None})
    guard = CollapseGuard(args)
    feed(guard, args, stream)
    assert guard.events == []


def test_not_before_warmup_and_patience(tmp_path):
    # the spike at steps 3-4 is inside the warm-up; the one at step 10 lasts one step only (patience 2)
    lengths = [10, 10, 50, 60, 10, 10, 10, 10, 10, 60, 10, 10]
    args = make_args(tmp_path, only="guard_length_spike", guard_warmup=5, guard_window=5, guard_patience=2)
    guard = CollapseGuard(args)
    feed(guard, args, series("completions/mean_length", lengths))
    assert guard.events == []
    args = make_args(tmp_path, only="guard_length_spike", guard_warmup=5, guard_window=5, guard_patience=1)
    guard = CollapseGuard(args)
    feed(guard, args, series("completions/mean_length", lengths))
    assert fired(guard) == [(10, "length_spike")]


def test_one_event_per_episode(tmp_path):
    # entropy collapses at step 7 and stays collapsed: one event, not one per step
    args = make_args(tmp_path, only="guard_entropy_collapse", guard_warmup=3, guard_window=3, guard_patience=1)
    guard = CollapseGuard(args)
    feed(guard, args, series("token_entropy/mean", [1.0] * 6 + [0.1, 0.1, 0.1]))
    assert fired(guard) == [(7, "entropy_collapse")]


def test_tiny_kl_and_signed_self_certainty(tmp_path):
    # KL from 1e-6 to 1e-4 is a 100x "spike" of nothing: ignored
    args = make_args(tmp_path, only="guard_kl_spike", guard_warmup=3, guard_window=3, guard_patience=1)
    guard = CollapseGuard(args)
    feed(guard, args, series("kl", [1e-6] * 5 + [1e-4] * 3))
    assert guard.events == []
    # a negative-valued score series: the drop is measured against |peak|
    args = make_args(tmp_path, only="guard_self_certainty_drop", guard_warmup=2, guard_window=1, guard_patience=1)
    guard = CollapseGuard(args)
    feed(guard, args, series("self_certainty/mean", [-1.0, -1.0, -1.05, -1.2]))
    assert fired(guard) == [(4, "self_certainty_drop")]  # -1.2 < -1.0 - 0.1 x 1.0; -1.05 is not


def test_no_false_alarm_on_a_stable_noisy_stream(tmp_path):
    rng = random.Random(0)
    stream = [
        {
            "completions/mean_length": 300 * (1 + rng.uniform(-0.15, 0.15)),
            "completions/repetition_rate": max(0.0, 0.05 + rng.uniform(-0.03, 0.03)),
            "token_entropy/mean": 0.8 * (1 + rng.uniform(-0.15, 0.15)),
            "kl": 0.02 * (1 + rng.uniform(-0.5, 0.5)),
            "self_certainty/mean": 4.0 + 0.02 * step + rng.uniform(-0.2, 0.2),  # slowly rising, noisy
            "completions/agreement": 0.6 + rng.uniform(-0.1, 0.1),
            "entropy": 0.8,
        }
        for step in range(300)
    ]
    args = make_args(tmp_path)  # every condition on, IntuitorConfig's defaults
    guard = CollapseGuard(args)
    control = feed(guard, args, stream)
    assert guard.events == [] and not control.should_training_stop


def test_stop_sets_save_and_stop_and_other_logs_are_ignored(tmp_path):
    args = make_args(
        tmp_path, guard="stop", only="guard_length_spike", guard_warmup=2, guard_window=2, guard_patience=1
    )
    guard = CollapseGuard(args)
    stream = [
        {"completions/mean_length": 10},
        {"eval_completions/mean_length": 500},
        {"train_runtime": 3.0},
        {"completions/mean_length": 10, "loss": 0.1},
        {"completions/mean_length": float("nan")},
        {"completions/mean_length": None},
    ]
    control = feed(guard, args, stream)
    assert guard.num_logs == 2 and not control.should_training_stop  # eval/summary/NaN/None steps don't count
    control = feed(guard, args, [{"completions/mean_length": 30}], start=7)
    assert control.should_save and control.should_training_stop
    assert fired(guard) == [(7, "length_spike")] and guard.events[0]["action"] == "stop"


def test_invalid_settings_say_what_to_change(tmp_path):
    with pytest.raises(ValueError, match="warn.*stop"):
        CollapseGuard(make_args(tmp_path, guard="off"))
    with pytest.raises(ValueError, match="guard_window"):
        CollapseGuard(make_args(tmp_path, guard_window=0))


@pytest.mark.slow
def test_real_collapse_is_stopped_with_a_checkpoint(tiny_model_dir, tmp_path):
    """Self-certainty alone at lr 5e-2 without KL drives the tiny model to a single repeated token within ~10 steps
    (token entropy 5.5 -> 0.2, repetition 0 -> 0.9); the guard must save and stop long before max_steps."""
    from datasets import Dataset

    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    ds = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)} for i in range(16)]
    )
    args = IntuitorConfig(
        output_dir=str(tmp_path),
        max_steps=40,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        beta=0.0,
        learning_rate=5e-2,
        lr_scheduler_type="constant",
        warmup_steps=0,
        gradient_checkpointing=False,
        seed=0,
        disable_tqdm=True,
        rewards=["self_certainty"],
        guard_save_steps=2,
        guard="stop",
        guard_warmup=3,
        guard_window=3,
        guard_patience=1,
        guard_entropy_collapse=0.7,
    )
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    guard = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, CollapseGuard))
    trainer.train()
    assert guard.events, "the run did not collapse or the guard missed it"
    stop_step = guard.events[0]["step"]
    assert trainer.state.global_step == stop_step < 20
    assert (tmp_path / f"checkpoint-{stop_step}" / "trainer_state.json").exists()
    rows = [json.loads(line) for line in (tmp_path / "guard.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == stop_step and rows[0]["action"] == "stop"
    # the kept checkpoint (saved every 2 steps by the guard) predates the alarm's evidence, exists, is named twice
    keep = json.loads((tmp_path / "guard_keep.json").read_text())
    assert rows[1] == keep and keep["checkpoint_step"] < keep["evidence_from"] - 1 and keep["checkpoint_step"] % 2 == 0
    assert (tmp_path / keep["checkpoint"] / "model.safetensors").exists()
    # `intuitor guard` replays the run's metrics.jsonl with its run_config.json: the same alarms, the same keep
    from typer.testing import CliRunner

    from intuitor.cli import app

    result = CliRunner().invoke(app, ["guard", str(tmp_path), "--json", str(tmp_path / "replay.json")])
    assert result.exit_code == 1, result.output  # an alarm fired
    replayed = json.loads((tmp_path / "replay.json").read_text())
    assert replayed["events"] == [r for r in rows if "condition" in r] and replayed["keep"] == keep
    assert f"step {stop_step:5d}  {rows[0]['condition']}" in result.output


def test_keep_names_the_newest_checkpoint_before_the_evidence(tmp_path):
    # length_drop fires at step 20 (streak from 19); its 5-step smoothing window began at step 15, logged from the
    # weights after 14 updates: checkpoints 3, 6, 9, 12 qualify, 15 and 18 do not
    args = make_args(
        tmp_path, only="guard_length_drop", guard_warmup=5, guard_window=5, guard_patience=2, guard_save_steps=3
    )
    guard = CollapseGuard(args)
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    saves = []
    for step, logs in enumerate(series("completions/mean_length", [100] * 15 + [20] * 5), 1):
        state = SimpleNamespace(global_step=step, is_world_process_zero=True, best_model_checkpoint=None)
        control.should_save = False
        guard.on_step_end(args, state, control)
        guard.on_log(args, state, control, logs=logs)
        if control.should_save:
            saves.append(step)
            guard.on_save(args, state, control)
    assert saves == [3, 6, 9, 12, 15, 18]
    assert fired(guard) == [(20, "length_drop")]
    assert guard.keep["checkpoint"] == "checkpoint-12" and guard.keep["evidence_from"] == 15
    assert json.loads((tmp_path / "guard_keep.json").read_text()) == guard.keep
    assert state.best_model_checkpoint == str(tmp_path / "checkpoint-12")  # protected from save_total_limit


def test_replay_settings_and_bad_input(tmp_path):
    from intuitor.training.guard import read_metrics, replay
    from intuitor.training.guard_cli import guard_settings

    path = tmp_path / "m.jsonl"
    path.write_text(
        "".join(
            json.dumps({"step": s, **row}) + "\n"
            for s, row in enumerate(series("completions/mean_length", [100] * 15 + [20] * 5), 1)
        )
    )
    rows, config, checkpoints = read_metrics(path)
    settings = guard_settings(
        {"guard_window": 5}, ["--guard-length-drop", "0.5", "--guard_vote_calibration_drop", "none"]
    )
    assert settings.guard == "warn" and settings.guard_window == 5 and settings.guard_vote_calibration_drop is None
    assert [(e["step"], e["condition"]) for e in replay(rows, settings, [12]).events] == [(20, "length_drop")]
    with pytest.raises(ValueError, match="Did you mean: --guard_length_drop"):
        guard_settings({}, ["--guard_lenght_drop", "0.5"])
    with pytest.raises(ValueError, match="guard_window 'x'"):
        guard_settings({}, ["--guard_window", "x"])
    path.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="m.jsonl:2"):
        read_metrics(path)


def test_guard_cli_exit_code_says_whether_an_alarm_fired(tmp_path):
    from typer.testing import CliRunner

    from intuitor.cli import app

    def write(name, lengths):
        path = tmp_path / name
        path.write_text(
            "".join(
                json.dumps({"step": s, **row}) + "\n"
                for s, row in enumerate(series("completions/mean_length", lengths), 1)
            )
        )
        return str(path)

    collapsed = write("collapsed.jsonl", [100] * 15 + [20] * 5)
    healthy = write("healthy.jsonl", [100] * 20)
    flags = ["--guard_window", "5", "--guard_warmup", "5"]
    result = CliRunner().invoke(app, ["guard", collapsed, *flags])
    assert result.exit_code == 1 and "length_drop" in result.output, result.output
    result = CliRunner().invoke(app, ["guard", healthy, *flags])
    assert result.exit_code == 0 and "no alarm" in result.output, result.output
    result = CliRunner().invoke(app, ["guard", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "error:" in result.output


# ---- streams shaped like the reported collapse kinds, judged with IntuitorConfig's defaults -----------------------
def reported_stream(kind: str, steps: int = 150, seed: int = 0) -> list[dict]:
    """A healthy noisy run (length 400 +-5%, repetition 0.02, KL 0.01-0.03, self-certainty 4.0 slowly rising,
    agreement 0.6) with one reported failure from step 40 on (the issue's shapes):
    drift: over 60 steps length 400 -> 46, repetition 0.02 -> 0.73, KL 0.02 -> 0.3, self-certainty 4 -> 5;
    length_drop: 400 -> 40 at once; explosion: length x1.1 per step to the 3,072-token cap;
    repetition_burst: repetition 0.55 for 12 steps, then back; public_3b (beta 0, no KL logged): length 300 -> 7
    within 8 steps from step 15 while the reward (self-certainty) jumps."""
    rng = random.Random(seed)
    rows = []
    for t in range(1, steps + 1):
        u = lambda: rng.uniform(-1, 1)  # noqa: E731
        d = min(max((t - 40) / 60, 0.0), 1.0)  # drift progress
        row = {
            "completions/mean_length": 400 * (1 + 0.05 * u()),
            "completions/repetition_rate": 0.02 + 0.01 * u(),
            "kl": 0.02 + 0.01 * u(),
            "self_certainty/mean": 4.0 + 0.002 * t + 0.05 * u(),
            "completions/agreement": 0.6 + 0.05 * u(),
            "token_entropy/mean": 0.8 * (1 + 0.05 * u()),
        }
        if kind == "drift":
            row["completions/mean_length"] *= 1 - d * (1 - 46 / 400)
            row["completions/repetition_rate"] += d * 0.71
            row["kl"] += d * 0.28
            row["self_certainty/mean"] += d
        elif kind == "length_drop" and t >= 40:
            row["completions/mean_length"] *= 0.1
        elif kind == "explosion" and t >= 40:
            row["completions/mean_length"] = min(3072.0, row["completions/mean_length"] * 1.1 ** (t - 40))
        elif kind == "repetition_burst" and 40 <= t < 52:
            row["completions/repetition_rate"] += 0.53
        elif kind == "public_3b":
            del row["kl"]  # beta = 0: TRL logs no KL
            shrink = min(max((t - 15) / 8, 0.0), 1.0)
            row["completions/mean_length"] = (300 - shrink * 293) * (1 + 0.05 * u())
            row["self_certainty/mean"] += 2.0 * shrink
        rows.append(row)
    return rows


# kind -> (first alarm's condition, the window of steps it must fire in). Tuned on drift, length_drop, explosion and
# public_3b; repetition_burst was held out (its stream written after the thresholds were fixed).
REPORTED = {
    "drift": ("repetition_rise", 41, 100),
    "length_drop": ("length_drop", 41, 50),
    "explosion": ("length_growth", 41, 60),  # +10% a step never doubles a 10-step mean: no spike
    "repetition_burst": ("repetition_spike", 41, 43),
    "public_3b": ("length_drop", 16, 25),
}


@pytest.mark.parametrize("kind", sorted(REPORTED))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reported_collapse_kinds_are_caught(tmp_path, kind, seed):
    condition, earliest, latest = REPORTED[kind]
    args = make_args(tmp_path)
    guard = CollapseGuard(args)
    feed(guard, args, reported_stream(kind, seed=seed))
    assert guard.events, f"{kind}: no alarm"
    first = guard.events[0]
    assert first["condition"] == condition and earliest <= first["step"] <= latest, fired(guard)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_stream_raises_nothing(tmp_path, seed):
    args = make_args(tmp_path)
    guard = CollapseGuard(args)
    feed(guard, args, reported_stream("healthy", steps=300, seed=seed))
    assert guard.events == []


def test_replay_settings_after_an_argument_parser_rewrote_the_fields(tmp_path):
    """HfArgumentParser (`intuitor train`) rewrites IntuitorConfig's Field.type in place; flags still parse."""
    from transformers import HfArgumentParser

    from intuitor.training.config import IntuitorConfig
    from intuitor.training.guard_cli import guard_settings

    HfArgumentParser(IntuitorConfig)
    settings = guard_settings({}, ["--guard_vote_calibration_drop", "none", "--guard_length_drop", "0.4"])
    assert settings.guard_vote_calibration_drop is None and settings.guard_length_drop == 0.4


def test_replay_settings_parse_resolved_annotations_too():
    """HfArgumentParser resolves dataclass annotations in place (Optional[float]); flags parse the same after it."""
    from typing import Optional

    from intuitor.training.guard_cli import _parse

    for annotation in ("float | None", Optional[float]):  # noqa: UP045  (both spellings must parse)
        assert _parse("guard_length_drop", annotation, "none") is None
        assert _parse("guard_length_drop", annotation, "0.5") == 0.5
    assert _parse("guard_window", int, "7") == 7 and _parse("guard_window", "int", "7") == 7
    with pytest.raises(ValueError, match="guard_window 'x'"):
        _parse("guard_window", int, "x")
