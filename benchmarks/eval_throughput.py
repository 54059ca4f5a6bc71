"""Benchmark: evaluation throughput of the transformers backend, and what self-certainty adds to it.

N fixed-length responses (sampling at temperature 1, `min_new_tokens = max_new_tokens` so every response has the
same length and every batch size does the same work) are generated with `intuitor.generation.hf.HFGenerator`
(refill scheduling as `intuitor eval` runs it, or `--scheduling static`: `model.generate` on left-padded batches) at
batch sizes 1, 2, 4, 8, 16, 32, in three modes:
  - generate  generation alone (`HFGenerator(record_statistics=False)`);
  - record    `HFGenerator` as `intuitor eval` uses it: generation inside `record_generation(model)`, a hook on the
              LM head reducing each decoding step's logits to self-certainty and entropy (`last_statistics`), so
              the statistics cost no forward pass;
  - score     generation, then `response_statistics` over prompt + completion: the extra no-grad pass that the
              evaluation harness ran before it recorded (and still runs for vLLM).
It prints responses per second per batch size and mode, and each mode's throughput relative to `generate` at the
same batch size (1.00 = free). Models: the tiny Qwen2 that the tests use (`build_tiny_model`, V = 259) and,
with `--models tiny,smollm2`, SmolLM2-135M-Instruct from the packaged GGUF file (V = 49,152).

Timings are medians of repeats interleaved over batch sizes and modes (see `_common.py`); on a shared CPU box,
compare ratios within one run only.

    python benchmarks/eval_throughput.py
    python benchmarks/eval_throughput.py --models tiny,smollm2 --responses 32 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Report,
    Verdict,
    clock_note,
    default_clock,
    interleaved,
    machine,
    median,
    quiet_hf,
    set_threads,
    spread,
    table,
)

from intuitor.certainty import response_statistics  # noqa: E402
from intuitor.generation.base import render_prompt  # noqa: E402
from intuitor.generation.hf import HFGenerator  # noqa: E402
from intuitor.models import SMOLLM2_ALIAS, build_tiny_model, load_model_and_tokenizer  # noqa: E402


QUESTIONS = [
    "What is 7 * 8?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Solve for x: 3x + 5 = 20.",
    "A rectangle has a perimeter of 30 and a width of 5. What is its area?",
    "Compute the sum of the first 20 positive odd integers.",
    "If a train travels 120 km in 1.5 hours, what is its average speed in km/h?",
    "How many positive divisors does 36 have?",
    "Simplify (x^2 - 9) / (x - 3).",
]
MODES = ("generate", "record", "score")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="tiny", help="comma-separated: tiny, smollm2 (default tiny)")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="comma-separated batch sizes")
    p.add_argument("--responses", type=int, default=32, help="responses generated per measurement (default 32)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="length of every response (default 64)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)}")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (after one warm-up round), default 3")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument(
        "--scheduling",
        default="refill",
        choices=["refill", "static"],
        help="HFGenerator's scheduling (default refill, as `intuitor eval`; static: model.generate)",
    )
    p.add_argument(
        "--max-record-overhead",
        type=float,
        default=0.05,
        help="target: `record` loses at most this fraction of `generate` throughput (default 0.05)",
    )
    p.add_argument(
        "--clock",
        default="auto",
        choices=["auto", "cpu", "wall"],
        help="cpu: process CPU time; auto: cpu on CPU with 1 thread, else wall (default auto)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads, 0 = torch's default (default 1)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load(name: str, device: str, workdir: str):
    if name == "tiny":
        path = build_tiny_model(Path(workdir) / "tiny")
        model, tok = load_model_and_tokenizer(str(path))
    elif name == "smollm2":
        model, tok = load_model_and_tokenizer(SMOLLM2_ALIAS)
    else:
        raise ValueError(f"Unknown model '{name}': use tiny or smollm2")
    return model.to(device).eval(), tok


def run_mode(mode: str, gen: HFGenerator, prompts: list[list[int]], batch: int, new_tokens: int, seed: int):
    """Generate len(prompts) responses, `batch` per call; returns the completion lengths."""
    lengths = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]  # sorted by length: HFGenerator keeps their order within a call
        if mode == "record":  # the recording generator: statistics come with the completions
            out = gen.recording.generate(chunk, temperature=1.0, max_new_tokens=new_tokens, seed=seed + start)
            assert gen.recording.last_statistics is not None
        else:
            out = gen.generate(chunk, temperature=1.0, max_new_tokens=new_tokens, seed=seed + start)
            if mode == "score":
                response_statistics(gen.model, chunk, [c.ids for c in out], batch_size=batch)
        lengths += [len(c.ids) for c in out]
    return lengths


def bench_model(name: str, args, device: str, report: Report, workdir: str) -> None:
    model, tok = load(name, device, workdir)
    model.generation_config.min_new_tokens = args.max_new_tokens  # fixed-length responses: EOS is masked until then
    qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.responses)]
    prompts = sorted((render_prompt(tok, [{"role": "user", "content": q}])[1] for q in qs), key=len)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    sched = args.scheduling
    gens = {b: HFGenerator(model, tok, batch_size=b, record_statistics=False, scheduling=sched) for b in batches}
    for b, g in gens.items():
        g.recording = HFGenerator(model, tok, batch_size=b, scheduling=sched)  # records, as `intuitor eval` does
    lengths: dict[tuple[int, str], list[int]] = {}

    def job(b, m):
        def run():
            lengths[(b, m)] = run_mode(m, gens[b], prompts, b, args.max_new_tokens, args.seed)

        return run

    clock = None if args.clock == "auto" else args.clock
    times = interleaved(
        {f"{b}/{m}": job(b, m) for b in batches for m in modes}, args.repeats, device=device, clock=clock
    )
    short = {k: min(v) for k, v in lengths.items() if min(v) != args.max_new_tokens}
    vocab = model.get_output_embeddings().weight.size(0)
    rows = []
    for b in batches:
        base = median(times[f"{b}/generate"]) if "generate" in modes else float("nan")
        for m in modes:
            t = median(times[f"{b}/{m}"])
            rps = args.responses / t
            ratio = base / t  # throughput relative to plain generation
            rows.append(
                [
                    f"{b}",
                    m,
                    f"{t:.2f}",
                    spread(times[f"{b}/{m}"]),
                    f"{median(times.wall[f'{b}/{m}']):.2f}",
                    f"{rps:.2f}",
                    f"{rps * args.max_new_tokens:.0f}",
                    f"{ratio:.2f}" if m != "generate" else "-",
                ]
            )
            report.rows.append(
                {
                    "model": name,
                    "batch": b,
                    "mode": m,
                    "seconds": t,
                    "responses_per_s": rps,
                    "relative_throughput": ratio,
                }
            )
            report.ratios[f"{name}/{b}/{m}/responses_per_s"] = rps
            if m != "generate":
                report.ratios[f"{name}/{b}/{m}/relative"] = ratio
    print(
        f"\n[{name}: V={vocab}, {args.responses} responses x {args.max_new_tokens} new tokens, "
        f"{len(prompts[0])}-{len(prompts[-1])} prompt tokens, {sched} scheduling]"
    )
    print(table(["batch", "mode", "median s", "range s", "wall s", "resp/s", "tok/s", "vs generate"], rows))
    if short:
        print(f"warning: some responses were shorter than {args.max_new_tokens} tokens: {short}")
    for m in ("record", "score"):
        if m in modes and "generate" in modes:
            worst = min(report.ratios[f"{name}/{b}/{m}/relative"] for b in batches)
            big = max(batches)
            at_big = report.ratios[f"{name}/{big}/{m}/relative"]
            print(f"{name} {m}: throughput vs generate, worst batch size {worst:.2f}, batch {big} {at_big:.2f}")
            if m == "record":
                report.verdicts.append(
                    Verdict(
                        f"{name} record_generation costs <= {args.max_record_overhead:.0%} of throughput (batch {big})",
                        at_big >= 1 - args.max_record_overhead,
                        f"{at_big:.2f} of generate",
                    )
                )


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    set_threads(args.threads)
    quiet_hf()
    print(f"machine: {machine(device)}")
    print(clock_note(args.clock if args.clock != "auto" else default_clock(device)) + "; resp/s uses these times")
    report = Report()
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            bench_model(name.strip(), args, device, report, workdir)
    report.print_verdicts()
    return report


if __name__ == "__main__":
    main()
