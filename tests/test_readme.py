"""The README's code blocks marked `<!-- runnable -->` run as written (on the tiny local model, offline)."""

import json
import re
from pathlib import Path

import pytest


README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```python\n(.*?)\n```", re.S)


def runnable_blocks() -> list[str]:
    return RUNNABLE.findall(README.read_text())


def test_readme_marks_its_python_example_runnable():
    blocks = runnable_blocks()
    assert len(blocks) >= 1
    assert any("IntuitorTrainer(" in b and ".train()" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_block_runs(index, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTUITOR_EXAMPLE_MODEL", str(tiny_model_dir))  # the block's model variable, offline
    namespace = {"__name__": "__readme__"}
    exec(compile(runnable_blocks()[index], f"README.md[runnable {index}]", "exec"), namespace)
    if "trainer" in namespace:  # the training example: it trained and logged the documented metrics
        trainer = namespace["trainer"]
        assert trainer.state.global_step == trainer.args.max_steps
        rows = [json.loads(line) for line in Path(trainer.args.output_dir, "metrics.jsonl").read_text().splitlines()]
        logged = [r for r in rows if "rewards/accuracy/mean" in r]
        assert logged and all(r["rewards/self_certainty/mean"] > 0 for r in logged)
