"""Trajectory entropy: the mean log-probability of the sampled tokens, (1/|o|) sum_i log p(o_i | q, o_<i).

Minus the per-token Monte-Carlo estimate of the response's trajectory-level entropy: rewarding it sharpens the
policy towards its own likeliest responses. As the unsupervised-RLVR study defines it (He et al. 2026, "How Far
Can Unsupervised RLVR Scale LLM Training?", arXiv 2603.08660; the estimator of EM-RL's sequence-level reward,
Agarwal et al. 2025, normalised by length). Their branch of PRIME-RL/TTRL was not reachable here (the stored
snapshot, 3e2cc93, has only TTRL's main branch); the definition follows the paper and the same quantity as a
length-normalised `-masked_mean(old_log_probs)` in verl-based certainty analyses. The log-probabilities are those
of softmax(z / self_certainty_temperature), the temperature of the other statistics (1.0 by default: the policy's
own distribution, whatever the sampling temperature). An empty response scores 0.0.
"""

from __future__ import annotations

from intuitor.rewards import factory, register_reward
from intuitor.rewards.token_level import TokenStatisticReward


class TrajectoryEntropyReward(TokenStatisticReward):
    """Mean log p of the response's tokens (<= 0; higher = the policy finds its own response likelier).

    >>> import math, torch
    >>> from intuitor.certainty import TokenStatistics
    >>> class Source:
    ...     def rollout_statistics(self, ids):
    ...         lp = [torch.tensor([math.log(0.5), math.log(0.25)]), torch.tensor([0.0])]
    ...         return TokenStatistics(torch.zeros(2), torch.zeros(2), lp, [torch.zeros(2), torch.zeros(1)])
    >>> r = TrajectoryEntropyReward(); r.bind(Source())
    >>> [round(v, 6) for v in r(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1, 2], [3]])]
    [-1.039721, 0.0]
    """

    name = "trajectory_entropy"

    def value(self, log_probs, entropies) -> float:
        return log_probs.mean().item() if log_probs.numel() else 0.0


@register_reward(
    "trajectory_entropy",
    "mean log-prob of the sampled tokens, minus the trajectory entropy (URLVR)",
    "He et al. 2026 (URLVR); EM-RL (Agarwal et al. 2025)",
)
@factory
def build(config=None):
    return TrajectoryEntropyReward(temperature=config.self_certainty_temperature if config else 1.0)
