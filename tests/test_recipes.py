"""The paper recipes as the trainer receives them, held to the table in recipes/README.md.

Each recipe is resolved through `intuitor train`'s own path (`intuitor.training.run`: parse, derive, load the
prompts, render the chat) without loading model weights, and its *effective* values are compared with the table:
every YAML field, the rendered system message, the batch per update, the number of updates, the learning rate the
Trainer's scheduler gives at updates 0, 1 and 10% of the run, and the KL estimator. The table's values are
hand-derived from the sources it cites (e.g. 7,500 prompts // 128 per update = 58 updates, warm-up ceil(5.8) = 6,
lr at update 1 = 3e-6 / 6).
"""

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from intuitor.training.run import (
    effective_values,
    load_train_dataset,
    lr_schedule,
    parse_config,
    resolve_recipe,
    updates_per_epoch,
)


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "recipes" / "README.md"
CPU = ["--bf16", "false", "--fp16", "false", "--use_cpu", "true"]  # as `validate` does on a machine without GPU
BOOKKEEPING = {"output_dir", "report_to"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _table(section: str) -> list[list[str]]:
    """The markdown table under `## section` of recipes/README.md, as rows of stripped cells (header first)."""
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in rows]
    return [cells[0]] + cells[2:]  # drop the |---| line


def _columns() -> dict[str, Path]:
    return {name: ROOT / "recipes" / file.strip("`") for name, file in _table("The recipes")[1:]}


def _prompts() -> dict[str, str]:
    body = README.read_text().split("## System prompts\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^(P[\w.]+) \(.*?\):\n\n```text\n(.*?)\n```", body, flags=re.M | re.S))


def _by_column(section: str) -> dict[str, dict[str, str]]:
    header, *rows = _table(section)
    return {col: {row[0].strip("`"): row[i] for row in rows} for i, col in enumerate(header) if 0 < i <= 10}


COLUMNS = _columns()
FIELDS = _by_column("Fields")
EFFECTIVE = _by_column("Effective values")
PROMPTS = _prompts()


def test_the_table_covers_every_paper_recipe():
    on_disk = set((ROOT / "recipes").glob("Qwen2.5-*/*.yaml"))
    assert set(COLUMNS.values()) == on_disk
    assert set(FIELDS) == set(EFFECTIVE) == set(COLUMNS)
    assert set(PROMPTS) == {"P1.5", "P3", "P7", "PC"}


def test_prompt_texts_are_the_papers():
    from intuitor.tasks.math_train import MATH_SYSTEM_PROMPTS

    # the README's text, the task's record of App. B.1 and the authors' configs (A3I, A7I: "\\boxed" in
    # double quotes there, i.e. a literal backslash) are one text each
    assert PROMPTS["P1.5"] == MATH_SYSTEM_PROMPTS["qwen2.5-1.5b"]
    assert PROMPTS["P3"] == MATH_SYSTEM_PROMPTS["qwen2.5-3b"]
    assert PROMPTS["P7"] == MATH_SYSTEM_PROMPTS["qwen2.5-7b"] == MATH_SYSTEM_PROMPTS["qwen2.5-14b"]
    assert PROMPTS["P3"].endswith(
        "in the box: \\boxed{Your Answer}. Please stop generation immediately after outputing the box."
    )
    assert (
        PROMPTS["PC"] == "You are an AI designed to help solve competitive programming problems by generating "
        "Python code."
    )
    for text in PROMPTS.values():
        assert not CONTROL.search(text)


def _resolve(column: str, data_dir: Path, tmp_path: Path):
    """The recipe as `intuitor train` resolves it, with the prompts it would train on."""
    extra = ["--data_dir", str(data_dir)]
    if "code" in column:  # CodeContests is not in the shared data: three local rows in its format
        rows = tmp_path / "code.jsonl"
        rows.write_text(
            "".join(json.dumps({"name": f"p{i}", "description": f"Read n, print {i}n."}) + "\n" for i in range(3))
        )
        extra = ["--dataset_path", str(rows)]
    run_args, config = resolve_recipe(str(COLUMNS[column]), CPU + extra)
    return run_args, config, load_train_dataset(run_args).to_list()


@pytest.mark.parametrize("column", list(COLUMNS))
def test_recipe_fields_are_the_tables(column, data_dir, tmp_path):
    raw = yaml.safe_load(COLUMNS[column].read_text())
    expected = {f: yaml.safe_load(v) for f, v in FIELDS[column].items() if v != "-"}
    assert set(raw) - BOOKKEEPING == set(expected), "a field is in the recipe or the table, not both"
    run_args, config, _ = _resolve(column, data_dir, tmp_path)
    for name, value in expected.items():
        if name == "system_prompt":
            value = PROMPTS[value]
        assert raw[name] == value, f"{name}: YAML {raw[name]!r}, table {value!r}"
        if name in ("bf16",):  # relaxed on a machine without GPU, as `validate` does
            continue
        got = getattr(run_args, name) if hasattr(run_args, name) else getattr(config, name)
        got = getattr(got, "value", got)  # enums (lr_scheduler_type)
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-12), name
        else:
            assert got == value, f"{name}: the trainer receives {got!r}, table {value!r}"


@pytest.mark.parametrize("column", list(COLUMNS))
def test_effective_values_are_the_tables(column, data_dir, tmp_path):
    run_args, config, rows = _resolve(column, data_dir, tmp_path)
    table = {k: yaml.safe_load(v) for k, v in EFFECTIVE[column].items()}
    eff = effective_values(run_args, config, None if "code" in column else rows)

    # the system message the chat template renders, on the very rows the run would train on
    prompt = PROMPTS[FIELDS[column]["system_prompt"]]
    assert rows[0]["prompt"][0] == {"role": "system", "content": prompt}
    assert eff["system_message"] == prompt
    assert not CONTROL.search(eff["system_message"])
    if FIELDS[column]["system_prompt"] in ("P1.5", "P3"):
        assert "\\boxed{" in eff["system_message"]
    if "code" not in column:
        assert len(rows) == 7500  # the MATH train split, the paper's training set
    else:  # the authors' code-only user templates (code_process.py), around the description
        from intuitor.tasks.codecontests import USER_TEMPLATES

        for i, row in enumerate(rows):
            user = row["prompt"][1]["content"]
            assert user in [t.format(description=f"Read n, print {i}n.") for t in USER_TEMPLATES]
            assert "step by step" not in user.lower()  # code only: reasoning is not asked for

    assert eff["processes"] == 8 and eff["prompts_per_update"] == table["prompts per update"]
    assert eff["updates"] == table["updates"]
    assert eff["warmup_steps"] == table["warm-up updates"] == math.ceil(0.1 * table["updates"])
    lrs = lr_schedule(config, eff["updates"])
    assert lrs[0] == pytest.approx(table["lr at update 0"], abs=1e-15)
    assert lrs[1] == pytest.approx(table["lr at update 1"], rel=1e-6)
    assert lrs[eff["warmup_steps"]] == pytest.approx(table["lr at 10%"], rel=1e-9) == config.learning_rate
    assert max(lrs) == pytest.approx(config.learning_rate, rel=1e-9)
    assert eff["kl"].split(" (")[0].split(",")[0] == table["KL term"]
    assert not config.use_bias_correction_kl and config.beta > 0


def test_the_scheduler_is_the_one_the_trainer_builds(tiny_model_dir, tmp_path):
    """`lr_schedule` against the scheduler a real IntuitorTrainer creates, and `updates_per_epoch` against the
    length of its dataloader (23 prompts, 4 per generation round: 5 rounds, the incomplete one dropped)."""
    from datasets import Dataset

    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    config = IntuitorConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=2,
        gradient_accumulation_steps=2,
        max_completion_length=4,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        gradient_checkpointing=False,
    )
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}]} for i in range(23)])
    trainer = IntuitorTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    micro_steps = len(trainer.get_train_dataloader())
    assert math.ceil(micro_steps / config.gradient_accumulation_steps) == updates_per_epoch(config, 23, 1) == 5

    n = 20
    trainer.create_optimizer_and_scheduler(num_training_steps=n)
    seen = []
    for _ in range(n):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    ours = lr_schedule(config, n)
    assert seen == pytest.approx(ours, rel=1e-12)
    # warm-up 10% = 2 updates: 0, lr/2, then the cosine from the peak
    assert ours[:3] == pytest.approx([0.0, 5e-4, 1e-3], rel=1e-12)
    assert ours[11] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 9 / 18)), rel=1e-12)


def test_intuitor_config_defaults_are_the_papers(tmp_path):
    from intuitor.training import IntuitorConfig

    config = IntuitorConfig(output_dir=str(tmp_path), use_cpu=True)
    assert config.use_bias_correction_kl is False  # plain k3
    assert config.warmup_steps == 0.1 and config.get_warmup_steps(58) == 6
    assert str(config.lr_scheduler_type.value) == "cosine" and config.learning_rate == 3e-6 and config.beta == 0.005


def test_warmup_ratio_is_refused_with_its_replacement(tmp_path):
    bad = tmp_path / "old.yaml"
    bad.write_text("warmup_ratio: 0.1\n")
    with pytest.raises(ValueError, match="'warmup_ratio'.*warmup_steps: 0.1"):
        parse_config(str(bad), [])
    with pytest.raises(ValueError, match="'warmup_ratio' in the command line.*warmup_steps"):
        parse_config(None, ["--warmup_ratio", "0.1"])


def test_control_characters_in_prompts_are_refused_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    # the old recipes' bug: a double-quoted YAML string turns \b into a backspace
    bad.write_text('system_prompt: "enclose your final answer in the box: \\boxed{Your Answer}."\n')
    loaded = yaml.safe_load(bad.read_text())["system_prompt"]
    assert loaded[38:43] == "\x08oxed"  # U+0008, then "oxed", right after "...in the box: " (38 characters)
    with pytest.raises(ValueError, match=r"system_prompt contains control character U\+0008 at position 38"):
        parse_config(str(bad), [])
    good = tmp_path / "good.yaml"
    good.write_text("system_prompt: 'in the box: \\boxed{Your Answer}.'\n")
    run_args, _ = parse_config(str(good), [])
    assert run_args.system_prompt == "in the box: \\boxed{Your Answer}."
    with pytest.raises(ValueError, match=r"system_prompt contains control character U\+001B"):
        parse_config(None, ["--system_prompt", "colour \x1b[31m"])
    # tabs and newlines are prompt text
    run_args, _ = parse_config(None, ["--system_prompt", "line one\n\tline two"])
    assert run_args.system_prompt == "line one\n\tline two"


def test_every_recipe_prompt_is_clean():
    for path in (ROOT / "recipes").rglob("*.yaml"):
        values = yaml.safe_load(path.read_text())
        for key, value in values.items():
            if isinstance(value, str):
                assert not CONTROL.search(value), f"{path}: {key}"


def test_validate_shows_the_effective_values(data_dir):
    from typer.testing import CliRunner

    from intuitor.cli import app

    recipes = [str(COLUMNS["3B"]), str(COLUMNS["7B"]), str(ROOT / "recipes/accelerate/zero2.yaml")]
    res = CliRunner().invoke(app, ["validate", *recipes, "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "\\boxed{Your Answer}. Please stop generation immediately after outputing the box." in out
    assert "G=7, 128 prompts per update" in out and "G=14, 64 prompts per update" in out
    assert "loss: bnpo; KL: k3 (plain), beta 0.005" in out and "KL: k3 (plain), beta 0.01" in out
    assert "cosine, 58 updates, warm-up 6 updates; lr at update 0: 0, 1: 5e-07, 6: 3e-06" in out
    assert "cosine, 117 updates, warm-up 12 updates; lr at update 0: 0, 1: 8.33e-08, 12: 1e-06" in out
    assert "accelerate launch config: DEEPSPEED" in out
    assert not CONTROL.search(out.replace("\n", ""))
    # without the data, the schedule of an epoch-based recipe is shown as far as it is known
    res = CliRunner().invoke(app, ["validate", str(COLUMNS["1.5B"])])
    assert res.exit_code == 0 and "warm-up 0.1 of the run; run length unknown" in res.output
