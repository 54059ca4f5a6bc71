"""GSM8K test (Cobbe et al. 2021): 1,319 grade-school word problems, a column of the paper's Table 1.

Reference: lighteval's `gsm8k` task at commit 9619194bdbf42fcdc2078f29db49de6d883bfa2e (May 2025, the version the
paper's open-r1 tooling ran: `lighteval vllm ... --use-chat-template --system-prompt ...`): prompt function
`default_prompts.gsm8k` (src/lighteval/tasks/default_prompts.py line 930), task config `gsm8k_lighteval`
(src/lighteval/tasks/default_tasks.py lines 7995-8012), metric `Metrics.expr_gold_metric` (src/lighteval/metrics/
metrics.py lines 195-203). Matched:
- Prompt: the training system prompt (see `intuitor.tasks.math_train`; the authors pass it with `--system-prompt`),
  then lighteval's query as the user message: "Question: {question}\nAnswer:".
- Stop: generation ends at "Question:" (`stop_sequence=["Question:"]`), so a model that goes on to invent the next
  question is graded on its answer to this one.
- Gold: the number after `#### ` in the worked solution, thousands commas removed (`#### 1,234` -> `1234`).
Score: `math_equal` (`intuitor.tasks.mathverify`, shared with the accuracy reward): the last `\\boxed{}` of the
response, else math-verify's own extraction; see that module for where it departs from lighteval's extractive match.
lighteval also caps GSM8K generations at 256 new tokens (`generation_size`); that is the harness's
`--max-new-tokens`, not a property of the task.
"""

from __future__ import annotations

from typing import Any

from intuitor.tasks.base import gold_text, load_records, register_task, require_fields
from intuitor.tasks.math_train import MathTask
from intuitor.tasks.mathverify import extract_gsm8k_gold


# lighteval default_prompts.gsm8k: the query (the user message under --use-chat-template)
QUERY_TEMPLATE = "Question: {question}\nAnswer:"


@register_task
class GSM8K(MathTask):
    """GSM8K test split, scored by math-verify against the `#### N` number."""

    name = "gsm8k"
    version = 4  # 2: lighteval's "Question: ...\nAnswer:" user message and its "Question:" stop
    # 3: shared answer extraction (intuitor.tasks.mathverify): `#### N` beats a later remark, thin-space thousands
    # 4: no credit for an expression cut off mid-way, mixed numbers `2 2/3`, inequalities answer intervals
    stop_sequences = ("Question:",)
    gold_fields = ("answer", "solution")
    default_path = "gsm8k/test.jsonl"
    hub_id = "openai/gsm8k"

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for i, (where, r) in enumerate(load_records(self, limit, split="test", hub_name="main")):
            require_fields(r, (), where, text=("question",))
            solution = gold_text(r, "answer", where, required=self.golds_required)
            try:
                gold = extract_gsm8k_gold(solution) if solution.strip() else ""
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            prompt = self.prompt(QUERY_TEMPLATE.format(question=r["question"]))
            rows.append({"id": str(i), "prompt": prompt, "answer": gold, "solution": solution})
        return rows
