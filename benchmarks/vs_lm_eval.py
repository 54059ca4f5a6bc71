"""Benchmark: `intuitor eval` against lm-evaluation-harness on the same model, data and settings (issue 32).

Both run in this process on one loaded SmolLM2-135M-Instruct (the packaged GGUF, float32) over the first N GSM8K
test problems, greedy, the same new-token cap, stop string "Question:" and batch size, with byte-identical prompt
texts (intuitor's gsm8k task rendered through the chat template; the script checks that lm-eval tokenises each
to the same ids):
  - intuitor-refill  `intuitor.evaluation.harness.evaluate` with its default backend, `HFGenerator` with refill
                     scheduling (finished rows leave the batch, waiting prompts take their place) and
                     self-certainty recorded during generation, then scoring: what `intuitor eval` runs;
  - intuitor-static  the same with `HFGenerator(scheduling="static")`: `model.generate` on padded batches;
  - lm-eval          lm-eval's `HFLM.generate_until` (its `model.generate` on length-sorted padded batches and its
                     stop criteria), then the same task scorer on its texts.
Candidates run in A B ... B A order (`--rounds` times); each gets the median of its runs, wall and process CPU
seconds. It prints the times, each intuitor candidate's ratio to lm-eval, the work done (decoding forwards, and
the rows they decoded, counted by a hook on the backbone: exact whatever the load), and how many responses and
verdicts are identical to lm-eval's. lm-eval is an optional benchmark dependency:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 \\
        && .venv-bench/bin/pip install -e . lm-eval==0.4.13
    INTUITOR_DATA_DIR=/work/shared/data .venv-bench/bin/python benchmarks/vs_lm_eval.py            # 64 x 256, batch 8
    INTUITOR_DATA_DIR=... .venv-bench/bin/python benchmarks/vs_lm_eval.py --limit 8 --max-new-tokens 32 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Report, Verdict, machine, median, quiet_hf, set_threads, table  # noqa: E402

from intuitor.evaluation.harness import evaluate, make_task, score_all  # noqa: E402
from intuitor.generation.base import encode, render_prompt  # noqa: E402
from intuitor.generation.hf import HFGenerator  # noqa: E402
from intuitor.models import SMOLLM2_ALIAS, build_tiny_model, load_model_and_tokenizer  # noqa: E402


CANDIDATES = ("intuitor-refill", "lm-eval", "intuitor-static")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2", help="smollm2 (default) or tiny (smoke tests)")
    p.add_argument("--limit", type=int, default=64, help="first N GSM8K test problems (default 64)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="new-token cap (default 256, lighteval's)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--rounds", type=int, default=1, help="A B B A rounds (default 1)")
    p.add_argument(
        "--candidates",
        default="intuitor-refill,lm-eval",
        help=f"comma-separated, ABBA order over them: {', '.join(CANDIDATES)}",
    )
    p.add_argument("--target", type=float, default=0.8, help="target: intuitor-refill wall time / lm-eval's")
    p.add_argument("--data-dir", default=os.environ.get("INTUITOR_DATA_DIR"), help="holds gsm8k/test.jsonl")
    return p.parse_args(argv)


def lm_eval_run(lm, task, rows, prompts, max_new_tokens):
    """lm-eval's generate_until on the rendered prompts, then intuitor's scorer: (texts, verdicts)."""
    from lm_eval.api.instance import Instance

    kwargs = {
        "until": list(task.stop_sequences),
        "max_gen_toks": max_new_tokens,
        "do_sample": False,
        "temperature": 0.0,
    }
    requests = [
        Instance(request_type="generate_until", doc=row, arguments=(text, dict(kwargs)), idx=0)
        for row, text in zip(rows, prompts)
    ]
    texts = lm.generate_until(requests, disable_tqdm=True)
    return texts, score_all(task, texts, rows)


def intuitor_run(model, tok, args, scheduling):
    gen = HFGenerator(model, tok, batch_size=args.batch_size, scheduling=scheduling)
    res = evaluate(
        (model, tok),
        ["gsm8k"],
        data_dir=args.data_dir,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        generator=gen,
        progress=False,
        return_samples=True,
        threads=args.threads,
    )
    by_id = {r["id"]: r for r in res["samples"]}
    return [by_id[str(i)]["response"] for i in range(len(by_id))], [
        by_id[str(i)]["correct"] for i in range(len(by_id))
    ]


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    quiet_hf()
    set_threads(args.threads)
    from lm_eval.models.huggingface import HFLM

    if args.model == "tiny":
        import tempfile

        model, tok = load_model_and_tokenizer(str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")))
    else:
        model, tok = load_model_and_tokenizer(SMOLLM2_ALIAS)
    model.eval()
    task = make_task("gsm8k", args.data_dir)
    rows = task.load(args.limit)
    rendered = [render_prompt(tok, r["prompt"]) for r in rows]
    prompts = [text for text, _ in rendered]
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, max_length=4096)
    for text, ids in rendered:  # byte-identical prompts: lm-eval must see the very ids intuitor generates from
        assert lm.tok_batch_encode([text])[0][0].tolist() == ids == encode(tok, text), "prompt ids differ"
    names = [c.strip() for c in args.candidates.split(",")]
    runs = {
        "intuitor-refill": lambda: intuitor_run(model, tok, args, "refill"),
        "intuitor-static": lambda: intuitor_run(model, tok, args, "static"),
        "lm-eval": lambda: lm_eval_run(lm, task, rows, prompts, args.max_new_tokens),
    }
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    outputs = {}
    print(f"machine: {machine('cpu')}; load average before: {os.getloadavg()}")
    order = [n for _ in range(args.rounds) for n in names + names[::-1]]  # A B B A
    work: dict[str, tuple[int, int]] = {}  # (decoding forwards, rows they decoded): load-independent

    def count(module, a, kw):
        ids = kw.get("input_ids") if kw.get("input_ids") is not None else kw.get("inputs_embeds")
        if ids is not None and ids.shape[1] == 1:  # a decoding step (prefills have the prompt's length)
            calls.append(ids.shape[0])

    handle = model.base_model.register_forward_pre_hook(count, with_kwargs=True)
    for n in order:
        calls: list[int] = []
        w0, c0 = time.perf_counter(), time.process_time()
        outputs[n] = runs[n]()
        wall[n].append(time.perf_counter() - w0)
        cpu[n].append(time.process_time() - c0)
        work[n] = (len(calls), sum(calls))
        print(
            f"  {n}: {wall[n][-1]:.1f} s wall, {cpu[n][-1]:.1f} s CPU, {work[n][0]} decoding steps of "
            f"{work[n][1]} rows, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    handle.remove()
    report = Report()
    ref_texts, ref_ok = outputs.get("lm-eval", (None, None))
    table_rows = []
    for n in names:
        texts, ok = outputs[n]
        same = sum(a == b for a, b in zip(texts, ref_texts)) if ref_texts else len(texts)
        same_v = sum(a == b for a, b in zip(ok, ref_ok)) if ref_ok else len(ok)
        w, c = median(wall[n]), median(cpu[n])
        rw = w / median(wall["lm-eval"]) if "lm-eval" in wall else float("nan")
        rc = c / median(cpu["lm-eval"]) if "lm-eval" in cpu else float("nan")
        report.ratios[f"{n}/wall"], report.ratios[f"{n}/cpu"] = rw, rc
        report.ratios[f"{n}/identical"] = same / len(texts)
        report.ratios[f"{n}/steps"], report.ratios[f"{n}/rows"] = work[n]
        table_rows.append(
            [
                n,
                f"{w:.1f}",
                f"{c:.1f}",
                f"{rw:.3f}",
                f"{rc:.3f}",
                *work[n],
                f"{same}/{len(texts)}",
                f"{same_v}/{len(ok)}",
                f"{sum(ok)}/{len(ok)}",
            ]
        )
    print(
        f"\n[{args.model}: first {args.limit} GSM8K test problems, greedy, {args.max_new_tokens} new tokens, "
        f"batch {args.batch_size}, {args.threads} threads, {args.rounds} ABBA round(s)]"
    )
    print(
        table(
            [
                "candidate",
                "wall s",
                "CPU s",
                "wall / lm-eval",
                "CPU / lm-eval",
                "decoding steps",
                "rows decoded",
                "same text",
                "same verdict",
                "correct",
            ],
            table_rows,
        )
    )
    if "intuitor-refill" in names and "lm-eval" in names:
        r = report.ratios["intuitor-refill/wall"]
        report.verdicts.append(
            Verdict(f"intuitor eval <= {args.target}x lm-eval's wall time", r <= args.target, f"{r:.3f}")
        )
        report.verdicts.append(
            Verdict(
                "responses identical to lm-eval's",
                report.ratios["intuitor-refill/identical"] == 1,
                f"{report.ratios['intuitor-refill/identical']:.3f}",
            )
        )
    report.print_verdicts()
    return report


if __name__ == "__main__":
    main()
