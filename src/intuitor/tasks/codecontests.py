"""CodeContests (Li et al. 2022), the training set of INTUITOR-Code (Zhao et al. 2025, Sec. 4.3).

Training only: INTUITOR needs prompts, not tests, so `answer` is empty and `score` is undefined here (evaluate code
with `humaneval` or `livecodebench`). Rows come from a local JSONL with a `description` field (and optional `name`)
or from the hub id `deepmind/code_contests`.
"""

from __future__ import annotations

from intuitor.tasks.base import Task, read_jsonl, register_task, require_fields

# The authors' code prompt asks for reasoning first, then one Python block reading stdin.
SYSTEM_PROMPT = (
    "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. You FIRST think "
    "about the reasoning process step by step and then write a complete Python 3 program that reads from standard "
    "input and writes to standard output, in one ```python code block."
)


@register_task
class CodeContests(Task):
    """CodeContests problems as INTUITOR-Code training prompts (no scoring)."""

    name = "codecontests"
    version = 1
    default_path = "code_contests/train.jsonl"
    hub_id = "deepmind/code_contests"

    def load(self, limit: int | None = None) -> list[dict]:
        path = self.resolve_path()
        if path is not None and path.exists():
            raw = read_jsonl(path)
        elif self.path:
            raise FileNotFoundError(f"data file not found: {self.path}")
        else:
            from datasets import load_dataset

            raw = load_dataset(self.hub_id, split="train")
        rows = []
        for i, row in enumerate(raw):
            if limit is not None and len(rows) >= limit:
                break
            require_fields(row, ("description",), f"{path or self.hub_id}:{i + 1}")
            prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": row["description"]}]
            rows.append({"id": str(row.get("name", i)), "prompt": prompt, "answer": ""})
        return rows

    def extract(self, response: str) -> str | None:
        start = response.find("```python")
        if start < 0:
            return None
        end = response.find("```", start + 9)
        return response[start + 9 : end if end >= 0 else None].strip()

    def score(self, response: str, row: dict) -> bool:
        raise NotImplementedError("codecontests is a training set here: evaluate code with humaneval/livecodebench")
