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
import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any, ClassVar


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute `name`")
    TASKS[cls.name] = cls
    return cls


def load_all() -> dict[str, type[Task]]:
    """Import every module of the tasks package so that each registers its task. It lives here, not in the
    package's `__init__`, so that `get_task` needs no import back up into the package (no circle)."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name != "base":
            importlib.import_module(f"intuitor.tasks.{info.name}")
    return TASKS


def get_task(name: str, **kwargs) -> Task:
    """Instantiate the task registered as `name`; unknown names get a did-you-mean."""
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

    Reads JSON lines (.jsonl, optionally .gz), a JSON array (.json; JSON lines in a .json file too, as
    `datasets.load_dataset("json")` reads both), Parquet (.parquet, rows "file#index"), CSV (.csv, every cell text,
    an empty cell ""), or every *.jsonl / *.jsonl.gz of a folder (sorted by name). Stops after `limit` records. A
    malformed line, an element that is not an object, an unreadable file or a file without any row raises ValueError
    with the file (and line): one line, never a parser's traceback.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    if limit is not None and limit <= 0:
        return []
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
        out = _read_json(path)
    elif path.suffix == ".parquet":
        out = _read_parquet(path)
    elif path.suffix == ".csv":
        out = _read_csv(path)
    else:
        out = _read_json_lines(path, limit)
    if not out:
        raise ValueError(f"{path}: no rows (the file is empty)")
    for where, record in out:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, found {value_kind(record)}")
    return out[:limit] if limit is not None else out


def _read_json_lines(path: Path, limit: int | None = None) -> list[tuple[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                out.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON row ({e.msg})") from None
    return out


def _read_json(path: Path) -> list[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several values: JSON lines in a .json file
            return _read_json_lines(path)
        raise ValueError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of records, found {value_kind(data)}")
    return [(f"{path}#{i}", r) for i, r in enumerate(data)]


def _read_parquet(path: Path) -> list[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow's own message is long and names no field: one line instead
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path}: not a readable Parquet file ({type(e).__name__}: {first[:200]})") from None
    return [(f"{path}#{i}", r) for i, r in enumerate(rows)]


def _read_csv(path: Path) -> list[tuple[str, Any]]:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        out = []
        for record in reader:
            if None in record:  # more cells than the header has columns
                raise ValueError(f"{path}:{reader.line_num}: row has more cells than the header's columns")
            out.append((f"{path}:{reader.line_num}", {k: ("" if v is None else v) for k, v in record.items()}))
    return out


def value_kind(value) -> str:
    """A value's JSON kind for error messages: null, text, number, boolean, list, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def load_records(
    task: Task, limit: int | None = None, *, split: str = "test", hub_name: str | None = None, **hub_kwargs
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
        first = (str(e).strip().splitlines() or [""])[0][:300]  # one line: hub errors run to many
        raise FileNotFoundError(
            f"{task.name}: {local}the hub data set {task.hub_id} could not be loaded ({type(e).__name__}: {first}); "
            f"{hint}"
        ) from e
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return [(f"{task.hub_id}[{split}]#{i}", dict(r)) for i, r in enumerate(data)]


def require_fields(row: dict, fields: tuple[str, ...], where: str, text: tuple[str, ...] = ()) -> None:
    """Refuse a row that lacks one of `fields` or `text` or holds null in one; the `text` fields must hold a string.

    One line names the file:row and the field, so a null or a number never becomes the text "None" or "3" of a
    prompt.

    >>> require_fields({"problem": None}, ("problem",), "f.jsonl:3")
    Traceback (most recent call last):
    ...
    ValueError: f.jsonl:3: field 'problem' is null
    >>> require_fields({"problem": [1]}, ("problem",), "f.jsonl:3", text=("problem",))
    Traceback (most recent call last):
    ...
    ValueError: f.jsonl:3: field 'problem' is a list, expected text
    """
    missing = [f for f in fields + text if f not in row]
    if missing:
        raise ValueError(f"{where}: row is missing field(s) {', '.join(dict.fromkeys(missing))}")
    for f in fields + text:
        if row[f] is None:
            raise ValueError(f"{where}: field '{f}' is null")
    for f in text:
        if not isinstance(row[f], str):
            raise ValueError(f"{where}: field '{f}' is {value_kind(row[f])}, expected text")


def gold_text(row: dict, field: str, where: str, required: bool = True) -> str:
    """The gold answer of a row as text: a string, or a number written as text (`42` -> "42"). Without the field
    (or with ""), "" when golds are optional (a label-free training row), else an error; null, a boolean, a list or
    an object is refused either way, naming the field.

    >>> gold_text({"answer": 42}, "answer", "f:1"), gold_text({}, "answer", "f:1", required=False)
    ('42', '')
    """
    value = row.get(field, "")
    if value is None:
        raise ValueError(
            f"{where}: field '{field}' is null (leave the field out, or write \"\", for a row without a gold answer)"
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: field '{field}' is {value_kind(value)}, expected text or a number")
    value = str(value)
    if required and field not in row:
        raise ValueError(f"{where}: row is missing field(s) {field} (evaluation needs every row's gold answer)")
    if required and not value.strip():
        raise ValueError(f"{where}: field '{field}' is empty (evaluation needs every row's gold answer)")
    return value


class Task:
    """One data set: `load` rows, `extract` an answer from a response, `score` a response against a row."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1  # bump whenever prompts or scoring change
    default_path: ClassVar[str] = ""  # relative to --data-dir, e.g. "gsm8k/test.jsonl"
    hub_id: ClassVar[str] = ""  # used when no local file is found
    metric: ClassVar[str] = "accuracy"
    # strings that end generation, as the task's reference stops it (both backends; the text ends before them)
    stop_sequences: ClassVar[tuple[str, ...]] = ()
    # the columns of a loaded row that hold gold knowledge (answers, worked solutions): training withholds them from
    # the rewards unless a reward that uses golds is named (test-time training on an evaluation task stays label-free)
    gold_fields: ClassVar[tuple[str, ...]] = ("answer",)

    def __init__(self, path: str | None = None, data_dir: str | None = None):
        self.path = path
        self.data_dir = data_dir
        # Evaluation needs every row's gold; training does not (label-free rewards): `intuitor train` sets this to
        # False, and a row without a gold answer then loads with answer "".
        self.golds_required = True

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
