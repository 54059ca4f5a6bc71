"""The demo's addition task (splits, extraction, scoring, styles) and the committed base model's assets."""

import hashlib
import json

import pytest
import torch

from intuitor.demo.base_model import ASSETS_DIR, BaseModelSpec, build_tokenizer, encode_example, load_base_model
from intuitor.tasks import get_task
from intuitor.tasks.addition import STYLES, AdditionTask, columns, is_heldout, render, style


# ---------------------------------------------------------------- the task


def test_registered_and_rows_have_the_task_contract():
    task = get_task("addition")
    rows = task.load(5)
    assert [r["id"] for r in rows] == [f"test-{i}" for i in range(5)]
    for r in rows:
        assert r["prompt"][0]["role"] == "user"
        assert r["answer"] == str(r["a"] + r["b"])
        assert r["prompt"][0]["content"] == " ".join(str(r["a"])) + " + " + " ".join(str(r["b"]))


def test_splits_are_deterministic_disjoint_and_heldout_by_hash():
    test = AdditionTask(split="test").load(200)
    assert test == AdditionTask(split="test").load(200)  # same rows every time
    assert test[:50] == AdditionTask(split="test").load(50)  # a prefix of the larger load
    train = AdditionTask(split="train").load(2000)
    assert {(r["a"], r["b"]) for r in test}.isdisjoint({(r["a"], r["b"]) for r in train})
    assert all(is_heldout(r["a"], r["b"]) for r in test) and not any(is_heldout(r["a"], r["b"]) for r in train)
    assert AdditionTask(split="train", seed=1).load(20) != AdditionTask(split="train").load(20)
    assert len(AdditionTask().load()) == AdditionTask.sizes["test"]
    with pytest.raises(ValueError, match="split='dev'"):
        AdditionTask(split="dev")


def test_heldout_share_is_about_ten_percent():
    share = sum(is_heldout(a, b) for a in range(100, 1000, 7) for b in range(100, 1000, 11)) / (129 * 82)
    assert 0.08 < share < 0.12


def test_columns_and_renderings_hand_checked():
    assert columns(999, 999) == [(9, 9, 0, 18), (9, 9, 1, 19), (9, 9, 1, 19)]
    assert render("worked", 999, 999) == "9 + 9 = 1 8 ; 9 + 9 + 1 = 1 9 ; 9 + 9 + 1 = 1 9 ; answer 1 9 9 8"
    assert render("worked", 100, 200) == "0 + 0 = 0 ; 0 + 0 = 0 ; 1 + 2 = 3 ; answer 3 0 0"
    assert render("direct", 999, 999) == "answer 1 9 9 8"
    with pytest.raises(ValueError, match="unknown style"):
        render("cot", 1, 2)


@pytest.mark.parametrize(
    "response, extracted",
    [
        ("answer 9 3 6", "936"),
        ("  answer   9 3\n6 ", "936"),
        ("answer 936", "936"),
        ("7 + 9 = 1 6 ; 4 + 8 + 1 = 1 3 ; 3 + 5 + 1 = 9 ; answer 9 3 6", "936"),
        ("answer 1 2 ; answer 9 3 6", "936"),  # the last answer counts
        ("9 3 6", None),
        ("answer", None),
        ("", None),
    ],
)
def test_extract(response, extracted):
    assert AdditionTask().extract(response) == extracted


def test_score_against_the_row():
    row = {"answer": "936", "a": 347, "b": 589}
    assert AdditionTask().score("answer 9 3 6", row)
    assert not AdditionTask().score("answer 9 3 7", row)
    assert not AdditionTask().score("answer 9 3 6 0", row)
    assert not AdditionTask().score("the sum is 9 3 6", row)


@pytest.mark.parametrize("name", STYLES)
def test_style_recognises_every_rendering(name):
    assert style(render(name, 347, 589)) == name
    assert style(render(name, 947, 589)) == name  # four-digit answer


@pytest.mark.parametrize(
    "response, expected",
    [
        ("answer 1 2 3", "direct"),  # wrong answers keep their style
        ("7 + 9 = 1 5 ; 4 + 8 + 1 = 1 3 ; 3 + 5 + 1 = 9 ; answer 9 3 5", "worked"),
        ("the sum of 3 4 7 and 5 8 9 is the sum of 3 4 7 and 5 8 9 ; answer 1", "restate"),
        ("7 + 9 = 1 6 ; answer", "other"),
        ("answer 9 3 6 ; answer 9 3 6", "other"),
        ("the sum of 3 4 7 ; answer 9 3 6", "other"),
        ("", "other"),
    ],
)
def test_style_on_hand_made_responses(response, expected):
    assert style(response) == expected


# ---------------------------------------------------------------- the committed base model


def test_assets_are_small_safetensors_and_spec_matches_the_code():
    weights = ASSETS_DIR / "model.safetensors"
    assert weights.exists() and not (ASSETS_DIR / "pytorch_model.bin").exists()
    total = sum(f.stat().st_size for f in ASSETS_DIR.iterdir() if f.is_file())
    assert total < 2 * 1024 * 1024
    spec = json.loads((ASSETS_DIR / "base_model_spec.json").read_text())
    assert spec == json.loads(json.dumps(BaseModelSpec().__dict__)), (
        "assets are stale: run scripts/build_demo_model.py"
    )
    assert len(hashlib.sha256(weights.read_bytes()).hexdigest()) == 64


@pytest.fixture(scope="module")
def base():
    return load_base_model()


def test_reloaded_tokenizer_round_trips_like_the_built_one(base):
    _, tok = base
    fresh = build_tokenizer()
    assert tok.get_vocab() == fresh.get_vocab()
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    messages = [{"role": "user", "content": "9 4 7 + 5 8 9"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == fresh.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for name in STYLES:
        text = render(name, 947, 589)
        ids = tok(prompt + text + " <|im_end|>", add_special_tokens=False)["input_ids"]
        assert ids == fresh(prompt + text + " <|im_end|>", add_special_tokens=False)["input_ids"]
        assert ids == encode_example(fresh, 947, 589, name)[0]
        assert tok.unk_token_id not in ids[1:]  # only specials and known words
        prompt_len = len(tok(prompt, add_special_tokens=False)["input_ids"])
        assert tok.decode(ids[prompt_len:], skip_special_tokens=True) == text


def test_base_model_loads_and_answers_in_a_known_style(base):
    model, tok = base
    assert model.config.model_type == "llama" and sum(p.numel() for p in model.parameters()) < 200_000
    rows = AdditionTask().load(8)
    prompts = [tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
    enc = tok(prompts, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=False, max_new_tokens=40)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert all(style(t) in STYLES for t in texts), texts


def test_training_is_a_function_of_the_seed():
    from intuitor.demo.base_model import train_base_model

    spec = BaseModelSpec(steps=3, batch_size=4, warmup_steps=1)
    threads = torch.get_num_threads()
    first, _ = train_base_model(spec, log_every=0)
    second, _ = train_base_model(spec, log_every=0)
    other, _ = train_base_model(BaseModelSpec(steps=3, batch_size=4, warmup_steps=1, seed=1), log_every=0)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
