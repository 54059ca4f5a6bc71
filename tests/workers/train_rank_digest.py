"""Worker for tests/test_multiprocess.py: train with `intuitor train` semantics, then write a digest of this
process's weights so the test can check that every process ends with the same model."""

import hashlib
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from intuitor.training.run import run_training


config, out, *overrides = sys.argv[1:]
trainer = run_training(config, ["--output_dir", out, *overrides])
digest = hashlib.sha256()
for name, param in sorted(trainer.accelerator.unwrap_model(trainer.model).state_dict().items()):
    digest.update(name.encode())
    digest.update(param.detach().cpu().to(torch.float32).numpy().tobytes())
rank = PartialState().process_index
Path(out, f"rank{rank}.sha256").write_text(f"{digest.hexdigest()} {trainer.state.global_step}\n")
