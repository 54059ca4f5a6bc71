"""The files of an evaluation's output folder: samples.jsonl (one row per response), results.json, and AlpacaEval's
model-outputs file.

samples.jsonl is appended to as responses are scored, so a killed run may leave it damaged: `read_samples` repairs
what a kill can do (a torn last row dropped with a warning, a last row without its newline completed) and refuses
anything else with the file and line. Rewrites are atomic (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path


SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
ALPACA_EVAL_FILE = "alpaca_eval_outputs.json"  # for `alpaca_eval --model_outputs` (the paper's LC win rate)


class EvaluationWarning(UserWarning):
    """Something a resume repaired or redid: a torn row dropped, stored responses re-scored against changed data."""


def read_samples(path: str | Path) -> list[dict]:
    """Rows of a samples.jsonl, repaired in place where a killed run left it damaged (see `_read_sample_lines`)."""
    return [row for _, row in _read_sample_lines(path)]


def _read_sample_lines(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, row) of every row of a samples.jsonl.

    A killed run can leave two kinds of damage, repaired here (the file is rewritten, complete rows kept): a torn
    partial last row, dropped with a warning; and a complete last row without its newline, which the next append
    would continue on the same line (rows found glued on one line are split). A malformed row anywhere else is an
    error naming file and line: it was not written by a killed run, so nothing is guessed."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    repaired = bool(text) and not text.endswith("\n")
    decoder = json.JSONDecoder()
    out: list[tuple[int, dict]] = []
    for lineno, line in enumerate(lines, 1):
        line, pos = line.strip(), 0
        while pos < len(line):
            try:
                row, pos = decoder.raw_decode(line, pos)
            except json.JSONDecodeError as e:
                if lineno != len(lines):
                    raise ValueError(
                        f"{path}:{lineno}: malformed sample row ({e.msg}); fix or delete the line"
                    ) from None
                warnings.warn(
                    f"{path}:{lineno}: dropped a torn partial row (a run killed mid-write): "
                    f"{_clip(line[pos:])}; it will be generated again",
                    EvaluationWarning,
                    stacklevel=3,
                )
                repaired = True
                break
            if not isinstance(row, dict):
                raise ValueError(  # noqa: TRY004 (a user's file: the CLI reports ValueError as one line)
                    f"{path}:{lineno}: expected a JSON object per line, found {type(row).__name__}"
                )
            if pos < len(line):
                repaired = True  # another row follows on the same line
            out.append((lineno, row))
            while pos < len(line) and line[pos].isspace():
                pos += 1
    if repaired:
        _write_rows(path, [row for _, row in out])
    return out


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Rewrite a samples.jsonl atomically (a crash leaves the old file or the new one, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _clip(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[:width] + "...")


def write_alpaca_eval_outputs(path: Path, rows: list[dict], samples: list[dict], generator: str) -> None:
    """alpaca_eval's model-outputs file of the first response (sample 0) to each evaluated AlpacaEval row."""
    from intuitor.tasks.alpaca_eval import to_alpaca_eval

    first = {r["id"]: r["response"] for r in samples if r["task"] == "alpaca_eval" and r["sample"] == 0}
    done = [row for row in rows if row["id"] in first]
    records = to_alpaca_eval(done, [first[row["id"]] for row in done], generator)
    path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_results(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _previous_tasks(out_dir: Path | None) -> dict[str, dict]:
    path = out_dir / RESULTS_FILE if out_dir is not None else None
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("tasks", {})
