"""Smoke tests of the benchmark scripts: each main() runs at toy sizes in seconds and returns finite ratios and
small errors. Not timed tests: the PASS/FAIL of the timing targets is the benchmarks' business, not CI's."""

import importlib.util
import math
import sys
from importlib.metadata import version
from pathlib import Path

import pytest


BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def finite(values):
    return all(math.isfinite(v) for v in values)


def test_kernel_smoke(capsys):
    kernel = load("kernel")
    report = kernel.main(
        [
            "--positions",
            "24",
            "--vocab",
            "5000",
            "--repeats",
            "1",
            "--lm-batch",
            "2",
            "--lm-prompt",
            "4",
            "--lm-completion",
            "8",
            "--lm-hidden",
            "16",
            "--sub-chunks",
            "12,0",
        ]
    )
    out = capsys.readouterr().out
    assert "targets:" in out and "float32" in out and "bfloat16" in out
    time_ratios = {k: v for k, v in report.ratios.items() if k.endswith("/time")}
    assert len(time_ratios) >= 10 and finite(time_ratios.values()) and all(v > 0 for v in time_ratios.values())
    # every current kernel agrees with float64 on float32 logits; the pre-benchmark one (v0) had a 1e-3 entropy
    f32 = {k: v for k, v in report.errors.items() if k.startswith("float32/") and "-v0/" not in k}
    assert f32 and max(f32.values()) < 1e-4, f32
    assert max(v for k, v in report.errors.items() if k.startswith("lm/") and "-v0/" not in k) < 1e-4
    # bf16 logits: intuitor reduces in float32, the authors' code in bf16 (its error is orders of magnitude larger)
    assert report.errors["bfloat16/intuitor-sc/sc"] < 1e-4 < report.errors["bfloat16/authors-sc/sc"]
    assert {v.name.split()[0] for v in report.verdicts} >= {"float32", "bfloat16", "lm"}


def test_kernel_memory_probe_sees_a_known_allocation():
    common = load("_common")
    torch = pytest.importorskip("torch")
    if not common.cpu_peak_available():
        pytest.skip("no /proc/self/clear_refs: CPU peak memory is reported as n/a")
    with common.peak_extra("cpu") as peak:
        x = torch.ones(16 << 20, dtype=torch.uint8)  # 16 MiB, touched
        del x
    assert 15 << 20 <= peak.extra <= 20 << 20


def test_eval_throughput_smoke(capsys):
    bench = load("eval_throughput")
    report = bench.main(["--batch-sizes", "1,2", "--responses", "2", "--max-new-tokens", "3", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "resp/s" in out and "shorter" not in out  # every response had the fixed length
    rps = [v for k, v in report.ratios.items() if k.endswith("responses_per_s")]
    rel = [v for k, v in report.ratios.items() if k.endswith("/relative")]
    assert len(rps) == 6 and len(rel) == 4 and finite(rps + rel) and min(rps) > 0


def test_train_step_smoke(capsys):
    bench = load("train_step")
    report = bench.main(
        [
            "--models",
            "tiny",
            "--betas",
            "0,0.04",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--completion-length",
            "3",
            "--target-model",
            "tiny",
            "--max-ratio",
            "1e9",
        ]
    )
    out = capsys.readouterr().out
    assert "INTUITOR s/step" in out
    assert set(report.ratios) == {"tiny/beta=0", "tiny/beta=0.04", "tiny/beta=0/own", "tiny/beta=0.04/own"}
    assert finite(report.ratios.values()) and all(v > 0 for v in report.ratios.values())
    assert all(1 < report.ratios[f"tiny/beta={b}/own"] < 2 for b in ("0", "0.04"))  # INTUITOR's own code was timed
    assert all(v.ok for v in report.verdicts)


def test_train_step_smoke_logprob_pass(capsys):
    bench = load("train_step")
    report = bench.main(
        [
            "--models",
            "tiny",
            "--betas",
            "0",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--source",
            "logprob_pass",
            "--completion-length",
            "3",
            "--target-model",
            "tiny",
            "--max-ratio",
            "1e9",
        ]
    )
    assert "generation cycles" in capsys.readouterr().out
    assert finite(report.ratios.values()) and 1 < report.ratios["tiny/beta=0/own"] < 2


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path):
    """scripts/gpu_check.py --dry-run: every check of the GPU script at toy size on the CPU, one JSON of figures."""
    import json
    import subprocess

    out = tmp_path / "gpu_check.json"
    script = BENCH.parent / "scripts" / "gpu_check.py"
    res = subprocess.run(
        [sys.executable, str(script), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=BENCH.parent,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    report = json.loads(out.read_text())
    failed = {k: v.get("error", v) for k, v in report["checks"].items() if not v["ok"]}
    assert res.returncode == 0 and not failed, (failed, res.stderr[-3000:])
    assert set(report["checks"]) == {
        "train/tiny/generation",
        "train/tiny/logprob_pass",
        "bench/kernel",
        "recorder_vs_forward/tiny/float32",
        "recorder_vs_forward/tiny/bfloat16",
        "bench/train_step",
    }
    assert report["checks"]["train/tiny/logprob_pass"]["source"] == "logprob_pass"
    assert report["checks"]["recorder_vs_forward/tiny/float32"]["sc_recorder_vs_response_statistics"] < 1e-4
    command = report["download_command"]
    assert command.startswith("pip download") and f"trl=={version('trl')}" in command
    assert report["install"]["installed"] is False  # a dry run installs nothing


def test_vs_lm_eval_smoke(capsys, data_dir):
    """The side-by-side script on the tiny model: same prompts, and greedy texts identical to lm-eval's."""
    pytest.importorskip("lm_eval", reason="lm-eval is an optional benchmark dependency (benchmarks/README.md)")
    bench = load("vs_lm_eval")
    report = bench.main(
        [
            "--model",
            "tiny",
            "--limit",
            "5",
            "--max-new-tokens",
            "12",
            "--threads",
            "1",
            "--batch-size",
            "2",
            "--candidates",
            "intuitor-refill,lm-eval,intuitor-static",
            "--data-dir",
            str(data_dir),
        ]
    )
    out = capsys.readouterr().out
    assert "wall / lm-eval" in out and "targets:" in out
    assert report.ratios["intuitor-refill/identical"] == report.ratios["intuitor-static/identical"] == 1.0
    assert finite([report.ratios[f"{c}/wall"] for c in ("intuitor-refill", "intuitor-static")])
    # refill decodes fewer rows than the static batches of intuitor and lm-eval (the tiny model never stops early:
    # equal here); a decoding step never has more rows than the batch
    assert report.ratios["intuitor-refill/rows"] <= report.ratios["lm-eval/rows"] <= 2 * report.ratios["lm-eval/steps"]
