"""MMLU-Pro (Wang et al. 2024): 12,032 ten-option multiple-choice questions in 14 subjects, a column of Table 1.

The paper evaluates MMLU-Pro with the benchmark's original prompt, not the chat template ("All evaluations are
obtained with the chat inference template, except for MMLU-Pro"). So `prompt` is a plain string (TRL's standard,
non-conversational format; the harness feeds a string to the model as is), built like TIGER-AI-Lab/MMLU-Pro
`evaluate_from_local.py` (`generate_cot_prompt` + `format_cot_example`): the subject header, optional worked
examples of the same subject from the validation split, then the question, its options lettered A, B, C, ... and
"Answer: Let's think step by step.". The original uses 5 examples; the local data has no validation split, so the
default here is zero-shot (`num_fewshot=5` with `fewshot_path` = a validation .jsonl, or the hub, for the original).

Gold: the letter of `answer_index` (trusted over `answer`, which disagrees on one row). Extraction: the original's
three regexes in order: `answer is \\(?([A-J])\\)?` (first match), then `.*[aA]nswer:\\s*([A-J])`, then the last
standalone capital A-J. The original scores a response with no letter by a seeded random guess; here it is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from intuitor.tasks.base import Task, load_records, read_records, register_task, require_fields

LETTERS = "ABCDEFGHIJKLMNOP"  # the original's `choices`; MMLU-Pro has at most 10 options

# TIGER-AI-Lab/MMLU-Pro cot_prompt_lib/initial_prompt.txt ({$} = the subject), followed by "\n".
HEADER_TEMPLATE = (
    'The following are multiple choice questions (with answers) about {subject}. Think step by step and then finish '
    'your answer with "the answer is (X)" where X is the correct letter choice.\n'
)
# format_cot_example: "Question:\n{question}\nOptions:\nA. ...\n" then the worked answer or the cue below.
ANSWER_CUE = "Answer: Let's think step by step."

_FIRST = re.compile(r"answer is \(?([A-J])\)?")
_SECOND = re.compile(r".*[aA]nswer:\s*([A-J])")
_FINAL = re.compile(r"\b[A-J]\b(?!.*\b[A-J]\b)", re.DOTALL)


def format_example(row: dict, including_answer: bool) -> str:
    """One question in the original CoT format (`format_cot_example`)."""
    text = "Question:\n" + row["question"] + "\nOptions:\n"
    text += "".join(f"{LETTERS[i]}. {opt}\n" for i, opt in enumerate(row["options"]))
    if including_answer:
        return text + row["cot_content"].replace("A: Let's think step by step.", ANSWER_CUE) + "\n\n"
    return text + ANSWER_CUE


def extract_letter(response: str) -> str | None:
    """The chosen letter, by the original's three rules; None when there is none.

    >>> extract_letter("... so the answer is (C)."), extract_letter("Answer: B"), extract_letter("I pick D here")
    ('C', 'B', 'D')
    >>> extract_letter("no idea") is None
    True
    """
    for pattern in (_FIRST, _SECOND, _FINAL):
        m = pattern.search(response)
        if m:
            return m.group(1) if pattern.groups else m.group(0)
    return None


@register_task
class MMLUPro(Task):
    """MMLU-Pro test, original CoT prompt without chat template, "the answer is (X)" extraction."""

    name = "mmlu_pro"
    version = 1
    default_path = "mmlu_pro/test.jsonl.gz"
    hub_id = "TIGER-Lab/MMLU-Pro"

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        num_fewshot: int = 0,
        fewshot_path: str | None = None,
    ):
        super().__init__(path, data_dir)
        if num_fewshot < 0:
            raise ValueError(f"num_fewshot={num_fewshot}: must be >= 0 (0 = zero-shot, the original uses 5)")
        self.num_fewshot, self.fewshot_path = num_fewshot, fewshot_path

    def _shots(self) -> dict[str, list[dict]]:
        if self.num_fewshot == 0:
            return {}
        if self.fewshot_path:
            records = read_records(self.fewshot_path)
        else:
            records = load_records(type(self)(), None, split="validation")  # no path, no data dir: the hub
        by_subject: dict[str, list[dict]] = {}
        for where, r in records:
            require_fields(r, ("question", "options", "cot_content", "category"), where)
            by_subject.setdefault(r["category"], []).append(r)
        return {k: v[: self.num_fewshot] for k, v in by_subject.items()}

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        shots = self._shots()
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("question_id", "question", "options", "answer_index", "category"), where)
            options = [o for o in r["options"] if o != "N/A"]  # the original's preprocess
            if not 0 <= int(r["answer_index"]) < len(options):
                raise ValueError(f"{where}: answer_index {r['answer_index']} outside the {len(options)} options")
            subject = r["category"]
            prompt = HEADER_TEMPLATE.format(subject=subject)
            prompt += "".join(format_example(s, including_answer=True) for s in shots.get(subject, []))
            prompt += format_example({**r, "options": options}, including_answer=False)
            rows.append(
                {
                    "id": str(r["question_id"]),
                    "prompt": prompt,
                    "answer": LETTERS[int(r["answer_index"])],
                    "category": subject,
                    "num_options": len(options),
                }
            )
        return rows

    def extract(self, response: str) -> str | None:
        return extract_letter(response)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        return self.extract(response) == row["answer"]
