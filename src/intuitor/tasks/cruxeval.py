"""CRUXEval-O (Gu et al. 2024): predict the output of a short Python function `f` on a given input. 800 problems.

Reference: ZeroEval (WildEval/ZeroEval at commit 8c1485edf12c6efb5f69135a562927c5ad484059), which the paper uses for
CRUXEval-O (Sec. 4, App. B.4). Matched:
- Prompt: ZeroEval's crux question (`data_prep/crux.py`, `make_direct_output_prompt(...).strip()`: CRUXEval's
  output-prediction instruction, then the code and `assert f(input) == ??` between `[PYTHON]` and `[/PYTHON]`) in its
  open-ended QA template (`src/templates/OEQA.py`, `apply_oeqa_template(item, cot=True)`), as one user message.
- Extraction (`src/evaluation/crux_eval.py` lines 24-42, helpers in `src/evaluation/eval_utils.py`): the FIRST
  complete `{...}` of the response, braces counted without regard to strings, parsed as JSON after deleting raw
  newlines (`extract_first_complete_json`, lines 87-109; a first object that does not parse gives nothing); when that
  yields no "answer" key, the regexes of `extract_values_from_json(..., allow_no_quotes=True)` (lines 57-83):
  `"answer": "..."` (first match), then an unquoted `"answer": value` or `answer: value` up to a comma or space.
  ZeroEval's model-specific fallback (`model_specific_extraction`: only for models named "Llama-3.1") is not used.
- Comparison (crux_eval.py lines 45-70): `str(answer)` of the JSON value (so `true` reads `True`, `[1, 2]` reads
  `[1, 2]`), stripped of quote characters at both ends, newlines written as `\\n`; the gold stripped the same way;
  correct when the two strings are equal (or both empty). No answer = wrong. Nothing is ever executed: the
  prediction is text (this also closes the code-execution hole of issue 11).
Known consequences of the reference's string comparison, kept by default: `[1,2]` for the gold `[1, 2]`, `2.0` for
`2`, `1` for `True`, `{'b': 1, 'a': 2}` for `{'a': 2, 'b': 1}` are wrong; `"816"` for the gold `'816'` is right.
`compare="literal"` is the named departure for readers who want value equality: both sides are read with
`ast.literal_eval` (never executed) and compared by value and type (`1` is not `True`, dict order does not matter);
a prediction that is not a literal is compared as text with a string gold.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from intuitor.tasks.base import Task, gold_text, load_records, register_task, require_fields


# ZeroEval data_prep/crux.py `make_direct_output_prompt` (its trailing space after "incomplete." included), stripped.
QUESTION_TEMPLATE = (
    "You are given a Python function and an assertion containing an input to the function. Complete the assertion "
    "with a literal (no unsimplified expressions, no function calls) containing the output when executing the "
    "provided code on the given input, even if the function is incorrect or incomplete. \n\n"
    "[PYTHON]\n{code}\nassert f({input}) == ??\n[/PYTHON]"
)

# ZeroEval src/templates/OEQA.py `OEQA`, verbatim (braces doubled for `str.format`).
ZEROEVAL_TEMPLATE = (
    "\n## Question: \n\n{question}\n\n\n## Instruction \n\n"
    "Please answer this question by first reasoning and then providing your answer.\n"
    "Present your reasoning and solution in the following json format. \n"
    'Please show your final answer in the `answer` field, e.g.,`"answer": "42"`.\n\n'
    '```json\n{{\n    "reasoning": "___",\n    "answer": "___"\n}}\n```\n'
)

COMPARE_MODES = ("zeroeval", "literal")


def first_complete_json(text: str) -> Any:
    """ZeroEval's `extract_first_complete_json`: the first balanced `{...}` span (braces inside strings count too),
    parsed as JSON with raw newlines deleted; None when there is none or when that first span does not parse.

    >>> first_complete_json('x {"answer": "[1, 2]"} y {"answer": 3}')
    {'answer': '[1, 2]'}
    >>> first_complete_json('{"reasoning": "use {x"} then {"answer": 3}') is None  # the "{" in a string counts
    True
    """
    depth, start = 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                try:
                    return json.loads(text[start : i + 1].replace("\n", ""))
                except json.JSONDecodeError:
                    return None
    return None


_QUOTED = re.compile(r'"answer"\s*:\s*"([^"]*?)"')
_QUOTED_BROKEN = re.compile(r'"answer"\s*:\s*"(.*?)"', re.DOTALL)
_UNQUOTED = re.compile(r'"answer"\s*:\s*([^,\s]*)')
_UNQUOTED_KEY = re.compile(r"answer\s*:\s*([^,\s]*)")


def answer_by_regex(text: str) -> str | None:
    """ZeroEval's `extract_values_from_json(text, allow_no_quotes=True)["answer"]`, or None.

    >>> answer_by_regex('... "answer": "[3, 4]", "reasoning"'), answer_by_regex('"answer": 42}'), answer_by_regex("no")
    ('[3, 4]', '42}', None)
    """
    for pattern in (_QUOTED, _QUOTED_BROKEN, _UNQUOTED, _UNQUOTED_KEY):
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def extract_output(response: str) -> str | None:
    """The predicted output as ZeroEval reads it (module docstring): the answer's text, quotes stripped, or None.

    >>> extract_output('Reasoning... ```json\\n{"reasoning": "f doubles", "answer": "[2, 4]"}\\n```')
    '[2, 4]'
    >>> extract_output('{"reasoning": "r", "answer": true}'), extract_output('{"answer": "\\'ab\\'"}')
    ('True', 'ab')
    >>> extract_output("I don't know") is None
    True
    """
    obj = first_complete_json(response)
    if isinstance(obj, dict) and "answer" in obj:
        value: Any = obj["answer"]
    else:
        value = answer_by_regex(response)
        if value is None:
            return None
    return str(value).strip("'\"").replace("\n", "\\n")


def _literal(text: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _same_value(a: Any, b: Any) -> bool:
    """Equal by value and by type all the way down (`1` is not `True`, `2.0` is not `2`); dict and set order free."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return a == b


def literal_equal(pred_text: str, gold: str) -> bool:
    """`compare="literal"`: both sides read as Python literals (never executed) and compared by `_same_value`.

    >>> literal_equal("[1,2]", "[1, 2]"), literal_equal("1", "True"), literal_equal("hello", "'hello'")
    (True, False, True)
    """
    ok_gold, gold_value = _literal(gold)
    if not ok_gold:
        return pred_text.strip() == gold.strip()
    ok_pred, pred_value = _literal(pred_text)
    if ok_pred and _same_value(pred_value, gold_value):
        return True
    return isinstance(gold_value, str) and pred_text.strip().strip("'\"") == gold_value


@register_task
class CruxEvalO(Task):
    """CRUXEval-O, ZeroEval prompt and ZeroEval string comparison (nothing executed)."""

    name = "cruxeval"
    version = 2  # 2: ZeroEval's question wrapper, first JSON object, quote-stripped string comparison
    default_path = "cruxeval/cruxeval.jsonl"
    hub_id = "cruxeval-org/cruxeval"

    def __init__(self, path: str | None = None, data_dir: str | None = None, compare: str = "zeroeval"):
        super().__init__(path, data_dir)
        if compare not in COMPARE_MODES:
            raise ValueError(f"compare={compare!r}: expected one of {', '.join(COMPARE_MODES)}")
        self.compare = compare

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("id",), where, text=("code", "input"))
            output = gold_text(r, "output", where, required=self.golds_required)
            question = QUESTION_TEMPLATE.format(code=r["code"], input=r["input"])
            rows.append(
                {
                    "id": str(r["id"]),
                    "prompt": [{"role": "user", "content": ZEROEVAL_TEMPLATE.format(question=question)}],
                    "answer": output,
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
        if self.compare == "literal":
            return literal_equal(pred, row["answer"])
        gold = str(row["answer"]).strip("'\"")
        return pred == gold  # both empty also counts, as in ZeroEval
