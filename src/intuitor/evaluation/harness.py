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

Re-running with the same OUT resumes: a (task, id, sample) already in samples.jsonl is not generated again, new
rows are appended, and settings that would change responses (model, temperature, top_p, max_new_tokens) or a task
whose version changed are refused with an error rather than mixed into one file.

Departures from the paper: the authors evaluate with their own scripts (lighteval-style for math, the official
LiveCodeBench/CRUXEval harnesses for code, AlpacaEval's GPT-4 judge); here every benchmark goes through one loop
and the task files decide extraction and scoring. Greedy decoding (K=1, temperature 0) is the default, as in the
paper's tables.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import zlib
from contextlib import contextmanager
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from intuitor.generation.base import check_backend, check_sampling, render_prompt

SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
ALPACA_EVAL_FILE = "alpaca_eval_outputs.json"  # for `alpaca_eval --model_outputs` (the paper's LC win rate)

# The paper's Table 1 columns, in its order; other tasks follow these in the printed table.
PAPER_COLUMNS = {
    "gsm8k": "GSM8K",
    "math500": "MATH500",
    "livecodebench": "LCB",
    "cruxeval": "CRUXEval",
    "mmlu_pro": "MMLU-Pro",
    "alpaca_eval": "AlpacaEval",
}

# Settings that change what a response is: a resumed run must match them.
RESUME_KEYS = ("temperature", "top_p", "max_new_tokens")


# ----------------------------------------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with n samples of which c are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), the chance that k of the n samples drawn without replacement hold a correct one.

    >>> pass_at_k(5, 2, 1), pass_at_k(5, 2, 2), pass_at_k(4, 0, 3), pass_at_k(4, 2, 3)
    (0.4, 0.7, 0.0, 1.0)
    """
    if not 0 <= c <= n:
        raise ValueError(f"c={c} correct out of n={n} samples: need 0 <= c <= n")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n={n} samples per problem")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_values(max_k: int) -> list[int]:
    """The k reported for K samples: powers of two up to K, and K itself.

    >>> pass_at_k_values(1), pass_at_k_values(8), pass_at_k_values(6)
    ([1], [1, 2, 4, 8], [1, 2, 4, 6])
    """
    ks = [1 << i for i in range(max_k.bit_length()) if 1 << i <= max_k]
    return ks + ([max_k] if ks[-1] != max_k else [])


def summarise_task(rows: Sequence[dict], task=None) -> dict[str, Any]:
    """Metrics of one task from its sample rows (see the module docstring); `task.aggregate(rows)`, when the task
    defines it, adds or overrides entries."""
    by_id: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_id[str(r["id"])].append(bool(r["correct"]))
    per_problem = [sum(v) / len(v) for v in by_id.values()]
    out: dict[str, Any] = {
        "score": sum(per_problem) / len(per_problem) if per_problem else 0.0,
        "n": len(by_id),
        "num_samples": len(rows),
        "metric": getattr(task, "metric", None) or (rows[0].get("metric") if rows else None) or "accuracy",
        "version": rows[0].get("task_version") if rows else getattr(task, "version", None),
        "self_certainty": sum(float(r["self_certainty"]) for r in rows) / len(rows) if rows else 0.0,
    }
    min_n = min((len(v) for v in by_id.values()), default=0)
    if max((len(v) for v in by_id.values()), default=0) > 1:
        for k in pass_at_k_values(min_n):
            out[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in by_id.values()) / len(by_id)
    if task is not None and callable(getattr(task, "aggregate", None)):
        out.update(task.aggregate(list(rows)))
    return out


def summarise(rows: Iterable[dict], tasks: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per-task metrics of all rows, tasks in the paper's column order first."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    tasks = dict(tasks or {})
    for name in by_task:
        if name not in tasks:
            tasks[name] = _task_or_none(name)
    names = sorted(by_task, key=_column_order)
    return {name: summarise_task(by_task[name], tasks.get(name)) for name in names}


def flat_metrics(results: dict, prefix: str = "eval") -> dict[str, float]:
    """Namespaced scalar metrics of a results dict, for loggers: `eval/<task>/score`, `eval/<task>/pass@4`,
    `eval/<task>/self_certainty`...

    >>> flat_metrics({"tasks": {"gsm8k": {"score": 0.5, "n": 2, "metric": "accuracy", "pass@2": 0.75}}})
    {'eval/gsm8k/score': 0.5, 'eval/gsm8k/n': 2, 'eval/gsm8k/pass@2': 0.75}
    """
    return {
        f"{prefix}/{task}/{key}": value
        for task, metrics in results.get("tasks", {}).items()
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "version"
    }


def _column_order(name: str) -> tuple[int, str]:
    order = list(PAPER_COLUMNS)
    return (order.index(name), name) if name in order else (len(order), name)


def _task_or_none(name: str):
    from intuitor.tasks import get_task

    try:
        return get_task(name)
    except Exception:  # a task of an older run that no longer exists: summarise it generically
        return None


# --------------------------------------------------------------------------------------------------------- files


def read_samples(path: str | Path) -> list[dict]:
    """Rows of a samples.jsonl. A torn last line (a run killed mid-write) is dropped from the file; a malformed
    line elsewhere is an error with file and line."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if lineno == len(lines):
                path.write_text("".join(lines[:-1]), encoding="utf-8")
                break
            raise ValueError(f"{path}:{lineno}: malformed sample row ({e.msg}); fix or delete the line") from None
    return rows


def _check_resume(out_dir: Path, config: dict, model_name: str, rows: list[dict], tasks: dict) -> None:
    """Refuse to mix rows made under other settings, another model or another task version into one file."""
    results = out_dir / RESULTS_FILE
    if results.exists():
        old = json.loads(results.read_text(encoding="utf-8"))
        if old.get("model") != model_name:
            raise ValueError(
                f"{results} holds results of model '{old.get('model')}', not '{model_name}': "
                "use another --output-dir for another model"
            )
        for key in RESUME_KEYS:
            before = old.get("config", {}).get(key)
            if before is not None and before != config[key]:
                raise ValueError(
                    f"{out_dir} was written with {key}={before} but this run asks {key}={config[key]}: resuming "
                    f"would mix both in one samples.jsonl; use another --output-dir or {key}={before}"
                )
    for r in rows:
        if r.get("model") != model_name:
            raise ValueError(
                f"{out_dir / SAMPLES_FILE} holds responses of model '{r.get('model')}', not '{model_name}': "
                "use another --output-dir"
            )
        task = tasks.get(r["task"])
        if task is not None and r.get("task_version") != task.version:
            raise ValueError(
                f"{out_dir / SAMPLES_FILE} holds {r['task']} responses scored by version {r.get('task_version')} "
                f"of the task, which is now version {task.version}: use another --output-dir"
            )


def write_alpaca_eval_outputs(path: Path, rows: list[dict], samples: list[dict], generator: str) -> None:
    """alpaca_eval's model-outputs file of the first response (sample 0) to each evaluated AlpacaEval row."""
    from intuitor.tasks.alpaca_eval import to_alpaca_eval

    first = {r["id"]: r["response"] for r in samples if r["task"] == "alpaca_eval" and r["sample"] == 0}
    done = [row for row in rows if row["id"] in first]
    records = to_alpaca_eval(done, [first[row["id"]] for row in done], generator)
    path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    from intuitor import versions

    # The packages a results.json has always recorded: resuming compares them, so a new key would refuse old runs.
    return {pkg: v for pkg, v in versions().items() if pkg in ("intuitor", "transformers", "trl", "torch", "vllm")}


def write_results(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------------------- tasks


def make_task(spec, data_dir=None, path: str | None = None, options: dict | None = None):
    """A Task from a registered name (did-you-mean on a typo) or a Task object as is. `options` are passed to the
    task's constructor when it accepts them (e.g. the AlpacaEval judge), ignored otherwise."""
    from intuitor.tasks import TASKS, get_task, load_all

    if not isinstance(spec, str):
        return spec
    load_all()
    kwargs: dict[str, Any] = {"data_dir": str(data_dir) if data_dir else None}
    if path:
        kwargs["path"] = str(path)
    cls = TASKS.get(spec)
    if cls is not None and options:
        params = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs.update({k: v for k, v in options.items() if v is not None and (takes_any or k in params)})
    return get_task(spec, **kwargs)


def parse_tasks(tasks) -> list:
    """'gsm8k,math500' or a list of names / Task objects -> a list without duplicates."""
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    out, seen = [], set()
    for t in tasks:
        key = t if isinstance(t, str) else t.name
        if key not in seen:
            seen.add(key)
            out.append(t)
    if not out:
        raise ValueError("no task given: pass --tasks, e.g. --tasks gsm8k,math500")
    return out


# -------------------------------------------------------------------------------------------------------- models


def _resolve_device(device: str | None) -> str:
    import torch

    if device and device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device} but no CUDA GPU is visible here: use --device cpu (or leave it out)")
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


DTYPES = ("auto", "float32", "bfloat16", "float16")


def _resolve_dtype(dtype: str | None, device: str) -> str:
    if dtype in (None, "auto"):
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


def _model_name(model, model_name: str | None) -> str:
    if model_name:
        return model_name
    if isinstance(model, (str, Path)):
        return str(model)
    return getattr(getattr(model[0], "config", None), "name_or_path", "") or "in-memory"


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
        "judge_model": judge_model,
        "judge_url": judge_url,
        "versions": _versions(),
    }
    out_dir = Path(output_dir) if output_dir is not None else None
    existing: list[dict] = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        existing = read_samples(out_dir / SAMPLES_FILE)
        _check_resume(out_dir, config, name, existing, task_objs)
    done = {(r["task"], str(r["id"]), int(r["sample"])) for r in existing}
    previous = _previous_tasks(out_dir)

    # (task, row, missing sample indices) of every prompt that still needs responses.
    todo = []
    for tname, rows in task_rows.items():
        for row in rows:
            missing = [k for k in range(samples) if (tname, str(row["id"]), k) not in done]
            if missing:
                todo.append((tname, row, missing))

    new_rows: list[dict] = []
    if todo:
        scorer, tokenizer, generator, config = _prepare(
            model, generator, backend, batch_size, seed, dtype, device, gpu_memory_utilization, config
        )
        results_path = out_dir / RESULTS_FILE if out_dir is not None else None
        if results_path is not None:  # record the settings now, so that a crash leaves them for the resume check
            partial = _summarise_keeping(existing, task_objs, previous)
            write_results(results_path, {"model": name, "config": config, "tasks": partial})
        was_training = scorer.training  # an in-memory model may be mid-training: give it back as it came
        scorer.eval()
        try:
            with _cpu_threads(threads, config["device"]):
                new_rows = _run(
                    todo, task_objs, scorer, tokenizer, generator, name, samples, temperature, top_p,
                    max_new_tokens, batch_size, seed, out_dir, progress,
                )
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


def _previous_tasks(out_dir: Path | None) -> dict[str, dict]:
    path = out_dir / RESULTS_FILE if out_dir is not None else None
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("tasks", {})


def _summarise_keeping(rows: list[dict], tasks: dict, previous: dict[str, dict]) -> dict[str, dict]:
    """Summarise all rows; a task of an earlier run that this run did not touch keeps its earlier entry (it was
    computed with that run's task options, e.g. AlpacaEval's judge, which this run may not have)."""
    fresh = summarise(rows, tasks)
    for name, entry in fresh.items():
        old = previous.get(name)
        if name not in tasks and old and old.get("num_samples") == entry["num_samples"]:
            fresh[name] = old
    return fresh


def _prepare(model, generator, backend, batch_size, seed, dtype, device, gpu_memory_utilization, config):
    """(scoring model, tokenizer, generator, config with the resolved device and dtype)."""
    from intuitor.models import load_model_and_tokenizer, load_tokenizer, resolve_model_path

    if not isinstance(model, (str, Path)):
        scorer, tokenizer = model
        device = str(next(scorer.parameters()).device)
        dtype = str(next(scorer.parameters()).dtype).replace("torch.", "")
        if generator is None and backend == "vllm":
            raise ValueError("--backend vllm needs a model name or path, not an in-memory model; use backend='hf'")
    else:
        device = _resolve_device(device)
        dtype = _resolve_dtype(dtype, device)
        if generator is None and backend == "vllm":
            from intuitor.generation.vllm import VLLMGenerator

            # vLLM first: it sizes its cache from the free GPU memory; the HF copy only scores.
            generator = VLLMGenerator(
                resolve_model_path(str(model)),
                load_tokenizer(str(model)),
                dtype=dtype,
                seed=seed,
                gpu_memory_utilization=gpu_memory_utilization,
            )
        scorer, tokenizer = load_model_and_tokenizer(str(model), dtype=dtype, device=device)
    if generator is None:
        from intuitor.generation.hf import HFGenerator

        generator = HFGenerator(scorer, tokenizer, batch_size=batch_size)
    return scorer, tokenizer, generator, {**config, "device": device, "dtype": dtype}


def _chunk_seed(seed: int, task: str, row_id: str, sample: int) -> int:
    return (seed + zlib.crc32(f"{task}/{row_id}/{sample}".encode())) % (2**31)


def _run(todo, tasks, scorer, tokenizer, generator, model_name, samples, temperature, top_p, max_new_tokens,
         batch_size, seed, out_dir, progress) -> list[dict]:
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
    per_call = max(1, getattr(generator, "chunk_size", batch_size) // samples)
    sink = open(out_dir / SAMPLES_FILE, "a", encoding="utf-8") if out_dir is not None else None
    totals: dict[str, int] = defaultdict(int)
    for tname, _, missing in todo:
        totals[tname] += len(missing)
    new_rows: list[dict] = []
    bar = _progress(progress)
    bars = {t: bar.add_task(t, total=n) for t, n in totals.items()} if bar else {}
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
                    verdicts = score_all(tasks[tname], [completions[j].text for j in js], [chunk[j // m][1] for j in js])
                    for j, c in zip(js, verdicts):
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
                            "model": model_name,
                            "task_version": task.version,
                            "metric": task.metric,
                        }
                    )
                if sink is not None:
                    sink.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk_rows))
                    sink.flush()
                new_rows.extend(chunk_rows)
                if bar:
                    bar.advance(bars[tname], len(chunk_rows))
    finally:
        if bar:
            bar.stop()
        if sink is not None:
            sink.close()
    return new_rows


def _recorded_statistics(generator, scorer, n: int):
    """The statistics the backend recorded while generating (the HF backend: `HFGenerator.last_statistics`), when
    they come from the scoring model itself and cover these `n` completions; else None (score them in a pass)."""
    stats = getattr(generator, "last_statistics", None)
    if stats is None or getattr(generator, "model", None) is not scorer or stats.self_certainty.numel() != n:
        return None
    return stats


def score_all(task, responses: list[str], rows: list[dict]) -> list[bool]:
    """`task.score` of each response. A task whose scoring waits on subprocesses (the code sandbox) may set
    `score_workers = N` to be scored on N threads; the default is one at a time."""
    workers = int(getattr(task, "score_workers", 1) or 1)
    if workers <= 1 or len(responses) <= 1:
        return [bool(task.score(r, row)) for r, row in zip(responses, rows)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(responses))) as pool:
        return [bool(c) for c in pool.map(task.score, responses, rows)]


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=False,
    )


# --------------------------------------------------------------------------------------------------------- table


def results_table(results: dict):
    """A rich Table in the paper's layout: one column per benchmark (paper order first), scores in %."""
    from rich.table import Table

    tasks = results.get("tasks", {})
    table = Table(title=f"{results.get('model', '')}")
    table.add_column("metric")
    for name in tasks:
        table.add_column(PAPER_COLUMNS.get(name, name), justify="right")
    metrics = ["score"] + sorted({k for m in tasks.values() for k in m if k.startswith("pass@") and k != "pass@1"},
                                 key=lambda k: int(k.split("@")[1]))
    for key in metrics:
        cells = [f"{100 * m[key]:.1f}" if isinstance(m.get(key), (int, float)) else "-" for m in tasks.values()]
        table.add_row(key, *cells)
    table.add_row("n", *[str(m.get("n", "-")) for m in tasks.values()])
    table.add_row("self-certainty", *[f"{m.get('self_certainty', 0.0):.3f}" for m in tasks.values()])
    return table


def print_results(results: dict, console=None) -> None:
    from rich.console import Console

    (console or Console()).print(results_table(results))
