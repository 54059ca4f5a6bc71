"""`intuitor train` as a newcomer runs it: recipes, overrides, errors, resume after SIGKILL, GGUF models."""

import json
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
    _, config = parse_config(str(ROOT / "recipes/tiny-cpu.yaml"), ["--learning_rate", "0.5", "--rewards", "a", "b:2"])
    assert config.learning_rate == 0.5 and config.rewards == ["a", "b:2"]
    with pytest.raises(ValueError, match="Unknown config field 'learning_rat' in the command line.*learning_rate"):
        parse_config(str(ROOT / "recipes/tiny-cpu.yaml"), ["--learning_rat", "1"])


def test_unknown_field_in_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_generation: 4\n")
    with pytest.raises(ValueError, match=f"Unknown config field 'num_generation' in {bad}.*num_generations"):
        parse_config(str(bad), [])


def test_cli_errors_name_the_culprit(tmp_path):
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--model_name_or_path", "./no/such/model",
                  "--output_dir", str(tmp_path))
    assert res.returncode == 2 and "model path does not exist: ./no/such/model" in res.stderr
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--task", "gsm8", "--output_dir", str(tmp_path))
    assert res.returncode == 2 and "Did you mean: gsm8k" in res.stderr
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--dataset_limit", "0", "--output_dir", str(tmp_path))
    assert res.returncode == 2 and "empty" in res.stderr


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
    args = ["train", "recipes/tiny-cpu.yaml", "--max_steps", str(total), "--save_steps", "4",
            "--output_dir", str(tmp_path)]
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
    res = run_cli("train", "recipes/tiny-cpu.yaml", "--model_name_or_path", "smollm2-gguf", "--max_steps", "1",
                  "--num_generations", "2", "--per_device_train_batch_size", "2", "--max_completion_length", "8",
                  "--learning_rate", "1e-5", "--save_strategy", "no", "--output_dir", str(tmp_path))
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
