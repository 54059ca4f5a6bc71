"""CRUXEval-O (Gu et al. 2024): predict the output of a short Python function `f` on a given input. 800 problems.

Prompt: the paper evaluates CRUXEval-O with the ZeroEval framework (Sec. 4), whose prompt is its open-ended QA
template ("## Question: ... ## Instruction ... json {reasoning, answer}") around CRUXEval's output-prediction
instruction. `QUESTION_TEMPLATE` is that question as the paper prints it (Appendix B.4; ZeroEval's crux data hold
it pre-formatted, so the exact whitespace around the code is our reconstruction); `ZEROEVAL_TEMPLATE` is ZeroEval's
OEQA template (`src/templates/OEQA.py`) verbatim (braces doubled for `str.format`). One user message, no
system prompt.

Extraction (`extract`), first rule that applies:
  1. ZeroEval's format: the last complete `{...}` JSON object of the response that has an "answer" key; a string
     value is taken as the Python literal text (`"answer": "[1, 2]"`), any other JSON value is written back as a
     Python literal (`"answer": 42` -> `42`, `true` -> `True`).
  2. CRUXEval's own format: the last `[ANSWER] ... [/ANSWER]` block, the text after its first `==`.
  3. The last line of the form `assert f(...) == X`: X.
Scoring: the predicted and the gold literal are both evaluated by Python, in the sandbox (model text is never
evaluated in this process), and compared with `==`, as CRUXEval's checker does. Leniency (a departure, since JSON
strings make quoting ambiguous): a prediction that does not evaluate (`"answer": "hello"`) is compared as text
when the gold is a string.
"""

from __future__ import annotations

import json
import re
from typing import Any

from intuitor.tasks.base import Task, load_records, register_task, require_fields

# CRUXEval's output-prediction instruction (facebookresearch/cruxeval prompts.py) without its few-shot examples, as
# printed in the INTUITOR paper, Appendix B.4.
QUESTION_TEMPLATE = (
    "You are given a Python function and an assertion containing an input to the function. Complete the assertion "
    "with a literal (no unsimplified expressions, no function calls) containing the output when executing the "
    "provided code on the given input, even if the function is incorrect or incomplete.\n\n"
    "{code}\nassert f({input}) == ??"
)

# ZeroEval (WildEval/ZeroEval) src/templates/OEQA.py, verbatim.
ZEROEVAL_TEMPLATE = (
    "\n## Question: \n\n{question}\n\n\n## Instruction \n\n"
    "Please answer this question by first reasoning and then providing your answer.\n"
    "Present your reasoning and solution in the following json format. \n"
    'Please show your final answer in the `answer` field, e.g.,`"answer": "42"`.\n\n'
    '```json\n{{\n    "reasoning": "___",\n    "answer": "___"\n}}\n```\n'
)

_ANSWER_BLOCK = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)
_ASSERT_LINE = re.compile(r"^\s*assert\s+f\(.*?\)\s*==\s*(.+?)\s*$", re.MULTILINE)

# Runs in the sandbox: both sides evaluated by Python, compared with ==.
_CHECK = """
_gold = eval({gold!r})
try:
    _pred = eval({pred!r})
except Exception:
    _pred = {pred!r}.strip() if isinstance(_gold, str) else object()
assert _pred == _gold, "wrong output"
"""


def _json_objects(text: str) -> list[str]:
    """Complete top-level `{...}` spans of text, in order (braces inside JSON strings are respected)."""
    spans, depth, start, in_string, escaped = [], 0, None, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _python_literal(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def extract_output(response: str) -> str | None:
    """The predicted output literal of a response (rules in the module docstring), or None.

    >>> extract_output('Reasoning... ```json\\n{"reasoning": "f doubles", "answer": "[2, 4]"}\\n```')
    '[2, 4]'
    >>> extract_output('{"reasoning": "r", "answer": 42}'), extract_output("[ANSWER]\\nassert f(3) == 'ab'\\n[/ANSWER]")
    ('42', "'ab'")
    >>> extract_output("so\\nassert f([1]) == [1, 1]"), extract_output("I don't know")
    ('[1, 1]', None)
    """
    for span in reversed(_json_objects(response)):
        try:
            obj = json.loads(span)
        except json.JSONDecodeError:
            try:  # ZeroEval reads JSON with raw newlines inside strings by dropping them
                obj = json.loads(span.replace("\n", ""))
            except json.JSONDecodeError:
                continue
        if isinstance(obj, dict) and "answer" in obj:
            text = _python_literal(obj["answer"]).strip()
            return text or None
    blocks = _ANSWER_BLOCK.findall(response)
    if blocks:
        block = blocks[-1].strip()
        text = block.split("==", 1)[1] if "==" in block else block
        return text.strip() or None
    lines = _ASSERT_LINE.findall(response)
    return lines[-1] if lines else None


@register_task
class CruxEvalO(Task):
    """CRUXEval-O, ZeroEval prompt, values compared in the sandbox."""

    name = "cruxeval"
    version = 1
    score_workers = 8  # sandboxed runs are independent processes; the sandbox is thread-safe
    default_path = "cruxeval/cruxeval.jsonl"
    hub_id = "cruxeval-org/cruxeval"
    timeout_s = 10.0  # sandbox start included; the functions themselves are tiny

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("code", "input", "output", "id"), where)
            question = QUESTION_TEMPLATE.format(code=r["code"], input=r["input"])
            rows.append(
                {
                    "id": str(r["id"]),
                    "prompt": [{"role": "user", "content": ZEROEVAL_TEMPLATE.format(question=question)}],
                    "answer": str(r["output"]),
                    "code": r["code"],
                    "input": str(r["input"]),
                }
            )
        return rows

    def extract(self, response: str) -> str | None:
        return extract_output(response)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        pred = self.extract(response)
        if pred is None:
            return False
        from intuitor.sandbox import run_tests

        return bool(run_tests("", _CHECK.format(gold=row["answer"], pred=pred), timeout=self.timeout_s).passed)
