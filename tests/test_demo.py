"""`intuitor demo` end to end at toy sizes: the real trainer and harness, the table, demo.json and plots."""

import json

import pytest
from rich.console import Console

from intuitor.demo.runner import DemoConfig, run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_its_numbers(tmp_path):
    cfg = DemoConfig(
        output_dir=str(tmp_path),
        seeds=1,
        steps=2,
        eval_items=8,
        sampled_k=2,
        precondition_items=4,
        precondition_k=4,
        prompts_per_step=2,
        num_generations=4,
    )
    console = Console(record=True, width=140)
    report = run_demo(cfg, console=console)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert set(saved["runs"]) == {"base", "intuitor", "grpo_gold"}
    for method in ("intuitor", "grpo_gold"):
        (run,) = saved["runs"][method]
        assert run["steps"] == 2 and 0.0 <= run["greedy_accuracy"] <= 1.0
        assert abs(sum(run[f"style_{s}"] for s in ("direct", "worked", "restate", "other")) - 1.0) < 1e-9
        assert (tmp_path / f"{method}-seed0" / "metrics.jsonl").exists()
    assert 0.0 <= saved["precondition"]["auroc"] <= 1.0
    gain = saved["runs"]["intuitor"][0]["greedy_accuracy"] - saved["runs"]["base"][0]["greedy_accuracy"]
    assert saved["targets"]["per_seed"][0]["gain_over_base"] == pytest.approx(gain)
    assert report["summary"]["intuitor"]["greedy_accuracy"]["mean"] == saved["runs"]["intuitor"][0]["greedy_accuracy"]
    text = console.export_text()
    assert "INTUITOR" in text and "GRPO gold" in text and "AUROC" in text
    assert list((tmp_path / "plots").glob("*.png"))
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    # files where intuitor.layout puts them, so that `intuitor report` finds them
    for run in ("base", "intuitor-seed0", "grpo_gold-seed0"):
        for setting in ("greedy", "sampled"):
            assert (tmp_path / run / "eval" / setting / "samples.jsonl").is_file()
    pre = json.loads((tmp_path / "base" / "eval" / "preflight" / "preflight.json").read_text())
    assert pre["auroc"] == saved["precondition"]["auroc"] and pre["n_samples"] == 16 and pre["k"] == 4
    rollouts = [json.loads(line) for line in (tmp_path / "intuitor-seed0" / "completions.jsonl").open()]
    assert [r["step"] for r in rollouts] == [1] * 4 + [2] * 4  # 4 per logging step: one prompt's group of 4
    assert {"prompt", "completion", "self_certainty", "accuracy", "advantage"} <= set(rollouts[0])
    assert len({json.dumps(r["prompt"]) for r in rollouts[:4]}) == 1
    compare = (tmp_path / "compare.html").read_text()
    assert "McNemar" in compare and "grpo_gold-seed0" in compare and "No evaluation in" not in compare


def test_preflight_on_demo_base_is_the_demos_precondition(tmp_path):
    """`intuitor preflight demo-base --task addition` runs the demo's precondition code with its settings: the same
    numbers as `precondition()` on the loaded base model, printed in the demo's words, plus preflight.json."""
    from typer.testing import CliRunner

    from intuitor.cli import app
    from intuitor.demo.base_model import ASSETS_DIR, load_base_model
    from intuitor.demo.runner import precondition
    from intuitor.models import resolve_model_path

    assert resolve_model_path("demo-base") == str(ASSETS_DIR)
    cfg = DemoConfig(precondition_items=6, precondition_k=4)
    model, tok = load_base_model()
    demo = precondition(model, tok, cfg, tmp_path / "demo")
    out = tmp_path / "pf"
    r = CliRunner().invoke(
        app,
        ["preflight", "demo-base", "--task", "addition", "--limit", "6", "--samples", "4", "--output-dir", str(out)],
    )
    assert r.exit_code == 0, r.output
    saved = json.loads((out / "preflight.json").read_text())
    assert saved["settings"]["max_new_tokens"] == cfg.max_completion_length == 40  # demo-base gets the demo's tokens
    for key in ("auroc", "p_value", "n_correct", "pass@1", "best_of_4_self_certainty", "majority_of_4"):
        assert saved[key] == demo[key], key
    line = (
        f"demo-base on addition (24 samples: 6 prompts x 4, temperature 1, up to 40 tokens): self-certainty "
        f"AUROC right vs wrong = {demo['auroc']:.2f} (p = {demo['p_value']:.1e}); one sample "
        f"{100 * demo['pass@1']:.1f}%"
    )
    assert line in " ".join(r.output.split()) and f"verdict: {saved['verdict']}" in " ".join(r.output.split())

    bad = CliRunner().invoke(app, ["preflight", "demo-base", "--task", "additon", "--output-dir", str(out)])
    assert bad.exit_code == 1 and "Did you mean" in bad.output and "Traceback" not in bad.output
