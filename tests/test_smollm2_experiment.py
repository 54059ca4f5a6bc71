"""The SmolLM2-135M experiment (README "On a real model"): its task, its recipes, each recipe run for 2 steps."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from intuitor.tasks import get_task
from intuitor.tasks.arithmetic import KINDS


ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes" / "SmolLM2-135M").glob("*.yaml"))


def _question(row):
    return row["prompt"][-1]["content"]


def test_arithmetic_splits_are_disjoint_deterministic_and_right():
    test, train = get_task("arithmetic").load(), get_task("arithmetic_train").load()
    assert not {_question(r) for r in test} & {_question(r) for r in train}
    assert get_task("arithmetic").load(50) == test[:50]  # same rows every time, a prefix for a smaller limit
    for row in test[:300] + train[:300]:
        expr = re.fullmatch(r"What is ([\d +*-]+)\?", _question(row)).group(1)
        assert str(eval(expr)) == row["answer"]  # noqa: S307 - digits and + - * only
        assert int(row["answer"]) >= 0
    # the first 200 held-out rows (the experiment's evaluation set) hold every kind equally
    counts = {k: sum(r["kind"] == k for r in test[:200]) for k in KINDS}
    assert set(counts.values()) == {200 // len(KINDS)}
    assert len({_question(r) for r in test}) == len(test)


def test_arithmetic_prompt_is_the_question_alone_unless_a_system_prompt_is_given():
    row = get_task("arithmetic").load(1)[0]
    assert row["prompt"] == [{"role": "user", "content": _question(row)}]
    row = get_task("arithmetic", system_prompt="Be brief.").load(1)[0]
    assert row["prompt"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    "response, correct",
    [
        ("19 + 22 = 41", True),
        ("To add them: 19 + 22 = 41.", True),
        ("The answer is $41.", True),
        ("So the result is 41.0", True),
        ("\\boxed{41} (I first thought 40)", True),  # the box is the stated answer
        ("41 is wrong, \\boxed{40}", False),
        ("19 + 22 = 34\n\nThis is an identity: 19 + 22 is simple addition.", False),  # math-verify grades `19 + 22`
        ("The answer is 19 + 22.", False),  # restating the question is not an answer
        ("41, or maybe 42", False),  # the last number is the answer
        ("I do not know.", False),
        ("", False),
    ],
)
def test_arithmetic_scoring_is_strict(response, correct):
    task = get_task("arithmetic")
    assert task.score(response, {"answer": "41"}) is correct


def test_arithmetic_votes_group_equal_numbers_within_a_prompt():
    task = get_task("arithmetic")
    answers = [task.extract(r) for r in ["= 41", "it is 41.0", "no idea", "$41", "41", "40"]]
    assert task.answer_classes(answers, group_size=3) == [0, 0, None, 3, 3, 5]


def _fields(path):
    return yaml.safe_load(path.read_text())


def test_the_three_recipes_differ_only_in_their_reward():
    recipes = {p.stem: _fields(p) for p in RECIPES}
    assert set(recipes) == {"intuitor-arithmetic", "grpo-gold-arithmetic", "grpo-pv-arithmetic"}
    assert recipes["intuitor-arithmetic"]["rewards"] == ["self_certainty", "accuracy:0"]
    assert recipes["grpo-gold-arithmetic"]["rewards"] == ["accuracy"]
    assert recipes["grpo-pv-arithmetic"]["rewards"] == ["plurality_vote", "accuracy:0"]
    shared = [{k: v for k, v in r.items() if k not in ("rewards", "output_dir")} for r in recipes.values()]
    assert all(s == shared[0] for s in shared)
    base = shared[0]
    assert base["task"] == "arithmetic_train" and base["model_name_or_path"] == "smollm2-gguf"
    # every prompt is used once: steps x prompts per step = the data set
    prompts_per_step = (
        base["per_device_train_batch_size"] * base["gradient_accumulation_steps"] // base["num_generations"]
    )
    assert base["max_steps"] * prompts_per_step == base["dataset_limit"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_runs_two_steps(recipe, tmp_path):
    """The real recipe (model, task, rewards, schedule) for 2 steps, with small batches and completions for CI."""
    intuitor = str(Path(sys.executable).with_name("intuitor"))
    res = subprocess.run(
        [
            intuitor,
            "train",
            str(recipe),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "7",
            "--dataset_limit",
            "2",
            "--max_completion_length",
            "12",
            "--output_dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [r for r in map(json.loads, lines) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for name in _fields(recipe)["rewards"]:
        assert f"rewards/{name.split(':')[0]}/mean" in rows[0]
    assert all(r["self_certainty/mean"] > 0 for r in rows)
    config = json.loads((tmp_path / "run_config.json").read_text())  # resolved config written, beside the model's
    assert config["config"]["max_steps"] == 2 and "transformers" in config["versions"]
    assert "model_type" in json.loads((tmp_path / "config.json").read_text())
    assert (tmp_path / "model.safetensors").exists()


def test_results_table_is_built_from_eval_files_with_a_paired_test(tmp_path):
    """scripts/smollm2_table.py on a hand-made run folder: accuracy, per-kind split and McNemar's exact test."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("smollm2_table", ROOT / "scripts" / "smollm2_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    rows = get_task("arithmetic").load(16)

    def write(folder, right):
        d = tmp_path / folder / "eval" / "greedy"
        d.mkdir(parents=True)
        with open(d / "samples.jsonl", "w") as f:
            for r, ok in zip(rows, right):
                f.write(
                    json.dumps(
                        {
                            "task": "arithmetic",
                            "id": r["id"],
                            "sample": 0,
                            "correct": ok,
                            "self_certainty": 10.0 + ok,
                            "num_tokens": 20,
                        }
                    )
                    + "\n"
                )
            done = {
                "config": {"tasks": ["arithmetic"], "limit": 16, "samples": 1},
                "tasks": {"arithmetic": {"num_samples": 16}},
            }
            (d / "results.json").write_text(json.dumps(done))

    write("base", [i < 4 for i in range(16)])  # 4 of 16 right
    running = tmp_path / "base" / "eval" / "gsm8k"  # an evaluation still running is left out
    running.mkdir()
    (running / "results.json").write_text(json.dumps({"config": {"tasks": ["gsm8k"], "limit": 100}, "tasks": {}}))
    (running / "samples.jsonl").write_text("")
    write("intuitor-seed0", [i < 12 for i in range(16)])  # the same 4, and 8 more
    (tmp_path / "timings.tsv").write_text("train-intuitor-seed0\t600\neval-greedy-intuitor-seed0\t90\n")
    table.main(str(tmp_path), str(tmp_path / "out"))
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "gsm8k" not in results["base"]
    assert results["base"]["greedy"] == 25.0 and results["intuitor-seed0"]["greedy"] == 75.0
    test = results["intuitor-seed0"]["vs_base"]
    assert (test["wins"], test["losses"]) == (8, 0)
    assert test["p_value"] == pytest.approx(2 * 0.5**8)  # exact two-sided binomial: 8 of 8 discordant pairs
    assert results["intuitor-seed0"]["wall_s"] == {"train": 600, "greedy": 90}
    # rows 0 and 8 are the two add0 problems: the base gets row 0 only, the run both
    assert results["base"]["by_kind"]["add0"] == 50.0 and results["intuitor-seed0"]["by_kind"]["add0"] == 100.0
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| INTUITOR (self-certainty, no answers) | 75.0 |" in md and "+8/-0 p=0.0078" in md


@pytest.mark.slow
def test_long_runs_driver_end_to_end_on_the_tiny_model(tmp_path):
    """scripts/smollm2_long.sh at toy size (tiny model, 2 updates, a checkpoint each): every run trains with the
    guard on, every checkpoint is evaluated, the small result files are kept, the weights freed, and
    smollm2_long_table.py writes long.json in the issue's shape. A rerun skips every finished run."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OUT": str(tmp_path / "out"),
        "RESULTS": str(tmp_path / "results"),
        "TABLE": str(tmp_path / "table"),
        "UPDATES": "2",
        "EVERY": "1",
        "ONLINE_SEEDS": "0",
        "OFFLINE_SEEDS": "0",
        "GOLD_SEEDS": "0",
        "BASE_MODEL": "tiny-qwen2",
        "INTUITOR": str(Path(sys.executable).with_name("intuitor")),
        "PYTHON": sys.executable,
        "TRAIN_FLAGS": "--model_name_or_path tiny-qwen2 --per_device_train_batch_size 7 --max_completion_length 8",
        "EVAL_FLAGS": "--limit 6 --max-new-tokens 8 --batch-size 6",
    }
    res = subprocess.run(
        ["bash", "scripts/smollm2_long.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    data = json.loads((tmp_path / "table" / "long.json").read_text())
    assert [(r["method"], r["seed"]) for r in data["runs"]] == [
        ("grpo-gold", 0),
        ("intuitor-offline", 0),
        ("intuitor", 0),
    ]
    for run in data["runs"]:
        assert [c["update"] for c in run["checkpoints"]] == [0, 1, 2]
        assert all(c["n"] == 6 and 0 <= c["greedy"] <= 1 for c in run["checkpoints"])
        assert {"first_alarm", "kept_checkpoint", "fall_update", "lead_updates", "replay"} <= set(run)
        assert run["replay"]["settings"] == {"guard_warmup": 1, "guard_baseline": 3, "guard_window": 3}
    config = json.loads((tmp_path / "results" / "intuitor-offline-seed0" / "run_config.json").read_text())
    assert config["config"]["annotator"] == "offline" and config["config"]["guard"] == "warn"
    assert not list((tmp_path / "out" / "intuitor-seed0").glob("checkpoint-*/*.safetensors"))  # weights freed
    assert (tmp_path / "table" / "long_accuracy.png").stat().st_size > 0
    again = subprocess.run(
        ["bash", "scripts/smollm2_long.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and again.stdout.count("(results kept)") == 3


def test_long_table_reads_the_committed_runs_as_the_readme_states():
    """docs/smollm2/long: the README's figures for INTUITOR seed 0 come out of smollm2_long_table.py as stated
    (live guard: first alarm 30, kept 16; the shorter-window replay: first alarm 9, kept 4, the best)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import smollm2_long_table as table
    finally:
        sys.path.pop(0)
    data = table.build(ROOT / "docs" / "smollm2" / "long")
    run = next(r for r in data["runs"] if (r["method"], r["seed"]) == ("intuitor", 0))
    assert data["base_greedy"] == 0.205
    assert [c["update"] for c in run["checkpoints"]] == list(range(0, 33, 4))
    assert (run["peak_update"], run["fall_update"], run["checkpoints"][-1]["greedy"]) == (4, 16, 0.0)
    assert (run["first_alarm"], run["kept_checkpoint"], run["kept_greedy"], run["lead_updates"]) == (
        30,
        16,
        0.155,
        -14,
    )
    replay = run["replay"]
    assert (replay["first_alarm"], replay["kept_checkpoint"], replay["kept_greedy"], replay["lead_updates"]) == (
        9,
        4,
        0.275,
        7,
    )
