"""Refill scheduling of the transformers backend (issue 32): greedy responses identical to `generate`'s static
batches, no decoding step spent on a finished row, and self-certainty recorded per request equal to the float64
forward pass over prompt + response."""

import copy
import os
import warnings

import pytest
import torch

from intuitor.certainty import response_statistics
from intuitor.generation.base import render_prompt
from intuitor.generation.hf import HFGenerator


@pytest.fixture(scope="module")
def lively(tiny_model_dir):
    """The tiny model with larger random weights: its greedy text depends on the context (the stock tiny model
    repeats one token), and an extra stop id makes its rows end after different numbers of tokens."""
    from intuitor.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    prompts = [render_prompt(tok, [{"role": "user", "content": "x" * k + " question"}])[1] for k in range(1, 12)]
    return model.eval(), tok, prompts


def generator(model, tok, scheduling, batch_size=3, stop_id=198):
    g = HFGenerator(model, tok, batch_size=batch_size, scheduling=scheduling)
    g.eos_ids = g.eos_ids + [stop_id]  # a frequent token ends rows early: lengths 2..30 below
    return g


def float64_statistics(model, prompts, completions):
    return response_statistics(copy.deepcopy(model).double(), prompts, [c.ids for c in completions], batch_size=1)


@pytest.mark.parametrize("stop_id", [198, 194, 184])
def test_refill_greedy_equals_static_and_records_exactly(lively, stop_id):
    model, tok, prompts = lively
    static = generator(model, tok, "static", stop_id=stop_id)
    refill = generator(model, tok, "refill", stop_id=stop_id)
    want = static.generate(prompts, max_new_tokens=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = refill.generate(prompts, max_new_tokens=30)
    # the forward's cache keyword as the installed transformers names it (5.25 renamed past_key_values to cache)
    assert not [w for w in caught if "past_key_values" in str(w.message)]
    lengths = [len(c.ids) for c in got]
    assert len(set(lengths)) >= 4 and max(lengths) == 30  # rows really end at different steps
    assert [c.ids for c in got] == [c.ids for c in want] and [c.text for c in got] == [c.text for c in want]
    ref = float64_statistics(model, prompts, got)
    stats = refill.last_statistics
    assert torch.allclose(stats.self_certainty.double(), ref.self_certainty.double(), atol=1e-5, rtol=0)
    assert torch.allclose(stats.entropy.double(), ref.entropy.double(), atol=1e-5, rtol=0)
    assert torch.allclose(stats.self_certainty, static.last_statistics.self_certainty, atol=1e-5, rtol=0)


def test_refill_decodes_no_finished_row(lively):
    """Every row of every forward produces a token some response keeps: the rows summed over all forwards equal
    the tokens generated, and the batch stays full while prompts wait."""
    model, tok, prompts = lively

    def forwards(scheduling):
        rows = []  # (batch rows, query length) of every backbone call
        handle = model.model.register_forward_pre_hook(
            lambda mod, args, kw: rows.append(tuple(kw["input_ids"].shape)), with_kwargs=True
        )
        try:
            out = generator(model, tok, scheduling, batch_size=4).generate(prompts, max_new_tokens=30)
        finally:
            handle.remove()
        return rows, out

    rows, out = forwards("refill")
    common = len(os.path.commonprefix(prompts))
    assert rows[0] == (1, common)  # the prompts' shared prefix, prefilled once
    assert sum(b for b, _ in rows[1:]) == sum(len(c.ids) for c in out)
    assert all(q <= max(map(len, prompts)) - common for _, q in rows[1:])  # later prefills: suffixes only
    steps = [b for b, q in rows if q == 1]
    assert steps[0] == 4 and steps.count(4) >= len(steps) // 2
    static_rows, _ = forwards("static")  # static batches decode finished rows until their longest one ends
    assert sum(b for b, _ in static_rows) > 1.2 * sum(b for b, _ in rows)


def test_refill_stop_strings_and_sampling(lively):
    model, tok, prompts = lively
    greedy = generator(model, tok, "static").generate(prompts, max_new_tokens=30)
    stop = next(c.text[3:5] for c in greedy if len(c.text) > 8)  # a string some responses contain
    kw = dict(max_new_tokens=30, stop=[stop])
    want = generator(model, tok, "static").generate(prompts, **kw)
    got = generator(model, tok, "refill").generate(prompts, **kw)
    assert [c.ids for c in got] == [c.ids for c in want] and any(c.text != g.text for c, g in zip(got, greedy))
    kw = dict(n=2, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=3)
    g = generator(model, tok, "refill")
    a = g.generate(prompts[:5], **kw)
    b = generator(model, tok, "refill").generate(prompts[:5], **kw)
    assert [c.ids for c in a] == [c.ids for c in b] and len(a) == 10  # seeded: reproducible
    assert a[0].ids != a[1].ids or a[2].ids != a[3].ids  # two samples of a prompt differ
    ref = float64_statistics(model, [p for p in prompts[:5] for _ in range(2)], a)
    assert torch.allclose(g.last_statistics.self_certainty.double(), ref.self_certainty.double(), atol=1e-5, rtol=0)


def test_scheduling_is_checked_and_sized(lively):
    model, tok, _ = lively
    with pytest.raises(ValueError, match="scheduling='paged': must be one of auto, refill, static"):
        HFGenerator(model, tok, scheduling="paged")
    assert (
        HFGenerator(model, tok, batch_size=8).chunk_size > 8 == HFGenerator(model, tok, scheduling="static").chunk_size
    )


def test_auto_refills_greedy_and_samples_as_static(lively):
    """The default (`auto`): greedy decoding refills (same responses, fewer steps); sampling keeps static batches and
    their draws, so sampled figures published before refill (the demo's) reproduce."""
    model, tok, prompts = lively
    auto = HFGenerator(model, tok, batch_size=4)
    assert auto.chunk_for(0.0) > 4 == auto.chunk_for(0.7)
    kw = dict(n=2, temperature=0.9, max_new_tokens=12, seed=3)
    static = HFGenerator(model, tok, batch_size=4, scheduling="static").generate(prompts, **kw)
    assert [c.ids for c in auto.generate(prompts, **kw)] == [c.ids for c in static]
    refill = HFGenerator(model, tok, batch_size=4, scheduling="refill").generate(prompts, **kw)
    assert [c.ids for c in refill] != [c.ids for c in static]  # its own per-request draws


@pytest.mark.slow
def test_refill_on_smollm2_equals_static(smollm2_gguf, data_dir):
    """SmolLM2-135M on the first 8 GSM8K prompts as `intuitor eval` renders them (system prompt, stop "Question:"):
    greedy responses of different lengths, identical to `model.generate`'s; self-certainty = the float64 pass."""
    from intuitor.evaluation.harness import make_task
    from intuitor.models import SMOLLM2_ALIAS, load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(SMOLLM2_ALIAS)
    rows = make_task("gsm8k", data_dir).load(8)
    prompts = [render_prompt(tok, r["prompt"])[1] for r in rows]
    kw = dict(max_new_tokens=160, stop=["Question:"])
    want = HFGenerator(model, tok, batch_size=4, scheduling="static").generate(prompts, **kw)
    refill = HFGenerator(model, tok, batch_size=4)
    got = refill.generate(prompts, **kw)
    assert [c.ids for c in got] == [c.ids for c in want] and [c.text for c in got] == [c.text for c in want]
    assert len({len(c.ids) for c in got}) >= 2, [len(c.ids) for c in got]  # 112 and 160: rows left, others joined
    ref = response_statistics(model.double(), prompts, [c.ids for c in got], batch_size=1)
    assert torch.allclose(refill.last_statistics.self_certainty.double(), ref.self_certainty.double(), atol=1e-4)
