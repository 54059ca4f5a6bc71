"""Self-certainty against a float64 reference: random logits, real forward passes, padding, alignment, dtypes."""

import math

import pytest
import torch

from intuitor.certainty import (
    record_generation,
    response_self_certainty,
    response_statistics,
    token_entropy,
    token_self_certainty,
    token_statistics,
)


def reference_sc(logits: torch.Tensor) -> torch.Tensor:
    """KL(U_F || p) in float64, U_F uniform over the finite logits F (all V of them when none is -inf)."""
    z = logits.double()
    finite = z > -math.inf
    v_f = finite.sum(-1).double()
    return torch.logsumexp(z, -1) - torch.where(finite, z, 0.0).sum(-1) / v_f - v_f.log()


def reference_entropy(logits: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Categorical(logits=logits.double()).entropy()  # -inf logits: probability 0


def test_uniform_logits_have_zero_self_certainty_and_max_entropy():
    sc, ent = token_statistics(torch.full((3, 5, 11), 2.5))
    assert torch.allclose(sc, torch.zeros(3, 5), atol=1e-6)
    assert torch.allclose(ent, torch.full((3, 5), math.log(11)), atol=1e-5)


def test_hand_computed_two_token_distribution():
    # p = (1/4, 3/4): KL(U||p) = 1/2 [log(0.5/0.25) + log(0.5/0.75)]
    z = torch.tensor([0.0, math.log(3.0)])
    expected = 0.5 * (math.log(2.0) + math.log(2.0 / 3.0))
    assert token_self_certainty(z).item() == pytest.approx(expected, abs=1e-6)
    assert token_entropy(z).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-6)


@pytest.mark.parametrize("vocab", [7, 1000, 50_000])
def test_float32_random_logits_match_float64(vocab):
    torch.manual_seed(vocab)
    logits = torch.randn(2, 9, vocab) * 4
    sc, ent = token_statistics(logits)
    assert sc.dtype == torch.float32 and sc.shape == (2, 9)
    assert (sc.double() - reference_sc(logits)).abs().max() < 1e-5
    assert (ent.double() - reference_entropy(logits)).abs().max() < 1e-4


def test_entropy_is_exact_at_qwen_vocabulary_size():
    """At V = 151,936, log Z - sum(softmax * z) drifts by ~1e-3; the fused kernel stays within 1e-4."""
    torch.manual_seed(2)
    logits = torch.randn(6, 151_936) * 2.5
    logits[torch.arange(6), torch.randint(0, 151_936, (6,))] += 15.0  # one dominant token per row, like an LM
    sc, ent = token_statistics(logits)
    assert (sc.double() - reference_sc(logits)).abs().max() < 1e-4
    assert (ent.double() - reference_entropy(logits)).abs().max() < 1e-4


def test_bf16_logits_are_accumulated_in_float32():
    torch.manual_seed(0)
    logits = (torch.randn(4, 8, 32_000) * 3).bfloat16()
    sc = token_self_certainty(logits)
    assert sc.dtype == torch.float32
    ref = reference_sc(logits)  # the same bf16 values, reduced in float64
    assert (sc.double() - ref).abs().max() < 1e-4
    naive_bf16 = torch.logsumexp(logits, -1) - logits.mean(-1) - math.log(32_000)  # the authors' reduction
    assert (naive_bf16.double() - ref).abs().max() > (sc.double() - ref).abs().max()


def test_chunking_does_not_change_results_and_temperature_scales():
    torch.manual_seed(1)
    logits = torch.randn(5, 13, 301)
    whole, _ = token_statistics(logits, chunk_elements=1 << 30)
    chunked, _ = token_statistics(logits, chunk_elements=301 * 3)  # 3 positions per chunk
    # Same values up to float32 rounding: the bits could depend on how a kernel splits a batch of rows.
    assert torch.allclose(whole, chunked, rtol=0, atol=1e-6)
    assert torch.allclose(
        token_self_certainty(logits, temperature=2.0).double(), reference_sc(logits / 2.0), atol=1e-5
    )
    with pytest.raises(ValueError, match="temperature"):
        token_self_certainty(logits, temperature=0.0)


# --- -inf logits: a masked vocabulary, float16 overflow -------------------------------------------------------


def masked_logits(rows: int, vocab: int, seed: int) -> torch.Tensor:
    """Random peaked logits; row 0 unmasked, row 1 all but one token -inf, the others random masks of -inf."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, vocab, generator=g) * 3
    z[torch.arange(rows), torch.randint(0, vocab, (rows,), generator=g)] += 8.0
    z[2:][torch.rand(rows - 2, vocab, generator=g) < 0.4] = -math.inf
    z[1, 1:] = -math.inf
    return z


def test_masked_row_by_hand():
    # support {0, 1}, p = (1/4, 3/4): the same as the two-token distribution, whatever the -inf tokens
    z = torch.tensor([[0.0, math.log(3.0), -math.inf, -math.inf, -math.inf]])
    sc, ent = token_statistics(z)
    assert sc.item() == pytest.approx(0.5 * (math.log(2.0) + math.log(2.0 / 3.0)), abs=1e-6)
    assert ent.item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-6)
    one = token_statistics(torch.tensor([[-math.inf, 4.0, -math.inf]]))  # a single possible token: certain
    assert one[0].item() == 0.0 and one[1].item() == 0.0


@pytest.mark.parametrize("vocab", [7, 1000, 50_000])
def test_neg_inf_logits_match_categorical_and_finite_support_kl(vocab):
    """Entropy equals torch's Categorical (float64), self-certainty the finite-support KL; both finite."""
    logits = masked_logits(6, vocab, seed=vocab)
    for temperature in (1.0, 0.7):
        sc, ent = token_statistics(logits, temperature)
        assert torch.isfinite(sc).all() and torch.isfinite(ent).all()
        assert (sc.double() - reference_sc(logits / temperature)).abs().max() < 1e-5
        assert (ent.double() - reference_entropy(logits / temperature)).abs().max() < 1e-4
        assert sc[1].item() == 0.0 and ent[1].item() == 0.0
    # Without the -inf tokens, a row scores the same as its finite logits alone (the mask removes tokens).
    row = logits[3]
    alone = token_statistics(row[row > -math.inf])
    assert token_statistics(row)[0].item() == pytest.approx(alone[0].item(), abs=1e-5)
    assert token_statistics(row)[1].item() == pytest.approx(alone[1].item(), abs=1e-5)


def test_neg_inf_logits_in_every_kernel_path():
    """Chunked, sub-chunked on several threads, float16 with overflow to -inf, SC-only: the same numbers."""
    vocab = 151_936
    logits = masked_logits(9, vocab, seed=5)
    sc, ent = token_statistics(logits)
    chunked = token_statistics(logits, chunk_elements=vocab * 2)
    assert torch.allclose(chunked[0], sc, atol=1e-6) and torch.allclose(chunked[1], ent, atol=1e-6)
    assert torch.allclose(token_self_certainty(logits), sc, atol=1e-6)
    assert torch.allclose(token_entropy(logits), ent, atol=1e-6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the parallel sub-chunk path (issue 21)
        par = token_statistics(logits)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(par[0], sc) and torch.equal(par[1], ent)
    assert (sc.double() - reference_sc(logits)).abs().max() < 1e-4
    assert (ent.double() - reference_entropy(logits)).abs().max() < 1e-4
    half = (torch.randn(4, 3000) * 3).half()
    half[:2, :50] = torch.tensor(-70000.0).half()  # float16 overflow: -inf
    assert half.isneginf().sum() == 100
    sc16, ent16 = token_statistics(half)
    assert (sc16.double() - reference_sc(half)).abs().max() < 1e-5
    assert (ent16.double() - reference_entropy(half)).abs().max() < 1e-4


@pytest.mark.parametrize("value, what", [(float("nan"), "NaN"), (math.inf, r"\+inf")])
def test_nan_and_pos_inf_logits_are_an_error_naming_them(value, what):
    logits = masked_logits(5, 100, seed=0)
    logits[3, 7] = value
    with pytest.raises(ValueError, match=f"logits hold {what} at 1 position"):
        token_statistics(logits)
    with pytest.raises(ValueError, match=f"logits hold {what}"):
        token_self_certainty(logits.bfloat16())
    logits[3, 7] = 0.0
    logits[4] = -math.inf
    with pytest.raises(ValueError, match=r"logits hold only -inf \(no possible token\) at 1 position"):
        token_statistics(logits)


@pytest.fixture(scope="module")
def masked_tiny(tiny):
    """The tiny model with a masked vocabulary: an LM head whose bias is -inf on a third of the tokens."""
    import copy

    model = copy.deepcopy(tiny)
    old = model.get_output_embeddings()
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        masked = torch.arange(old.out_features) % 3 == 1
        masked[[model.config.eos_token_id, model.config.pad_token_id]] = False
        head.bias[masked] = -math.inf
    model.set_output_embeddings(head)
    model.config.tie_word_embeddings = False
    return model


def test_masked_vocabulary_model_scores_finite_in_every_path(masked_tiny, tiny_model_dir):
    """Hidden-state path, the trainer's separate pass, and the generation recorder agree with the float64
    finite-support reference on a model whose logits hold -inf; nothing is NaN or inf."""
    from transformers import AutoTokenizer

    from intuitor.training.scoring import pass_statistics

    model = masked_tiny
    prompts = [[5, 6, 7, 8], [9, 10]]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    input_ids = torch.tensor([[5, 6, 7, 8], [tok.pad_token_id] * 2 + [9, 10]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    torch.manual_seed(3)
    with record_generation(model) as rec, torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=10,
            temperature=1.0,
            top_k=0,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    completions = []
    for row in out[:, 4:].tolist():
        completions.append(row[: row.index(tok.eos_token_id) + 1] if tok.eos_token_id in row else row)
    assert all(
        c and not any(t % 3 == 1 for t in c if t not in (tok.eos_token_id, tok.pad_token_id)) for c in completions
    )  # masked tokens are never sampled: the mask is real
    recorded = rec.statistics([len(c) for c in completions])
    hidden = response_statistics(model, prompts, completions)
    separate = pass_statistics(model, prompts, completions, batch_size=1, chunk_elements=259 * 2)
    ref_sc, ref_ent = [], []
    for p, c in zip(prompts, completions):
        with torch.no_grad():
            logits = model(torch.tensor([p + c])).logits[0, len(p) - 1 : len(p) - 1 + len(c)]  # (|c|, V)
        assert logits.isneginf().any(-1).all()
        ref_sc.append(reference_sc(logits).mean().item())
        ref_ent.append(reference_entropy(logits).mean().item())
    ref_sc, ref_ent = torch.tensor(ref_sc, dtype=torch.float64), torch.tensor(ref_ent, dtype=torch.float64)
    for got in (recorded, hidden, separate):
        assert torch.isfinite(got.self_certainty).all() and torch.isfinite(got.entropy).all()
        assert torch.allclose(got.self_certainty.double(), ref_sc, atol=1e-4)
        assert torch.allclose(got.entropy.double(), ref_ent, atol=1e-4)
    assert ref_sc.min() > 0.5  # a peaked model: the check is not vacuous
    # The rewards read from these statistics, and a group's advantages, stay finite (they were +inf and NaN).
    from intuitor.rewards.negative_entropy import NegativeEntropyReward
    from intuitor.rewards.self_certainty import SelfCertaintyReward

    group = completions * 2  # (4,) one prompt's group
    for reward in (SelfCertaintyReward(model=model, tokenizer=tok), NegativeEntropyReward(model=model, tokenizer=tok)):
        values = torch.tensor(reward(prompts=["2+2="] * 4, completions=[""] * 4, completion_ids=group))
        advantages = (values - values.mean()) / (values.std() + 1e-4)
        assert torch.isfinite(values).all() and torch.isfinite(advantages).all() and values.std() > 0


# --- response-level, on a real forward pass -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():  # a random init gives near-uniform logits; sharpen them so errors would show
        model.get_output_embeddings().weight.mul_(20)
    return model


def reference_response_sc(model, prompt, completion, shifted=False):
    """One unpadded sequence at a time, full logits, float64 reduction: the definition, literally."""
    if not completion:
        return 0.0
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(ids).logits[0].double()  # (T, V)
    start = len(prompt) if shifted else len(prompt) - 1
    return reference_sc(logits[start : start + len(completion)]).mean().item()


PROMPTS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16, 17, 18, 19], [20, 21, 22]]
COMPLETIONS = [[30, 31, 32], [40], [50, 51, 52, 53, 54, 55, 56], [60, 61]]


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_response_sc_matches_reference_with_padding(tiny, padding_side):
    got = response_self_certainty(tiny, PROMPTS, COMPLETIONS, batch_size=4, padding_side=padding_side)
    ref = [reference_response_sc(tiny, p, c) for p, c in zip(PROMPTS, COMPLETIONS)]
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), torch.tensor(ref, dtype=torch.float64), atol=1e-5)
    assert got.std() > 0.01  # the check above is not vacuous: scores differ between sequences


def test_response_sc_is_independent_of_batching(tiny):
    one = response_self_certainty(tiny, PROMPTS, COMPLETIONS, batch_size=1)
    many = response_self_certainty(tiny, PROMPTS, COMPLETIONS, batch_size=3, padding_side="left")
    assert torch.allclose(one, many, atol=1e-5)


def test_alignment_is_the_papers_and_shifted_is_the_authors(tiny):
    paper = response_self_certainty(tiny, PROMPTS, COMPLETIONS)
    shifted = response_self_certainty(tiny, PROMPTS, COMPLETIONS, shifted=True)
    ref_shifted = [reference_response_sc(tiny, p, c, shifted=True) for p, c in zip(PROMPTS, COMPLETIONS)]
    assert torch.allclose(shifted.double(), torch.tensor(ref_shifted, dtype=torch.float64), atol=1e-5)
    assert not torch.allclose(paper, shifted, atol=1e-3)
    # The single completion token [40] is predicted by the logits at the prompt's last position.
    with torch.no_grad():
        last = tiny(torch.tensor([PROMPTS[1]])).logits[0, -1]
    assert paper[1].item() == pytest.approx(reference_sc(last).item(), abs=1e-5)


def test_empty_completion_scores_zero_never_nan(tiny):
    got = response_statistics(tiny, [[5, 6], [7, 8, 9]], [[], [11, 12]])
    assert got.self_certainty[0].item() == 0.0 and got.entropy[0].item() == 0.0
    assert not torch.isnan(got.self_certainty).any()
    assert got.self_certainty[1].item() == pytest.approx(reference_response_sc(tiny, [7, 8, 9], [11, 12]), abs=1e-5)


def test_bf16_model_accumulates_in_float32(tiny):
    model = tiny.to(torch.bfloat16)
    try:
        got = response_self_certainty(model, PROMPTS, COMPLETIONS, padding_side="left")
        assert got.dtype == torch.float32
        ref = [reference_response_sc(model, p, c) for p, c in zip(PROMPTS, COMPLETIONS)]  # float64 of bf16 logits
        assert torch.allclose(got.double(), torch.tensor(ref, dtype=torch.float64), atol=2e-2)
    finally:
        tiny.to(torch.float32)


def test_generation_recorder_matches_a_separate_forward_pass(tiny, tiny_model_dir):
    """The online reward read from `generate`'s own logits equals a full forward pass on the same weights."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [[5, 6, 7, 8], [9, 10]]
    width = max(map(len, prompts))
    input_ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(3)
    with record_generation(tiny) as rec, torch.no_grad():
        out = tiny.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=12,
            temperature=1.0,
            top_k=0,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    completions = []
    for row in out[:, width:].tolist():
        completions.append(row[: row.index(tok.eos_token_id) + 1] if tok.eos_token_id in row else row)
    recorded = rec.statistics([len(c) for c in completions])
    separate = response_statistics(tiny, prompts, completions)
    assert torch.allclose(recorded.self_certainty, separate.self_certainty, atol=1e-4)
    assert torch.allclose(recorded.entropy, separate.entropy, atol=1e-4)


# --- CPU kernel with several threads (issue 21) -----------------------------------------------------------------


def test_parallel_sub_chunks_match_the_single_threaded_kernel_and_leave_thread_counts_alone():
    """With 2 torch threads, sub-chunks run on single-threaded workers: same numbers as 1 thread, bit for bit
    (each sub-chunk is reduced by the same ops on one thread), within 1e-4 of float64, and neither the caller's
    thread count nor the default of threads started later changes."""
    import threading

    from intuitor.certainty import kernel as certainty

    torch.manual_seed(4)
    vocab = 151_936
    logits = (torch.randn(9, vocab) * 2.5).bfloat16()
    logits[torch.arange(9), torch.randint(0, vocab, (9,))] += 15.0
    rows = max(1, certainty.CPU_SUB_CHUNK_ELEMENTS // vocab)
    assert -(-9 // rows) >= 2  # several sub-chunks, so the parallel path runs
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        sc1, ent1 = token_statistics(logits)
        torch.set_num_threads(2)
        sc2, ent2 = token_statistics(logits)
        assert torch.get_num_threads() == 2
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(before)
    # Bit-identical is the claim here, and it holds on any CPU: each worker reduces its rows single-threaded with
    # the very ops the 1-thread path runs, in the same process, so only who does a row changes, never how.
    assert torch.equal(sc1, sc2) and torch.equal(ent1, ent2)
    assert (sc2.double() - reference_sc(logits)).abs().max() < 1e-4
    assert (ent2.double() - reference_entropy(logits)).abs().max() < 1e-4


def test_sub_chunk_size_follows_the_l2_cache(tmp_path):
    from intuitor.certainty import kernel as certainty

    for index, (level, kind, size) in enumerate(
        [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"), ("3", "Unified", "32768K")]
    ):
        d = tmp_path / f"index{index}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert certainty._l2_cache_bytes(str(tmp_path)) == 2 << 20
    assert certainty._l2_cache_bytes(str(tmp_path / "missing"), default=12345) == 12345
    # The sub-chunk holds half an L2's worth of float32.
    assert certainty.CPU_SUB_CHUNK_ELEMENTS == max(1 << 16, certainty._l2_cache_bytes() // 8)


def test_the_package_keeps_every_public_name_of_the_former_module():
    """`intuitor.certainty` was one module; split by concern, it still exposes each name from where they live."""
    import intuitor.certainty as certainty
    from intuitor.certainty import head, kernel, recorder, responses

    homes = {
        kernel: [
            "CHUNK_ELEMENTS",
            "CPU_SUB_CHUNK_ELEMENTS",
            "token_statistics",
            "token_self_certainty",
            "token_entropy",
            "token_log_probs",
        ],
        head: ["UnsupportedArchitecture", "LogitHead", "logit_head"],
        responses: [
            "ResponseStatistics",
            "TokenStatistics",
            "response_statistics",
            "response_self_certainty",
            "response_token_statistics",
        ],
        recorder: [
            "RecordingMismatch",
            "GenerationRecorder",
            "TokenRecorder",
            "record_generation",
            "record_generation_tokens",
        ],
    }
    for module, names in homes.items():
        for name in names:
            assert getattr(certainty, name) is getattr(module, name), name
    assert sorted(certainty.__all__) == sorted(n for names in homes.values() for n in names)
