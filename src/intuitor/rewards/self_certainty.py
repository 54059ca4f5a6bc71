"""The INTUITOR reward: the policy's own self-certainty of each response (paper eq. 4).

Inside `IntuitorTrainer` the value comes from the logits the generation step computed anyway (online annotator)
or from the frozen annotator model (offline); on a stock TRL `GRPOTrainer` pass the policy model itself:

    reward = SelfCertaintyReward(model=policy, tokenizer=tok)
    GRPOTrainer(model=policy, reward_funcs=[reward], ...)

That scores with one extra no-grad pass per batch, chunked so the full logits are never materialised.
"""

from __future__ import annotations

import torch

from intuitor.certainty import response_statistics
from intuitor.rewards import factory, register_reward


class PolicyStatisticReward:
    """Base of rewards read from the policy's per-response statistics (`self_certainty` or `entropy`)."""

    needs_policy_statistics = True
    statistic = "self_certainty"
    sign = 1.0

    def __init__(self, model=None, tokenizer=None, temperature: float = 1.0, shifted: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.shifted = temperature, shifted
        self.source = None  # set by IntuitorTrainer.bind_rewards

    @property
    def __name__(self) -> str:
        return type(self).name

    def bind(self, source) -> None:
        self.source = source

    def __getstate__(self):
        # The trainer and model are process-local; a pickled reward is rebuilt unbound.
        return {**self.__dict__, "source": None}

    def _prompt_ids(self, prompts) -> list[list[int]]:
        tok = self.tokenizer
        if prompts and isinstance(prompts[0], list):  # conversational: the template, as TRL and evaluation render it
            from intuitor.generation.base import render_prompt

            return [render_prompt(tok, p)[1] for p in prompts]
        return [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        if self.source is not None:
            stats = self.source.rollout_statistics(completion_ids)
        else:
            if self.model is None or self.tokenizer is None:
                raise ValueError(
                    f"{self.__name__}: outside IntuitorTrainer, construct it with model= and tokenizer= (pass the "
                    "policy model itself for the online annotator)"
                )
            stats = response_statistics(
                self.model, self._prompt_ids(prompts), completion_ids, self.temperature, shifted=self.shifted
            )
        values = getattr(stats, self.statistic)
        return (self.sign * torch.as_tensor(values, dtype=torch.float32)).tolist()


class SelfCertaintyReward(PolicyStatisticReward):
    """Mean KL(U || p) over response tokens: higher = the policy is more certain of its own response.

    >>> import torch
    >>> from intuitor.certainty import ResponseStatistics
    >>> class Source:  # what IntuitorTrainer provides
    ...     def rollout_statistics(self, ids): return ResponseStatistics(torch.tensor([0.5, 2.0]), torch.zeros(2))
    >>> r = SelfCertaintyReward(); r.bind(Source())
    >>> r(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1], [2]])
    [0.5, 2.0]
    """

    name = "self_certainty"
    statistic = "self_certainty"


@register_reward("self_certainty", "policy's self-certainty, KL(U||p) per token (INTUITOR)", "Zhao et al. 2025")
@factory
def build(config=None):
    if config is None:
        return SelfCertaintyReward()
    return SelfCertaintyReward(temperature=config.self_certainty_temperature, shifted=config.shifted_self_certainty)
