"""The demo's base model: a tiny Llama (108k parameters) pretrained from scratch on a mixture of reasoning styles.

Like the paper's base models, which sometimes reason and often just guess, this model has a *latent* reasoning
style. It is trained by plain supervised next-token prediction (this is pretraining the base, not RL) on answers to
three-digit additions (`intuitor.tasks.addition`), each written in a style drawn from `BaseModelSpec.mixture`: half
`direct` one-shot answers, a third `worked` column-by-column solutions, the rest the `restate` control (long and
fluent, computing nothing). The first response token picks the style, so greedy decoding answers directly (58% right
on the held-out split) while sampling works the sum out 29% of the time (95% right): the reasoning is there to be
found, and a reward can find it.

How the model was sized, so that the gap is real rather than hand-written into the data (every answer in the corpus
is right): transformers learn one-shot addition easily; with four heads per layer this model answered directly with
99% accuracy after ~1,500 steps, and with a fixed pool of problems it memorised rather than computed. With two heads
per layer and 1,300 steps the column method (local: two digits and a carry at a time) is learned almost perfectly
while the one-shot sum is still half-learned. Longer training closes the gap (direct answers reach ~90% after
2,500 steps), so `steps` is part of the design, not a budget.

Everything is a function of the spec and its `seed`: the data stream, the initialisation and the training, run with
one thread and deterministic algorithms, so `scripts/build_demo_model.py` rebuilds the committed weights bit for bit
(on the same CPU kind and torch version; floating-point kernels may differ across them).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from intuitor.models import DEMO_BASE_DIR
from intuitor.tasks.addition import HIGH, LOW, STYLES, is_heldout, problem_text, render


ASSETS_DIR = DEMO_BASE_DIR  # the model name `demo-base` (intuitor.models) loads it
PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
WORDS = ["user", "assistant", *"0123456789", "+", "=", ";", "answer", "the", "sum", "of", "and", "is"]
# A minimal ChatML: tokens are whitespace-separated words, so the template needs no newlines.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|> ' + message['role'] + ' ' + message['content'] + ' <|im_end|> ' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|> assistant ' }}{% endif %}"
)


@dataclass
class BaseModelSpec:
    """Everything the base model is a function of. Changing a field changes the committed weights."""

    seed: int = 0
    mixture: dict[str, float] = field(default_factory=lambda: {"direct": 0.5, "worked": 0.33, "restate": 0.17})
    hidden_size: int = 64
    intermediate_size: int = 192
    num_layers: int = 2
    num_heads: int = 2
    num_kv_heads: int = 2
    steps: int = 1300
    batch_size: int = 128
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01


def build_tokenizer():
    """Word-level tokenizer (one token per digit, symbol or word; whitespace separates them) with ChatML specials."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=PAD,
        additional_special_tokens=[BOS],
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_config(spec: BaseModelSpec, tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )


def fresh_problem(rng: random.Random) -> tuple[int, int]:
    while True:
        a, b = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
        if not is_heldout(a, b):
            return a, b


def sample_example(rng: random.Random, mixture: dict[str, float]) -> tuple[int, int, str]:
    """One pretraining example: a style drawn from the mixture and a fresh problem of the training split."""
    style = rng.choices(STYLES, weights=[mixture.get(s, 0.0) for s in STYLES])[0]
    a, b = fresh_problem(rng)
    return a, b, style


def encode_example(tok, a: int, b: int, style: str) -> tuple[list[int], int]:
    """Token ids of prompt + response + EOS, and the prompt length (its tokens carry no loss)."""
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": problem_text(a, b)}], add_generation_prompt=True, tokenize=False
    )
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(render(style, a, b), add_special_tokens=False)["input_ids"]
    return p + r + [tok.eos_token_id], len(p)


def make_batch(tok, rng: random.Random, spec: BaseModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids [B, T] (right-padded) and labels [B, T] (-100 on prompt and padding)."""
    seqs = [encode_example(tok, *sample_example(rng, spec.mixture)) for _ in range(spec.batch_size)]
    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, plen) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, plen : len(s)] = torch.tensor(s[plen:])
    return ids, labels


def train_base_model(spec: BaseModelSpec, out_dir: str | Path | None = None, log_every: int = 500, callback=None):
    """Pretrain the base model from scratch; save it (safetensors) and its tokenizer to `out_dir` if given.

    `callback(step, model, tok)`, if given, runs after every optimiser step (for learning curves); it must not draw
    from torch's global generator, or the weights stop being a function of the seed. Torch's thread count and
    determinism flag are set for the run and restored afterwards.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(spec, out_dir, log_every, callback)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(spec: BaseModelSpec, out_dir, log_every: int, callback):
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.seed)
    rng = random.Random(f"demo-base/{spec.seed}")
    tok = build_tokenizer()
    model = LlamaForCausalLM(build_config(spec, tok))
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr,
        betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < spec.warmup_steps:
            return spec.lr * (step + 1) / spec.warmup_steps
        t = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
        return spec.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))

    start, running = time.time(), 0.0
    for step in range(spec.steps):
        ids, labels = make_batch(tok, rng, spec)  # (B, T) each
        logits = model(input_ids=ids).logits[:, :-1]  # (B, T-1, V): position t predicts token t+1
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.item()
        if log_every and (step + 1) % log_every == 0:
            elapsed = time.time() - start
            print(f"step {step + 1}/{spec.steps}  loss {running / log_every:.4f}  {elapsed:.0f}s", flush=True)
            running = 0.0
        if callback is not None:
            callback(step + 1, model, tok)
    model.eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    if out_dir is not None:
        save(model, tok, spec, out_dir)
    return model, tok


def save(model, tok, spec: BaseModelSpec, out_dir: str | Path) -> Path:
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "base_model_spec.json").write_text(json.dumps(asdict(spec), indent=2, sort_keys=True) + "\n")
    return out


def load_base_model(path: str | Path = ASSETS_DIR):
    """The committed base model (float32, eval mode) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)
