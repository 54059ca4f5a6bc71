"""The base of the token-level estimators: rewards computed from each response's per-token values.

`trajectory_entropy`, `sequence_probability` and `last_chunk_entropy` read, for every response, the log-probability
of each sampled token and the entropy of each position (`intuitor.certainty.TokenStatistics`). Inside
`IntuitorTrainer` they come from the generation-time recorder (`needs_token_statistics`: the trainer then records
them too), i.e. from the logits `generate` computed anyway; stand-alone, from one forward of the model given.
Each reward reduces its response's values in float64.
"""

from __future__ import annotations

import torch

from intuitor.certainty import response_token_statistics
from intuitor.rewards.self_certainty import PolicyStatisticReward


class TokenStatisticReward(PolicyStatisticReward):
    """A reward `value(log_probs, entropies) -> float` of each response's float64 per-token values."""

    needs_token_statistics = True

    def value(self, log_probs: torch.Tensor, entropies: torch.Tensor) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        if self.source is not None:
            stats = self.source.rollout_statistics(completion_ids)
        else:
            if self.model is None or self.tokenizer is None:
                raise ValueError(
                    f"{self.__name__}: outside IntuitorTrainer, construct it with model= and tokenizer= "
                    "(the policy model itself)"
                )
            stats = response_token_statistics(self.model, self._prompt_ids(prompts), completion_ids, self.temperature)
        if getattr(stats, "token_log_probs", None) is None:
            raise RuntimeError(
                f"{self.__name__} needs per-token log-probabilities, which only the generation-time recorder keeps "
                "(transformers generation, annotator: online, self_certainty_source: auto or generation); this run "
                "scores statistics in a separate or log-prob pass"
            )
        return [
            float(self.value(lp.double(), ent.double()))
            for lp, ent in zip(stats.token_log_probs, stats.token_entropies, strict=True)
        ]
