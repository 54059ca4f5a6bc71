"""Cluster frequency (EMPO, Zhang et al. 2025): the share of the group's samples whose answer equals this one's.

EMPO's semantic-entropy reward for math (QingyangZhang/EMPO at c5eccd400ba7a7a1685dedf25eab03780aad855f,
`trl/src/open_r1/rewards.py`, `semantic_entropy_math_reward`): the G answers of a prompt are clustered by an
equivalence rule (`get_semantic_ids_by_rule`, math-verify there), and a sample scores its cluster's share
count / G, the empirical probability of its semantic answer; a sample with no answer scores 0. Here the
clusters are the task's own answer classes (as `plurality_vote` groups its votes: math-verify equivalence for the
math tasks, canonical strings for the others), and the denominator is G, every sample of the group, answered or
not. EMPO's guard is kept: when the cluster entropy reaches log G (every sample in a cluster of its own, samples
without an answer counted as one cluster, as EMPO's empty predictions are), the whole group scores 0. The vote over
the group uses the same gathering as `plurality_vote` (groups split across processes are gathered).
"""

from __future__ import annotations

import math
from collections import Counter

from intuitor.rewards import factory, register_reward
from intuitor.rewards.group import completion_text
from intuitor.rewards.plurality_vote import PluralityVoteReward


def cluster_frequencies(ids: list, group_size: int) -> list[float]:
    """Per sample: its answer class's count / G, 0 for no answer (None); all 0 in a group whose cluster entropy is
    log G. `ids` are answer classes (`vote`'s second output).

    >>> cluster_frequencies([0, 0, 2, None, 4, 5, 6, 7], 4)
    [0.5, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    >>> cluster_frequencies([0, 1, None, None], 4)  # the two unanswered form one cluster: entropy < log 4
    [0.25, 0.25, 0.0, 0.0]
    """
    out = []
    for start in range(0, len(ids), group_size):
        group = ids[start : start + group_size]
        counts = Counter(group)  # None (no answer) is one cluster for the entropy, as EMPO's '' predictions
        entropy = -sum(c / group_size * math.log(c / group_size) for c in counts.values())
        spread = entropy >= math.log(group_size) - 1e-12
        out += [0.0 if spread or c is None else counts[c] / group_size for c in group]
    return out


class ClusterFrequencyReward(PluralityVoteReward):
    """Share of the group's G samples whose answer is equivalent to this sample's (0 without an answer).

    >>> reward = ClusterFrequencyReward(num_generations=4)
    >>> reward(prompts=["q"] * 4, completions=["\\\\boxed{5}", "5.0", "so 6", "none"])
    [0.5, 0.5, 0.25, 0.0]
    """

    __name__ = "cluster_frequency"

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        local = [self.extract(completion_text(c)) for c in completions]
        answers, mine = self.gather_groups(local)
        size = self.group_size()
        return cluster_frequencies(self.classes(answers, size), size)[mine]


@register_reward(
    "cluster_frequency",
    "share of the group whose answer is equivalent to this one's (EMPO)",
    "EMPO (Zhang et al. 2025)",
)
@factory
def build(config=None):
    if config is None:
        return ClusterFrequencyReward()
    return ClusterFrequencyReward(extractor=config.answer_extractor, num_generations=config.num_generations)
