"""`intuitor guard RUN_DIR_OR_METRICS_JSONL [--field value ...]`: replay a logged run through the collapse guard.

The rows of a metrics.jsonl (ours, or any JSONL with the same keys and a `step`) go through `guard.replay`, i.e. the
very `CollapseGuard.process` the live callback runs, so the alarms printed are the ones a live run with the same
settings raises. Settings: IntuitorConfig's guard defaults, then the run's own run_config.json (when the folder has
one), then `--guard_* value` flags (`none` disables a condition), so thresholds can be tuned without retraining.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
from pathlib import Path

import typer


def guard_settings(config: dict, overrides: list[str]):
    """Guard fields: IntuitorConfig defaults <- a run's resolved config <- `--field value` pairs."""
    from intuitor.training.config import IntuitorConfig

    fields = {f.name: f for f in dataclasses.fields(IntuitorConfig) if f.name.startswith("guard")}
    values = {name: f.default for name, f in fields.items()}
    values.update({k: v for k, v in config.items() if k in fields})
    if values["guard"] == "off":
        values["guard"] = "warn"  # replaying is judging: an `off` run is judged as if it had warned
    i = 0
    while i < len(overrides):
        flag = overrides[i]
        name = flag.lstrip("-").replace("-", "_")
        if not flag.startswith("--") or name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" Did you mean: --{close[0]}?" if close else f" Known: {', '.join('--' + f for f in fields)}"
            raise ValueError(f"unknown option {flag!r}: only guard fields can be set.{hint}")
        if i + 1 >= len(overrides):
            raise ValueError(f"{flag}: missing a value")
        # The class's own annotation: HfArgumentParser rewrites `Field.type` in place (Optional[float] -> float).
        annotation = IntuitorConfig.__annotations__.get(name, fields[name].type)
        values[name] = _parse(name, annotation, overrides[i + 1])
        i += 2
    values["output_dir"] = "."
    return types.SimpleNamespace(**values)


def _parse(name: str, annotation, text: str):
    # The annotation may be the postponed string ('float | None') or, once an HfArgumentParser has resolved the
    # dataclass's fields in place, a typing object (Optional[float]): read its parts the same way from both.
    kinds = str(annotation).replace("typing.", "").replace("Optional[", "None | ").replace("NoneType", "None")
    parts = [k.strip(" []") for k in kinds.replace("Union[", "").replace(",", "|").split("|")]
    if text.lower() in ("none", "null", "off") and "None" in parts:
        return None
    try:
        if "int" in parts or "<class 'int'>" in parts:
            return int(text)
        if "float" in parts or "<class 'float'>" in parts:
            return float(text)
    except ValueError:
        raise ValueError(f"--{name} {text!r}: expected {' | '.join(parts)}") from None
    return text


def guard_command(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ..., help="A run folder (metrics.jsonl, run_config.json, checkpoint-*) or a JSONL file."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the alarms and the keep decision here."),
):
    """Replay a logged run through the collapse guard offline; print each alarm with its step.

    Any guard field can be given as `--guard_field value` (e.g. `--guard_vote_calibration_drop 0.15`,
    `--guard_kl_growth none`). Exit code: 0 when no alarm fires, 1 when one does (scripts and CI can act on it),
    2 on bad input.
    """
    from intuitor.training.guard import read_metrics, replay

    try:
        rows, config, checkpoints = read_metrics(path)
        settings = guard_settings(config, list(ctx.args))
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(code=2) from None
    guard = replay(rows, settings, checkpoints)
    steps = [r.get("step") for r in rows if isinstance(r.get("step"), int)]
    typer.echo(
        f"{path}: {len(rows)} rows, steps {min(steps, default=0)}-{max(steps, default=0)}, "
        f"{len(guard.conditions)} conditions on"
    )
    for e in guard.events:
        typer.echo(f"step {e['step']:5d}  {e['condition']:22s} value {e['value']:.4g}  reference {e['reference']:.4g}")
    if not guard.events:
        typer.echo("no alarm")
    elif guard.keep is not None:
        keep = guard.keep["checkpoint"] or "none (no checkpoint before the alarm)"
        typer.echo(f"keep: {keep} (first alarm {guard.keep['alarm']} began at step {guard.keep['alarm_onset']})")
    if json_out:
        json_out.write_text(
            json.dumps({"events": guard.events, "keep": guard.keep, "settings": vars(settings)}, indent=2) + "\n"
        )
    if guard.events:
        raise typer.Exit(code=1)  # an alarm fired: scripts and CI can act on the exit code
