"""The whole chain on the tiny model, as a user runs it: train -> eval -> analyze / select / curves / report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
INTUITOR = str(Path(sys.executable).with_name("intuitor"))


def run(*args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([INTUITOR, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, f"intuitor {' '.join(args)}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run")
    run("train", "recipes/tiny-cpu.yaml", "--max_steps", "2", "--save_steps", "1", "--output_dir", str(out))
    run(
        "eval",
        str(out / "checkpoint-2"),
        "--tasks",
        "gsm8k,humaneval",
        "--data-dir",
        str(data_dir),
        "--limit",
        "2",
        "--samples",
        "3",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "8",
        "--output-dir",
        str(out / "eval/checkpoint-2"),
        "--no-progress",
    )
    return out


@pytest.mark.slow
def test_eval_output_has_the_documented_fields(run_dir):
    rows = [json.loads(x) for x in (run_dir / "eval/checkpoint-2/samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3  # tasks x items x samples
    for row in rows:
        assert {
            "task",
            "id",
            "sample",
            "prompt",
            "response",
            "answer",
            "correct",
            "self_certainty",
            "num_tokens",
        } <= set(row)
        assert isinstance(row["correct"], bool) and row["self_certainty"] == row["self_certainty"]  # not NaN
    results = json.loads((run_dir / "eval/checkpoint-2/results.json").read_text())
    assert results["tasks"]["gsm8k"]["n"] == 2 and "pass@3" in json.dumps(results["tasks"]["humaneval"])


@pytest.mark.slow
def test_analysis_commands_run_on_real_outputs(run_dir, tmp_path):
    samples = run_dir / "eval/checkpoint-2/samples.jsonl"
    run("analyze", str(samples), "--out-dir", str(tmp_path / "analyze"), "--json", str(tmp_path / "analyze.json"))
    stats = json.loads((tmp_path / "analyze.json").read_text())
    (model,) = stats.values()
    assert model["n_correct"] + model["n_incorrect"] == 12
    assert (tmp_path / "analyze/calibration.png").stat().st_size > 0

    run("select", str(samples), "--json", str(tmp_path / "select.json"))
    picked = json.loads((tmp_path / "select.json").read_text())
    for method in ("self_certainty", "borda", "majority"):
        assert picked[method]["n_items"] == 4 and 0.0 <= picked[method]["accuracy"] <= 1.0

    run("curves", str(run_dir), "--out-dir", str(tmp_path / "curves"))
    assert (tmp_path / "curves/curves.png").stat().st_size > 0

    run("report", str(run_dir), "-o", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "gsm8k" in html
