"""Generation-time recorders: self-certainty, entropy (and token log-probabilities) of the logits `generate`
computes anyway, so INTUITOR's online reward costs no forward pass of its own (`record_generation`,
`record_generation_tokens`)."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from intuitor.certainty.head import _unwrap
from intuitor.certainty.kernel import token_log_probs, token_statistics
from intuitor.certainty.responses import ResponseStatistics, TokenStatistics


class RecordingMismatch(RuntimeError):
    """The recorded decoding steps do not line up with the completions (no step seen, rows or steps differ)."""


def _step_logits(output) -> torch.Tensor:
    """The last-position logits [B, V] of one forward() output: a ModelOutput, a plain tuple (return_dict=False)
    starting with them, or a tensor; prefill keeps only its last position."""
    logits = getattr(output, "logits", None)
    if logits is None:
        logits = output[0] if isinstance(output, (tuple, list)) else output
    return logits[:, -1, :] if logits.dim() == 3 else logits


class GenerationRecorder:
    """Records self-certainty and entropy of the logits `generate` computes anyway, one decoding step at a time.

    A forward hook on the model reduces each step's last-position logits [B, V] to two floats per row, so
    INTUITOR's online reward costs no forward pass of its own: the logits that sampled completion token i are
    exactly the ones that predict it, from the very weights that generated the rollout. The hook reads the
    logits forward() returns, after whatever the model does past its LM head (Gemma's soft-capping, Granite's
    and Cohere's scales), so no transform is re-implemented on this path.
    """

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature
        self.steps_sc: list[torch.Tensor] = []
        self.steps_ent: list[torch.Tensor] = []

    def _hook(self, module, args, output):
        sc, ent = token_statistics(_step_logits(output).detach(), self.temperature)  # (B,) each
        self.steps_sc.append(sc)
        self.steps_ent.append(ent)

    def statistics(self, completion_lengths: list[int]) -> ResponseStatistics:
        """Per-row means over the first len(completion) steps (tokens after EOS are not scored)."""
        n = len(completion_lengths)
        if not self.steps_sc:
            if n and max(completion_lengths) > 0:  # a custom or patched generate bypassed the LM head
                raise RecordingMismatch(f"no decoding step was recorded for {n} non-empty completions")
            return ResponseStatistics(torch.zeros(n), torch.zeros(n))
        sc = torch.stack(self.steps_sc, dim=1).float().cpu()  # (B, steps)
        ent = torch.stack(self.steps_ent, dim=1).float().cpu()
        if sc.size(0) != n:
            raise RecordingMismatch(f"recorded {sc.size(0)} rows but {n} completions (beam search or a split batch)")
        lengths = torch.tensor(completion_lengths)
        if int(lengths.max()) > sc.size(1):
            raise RecordingMismatch("a completion is longer than the number of recorded decoding steps")
        mask = (torch.arange(sc.size(1)).unsqueeze(0) < lengths.unsqueeze(1)).float()  # (B, steps)
        denom = lengths.clamp(min=1).float()
        return ResponseStatistics((sc * mask).sum(1) / denom, (ent * mask).sum(1) / denom)


@contextmanager
def record_generation(model, temperature: float = 1.0):
    """Context manager: `with record_generation(model) as rec: model.generate(...)`; then `rec.statistics(lens)`."""
    recorder = GenerationRecorder(temperature)
    base = _unwrap(model)
    handle = base.register_forward_hook(recorder._hook)  # the model itself: its output is the final logits
    try:
        yield recorder
    finally:
        handle.remove()


class TokenRecorder(GenerationRecorder):
    """A `GenerationRecorder` that also keeps the log-probability of every sampled token (for the token-level
    estimators). Still no forward pass of its own: the token sampled at step t is the last input id of the forward
    call of step t + 1, gathered from step t's logits, which are kept until then (one [B, V] row); the last step is
    gathered from the completions themselves. The gathered ids are checked against the completions
    (`RecordingMismatch` otherwise), so a recording is never read for other tokens than the ones generated.
    """

    def __init__(self, temperature: float = 1.0):
        super().__init__(temperature)
        self.steps_lp: list[torch.Tensor] = []  # (B,) log p of the token sampled at each step but the last
        self.steps_id: list[torch.Tensor] = []  # (B,) that token
        self._last: torch.Tensor | None = None  # (B, V) logits of the latest step

    def _hook_with_kwargs(self, module, args, kwargs, output):
        self._hook(module, args, output)  # self-certainty and entropy, as the plain recorder
        ids = kwargs.get("input_ids", args[0] if args else None)
        if self._last is not None and ids is not None:
            sampled = ids[:, -1]  # (B,) the token sampled from the previous step's logits
            self.steps_lp.append(token_log_probs(self._last, sampled, self.temperature))
            self.steps_id.append(sampled.detach())
        self._last = _step_logits(output).detach()

    def token_statistics(self, completion_ids: list[list[int]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(log p of each completion token, entropy at each completion position): float32 [len] per completion."""
        lengths = [len(c) for c in completion_ids]
        if not lengths or max(lengths) == 0:
            return [torch.zeros(n) for n in lengths], [torch.zeros(n) for n in lengths]
        if self._last is None:
            raise RecordingMismatch(f"no decoding step was recorded for {len(lengths)} non-empty completions")
        rows, steps = self._last.size(0), len(self.steps_ent)
        if rows != len(lengths) or max(lengths) > steps or len(self.steps_lp) != steps - 1:
            raise RecordingMismatch(
                f"recorded {rows} rows x {steps} steps for {len(lengths)} completions of up to {max(lengths)} tokens"
            )
        last_ids = torch.tensor([c[steps - 1] if len(c) == steps else 0 for c in completion_ids])
        lp = torch.stack([*self.steps_lp, token_log_probs(self._last, last_ids, self.temperature)], 1).float().cpu()
        ent = torch.stack(self.steps_ent, dim=1).float().cpu()  # (B, steps)
        seen = torch.stack(self.steps_id, dim=1).cpu() if self.steps_id else torch.zeros(rows, 0, dtype=torch.long)
        for b, c in enumerate(completion_ids):
            n = min(len(c), steps - 1)  # tokens gathered from a later step's inputs
            if seen[b, :n].tolist() != list(c[:n]):
                raise RecordingMismatch(f"completion {b}: the recorded tokens are not the completion's tokens")
        return [lp[b, :n].clone() for b, n in enumerate(lengths)], [ent[b, :n].clone() for b, n in enumerate(lengths)]

    def with_tokens(self, stats: ResponseStatistics, completion_ids: list[list[int]]) -> ResponseStatistics:
        """`stats` with the per-token log-probabilities and entropies of `completion_ids` attached."""
        log_probs, entropies = self.token_statistics(completion_ids)
        return TokenStatistics(stats.self_certainty, stats.entropy, log_probs, entropies)


@contextmanager
def record_generation_tokens(model, temperature: float = 1.0):
    """`record_generation` that also records per-token log-probabilities: `rec.with_tokens(rec.statistics(lens),
    completion_ids)` gives a `TokenStatistics`."""
    recorder = TokenRecorder(temperature)
    handle = _unwrap(model).register_forward_hook(recorder._hook_with_kwargs, with_kwargs=True)
    try:
        yield recorder
    finally:
        handle.remove()
