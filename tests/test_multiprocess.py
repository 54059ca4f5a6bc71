"""Several processes: the same `intuitor train` under `accelerate launch`, two CPU processes over gloo."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_train_two_steps_and_keep_identical_weights(tmp_path):
    """Bit-identical weights on both ranks is the claim (DDP's invariant), and it holds on any CPU: both ranks run
    on the same machine with the same kernels and thread count, start from the same weights, and gloo's all-reduce
    hands every rank the same gradient sum. (Two different machines could differ in the last bit; not tested.)"""
    cmd = [
        ACCELERATE,
        "launch",
        "--config_file",
        str(ROOT / "recipes/accelerate/cpu-2proc.yaml"),
        str(ROOT / "tests/workers/train_rank_digest.py"),
        str(ROOT / "recipes/tiny-cpu.yaml"),
        str(tmp_path),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--save_strategy",
        "no",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    digests = [(tmp_path / f"rank{r}.sha256").read_text().split() for r in (0, 1)]
    assert digests[0] == digests[1]  # same weights, same step count on both processes
    assert digests[0][1] == "2"
    metrics = (tmp_path / "metrics.jsonl").read_text()
    assert '"self_certainty/mean"' in metrics


@pytest.mark.slow
@pytest.mark.multiprocess
def test_separate_pass_under_fsdp_with_unequal_batches_per_process(tmp_path, tiny_model_dir):
    """Issue 20.1: rank 0 holds 3 completions (2 batches), rank 1 holds 5 (3 batches), every layer and the root
    sharded with FSDP2 over gloo. The pass must not hang, and must give the unsharded model's values.
    `response_statistics` (the pass before) fails here: it embeds with the root's un-gathered DTensor weights."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        str(ROOT / "tests/workers/sharded_pass_worker.py"),
        str(tiny_model_dir),
        str(tmp_path),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    import json

    for rank, n in ((0, 3), (1, 5)):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["n"] == n and len(got["self_certainty"]) == n
        for key in ("self_certainty", "entropy"):
            assert got[key] == pytest.approx(got[f"expected_{key}"], abs=1e-6)
        assert any(v > 0 for v in got["self_certainty"])
