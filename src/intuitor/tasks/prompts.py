"""Your own prompts: `--task prompts --dataset_path FILE`, label-free training on any pile of questions.

FILE is JSON lines (.jsonl, .jsonl.gz), a JSON array (.json), Parquet (.parquet) or CSV (.csv), or a folder of
.jsonl files; a name that is not a local path is a hub data set id, loaded as TRL's scripts load theirs,
`datasets.load_dataset(name, config, split=split)` (`--dataset_config`, `--dataset_train_split`). Each row holds its
prompt in `prompt` (`--prompt_field` names another column), either as text (it becomes the user turn) or as chat
messages, a list of {"role", "content"} objects (TRL's conversational format, kept as they are). An optional
`answer` column is the gold answer, used only by gold rewards (accuracy); without it the rows train label-free.
Every other column rides along to the rewards as a keyword argument, as TRL passes dataset columns.

There is no system prompt unless the messages carry one or `--system_prompt` sets one. Answers are read as the math
tasks read them (`MathTask`: last `\\boxed{}`, else the final stated answer), which the plurality vote, group
agreement and the accuracy reward use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from intuitor.tasks.base import gold_text, load_records, register_task, value_kind
from intuitor.tasks.math_train import MathTask


ROLES = ("system", "user", "assistant", "tool")
# names TRL gives reward keyword arguments itself (GRPOTrainer._calculate_rewards, TRL 1.16): a column of that name
# would collide with them at the first reward call
RESERVED_COLUMNS = (
    "prompts",
    "completions",
    "completion",
    "completion_ids",
    "trainer_state",
    "log_extra",
    "log_metric",
    "environments",
)
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".parquet", ".csv", ".txt")


def chat_prompt(value, field: str, where: str) -> list[dict[str, str]]:
    """A row's prompt as chat messages: text becomes one user turn; a list of messages is checked and kept.

    >>> chat_prompt("What is 2+2?", "prompt", "f:1")
    [{'role': 'user', 'content': 'What is 2+2?'}]
    >>> chat_prompt(3, "prompt", "f:1")
    Traceback (most recent call last):
    ...
    ValueError: f:1: field 'prompt' is a number (3), expected text or a list of chat messages
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}: field '{field}' is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or isinstance(value, bool):
        raise ValueError(f"{where}: field '{field}' is {value_kind(value)}, expected text or a list of chat messages")
    if not value:
        raise ValueError(f"{where}: field '{field}' is an empty list of messages")
    for j, m in enumerate(value):
        at = f"{where}: field '{field}' message {j + 1}"
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            raise ValueError(f'{at} is not a {{"role", "content"}} object')
        if m["role"] not in ROLES:
            raise ValueError(f"{at} has role {m['role']!r}, not one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{at} content is {value_kind(m['content'])}, expected text")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def check_columns(rows: list[dict], wheres: list[str], fixed: tuple[str, ...]) -> None:
    """Every extra column holds one kind of value (or null) in every row, as a data set column must; a row that
    lacks a column gets null. Says which row breaks it instead of pyarrow's cast error."""
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in fixed))
    for col in columns:
        if col in RESERVED_COLUMNS:
            where = next(w for r, w in zip(rows, wheres) if col in r)
            raise ValueError(f"{where}: column '{col}' is a name TRL passes to rewards itself; rename the column")
        first = None  # (kind, where) of the first non-null value
        for r, where in zip(rows, wheres):
            value = r.setdefault(col, None)
            if value is None:
                continue
            kind = value_kind(value).split(" (")[0]  # "a number", "text", "a list", ...
            if first is None:
                first = (kind, where)
            elif kind != first[0]:
                raise ValueError(
                    f"{where}: column '{col}' holds {kind} here but {first[0]} in {first[1]}: a column "
                    "holds one kind of value in every row"
                )


@register_task
class PromptsTask(MathTask):
    """Prompts from a file or hub data set of your own; golds optional."""

    name = "prompts"
    version = 1

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        prompt_field: str = "prompt",
        split: str = "train",
        config: str | None = None,
        timeout_s: float = 5.0,
    ):
        super().__init__(path, data_dir, timeout_s=timeout_s)
        self.system_prompt = None
        self.prompt_field, self.split, self.config = prompt_field, split, config
        if path and not Path(path).exists() and _HUB_ID.match(path) and not path.endswith(_FILE_SUFFIXES):
            self.path, self.hub_id = None, path  # a hub data set id: `load_records` loads it with `load_dataset`

    def prompt(self, problem: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": problem}]

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        if not self.path and not self.hub_id:
            raise FileNotFoundError(
                "task 'prompts' needs --dataset_path: a .jsonl, .json, .parquet or .csv file, or a hub data set id"
            )
        records = load_records(self, limit, split=self.split, hub_name=self.config)
        fixed = ("id", "prompt", "answer")
        rows, wheres = [], []
        for i, (where, r) in enumerate(records):
            if self.prompt_field not in r:
                hint = "" if self.prompt_field != "prompt" else "; --prompt_field names the column holding the prompt"
                raise ValueError(
                    f"{where}: row is missing field(s) {self.prompt_field} (columns: {', '.join(map(str, r))}){hint}"
                )
            if r[self.prompt_field] is None:
                raise ValueError(f"{where}: field '{self.prompt_field}' is null")
            row_id = r.get("id")
            extras = {k: v for k, v in r.items() if k not in fixed and k != self.prompt_field}
            rows.append(
                {
                    "id": str(row_id) if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else str(i),
                    "prompt": chat_prompt(r[self.prompt_field], self.prompt_field, where),
                    "answer": gold_text(r, "answer", where, required=self.golds_required),
                    **extras,
                }
            )
            wheres.append(where)
        check_columns(rows, wheres, fixed)
        return rows
