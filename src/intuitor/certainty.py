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
"""

from __future__ import annotations

import ast
import inspect
import math
import os
import re
import textwrap
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


@dataclass
class ResponseStatistics:
    """Per-response means over completion tokens: self-certainty and token entropy, float32 [B]."""

    self_certainty: torch.Tensor
    entropy: torch.Tensor


# ---- from hidden states to the logits forward() returns, the model's own way -------------------------------------
# `response_statistics` runs the backbone, keeps only the scored positions, and maps them to logits itself, chunk by
# chunk. That map must be exactly the one in the model's forward(): some architectures transform the LM head's
# output (Gemma-2/3/3n/4 soft-capping, Granite dividing by `logits_scaling`, Cohere multiplying by `logit_scale`,
# Falcon-H1, HyperCLOVA X, recurrent Gemma...) or its input (MiniCPM3). Rather than a list of model types, which a
# new architecture would silently drift from, `logit_head` reads the statements of the model's forward() between
# the backbone call and the loss, recognises each one (projection, scale, soft-cap, vocabulary slice, cast) and
# refuses the model when one is not recognised. So both the recorder (which hooks forward() itself) and this path
# see the very logits forward() returns, and an unknown transform is an error, never a wrong number.


class UnsupportedArchitecture(ValueError):
    """The model's forward() maps hidden states to logits in a way `logit_head` cannot reproduce exactly."""


_HIDDEN, _LOGITS = r"hidden_states", r"(?:lm_)?logits"
_ATTR = r"self\.((?:config\.|model\.)?\w+)"  # a value read from the model: self.config.x, self.model.x, self.x
_SOFTCAP_BODY = "{v} = {v} / {c}\n    {v} = torch.tanh({v})\n    {v} = {v} * {c}"


def _recognise(stmt: str, aliases: dict[str, str]) -> tuple | None:
    """One statement of forward()'s head (ast.unparse'd) -> a step, ("noop",), or None when not recognised.

    Steps: ("module", attr, cast) applies a submodule (casting its input to the weight dtype when forward does);
    ("scale", op, attr) divides or multiplies by a value of the model; ("softcap", attr, upcast) is
    cap * tanh(x / cap) when the value is set; ("float",) upcasts; ("vocab", attr) keeps the first n logits.
    """

    def full(pattern):
        return re.fullmatch(pattern, stmt, flags=re.S)

    if m := full(rf"(\w+) = self\.(config\.\w+)"):  # `cap = self.config.logits_soft_cap`, used below
        aliases[m[1]] = m[2]
        return ("noop",)
    if full(rf"{_HIDDEN} = (?:slice_logits_to_keep\()?(?:{_HIDDEN}|\w+\.last_hidden_state|\w+\[0\]"
            rf"|\w+\.last_hidden_state if return_dict else \w+\[0\])(?:, logits_to_keep\))?"):
        return ("noop",)  # the backbone's output, sliced to the kept positions: we gather positions ourselves
    if full(rf"if {_HIDDEN}\.shape\[1\] == \(input_ids if input_ids is not None else inputs_embeds\)\.shape\[1\]:"
            rf"\n    {_HIDDEN} = slice_logits_to_keep\({_HIDDEN}, logits_to_keep\)"):
        return ("noop",)
    if m := full(rf"{_HIDDEN} = (?:{_HIDDEN}|\w+\.last_hidden_state) / {_ATTR}"):
        return ("pre_scale", "/", m[1])
    head = rf"self\.(\w+)\((?:{_HIDDEN}|\w+\[0\])(\.to\((?:dtype=)?self\.\w+\.weight\.dtype\))?\)"
    if m := full(rf"{_LOGITS} = (?:self\.(\w+)\()?{head}\)?(\.float\(\)|\.contiguous\(\))?(?: ([*/]) {_ATTR})?"):
        outer, inner, cast, suffix, op, attr = m.groups()
        steps = [("module", inner, cast is not None)]
        if outer:
            steps.append(("module", outer, False))
        if suffix == ".float()":
            steps.append(("float",))
        if op:
            steps.append(("scale", op, attr))
        return ("head", *steps)
    if m := full(rf"{_LOGITS} = {_LOGITS} ([*/]) {_ATTR}"):
        return ("scale", m[1], m[2])
    if m := full(rf"{_LOGITS} = self\.(\w+)\({_LOGITS}\)"):
        return ("module", m[1], False)
    if m := full(rf"{_LOGITS} = {_LOGITS}\[\.\.\., :self\.(config\.\w+)\]"):
        return ("vocab", m[1])
    if m := full(rf"if (\w+) is not None and \1 < logits\.shape\[-1\]:\n    logits = logits\[\.\.\., :\1\]"):
        return ("vocab", aliases[m[1]]) if m[1] in aliases else None
    softcaps = {
        "if self.config.final_logit_softcapping is not None:\n    " + _SOFTCAP_BODY.format(
            v="logits", c="self.config.final_logit_softcapping"): ("softcap", "config.final_logit_softcapping", False),
        "if (final_logit_softcapping := self.config.get_text_config().final_logit_softcapping) is not None:\n    "
        + _SOFTCAP_BODY.format(v="logits", c="final_logit_softcapping"):
            ("softcap", "text_config.final_logit_softcapping", False),
        "if self.config.final_logit_softcapping is not None:\n    " + _SOFTCAP_BODY.format(
            v="logits", c="self.config.final_logit_softcapping").replace(
            "logits = logits / ", "logits = logits.float() / ", 1): ("softcap", "config.final_logit_softcapping", True),
    }
    if stmt in softcaps:
        return softcaps[stmt]
    if (m := full(r"logits = nn\.functional\.tanh\(logits / (\w+)\) \* \1")) and m[1] in aliases:
        return ("softcap", aliases[m[1]], False)
    return None


def _value(model, attr: str):
    if attr.startswith("text_config."):
        return getattr(model.config.get_text_config(), attr.split(".", 1)[1])
    obj = model
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


@dataclass(frozen=True)
class LogitHead:
    """How a causal LM's forward() turns its backbone's last hidden state into the logits it returns.

    `backbone` is the attribute path of the module forward() calls first (`model`, `transformer`, `model.decoder`),
    `steps` what forward() then does to the kept hidden states, in order; calling the head on hidden states [N, H]
    gives logits [N, V] equal to forward()'s at those positions.
    """

    architecture: str
    backbone: tuple[str, ...]
    steps: tuple[tuple, ...]

    def backbone_of(self, model):
        for name in self.backbone:
            model = getattr(model, name)
        return model

    def __call__(self, model, hidden: torch.Tensor, project=None) -> torch.Tensor:
        """Logits [N, V] for hidden states [N, H]. `project(module, x)`, if given, replaces the head module's call
        (e.g. a projection with weights gathered once under ZeRO-3/FSDP); every other step is forward()'s own."""
        x = hidden
        for step in self.steps:
            kind = step[0]
            if kind == "module":
                module = getattr(model, step[1])
                if step[2]:
                    x = x.to(module.weight.dtype)
                x = module(x) if project is None else project(module, x)
            elif kind in ("scale", "pre_scale"):
                x = x / _value(model, step[2]) if step[1] == "/" else x * _value(model, step[2])
            elif kind == "softcap":
                cap = _value(model, step[1])
                if cap is not None:
                    x = (x.float() if step[2] else x) / cap  # the operations of the models' own code, in order
                    x = torch.tanh(x)
                    x = x * cap
            elif kind == "float":
                x = x.float()
            elif kind == "vocab":
                n = _value(model, step[1])
                if n is not None and n < x.size(-1):
                    x = x[..., :n]
        return x


_HEADS: dict[type, LogitHead] = {}


def logit_head(model) -> LogitHead:
    """The map from `model`'s backbone output to its forward() logits, read from forward()'s own code.

    Raises `UnsupportedArchitecture` naming the statement it cannot reproduce.
    """
    cls = type(model)
    if cls in _HEADS:
        return _HEADS[cls]
    name = cls.__name__
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.forward)))
    except (OSError, TypeError, SyntaxError) as e:
        raise UnsupportedArchitecture(f"{name}: cannot read its forward() ({e}); its logits cannot be checked") from e
    body = tree.body[0].body
    call = next(
        (i for i, st in enumerate(body)
         if isinstance(st, (ast.Assign, ast.AnnAssign)) and isinstance(st.value, ast.Call)
         and ast.unparse(st.value.func).startswith("self.")
         and any(kw.arg in ("input_ids", "inputs_embeds") for kw in st.value.keywords)),
        None,
    )
    if call is None:
        raise UnsupportedArchitecture(f"{name}: its forward() calls no backbone with input_ids; not a causal LM "
                                      "intuitor can score from hidden states")
    backbone = tuple(ast.unparse(body[call].value.func).split(".")[1:])
    steps, aliases, head_seen = [], {}, False
    for st in body[call + 1 :]:
        text = ast.unparse(st)
        if isinstance(st, ast.Return) or "loss" in text or "labels" in text:
            break
        step = _recognise(text, aliases)
        if step is None or (step[0] == "head" and head_seen):
            raise UnsupportedArchitecture(
                f"{name}.forward() computes its logits with `{text.splitlines()[0]}`, which intuitor cannot "
                "reproduce from hidden states; self-certainty would differ from the model's own logits. Score "
                "completions during generation (`record_generation`, the trainer's default) instead.")
        if step[0] == "noop":
            continue
        if (step[0] == "pre_scale" and head_seen) or (step[0] not in ("pre_scale", "head") and not head_seen):
            raise UnsupportedArchitecture(f"{name}.forward(): `{text.splitlines()[0]}` in an unexpected place")
        if step[0] == "head":
            head_seen = True
            steps.extend(step[1:])
        else:
            steps.append(step)
    if not head_seen:
        raise UnsupportedArchitecture(f"{name}.forward(): no LM head projection of the hidden states found")
    head = LogitHead(name, backbone, tuple(steps))
    _HEADS[cls] = head
    return head


def _unwrap(model):
    # PEFT wraps the model: reach the transformers model underneath.
    return model.get_base_model() if hasattr(model, "get_base_model") else model


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
    base = _unwrap(model)
    head = logit_head(base)  # refuses, before any work, a model whose logits it cannot reproduce
    backbone = head.backbone_of(base)
    accepts = inspect.signature(backbone.forward).parameters
    extra = {"use_cache": False} if "use_cache" in accepts else {}
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
        if "position_ids" in accepts:
            extra["position_ids"] = position_ids.to(device)
        out = backbone(input_ids=input_ids.to(device), attention_mask=mask.to(device), **extra)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (b, T, H)
        # Gather only the scored positions: (N, H) with N = total completion tokens of this batch.
        index_b = torch.cat([torch.full((c,), b, dtype=torch.long) for b, (_, c) in enumerate(spans)])
        index_t = torch.cat([torch.arange(c) + starts[b] + p for b, (p, c) in enumerate(spans)])
        if index_b.numel() == 0:
            continue
        h = hidden[index_b.to(device), index_t.to(device)]  # (N, H)
        step = _chunk_rows(base.config.get_text_config().vocab_size, chunk_elements)
        sc_tok, ent_tok = [], []
        for s in range(0, h.size(0), step):
            sc, ent = _stats_chunk(head(base, h[s : s + step]), temperature, entropy=True)
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
        logits = getattr(output, "logits", None)  # a ModelOutput; a plain tuple (return_dict=False) starts with them
        if logits is None:
            logits = output[0] if isinstance(output, (tuple, list)) else output
        logits = logits[:, -1, :] if logits.dim() == 3 else logits  # (B, V): prefill keeps only the last position
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
    base = _unwrap(model)
    handle = base.register_forward_hook(recorder._hook)  # the model itself: its output is the final logits
    try:
        yield recorder
    finally:
        handle.remove()


# ---- token-level statistics: the log-probability of each sampled token and each position's entropy --------------
# The estimators beyond self-certainty (trajectory entropy, sequence probability, last-chunk entropy; issue 30) need
# per-token values, not per-response means. They come from the same logits: the recorder below keeps, for each
# decoding step, log p(sampled token) = z[token] / T - logsumexp(z / T) next to the entropies it records anyway.


def token_log_probs(logits: torch.Tensor, ids: torch.Tensor, temperature: float = 1.0,
                    chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
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


def _step_logits(output) -> torch.Tensor:
    """The last-position logits [B, V] of one forward() output (a ModelOutput, a tuple, or a tensor)."""
    logits = getattr(output, "logits", None)
    if logits is None:
        logits = output[0] if isinstance(output, (tuple, list)) else output
    return logits[:, -1, :] if logits.dim() == 3 else logits


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
            raise RecordingMismatch(f"recorded {rows} rows x {steps} steps for {len(lengths)} completions of up "
                                    f"to {max(lengths)} tokens")
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


@dataclass
class TokenStatistics(ResponseStatistics):
    """ResponseStatistics plus per-token values of each response: log p of the sampled token and the entropy of
    the position that sampled it, float32 [len(response)] per response (what the token-level estimators read)."""

    token_log_probs: list[torch.Tensor] | None = None
    token_entropies: list[torch.Tensor] | None = None


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


@torch.no_grad()
def response_token_statistics(model, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                              temperature: float = 1.0) -> TokenStatistics:
    """Per-token log-probabilities and entropies of each completion under `model`, one forward per sequence.

    For stand-alone use (a token-level reward on a stock GRPOTrainer, tests): it runs the model's own forward and
    reads its logits, [T, V] per sequence; inside IntuitorTrainer the recorder gives the same values for free.
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    device = next(model.parameters()).device
    sc, ent, lps, ents = [], [], [], []
    for p, c in zip(prompt_ids, completion_ids):
        if not c:
            sc.append(0.0), ent.append(0.0), lps.append(torch.zeros(0)), ents.append(torch.zeros(0))
            continue
        if not p:
            raise ValueError("an empty prompt has no position that predicts the first completion token")
        ids = torch.tensor([list(p) + list(c)], device=device)
        logits = model(input_ids=ids).logits[0, len(p) - 1 : len(p) + len(c) - 1]  # (|c|, V): each predicts c[i]
        s, e = token_statistics(logits, temperature)
        lps.append(token_log_probs(logits, torch.tensor(c, device=device), temperature).cpu())
        ents.append(e.cpu())
        sc.append(s.mean().item()), ent.append(e.mean().item())
    return TokenStatistics(torch.tensor(sc), torch.tensor(ent), lps, ents)
