"""`intuitor demo`: the command-line face of `intuitor.demo.runner` (kept free of heavy imports)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo_command(
    output_dir: Path = typer.Option(
        Path("runs/demo"), "--output-dir", "-o", help="Where demo.json, runs and plots go."
    ),
    seeds: int = typer.Option(3, "--seeds", help="Training seeds per method (mean and spread over them)."),
    full: bool = typer.Option(
        False,
        "--full",
        help="Add GRPO-PV, the offline annotator, a random-reward control "
        "and a long run that shows the collapse and the guard. Takes longer.",
    ),
    steps: int = typer.Option(None, "--steps", help="RL steps per run (default: the demo's tuned value)."),
    estimators: bool = typer.Option(
        False,
        "--estimators",
        help="Also train every label-free estimator alone "
        "(self-certainty, entropies, sequence probability, votes; same budget) and "
        "compare them, with their alignment with the gold answers. Takes longer.",
    ),
):
    """The paper's experiment on a CPU in minutes: INTUITOR vs gold-answer GRPO on a tiny reasoning sandbox."""
    from intuitor.demo.runner import DemoConfig, run_demo

    cfg = DemoConfig(output_dir=str(output_dir), seeds=seeds, full=full, estimators=estimators)
    if steps is not None:
        cfg.steps = steps
    run_demo(cfg)
