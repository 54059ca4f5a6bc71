"""Self-certainty and token entropy: the math of INTUITOR, written once.

Self-certainty (Kang et al. 2025; Zhao et al. 2025, eq. 4) of a response o to a prompt q:

    SC(o|q) = 1/|o| * sum_i KL(U || p(.|q, o<i)) = 1/|o| * sum_i [ logsumexp(z_i) - mean(z_i) - log V ]

where z_i are the logits that *predict* response token i and V is the vocabulary size.

Departures from the authors' code (open-r1 fork), on purpose:
- Alignment. Response token i is predicted by the logits at position len(prompt) + i - 1. The authors' code
  scores positions len(prompt) .. len(prompt)+|o|-1 instead: it skips the first response position and scores
  the one after the last token. That variant is available only as `shifted=True` (compatibility flag).
- Precision. Everything is accumulated in float32 whatever the logits' dtype (the authors reduce in bf16).
- Memory. Statistics are reduced over the vocabulary in chunks of positions, so no float32 copy of a whole
  [B, T, V] tensor is ever made; `response_statistics` goes further and projects hidden states through the LM
  head chunk by chunk, so the full logits are never materialised at all.
- Speed on CPU. Each chunk is reduced in L2-sized sub-chunks; with several torch threads the sub-chunks are shared
  out to single-threaded workers instead of running every small op multi-threaded, so a core taken by another
  process slows the reduction down instead of stalling it at every op (issue 21; benchmarks/README.md).

An empty completion has self-certainty 0.0 and entropy 0.0 (no token, no evidence), never NaN.

Logits of -inf (a masked vocabulary, float16 overflow) mean probability 0: entropy is then torch's
`Categorical(logits=z).entropy()`, and self-certainty is taken over the finite support F of each position,
KL(U_F || p) = logsumexp(z) - mean_F(z) - log |F| with U_F uniform over the |F| finite logits (over all V it would be
+inf, and a group's advantages NaN). A position whose only finite logit is one token has SC 0 and entropy 0.
NaN or +inf logits, or a position with no finite logit, raise a ValueError naming them: no reward is made up.

The package, by concern (each room uses only the ones listed before it):
- `kernel`: the per-position math (self-certainty, entropy, token log-probabilities), chunked and threaded;
- `head`: the model's own map from hidden states to logits (`logit_head`), read from its forward();
- `responses`: per-response means over given completions, from hidden states (`response_statistics`);
- `recorder`: the same statistics recorded during generation (`record_generation`, `record_generation_tokens`).
"""

from intuitor.certainty.head import LogitHead, UnsupportedArchitecture, logit_head
from intuitor.certainty.kernel import (
    CHUNK_ELEMENTS,
    CPU_SUB_CHUNK_ELEMENTS,
    token_entropy,
    token_log_probs,
    token_self_certainty,
    token_statistics,
)
from intuitor.certainty.recorder import (
    GenerationRecorder,
    RecordingMismatch,
    TokenRecorder,
    record_generation,
    record_generation_tokens,
)
from intuitor.certainty.responses import (
    ResponseStatistics,
    TokenStatistics,
    response_self_certainty,
    response_statistics,
    response_token_statistics,
)


__all__ = [
    "CHUNK_ELEMENTS",
    "CPU_SUB_CHUNK_ELEMENTS",
    "GenerationRecorder",
    "LogitHead",
    "RecordingMismatch",
    "ResponseStatistics",
    "TokenRecorder",
    "TokenStatistics",
    "UnsupportedArchitecture",
    "logit_head",
    "record_generation",
    "record_generation_tokens",
    "response_self_certainty",
    "response_statistics",
    "response_token_statistics",
    "token_entropy",
    "token_log_probs",
    "token_self_certainty",
    "token_statistics",
]
