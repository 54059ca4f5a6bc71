"""MMLU-Pro (Wang et al. 2024): 12,032 ten-option multiple-choice questions in 14 subjects, a column of Table 1.

Reference: TIGER-AI-Lab/MMLU-Pro `evaluate_from_local.py` at commit f418b116db00b065c2aea046518d8fcf74d39872 (the
paper evaluates MMLU-Pro with the benchmark's original prompt, not the chat template: "All evaluations are obtained
with the chat inference template, except for MMLU-Pro"). Matched:
- Prompt (`generate_cot_prompt` + `format_cot_example`, lines 79-108): a plain string (the harness feeds it as is),
  `cot_prompt_lib/initial_prompt.txt` with the subject (the file ends in two empty lines, and the code adds one more
  newline), optional worked examples of the same subject, then the question, options lettered A, B, C, ... ("N/A"
  options dropped, `preprocess`, lines 51-61) and "Answer: Let's think step by step.". The original uses 5 examples;
  the local data has no validation split, so the default here is zero-shot (`num_fewshot=5` with `fewshot_path` = a
  validation .jsonl, or the hub, for the original).
- Stop: generation ends at "Question:" (`SamplingParams(stop=["Question:"])`, line 37), so a model that goes on to
  invent the next question is graded on its answer to this one.
- Extraction (`extract_answer` / `extract_again` / `extract_final`, lines 111-135): `answer is \\(?([A-J])\\)?`
  (first match), then `.*[aA]nswer:\\s*([A-J])`, then the last standalone capital A-J.
- Gold: the `answer` letter, which the reference compares the prediction with (`save_res`, line 163). One row
  (question_id 3983, "In which of the following is not the negative end of the bond written last?") has `answer` C
  (N-H) but `answer_index` 1 (P-Cl). From the question, C is right: Cl is more electronegative than P, so P-Cl does
  write its negative end last, while N is more electronegative than H and is written first. So `answer` is gold
  (the data README's advice to trust `answer_index` is wrong for this row); `answer_index` is used only when
  `answer` is missing.
Departure, reported side by side: when no letter is found the reference draws `random.randint` (seeded 12345) and
counts a hit as correct (`save_res`, lines 157-160). `score` here is strict (no letter = wrong); `aggregate` adds
`score_reference`, the same seeded draw for each response without a letter (one draw per such response in (id,
sample) order: the reference's exact stream also depends on its subject loop and its double `save_res` call, so
only the law matches), and `no_answer`, the share of responses without a letter.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any

from intuitor.tasks.base import Task, gold_text, load_records, read_records, register_task, require_fields


LETTERS = "ABCDEFGHIJKLMNOP"  # the original's `choices`; MMLU-Pro has at most 10 options

# TIGER-AI-Lab/MMLU-Pro cot_prompt_lib/initial_prompt.txt ({$} = the subject; the file ends in "\n\n\n"), followed
# by the "\n" that generate_cot_prompt adds.
HEADER_TEMPLATE = (
    "The following are multiple choice questions (with answers) about {subject}. Think step by step and then finish "
    'your answer with "the answer is (X)" where X is the correct letter choice.\n\n\n\n'
)
REFERENCE_SEED = 12345  # evaluate_from_local.py: random.seed(12345), for the letter drawn when none is found
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


def count_options(prompt: str) -> int:
    """Number of options of the question a rendered prompt ends with (its last "Options:" block); at least 1.

    >>> count_options("Question:\\nQ?\\nOptions:\\nA. x\\nB. y\\nC. z\\nAnswer: Let's think step by step.")
    3
    """
    block = prompt.rsplit("Options:\n", 1)[-1]
    return max(1, len(re.findall(r"^[A-P]\. ", block, re.M)))


@register_task
class MMLUPro(Task):
    """MMLU-Pro test, original CoT prompt without chat template, "the answer is (X)" extraction."""

    name = "mmlu_pro"
    version = 2  # 2: reference header, stop at "Question:", gold = `answer`, score_reference
    stop_sequences = ("Question:",)
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
            require_fields(r, ("options",), where, text=("question", "cot_content", "category"))
            by_subject.setdefault(r["category"], []).append(r)
        return {k: v[: self.num_fewshot] for k, v in by_subject.items()}

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        shots = self._shots()
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("question_id", "options"), where, text=("question", "category"))
            if not isinstance(r["options"], list) or not all(isinstance(o, str) for o in r["options"]):
                raise ValueError(f"{where}: field 'options' must be a list of texts")
            options = [o for o in r["options"] if o != "N/A"]  # the original's preprocess
            index = r.get("answer_index")
            if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
                raise ValueError(f"{where}: field 'answer_index' is not a whole number")
            if index is not None and not 0 <= index < len(options):
                raise ValueError(f"{where}: answer_index {index} outside the {len(options)} options")
            # `answer` is gold (module docstring), `answer_index` where it is missing; a training row may have neither
            gold = gold_text(r, "answer", where, required=False) or (LETTERS[index] if index is not None else "")
            if not gold and self.golds_required:
                raise ValueError(f"{where}: row is missing field(s) answer_index (evaluation needs every row's gold)")
            if gold and gold not in LETTERS[: len(options)]:
                raise ValueError(f"{where}: answer {gold!r} is not one of the letters of the {len(options)} options")
            subject = r["category"]
            prompt = HEADER_TEMPLATE.format(subject=subject)
            prompt += "".join(format_example(s, including_answer=True) for s in shots.get(subject, []))
            prompt += format_example({**r, "options": options}, including_answer=False)
            rows.append(
                {
                    "id": str(r["question_id"]),
                    "prompt": prompt,
                    "answer": gold,
                    "category": subject,
                    "num_options": len(options),
                }
            )
        return rows

    def extract(self, response: str) -> str | None:
        return extract_letter(response)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        return self.extract(response) == row["answer"]

    def aggregate(self, rows: list[dict]) -> dict[str, float]:
        """`score_reference` (a seeded random letter for each response without one, as the reference scores it)
        and `no_answer` (share of responses without a letter), from the sample rows of `intuitor eval`."""
        if not rows:
            return {}
        rng = random.Random(REFERENCE_SEED)
        per_problem: dict[str, list[bool]] = defaultdict(list)
        missing = 0
        for r in sorted(rows, key=lambda r: (str(r["id"]), int(r.get("sample", 0)))):
            if r.get("answer") is None:
                missing += 1
                hit = LETTERS[rng.randint(0, count_options(r.get("prompt", "")) - 1)] == r.get("gold")
            else:
                hit = bool(r["correct"])
            per_problem[str(r["id"])].append(hit)
        means = [sum(v) / len(v) for v in per_problem.values()]
        return {"score_reference": sum(means) / len(means), "no_answer": missing / len(rows)}
