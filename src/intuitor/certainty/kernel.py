"""The per-position math: self-certainty, entropy and log-probabilities of logits [..., V], in float32.

Everything else in `intuitor.certainty` reduces logits through these functions: `token_statistics` (both statistics
in one exp pass per row, `_stats_rows`), over chunks of positions so no float32 copy of a whole [B, T, V] tensor is
made, and on CPU over L2-sized sub-chunks shared out to single-threaded workers (issue 21; benchmarks/README.md).
The formulas, the -inf convention and the departures from the authors' code are in the package's opening paragraph.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

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


# On CPU the reduction runs over sub-chunks of half an L2 cache of float32 (2**18 elements on a 2 MiB L2, 2**17 on
# 1 MiB; at least one row): temporaries under glibc's 32 MiB mmap threshold are recycled instead of page-faulted on
# every chunk, and the row being reduced stays in the core's L2 across the passes, with room for its source row and
# the exp buffer (benchmarks/README.md: 2-5x faster than one pass over 64 MiB chunks; 2**17-2**18 the fastest on a
# 2 MiB L2). On GPUs one pass per chunk is best.
CPU_SUB_CHUNK_ELEMENTS = max(1 << 16, _l2_cache_bytes() // 8)


def _stats_rows(z: torch.Tensor, temperature: float, entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Self-certainty (and entropy) of logits z [n, V] in float32, with one exp pass over one buffer.

    e = exp(z - m), s = sum(e), log Z = m + log s; SC = log Z - mean(z) - log V; H = log Z - <e, z> / s. Dividing
    by the same s as log Z keeps H exact to float32 rounding (log Z - sum(softmax(z) * z) inherits softmax's
    normalisation error, ~1e-3 at V = 151,936), and neither softmax nor p * z is materialised.

    A row holding -inf logits (a masked vocabulary, float16 overflow) is scored over its finite support: those
    tokens have probability 0, so H is torch's `Categorical(logits=z).entropy()`, and SC is KL(U_F || p) with U_F
    uniform over the V_F finite logits: log Z - mean over F - log V_F (the uniform over all V would put mass on
    impossible tokens: +inf). Such rows (their mean is -inf) are recomputed with the -inf entries masked, so rows
    without -inf cost nothing more. NaN or +inf logits, or a row with no finite logit, are an error naming them.
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
    ent = log_z - torch.linalg.vecdot(e, z32) / s if entropy else None  # H(p) = log Z - E_p[z]
    odd = ~torch.isfinite(mean)  # (n,) -inf: masked logits; NaN or +inf: invalid
    if bool(odd.any()):  # one host sync per chunk
        rows = odd.nonzero().squeeze(-1)  # (k,)
        zr = z[rows].float() / temperature  # (k, V): the rows again (z32 may have been overwritten)
        _check_logits(zr)
        finite = zr != -math.inf  # (k, V)
        zf = zr.masked_fill(~finite, 0.0)  # -inf -> 0: they carry weight 0 in every sum below
        v_f = finite.sum(dim=-1)  # (k,) size of the finite support
        sc = sc.index_put((rows,), log_z[rows] - zf.sum(dim=-1) / v_f - v_f.float().log())
        if entropy:
            ent = ent.index_put((rows,), log_z[rows] - torch.linalg.vecdot(e[rows], zf) / s[rows])
    return sc, ent


def _check_logits(z: torch.Tensor) -> None:
    """Raise, naming the problem, for logits rows [k, V] whose statistics are undefined (NaN, +inf, all -inf)."""
    for bad, what in (
        (z.isnan().any(dim=-1), "NaN"),
        (z.isposinf().any(dim=-1), "+inf"),
        ((z == -math.inf).all(dim=-1), "only -inf (no possible token)"),
    ):
        if bool(bad.any()):
            raise ValueError(
                f"logits hold {what} at {int(bad.sum())} position(s): self-certainty and entropy are undefined there "
                "(float16 overflow or diverged weights; compute the LM head in float32 or bfloat16)"
            )


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


# ---- token-level statistics: the log-probability of each sampled token ------------------------------------------
# The estimators beyond self-certainty (trajectory entropy, sequence probability, last-chunk entropy; issue 30) need
# per-token values, not per-response means. They come from the same logits: the recorder keeps, for each decoding
# step, log p(sampled token) = z[token] / T - logsumexp(z / T) next to the entropies it records anyway.


def token_log_probs(
    logits: torch.Tensor, ids: torch.Tensor, temperature: float = 1.0, chunk_elements: int = CHUNK_ELEMENTS
) -> torch.Tensor:
    """log softmax(logits / T)[id] per position: float32 [...] for logits [..., V] and ids [...].

    Reduced over the vocabulary in chunks of positions in float32 (no [.., V] float32 copy of all positions). A -inf
    logit (a masked token) has probability 0; choosing it gives -inf, as `torch.distributions.Categorical.log_prob`.

    >>> z = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
    >>> [round(v, 6) for v in token_log_probs(z, torch.tensor([1])).tolist()] == [round(math.log(0.75), 6)]
    True
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: must be > 0")
    shape, vocab = logits.shape[:-1], logits.size(-1)
    flat, index = logits.reshape(-1, vocab), ids.reshape(-1, 1).to(logits.device)  # (N, V), (N, 1)
    out = torch.empty(flat.size(0), dtype=torch.float32, device=logits.device)
    step = _chunk_rows(vocab, chunk_elements)
    for s in range(0, flat.size(0), step):
        z = flat[s : s + step].float() / temperature  # (n, V)
        out[s : s + step] = z.gather(1, index[s : s + step]).squeeze(1) - torch.logsumexp(z, dim=-1)
    return out.view(shape)
