"""MATH500 (Lightman et al. 2023): the standard 500-problem subset of the MATH test split, a column of Table 1.

Prompt: the training chat format (see `intuitor.tasks.math_train`), as the paper evaluates MATH500 with lighteval on
its training prompt; greedy decoding. Gold: the data set's `answer`. Score: `math_equal` (the answer `extract` shows,
the last `\\boxed{}` of the response, against the gold, compared by math-verify: `\\frac{1}{2}` = `0.5`,
`(3, \\frac{\\pi}{2})` as a tuple). Reference: lighteval's `math_pass_at_1_1n`; where and why we depart from it:
`intuitor.tasks.mathverify`.
"""

from __future__ import annotations

from typing import Any

from intuitor.tasks.base import gold_text, load_records, register_task, require_fields
from intuitor.tasks.math_train import MathTask


@register_task
class Math500(MathTask):
    """MATH500, scored by math-verify."""

    name = "math500"
    version = 3  # 2: shared answer extraction (intuitor.tasks.mathverify: lists, bare LaTeX, exactness)
    # 3: no credit for an expression cut off mid-way, mixed numbers `2 2/3`, inequalities answer intervals
    default_path = "math500/test.jsonl"
    hub_id = "HuggingFaceH4/MATH-500"

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("unique_id",), where, text=("problem",))
            rows.append(
                {
                    "id": str(r["unique_id"]),
                    "prompt": self.prompt(r["problem"]),
                    "answer": gold_text(r, "answer", where, required=self.golds_required),
                    "subject": str(r.get("subject", "")),
                    "level": str(r.get("level", "")),
                }
            )
        return rows
