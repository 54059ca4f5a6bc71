"""The Task interface and its registry.

Rows are plain dicts. Every row a task yields has at least:
  - `id`: unique string within the task,
  - `prompt`: the chat messages (list of {"role", "content"}) given to the model (TRL's conversational format),
  - `answer`: the gold answer as the task stores it (string; may be "" where a task has none, e.g. AlpacaEval),
plus whatever the scorer needs (tests, code, options...). These columns ride along to reward functions.
"""

from __future__ import annotations

import difflib
import gzip
import json
from pathlib import Path
from typing import Any, ClassVar

TASKS: dict[str, type["Task"]] = {}


def register_task(cls: type["Task"]) -> type["Task"]:
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute `name`")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str, **kwargs) -> "Task":
    """Instantiate the task registered as `name`; unknown names get a did-you-mean."""
    from intuitor.tasks import load_all

    load_all()
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"Unknown task '{name}'.{hint} Known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSON-lines file (optionally .gz); a malformed line raises with file and line number."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON row ({e.msg})") from None
    return rows


def require_fields(row: dict, fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise ValueError(f"{where}: row is missing field(s) {', '.join(missing)}")


class Task:
    """One data set: `load` rows, `extract` an answer from a response, `score` a response against a row."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1  # bump whenever prompts or scoring change
    default_path: ClassVar[str] = ""  # relative to --data-dir, e.g. "gsm8k/test.jsonl"
    hub_id: ClassVar[str] = ""  # used when no local file is found
    metric: ClassVar[str] = "accuracy"

    def __init__(self, path: str | None = None, data_dir: str | None = None):
        self.path = path
        self.data_dir = data_dir

    def resolve_path(self) -> Path | None:
        if self.path:
            return Path(self.path)
        if self.data_dir and self.default_path:
            return Path(self.data_dir) / self.default_path
        return None

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def extract(self, response: str) -> str | None:
        raise NotImplementedError

    def score(self, response: str, row: dict[str, Any]) -> bool:
        raise NotImplementedError
