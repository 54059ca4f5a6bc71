"""`intuitor train CONFIG.yaml [--field value ...]`: a YAML recipe plus CLI overrides -> one training run.

The recipe (`intuitor.training.recipe`: YAML + `--field value` overrides -> `RunArguments`, `IntuitorConfig`, every
field checked before anything is loaded) is run here: its task's data, its model, `IntuitorTrainer`. The same command
runs under `accelerate launch` for several processes or nodes.

What the YAML says is not always what the trainer receives, so this module also resolves a recipe into its
*effective* values (`effective_values`, shown by `intuitor validate`, checked by tests/test_recipes.py): the system
message as the chat template renders it, the learning rate the scheduler gives at each step (computed by the
Trainer's own `create_scheduler`), the KL estimator in use, the batch per update.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from intuitor.training.recipe import (
    RENAMED_FIELDS,
    RunArguments,
    check_model_init_kwargs,
    check_prompt_text,
    from_pretrained_arguments,
    parse_config,
    resolve_recipe,
    validate_recipe,
)


__all__ = [  # the recipe's names stay importable from here (the CLI, tests)
    "RENAMED_FIELDS",
    "RunArguments",
    "check_model_init_kwargs",
    "check_prompt_text",
    "from_pretrained_arguments",
    "parse_config",
    "resolve_recipe",
    "validate_recipe",
    "train_task",
    "data_name",
    "check_golds",
    "load_train_dataset",
    "resolve_model",
    "latest_checkpoint",
    "check_resume",
    "run_training",
    "policy_init_kwargs",
    "prompts_per_update",
    "updates_per_epoch",
    "total_updates",
    "lr_schedule",
    "kl_estimator",
    "rendered_system_message",
    "effective_values",
    "load_rows_if_local",
]


# RunArguments fields that only the `prompts` task reads -> its constructor's argument
_PROMPTS_OPTIONS = {"prompt_field": "prompt_field", "dataset_config": "config", "dataset_train_split": "split"}


def train_task(run_args: RunArguments):
    """The training task, golds optional (label-free rewards need none). The `prompts` task's own options are
    refused, naming the option, for a task that does not read them."""
    from intuitor.tasks import TASKS, get_task, load_all

    load_all()
    kwargs = {"path": run_args.dataset_path, "data_dir": run_args.data_dir}
    defaults = {f.name: f.default for f in dataclasses.fields(RunArguments)}
    for option, arg in _PROMPTS_OPTIONS.items():
        value = getattr(run_args, option)
        if run_args.task == "prompts":
            kwargs[arg] = value
        elif run_args.task in TASKS and value != defaults[option]:
            raise ValueError(f"{option} is read by task 'prompts' only, not '{run_args.task}': use --task prompts")
    task = get_task(run_args.task, **kwargs)
    task.golds_required = False
    return task


def data_name(run_args: RunArguments, task) -> str:
    """The training data as a user names it: the file, the hub id, or the task's default file."""
    return run_args.dataset_path or str(task.resolve_path() or task.hub_id or f"task '{task.name}'")


def check_golds(rewards: list[str], rows: list[dict], task, where: str) -> None:
    """A reward that reads gold answers on data that has none fails here, before any model loads; on data with
    some rows lacking one, a notice says how many score None (left out of that reward's mean)."""
    from intuitor.rewards import gold_rewards

    field = task.gold_fields[0] if task.gold_fields else "answer"
    missing = sum(1 for r in rows if not str(r.get(field) or "").strip())
    for name in gold_rewards(rewards):
        if missing == len(rows):
            raise ValueError(
                f"reward '{name}' needs gold answers (field '{field}'), but {where} has none: drop '{name}' from "
                f"rewards for label-free training, or give each row an '{field}'"
            )
        if missing:
            print(
                f"notice: {missing} of {len(rows)} rows of {where} have no '{field}': reward '{name}' scores them "
                "None (left out of its mean)"
            )


def load_train_dataset(run_args: RunArguments, rewards: list[str] | None = None):
    """The training rows as a `datasets.Dataset`. With `rewards` (NAME[:WEIGHT] specs): a gold reward on data
    without golds is refused, and without a gold reward the task's gold columns are dropped, so no reward sees them
    (test-time training on an evaluation task stays label-free)."""
    from datasets import Dataset

    from intuitor.rewards import gold_rewards

    task = train_task(run_args)
    rows = task.load(limit=run_args.dataset_limit)
    where = data_name(run_args, task)
    if not rows:
        raise ValueError(f"task '{run_args.task}' yielded an empty data set ({where}): nothing to train on")
    if rewards is not None:
        check_golds(rewards, rows, task, where)
        if not gold_rewards(rewards):
            rows = [{k: v for k, v in r.items() if k not in task.gold_fields} for r in rows]
    if run_args.system_prompt is not None:
        for row in rows:
            row["prompt"] = [{"role": "system", "content": run_args.system_prompt}] + [
                m for m in row["prompt"] if m["role"] != "system"
            ]
    for i, row in enumerate(rows):  # the task's own system prompt too: what the policy sees must be clean text
        for m in row["prompt"]:
            if m["role"] == "system":
                check_prompt_text(m["content"], f"system prompt of task '{run_args.task}' (row {i + 1})")
    try:
        return Dataset.from_list(rows)
    except Exception as e:  # pyarrow's cast errors name no row: one line naming the data instead
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{where}: the rows do not form a data set ({type(e).__name__}: {first})") from None


def resolve_model(name: str) -> str:
    """A folder TRL can load by path (it reloads the reference model from `config._name_or_path`): aliases resolve
    as everywhere (`intuitor.models.resolve_model_path`), and a GGUF file (or `smollm2-gguf`) is dequantised once
    into a cached transformers folder, as `intuitor convert-gguf` does; other names pass through."""
    from intuitor.models import cached_gguf, check_model_path, resolve_model_path

    path = resolve_model_path(name)
    if not path.endswith(".gguf"):
        return path
    check_model_path(path)
    return str(cached_gguf(path))  # the same cache `intuitor eval` uses


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


def check_resume(checkpoint: str, config) -> None:
    """Refuse a resume with nothing left to train; say how a changed run length is continued.

    The Trainer restores the step count and the optimizer from the checkpoint and rebuilds the schedule for this
    run's length; `ResumedScheduleCallback` makes the first resumed update follow that new schedule (the run goes on
    as if planned with its new length; a raised `max_steps` after a finished cosine run restarts from the new
    schedule's value at that step, not from 0)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    step = int(state.get("global_step", 0))
    if config.max_steps > 0 and step >= config.max_steps:
        raise ValueError(
            f"--resume: {checkpoint} is at update {step} and max_steps={config.max_steps}: nothing left to train; "
            f"raise max_steps above {step}, or use another output_dir"
        )


def run_training(config_path: str | None, overrides: list[str], resume: bool = False):
    from intuitor.models import check_model_path, load_model_and_tokenizer
    from intuitor.training.trainer import IntuitorTrainer

    run_args, config = resolve_recipe(config_path, overrides)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if run_args.processes and run_args.processes != world:
        print(
            f"warning: the recipe is written for processes={run_args.processes}, this launch has {world}: "
            f"{prompts_per_update(config, world):g} prompts per update instead of "
            f"{prompts_per_update(config, run_args.processes):g}"
        )
    check_model_path(run_args.model_name_or_path)  # before loading data or weights
    checkpoint = latest_checkpoint(config.output_dir) if resume else None
    if resume and checkpoint is None:
        print(f"--resume: no checkpoint in {config.output_dir}; starting from scratch")
    if checkpoint is not None:
        check_resume(checkpoint, config)
    dataset = load_train_dataset(run_args, config.rewards)  # refuses a gold reward on label-free data, here
    model_name = resolve_model(run_args.model_name_or_path)
    model, tokenizer = load_model_and_tokenizer(model_name, **policy_init_kwargs(run_args, config))
    trainer = IntuitorTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(config.output_dir)
    return trainer


def policy_init_kwargs(run_args: RunArguments, config) -> dict:
    """`from_pretrained` arguments of the policy: `model_dtype` plus the recipe's `model_init_kwargs`. intuitor loads
    the policy itself (GGUF files, local aliases), and TRL, handed a loaded model, applies `model_init_kwargs` to
    the reference model only (its warning that they "will be ignored" is about the policy): they are applied to
    the policy here. A `dtype` (or the older `torch_dtype`) among them wins over `model_dtype`.

    >>> from types import SimpleNamespace as N
    >>> config = N(model_init_kwargs={"attn_implementation": "eager", "torch_dtype": "bfloat16"})
    >>> policy_init_kwargs(N(model_dtype="float32"), config)
    {'attn_implementation': 'eager', 'dtype': 'bfloat16'}
    """
    kwargs = dict(config.model_init_kwargs or {})
    dtype = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype", None) or run_args.model_dtype
    return {**kwargs, "dtype": dtype}


# --- Effective values: what the trainer receives -------------------------------------------------------------------


def prompts_per_update(config, processes: int) -> float:
    """Prompts per optimizer update: completions per update (per device x processes x accumulation) / G."""
    return config.per_device_train_batch_size * processes * config.gradient_accumulation_steps / config.num_generations


def updates_per_epoch(config, rows: int, processes: int) -> int:
    """Optimizer updates in one pass over `rows` prompts, as TRL 1.16 and transformers 5.23 count them: TRL's
    RepeatSampler yields whole generation batches only (a last incomplete one is dropped) and each is reused for
    steps_per_generation x num_iterations micro-steps; the Trainer rounds micro-steps up to whole updates."""
    per_generation = config.per_device_train_batch_size * processes * config.steps_per_generation
    prompts_per_generation = per_generation // config.num_generations
    micro_steps = (rows // prompts_per_generation) * config.steps_per_generation * config.num_iterations
    return max(math.ceil(micro_steps / config.gradient_accumulation_steps), 1)


def total_updates(config, rows: int | None, processes: int) -> int | None:
    """The run's length in updates (`max_steps`, else epochs x updates per epoch); None when rows are unknown."""
    if config.max_steps > 0:
        return config.max_steps
    if rows is None:
        return None
    return math.ceil(config.num_train_epochs * updates_per_epoch(config, rows, processes))


def lr_schedule(config, num_training_steps: int) -> list[float]:
    """The learning rate of every update 0..num_training_steps-1, from transformers' own `Trainer.create_scheduler`
    (so `warmup_steps` is read exactly as the run reads it)."""
    from types import SimpleNamespace

    import torch
    from transformers import Trainer

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=config.learning_rate)
    holder = SimpleNamespace(args=config, lr_scheduler=None, optimizer=optimizer)
    scheduler = Trainer.create_scheduler(holder, num_training_steps=num_training_steps, optimizer=optimizer)
    lrs = []
    for _ in range(num_training_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def kl_estimator(config) -> str:
    """The KL-to-reference term GRPOTrainer 1.16 adds to the loss (`_compute_loss`)."""
    if config.beta == 0:
        return "none (beta = 0)"
    if config.use_bias_correction_kl:
        return f"k3 x importance ratio (TRL's bias-corrected KL), beta {config.beta:g}"
    return f"k3 (plain), beta {config.beta:g}"


def rendered_system_message(messages: list[dict]) -> str | None:
    """The system message as a ChatML template (Qwen2.5's format) renders it, read back from the rendered text."""
    from intuitor.models import build_tiny_tokenizer

    text = build_tiny_tokenizer().apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    start = "<|im_start|>system\n"
    if start not in text:
        return None
    return text.split(start, 1)[1].split("<|im_end|>", 1)[0]


def effective_values(run_args: RunArguments, config, rows: list[dict] | None = None, processes: int | None = None):
    """What a run of this recipe receives. `rows`: the loaded training prompts (`load_train_dataset`); without
    them the system message is rendered from `system_prompt` (or the task's `prompt()`) and the run length is
    known only for `max_steps` runs. `processes` defaults to the recipe's `processes`, else WORLD_SIZE."""
    processes = processes or run_args.processes or int(os.environ.get("WORLD_SIZE", "1"))
    if rows:
        messages = list(rows[0]["prompt"])
    elif run_args.system_prompt is not None:
        messages = [{"role": "system", "content": run_args.system_prompt}, {"role": "user", "content": "…"}]
    else:
        task = train_task(run_args)
        messages = task.prompt("…") if hasattr(task, "prompt") else [{"role": "user", "content": "…"}]
    n = total_updates(config, len(rows) if rows is not None else None, processes)
    out = {
        "system_message": rendered_system_message(messages),
        "num_generations": config.num_generations,
        "processes": processes,
        "prompts_per_update": prompts_per_update(config, processes),
        "loss_type": config.loss_type,
        "kl": kl_estimator(config),
        "top_k": config.top_k,
        "temperature": config.temperature,
        "max_completion_length": config.max_completion_length,
        "vllm_importance_sampling_correction": config.vllm_importance_sampling_correction if config.use_vllm else None,
        "lr_scheduler_type": str(getattr(config.lr_scheduler_type, "value", config.lr_scheduler_type)),
        "updates": n,
        "warmup_steps": None if n is None else config.get_warmup_steps(n),
        "lr": None,
    }
    if n is not None:
        lrs = lr_schedule(config, n)
        ten = math.ceil(0.1 * n)
        out["lr"] = {step: lrs[step] for step in sorted({0, 1, ten, n // 2, n - 1}) if step < n}
    return out


def load_rows_if_local(run_args: RunArguments, rewards: list[str] | None = None) -> list[dict] | None:
    """The training prompts when the task's data is a local file (never a hub download, so `validate` stays
    offline and quick); None otherwise. With `rewards`, a gold reward on data without golds is refused here too."""
    task = train_task(run_args)
    local = task.resolve_path()
    if local is None or not Path(local).exists():
        return None
    return load_train_dataset(run_args, rewards).to_list()
