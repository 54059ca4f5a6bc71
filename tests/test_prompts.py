"""Your own prompts (`--task prompts`), golds optional in training, test-time training's gold isolation, bad rows in
one line, and chat templates that refuse the system role or are missing: in the library and through the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from intuitor.generation import base as generation
from intuitor.generation.base import fit_dataset, fit_prompt, render_prompt
from intuitor.rewards import REWARDS, gold_rewards
from intuitor.tasks import get_task
from intuitor.training.run import RunArguments, load_train_dataset, train_task


ROOT = Path(__file__).resolve().parents[1]
INTUITOR = str(Path(sys.executable).with_name("intuitor"))
DATA_DIR = Path(os.environ.get("INTUITOR_DATA_DIR", ROOT.parent / "shared" / "data"))

# Gemma 2's refusal (google/gemma-2-2b-it's template raises exactly this) over ChatML turns the tiny model knows.
REFUSING_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ROWS = [
    {"prompt": "What is 2 + 2?", "topic": "add"},
    {"prompt": "What is 3 * 3?", "topic": "mul"},
    {"prompt": "What is 10 - 4?", "topic": "sub"},
]


def write(path: Path, rows: list[dict]) -> Path:
    """`rows` in the format the suffix names (.jsonl, .json, .parquet, .csv)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".csv":
        import csv

        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def prompts_task(path, **kwargs):
    task = get_task("prompts", path=str(path), **kwargs)
    task.golds_required = False  # as `intuitor train` loads it
    return task


def run_args(**kwargs) -> RunArguments:
    return RunArguments(**{"data_dir": str(DATA_DIR), **kwargs})


# --- the prompts task ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_every_file_format_gives_the_same_rows(tmp_path, suffix):
    rows = prompts_task(write(tmp_path / f"p{suffix}", ROWS)).load()
    assert rows == [
        {"id": str(i), "prompt": [{"role": "user", "content": r["prompt"]}], "answer": "", "topic": r["topic"]}
        for i, r in enumerate(ROWS)
    ]
    assert prompts_task(tmp_path / f"p{suffix}").load(limit=2) == rows[:2]


def test_json_lines_in_a_json_file_and_gzip(tmp_path):
    import gzip

    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in ROWS))
    assert [r["topic"] for r in prompts_task(tmp_path / "lines.json").load()] == ["add", "mul", "sub"]
    assert [r["topic"] for r in prompts_task(tmp_path / "p.jsonl.gz").load()] == ["add", "mul", "sub"]


def test_messages_rows_and_another_prompt_field(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    path = write(tmp_path / "m.jsonl", [{"id": "q1", "messages": chat, "answer": 4, "level": 2}])
    [row] = prompts_task(path, prompt_field="messages").load()
    assert row == {"id": "q1", "prompt": chat, "answer": "4", "level": 2}  # a number gold is read as text
    with pytest.raises(
        ValueError,
        match=rf"^{path}:1: row is missing field\(s\) prompt \(columns: id, messages, "
        r"answer, level\); --prompt_field names the column holding the prompt$",
    ):
        prompts_task(path).load()


def test_extra_columns_reach_the_rewards_as_trl_passes_them(tmp_path):
    path = write(tmp_path / "p.jsonl", ROWS)
    dataset = load_train_dataset(run_args(task="prompts", dataset_path=str(path)), ["self_certainty"])
    assert dataset.column_names == ["id", "prompt", "topic"] and dataset["topic"] == ["add", "mul", "sub"]


def test_a_hub_data_set_id_loads_with_split_and_config(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    args = run_args(task="prompts", dataset_path="someone/questions", dataset_config="easy", dataset_train_split="dev")
    dataset = load_train_dataset(args, ["self_certainty"])
    assert calls == [("someone/questions", "easy", "dev")] and len(dataset) == 3
    assert dataset[0]["prompt"] == [{"role": "user", "content": "What is 2 + 2?"}]


def test_a_hub_id_that_cannot_load_says_so_in_one_line(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        FileNotFoundError,
        match=r"^prompts: the hub data set someone/questions could not be loaded "
        r"\(ConnectionError: offline\); pass the data file's path$",
    ):
        load_train_dataset(run_args(task="prompts", dataset_path="someone/questions"), ["self_certainty"])
    with pytest.raises(FileNotFoundError, match=r"^prompts: data file not found: missing\.jsonl"):
        load_train_dataset(run_args(task="prompts", dataset_path="missing.jsonl"), ["self_certainty"])


def test_prompts_options_are_refused_for_other_tasks():
    with pytest.raises(
        ValueError,
        match=r"^prompt_field is read by task 'prompts' only, not 'math500': use "
        r"--task prompts$",
    ):
        train_task(run_args(task="math500", prompt_field="question"))


# --- bad rows: one line naming file, row and field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "content", "message"),
    [
        ("prompts", '{"prompt": null}\n', "{f}:1: field 'prompt' is null"),
        (
            "prompts",
            '{"prompt": "ok"}\n{"prompt": 7}\n',
            "{f}:2: field 'prompt' is a number (7), expected text or a list of chat messages",
        ),
        (
            "prompts",
            '{"prompt": ["a", "b"]}\n',
            '{f}:1: field \'prompt\' message 1 is not a {{"role", "content"}} object',
        ),
        (
            "prompts",
            '{"prompt": [{"role": "bot", "content": "x"}]}\n',
            "{f}:1: field 'prompt' message 1 has role 'bot', not one of system, user, assistant, tool",
        ),
        (
            "prompts",
            '{"prompt": [{"role": "user", "content": null}]}\n',
            "{f}:1: field 'prompt' message 1 content is null, expected text",
        ),
        (
            "prompts",
            '{"prompt": "ok", "answer": null}\n',
            "{f}:1: field 'answer' is null (leave the field out, or write \"\", for a row without a gold answer)",
        ),
        ("prompts", '{"prompt": "ok", "answer": [1]}\n', "{f}:1: field 'answer' is a list, expected text or a number"),
        (
            "prompts",
            '{"prompt": "a", "n": 1}\n{"prompt": "b", "n": "x"}\n',
            "{f}:2: column 'n' holds text here but a number in {f}:1: a column holds one kind of value in every row",
        ),
        (
            "prompts",
            '{"prompt": "a", "completions": 1}\n',
            "{f}:1: column 'completions' is a name TRL passes to rewards itself; rename the column",
        ),
        ("prompts", "", "{f}: no rows (the file is empty)"),
        ("prompts", "[]", "{f}: no rows (the file is empty)"),
        ("prompts", '[{"prompt": "ok"}, 3]', "{f}#1: expected a JSON object, found a number (3)"),
        ("math500", '{"problem": null, "answer": "1", "unique_id": "a"}\n', "{f}:1: field 'problem' is null"),
        (
            "math500",
            '{"problem": 12, "answer": "1", "unique_id": "a"}\n',
            "{f}:1: field 'problem' is a number (12), expected text",
        ),
        (
            "math500",
            '{"problem": "p", "answer": null, "unique_id": "a"}\n',
            "{f}:1: field 'answer' is null (leave the field out, or write \"\", for a row without a gold answer)",
        ),
        (
            "math500",
            '{"problem": "p", "unique_id": "a"}\n',
            "{f}:1: row is missing field(s) answer (evaluation needs every row's gold answer)",
        ),
        ("gsm8k", '{"question": ["q"], "answer": "#### 1"}\n', "{f}:1: field 'question' is a list, expected text"),
        ("math", '{"problem": {"text": "p"}}\n', "{f}:1: field 'problem' is an object, expected text"),
        ("math500", "", "{f}: no rows (the file is empty)"),
    ],
)
def test_bad_rows_are_refused_in_one_line(tmp_path, task, content, message):
    suffix = ".json" if content.startswith("[") else ".jsonl"
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        # the prompts task as training loads it (golds optional); the benchmarks as evaluation does (golds required)
        (prompts_task(path) if task == "prompts" else get_task(task, path=str(path))).load()
    assert str(err.value) == message.format(f=path)


def test_bad_csv_and_parquet_rows(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,topic\n")
    with pytest.raises(ValueError, match=rf"^{csv}: no rows \(the file is empty\)$"):
        prompts_task(csv).load()
    csv.write_text('prompt,topic\n"",x\n')
    with pytest.raises(ValueError, match=rf"^{csv}:2: field 'prompt' is empty$"):
        prompts_task(csv).load()
    parquet = write(tmp_path / "p.parquet", [{"prompt": "ok"}, {"prompt": None}])
    with pytest.raises(ValueError, match=rf"^{parquet}#1: field 'prompt' is null$"):
        prompts_task(parquet).load()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=rf"^{broken}: not a readable Parquet file \(ArrowInvalid: "):
        prompts_task(broken).load()


# --- golds: optional in training, refused for a gold reward before any model loads --------------------------------


def test_rewards_declare_whether_they_read_golds():
    assert gold_rewards(["self_certainty", "negative_entropy", "plurality_vote", "format", "random"]) == []
    assert gold_rewards(["self_certainty", "accuracy:0"]) == ["accuracy"]
    assert REWARDS["accuracy"].needs_golds and REWARDS["accuracy"].factory(None).needs_golds


def test_a_gold_reward_on_label_free_data_fails_naming_reward_field_and_file(tmp_path):
    path = write(tmp_path / "p.jsonl", ROWS)
    with pytest.raises(ValueError) as err:
        load_train_dataset(run_args(task="prompts", dataset_path=str(path)), ["self_certainty", "accuracy:0"])
    assert str(err.value) == (
        f"reward 'accuracy' needs gold answers (field 'answer'), but {path} has none: drop 'accuracy' from rewards "
        "for label-free training, or give each row an 'answer'"
    )


def test_a_math_file_without_answers_trains_label_free(tmp_path):
    path = write(tmp_path / "m.jsonl", [{"problem": "What is 1+1?"}, {"problem": "What is 2+2?"}])
    dataset = load_train_dataset(run_args(task="math", dataset_path=str(path)), ["self_certainty"])
    assert len(dataset) == 2 and dataset[1]["prompt"][-1] == {"role": "user", "content": "What is 2+2?"}
    with pytest.raises(ValueError, match=rf"reward 'accuracy' needs gold answers \(field 'answer'\), but {path}"):
        load_train_dataset(run_args(task="math", dataset_path=str(path)), ["accuracy"])


def test_partly_labelled_data_trains_a_gold_reward_with_a_notice(tmp_path, capsys):
    path = write(tmp_path / "p.jsonl", [{"prompt": "a", "answer": "1"}, {"prompt": "b"}])
    dataset = load_train_dataset(run_args(task="prompts", dataset_path=str(path)), ["accuracy"])
    assert dataset["answer"] == ["1", ""]
    assert f"1 of 2 rows of {path} have no 'answer': reward 'accuracy' scores them None" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["math500", "gsm8k"])
def test_test_time_training_withholds_the_golds_unless_a_gold_reward_is_named(task):
    args = run_args(task=task, dataset_limit=3)
    free = load_train_dataset(args, ["self_certainty", "plurality_vote"])
    assert "answer" not in free.column_names and "solution" not in free.column_names
    logged = load_train_dataset(args, ["self_certainty", "accuracy:0"])
    assert "answer" in logged.column_names and all(logged["answer"])


# --- chat templates ------------------------------------------------------------------------------------------------


@pytest.fixture
def refusing_tokenizer():
    from intuitor.models import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.chat_template = REFUSING_TEMPLATE
    tok.name_or_path = "gemma-like"
    generation._NOTICED.clear()
    return tok


def test_a_template_refusing_the_system_role_gets_it_in_the_first_user_turn(refusing_tokenizer, capsys):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    with pytest.raises(Exception, match="System role not supported"):  # what every run hit before
        refusing_tokenizer.apply_chat_template(messages, tokenize=False)
    text, ids = render_prompt(refusing_tokenizer, messages)
    assert text == "<|im_start|>user\nBe brief.\n\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert ids == refusing_tokenizer(text, add_special_tokens=False)["input_ids"]
    render_prompt(refusing_tokenizer, messages)
    err = capsys.readouterr().err
    assert err == (
        "notice: the chat template of gemma-like refuses the system role: the system message goes to the "
        "start of the first user turn\n"
    )  # once
    assert fit_prompt(refusing_tokenizer, messages[1:]) == messages[1:]  # no system message: unchanged


def test_templates_that_take_the_system_role_are_left_alone(capsys):
    from intuitor.models import build_tiny_tokenizer

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert fit_prompt(build_tiny_tokenizer(), messages) == messages and capsys.readouterr().err == ""


def test_no_chat_template_uses_the_plain_format_in_training_and_evaluation(capsys):
    from datasets import Dataset

    from intuitor.models import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.chat_template, tok.name_or_path = None, "base-model"
    generation._NOTICED.clear()
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    dataset = fit_dataset(Dataset.from_list([{"prompt": messages}]), tok)
    assert dataset["prompt"] == ["S\n\nQ"] and render_prompt(tok, messages)[0] == "S\n\nQ"
    assert capsys.readouterr().err.count("notice: base-model has no chat template") == 1


def test_training_prompts_are_fitted_as_evaluation_fits_them(refusing_tokenizer):
    from datasets import Dataset

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    dataset = fit_dataset(Dataset.from_list([{"prompt": messages, "answer": "4"}]), refusing_tokenizer)
    assert dataset["prompt"] == [fit_prompt(refusing_tokenizer, messages)] and dataset["answer"] == ["4"]
    # TRL renders the fitted messages with the template: the same text evaluation renders
    trl_text = refusing_tokenizer.apply_chat_template(dataset[0]["prompt"], tokenize=False, add_generation_prompt=True)
    assert trl_text == render_prompt(refusing_tokenizer, messages)[0]


def test_the_python_trainer_trains_a_system_role_refusing_model(tiny_model_dir, tmp_path, refusing_tokenizer):
    """IntuitorTrainer itself fits the prompts (the CLI goes through it): the step TRL would fail on trains."""
    from datasets import Dataset

    from intuitor.models import load_model_and_tokenizer
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    tok.chat_template = REFUSING_TEMPLATE
    system = [{"role": "system", "content": "Be brief."}]
    data = Dataset.from_list([{"prompt": system + [{"role": "user", "content": f"{i}+{i}?"}]} for i in range(4)])
    args = IntuitorConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=4,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        beta=0.0,
        gradient_checkpointing=False,
    )
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    assert trainer.train_dataset[1]["prompt"] == [{"role": "user", "content": "Be brief.\n\n1+1?"}]
    assert trainer.train().global_step == 1


# --- through the command line, as the outside check runs it --------------------------------------------------------


def run_cli(*args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.run([INTUITOR, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def train(out: Path, *flags):
    return run_cli("train", "recipes/tiny-cpu.yaml", "--max_steps", "1", "--output_dir", str(out), *flags)


def logged(out: Path) -> dict:
    [row] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    return row


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suffix", "reward"),
    [
        (".jsonl", "self_certainty"),
        (".json", "plurality_vote"),
        (".parquet", "negative_entropy"),
        (".csv", "self_certainty"),
    ],
)
def test_cli_trains_on_a_prompt_only_file(tmp_path, suffix, reward):
    path = write(tmp_path / f"p{suffix}", ROWS * 2)
    res = train(tmp_path / "out", "--task", "prompts", "--dataset_path", str(path), "--rewards", reward)
    assert res.returncode == 0, res.stderr[-3000:]
    row = logged(tmp_path / "out")
    assert row["step"] == 1 and f"rewards/{reward}/mean" in row and "rewards/accuracy/mean" not in row


@pytest.mark.slow
def test_cli_readme_command_trains_on_the_example_prompts(tmp_path):
    res = run_cli(
        "train",
        "recipes/tiny-cpu.yaml",
        "--task",
        "prompts",
        "--dataset_path",
        "examples/prompts.jsonl",
        "--rewards",
        "self_certainty",
        "--model_name_or_path",
        "tiny-qwen2",
        "--max_steps",
        "2",
        "--output_dir",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    trained = load_file(tmp_path / "model.safetensors")
    base = load_file(Path.home() / ".cache/intuitor/tiny-qwen2/model.safetensors")
    assert any(not (trained[k] == base[k]).all() for k in base)


@pytest.mark.slow
def test_cli_gold_reward_on_label_free_data_fails_in_one_line_before_loading_a_model(tmp_path):
    path = write(tmp_path / "p.csv", ROWS)
    res = train(
        tmp_path / "out", "--task", "prompts", "--dataset_path", str(path), "--rewards", "self_certainty", "accuracy:0"
    )
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (
        f"error: reward 'accuracy' needs gold answers (field 'answer'), but {path} has none: "
        "drop 'accuracy' from rewards for label-free training, or give each row an 'answer'\n"
    )


def test_validate_refuses_a_gold_reward_on_label_free_data(tmp_path):
    path = write(tmp_path / "p.jsonl", ROWS)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model_name_or_path: tiny-qwen2\ntask: prompts\ndataset_path: {path}\n"
        "rewards: [self_certainty, accuracy]\nnum_generations: 4\nper_device_train_batch_size: 4\n"
    )
    res = run_cli("validate", str(recipe))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"error: reward 'accuracy' needs gold answers (field 'answer'), but {path} has none")
    recipe.write_text(recipe.read_text().replace("[self_certainty, accuracy]", "[self_certainty]"))
    assert run_cli("validate", str(recipe)).returncode == 0


@pytest.mark.slow
def test_cli_math_file_without_answers_and_math500_train_label_free(tmp_path):
    path = write(tmp_path / "m.jsonl", [{"problem": f"What is {i} + {i}?"} for i in range(4)])
    res = train(tmp_path / "math", "--task", "math", "--dataset_path", str(path), "--rewards", "self_certainty")
    assert res.returncode == 0, res.stderr[-3000:]
    assert logged(tmp_path / "math")["step"] == 1
    res = train(tmp_path / "m500", "--task", "math500", "--rewards", "self_certainty", "plurality_vote")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rewards/plurality_vote/mean" in logged(tmp_path / "m500")


@pytest.mark.slow
def test_cli_golds_never_reach_a_reward_in_test_time_training(tmp_path):
    """A spy reward registered in the registry (as a new reward file would) sees every keyword TRL passes."""
    seen = tmp_path / "seen.json"
    script = (
        "import json, sys\n"
        "from intuitor.rewards import register_reward\n"
        "@register_reward('spy', 'records its kwargs', 'test')\n"
        "def spy(prompts, completions, **kwargs):\n"
        f"    open({str(seen)!r}, 'a').write(json.dumps(sorted(kwargs)) + '\\n')\n"
        "    return [0.0] * len(completions)\n"
        "from intuitor.training.run import run_training\n"
        "run_training('recipes/tiny-cpu.yaml', sys.argv[1:])\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for rewards, golds in ((["spy", "self_certainty"], False), (["spy", "accuracy:0"], True)):
        seen.unlink(missing_ok=True)
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                "--task",
                "math500",
                "--max_steps",
                "1",
                "--output_dir",
                str(tmp_path / "out"),
                "--rewards",
                *rewards,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        keys = json.loads(seen.read_text().splitlines()[0])
        assert ("answer" in keys) is golds and "subject" in keys and "level" in keys  # other columns do arrive


@pytest.mark.slow
def test_cli_a_system_role_refusing_model_trains_and_evaluates(tmp_path):
    from transformers import AutoTokenizer

    from intuitor.models import build_tiny_model

    model = build_tiny_model(tmp_path / "gemma-like")
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = REFUSING_TEMPLATE
    tok.save_pretrained(model)
    notice = "the chat template of"
    res = train(tmp_path / "out", "--model_name_or_path", str(model), "--rewards", "self_certainty")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count(notice) == 1 and "Traceback" not in res.stderr
    res = run_cli(
        "eval",
        str(model),
        "--tasks",
        "math500",
        "--data-dir",
        str(DATA_DIR),
        "--limit",
        "2",
        "--max-new-tokens",
        "8",
        "--no-progress",
        "--output-dir",
        str(tmp_path / "eval"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count(notice) == 1 and "Traceback" not in res.stderr
    rows = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["prompt"].startswith("<|im_start|>user\nYou are a helpful") for r in rows)
