"""CodeContests (Li et al. 2022), the training set of INTUITOR-Code (Zhao et al. 2025, Sec. 4.3).

Training only: INTUITOR needs prompts, not tests, so `answer` is empty and `score` is undefined here (evaluate code
with `humaneval` or `livecodebench`). Rows come from a local JSONL with a `description` field (and optional `name`)
or from the hub id `deepmind/code_contests`.

Prompts as the authors built them (sunblaze-ucb/Intuitor@3f0cdd7, `open-r1-intuitor/scripts/code_process.py` and
`recipes/Qwen2.5-3B/intuitor/config_code_demo.yaml`): their system prompt, and the description wrapped in one of
four user templates that ask for the code only (the paper's point: reasoning emerges unasked). Departure: they draw
the template with an unseeded `random.choice`; we draw it with `random.Random(seed)` per row index, so the same
data gives the same prompts on every run and every process.
"""

from __future__ import annotations

import random

from intuitor.tasks.base import Task, read_jsonl, register_task, require_fields


SYSTEM_PROMPT = "You are an AI designed to help solve competitive programming problems by generating Python code."

# The four templates of code_process.py, verbatim.
USER_TEMPLATES = (
    "You are an expert Python programmer. You will be given a question (problem specification) "
    "and will generate a correct Python program that meets the requirements and passes all tests. "
    "Do not include any explanations or outputs; return only the final code.\n\n"
    "### Question:\n{description}\n\n"
    "### Answer:\n```python\n# Your code here\n```",
    "Solve the following problem by writing a correct and efficient Python program. "
    "The output should be just the code solution.\n\n"
    "Problem:\n{description}\n\n"
    "Solution (in Python code):\n```python\n# Your code here\n```",
    "Write a Python function or program that fulfills the task described below. "
    "Ensure the solution is correct and handles all edge cases. Provide only the code as output.\n\n"
    "Task Description:\n{description}\n\n"
    "Complete Solution:\n```python\n# Your code here\n```",
    "{description}\n\n"
    "Provide a Python program that solves the above problem. Output only the code, nothing else:\n```python\n"
    "# Your code here\n```",
)


def user_prompt(description: str, index: int, seed: int = 0) -> str:
    """The description in the template drawn for row `index` (deterministic).

    >>> user_prompt("Add two numbers.", 0).startswith("You are an expert Python programmer.")
    True
    >>> sum("Add two numbers." in user_prompt("Add two numbers.", i) for i in range(8))
    8
    """
    template = random.Random(f"{seed}:{index}").choice(USER_TEMPLATES)
    return template.format(description=description.strip())


@register_task
class CodeContests(Task):
    """CodeContests problems as INTUITOR-Code training prompts (no scoring)."""

    name = "codecontests"
    version = 2
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
            if not isinstance(row["description"], str):
                raise ValueError(f"{path or self.hub_id}:{i + 1}: field 'description' is not text")
            if not row["description"].strip():
                continue  # the authors skip empty descriptions too
            prompt = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_prompt(row["description"], i)},
            ]
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
