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
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import torch

# Positions per chunk are chosen so that one chunk holds about this many float32 elements (64 MiB).
CHUNK_ELEMENTS = 1 << 24


def _chunk_rows(vocab_size: int, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    return max(1, chunk_elements // max(vocab_size, 1))


def _l2_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache", default: int = 1 << 20) -> int:
    """Per-core L2 cache size, from sysfs (Linux); `default` where it cannot be read."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for index in range(8):
        base = f"{root}/index{index}"
        try:
            with open(f"{base}/level") as f:
                level = f.read().strip()
            with open(f"{base}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/size") as f:
                size = f.read().strip()
        except OSError:
            break
        if level == "2" and kind in ("Unified", "Data"):
            return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return default


# On CPU the reduction runs over sub-chunks of one L2 cache's worth of float32 (2**18 elements on a 1 MiB L2):
# temporaries under glibc's 32 MiB mmap threshold are recycled instead of page-faulted on every chunk, and a Qwen
# vocabulary row (0.6 MiB) stays in the core's L2 across the passes (benchmarks/README.md: 2-5x faster than one
# pass over 64 MiB chunks). On GPUs one pass per chunk is best.
CPU_SUB_CHUNK_ELEMENTS = max(1 << 16, _l2_cache_bytes() // 4)


def _stats_rows(z: torch.Tensor, temperature: float, entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Self-certainty (and entropy) of logits z [n, V] in float32, with one exp pass over one buffer.

    e = exp(z - m), s = sum(e), log Z = m + log s; SC = log Z - mean(z) - log V; H = log Z - <e, z> / s. Dividing
    by the same s as log Z keeps H exact to float32 rounding (log Z - sum(softmax(z) * z) inherits softmax's
    normalisation error, ~1e-3 at V = 151,936), and neither softmax nor p * z is materialised.
    """
    z32 = z.float()  # (n, V): a private copy for bf16/fp16 logits, the input itself for float32
    if temperature != 1.0:
        z32 = z32 / temperature  # now a private copy
    private = z32.data_ptr() != z.data_ptr()
    mean = z32.mean(dim=-1)  # (n,)
    m = z32.amax(dim=-1, keepdim=True)  # (n, 1)
    e = (z32.sub_(m) if private and not entropy else torch.sub(z32, m)).exp_()  # (n, V), in place when we may
    s = e.sum(dim=-1)  # (n,)
    log_z = m.squeeze(-1) + s.log()  # (n,) logsumexp
    sc = log_z - mean - math.log(z.size(-1))  # KL(U || softmax(z))
    if not entropy:
        return sc, None
    return sc, log_z - torch.linalg.vecdot(e, z32) / s  # H(p) = log Z - E_p[z]


# ---- CPU: a parallel loop over sub-chunks, each reduced single-threaded ------------------------------------------
# Reducing one sub-chunk is a dozen small torch ops; with several intra-op threads each op ends at an OpenMP barrier,
# and on a busy CPU (a data loader, a sandbox, other jobs) every barrier waits for a thread whose core another
# process holds: 4096 Qwen rows took 3x longer with 2 threads than the naive log_softmax (issue 21). So with n > 1
# torch threads, n workers whose own torch ops run on one thread pull sub-chunks from a shared counter: no barrier
# until the end of the chunk, and a worker that loses its core just takes fewer sub-chunks.

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _single_threaded_worker(ready: threading.Barrier) -> None:
    # Initialise this thread's OpenMP state with the process default first (torch does it lazily on a thread's
    # first parallel op, from a process-wide value), then set this thread's own team size to 1.
    torch.get_num_threads()
    torch.set_num_threads(1)
    ready.wait()


def _workers(n: int) -> ThreadPoolExecutor:
    """A pool of n threads whose torch ops run single-threaded (created once per thread count, per process)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool[0] == n:
            return _pool[1]
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="intuitor-certainty")
        ready = threading.Barrier(n + 1)
        started = [pool.submit(_single_threaded_worker, ready) for _ in range(n)]
        ready.wait()  # all n threads exist and are single-threaded: none will be created later
        for f in started:
            f.result()
        # torch.set_num_threads also stores a process-wide default for threads not yet initialised: restore it.
        # The calling thread's own team size was never changed.
        torch.set_num_threads(n)
        _pool = (n, pool)
        return pool


def _forget_pool_after_fork() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # the child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _stats_parallel(z: torch.Tensor, rows: int, temperature: float, entropy: bool, threads: int):
    """`_stats_rows` over sub-chunks of `rows` rows of z [N, V], on `threads` single-threaded workers."""
    sc = torch.empty(z.size(0), dtype=torch.float32)
    ent = torch.empty_like(sc) if entropy else None
    starts = iter(range(0, z.size(0), rows))  # shared: next() on it is atomic under the GIL
    lock = threading.Lock()

    def work() -> None:
        with torch.no_grad():
            while True:
                with lock:
                    i = next(starts, None)
                if i is None:
                    return
                s, e = _stats_rows(z[i : i + rows], temperature, entropy)
                sc[i : i + rows] = s
                if entropy:
                    ent[i : i + rows] = e

    pool = _workers(threads)
    for f in [pool.submit(work) for _ in range(min(threads, -(-z.size(0) // rows)))]:
        f.result()
    return sc, ent


def _stats_chunk(z: torch.Tensor, temperature: float, entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`_stats_rows` over one chunk of positions [N, V]: in L2-sized sub-chunks on CPU, in one pass on GPUs."""
    if z.device.type != "cpu":
        return _stats_rows(z, temperature, entropy)
    rows = max(1, CPU_SUB_CHUNK_ELEMENTS // z.size(-1))
    if rows >= z.size(0):
        return _stats_rows(z, temperature, entropy)
    threads = torch.get_num_threads()
    if threads > 1 and not (z.requires_grad and torch.is_grad_enabled()):
        return _stats_parallel(z, rows, temperature, entropy, threads)
    parts = [_stats_rows(z[i : i + rows], temperature, entropy) for i in range(0, z.size(0), rows)]
    sc = torch.cat([p[0] for p in parts])
    return sc, (torch.cat([p[1] for p in parts]) if entropy else None)


def token_statistics(
    logits: torch.Tensor, temperature: float = 1.0, entropy: bool = True, chunk_elements: int = CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-position self-certainty and entropy of logits [..., V], float32 [...] each, in one pass.

    >>> sc, ent = token_statistics(torch.zeros(2, 3, 5))  # uniform logits: no certainty, maximal entropy
    >>> sc.abs().max().item() < 1e-6, abs(ent[0, 0].item() - math.log(5)) < 1e-6
    (True, True)
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: must be > 0")
    shape, vocab = logits.shape[:-1], logits.size(-1)
    flat = logits.reshape(-1, vocab)  # (N, V), a view when contiguous
    sc = torch.empty(flat.size(0), dtype=torch.float32, device=logits.device)
    ent = torch.empty_like(sc) if entropy else None
    step = _chunk_rows(vocab, chunk_elements)
    for start in range(0, flat.size(0), step):
        s, e = _stats_chunk(flat[start : start + step], temperature, entropy)
        sc[start : start + step] = s
        if entropy:
            ent[start : start + step] = e
    return sc.view(shape), (ent.view(shape) if entropy else None)


def token_self_certainty(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(Uniform || softmax(logits / temperature)) per position: float32 [...] for logits [..., V].

    >>> token_self_certainty(torch.zeros(4, 7)).abs().max().item() < 1e-6  # uniform: 0 up to float32 rounding
    True
    >>> z = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
    >>> abs(token_self_certainty(z).item() - 0.5 * (math.log(0.5 / 0.25) + math.log(0.5 / 0.75))) < 1e-6
    True
    """
    return token_statistics(logits, temperature, entropy=False)[0]


def token_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of softmax(logits / temperature) per position, float32 [...]."""
    return token_statistics(logits, temperature, entropy=True)[1]


@dataclass
class ResponseStatistics:
    """Per-response means over completion tokens: self-certainty and token entropy, float32 [B]."""

    self_certainty: torch.Tensor
    entropy: torch.Tensor


def _lm_head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Project hidden states [N, H] to logits [N, V] the way the model's own forward does."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:
        logits = cap * torch.tanh(logits / cap)
    return logits


def _backbone(model):
    # PEFT wraps the model: reach the transformers model underneath.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base, base.base_model


@torch.no_grad()
def response_statistics(
    model,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    temperature: float = 1.0,
    shifted: bool = False,
    batch_size: int = 8,
    padding_side: str = "right",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> ResponseStatistics:
    """Mean self-certainty and entropy of each completion under `model`, batched, never materialising [B, T, V].

    Args:
        prompt_ids, completion_ids: unpadded token ids, one list per sequence (lengths may differ).
        temperature: logits are divided by it before the statistics (1.0: the model's own distribution).
        shifted: the authors' off-by-one alignment (compatibility only): score the positions of the completion
            tokens themselves, i.e. skip the first response position and score the one after the last token.
        padding_side: how batches are padded internally; results do not depend on it (tested).
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    base, backbone = _backbone(model)
    device = next(model.parameters()).device
    pad_id = 0
    n = len(prompt_ids)
    sc_out = torch.zeros(n, dtype=torch.float32)
    ent_out = torch.zeros(n, dtype=torch.float32)
    for start in range(0, n, batch_size):
        rows = range(start, min(start + batch_size, n))
        seqs = [list(prompt_ids[r]) + list(completion_ids[r]) for r in rows]
        # Positions whose logits score each completion token (paper: the ones that predict it).
        offset = 0 if shifted else -1
        spans = [(len(prompt_ids[r]) + offset, len(completion_ids[r])) for r in rows]
        if any(p < 0 and c > 0 for p, c in spans):
            raise ValueError("an empty prompt has no position that predicts the first completion token")
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        starts = []
        for b, s in enumerate(seqs):
            left = width - len(s) if padding_side == "left" else 0
            input_ids[b, left : left + len(s)] = torch.tensor(s, dtype=torch.long)
            mask[b, left : left + len(s)] = 1
            starts.append(left)
        # Positions follow the tokens, not the padding, so left and right padding give the same scores.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = backbone(
            input_ids=input_ids.to(device), attention_mask=mask.to(device), position_ids=position_ids.to(device)
        ).last_hidden_state  # (b, T, H)
        # Gather only the scored positions: (N, H) with N = total completion tokens of this batch.
        index_b = torch.cat([torch.full((c,), b, dtype=torch.long) for b, (_, c) in enumerate(spans)])
        index_t = torch.cat([torch.arange(c) + starts[b] + p for b, (p, c) in enumerate(spans)])
        if index_b.numel() == 0:
            continue
        h = hidden[index_b.to(device), index_t.to(device)]  # (N, H)
        vocab = base.get_output_embeddings().weight.size(0)
        step = _chunk_rows(vocab, chunk_elements)
        sc_tok, ent_tok = [], []
        for s in range(0, h.size(0), step):
            sc, ent = _stats_chunk(_lm_head_logits(base, h[s : s + step]), temperature, entropy=True)
            sc_tok.append(sc)
            ent_tok.append(ent)
        sc_tok, ent_tok = torch.cat(sc_tok).cpu(), torch.cat(ent_tok).cpu()  # (N,)
        counts = torch.tensor([c for _, c in spans], dtype=torch.float32)
        sums_sc = torch.zeros(len(spans)).index_add_(0, index_b, sc_tok)
        sums_ent = torch.zeros(len(spans)).index_add_(0, index_b, ent_tok)
        sc_out[start : start + len(spans)] = sums_sc / counts.clamp(min=1)
        ent_out[start : start + len(spans)] = sums_ent / counts.clamp(min=1)
    return ResponseStatistics(self_certainty=sc_out, entropy=ent_out)


def response_self_certainty(
    model, prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float = 1.0, shifted=False, **kw
) -> torch.Tensor:
    """Mean self-certainty of each completion under `model`: float32 [B] (paper eq. 4; 0.0 for an empty one)."""
    return response_statistics(model, prompt_ids, completion_ids, temperature, shifted=shifted, **kw).self_certainty


class RecordingMismatch(RuntimeError):
    """The recorded decoding steps do not line up with the completions (no step seen, rows or steps differ)."""


class GenerationRecorder:
    """Records self-certainty and entropy of the logits `generate` computes anyway, one decoding step at a time.

    A forward hook on the LM head reduces each step's last-position logits [B, V] to two floats per row, so
    INTUITOR's online reward costs no forward pass of its own: the logits that sampled completion token i are
    exactly the ones that predict it, from the very weights that generated the rollout.
    """

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature
        self.steps_sc: list[torch.Tensor] = []
        self.steps_ent: list[torch.Tensor] = []

    def _hook(self, module, args, output):
        logits = output[:, -1, :] if output.dim() == 3 else output  # (B, V): prefill keeps only the last position
        sc, ent = token_statistics(logits.detach(), self.temperature)
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
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    handle = base.get_output_embeddings().register_forward_hook(recorder._hook)
    try:
        yield recorder
    finally:
        handle.remove()
