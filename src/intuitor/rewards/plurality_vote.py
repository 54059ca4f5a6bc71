"""Plurality vote (GRPO-PV, as in TTRL, Zuo et al. 2025): agree with your group's most common answer.

For each prompt, the answers extracted from its G samples vote; the most common one is the pseudo-label, and a
sample scores 1.0 when its answer equals it, else 0.0. No gold answer is used. Details:
- Answers come from the task's extractor (config.answer_extractor) or, with no task, the math tasks' own
  (`intuitor.tasks.mathverify.extract_answer`: last `\\boxed{}`, nested braces kept, else the final answer).
- Equal answers vote together: grouped by the task's own comparison (`answer_classes`; the math tasks and no task:
  math-verify equivalence, so `\\$18`/`18`, `\\text{13}`/`13`, `13\\text{ cm}`/`13`, `28\\%`/`28`,
  `\\dfrac12`/`\\frac{1}{2}`, `\u2212 3`/`-3`, `x=3`/`3` are one answer), else by `canonical_answer` strings
  (`intuitor.tasks.answers.answer_grouper`). Plain numbers are grouped by an exact key in this process; only
  LaTeX answers go to math-verify, in its time-limited helper process, once per batch.
- No answer (None) never votes and never matches; a group without any answer scores all 0.
- Ties: among the answer groups with the highest count, the one whose first sample comes first in the group wins.
  Deterministic, and the same on every process.
- The vote needs the whole group, which TRL may split across processes: answers are gathered (`GroupAware`), the
  vote is taken on the global batch, and each process returns its own slice.

- Votes are over the G trained samples only. TTRL votes over more samples than it trains on (64 votes, 32 trained);
  TRL 1.16 has no seam for that: `_generate_single_turn` is the one place that sees the samples, and everything it
  returns is scored, passed through the log-prob passes and trained on, so vote-only samples would need a second
  generation path beside TRL's (README, "Label-free estimators").

As TTRL, which grades each answer against the majority label with a math-equivalence checker; grouping is
"equal to the group's earliest answer of that value" (math-verify equality is not always transitive:
`28\\%` equals both `28` and `0.28`; exact numbers never chain that way here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from intuitor.rewards import factory, register_reward
from intuitor.rewards.group import GroupAware, completion_text
from intuitor.tasks.answers import answer_extractor, answer_grouper, canonical_answer  # noqa: F401  (re-exported)


def vote(answers: list, group_size: int, classes: Callable | None = None) -> tuple[list, list[int | None]]:
    """(winning class of each group, class of each answer). A class is the index of its first answer in `answers`;
    a group's winner is its most common class, ties to the earliest; None when the group has no answer.

    >>> vote(["1", "2", "2.0", "1", None, None, None, "7"], 4)
    ([0, 7], [0, 1, 1, 0, None, None, None, 7])
    """
    ids = (classes or answer_grouper(None))(list(answers), group_size)
    winners = []
    for start in range(0, len(ids), group_size):
        counts = Counter(c for c in ids[start : start + group_size] if c is not None)
        # A class id is the index of its first answer: ties go to the smallest id, the earliest answer.
        winners.append(max(counts, key=lambda c: (counts[c], -c)) if counts else None)
    return winners, ids


def plurality_labels(answers: list, group_size: int, classes: Callable | None = None) -> list:
    """The pseudo-label of each group: its most common answer, ties to the earliest; None if no answer.

    >>> plurality_labels(["1", "2", "2", "1", None, None, None, "7", "3", "4", "4", "3"], 4)
    ['1', '7', '3']
    """
    return [None if w is None else answers[w] for w in vote(answers, group_size, classes)[0]]


class PluralityVoteReward(GroupAware):
    """1.0 when a sample's answer equals its group's plurality answer, else 0.0.

    >>> reward = PluralityVoteReward(num_generations=4)
    >>> reward(prompts=["q"] * 8, completions=["\\\\boxed{5}", "5.0", "so 6", "none",  "1", "2", "2", "1"])
    [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    """

    __name__ = "plurality_vote"

    def __init__(
        self,
        extractor: str | None = None,
        num_generations: int | None = None,
        extract: Callable[[str], str | None] | None = None,
        classes: Callable | None = None,
    ):
        self.extractor, self.num_generations, self._extract, self._classes = (
            extractor,
            num_generations,
            extract,
            classes,
        )

    def __getstate__(self):
        state = super().__getstate__()
        if self.extractor is not None:
            state["_extract"] = None  # rebuilt from the task name
            state["_classes"] = None
        return state

    def extract(self, text: str) -> str | None:
        if self._extract is None:
            self._extract = answer_extractor(self.extractor)
        return self._extract(text)

    def classes(self, answers: list, group_size: int) -> list[int | None]:
        if self._classes is None:
            self._classes = answer_grouper(self.extractor)
        return self._classes(answers, group_size)

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        local = [self.extract(completion_text(c)) for c in completions]
        answers, mine = self.gather_groups(local)
        size = self.group_size()
        winners, ids = vote(answers, size, self.classes)
        rewards = [float(c is not None and c == winners[i // size]) for i, c in enumerate(ids)]
        return rewards[mine]


@register_reward(
    "plurality_vote", "1 if the answer matches the group's most common answer (GRPO-PV)", "TTRL (Zuo et al. 2025)"
)
@factory
def build(config=None):
    if config is None:
        return PluralityVoteReward()
    return PluralityVoteReward(extractor=config.answer_extractor, num_generations=config.num_generations)
