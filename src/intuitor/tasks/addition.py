"""Three-digit addition: the synthetic task of the demo's reasoning sandbox.

Problems are `a + b` with 100 <= a, b <= 999, written one token per digit ("3 4 7 + 5 8 9") for the demo's
word-level tokenizer. The base model of `intuitor demo` (see `intuitor.demo.base_model`) was pretrained on three
response styles for the same problems, and it picks one with its very first token:

    direct   answer 9 3 6
    worked   7 + 9 = 1 6 ; 4 + 8 + 1 = 1 3 ; 3 + 5 + 1 = 9 ; answer 9 3 6
    restate  the sum of 3 4 7 and 5 8 9 is the sum of 5 8 9 and 3 4 7 ; answer 9 3 6

`direct` guesses in one shot (a tiny model is often wrong), `worked` adds column by column with carries (long and
nearly always right), and `restate` is a control: as long and as fluent as `worked` but computing nothing, so a reward
that merely liked long, confident text would pick it and gain no accuracy. `style` classifies a response.

Every problem belongs to exactly one split by a hash of its text (10% held out), so the held-out rows are never seen
by the base model's pretraining nor by RL training; within a split, rows are drawn by a seeded generator, so
`load` is deterministic. Not a task of the paper: it exists to make INTUITOR's effect visible on a CPU in minutes.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from intuitor.tasks.base import Task, register_task


LOW, HIGH = 100, 999  # operands are three-digit numbers
HELDOUT_PERCENT = 10  # share of all problems reserved for evaluation
STYLES = ("direct", "worked", "restate")


def spaced(n: int | str) -> str:
    """Digits of n separated by spaces: spaced(936) == '9 3 6'."""
    return " ".join(str(n))


def problem_text(a: int, b: int) -> str:
    """The user message of problem a + b: '3 4 7 + 5 8 9'."""
    return f"{spaced(a)} + {spaced(b)}"


def is_heldout(a: int, b: int) -> bool:
    """Whether problem a + b belongs to the held-out split (a stable hash, the same on every machine)."""
    digest = hashlib.sha256(f"{a}+{b}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def columns(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """Column additions from the ones up: (digit of a, digit of b, carry in, column sum).

    >>> columns(347, 589)
    [(7, 9, 0, 16), (4, 8, 1, 13), (3, 5, 1, 9)]
    """
    out, carry = [], 0
    for x, y in zip(reversed(str(a)), reversed(str(b))):
        s = int(x) + int(y) + carry
        out.append((int(x), int(y), carry, s))
        carry = s // 10
    return out


def render(style: str, a: int, b: int) -> str:
    """The response of `style` to a + b, with the right answer (the base model's pretraining text).

    >>> render("direct", 347, 589)
    'answer 9 3 6'
    >>> render("worked", 347, 589)
    '7 + 9 = 1 6 ; 4 + 8 + 1 = 1 3 ; 3 + 5 + 1 = 9 ; answer 9 3 6'
    >>> render("restate", 347, 589)
    'the sum of 3 4 7 and 5 8 9 is the sum of 5 8 9 and 3 4 7 ; answer 9 3 6'
    """
    answer = f"answer {spaced(a + b)}"
    if style == "direct":
        return answer
    if style == "worked":
        steps = [f"{x} + {y}{' + 1' if c else ''} = {spaced(s)}" for x, y, c, s in columns(a, b)]
        return " ; ".join(steps + [answer])
    if style == "restate":
        return f"the sum of {spaced(a)} and {spaced(b)} is the sum of {spaced(b)} and {spaced(a)} ; {answer}"
    raise ValueError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")


_ANSWER = re.compile(r"answer((?:\s*\d)+)")
_DIGITS = r"\d(?: \d)*"
_COLUMN = r"\d \+ \d(?: \+ 1)? = \d(?: \d)?"
_STYLE_PATTERNS = {
    "direct": re.compile(rf"answer {_DIGITS}"),
    "worked": re.compile(rf"{_COLUMN}(?: ; {_COLUMN})* ; answer {_DIGITS}"),
    "restate": re.compile(
        rf"the sum of {_DIGITS} and {_DIGITS} is the sum of {_DIGITS} and {_DIGITS} ; answer {_DIGITS}"
    ),
}


def _normalise(response: str) -> str:
    return " ".join(response.split())


def style(response: str) -> str:
    """Which of the pretraining styles a response follows in form (right or wrong): direct, worked, restate or other.

    >>> style("answer 9 3 6"), style("7 + 9 = 1 6 ; answer 1 6"), style("answer 9 3 6 answer")
    ('direct', 'worked', 'other')
    """
    text = _normalise(response)
    for name, pattern in _STYLE_PATTERNS.items():
        if pattern.fullmatch(text):
            return name
    return "other"


@register_task
class AdditionTask(Task):
    """Three-digit addition rows: held-out (`split="test"`, for evaluation) or training (`split="train"`)."""

    name = "addition"
    version = 1
    sizes = {"test": 500, "train": 20000}

    def __init__(self, path: str | None = None, data_dir: str | None = None, split: str = "test", seed: int = 0):
        super().__init__(path, data_dir)
        if split not in self.sizes:
            raise ValueError(f"split={split!r}: expected one of {', '.join(self.sizes)}")
        self.split = split
        self.seed = seed

    def problems(self, n: int) -> list[tuple[int, int]]:
        """The first n distinct problems (a, b) of this split, in a fixed pseudo-random order."""
        rng = random.Random(f"addition/{self.split}/{self.seed}")
        heldout = self.split == "test"
        seen: set[tuple[int, int]] = set()
        out = []
        while len(out) < n:
            a, b = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
            if (a, b) not in seen and is_heldout(a, b) == heldout:
                seen.add((a, b))
                out.append((a, b))
        return out

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        n = self.sizes[self.split] if limit is None else min(limit, self.sizes[self.split])
        return [
            {
                "id": f"{self.split}-{i}",
                "prompt": [{"role": "user", "content": problem_text(a, b)}],
                "answer": str(a + b),
                "a": a,
                "b": b,
            }
            for i, (a, b) in enumerate(self.problems(n))
        ]

    def extract(self, response: str) -> str | None:
        """Digits after the last 'answer', spaces removed; None when there is no answer.

        >>> AdditionTask().extract("7 + 9 = 1 6 ; answer 1 6"), AdditionTask().extract("1 6")
        ('16', None)
        """
        matches = _ANSWER.findall(response)
        return "".join(matches[-1].split()) if matches else None

    def score(self, response: str, row: dict[str, Any]) -> bool:
        return self.extract(response) == str(row["answer"])

    style = staticmethod(style)
