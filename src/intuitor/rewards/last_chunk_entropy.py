"""Last-chunk entropy: minus the mean token entropy over the last `fraction` of the response (RENT).

RENT (Prabhudesai et al. 2025, "Maximizing Confidence Alone Improves Reasoning", arXiv 2505.22660) rewards low
entropy and reports that the entropy of the *last* tokens of a response, where the answer is stated, predicts
correctness best, better than the first tokens or the whole response. Their released trainer (satrams/rent-rl at
5d4d38a7ea91fc23636f10d63084fe4f910423b5, `verl/trainer/ppo/ray_trainer.py`, the `minimize_entropy` branch) averages
over all valid response tokens; the chunk is the paper's ablation, and the chunk size it found best could not be
read from that code: the default here, the last 25% (`fraction=0.25`), is our choice, an option of the class (1.0
gives `negative_entropy`). The chunk is the last ceil(fraction * |o|) tokens, at least one. Entropies are those of
softmax(z / self_certainty_temperature) at the positions that sampled each token, as `negative_entropy`'s. An empty
response scores 0.0.
"""

from __future__ import annotations

import math

from intuitor.rewards import factory, register_reward
from intuitor.rewards.token_level import TokenStatisticReward


class LastChunkEntropyReward(TokenStatisticReward):
    """Minus the mean entropy of the last ceil(fraction * |o|) positions of the response.

    >>> import torch
    >>> from intuitor.certainty import TokenStatistics
    >>> class Source:
    ...     def rollout_statistics(self, ids):
    ...         ent = [torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5]), torch.tensor([2.0])]
    ...         return TokenStatistics(torch.zeros(2), torch.zeros(2), [torch.zeros(5), torch.zeros(1)], ent)
    >>> r = LastChunkEntropyReward(fraction=0.25); r.bind(Source())  # ceil(1.25) = 2 last tokens of the first
    >>> r(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1, 2, 3, 4, 5], [6]])
    [-0.75, -2.0]
    """

    name = "last_chunk_entropy"

    def __init__(self, *args, fraction: float = 0.25, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < fraction <= 1:
            raise ValueError(f"last_chunk_entropy: fraction={fraction} must be in (0, 1]")
        self.fraction = fraction

    def value(self, log_probs, entropies) -> float:
        n = entropies.numel()
        if not n:
            return 0.0
        k = max(1, math.ceil(self.fraction * n - 1e-9))  # 1e-9: 0.25 * 8 is 2, not 3, after float rounding
        return -entropies[n - k :].mean().item()


@register_reward(
    "last_chunk_entropy",
    "minus the mean token entropy of the response's last 25% (RENT)",
    "RENT (Prabhudesai et al. 2025)",
)
@factory
def build(config=None):
    return LastChunkEntropyReward(temperature=config.self_certainty_temperature if config else 1.0)
