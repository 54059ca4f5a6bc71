"""One run folder as the report reads it: config, metrics, training completions and evaluations, read once
(where each file lives: `intuitor.layout`)."""

from __future__ import annotations

import json
from pathlib import Path

from intuitor.analysis import read_jsonl
from intuitor.layout import (
    COMPLETIONS_FILE,
    METRICS_FILE,
    PREFLIGHT_FILE,
    EvalRef,
    find_config,
    find_evals,
)


class Run:
    """What one run folder holds, read once: config, metrics, training completions, evaluations."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label
        self.config_path = find_config(path)
        self.config = _read_config(self.config_path) if self.config_path else None
        self.metrics = _rows_or_none(path / METRICS_FILE)
        self.completions = _rows_or_none(path / COMPLETIONS_FILE)
        self.evals: list[EvalRef] = find_evals(path)
        self.results, self.samples = {}, {}
        for ref in self.evals:
            p = ref.path / "results.json"
            if p.is_file():
                try:
                    self.results[ref.label] = json.loads(p.read_text(encoding="utf-8"))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p}: malformed JSON ({e.msg})") from None
            if (ref.path / "samples.jsonl").is_file():
                self.samples[ref.label] = read_jsonl(ref.path / "samples.jsonl", allow_partial_last_line=True)
        self.preflight = {}
        for ref in self.evals:
            if (ref.path / PREFLIGHT_FILE).is_file():
                self.preflight[ref.label] = json.loads((ref.path / PREFLIGHT_FILE).read_text(encoding="utf-8"))

    @property
    def has_model(self) -> bool:
        """Whether the folder holds weights that `intuitor eval RUN` can load (the demo does not save its runs)."""
        return any(any(self.path.glob(g)) for g in ("*.safetensors", "pytorch_model*.bin", "*.gguf"))

    @property
    def task_hint(self) -> str:
        """The run's training task (`answer_extractor` follows it), for the commands the notes suggest."""
        cfg = (self.config or {}).get("config", self.config or {})
        task = cfg.get("answer_extractor") if isinstance(cfg, dict) else None
        return task if isinstance(task, str) and task else "TASK"


def _rows_or_none(path: Path) -> list[dict] | None:
    return read_jsonl(path, allow_partial_last_line=True) if path.is_file() else None


def _read_config(path: Path) -> dict | str:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return json.loads(text)
        import yaml

        data = yaml.safe_load(text)
        return data if isinstance(data, dict) else text
    except Exception:  # noqa: BLE001  (shown as text: the report never fails on a config it cannot parse)
        return text
