"""Benchmark: the self-certainty kernel, intuitor's against the naive and the authors' ones.

Part 1, logits -> statistics. For N positions of logits z [N, V] (V = 151,936, Qwen2.5's vocabulary), in bf16
and float32, time and peak extra memory of
  - intuitor      `token_statistics(z)`: self-certainty and entropy, float32, reduced in chunks of positions;
  - intuitor-sc   `token_self_certainty(z)`: self-certainty only;
  - naive         `logp = log_softmax(z.float())`, SC = -mean(logp) - log V, H = -sum(exp(logp) * logp);
  - naive-sc      the same without the entropy;
  - authors-sc    `logsumexp(z) - z.mean(-1)` in the input dtype over the whole tensor (their open-r1 / verl code;
                  they omit the constant -log V, which we add back in float64 before comparing);
  - intuitor[-sc]-v0  intuitor.certainty.kernel before this benchmark (`v0_stats_chunk`, patched in): the baseline
                  of the change it led to;
  - intuitor[-sc]@k   with `--sub-chunks`: the current kernel with CPU_SUB_CHUNK_ELEMENTS = 2**k (@0: none).
  - intuitor[-sc]-serial  with `--serial` and several threads: the current kernel with its sub-chunks reduced one
                  after the other by multi-threaded torch ops, as before issue 21 (no single-threaded workers).
and the max abs error of each against a float64 reference computed from the same (already rounded) logits.

Part 2, hidden states -> statistics, on a tiny LM with a real vocabulary (Qwen2, 2 layers, hidden 64,
V = 151,936): `response_statistics` (projects the scored hidden states through the LM head chunk by chunk, never
materialising [B, T, V]) against a forward that returns the completion logits, as TRL computes them
(`logits_to_keep`), followed by the naive reduction.

Targets (from the issue "Self-certainty at no extra cost"): intuitor's peak extra memory at most 1/4 of the
naive one, its time no worse than the naive one, and its error within 1e-4 of float64 for float32 logits.
Memory is measured as explained in `_common.py` (CPU: page high-water mark of the process with glibc told to
return freed buffers; CUDA: max_memory_allocated). Timings are medians of interleaved repeats, in process CPU
seconds on CPU with one thread (the default: see `_common.default_clock`), else wall seconds; the median wall time
is printed beside. Compare ratios within one run, not absolute seconds across runs.

    python benchmarks/kernel.py                       # 2048 positions, float32 and bf16, then the tiny LM
    python benchmarks/kernel.py --positions 512 --repeats 3 --skip-lm
    python benchmarks/kernel.py --threads 2 --background-load 1 --positions 4096 --dtypes bfloat16 --sc-only \
        --skip-lm --no-v0                             # issue 21: 2 threads while a busy process holds a core
"""

from __future__ import annotations

import argparse
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Report,
    Verdict,
    clock_note,
    default_clock,
    fmt_mib,
    interleaved,
    machine,
    median,
    peak_extra,
    set_threads,
    spread,
    table,
)

from intuitor.certainty import (  # noqa: E402
    kernel,  # noqa: E402
    response_statistics,
    token_self_certainty,
    token_statistics,
)


QWEN_VOCAB = 151_936


@dataclass
class Args:
    positions: int = 2048
    "positions N of the logits tensor [N, V]"
    vocab: int = QWEN_VOCAB
    "vocabulary size V"
    dtypes: str = "float32,bfloat16"
    "comma-separated logits dtypes; empty: skip part 1"
    repeats: int = 5
    "timed repeats per candidate (after one warm-up round); medians are reported"
    device: str = "auto"
    "cpu, cuda or auto (cuda when available)"
    v0: bool = True
    "also time intuitor.certainty.kernel as it was before this benchmark (`--no-v0` to skip)"
    sub_chunks: str = ""
    (
        "comma-separated log2 of CPU_SUB_CHUNK_ELEMENTS to sweep, one intuitor@k variant each (0: no sub-chunks), "
        "e.g. 17,18,19,20,0"
    )
    skip_lm: bool = False
    "skip part 2 (hidden states through the LM head)"
    lm_batch: int = 8
    "part 2: sequences per batch"
    lm_prompt: int = 32
    "part 2: prompt tokens per sequence"
    lm_completion: int = 224
    "part 2: completion tokens per sequence (scored positions = lm_batch * lm_completion)"
    lm_hidden: int = 64
    "part 2: hidden size of the tiny Qwen2"
    lm_layers: int = 2
    "part 2: layers of the tiny Qwen2"
    max_time_ratio: float = 1.0
    "target: intuitor time / naive time at most this"
    max_memory_ratio: float = 0.25
    "target: intuitor peak extra memory / naive peak extra memory at most this"
    max_error: float = 1e-4
    "target: max abs error against float64 for float32 logits"
    seed: int = 0
    "random seed of the logits and the tiny LM"
    clock: str = "auto"
    "cpu (process CPU time), wall, or auto: cpu on CPU with 1 thread, else wall (see _common.default_clock)"
    threads: int = 1
    "torch CPU threads; 0 keeps torch's default (see README: on a shared CPU box, 1 is both faster and steadier)"
    background_load: int = 0
    "busy processes (a Python spin loop each) the benchmark starts before timing and stops at the end"
    sc_only: bool = False
    "part 1: self-certainty only (intuitor-sc, naive-sc, authors-sc and their variants), no entropy candidates"
    serial: bool = False
    "also time intuitor[-sc]-serial: sub-chunks one after the other with multi-threaded ops (before issue 21)"


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    docs = _field_docs(Args)
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=docs.get(f.name))
        else:
            kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            help_ = f"{docs.get(f.name, '')} (default {f.default})"
            parser.add_argument(flag, type=kind, default=f.default, help=help_)
    return Args(**vars(parser.parse_args(argv)))


def _field_docs(cls) -> dict[str, str]:
    """Field docstrings (the string literal after each field) become --help, cleanrl style."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = nxt.value.value
    return docs


# ---------------------------------------------------------------------------------------------------------------
# The kernels under comparison. Each takes logits [N, V] and returns (sc [N], entropy [N] or None).


def naive_statistics(z: torch.Tensor, entropy: bool = True):
    logp = torch.log_softmax(z.float(), dim=-1)  # (N, V) float32: the whole tensor at once
    sc = -logp.mean(dim=-1) - math.log(z.size(-1))
    ent = -(logp.exp() * logp).sum(dim=-1) if entropy else None
    return sc, ent


def authors_self_certainty(z: torch.Tensor):
    """The authors' reduction, in the input dtype, without the constant -log V."""
    return torch.logsumexp(z, dim=-1) - z.mean(dim=-1), None


def v0_stats_chunk(z: torch.Tensor, temperature: float, entropy: bool):
    """The kernel's `_stats_chunk` before this benchmark (kept to show the change): one pass per 64 MiB chunk,
    logsumexp then softmax (exp twice), `p * z` materialised, entropy as log Z - sum(softmax(z) * z)."""
    z = z.float()  # (N, V)
    if temperature != 1.0:
        z = z / temperature
    log_z = torch.logsumexp(z, dim=-1)  # (N,)
    sc = log_z - z.mean(dim=-1) - math.log(z.size(-1))
    if not entropy:
        return sc, None
    p = torch.softmax(z, dim=-1)  # (N, V)
    return sc, log_z - (p * z).sum(dim=-1)


@contextmanager
def patched(**attrs):
    """Temporarily replace attributes of `intuitor.certainty.kernel` (a kernel, a constant) for one measurement."""
    saved = {k: getattr(kernel, k) for k in attrs}
    for k, v in attrs.items():
        setattr(kernel, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(kernel, k, v)


def serial_stats(z: torch.Tensor, rows: int, temperature: float, entropy: bool, threads: int):
    """The kernel's sub-chunk loop before issue 21: one sub-chunk after the other, each op on every thread."""
    parts = [kernel._stats_rows(z[i : i + rows], temperature, entropy) for i in range(0, z.size(0), rows)]
    return torch.cat([p[0] for p in parts]), (torch.cat([p[1] for p in parts]) if entropy else None)


def variant(kind: str):
    """Attributes that turn the current certainty kernel into `kind`: '' (as is), 'v0', 'serial' or '@k' (sub-chunk
    2**k)."""
    if kind == "v0":
        return {"_stats_chunk": v0_stats_chunk}
    if kind == "serial":
        return {"_stats_parallel": serial_stats}
    if kind.startswith("@"):
        k = int(kind[1:])
        return {"CPU_SUB_CHUNK_ELEMENTS": 1 << k if k else 1 << 62}  # @0: no sub-chunks
    return {}


def sub_chunk_exponents(args: Args) -> list[int]:
    return [int(k) for k in args.sub_chunks.split(",") if k.strip()]


@torch.no_grad()
def reference_statistics(z: torch.Tensor, rows: int = 64):
    """Self-certainty and entropy in float64, a few rows at a time: the ground truth."""
    sc, ent = [], []
    for i in range(0, z.size(0), rows):
        zd = z[i : i + rows].double()
        lse = torch.logsumexp(zd, dim=-1)
        sc.append(lse - zd.mean(dim=-1) - math.log(z.size(-1)))
        ent.append(lse - (torch.softmax(zd, dim=-1) * zd).sum(dim=-1))
    return torch.cat(sc), torch.cat(ent)


def make_logits(n: int, vocab: int, dtype: torch.dtype, device: str, seed: int) -> torch.Tensor:
    """LM-like logits: Gaussian bulk (std 2.5), a per-row offset, and one dominant token per row (+5 to +20)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.empty(n, vocab, dtype=dtype, device=device)
    for i in range(0, n, 64):  # built in slices, so no float32 copy of the whole tensor exists for bf16
        k = min(64, n - i)
        block = torch.randn(k, vocab, generator=g) * 2.5 + torch.randn(k, 1, generator=g) * 3.0
        block[torch.arange(k), torch.randint(vocab, (k,), generator=g)] += 5.0 + 15.0 * torch.rand(k, generator=g)
        z[i : i + k] = block.to(dtype)
    return z


def _max_err(x: torch.Tensor | None, ref: torch.Tensor) -> float:
    return float("nan") if x is None else (x.double().cpu() - ref.cpu()).abs().max().item()


@dataclass
class Part:
    """One table: candidates built by `make()` -> (candidates, reference, fix), each compared with its `base`.

    `reference` is (sc, entropy) in float64; `fix(name, sc)` maps a candidate's SC to the reference's convention.
    Inputs are built twice, once for the timing phase and once for the memory phase, and freed in between.
    """

    tag: str
    title: str
    make: object
    base: dict
    judged: list
    check_error: bool
    times: object = None
    peaks: dict = None
    errs: dict = None

    def time(self, args: Args, device: str) -> None:
        candidates, _, _ = self.make()
        self.times = interleaved(candidates, args.repeats, device=device, clock=_clock(args))

    def measure(self, device: str) -> None:
        candidates, (ref_sc, ref_ent), fix = self.make()
        self.peaks, self.errs = {}, {}
        for name, fn in candidates.items():
            with peak_extra(device) as peak:
                out = fn()
            sc, ent = (out.self_certainty, out.entropy) if hasattr(out, "self_certainty") else out
            self.peaks[name] = peak.extra
            self.errs[name] = (_max_err(fix(name, sc), ref_sc), _max_err(ent, ref_ent))
            del out, sc, ent


def logits_part(args: Args, dtype: torch.dtype, device: str) -> Part:
    log_v = math.log(args.vocab)
    kinds = (
        (["v0"] if args.v0 else [])
        + (["serial"] if args.serial else [])
        + [f"@{k}" for k in sub_chunk_exponents(args)]
    )
    base = {"intuitor": "naive", "intuitor-sc": "naive-sc", "authors-sc": "naive-sc"}
    for kind in kinds:
        base[f"intuitor-{kind}".replace("-@", "@")] = "naive"
        base[f"intuitor-sc-{kind}".replace("-@", "@")] = "naive-sc"

    def make():
        z = make_logits(args.positions, args.vocab, dtype, device, args.seed)  # (N, V)
        candidates = {
            "intuitor": lambda: token_statistics(z),
            "naive": lambda: naive_statistics(z),
            "intuitor-sc": lambda: (token_self_certainty(z), None),
            "naive-sc": lambda: naive_statistics(z, entropy=False),
            "authors-sc": lambda: authors_self_certainty(z),
        }
        for kind in kinds:

            def stats(entropy, attrs=variant(kind)):
                with patched(**attrs):
                    return token_statistics(z, entropy=entropy)

            candidates[f"intuitor-{kind}".replace("-@", "@")] = lambda stats=stats: stats(True)
            candidates[f"intuitor-sc-{kind}".replace("-@", "@")] = lambda stats=stats: stats(False)
        if args.sc_only:  # drop every candidate that computes the entropy
            candidates = {k: v for k, v in candidates.items() if "-sc" in k}

        def fix(name, sc):  # the authors omit -log V
            return sc.double() - log_v if name == "authors-sc" else sc

        return candidates, reference_statistics(z), fix

    tag = str(dtype).replace("torch.", "")
    title = f"{tag} logits, N={args.positions}, V={args.vocab}; ratios against naive (stats) or naive-sc"
    judged = ["intuitor-sc"] if args.sc_only else ["intuitor", "intuitor-sc"]
    return Part(
        tag,
        title,
        make,
        {k: v for k, v in base.items() if not args.sc_only or "-sc" in k},
        judged,
        dtype == torch.float32,
    )


HEADERS = ["variant", "median s", "range s", "wall s", "t/base", "peak MiB", "mem/base", "|err| SC", "|err| H"]


def summarise(args: Args, part: Part, report: Report) -> None:
    """Print the table, record ratios and errors in `report`, and judge the `judged` variants against the targets."""
    tag, times, peaks, errs, base = part.tag, part.times, part.peaks, part.errs, part.base
    rows = []
    for name in times.wall:
        t, ref = median(times[name]), base.get(name)
        t_ratio = t / median(times[ref]) if ref else float("nan")
        m_ratio = peaks[name] / peaks[ref] if ref and peaks[name] is not None and peaks[ref] else float("nan")
        rows.append(
            [
                name,
                f"{t:.3f}",
                spread(times[name]),
                f"{median(times.wall[name]):.3f}",
                f"{t_ratio:.2f}" if ref else "-",
                fmt_mib(peaks[name]),
                f"{m_ratio:.3f}" if ref else "-",
                f"{errs[name][0]:.1e}",
                f"{errs[name][1]:.1e}",
            ]
        )
        report.rows.append(
            {
                "part": tag,
                "variant": name,
                "seconds": t,
                "time_ratio": t_ratio,
                "peak_bytes": peaks[name],
                "memory_ratio": m_ratio,
                "sc_error": errs[name][0],
                "entropy_error": errs[name][1],
            }
        )
        if ref:
            report.ratios[f"{tag}/{name}/time"] = t_ratio
            report.ratios[f"{tag}/{name}/memory"] = m_ratio
        report.errors[f"{tag}/{name}/sc"] = errs[name][0]
        if errs[name][1] == errs[name][1]:
            report.errors[f"{tag}/{name}/entropy"] = errs[name][1]
    print(f"\n[{part.title}]")
    print(table(HEADERS, rows))
    for name in part.judged:
        ref = base[name]
        t_ratio, m_ratio = report.ratios[f"{tag}/{name}/time"], report.ratios[f"{tag}/{name}/memory"]
        report.verdicts.append(
            Verdict(
                f"{tag} {name} time <= {args.max_time_ratio:g} x {ref}",
                t_ratio <= args.max_time_ratio,
                f"{t_ratio:.2f}",
            )
        )
        if m_ratio == m_ratio:
            report.verdicts.append(
                Verdict(
                    f"{tag} {name} peak memory <= {args.max_memory_ratio:g} x {ref}",
                    m_ratio <= args.max_memory_ratio,
                    f"{m_ratio:.3f}",
                )
            )
        if part.check_error:
            err = max(e for e in errs[name] if e == e)
            report.verdicts.append(
                Verdict(f"{tag} {name} error <= {args.max_error:g} (vs float64)", err <= args.max_error, f"{err:.1e}")
            )


# ---------------------------------------------------------------------------------------------------------------
# Part 2: hidden states through the LM head.


def tiny_big_vocab_lm(args: Args, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(args.seed)
    config = Qwen2Config(
        vocab_size=args.vocab,
        hidden_size=args.lm_hidden,
        intermediate_size=2 * args.lm_hidden,
        num_hidden_layers=args.lm_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max(1024, args.lm_prompt + args.lm_completion),
        tie_word_embeddings=False,
    )  # tied, a random model's logits are one-hot on the input token
    model = Qwen2ForCausalLM(config).to(device).eval()
    with torch.no_grad():  # logits of std ~3 (a random init gives near-uniform ones): scale the head up
        model.get_output_embeddings().weight.mul_(150.0 / math.sqrt(args.lm_hidden))
    return model


@torch.no_grad()
def naive_response_statistics(model, input_ids: torch.Tensor, prompt_len: int):
    """Full completion logits [B, C, V] as TRL gets them (logits_to_keep), then the naive reduction."""
    c = input_ids.size(1) - prompt_len
    logits = model(input_ids=input_ids, logits_to_keep=c + 1).logits[:, :-1]  # (B, C, V): predict tokens P..P+C-1
    sc, ent = naive_statistics(logits)  # (B, C)
    return sc.mean(dim=-1), ent.mean(dim=-1)


@torch.no_grad()
def reference_response_statistics(model, input_ids: torch.Tensor, prompt_len: int):
    c = input_ids.size(1) - prompt_len
    logits = model(input_ids=input_ids, logits_to_keep=c + 1).logits[:, :-1]  # (B, C, V)
    sc, ent = reference_statistics(logits.reshape(-1, logits.size(-1)))
    return sc.view(logits.shape[:2]).mean(-1), ent.view(logits.shape[:2]).mean(-1)


def lm_part(args: Args, device: str) -> Part:
    kinds = (["v0"] if args.v0 else []) + [f"@{k}" for k in sub_chunk_exponents(args)]
    names = {kind: f"intuitor-{kind}".replace("-@", "@") for kind in kinds}

    def make():
        model = tiny_big_vocab_lm(args, device)
        g = torch.Generator().manual_seed(args.seed + 1)
        ids = torch.randint(args.vocab, (args.lm_batch, args.lm_prompt + args.lm_completion), generator=g)
        prompts = [row[: args.lm_prompt].tolist() for row in ids]
        completions = [row[args.lm_prompt :].tolist() for row in ids]
        ids = ids.to(device)

        def patched_statistics(attrs):
            with patched(**attrs):
                return response_statistics(model, prompts, completions, batch_size=args.lm_batch)

        candidates = {
            "intuitor": lambda: response_statistics(model, prompts, completions, batch_size=args.lm_batch),
            "naive": lambda: naive_response_statistics(model, ids, args.lm_prompt),
        }
        for kind in kinds:
            candidates[names[kind]] = lambda attrs=variant(kind): patched_statistics(attrs)
        return candidates, reference_response_statistics(model, ids, args.lm_prompt), lambda name, sc: sc

    n = args.lm_batch * args.lm_completion
    title = (
        f"lm: hidden states -> statistics, tiny Qwen2 ({args.lm_layers} layers, hidden {args.lm_hidden}, "
        f"V={args.vocab}), batch {args.lm_batch} x ({args.lm_prompt} prompt + {args.lm_completion} completion), "
        f"{n} scored positions, float32; ratios against naive"
    )
    base = {"intuitor": "naive", **dict.fromkeys(names.values(), "naive")}
    return Part("lm", title, make, base, ["intuitor"], True)


def _clock(args: Args) -> str | None:
    return None if args.clock == "auto" else args.clock


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    set_threads(args.threads)
    with background_load(args.background_load):
        return _run(args, device)


@contextmanager
def background_load(n: int):
    """n busy processes (a spin loop each), started here and killed on the way out: a shared, busy CPU on demand."""
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _run(args: Args, device: str) -> Report:
    print(f"machine: {machine(device)}; {args.background_load} busy background process(es) started by the benchmark")
    print(clock_note(_clock(args) or default_clock(device)) + "; `wall s` is the median wall time")
    dtypes = [name.strip() for name in args.dtypes.split(",") if name.strip()]
    parts = [logits_part(args, getattr(torch, name), device) for name in dtypes]
    if not args.skip_lm:
        parts.append(lm_part(args, device))
    for part in parts:  # every timing first: the memory probe changes how glibc allocates (see _common.py)
        part.time(args, device)
    for part in parts:
        part.measure(device)
    report = Report()
    for part in parts:
        summarise(args, part, report)
    report.print_verdicts()
    return report


if __name__ == "__main__":
    main()
