"""Plurality vote (GRPO-PV, as in TTRL, Zuo et al. 2025): agree with your group's most common answer.

For each prompt, the answers extracted from its G samples vote; the most common one is the pseudo-label, and a
sample scores 1.0 when its answer equals it, else 0.0. No gold answer is used. Details:
- Answers come from the task's extractor (config.answer_extractor) or `intuitor.training.metrics.generic_extract`
  (last `\\boxed{}`, else last number), then are lightly canonicalised (`canonical_answer`: spaces, `$`, a final
  period, thousands commas and trailing zeros of plain numbers) and compared as strings.
- No answer (None) never votes and never matches; a group without any answer scores all 0.
- Ties: among the answers with the highest count, the one that occurs first in the group (lowest sample index)
  wins. Deterministic, and the same on every process.
- The vote needs the whole group, which TRL may split across processes: answers are gathered (`GroupAware`), the
  vote is taken on the global batch, and each process returns its own slice.

Departs from TTRL, which grades each answer against the label with a math-equivalence checker: string equality of
canonical answers is exact for numbers and costs nothing; `\\frac{1}{2}` and `0.5` count as different answers.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from intuitor.rewards import factory, register_reward
from intuitor.rewards.group import GroupAware, completion_text

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def canonical_answer(answer: str | None) -> str | None:
    """A light canonical form for voting; None stays None.

    >>> canonical_answer(" $1,200.50$ "), canonical_answer("2.0"), canonical_answer("x = 3."), canonical_answer("")
    ('1200.5', '2', 'x=3', None)
    """
    if answer is None:
        return None
    a = re.sub(r"\s+", "", str(answer)).strip("$").rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", a):
        a = a.replace(",", "")
    if _PLAIN_NUMBER.fullmatch(a) and "." in a:
        a = a.rstrip("0").rstrip(".")
    if a in ("-0",):
        a = "0"
    return a or None


def plurality_labels(answers: list, group_size: int) -> list:
    """The pseudo-label of each group: its most common non-None answer, ties to the earliest; None if no answer.

    >>> plurality_labels(["1", "2", "2", "1", None, None, None, "7", "3", "4", "4", "3"], 4)
    ['1', '7', '3']
    """
    labels = []
    for start in range(0, len(answers), group_size):
        counts = Counter(a for a in answers[start : start + group_size] if a is not None)
        # Counter keeps first-seen order and max() returns the first maximum: ties go to the earliest answer.
        labels.append(max(counts, key=counts.get) if counts else None)
    return labels


class PluralityVoteReward(GroupAware):
    """1.0 when a sample's answer equals its group's plurality answer, else 0.0.

    >>> reward = PluralityVoteReward(num_generations=4)
    >>> reward(prompts=["q"] * 8, completions=["\\\\boxed{5}", "5.0", "so 6", "none",  "1", "2", "2", "1"])
    [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    """

    __name__ = "plurality_vote"

    def __init__(self, extractor: str | None = None, num_generations: int | None = None,
                 extract: Callable[[str], str | None] | None = None):
        self.extractor, self.num_generations, self._extract = extractor, num_generations, extract

    def __getstate__(self):
        state = super().__getstate__()
        if self.extractor is not None:
            state["_extract"] = None  # rebuilt from the task name
        return state

    def extract(self, text: str) -> str | None:
        if self._extract is None:
            from intuitor.training.metrics import answer_extractor

            self._extract = answer_extractor(self.extractor)
        return canonical_answer(self._extract(text))

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        local = [self.extract(completion_text(c)) for c in completions]
        answers, mine = self.gather_groups(local)
        size = self.group_size()
        labels = plurality_labels(answers, size)
        rewards = [float(a is not None and a == labels[i // size]) for i, a in enumerate(answers)]
        return rewards[mine]


@register_reward("plurality_vote", "1 if the answer matches the group's most common answer (GRPO-PV)",
                 "TTRL (Zuo et al. 2025)")
@factory
def build(config=None):
    if config is None:
        return PluralityVoteReward()
    return PluralityVoteReward(extractor=config.answer_extractor, num_generations=config.num_generations)
