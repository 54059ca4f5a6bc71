"""The evaluation harness: pass@k, resume, sample rows, self-certainty, the backends and the `intuitor eval` CLI.

Most tests run a toy in-memory task on the tiny Qwen2 model; the end-to-end tests run every registered benchmark
with --limit 2 on the tiny model, and (slow) SmolLM2-135M on two benchmarks.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch

from intuitor.certainty import response_self_certainty
from intuitor.evaluation.harness import (
    EvaluationInterrupted,
    EvaluationWarning,
    evaluate,
    flat_metrics,
    model_fingerprint,
    pass_at_k,
    pass_at_k_values,
    read_samples,
    results_table,
    summarise_task,
)
from intuitor.generation.base import Completion, Generator, check_sampling, render_prompt
from intuitor.generation.hf import HFGenerator
from intuitor.generation.vllm import build_requests, parse_outputs, sampling_kwargs
from intuitor.tasks.base import Task


FIXTURES = Path(__file__).parent / "fixtures"
PAPER_TASKS = ["gsm8k", "math500", "cruxeval", "humaneval", "mmlu_pro", "alpaca_eval", "livecodebench"]
SAMPLE_FIELDS = {
    "task": str,
    "id": str,
    "sample": int,
    "prompt": str,
    "response": str,
    "correct": bool,
    "self_certainty": float,
    "entropy": float,
    "num_tokens": int,
    "truncated": bool,
    "model": str,
    "task_version": int,
}


class ToyTask(Task):
    """'Say X': correct when the response starts with X. Not registered: the tests pass the object itself."""

    name = "toy"
    version = 3

    def __init__(self, n: int = 6):
        super().__init__()
        self.n = n

    def load(self, limit=None):
        letters = "ABCDEFGH"[: self.n if limit is None else min(limit, self.n)]
        return [
            {"id": f"t{i}", "prompt": [{"role": "user", "content": f"Say {c}"}], "answer": c}
            for i, c in enumerate(letters)
        ]

    def extract(self, response):
        return response[:1] or None

    def score(self, response, row):
        return self.extract(response) == row["answer"]


class FakeGenerator(Generator):
    """Answers every prompt with known token ids ('A' then EOS, or 'B' then EOS for odd samples); counts calls."""

    name = "fake"
    chunk_size = 4

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        self.calls = []  # (number of prompts, n)

    def generate(self, prompts, n=1, temperature=0.0, max_new_tokens=512, seed=None, top_p=1.0):
        check_sampling(n, temperature, max_new_tokens, top_p)
        self.calls.append((len(prompts), n))
        eos = self.tokenizer.eos_token_id
        out = []
        for _ in prompts:
            for k in range(n):
                text = "A!" if k % 2 == 0 else "B?"
                out.append(Completion(self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos], text))
        return out


class SpyHFGenerator(HFGenerator):
    """The real transformers backend, recording what it returned."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.returned: list[tuple[list[int], Completion]] = []

    def generate(self, prompts, n=1, **kw):
        out = super().generate(prompts, n=n, **kw)
        ids = self.prompt_ids(prompts)
        self.returned += [(ids[j // n], c) for j, c in enumerate(out)]
        return out


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from intuitor.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    return model.eval(), tok


# ------------------------------------------------------------------------------------------------------ pass@k


def test_pass_at_k_hand_computed():
    assert pass_at_k(5, 2, 1) == pytest.approx(2 / 5)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 4) == pytest.approx(1 - 35 / 210)  # 1 - C(7,4)/C(10,4)
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0  # any 4 of 4 contain the correct one
    assert pass_at_k(8, 8, 1) == 1.0
    assert pass_at_k_values(4) == [1, 2, 4] and pass_at_k_values(3) == [1, 2, 3]
    with pytest.raises(ValueError, match="needs 1 <= k <= n"):
        pass_at_k(2, 1, 3)


def test_summarise_task_averages_problems_and_reports_pass_at_k():
    rows = [{"id": "a", "correct": c, "self_certainty": 1.0} for c in (True, False, False, False)]
    rows += [{"id": "b", "correct": c, "self_certainty": 3.0} for c in (True, True, False, False)]
    m = summarise_task(rows)
    assert m["n"] == 2 and m["num_samples"] == 8 and m["self_certainty"] == pytest.approx(2.0)
    assert m["score"] == pytest.approx((1 / 4 + 2 / 4) / 2) == m["pass@1"]
    assert m["pass@2"] == pytest.approx(((1 - 3 / 6) + (1 - 1 / 6)) / 2)  # C(3,2)/C(4,2), C(2,2)/C(4,2)
    assert m["pass@4"] == 1.0
    assert "pass@1" not in summarise_task(rows[:1])  # K = 1: accuracy only
    results = {"model": "m", "tasks": {"gsm8k": m, "alpaca_eval": {**m, "score": None, "judged": False}}}
    flat = flat_metrics(results)
    assert flat["eval/gsm8k/pass@2"] == m["pass@2"] and "eval/alpaca_eval/score" not in flat
    table = results_table(results)
    assert [c.header for c in table.columns] == ["metric", "GSM8K", "AlpacaEval"]
    assert list(table.columns[2].cells)[0] == "-"  # not judged: no score, not 0%


# ------------------------------------------------------------------------------------------------------ harness


def test_samples_rows_fields_types_and_results(tiny, tmp_path):
    model, tok = tiny
    gen = FakeGenerator(tok)
    model.train()  # as if mid-training: evaluation must hand it back in training mode
    res = evaluate(
        tiny,
        [ToyTask()],
        output_dir=tmp_path,
        limit=3,
        samples=2,
        temperature=0.7,
        generator=gen,
        model_name="tiny",
        progress=False,
    )
    assert model.training
    model.eval()
    rows = read_samples(tmp_path / "samples.jsonl")
    assert len(rows) == 6
    for r in rows:
        for field, typ in SAMPLE_FIELDS.items():
            assert isinstance(r[field], typ), (field, r[field])
        assert r["answer"] == r["response"][0] and r["correct"] == (r["answer"] == r["gold"])
        assert r["num_tokens"] == 3 and r["model"] == "tiny" and r["task_version"] == 3
        assert r["prompt"].endswith("<|im_start|>assistant\n") and "Say" in r["prompt"]
    assert sorted((r["id"], r["sample"]) for r in rows) == [(f"t{i}", k) for i in range(3) for k in range(2)]
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    toy = on_disk["tasks"]["toy"]
    # Samples 0 say 'A' (right for t0 only), samples 1 say 'B' (right for t1 only).
    assert toy["score"] == pytest.approx(2 / 6) and toy["n"] == 3 and toy["version"] == 3
    assert toy["pass@2"] == pytest.approx(2 / 3) and toy["metric"] == "accuracy"
    assert on_disk["config"]["samples"] == 2 and on_disk["config"]["temperature"] == 0.7
    assert on_disk["config"]["versions"]["transformers"]
    assert "toy" in results_table(res).columns[1].header


def test_self_certainty_is_response_self_certainty_of_the_tiny_model(tiny, tmp_path):
    model, tok = tiny
    # Known completion ids (fake backend) ...
    res = evaluate(tiny, [ToyTask()], limit=2, generator=FakeGenerator(tok), progress=False, return_samples=True)
    for r in res["samples"]:
        prompt_ids = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        ids = tok(r["response"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        expected = response_self_certainty(model, [prompt_ids], [ids]).item()
        assert r["self_certainty"] == pytest.approx(expected, abs=1e-5)
    # ... and whatever the real transformers backend generated, batched with left padding.
    spy = SpyHFGenerator(model, tok, batch_size=3)
    res = evaluate(
        tiny, [ToyTask()], limit=4, max_new_tokens=12, batch_size=3, generator=spy, progress=False, return_samples=True
    )
    assert len(spy.returned) == len(res["samples"]) == 4
    for (prompt_ids, comp), r in zip(spy.returned, res["samples"]):
        assert r["response"] == comp.text and r["num_tokens"] == len(comp.ids) <= 12
        expected = response_self_certainty(model, [prompt_ids], [comp.ids]).item()
        assert r["self_certainty"] == pytest.approx(expected, abs=1e-5)


def test_resume_generates_only_missing_rows(tiny, tmp_path):
    model, tok = tiny
    kw = dict(output_dir=tmp_path, samples=2, temperature=0.5, model_name="tiny", progress=False)
    gen = FakeGenerator(tok)
    evaluate(tiny, [ToyTask()], limit=3, generator=gen, **kw)
    assert sum(p * n for p, n in gen.calls) == 6
    gen.calls.clear()
    evaluate(tiny, [ToyTask()], limit=3, generator=gen, **kw)  # all done: nothing generated
    assert gen.calls == []
    evaluate(tiny, [ToyTask()], limit=5, generator=gen, **kw)  # two new prompts
    assert sum(p * n for p, n in gen.calls) == 4
    # Drop one sample of t0 and tear the last line, as a killed run would leave them.
    path = tmp_path / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    keep = [ln for ln in lines if not (json.loads(ln)["id"] == "t0" and json.loads(ln)["sample"] == 1)]
    path.write_text("".join(keep[:-1]) + keep[-1][:20])
    gen.calls.clear()
    with pytest.warns(EvaluationWarning, match="samples.jsonl:9: dropped a torn partial row"):
        res = evaluate(tiny, [ToyTask()], limit=5, generator=gen, **kw)
    assert gen.calls == [(2, 1)]  # t0 sample 1 and the torn row: one sample each, in one call
    rows = read_samples(path)
    assert len(rows) == 10 == res["tasks"]["toy"]["num_samples"]
    assert len({(r["id"], r["sample"]) for r in rows}) == 10


def test_parallel_scoring_keeps_the_order(tiny):
    model, tok = tiny
    task = ToyTask()
    task.score_workers = 3  # as a sandboxed code task would set it
    res = evaluate(
        tiny,
        [task],
        limit=6,
        samples=2,
        temperature=1.0,
        generator=FakeGenerator(tok),
        progress=False,
        return_samples=True,
    )
    assert all(r["correct"] == (r["response"][0] == r["gold"]) for r in res["samples"])
    assert sum(r["correct"] for r in res["samples"]) == 2


def test_resume_refuses_other_settings_and_versions(tiny, tmp_path):
    model, tok = tiny
    kw = dict(output_dir=tmp_path, model_name="tiny", progress=False, generator=FakeGenerator(tok))
    evaluate(tiny, [ToyTask()], limit=1, max_new_tokens=8, **kw)
    with pytest.raises(ValueError, match="max_new_tokens=8"):
        evaluate(tiny, [ToyTask()], limit=2, max_new_tokens=9, **kw)
    newer = ToyTask()
    newer.version = 4
    with pytest.raises(ValueError, match="version 3 of the task, which is now version 4"):
        evaluate(tiny, [newer], limit=2, max_new_tokens=8, **kw)
    with pytest.raises(ValueError, match="not 'other'"):
        evaluate(tiny, [ToyTask()], limit=2, max_new_tokens=8, **{**kw, "model_name": "other"})
    evaluate(tiny, [ToyTask()], limit=2, max_new_tokens=8, seed=5, **kw)  # greedy: the seed changes nothing


def test_resume_refuses_another_seed_when_sampling(tiny, tmp_path):
    kw = {
        "output_dir": tmp_path,
        "model_name": "tiny",
        "progress": False,
        "generator": FakeGenerator(tiny[1]),
        "samples": 2,
        "temperature": 0.7,
    }
    evaluate(tiny, [ToyTask()], limit=1, seed=1, **kw)
    with pytest.raises(ValueError, match=r"written with seed=1 but this run has seed=2.*--seed 1 to resume"):
        evaluate(tiny, [ToyTask()], limit=2, seed=2, **kw)


def test_sampling_settings_are_checked_before_anything_loads():
    with pytest.raises(ValueError, match="set --temperature > 0"):
        evaluate("no/such-model", ["gsm8k"], samples=4, temperature=0.0)
    with pytest.raises(ValueError, match="Did you mean: hf"):
        evaluate("no/such-model", ["gsm8k"], backend="hg")
    with pytest.raises(KeyError, match="Did you mean: addition"):
        evaluate("no/such-model", ["additon"])
    with pytest.raises(ValueError, match="dtype=fp8: expected one of auto, float32, bfloat16, float16"):
        evaluate("no/such-model", ["addition"], dtype="fp8")


# ------------------------------------------------------------------------------------------------------ backends


def test_render_prompt_uses_the_chat_template(tiny):
    _, tok = tiny
    text, ids = render_prompt(tok, [{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert ids == tok(text, add_special_tokens=False)["input_ids"]


def test_hf_generator_batches_like_one_by_one_and_stops_at_eos(tiny):
    model, tok = tiny
    prompts = [render_prompt(tok, [{"role": "user", "content": s}])[1] for s in ("a", "a longer prompt", "mid one")]
    one = HFGenerator(model, tok, batch_size=1).generate(prompts, max_new_tokens=10)
    batched = HFGenerator(model, tok, batch_size=3).generate(prompts, max_new_tokens=10)
    assert [c.ids for c in one] == [c.ids for c in batched]
    for c in batched:
        assert 1 <= len(c.ids) <= 10 and tok.eos_token_id not in c.ids[:-1]
        assert c.text == tok.decode(c.ids, skip_special_tokens=True)
    kw = dict(n=3, temperature=1.0, max_new_tokens=6, seed=1)
    sampled = HFGenerator(model, tok, batch_size=4).generate(prompts[:2], **kw)
    again = HFGenerator(model, tok, batch_size=4).generate(prompts[:2], **kw)
    assert len(sampled) == 6 and [c.ids for c in sampled] == [c.ids for c in again]


def test_vllm_requests_are_built_without_vllm():
    kw = sampling_kwargs(n=4, temperature=0.6, max_new_tokens=128, seed=7, top_p=0.95)
    assert kw == dict(
        n=4,
        temperature=0.6,
        top_p=0.95,
        top_k=-1,
        repetition_penalty=1.0,
        max_tokens=128,
        skip_special_tokens=True,
        seed=7,
    )
    assert sampling_kwargs()["temperature"] == 0.0 and "seed" not in sampling_kwargs()
    assert sampling_kwargs(stop_token_ids=(2, 0))["stop_token_ids"] == [2, 0]
    with pytest.raises(ValueError, match="temperature=0"):
        sampling_kwargs(n=2, temperature=0.0)
    assert build_requests([[1, 2], (3,)]) == [{"prompt_token_ids": [1, 2]}, {"prompt_token_ids": [3]}]
    outs = [
        types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=(i, k), text=f"{i}{k}") for k in range(2)])
        for i in range(2)
    ]
    assert parse_outputs(outs, n=2) == [([0, 0], "00"), ([0, 1], "01"), ([1, 0], "10"), ([1, 1], "11")]
    with pytest.raises(RuntimeError, match="asked for 3"):
        parse_outputs(outs, n=3)


def test_vllm_generator_with_a_mocked_vllm(monkeypatch, tiny):
    from intuitor.generation.vllm import VLLMGenerator

    _, tok = tiny
    seen = {}

    class LLM:
        def __init__(self, **kw):
            seen["llm"] = kw

        def generate(self, requests, params, use_tqdm=False):
            seen["requests"], seen["params"] = requests, params
            one = types.SimpleNamespace(token_ids=[5, tok.eos_token_id], text="x")
            return [types.SimpleNamespace(outputs=[one] * params.n) for _ in requests]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, types.SimpleNamespace
    monkeypatch.setitem(sys.modules, "vllm", fake)
    gen = VLLMGenerator("some/model", tok, dtype="bfloat16", seed=3)
    assert seen["llm"]["model"] == "some/model" and seen["llm"]["gpu_memory_utilization"] == 0.6
    out = gen.generate(["<|im_start|>user\nhi"], n=2, temperature=1.0, max_new_tokens=5, seed=9)
    assert out == [([5, tok.eos_token_id], "x")] * 2
    expected_ids = tok("<|im_start|>user\nhi", add_special_tokens=False)["input_ids"]
    assert seen["requests"] == [{"prompt_token_ids": expected_ids}]
    assert seen["params"].max_tokens == 5 and seen["params"].seed == 9 and seen["params"].n == 2
    assert seen["params"].stop_token_ids == [tok.eos_token_id, tok.pad_token_id]  # <|im_end|>, <|endoftext|>

    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    with pytest.raises(ImportError, match="pip install 'intuitor\\[vllm\\]'"):
        VLLMGenerator("some/model", tok)


# ---------------------------------------------------------------------------------------------------------- CLI


def _cli():
    import typer
    from typer.testing import CliRunner

    from intuitor.evaluation.cli import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # two commands, so that `eval` is a subcommand as in the real CLI
    return CliRunner(), app


def test_cli_user_errors_are_one_line(tmp_path):
    runner, app = _cli()
    r = runner.invoke(app, ["eval", "no/such-model", "--tasks", "additon", "--output-dir", str(tmp_path)])
    assert r.exit_code == 1 and "Unknown task 'additon'. Did you mean: addition?" in r.output
    assert r.output.strip().count("\n") == 0 and "Traceback" not in r.output
    r = runner.invoke(app, ["eval", "m", "--tasks", "addition", "--samples", "2", "--output-dir", str(tmp_path)])
    assert r.exit_code == 1 and "set --temperature > 0" in r.output


def test_cli_data_errors_are_one_line(tmp_path, data_dir):
    pytest.importorskip("intuitor.tasks.gsm8k", reason="gsm8k task not written yet")
    runner, app = _cli()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": oops\n')
    base = ["eval", "no/such-model", "--tasks", "gsm8k", "--output-dir", str(tmp_path / "o")]
    r = runner.invoke(app, base + ["--task-path", f"gsm8k={bad}"])
    assert r.exit_code == 1 and f"{bad}:2" in r.output.replace("\n", "")
    r = runner.invoke(app, base + ["--data-dir", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "no local file at" in r.output and "pass --data-dir" in r.output
    assert r.output.startswith("error: ") and "Traceback" not in r.output


def test_cli_end_to_end_every_task_on_the_tiny_model(tmp_path, tiny_model_dir, data_dir):
    from intuitor.tasks import TASKS, load_all

    load_all()
    present = [t for t in PAPER_TASKS if t in TASKS]
    assert present == PAPER_TASKS
    runner, app = _cli()
    out = tmp_path / "out"
    args = [
        "eval",
        str(tiny_model_dir),
        "--tasks",
        ",".join(present),
        "--data-dir",
        str(data_dir),
        "--limit",
        "2",
        "--max-new-tokens",
        "16",
        "--batch-size",
        "8",
        "--output-dir",
        str(out),
        "--no-progress",
    ]
    if "livecodebench" in present:  # not in the shared data: the task's own fixture, in the hub's format
        args += ["--task-path", f"livecodebench={FIXTURES / 'livecodebench' / 'test.jsonl'}"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    assert list(results["tasks"]) == [
        t
        for t in ["gsm8k", "math500", "livecodebench", "cruxeval", "mmlu_pro", "alpaca_eval", "humaneval"]
        if t in present
    ]
    for t in present:
        score = results["tasks"][t]["score"]
        assert results["tasks"][t]["n"] == 2 and ((t == "alpaca_eval" and score is None) or 0.0 <= score <= 1.0)
    rows = read_samples(out / "samples.jsonl")
    assert len(rows) == 2 * len(present) and all(0 < r["num_tokens"] <= 16 for r in rows)
    assert "GSM8K" in r.output if "gsm8k" in present else True
    if "alpaca_eval" in present:
        outputs = json.loads((out / "alpaca_eval_outputs.json").read_text())
        assert len(outputs) == 2 and outputs[0]["generator"] == str(tiny_model_dir)
        assert {o["output"] for o in outputs} == {r["response"] for r in rows if r["task"] == "alpaca_eval"}


@pytest.mark.slow
def test_smollm2_on_every_task(tmp_path, smollm2_gguf, data_dir):
    res = evaluate(
        "smollm2-gguf",
        PAPER_TASKS,
        data_dir=data_dir,
        output_dir=tmp_path,
        limit=1,
        max_new_tokens=24,
        progress=False,
        task_paths={"livecodebench": str(FIXTURES / "livecodebench" / "test.jsonl")},
    )
    for t in PAPER_TASKS:
        assert res["tasks"][t]["n"] == 1
    rows = read_samples(tmp_path / "samples.jsonl")
    assert all(r["num_tokens"] > 0 and r["self_certainty"] > 0 for r in rows)
    assert rows[0]["prompt"].startswith("<|im_start|>")
    from importlib.metadata import version

    assert res["config"]["versions"]["transformers"] == version("transformers")


# ------------------------------------------------------------------ self-certainty recorded during generation (hf)


class OtherToyTask(ToyTask):
    name = "toy2"


def test_hf_backend_records_self_certainty_during_generation_no_second_pass(tiny, monkeypatch):
    """Issue 15.2: the hf backend's statistics come from generation's own logits; no forward pass after it, and
    prompts of two tasks share one generate call."""
    import intuitor.certainty

    model, tok = tiny

    def no_pass(*a, **kw):
        raise AssertionError("a second self-certainty pass ran")

    monkeypatch.setattr(intuitor.certainty, "response_statistics", no_pass)  # what the harness imports
    monkeypatch.setattr(intuitor.certainty.responses, "response_statistics", no_pass)  # where it lives
    widths = []  # sequence length of every backbone call: prompts at prefill, 1 per decoding step
    handle = model.model.register_forward_pre_hook(
        lambda mod, args, kw: widths.append(
            (kw.get("input_ids") if kw.get("input_ids") is not None else kw["inputs_embeds"]).shape[1]
        ),
        with_kwargs=True,
    )
    spy = SpyHFGenerator(model, tok, batch_size=8)
    generate_calls = []
    inner = spy.generate  # the backend's calls (refill scheduling decodes without model.generate)
    monkeypatch.setattr(spy, "generate", lambda *a, **kw: (generate_calls.append(1), inner(*a, **kw))[1])
    try:
        res = evaluate(
            tiny,
            [ToyTask(), OtherToyTask()],
            limit=3,
            max_new_tokens=10,
            batch_size=8,
            generator=spy,
            progress=False,
            return_samples=True,
        )
    finally:
        handle.remove()
    assert len(generate_calls) == 1  # 2 tasks x 3 prompts in one batch of 8
    # one prefill (refill scheduling: the prompts' shared prefix, then their suffixes), then single-token steps only
    assert sum(w > 1 for w in widths) == 2 and len(widths) <= 11
    assert {r["task"] for r in res["samples"]} == {"toy", "toy2"} and len(res["samples"]) == 6
    monkeypatch.undo()
    completion_of = {tuple(p): c for p, c in spy.returned}  # greedy: the same prompt gets the same completion
    for r in res["samples"]:
        prompt_ids = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        comp = completion_of[tuple(prompt_ids)]
        expected = response_self_certainty(model, [prompt_ids], [comp.ids]).item()
        assert r["self_certainty"] == pytest.approx(expected, abs=1e-4) and r["self_certainty"] != 0.0


def test_vllm_like_backend_is_scored_by_a_batched_pass(tiny):
    model, tok = tiny
    gen = FakeGenerator(tok)  # no recorded statistics: the harness scores with the HF model
    res = evaluate(tiny, [ToyTask(), OtherToyTask()], limit=2, generator=gen, progress=False, return_samples=True)
    assert gen.calls == [(4, 1)]  # one call across both tasks (chunk_size 4)
    assert all(r["self_certainty"] > 0 for r in res["samples"])


def test_cpu_threads_default_and_restored(tiny, monkeypatch):
    from intuitor.evaluation import harness

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(harness, "default_threads", lambda: 1)
    seen = []
    before = torch.get_num_threads()
    gen = FakeGenerator(tiny[1])
    inner = gen.generate
    gen.generate = lambda *a, **kw: (seen.append(torch.get_num_threads()), inner(*a, **kw))[1]
    evaluate(tiny, [ToyTask()], limit=1, generator=gen, progress=False)
    assert seen == [1] and torch.get_num_threads() == before
    evaluate(tiny, [ToyTask()], limit=1, generator=gen, progress=False, threads=2)
    assert seen[-1] == 2 and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads=0"):
        evaluate(tiny, [ToyTask()], limit=1, generator=gen, progress=False, threads=0)


# ------------------------------------------------------------------------------------- GGUF converted once (15.3)


@pytest.mark.slow
def test_gguf_is_dequantised_once_into_the_cache(tmp_path, smollm2_gguf, monkeypatch):
    import transformers

    from intuitor.models import gguf_cache_path, load_model_and_tokenizer, load_tokenizer

    monkeypatch.setenv("INTUITOR_CACHE_DIR", str(tmp_path / "cache"))
    gguf_loads = []
    inner = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **kw: (gguf_loads.append("gguf_file" in kw), inner(*a, **kw))[1],
    )
    first, tok = load_model_and_tokenizer("smollm2-gguf")
    second, _ = load_model_and_tokenizer("smollm2-gguf", dtype="bfloat16")
    assert gguf_loads == [True, False, False]  # the first load converts, then reads the folder; the second reads it
    folder = gguf_cache_path(smollm2_gguf)
    assert folder.parent == tmp_path / "cache" / "gguf" and (folder / "config.json").exists()
    assert second.config.name_or_path == str(folder)  # a real folder: TRL can build a reference model from it
    assert second.dtype == torch.bfloat16 and not getattr(second, "is_quantized", False)
    w1, w2 = first.get_input_embeddings().weight, second.get_input_embeddings().weight
    assert torch.allclose(w1.bfloat16().float(), w2.float())
    assert load_tokenizer("smollm2-gguf").get_vocab() == tok.get_vocab()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no half-written folder left


# ------------------------------------------------------------------ resume: what produced a row (issues 26, 28.4)
# Each case changes one thing between two runs into the same output folder and asserts what happens: the model's
# files, the dtype, the prompt or the task version are refused with a line naming what changed; a changed gold
# answer is re-scored without generating again; a damaged samples.jsonl (torn last row, last row without its
# newline) is repaired without losing a complete row; duplicate ids in the data are refused naming both lines;
# progress counts each task's own rows, a resume says how much was done, Ctrl-C says how much was kept.


class GoldToy(ToyTask):
    """ToyTask whose golds (and prompts) the test edits between runs, as a user edits a data file."""

    def __init__(self, golds="ABCDEF", prompts=None):
        super().__init__(len(golds))
        self.golds, self.prompts = golds, prompts or [f"Say {c}" for c in "ABCDEF"]

    def load(self, limit=None):
        rows = super().load(limit)
        for row, gold, prompt in zip(rows, self.golds, self.prompts):
            row["answer"], row["prompt"] = gold, [{"role": "user", "content": prompt}]
        return rows


def _kw(tiny, tmp_path, **over):
    return {
        "output_dir": tmp_path,
        "model_name": "tiny",
        "progress": False,
        "generator": FakeGenerator(tiny[1]),
        **over,
    }


# --------------------------------------------------------------------------------------------- what produced a row


def test_changed_gold_is_rescored_without_generating(tiny, tmp_path):
    kw = _kw(tiny, tmp_path)
    first = evaluate(tiny, [GoldToy("ABCA")], **kw)  # FakeGenerator answers "A!": t0 and t3 right
    assert first["tasks"]["toy"]["score"] == pytest.approx(0.5)
    kw["generator"].calls.clear()
    with pytest.warns(EvaluationWarning, match=r"toy: the data of 2 problem\(s\) changed .*id t1: gold 'B' -> 'A'"):
        again = evaluate(tiny, [GoldToy("AACB")], **kw)
    assert kw["generator"].calls == []  # nothing generated again
    assert again["tasks"]["toy"]["score"] == pytest.approx(0.5)  # t0, t1 right now; t3 wrong
    rows = {r["id"]: r for r in read_samples(tmp_path / "samples.jsonl")}
    assert [rows[i]["gold"] for i in ("t0", "t1", "t2", "t3")] == ["A", "A", "C", "B"]
    assert [rows[i]["correct"] for i in ("t0", "t1", "t2", "t3")] == [True, True, False, False]
    with warnings.catch_warnings():  # re-scored rows are stored: a third run has nothing to redo
        warnings.simplefilter("error", EvaluationWarning)
        evaluate(tiny, [GoldToy("AACB")], **kw)


def test_changed_prompt_task_version_and_dtype_are_refused(tiny, tmp_path):
    kw = _kw(tiny, tmp_path)
    evaluate(tiny, [GoldToy("AB")], **kw)
    with pytest.raises(ValueError, match=r"samples.jsonl:2: the prompt of toy id t1 changed in the data"):
        evaluate(tiny, [GoldToy("AB", prompts=["Say A", "Say Q"])], **kw)
    newer = GoldToy("AB")
    newer.version = 4
    with pytest.raises(ValueError, match=r"samples.jsonl:1 holds toy responses scored by version 3 .* now version 4"):
        evaluate(tiny, [newer], **kw)
    half = (tiny[0].to(dtype=torch.bfloat16), tiny[1])
    try:
        with pytest.raises(
            ValueError,
            match=r"written with dtype=float32 but this run has dtype=bfloat16.*"
            r"--dtype float32 to resume",
        ):
            evaluate(half, [GoldToy("AB")], **kw)
    finally:
        tiny[0].float()


def test_model_fingerprint_sees_a_replaced_model_not_a_copy(tmp_path, tiny_model_dir):
    from intuitor.models import build_tiny_model

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert model_fingerprint(str(copy)) == model_fingerprint(str(tiny_model_dir)) is not None
    build_tiny_model(copy, seed=1)  # retrained in place: same names, same sizes, other weights
    assert model_fingerprint(str(copy)) != model_fingerprint(str(tiny_model_dir))
    assert model_fingerprint(tiny_model_dir.parent / "no-such-model") is None
    assert model_fingerprint((object(), object())) is None  # in-memory: not checked


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


MATH = [
    {"problem": "What is 1+1?", "answer": "2", "unique_id": "a"},
    {"problem": "What is 2+2?", "answer": "4", "unique_id": "b"},
]


def test_cli_resume_refuses_other_model_or_dtype_and_rescores_gold(tmp_path, tiny_model_dir):
    from intuitor.models import build_tiny_model

    runner, app = _cli()
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    data = _write(tmp_path / "math.jsonl", MATH)
    out = tmp_path / "out"
    base = [
        "eval",
        str(model),
        "--tasks",
        "math500",
        "--task-path",
        f"math500={data}",
        "--output-dir",
        str(out),
        "--max-new-tokens",
        "3",
        "--device",
        "cpu",
        "--no-progress",
    ]
    r = runner.invoke(app, base)
    assert r.exit_code == 0, r.output
    rows = read_samples(out / "samples.jsonl")
    assert {r_["dtype"] for r_ in rows} == {"float32"} and len({r_["model_fingerprint"] for r_ in rows}) == 1

    _write(data, [MATH[0], {**MATH[1], "answer": "5"}])  # a gold corrected in the data
    r = runner.invoke(app, base)
    assert r.exit_code == 0, r.output
    assert "warning: " in r.output and "id b: gold '4' -> '5'" in r.output and "re-scored their 1 stored" in r.output
    assert [r_["gold"] for r_ in read_samples(out / "samples.jsonl")] == ["2", "5"]

    r = runner.invoke(app, base + ["--dtype", "bfloat16"])
    assert r.exit_code == 1 and "written with dtype=float32 but this run has dtype=bfloat16" in r.output
    assert r.output.strip().count("\n") == 0

    build_tiny_model(model, seed=3)  # another model written to the same path
    r = runner.invoke(app, base)
    assert r.exit_code == 1 and f"the model at {model} changed since these responses were generated" in r.output
    assert "Traceback" not in r.output and len(read_samples(out / "samples.jsonl")) == 2


# --------------------------------------------------------------------------------------------- samples.jsonl damage


def test_last_row_without_newline_is_completed_not_continued(tiny, tmp_path):
    kw = _kw(tiny, tmp_path)
    evaluate(tiny, [GoldToy("AB")], **kw)
    path = tmp_path / "samples.jsonl"
    path.write_text(path.read_text().rstrip("\n"))  # a run killed between a row and its newline
    evaluate(tiny, [GoldToy("ABC")], **kw)  # appends t2
    lines = path.read_text().splitlines()
    assert [json.loads(ln)["id"] for ln in lines] == ["t0", "t1", "t2"]  # each on its own line


def test_rows_glued_on_one_line_are_split_and_kept(tiny, tmp_path):
    kw = _kw(tiny, tmp_path)
    evaluate(tiny, [GoldToy("ABC")], **kw)
    path = tmp_path / "samples.jsonl"
    a, b, c = path.read_text().splitlines()
    path.write_text(f"{a}\n{b}{c}\n")  # what the old resume left after a missing newline
    kw["generator"].calls.clear()
    evaluate(tiny, [GoldToy("ABC")], **kw)
    assert kw["generator"].calls == []  # no complete row lost, so nothing to redo
    assert path.read_text() == f"{a}\n{b}\n{c}\n"


def test_torn_partial_row_is_dropped_with_a_warning_and_regenerated(tiny, tmp_path):
    kw = _kw(tiny, tmp_path)
    evaluate(tiny, [GoldToy("ABC")], **kw)
    path = tmp_path / "samples.jsonl"
    a, b, c = path.read_text().splitlines()
    path.write_text(f"{a}\n{b}\n{c[:25]}")
    with pytest.warns(EvaluationWarning, match=r"samples.jsonl:3: dropped a torn partial row"):
        evaluate(tiny, [GoldToy("ABC")], **kw)
    assert [r["id"] for r in read_samples(path)] == ["t0", "t1", "t2"]


def test_a_malformed_row_in_the_middle_is_an_error_with_its_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"task": "toy"}\n{"task": oops\n{"task": "toy"}\n')
    with pytest.raises(ValueError, match=r"samples.jsonl:2: malformed sample row"):
        read_samples(path)


# --------------------------------------------------------------------------------------------- data ids


def test_duplicate_ids_in_the_data_are_refused_naming_both_lines(tmp_path):
    runner, app = _cli()
    data = _write(tmp_path / "math.jsonl", [MATH[0], MATH[1], {**MATH[1], "problem": "What is 3+3?"}])
    r = runner.invoke(
        app,
        [
            "eval",
            "no/such-model",
            "--tasks",
            "math500",
            "--task-path",
            f"math500={data}",
            "--output-dir",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 1, r.output
    line = " ".join(r.output.split())
    assert f"{data}:2 and {data}:3 share the id 'b' (different rows)" in line and "Traceback" not in r.output


def test_duplicate_ids_of_a_task_object_name_its_rows():
    class Twice(ToyTask):
        def load(self, limit=None):
            rows = super().load(limit)
            return rows + [dict(rows[1])]

    with pytest.raises(ValueError, match=r"toy: row 2 and row 4 share the id 't1' \(identical rows\)"):
        evaluate("no/such-model", [Twice(3)])


# --------------------------------------------------------------------------------------------- progress, Ctrl-C


class Interrupting(FakeGenerator):
    """Ctrl-C on the `calls_before`+1-th generate call."""

    chunk_size = 2

    def __init__(self, tokenizer, calls_before):
        super().__init__(tokenizer)
        self.calls_before = calls_before

    def generate(self, prompts, **kw):
        if len(self.calls) == self.calls_before:
            raise KeyboardInterrupt
        return super().generate(prompts, **kw)


class OtherToy(GoldToy):
    name = "toy2"


def test_ctrl_c_keeps_what_was_written_and_the_resume_says_so(tiny, tmp_path, capsys):
    kw = _kw(tiny, tmp_path)
    kw["generator"] = Interrupting(tiny[1], calls_before=1)
    with pytest.raises(EvaluationInterrupted) as info:
        evaluate(tiny, [GoldToy("ABCD")], **kw)
    assert str(info.value) == "interrupted: 2 of 4 kept; rerun the same command to resume"
    assert len(read_samples(tmp_path / "samples.jsonl")) == 2
    kw.update(generator=FakeGenerator(tiny[1]), progress=True)
    evaluate(tiny, [GoldToy("ABCD")], **kw)
    err = capsys.readouterr().err
    assert "2 of 4 responses already done" in err and "generating the other 2" in err
    assert len(read_samples(tmp_path / "samples.jsonl")) == 4


def test_progress_bars_count_each_tasks_own_rows(tiny, tmp_path, monkeypatch):
    from intuitor.evaluation import harness

    bars = []
    real = harness._progress

    def spy(enabled):
        bar = real(enabled)
        bars.append(bar)
        return bar

    monkeypatch.setattr(harness, "_progress", spy)
    kw = _kw(tiny, tmp_path, progress=True)
    evaluate(tiny, [GoldToy("AB")], **kw)  # toy: 2 done before the second run
    evaluate(tiny, [GoldToy("ABC"), OtherToy("ABCDE")], **kw)  # toy and toy2 share generate calls
    done = {t.description: (t.completed, t.total) for t in bars[-1].tasks}
    assert done == {"toy": (3, 3), "toy2": (5, 5)}


def test_cli_ctrl_c_is_one_line(tmp_path, monkeypatch):
    from intuitor.evaluation import harness

    def interrupted(*a, **k):
        raise EvaluationInterrupted(3, 10)

    monkeypatch.setattr(harness, "evaluate", interrupted)
    runner, app = _cli()
    r = runner.invoke(app, ["eval", "m", "--tasks", "addition", "--output-dir", str(tmp_path)])
    assert r.exit_code == 130
    assert r.output.strip() == "interrupted: 3 of 10 kept; rerun the same command to resume"
