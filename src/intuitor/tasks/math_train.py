"""MATH train split (Hendrycks et al. 2021): INTUITOR's training set, and the chat prompt shared by the math tasks.

7,500 problems; the authors train on `DigitalLearningGmbH/MATH-lighteval` (train) with open-r1 (paper Sec. 4).
Local rows (`math_full/train.jsonl`) carry the final answer already; hub rows carry the worked `solution`, whose
last `\\boxed{}` is the answer. INTUITOR itself never looks at the answer: it rides along for the accuracy reward
that is logged for monitoring (weight 0 in the authors' recipes) and for GRPO baselines. A training row without an
answer loads with answer "" (label-free training needs none; `intuitor train` refuses it only for a gold reward).

The prompt is the chat format of training, which the paper also uses for evaluation ("Evaluations generally use
the same chat-style prompting format as in training", Sec. 4): the system prompt below, then the problem as the
user message. `MATH_SYSTEM_PROMPTS` holds the paper's prompt per model (Appendix B.1, identical to
`system_prompt` in the authors' open-r1 recipes); the default is the Qwen2.5-3B one, the paper's default model.
`MathTask` is the shared base of `math`, `math500` and `gsm8k`: `extract`, `score` and `answer_classes` are
`intuitor.tasks.mathverify`'s `extract_answer`, `answer_equal` and `answer_classes`, the same code the accuracy
reward, the plurality vote and `select` use; `score` grades exactly the answer `extract` shows.
"""

from __future__ import annotations

from typing import Any

from intuitor.tasks.base import Task, gold_text, load_records, register_task, require_fields
from intuitor.tasks.mathverify import answer_classes, answer_equal, extract_answer, extract_boxed


# Source: INTUITOR paper (arXiv 2505.19590) Appendix B.1 "Training Prompts", verbatim (typos included: the model
# was trained on them), = `system_prompt` of the authors' open-r1-intuitor recipes.
MATH_SYSTEM_PROMPTS = {
    "qwen2.5-1.5b": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. You FIRST think "
        "about the reasoning process step by step and then provide the user with the answer. Please enclose your "
        "final answer in the box: \\boxed{Your Answer}."
    ),
    "qwen2.5-3b": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. You FIRST think "
        "about the reasoning process step by step and then provide the user with the answer. Please enclose your "
        "final answer in the box: \\boxed{Your Answer}. Please stop generation immediately after outputing the box."
    ),
    "qwen2.5-7b": (
        "You are a helpful AI Assistant, designed to provided well-reasoned and detailed responses. Please provide a "
        "step-by-step solution to the following problem."
    ),
}
MATH_SYSTEM_PROMPTS["qwen2.5-14b"] = MATH_SYSTEM_PROMPTS["qwen2.5-7b"]
MATH_SYSTEM_PROMPT = MATH_SYSTEM_PROMPTS["qwen2.5-3b"]


class MathTask(Task):
    """Shared behaviour of the math tasks: the training chat prompt, boxed-answer extraction, math-verify scoring.

    `system_prompt` is a key of `MATH_SYSTEM_PROMPTS` or the literal text; `timeout_s` bounds each check.
    """

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        system_prompt: str = "qwen2.5-3b",
        timeout_s: float = 5.0,
    ):
        super().__init__(path, data_dir)
        self.system_prompt = MATH_SYSTEM_PROMPTS.get(system_prompt, system_prompt)
        self.timeout_s = timeout_s

    def prompt(self, problem: str) -> list[dict[str, str]]:
        """The chat messages of one problem: the system prompt, then the problem as the user turn."""
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": problem}]

    def extract(self, response: str) -> str | None:
        """The answer the response states, as graded (`intuitor.tasks.mathverify.extract_answer`): the last
        `\\boxed{}` (a run of adjacent boxes is one list), else GSM8K's `#### N`, else the final stated answer.

        >>> task = MathTask()
        >>> task.extract(r"so \\boxed{\\frac{1}{2}}"), task.extract("in total 1,234 eggs."), task.extract("none")
        ('\\\\frac{1}{2}', '1,234', None)
        """
        return extract_answer(response)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        """Whether `extract(response)`, the answer shown, equals the row's gold (`mathverify.answer_equal`)."""
        return answer_equal(self.extract(response), row["answer"], timeout_s=self.timeout_s)

    def answer_classes(self, answers: list, group_size: int | None = None) -> list[int | None]:
        """Groups of equal answers for votes (majority, Borda, plurality reward): see `mathverify.answer_classes`."""
        return answer_classes(answers, group_size, timeout_s=self.timeout_s)


@register_task
class MathTrain(MathTask):
    """MATH train split: prompts for RL training (the paper's training set), answers for the accuracy reward."""

    name = "math"
    version = 3  # 2: shared answer extraction (intuitor.tasks.mathverify: lists, ####, bare LaTeX, exactness)
    # 3: no credit for an expression cut off mid-way, mixed numbers `2 2/3`, inequalities answer intervals
    default_path = "math_full/train.jsonl"
    hub_id = "DigitalLearningGmbH/MATH-lighteval"

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for i, (where, r) in enumerate(load_records(self, limit, split="train")):
            require_fields(r, (), where, text=("problem",))
            if "answer" not in r and isinstance(r.get("solution"), str):  # hub rows: the solution ends in \boxed{}
                answer = extract_boxed(r["solution"])
                if answer is None:
                    raise ValueError(f"{where}: solution has no \\boxed{{}} answer")
            else:
                # golds never required: this is a training split, and MATH train itself has a row without answer
                answer = gold_text(r, "answer", where, required=False)
            rows.append(
                {
                    "id": str(r.get("index", i)),
                    "prompt": self.prompt(r["problem"]),
                    "answer": answer,
                    "level": str(r.get("level", "")),
                    "type": str(r.get("type", "")),
                }
            )
        return rows
