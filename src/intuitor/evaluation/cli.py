"""`intuitor eval`: the harness (`intuitor.evaluation.harness.evaluate`) from the command line.

`eval_command` is a plain function with typer annotations; the main CLI registers it. Importing this module is
cheap (no torch): the harness is imported when the command runs. Errors the user can fix (unknown task, missing
or malformed data file, K > 1 with temperature 0, a resume under other settings, vLLM not installed) are printed
as one line, `error: ...`, and exit with code 1; the harness's warnings (a torn row dropped, stored responses
re-scored against changed data) as one line each, `warning: ...`. Ctrl-C prints "interrupted: N of M kept; rerun the
same command to resume" and exits with code 130.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer


PAPER_TASKS = "gsm8k,math500,livecodebench,cruxeval,mmlu_pro,alpaca_eval"
USER_ERRORS = (KeyError, ValueError, FileNotFoundError, ImportError, OSError)


def _error_message(e: BaseException) -> str:
    # KeyError's str() adds quotes; the registries raise it with a sentence.
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(msg).split())  # one line, whatever the exception holds


def _parse_task_paths(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        task, sep, path = item.partition("=")
        if not sep or not task or not path:
            raise typer.BadParameter(
                f"'{item}': expected TASK=PATH, e.g. livecodebench=lcb.jsonl", param_hint="--task-path"
            )
        out[task.strip()] = path.strip()
    return out


def eval_command(
    model: Annotated[str, typer.Argument(help="Hub id, folder, GGUF file, training checkpoint, or 'smollm2-gguf'.")],
    output_dir: Annotated[Path, typer.Option(help="Writes samples.jsonl and results.json here; re-running resumes.")],
    tasks: Annotated[str, typer.Option(help=f"Comma-separated tasks, e.g. {PAPER_TASKS}.")] = "gsm8k",
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the benchmark data, e.g. ../shared/data.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N rows of each task.")] = None,
    samples: Annotated[int, typer.Option(help="Responses per prompt K; K > 1: pass@k, temperature > 0.")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy (the paper's setting).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling threshold (only when temperature > 0).")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(help="Longest response, in tokens.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="Sequences per generate call (hf) and per forward.")] = 8,
    seed: Annotated[int, typer.Option(help="Base seed of sampling.")] = 0,
    backend: Annotated[
        str, typer.Option(help="hf (transformers) or vllm (GPU; pip install 'intuitor[vllm]').")
    ] = "hf",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")] = "auto",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1... (default: cuda when available).")] = None,
    task_path: Annotated[
        list[str] | None, typer.Option(help="TASK=PATH: read TASK from this file, not --data-dir (repeatable).")
    ] = None,
    judge_url: Annotated[
        str | None, typer.Option(help="alpaca_eval: OpenAI-compatible endpoint of a judge (off by default).")
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="alpaca_eval: the judge model at --judge-url.")] = None,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="vllm: GPU memory share of vLLM; the rest holds the HF model that scores certainty.")
    ] = 0.6,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    confirm_run_unsafe_code: Annotated[
        bool,
        typer.Option(
            help="Without bubblewrap, run model-written code (code tasks) UNISOLATED, with "
            "resource limits only: it can read your files. Off: such tasks stop with an error."
        ),
    ] = False,
) -> None:
    """Evaluate MODEL on benchmarks: accuracy, pass@k and the self-certainty of every response."""
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True)
    paths = _parse_task_paths(task_path)
    if confirm_run_unsafe_code:  # as lm-evaluation-harness's --confirm_run_unsafe_code
        from intuitor.sandbox import allow_unsafe_code

        allow_unsafe_code()
    from intuitor.evaluation.harness import (
        EvaluationInterrupted,
        EvaluationWarning,
        evaluate,
        print_results,
    )

    def show(message, category, *args, **kwargs):  # the harness's warnings (a torn row dropped, rows re-scored)
        if not issubclass(category, EvaluationWarning):
            return shown(message, category, *args, **kwargs)
        err.print(Text.assemble(("warning: ", "bold yellow"), _error_message(message)), soft_wrap=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", EvaluationWarning)
            shown, warnings.showwarning = warnings.showwarning, show
            results = evaluate(
                model,
                tasks,
                data_dir=data_dir,
                output_dir=output_dir,
                limit=limit,
                samples=samples,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                seed=seed,
                backend=backend,
                dtype=dtype,
                device=device,
                task_paths=paths,
                judge_url=judge_url,
                judge_model=judge_model,
                gpu_memory_utilization=gpu_memory_utilization,
                progress=progress,
            )
    except EvaluationInterrupted as e:  # Ctrl-C: what is kept, and how to go on (not click's bare "Aborted!")
        err.print(str(e), highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None
    except USER_ERRORS as e:
        err.print(Text.assemble(("error: ", "bold red"), _error_message(e)), soft_wrap=True)
        raise typer.Exit(code=1) from None
    print_results(results)
    Console().print(f"wrote {output_dir / 'samples.jsonl'} and {output_dir / 'results.json'}", highlight=False)
