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


def read_records(path: str | Path, limit: int | None = None) -> list[tuple[str, dict]]:
    """(where, record) pairs of a local data file, `where` being "file:line" (or "file#index") for error messages.

    Reads JSON lines (.jsonl, optionally .gz), a JSON array (.json), or every *.jsonl / *.jsonl.gz of a folder
    (sorted by name). Stops after `limit` records. A malformed line raises ValueError with file and line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
        if not files:
            raise FileNotFoundError(f"no .jsonl files in folder {path}")
        out: list[tuple[str, dict]] = []
        for f in files:
            out += read_records(f, None if limit is None else limit - len(out))
            if limit is not None and len(out) >= limit:
                break
        return out
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array of records, found {type(data).__name__}")
        return [(f"{path}#{i}", r) for i, r in enumerate(data[:limit] if limit is not None else data)]
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON row ({e.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, found {type(record).__name__}")
            out.append((f"{path}:{lineno}", record))
    return out


def load_records(
    task: "Task", limit: int | None = None, *, split: str = "test", hub_name: str | None = None, **hub_kwargs
) -> list[tuple[str, dict]]:
    """(where, record) pairs of `task`'s raw data: its local file, or its hub data set when it has no local file.

    An explicit `task.path` must exist. A file expected under `task.data_dir` that is missing falls back to
    `datasets.load_dataset(task.hub_id, hub_name, split=split, **hub_kwargs)` when the task has a hub id; when
    that fails too (offline), or without a hub id, the error names the path and the --data-dir to pass.
    """
    path = task.resolve_path()
    if path is not None and path.exists():
        return read_records(path, limit)
    hint = (
        f"pass --data-dir with the folder that holds {task.default_path} (e.g. --data-dir ../shared/data)"
        if task.default_path
        else "pass the data file's path"
    )
    if task.path or not task.hub_id:
        where = path if path is not None else "(no path: no --data-dir given)"
        raise FileNotFoundError(f"{task.name}: data file not found: {where}; {hint}")
    try:
        from datasets import load_dataset

        data = load_dataset(task.hub_id, hub_name, split=split, **hub_kwargs)
    except Exception as e:  # offline, unknown id, no network: say what to pass instead
        local = f"no local file at {path}, and " if path is not None else ""
        raise FileNotFoundError(
            f"{task.name}: {local}the hub data set {task.hub_id} could not be loaded ({type(e).__name__}: {e}); {hint}"
        ) from e
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return [(f"{task.hub_id}[{split}]#{i}", dict(r)) for i, r in enumerate(data)]


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
    # strings that end generation, as the task's reference stops it (both backends; the text ends before them)
    stop_sequences: ClassVar[tuple[str, ...]] = ()

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
