"""Random: a seeded uniform reward in [0, 1), the null control.

A policy trained on it learns nothing about the task; gains over it measure what a real reward adds (the demo
trains it beside self-certainty; "spurious rewards", Shao et al. 2025, discuss random rewards on Qwen models).
Deterministic: call n of a reward seeded s on process r draws from a generator seeded with a hash of (s, r, n), so
a rerun with the same seed gives the same rewards in the same order, and processes draw different ones.
"""

from __future__ import annotations

import hashlib
import random

from intuitor.rewards import factory, register_reward


class RandomReward:
    """Uniform [0, 1) rewards, reproducible from (seed, process index, call count).

    >>> a, b = RandomReward(seed=1), RandomReward(seed=1)
    >>> first = a(prompts=["q"] * 3, completions=["x"] * 3)
    >>> first == b(prompts=["q"] * 3, completions=["x"] * 3), first != a(prompts=["q"] * 3, completions=["x"] * 3)
    (True, True)
    >>> all(0.0 <= r < 1.0 for r in first)
    True
    """

    __name__ = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.calls = 0

    def _rng(self) -> random.Random:
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        key = f"{self.seed}:{rank}:{self.calls}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        rng = self._rng()
        self.calls += 1
        return [rng.random() for _ in completions]


@register_reward(
    "random",
    "uniform random reward in [0, 1), seeded: the null control",
    "control (spurious rewards, Shao et al. 2025)",
)
@factory
def build(config=None):
    return RandomReward(seed=config.seed if config is not None else 0)
