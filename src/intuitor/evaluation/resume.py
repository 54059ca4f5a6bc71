"""Resuming an evaluation: which stored rows of samples.jsonl a run may reuse, re-score or must refuse.

Re-running `evaluate` with the same OUT resumes: a (task, id, sample) already in samples.jsonl is not generated
again and new rows are appended. Each row records what produced it, so a stored row is reused only while that still
holds:
    - what makes the response (the model's name and its files' fingerprint, `model_fingerprint`; the resolved dtype;
      temperature, top_p, max_new_tokens, and the seed when sampling; the task's version; the prompt, `prompt_sha`):
      a change is refused with an error naming it, never mixed into one file (use another OUT, or the old setting);
    - what only judges it (the gold answer and the other scoring fields of the data row, `gold_sha`): the stored
      responses are re-scored against the new data, with a warning naming the task, the ids and the old and new
      gold; nothing is generated again.
The model fingerprint hashes the names, sizes and sampled bytes of the model's files (`model_fingerprint`): cheap,
and it sees a retrained or replaced model at the same path; an in-memory model has none (not checked). A killed run
may leave samples.jsonl with a torn last row (dropped, with a warning) or a last row without its newline (completed,
so the next append starts a line of its own): `intuitor.evaluation.files` repairs both. A resumed run says how many
of its responses were already done.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import defaultdict
from pathlib import Path

from intuitor.evaluation.files import RESULTS_FILE, SAMPLES_FILE, EvaluationWarning, _clip, _write_rows
from intuitor.evaluation.summary import summarise
from intuitor.evaluation.tasks import score_all


# Settings that change what a response is: a resumed run must match them (each row records them).
RESUME_KEYS = ("temperature", "top_p", "max_new_tokens", "seed")  # the seed only matters when sampling
ROW_KEYS = ("model", "model_fingerprint", "dtype", *RESUME_KEYS)


def _sha(value) -> str:
    """Short content hash of JSON-able data (the key of a prompt or a gold answer)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def row_keys(row: dict) -> dict[str, str]:
    """What a data row contributes to its responses: `prompt_sha` (what the model is asked; a change means the stored
    responses answer another question) and `gold_sha` (every other field but the id: the gold answer, the tests,
    the options; a change means they must be scored again)."""
    return {
        "prompt_sha": _sha(row.get("prompt")),
        "gold_sha": _sha({k: v for k, v in row.items() if k not in ("id", "prompt")}),
    }


MODEL_FILES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".json", ".jinja", ".model", ".txt")


def model_fingerprint(model) -> str | None:
    """A cheap content fingerprint of a model on disk: sha256 over each file's name, size and 16 sampled 64 KiB
    blocks (the whole file below 1 MiB; weights, config, tokenizer and chat template files of a folder's top level).
    A retrained or replaced model changes nearly every block; a copy keeps the fingerprint (no mtimes).

    A hub id resolves to its cached snapshot's commit (`hub:<sha>`); an in-memory model or a name that is neither a
    path nor cached gives None (not checked). A change confined to bytes between the samples would go unseen."""
    if not isinstance(model, (str, Path)):
        return None
    from intuitor.models import resolve_model_path

    try:
        path = Path(resolve_model_path(str(model))).expanduser()
    except FileNotFoundError:
        return None
    if not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(model), "config.json")
        except (ImportError, ValueError):  # no hub library; not a valid repo id (HFValidationError)
            return None
        return f"hub:{Path(cached).parent.name}" if isinstance(cached, str) else None
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILES)
    digest = hashlib.sha256()
    block, blocks = 1 << 16, 16
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.name}|{size}|".encode())
        with open(f, "rb") as fh:
            if size <= blocks * block:
                digest.update(fh.read())
                continue
            for i in range(blocks):
                fh.seek((size - block) * i // (blocks - 1))
                digest.update(fh.read(block))
    return digest.hexdigest()[:16]


def _check_resume(out_dir: Path, config: dict, lines: list[tuple[int, dict]], tasks: dict, data: dict) -> list[dict]:
    """The stored rows this run may reuse: refuse rows whose response another model, dtype, setting, task version
    or prompt made (naming what changed); re-score rows whose gold changed in the data. Returns all rows."""
    samples = out_dir / SAMPLES_FILE
    fix = "use another --output-dir"
    results = out_dir / RESULTS_FILE
    old = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
    if old and old.get("model") != config["model"]:
        raise ValueError(
            f"{results} holds results of model '{old.get('model')}', not '{config['model']}': {fix} for another model"
        )
    # Rows written before rows recorded their settings: the settings results.json recorded stand for them.
    recorded = {k: v for k, v in old.get("config", {}).items() if k in ROW_KEYS and v not in (None, "auto")}
    for lineno, row in lines:
        for key in ROW_KEYS:
            before, now = row.get(key, recorded.get(key)), config.get(key)
            if before is None or now is None or before == now or (key == "seed" and not config["temperature"]):
                continue
            where = f"{samples}:{lineno}" if key in row else str(results)
            if key == "model":
                raise ValueError(f"{where} holds responses of model '{before}', not '{now}': {fix}")
            if key == "model_fingerprint":
                raise ValueError(
                    f"{where}: the model at {config['model']} changed since these responses were generated (files' "
                    f"fingerprint {before}, now {now}): they are not this model's; {fix}, or delete {samples} and "
                    f"{results} to start over"
                )
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{where} was written with {key}={before} but this run has {key}={now}: resuming would mix both in "
                f"one samples.jsonl; {fix}, or {flag} {before} to resume"
            )
    current = {(t, str(r["id"])): r for t, rows in data.items() for r in rows}
    stale: dict[str, list[tuple[int, dict, dict]]] = defaultdict(list)
    for lineno, row in lines:
        task = tasks.get(row["task"])
        if task is None:
            continue  # a task of an earlier run that this run does not touch
        if row.get("task_version") != task.version:
            raise ValueError(
                f"{samples}:{lineno} holds {row['task']} responses scored by version {row.get('task_version')} of "
                f"the task, which is now version {task.version}: {fix}"
            )
        data_row = current.get((row["task"], str(row["id"])))
        if data_row is None:
            continue  # beyond this run's --limit
        keys = row_keys(data_row)
        if "prompt_sha" in row and row["prompt_sha"] != keys["prompt_sha"]:
            raise ValueError(
                f"{samples}:{lineno}: the prompt of {row['task']} id {row['id']} changed in the data since it was "
                f"answered, so the stored responses answer another question: {fix}, or restore the data"
            )
        gold = json.loads(json.dumps(data_row.get("answer"), default=str))
        if row.get("gold_sha", keys["gold_sha"]) != keys["gold_sha"] or row.get("gold") != gold:
            stale[row["task"]].append((lineno, row, data_row))
    rows = [row for _, row in lines]
    if stale:
        _rescore(samples, stale, tasks)
        _write_rows(samples, rows)
    return rows


def _rescore(samples: Path, stale: dict[str, list[tuple[int, dict, dict]]], tasks: dict) -> None:
    """Score stored responses again against their changed data rows (the rows are updated in place); say so."""
    for tname, items in stale.items():
        verdicts = score_all(tasks[tname], [row["response"] for _, row, _ in items], [d for _, _, d in items])
        changed = {}
        for (_, row, data_row), correct in zip(items, verdicts, strict=True):
            new_gold = json.loads(json.dumps(data_row.get("answer"), default=str))
            changed.setdefault(row["id"], (row.get("gold"), new_gold))
            row.update(gold=new_gold, correct=bool(correct), **row_keys(data_row))
        first_id, (before, after) = next(iter(changed.items()))
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        what = f"gold {_clip(str(before), 30)} -> {_clip(str(after), 30)}" if before != after else "its scoring fields"
        warnings.warn(
            f"{samples}: {tname}: the data of {len(changed)} problem(s) changed since they were answered (id "
            f"{first_id}: {what}{more}): re-scored their {len(items)} stored response(s) without generating again",
            EvaluationWarning,
            stacklevel=3,
        )


def _summarise_keeping(rows: list[dict], tasks: dict, previous: dict[str, dict]) -> dict[str, dict]:
    """Summarise all rows; a task of an earlier run that this run did not touch keeps its earlier entry (it was
    computed with that run's task options, e.g. AlpacaEval's judge, which this run may not have)."""
    fresh = summarise(rows, tasks)
    for name, entry in fresh.items():
        old = previous.get(name)
        if name not in tasks and old and old.get("num_samples") == entry["num_samples"]:
            fresh[name] = old
    return fresh
