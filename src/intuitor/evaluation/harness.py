"""The evaluation harness: prompts -> responses -> scores and self-certainty, as `samples.jsonl` + `results.json`.

`evaluate(model, tasks, ...)` loads each task's rows, renders each prompt with the tokenizer's chat template
(`intuitor.generation.render_prompt`), generates K responses per prompt with a backend (`hf` or `vllm`, see
`intuitor.generation`), scores each with the task's own `extract`/`score`, and measures each response's
self-certainty: with `hf`, recorded during generation from the logits `generate` computes anyway (the trainer's
recorder, `HFGenerator.last_statistics`: no second forward pass); with `vllm`, by a batched
`intuitor.certainty.response_statistics` pass of an HF copy of the model. Prompts of different tasks share
`generate` calls when they need the same number of samples and have the same stop strings. On CPU, torch uses as
many threads as the process has CPUs (its affinity mask, capped by a cgroup quota; `threads=` or OMP_NUM_THREADS
override), restored afterwards. Every response becomes one row of `OUT/samples.jsonl`:

    task, id, sample (index among K), prompt (rendered text), response, answer (extracted), gold, correct (bool),
    self_certainty (float), entropy (mean token entropy), num_tokens (EOS included), truncated (hit
    max_new_tokens), model, task_version

`OUT/results.json` is recomputed from *all* rows of samples.jsonl after every task:
`{"model", "config": {... resolved settings and library versions}, "tasks": {task: {"score", "n", "metric",
"version", "num_samples", "self_certainty", "pass@k"...}}}`. `score` is the mean correctness over all responses
(accuracy for K=1, the unbiased pass@1 for K>1); `pass@k` (Chen et al. 2021) is reported for k = 1, 2, 4, ... and K
when K > 1; a task may add or override entries with an `aggregate(rows) -> dict` method.

With alpaca_eval among the tasks, `OUT/alpaca_eval_outputs.json` holds the first response to each instruction in
alpaca_eval's model-outputs format: `alpaca_eval --model_outputs OUT/alpaca_eval_outputs.json` gives the paper's
length-controlled win rate (the optional built-in judge gives a raw win rate only).

Re-running with the same OUT resumes: rows already in samples.jsonl are reused while what produced them still
holds (see `intuitor.evaluation.resume`); Ctrl-C stops with `EvaluationInterrupted` ("interrupted: N of M kept;
rerun the same command to resume").

Departures from the paper: the authors evaluate with their own scripts (lighteval-style for math, the official
LiveCodeBench/CRUXEval harnesses for code, AlpacaEval's GPT-4 judge); here every benchmark goes through one loop
and the task files decide extraction and scoring. Greedy decoding (K=1, temperature 0) is the default, as in the
paper's tables.

This module is the loop (`evaluate`, `_run`); its neighbours each hold one concern: `files` (samples.jsonl,
results.json), `resume` (which stored rows are reused), `tasks` (building tasks, scoring on threads), `loading`
(device, dtype, models) and `summary` (score, pass@k, the table). Their public names are importable from here too.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

from intuitor.evaluation.files import (
    ALPACA_EVAL_FILE,
    RESULTS_FILE,
    SAMPLES_FILE,
    EvaluationWarning,
    _previous_tasks,
    _read_sample_lines,
    read_samples,
    write_alpaca_eval_outputs,
    write_results,
)
from intuitor.evaluation.loading import DTYPES, _model_name, _prepare, _resolve_device, _resolve_dtype
from intuitor.evaluation.resume import (
    MODEL_FILES,
    RESUME_KEYS,
    ROW_KEYS,
    _check_resume,
    _summarise_keeping,
    model_fingerprint,
    row_keys,
)
from intuitor.evaluation.summary import (
    PAPER_COLUMNS,
    flat_metrics,
    pass_at_k,
    pass_at_k_values,
    print_results,
    results_table,
    summarise,
    summarise_task,
)
from intuitor.evaluation.tasks import check_unique_ids, make_task, parse_tasks, score_all
from intuitor.generation.base import check_backend, check_sampling, render_prompt


__all__ = [  # what callers import from here (the CLI, the demo, scripts, tests)
    "ALPACA_EVAL_FILE",
    "DTYPES",
    "MODEL_FILES",
    "PAPER_COLUMNS",
    "RESULTS_FILE",
    "RESUME_KEYS",
    "ROW_KEYS",
    "SAMPLES_FILE",
    "EvaluationInterrupted",
    "EvaluationWarning",
    "check_unique_ids",
    "default_threads",
    "evaluate",
    "flat_metrics",
    "make_task",
    "model_fingerprint",
    "parse_tasks",
    "pass_at_k",
    "pass_at_k_values",
    "print_results",
    "read_samples",
    "results_table",
    "row_keys",
    "score_all",
    "summarise",
    "summarise_task",
    "write_alpaca_eval_outputs",
    "write_results",
]


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C during `evaluate`: `kept` of `total` responses are in samples.jsonl; the same call resumes."""

    def __init__(self, kept: int, total: int, saved: bool = True):
        self.kept, self.total = kept, total
        tail = "rerun the same command to resume" if saved else "nothing saved (no output_dir)"
        super().__init__(f"interrupted: {kept} of {total} {'kept' if saved else 'done'}; {tail}")


def _versions() -> dict[str, str]:
    from intuitor import versions

    # The packages a results.json has always recorded: resuming compares them, so a new key would refuse old runs.
    return {pkg: v for pkg, v in versions().items() if pkg in ("intuitor", "transformers", "trl", "torch", "vllm")}


# ------------------------------------------------------------------------------------------------------ evaluate


def evaluate(
    model,
    tasks,
    *,
    data_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    limit: int | None = None,
    samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    seed: int = 0,
    backend: str = "hf",
    dtype: str | None = "auto",
    device: str | None = None,
    task_paths: dict[str, str] | None = None,
    task_options: dict[str, dict] | None = None,
    judge_url: str | None = None,
    judge_model: str | None = None,
    gpu_memory_utilization: float = 0.6,
    generator=None,
    model_name: str | None = None,
    progress: bool = True,
    return_samples: bool = False,
    threads: int | None = None,
) -> dict:
    """Evaluate `model` on `tasks`; write OUT/samples.jsonl and OUT/results.json when `output_dir` is given.

    Args:
        model: a hub id, folder, GGUF file, checkpoint or `smollm2-gguf`; or an already loaded (model, tokenizer)
            pair (used as is: not moved, not cast).
        tasks: registered task names ('gsm8k,math500' or a list) or Task objects.
        samples, temperature: K responses per prompt; K > 1 needs temperature > 0. Defaults: greedy, K = 1.
        batch_size: sequences per `generate` call (hf) and per self-certainty forward.
        seed: each generate call is seeded with seed + a hash of its first (task, id, sample): reproducible,
            also across resumes.
        task_paths: {task: data file} overriding the file under `data_dir`.
        task_options / judge_url / judge_model: extra constructor arguments of tasks; the judge goes to alpaca_eval.
        generator: a ready `intuitor.generation.Generator` (tests; custom backends); `model` then only scores.
        return_samples: also return the rows of this output (all of samples.jsonl) under the key "samples".
        threads: torch CPU threads while evaluating on CPU (default: `default_threads()`, unless OMP_NUM_THREADS
            is set); restored afterwards.

    Returns the content of results.json.
    """
    check_sampling(samples, temperature, max_new_tokens, top_p)
    check_backend(backend)
    if dtype not in (None, *DTYPES):
        raise ValueError(f"dtype={dtype}: expected one of {', '.join(DTYPES)}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads}: must be >= 1 (or omitted for the default)")
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: must be >= 1 (or omitted for all rows)")
    name = _model_name(model, model_name)
    task_paths = dict(task_paths or {})
    options = {k: dict(v) for k, v in (task_options or {}).items()}
    if judge_url or judge_model:
        options.setdefault("alpaca_eval", {}).update(judge_url=judge_url, judge_model=judge_model)

    # Everything that can fail on user input fails here, before a model is loaded.
    task_objs = {}
    for spec in parse_tasks(tasks):
        t = make_task(spec, data_dir, task_paths.get(spec if isinstance(spec, str) else spec.name), options.get(spec))
        task_objs[t.name] = t
    unknown = set(task_paths) - set(task_objs)
    if unknown:
        raise ValueError(f"--task-path given for {', '.join(sorted(unknown))}, which is not among --tasks")
    task_rows = {tname: t.load(limit) for tname, t in task_objs.items()}
    for tname, rows in task_rows.items():
        check_unique_ids(task_objs[tname], rows)
    if isinstance(model, (str, Path)):  # resolved now: rows record the dtype that made them (cheap, nothing loaded)
        device = _resolve_device(device)
        dtype = _resolve_dtype(dtype, device)
    else:
        dtype = str(next(model[0].parameters()).dtype).replace("torch.", "")

    config = {
        "model": name,
        "tasks": list(task_objs),
        "backend": backend if generator is None else getattr(generator, "name", type(generator).__name__),
        "data_dir": str(data_dir) if data_dir else None,
        "task_paths": task_paths,
        "limit": limit,
        "samples": samples,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "batch_size": batch_size,
        "dtype": dtype,
        "device": device,
        "model_fingerprint": model_fingerprint(model),
        "judge_model": judge_model,
        "judge_url": judge_url,
        "versions": _versions(),
    }
    out_dir = Path(output_dir) if output_dir is not None else None
    existing: list[dict] = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        existing = _check_resume(out_dir, config, _read_sample_lines(out_dir / SAMPLES_FILE), task_objs, task_rows)
    done = {(r["task"], str(r["id"]), int(r["sample"])) for r in existing}
    previous = _previous_tasks(out_dir)

    # (task, row, missing sample indices) of every prompt that still needs responses; per task, how many of its
    # responses this run asks for and how many of them are already stored.
    todo = []
    totals = {tname: len(rows) * samples for tname, rows in task_rows.items()}
    already = dict.fromkeys(task_rows, 0)
    for tname, rows in task_rows.items():
        for row in rows:
            missing = [k for k in range(samples) if (tname, str(row["id"]), k) not in done]
            already[tname] += samples - len(missing)
            if missing:
                todo.append((tname, row, missing))
    if progress and out_dir is not None and any(already.values()):
        _say(
            f"{sum(already.values())} of {sum(totals.values())} responses already done in {out_dir / SAMPLES_FILE}"
            + (f"; generating the other {sum(totals.values()) - sum(already.values())}" if todo else "")
        )

    new_rows: list[dict] = []
    if todo:
        try:
            scorer, tokenizer, generator, config = _prepare(
                model, generator, backend, batch_size, seed, dtype, device, gpu_memory_utilization, config
            )
        except KeyboardInterrupt:  # while loading the model
            raise EvaluationInterrupted(sum(already.values()), sum(totals.values()), out_dir is not None) from None
        results_path = out_dir / RESULTS_FILE if out_dir is not None else None
        if results_path is not None:  # record the settings now, so that a crash leaves them for the resume check
            partial = _summarise_keeping(existing, task_objs, previous)
            write_results(results_path, {"model": name, "config": config, "tasks": partial})
        was_training = scorer.training  # an in-memory model may be mid-training: give it back as it came
        scorer.eval()
        try:
            with _cpu_threads(threads, config["device"]):
                _run(
                    todo,
                    task_objs,
                    scorer,
                    tokenizer,
                    generator,
                    config,
                    samples,
                    temperature,
                    top_p,
                    max_new_tokens,
                    batch_size,
                    seed,
                    out_dir,
                    progress,
                    new_rows,
                    totals,
                    already,
                )
        except KeyboardInterrupt:
            kept = sum(already.values()) + len(new_rows)
            raise EvaluationInterrupted(kept, sum(totals.values()), saved=out_dir is not None) from None
        finally:
            scorer.train(was_training)
    all_rows = existing + new_rows
    results = {"model": name, "config": config, "tasks": _summarise_keeping(all_rows, task_objs, previous)}
    if out_dir is not None:
        write_results(out_dir / RESULTS_FILE, results)
        if "alpaca_eval" in task_rows:
            write_alpaca_eval_outputs(out_dir / ALPACA_EVAL_FILE, task_rows["alpaca_eval"], all_rows, name)
    if return_samples:
        return {**results, "samples": all_rows}
    return results


def default_threads() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a container's `--cpus`).

    torch's own default is the machine's physical cores, which oversubscribes a container or a job pinned to a
    few cores (every OpenMP barrier then waits for a descheduled thread)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


@contextmanager
def _cpu_threads(threads: int | None, device: str | None):
    import torch

    on_cpu = str(device or "cpu").startswith("cpu")
    if threads is None and (not on_cpu or os.environ.get("OMP_NUM_THREADS")):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads or min(before, default_threads()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _chunk_seed(seed: int, task: str, row_id: str, sample: int) -> int:
    return (seed + zlib.crc32(f"{task}/{row_id}/{sample}".encode())) % (2**31)


def _run(
    todo,
    tasks,
    scorer,
    tokenizer,
    generator,
    config,
    samples,
    temperature,
    top_p,
    max_new_tokens,
    batch_size,
    seed,
    out_dir,
    progress,
    new_rows: list[dict],
    totals: dict[str, int],
    already: dict[str, int],
):
    """Generate, score and append the rows of `todo`; `new_rows` collects them as they are written (so that an
    interrupted run knows how many it kept). Each task's bar counts that task's own responses, stored ones too."""
    from intuitor.certainty import response_statistics
    from intuitor.generation.hf import eos_token_ids

    eos_ids = set(eos_token_ids(scorer, tokenizer))
    # Prompts that miss the same number of samples and share the stop strings share generate calls, across tasks;
    # chunks keep appends (and resumes) fine.
    groups: dict[tuple[int, tuple[str, ...]], list] = defaultdict(list)
    for tname, row, missing in todo:
        stops = tuple(getattr(tasks[tname], "stop_sequences", ()) or ())
        groups[(len(missing), stops)].append((tname, row, missing))
    for items in groups.values():  # similar lengths share a batch: less padding (prompt text length as a proxy)
        items.sort(key=lambda item: len(str(item[1]["prompt"])))
    per_call = max(1, generator.chunk_for(temperature) // samples)
    sink = open(out_dir / SAMPLES_FILE, "a", encoding="utf-8") if out_dir is not None else None
    bar = _progress(progress)
    bars = {t: bar.add_task(t, total=n, completed=already[t]) for t, n in totals.items()} if bar else {}
    # what produced these rows (see the module docstring): a resume compares them
    produced_by = {key: config.get(key) for key in ROW_KEYS}
    try:
        if bar:
            bar.start()
        for (m, stops), items in groups.items():
            for start in range(0, len(items), per_call):
                chunk = items[start : start + per_call]
                rendered = [render_prompt(tokenizer, row["prompt"]) for _, row, _ in chunk]
                first_task, first_row, first_missing = chunk[0]
                completions = generator.generate(
                    [ids for _, ids in rendered],
                    n=m,
                    temperature=temperature,
                    max_new_tokens=max_new_tokens,
                    seed=_chunk_seed(seed, first_task, str(first_row["id"]), first_missing[0]),
                    top_p=top_p,
                    # the tasks' stop strings (lighteval's and MMLU-Pro's "Question:"), only when they have some
                    **({"stop": list(stops)} if stops else {}),
                )
                if len(completions) != len(chunk) * m:
                    raise RuntimeError(f"backend returned {len(completions)} completions for {len(chunk)} x {m}")
                stats = _recorded_statistics(generator, scorer, len(completions))
                if stats is None:  # vLLM or a custom backend: one batched pass of the HF model
                    prompt_ids = [rendered[j // m][1] for j in range(len(completions))]
                    stats = response_statistics(
                        scorer, prompt_ids, [c.ids for c in completions], batch_size=batch_size
                    )  # self_certainty, entropy: float32 [len(chunk) * m]
                correct = [False] * len(completions)
                for tname in dict.fromkeys(t for t, _, _ in chunk):  # each task scores its own responses
                    js = [j for j in range(len(completions)) if chunk[j // m][0] == tname]
                    responses, data_rows = [completions[j].text for j in js], [chunk[j // m][1] for j in js]
                    for j, c in zip(js, score_all(tasks[tname], responses, data_rows), strict=True):
                        correct[j] = c
                chunk_rows = []
                for j, comp in enumerate(completions):
                    tname, row, missing = chunk[j // m]
                    task = tasks[tname]
                    ids = list(comp.ids)
                    chunk_rows.append(
                        {
                            "task": tname,
                            "id": str(row["id"]),
                            "sample": int(missing[j % m]),
                            "prompt": rendered[j // m][0],
                            "response": comp.text,
                            "answer": task.extract(comp.text),
                            "gold": row.get("answer"),
                            "correct": correct[j],
                            "self_certainty": float(stats.self_certainty[j]),
                            "entropy": float(stats.entropy[j]),
                            "num_tokens": len(ids),
                            "truncated": len(ids) >= max_new_tokens and not (ids and ids[-1] in eos_ids),
                            **produced_by,
                            "task_version": task.version,
                            "metric": task.metric,
                            **row_keys(row),
                        }
                    )
                if sink is not None:
                    sink.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk_rows))
                    sink.flush()
                new_rows.extend(chunk_rows)
                if bar:
                    for t, n in Counter(r["task"] for r in chunk_rows).items():
                        bar.advance(bars[t], n)
    finally:
        if bar:
            bar.stop()
        if sink is not None:
            sink.close()


def _recorded_statistics(generator, scorer, n: int):
    """The statistics the backend recorded while generating (the HF backend: `HFGenerator.last_statistics`), when
    they come from the scoring model itself and cover these `n` completions; else None (score them in a pass)."""
    stats = getattr(generator, "last_statistics", None)
    if stats is None or getattr(generator, "model", None) is not scorer or stats.self_certainty.numel() != n:
        return None
    return stats


def _say(message: str) -> None:
    """A one-line progress message on stderr (beside the bars; stdout keeps the results)."""
    from rich.console import Console

    Console(stderr=True).print(message, highlight=False, soft_wrap=True)


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
