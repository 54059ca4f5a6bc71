"""One interface for the evaluation backends: token ids (or texts) in, completions out.

A backend (transformers `generate` in `hf.py`, vLLM in `vllm.py`) implements `Generator.generate` and nothing
else; the harness renders prompts, scores responses and computes self-certainty itself, so that every backend is
measured the same way (lm-evaluation-harness's `generate_until`, reduced to what INTUITOR's evaluation needs).

Conventions every backend follows:
- `generate(prompts, n, ...)` returns a flat list of `len(prompts) * n` completions, prompt-major: the n samples
  of prompt 0, then the n samples of prompt 1, ...
- `Completion.ids` are the generated token ids up to and including the stop token when generation stopped at one
  (as TRL and vLLM count EOS), never padding; stop tokens are the EOS ids plus the chat template's end-of-turn
  token (`stop_token_ids`); `Completion.text` is decoded without special tokens.
- `temperature == 0` means greedy decoding; otherwise pure temperature sampling (top-k off, top-p as given, no
  repetition penalty), whatever the model's own `generation_config` says, so HF and vLLM sample the same law.
- `stop` (a task's `stop_sequences`, e.g. lighteval's and MMLU-Pro's `"Question:"`): generation ends at the first
  occurrence of any of these strings, as vLLM's `SamplingParams(stop=...)` does: `Completion.text` is cut before it
  (the stop string is not part of the response) and `Completion.ids` end with the token that completed it.

Prompt rendering (`render_prompt`): chat messages go through the tokenizer's chat template with
`add_generation_prompt=True`. `fit_prompt` is the one place that fits messages to a template, for evaluation here
and for training (IntuitorTrainer maps its training prompts through it, `fit_dataset`; TRL then applies the template):
- a template that refuses the system role (Gemma 2's raises "System role not supported") gets the system text at
  the start of the first user turn, separated by a blank line, as Gemma 3's own template places it
  (google/gemma-3-1b-it, tokenizer_config.json `chat_template`: `first_user_prefix = system + '\n\n'`);
- a tokenizer without any template gets the plain format: the message contents joined by blank lines, tokenised
  with the tokenizer's own special tokens (e.g. BOS). It is what base models without a template see; it is not the
  paper's setting (the paper evaluates Qwen2.5 with its template).
Either prints one notice line, once per process.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from typing import NamedTuple


Prompt = str | Sequence[int]


class Completion(NamedTuple):
    """One generated response: its token ids (EOS included when it stopped there) and its decoded text."""

    ids: list[int]
    text: str


class Generator:
    """A text-generation backend. Subclasses implement `generate`; `chunk_size` (or `chunk_for(temperature)`) says
    how many sequences the harness should hand over per call (small for padded transformers batches; large where
    the backend schedules continuously: vLLM, the transformers backend's refill)."""

    name: str = ""
    chunk_size: int = 8

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def chunk_for(self, temperature: float) -> int:
        """Sequences per `generate` call at this temperature."""
        return self.chunk_size

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 512,
        seed: int | None = None,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        raise NotImplementedError

    def prompt_ids(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of each prompt: lists of ints pass through, texts are tokenised without adding specials
        (rendered chat prompts already carry them)."""
        return [encode(self.tokenizer, p) if isinstance(p, str) else list(p) for p in prompts]


def check_sampling(n: int, temperature: float, max_new_tokens: int, top_p: float = 1.0) -> None:
    """Reject settings that cannot mean what the caller wants, saying what to change."""
    if n < 1:
        raise ValueError(f"samples={n}: need at least 1 response per prompt")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0 (0 means greedy decoding)")
    if n > 1 and temperature == 0:
        raise ValueError(
            f"samples={n} with temperature=0: greedy decoding gives {n} identical responses; "
            "set --temperature > 0 (e.g. 0.6) or --samples 1"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p}: must be in (0, 1]")


# End-of-turn tokens of common chat templates (ChatML, Llama 3, Phi, Gemma) and end-of-text tokens.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>")


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """Ids that end a response: the model's generation_config EOS id(s), the tokenizer's EOS, and the end-of-turn
    tokens of `END_OF_TURN` that the tokenizer has as added tokens. A base model answering in a chat template
    (Qwen2.5-3B lists only <|endoftext|> as EOS) thus stops at its <|im_end|> instead of running on.

    >>> from intuitor.models import build_tiny_tokenizer
    >>> stop_token_ids(build_tiny_tokenizer())  # <|im_end|> (EOS), <|endoftext|>
    [2, 0]
    """
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    added = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    for t in [tokenizer.eos_token_id] + [added.get(tok) for tok in END_OF_TURN]:
        if t is not None and t not in ids:
            ids.append(int(t))
    return ids


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to (without) the earliest occurrence of any stop string, and whether one occurred.

    >>> cut_at_stop("x = 3.\\nQuestion: what", ["Question:"]), cut_at_stop("no stop here", ["Question:"])
    (('x = 3.\\n', True), ('no stop here', False))
    """
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def stop_completion(tokenizer, ids: Sequence[int], stop: Sequence[str]) -> Completion:
    """A generated row (already cut after EOS) cut at its first stop string: the ids up to the token that completes
    it (the shortest prefix whose text holds a stop string), the text before it. Without a stop string in the text,
    the decoded row as it is."""
    ids = [int(t) for t in ids]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut, found = cut_at_stop(text, stop)
    if not found:
        return Completion(ids, text)
    lo, hi = 1, len(ids)  # binary search: the shortest prefix whose decoding holds a stop string
    while lo < hi:
        mid = (lo + hi) // 2
        if cut_at_stop(tokenizer.decode(ids[:mid], skip_special_tokens=True), stop)[1]:
            hi = mid
        else:
            lo = mid + 1
    return Completion(ids[:lo], cut)


def encode(tokenizer, text: str, add_special_tokens: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


_PREFILL_SPLITTER = "-[[]]-intuitor-prefill-splitter-[[]]-"


_NOTICED: set[str] = set()
_REFUSES_SYSTEM: dict[str, bool] = {}


def _notice(key: str, text: str) -> None:
    if key not in _NOTICED:
        _NOTICED.add(key)
        print(f"notice: {text}", file=sys.stderr)


def refuses_system_role(tokenizer) -> bool:
    """Whether the tokenizer's chat template raises on a system message but renders the same chat without it."""
    template = tokenizer.chat_template
    if not isinstance(template, str):  # several named templates: the default one decides
        template = str(template)
    if template not in _REFUSES_SYSTEM:
        user = [{"role": "user", "content": "u"}]
        try:
            tokenizer.apply_chat_template([{"role": "system", "content": "s"}] + user, tokenize=False)
            refuses = False
        except Exception:  # jinja2's TemplateError from the template's raise_exception
            try:
                tokenizer.apply_chat_template(user, tokenize=False)
                refuses = True
            except Exception:
                refuses = False  # broken for every chat: let the real call say why
        _REFUSES_SYSTEM[template] = refuses
    return _REFUSES_SYSTEM[template]


def plain_prompt(messages) -> str:
    """The plain prompt format (no chat template): the message contents joined by blank lines."""
    return "\n\n".join(m["content"] for m in messages)


def fit_prompt(tokenizer, messages):
    """`messages` as the tokenizer's chat template takes them (module docstring): unchanged where the template
    accepts them, the system text moved into the first user turn where it refuses the system role, the plain text
    format (a string) without a template. A string prompt passes through.

    >>> from intuitor.models import build_tiny_tokenizer
    >>> tok = build_tiny_tokenizer()
    >>> tok.chat_template = ("{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role "
    ...                      "not supported') }}{% endif %}{{ m.content }}{% endfor %}")  # Gemma 2's refusal
    >>> fit_prompt(tok, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}])
    [{'role': 'user', 'content': 'Be brief.\\n\\n2+2?'}]
    """
    if isinstance(messages, str) or any(not isinstance(m.get("content"), str) for m in messages):
        return messages  # text, or multimodal content parts (a processor's own business)
    messages = list(messages)
    name = getattr(tokenizer, "name_or_path", "") or "the model"
    if not getattr(tokenizer, "chat_template", None):
        _notice(
            f"plain:{name}",
            f"{name} has no chat template: prompts use the plain format (the message contents joined by blank lines)",
        )
        return plain_prompt(messages)
    if not any(m["role"] == "system" for m in messages) or not refuses_system_role(tokenizer):
        return messages
    _notice(
        f"system:{name}",
        f"the chat template of {name} refuses the system role: the system message goes "
        "to the start of the first user turn",
    )
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    for i, m in enumerate(rest):
        if m["role"] == "user":
            return rest[:i] + [{**m, "content": f"{system}\n\n{m['content']}"}] + rest[i + 1 :]
    return [{"role": "user", "content": system}] + rest


def fit_dataset(dataset, tokenizer):
    """A training data set's `prompt` column through `fit_prompt` (IntuitorTrainer calls it; TRL then applies the
    template), so training sees what evaluation renders. Unchanged where the template takes the prompts as they are."""
    if getattr(tokenizer, "chat_template", None) and not refuses_system_role(tokenizer):
        return dataset
    return dataset.map(lambda row: {"prompt": fit_prompt(tokenizer, row["prompt"])})


def render_prompt(tokenizer, messages) -> tuple[str, list[int]]:
    """Rendered text and token ids of a prompt (chat messages, or a plain string taken as is). A last message of
    role "assistant" is a pre-fill: the rendered text ends with its content, and the model continues it.

    >>> class Plain:  # a tokenizer without a chat template: contents are concatenated
    ...     chat_template = None
    ...     def __call__(self, text, add_special_tokens=False):
    ...         return {"input_ids": [1] * add_special_tokens + [ord(c) for c in text]}
    >>> render_prompt(Plain(), [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}])
    ('Be brief.\\n\\n2+2?', [1, 66, 101, 32, 98, 114, 105, 101, 102, 46, 10, 10, 50, 43, 50, 63])
    """
    messages = fit_prompt(tokenizer, messages)
    if isinstance(messages, str):  # a plain prompt, given or from a tokenizer without a chat template
        return messages, encode(tokenizer, messages, add_special_tokens=True)
    if messages and messages[-1]["role"] == "assistant":
        # A pre-filled assistant turn (EvalPlus's chat prompt): render it, then cut at the end of its content,
        # as EvalPlus does with its magic splitter (`make_raw_chat_prompt`), so the model continues that text.
        last = {**messages[-1], "content": messages[-1]["content"] + _PREFILL_SPLITTER}
        text = tokenizer.apply_chat_template(messages[:-1] + [last], tokenize=False)
        text = text.split(_PREFILL_SPLITTER)[0]
    else:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text, encode(tokenizer, text, add_special_tokens=False)


BACKENDS = ("hf", "vllm")


def check_backend(name: str) -> str:
    """The backend's name, or an error with a did-you-mean."""
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, BACKENDS, n=1, cutoff=0.5)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise ValueError(f"Unknown backend '{name}'.{hint} Known backends: {', '.join(BACKENDS)}")
    return name
