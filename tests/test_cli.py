"""`intuitor train` as a newcomer runs it: recipes, overrides, errors, resume after SIGKILL, GGUF models."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from intuitor.training.run import parse_config, validate_recipe


ROOT = Path(__file__).resolve().parents[1]
INTUITOR = str(Path(sys.executable).with_name("intuitor"))
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)


def run_cli(*args, cwd=ROOT, timeout=600, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([INTUITOR, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_every_recipe_validates(recipe):
    """Every recipe parses and passes IntuitorConfig's checks. The paper recipes' values are held to their sources
    (recipes/README.md) by tests/test_recipes.py, not copied here."""
    run_args, config = validate_recipe(str(recipe))
    assert config.answer_extractor == run_args.task  # resolved as `intuitor train` resolves it


def test_accelerate_configs_load():
    for path in (ROOT / "recipes" / "accelerate").glob("*.yaml"):
        conf = yaml.safe_load(path.read_text())
        assert conf["distributed_type"] in {"DEEPSPEED", "MULTI_GPU", "MULTI_CPU"} and conf["num_processes"] >= 2


def test_overrides_and_unknown_fields():
    _, config = parse_config(
        str(ROOT / "recipes/tiny-cpu.yaml"), ["--learning_rate", "0.5", "--rewards", "self_certainty", "accuracy:2"]
    )
    assert config.learning_rate == 0.5 and config.rewards == ["self_certainty", "accuracy:2"]
    with pytest.raises(ValueError, match="Unknown config field 'learning_rat' in the command line.*learning_rate"):
        parse_config(str(ROOT / "recipes/tiny-cpu.yaml"), ["--learning_rat", "1"])


def test_unknown_field_in_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_generation: 4\n")
    with pytest.raises(ValueError, match=f"Unknown config field 'num_generation' in {bad}.*num_generations"):
        parse_config(str(bad), [])


def test_cli_errors_name_the_culprit(tmp_path):
    res = run_cli(
        "train", "recipes/tiny-cpu.yaml", "--model_name_or_path", "./no/such/model", "--output_dir", str(tmp_path)
    )
    assert res.returncode == 2 and "model path does not exist: ./no/such/model" in res.stderr
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--task", "gsm8", "--output_dir", str(tmp_path))
    assert res.returncode == 2 and "Did you mean: gsm8k" in res.stderr
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--dataset_limit", "0", "--output_dir", str(tmp_path))
    assert res.returncode == 2 and "empty" in res.stderr


TINY = (ROOT / "recipes/tiny-cpu.yaml").read_text()
REWARDS_LINE = 'rewards: [self_certainty, "accuracy:0"]'
# (what the recipe says, the one line `validate` must print about it): issue 26's bad inputs
BAD_RECIPES = {
    "reward typo": (
        TINY.replace(REWARDS_LINE, "rewards: [self_certanty]"),
        "rewards: Unknown reward 'self_certanty'. Did you mean: self_certainty?",
    ),
    "malformed weight": (
        TINY.replace('"accuracy:0"', '"accuracy:half"'),
        "rewards: reward spec 'accuracy:half': the weight after ':' must be a number",
    ),
    "rewards mapping": (
        TINY.replace(REWARDS_LINE, "rewards: {self_certainty: 1, accuracy: 0}"),
        "rewards: expected a list of NAME[:WEIGHT], e.g. [self_certainty, accuracy:0], got a mapping",
    ),
    "model_init_kwargs typo": (
        TINY + "model_init_kwargs:\n  attn_implmentation: eager\n",
        (
            "model_init_kwargs: unknown key 'attn_implmentation': not an argument of "
            "from_pretrained nor a field of the model's config. Did you mean: attn_implementation"
        ),
    ),
    "list for a number": (
        TINY.replace("num_generations: 4", "num_generations: [4]"),
        "num_generations: expected a single value (int | None), got a list [4]",
    ),
    "wrong type": (TINY.replace("max_steps: 4", "max_steps: ten"), "max_steps: invalid int value: 'ten'"),
    "bool": (TINY.replace("use_cpu: true", "use_cpu: maybe"), "use_cpu: Truthy value expected: got maybe"),
    "weights twice": (
        TINY + "reward_weights: [1, 1]\n",
        (
            "rewards and reward_weights: rewards [self_certainty, accuracy:0] weigh them [1, 0] but "
            "reward_weights is [1, 1]: two sources of weights that disagree"
        ),
    ),
    "broken YAML": (
        TINY.replace("num_generations: 4", "num_generations: [4"),
        "9:28: not valid YAML (expected ',' or ']', but got ':')",
    ),
    "weights count": (
        TINY.replace(REWARDS_LINE, "rewards: [self_certainty, accuracy]") + "reward_weights: [1]\n",
        "reward_weights has 1 weight(s) for the 2 rewards [self_certainty, accuracy]",
    ),
}


def _app_runner():
    from typer.testing import CliRunner

    from intuitor.cli import app

    return CliRunner(), app


@pytest.mark.parametrize("case", BAD_RECIPES)
def test_validate_and_train_refuse_bad_recipes_in_one_line(case, tmp_path):
    text, message = BAD_RECIPES[case]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    runner, app = _app_runner()
    for command in (["validate", str(recipe)], ["train", str(recipe), "--output_dir", str(tmp_path / "out")]):
        result = runner.invoke(app, command)
        out = result.output.strip()
        assert result.exit_code == 2, out
        assert out.count("\n") == 0 and out.startswith(f"error: {recipe}") and message in out, out
        assert "usage:" not in out and "Traceback" not in out
    assert not (tmp_path / "out").exists()  # train refused before anything ran


def test_weights_in_one_place_pass(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY.replace(REWARDS_LINE, "rewards: [self_certainty, accuracy]") + "reward_weights: [1, 0]\n")
    _, config = parse_config(str(recipe), [])
    assert config.reward_weights == [1.0, 0.0]
    recipe.write_text(
        TINY + "reward_weights: [1, 0]\nmodel_init_kwargs:\n  attn_implementation: eager\n  use_cache: false\n"
    )  # agreeing weights; a from_pretrained argument and a config field
    _, config = parse_config(str(recipe), [])
    assert config.model_init_kwargs == {"attn_implementation": "eager", "use_cache": False}


def test_command_line_type_errors_are_one_line():
    recipe = str(ROOT / "recipes/tiny-cpu.yaml")
    with pytest.raises(ValueError, match=r"^the command line: max_steps: invalid int value: 'x'$"):
        parse_config(recipe, ["--max_steps", "x"])
    with pytest.raises(ValueError, match=r"^the command line: unexpected value\(s\) \['5'\]"):
        parse_config(recipe, ["--num_generations", "4", "5"])
    with pytest.raises(ValueError, match=r"^the command line: rewards: Unknown reward 'acurracy'"):
        parse_config(recipe, ["--rewards", "acurracy"])


def test_trainer_refuses_disagreeing_reward_weights(tiny_model_dir, tmp_path):
    from datasets import Dataset

    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    args = IntuitorConfig(
        output_dir=str(tmp_path),
        rewards=["self_certainty", "accuracy:0"],
        reward_weights=[1, 1],
        use_cpu=True,
        report_to="none",
        num_generations=2,
        per_device_train_batch_size=2,
    )
    ds = Dataset.from_list([{"prompt": "1+1?", "answer": "2"}] * 2)
    with pytest.raises(ValueError, match="two sources of weights that disagree"):
        IntuitorTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)


def test_train_without_a_recipe_takes_flags_not_a_file_name(tmp_path):
    runner, app = _app_runner()
    result = runner.invoke(app, ["train", "--task", "gsm8", "--output_dir", str(tmp_path)])
    assert "config file not found" not in result.output
    assert "no recipe given: training from the fields' defaults" in result.output
    assert result.exit_code == 2 and "Unknown task 'gsm8'. Did you mean: gsm8k?" in result.output


@pytest.mark.slow
def test_resume_with_a_raised_max_steps_follows_the_new_schedule(tmp_path):
    """A finished 2-step cosine run resumed with max_steps 4: update 3 trains at the 4-step schedule's learning rate
    there (0.5 x peak), not at the old schedule's final 0; no warning about the tied lm_head; resuming a run already
    at max_steps is refused with the reason."""
    args = [
        "train",
        "recipes/tiny-cpu.yaml",
        "--save_steps",
        "2",
        "--warmup_steps",
        "0",
        "--output_dir",
        str(tmp_path),
    ]
    assert run_cli(*args, "--max_steps", "2").returncode == 0
    res = run_cli(*args, "--max_steps", "4", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    lrs = {r["step"]: r["learning_rate"] for r in metrics(tmp_path) if "learning_rate" in r}
    peak = 1e-4  # the recipe's learning_rate
    assert lrs[1] == pytest.approx(peak) and lrs[2] == pytest.approx(peak / 2)  # the 2-step cosine
    assert lrs[3] == pytest.approx(peak / 2) and lrs[4] == pytest.approx(peak * (1 + math.cos(math.pi * 3 / 4)) / 2)
    assert "update 3 trains at learning rate 5e-05" in res.stdout
    assert "missing keys" not in res.stderr and "missing keys" not in res.stdout
    res = run_cli(*args, "--max_steps", "4", "--resume")
    assert res.returncode == 2 and "is at update 4 and max_steps=4: nothing left to train" in res.stderr


@pytest.mark.slow
def test_tiny_recipe_trains_from_the_command_line(tmp_path):
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--max_steps", "2", "--output_dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [r for r in metrics(tmp_path) if "self_certainty/mean" in r]
    assert [r["step"] for r in rows] == [1, 2]
    assert all("rewards/accuracy/mean" in r for r in rows)  # label accuracy logged for monitoring
    trained = load_file(tmp_path / "model.safetensors")
    base = load_file(Path.home() / ".cache/intuitor/tiny-qwen2/model.safetensors")
    assert any(not (trained[k] == base[k]).all() for k in base)


@pytest.mark.slow
def test_resume_after_sigkill_loses_at_most_the_steps_since_the_checkpoint(tmp_path):
    total = 24
    args = [
        "train",
        "recipes/tiny-cpu.yaml",
        "--max_steps",
        str(total),
        "--save_steps",
        "4",
        "--output_dir",
        str(tmp_path),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([INTUITOR, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not (tmp_path / "checkpoint-8").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-training, right after a checkpoint
    proc.wait()
    checkpoints = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    assert checkpoints[-1] < total
    res = run_cli(*args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((tmp_path / f"checkpoint-{total}" / "trainer_state.json").read_text())
    assert state["global_step"] == total
    steps = [r["step"] for r in metrics(tmp_path) if "loss" in r]
    assert steps == list(range(1, total + 1))  # no gap, no duplicate: resumed right after the last checkpoint


@pytest.mark.slow
def test_one_intuitor_step_on_smollm2_gguf(tmp_path):
    res = run_cli(
        "train",
        "recipes/tiny-cpu.yaml",
        "--model_name_or_path",
        "smollm2-gguf",
        "--max_steps",
        "1",
        "--num_generations",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--max_completion_length",
        "8",
        "--learning_rate",
        "1e-5",
        "--save_strategy",
        "no",
        "--output_dir",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    row = next(r for r in metrics(tmp_path) if "self_certainty/mean" in r)
    assert row["self_certainty/mean"] > 0 and row["completions/mean_length"] > 0
    assert (tmp_path / "model.safetensors").exists()


def test_help_imports_no_torch():
    """`intuitor --help` stays fast: no command imports torch (or transformers) until it runs."""
    code = "import sys, intuitor.cli; print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_config_raises_no_deprecation_warning_nobody_can_act_on():
    import warnings

    from intuitor.training import IntuitorConfig

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        config = IntuitorConfig(output_dir="unused", gradient_checkpointing=False)
    assert config.activation_checkpointing is False and config.gradient_checkpointing is False
    assert IntuitorConfig(output_dir="unused").activation_checkpointing is True  # GRPOConfig's default, carried over


def test_model_init_kwargs_reach_the_policy(tiny_model_dir):
    """intuitor loads the policy itself, so the recipe's `model_init_kwargs` must be applied there (TRL, handed a
    loaded model, uses them for the reference model only)."""
    from types import SimpleNamespace

    import torch

    from intuitor.models import load_model_and_tokenizer
    from intuitor.training.run import policy_init_kwargs

    config = SimpleNamespace(model_init_kwargs={"attn_implementation": "eager", "dtype": "bfloat16"})
    kwargs = policy_init_kwargs(SimpleNamespace(model_dtype="float32"), config)
    model, _ = load_model_and_tokenizer(str(tiny_model_dir), **kwargs)
    assert model.config._attn_implementation == "eager" and model.dtype == torch.bfloat16
    assert config.model_init_kwargs == {"attn_implementation": "eager", "dtype": "bfloat16"}  # the reference's too
