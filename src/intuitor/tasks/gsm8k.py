"""GSM8K test (Cobbe et al. 2021): 1,319 grade-school word problems, a column of the paper's Table 1.

Gold: the number after `#### ` in the worked solution, thousands commas removed (`#### 1,234` -> `1234`).
Prompt: the training chat format (see `intuitor.tasks.math_train`), as the paper evaluates GSM8K with lighteval
on its training prompt; greedy decoding. Score: `math_equal` (the last `\\boxed{}` of the response, else
math-verify's own extraction of the final number).
"""

from __future__ import annotations

from typing import Any

from intuitor.tasks.base import load_records, register_task, require_fields
from intuitor.tasks.math_train import MathTask
from intuitor.tasks.mathverify import extract_gsm8k_gold


@register_task
class GSM8K(MathTask):
    """GSM8K test split, scored by math-verify against the `#### N` number."""

    name = "gsm8k"
    version = 1
    default_path = "gsm8k/test.jsonl"
    hub_id = "openai/gsm8k"

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for i, (where, r) in enumerate(load_records(self, limit, split="test", hub_name="main")):
            require_fields(r, ("question", "answer"), where)
            try:
                gold = extract_gsm8k_gold(r["answer"])
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            rows.append({"id": str(i), "prompt": self.prompt(r["question"]), "answer": gold, "solution": r["answer"]})
        return rows
