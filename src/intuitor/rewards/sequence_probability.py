"""Sequence probability: the probability the policy gives its whole sampled response, p(o | q) = prod_i p(o_i | ..).

Computed as exp(sum_i log p(o_i | q, o_<i)) in float64, not length-normalised: the probability of the response
itself, as the unsupervised-RLVR study lists it among the probability-based intrinsic rewards (He et al. 2026,
arXiv 2603.08660; RLSC, Li et al. 2025, rewards the same p(o | q)). Their code (a newer branch of PRIME-RL/TTRL)
was not reachable here, so whether they normalise by length could not be checked against it; `length_normalized=
True` gives the geometric mean per token, exp(mean log p), for runs that want it. The raw product shrinks
geometrically with length: within a group it mostly rewards the shortest responses (see the demo comparison in the
README), and past a few hundred tokens of a 0.5-probability each it is below float32's range, which TRL's reward
tensor uses (every such response then scores 0.0). Same temperature as the other statistics. An empty response
scores 1.0 (the empty product).
"""

from __future__ import annotations

import math

from intuitor.rewards import factory, register_reward
from intuitor.rewards.token_level import TokenStatisticReward


class SequenceProbabilityReward(TokenStatisticReward):
    """exp(sum log p) of the response's tokens (or exp(mean log p) with `length_normalized=True`).

    >>> import math, torch
    >>> from intuitor.certainty import TokenStatistics
    >>> class Source:
    ...     def rollout_statistics(self, ids):
    ...         lp = [torch.tensor([math.log(0.5), math.log(0.25)]), torch.tensor([math.log(0.9)])]
    ...         return TokenStatistics(torch.zeros(2), torch.zeros(2), lp, [torch.zeros(2), torch.zeros(1)])
    >>> r = SequenceProbabilityReward(); r.bind(Source())
    >>> [round(v, 6) for v in r(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1, 2], [3]])]
    [0.125, 0.9]
    """

    name = "sequence_probability"

    def __init__(self, *args, length_normalized: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.length_normalized = length_normalized

    def value(self, log_probs, entropies) -> float:
        if not log_probs.numel():
            return 1.0
        total = (log_probs.mean() if self.length_normalized else log_probs.sum()).item()
        return math.exp(total)


@register_reward(
    "sequence_probability",
    "probability of the whole sampled response, prod of token probs (URLVR)",
    "He et al. 2026 (URLVR); RLSC (Li et al. 2025)",
)
@factory
def build(config=None):
    return SequenceProbabilityReward(temperature=config.self_certainty_temperature if config else 1.0)
