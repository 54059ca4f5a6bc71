"""Negative token entropy of the response under the policy (EM-RL, Agarwal et al. 2025; RENT, Prabhudesai et al.
2025). Read from the same statistics pass as self-certainty, never from another forward."""

from __future__ import annotations

from intuitor.rewards import factory, register_reward
from intuitor.rewards.self_certainty import PolicyStatisticReward


class NegativeEntropyReward(PolicyStatisticReward):
    """Minus the mean token entropy of the response.

    >>> import torch
    >>> from intuitor.certainty import ResponseStatistics
    >>> class Source:
    ...     def rollout_statistics(self, ids): return ResponseStatistics(torch.zeros(2), torch.tensor([1.0, 0.25]))
    >>> r = NegativeEntropyReward(); r.bind(Source())
    >>> r(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1], [2]])
    [-1.0, -0.25]
    """

    name = "negative_entropy"
    statistic = "entropy"
    sign = -1.0


@register_reward("negative_entropy", "minus the mean token entropy of the response", "EM-RL / RENT (2025)")
@factory
def build(config=None):
    if config is None:
        return NegativeEntropyReward()
    return NegativeEntropyReward(temperature=config.self_certainty_temperature, shifted=config.shifted_self_certainty)
