"""The transformers backend: batched generation with left padding, on CPU or GPU.

Two schedulings (`HFGenerator(scheduling=...)`). `refill`: `batch_size` rows in flight, a finished row leaves the
batch and the next waiting prompt takes its place (`intuitor.generation.scheduling`), so no decoding step is spent on
a finished row; greedy responses are those of `static`. `static`: `model.generate` on padded batches of
`batch_size`, each decoded until its longest row ends (what lm-evaluation-harness and TRL do); the fallback for
models whose cache cannot be re-batched (sliding-window layers). `auto`, the default: refill for greedy decoding
(the same responses, fewer decoding steps), static for sampling. Refill samples from one seeded generator per
request (a response does not depend on its batch-mates), so its samples differ from static's draws: `auto` keeps
static's, so that sampled figures published before refill (the demo's, its precondition) reproduce; ask for
`refill` to sample that way. Measured in benchmarks/README.md (issue 32).

Prompts are sorted by length before batching (less padding) and the completions put back in the caller's order.
Each sequence is cut after its first stop token (the model's EOS ids and the chat template's end-of-turn token,
`stop_token_ids`), or at the task's first stop string (`stop`, as vLLM's `stop=`: the text ends before it);
what `generate` writes after it is padding. Sampling is pure temperature sampling: top-k off and no repetition penalty even when the model's
`generation_config` sets them (Qwen2.5-Instruct does), so that this backend and vLLM draw from the same law.

Self-certainty comes with the completions: each `generate` call runs inside `intuitor.certainty.record_generation`
(the trainer's recorder: a hook on the model's output reduces each decoding step's logits to two floats per row;
under refill the scheduler hands each row's value to the request in that row), and
`last_statistics` holds the per-completion means, in the caller's order, so the harness runs no second forward
pass (measured: the pass cost 16-40% of SmolLM2's throughput, the recorder 1-3%). They are the logits of the
model's own distribution (temperature 1), from the positions that predict each kept token, as the pass computes
them; a row cut at a stop string is averaged over its kept tokens only. Beam search is never used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch

from intuitor.certainty import RecordingMismatch, ResponseStatistics, record_generation
from intuitor.generation.base import (
    Completion,
    Generator,
    Prompt,
    check_sampling,
    cut_at_stop,
    stop_completion,
    stop_token_ids,
)
from intuitor.generation.scheduling import RefillUnsupported, refill_generate, request_statistics


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response (`intuitor.generation.base.stop_token_ids`)."""
    return stop_token_ids(tokenizer, model)


def trim_completion(ids: Sequence[int], eos_ids: Sequence[int]) -> list[int]:
    """Cut a generated row after its first EOS (kept); the rest is padding.

    >>> trim_completion([5, 6, 2, 0, 0], eos_ids=[2])
    [5, 6, 2]
    >>> trim_completion([5, 6, 7], eos_ids=[2])  # ran out of tokens: nothing to cut
    [5, 6, 7]
    """
    out = []
    for t in ids:
        out.append(int(t))
        if t in eos_ids:
            break
    return out


class StopOnStrings:
    """A `generate` stopping criterion: True for each row whose new text (the last few tokens after the prompt's
    `width`, enough to hold the longest stop string) contains a stop string. Rows are then cut exactly by
    `stop_completion`; this only ends generation early, as vLLM's `stop=` does."""

    def __init__(self, tokenizer, stop, width: int):
        self.tokenizer, self.stop, self.width = tokenizer, list(stop), width
        self.window = max(len(s) for s in self.stop) + 2  # tokens: each decodes to at least one character

    def __call__(self, input_ids, scores=None, **kwargs):
        tails = input_ids[:, self.width :][:, -self.window :].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return torch.tensor([cut_at_stop(t, self.stop)[1] for t in texts], device=input_ids.device)

    def hit(self, tokens: list[int]) -> bool:
        """The same test on one row's new tokens (the refill scheduler's rows each have their own length)."""
        text = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return cut_at_stop(text, self.stop)[1]


SCHEDULING = ("auto", "refill", "static")
REFILL_CALLS = 16  # batches' worth of sequences per `generate` call under refill scheduling


class HFGenerator(Generator):
    """Generate with a loaded transformers model. `batch_size` counts sequences (prompts x samples) per forward;
    `scheduling` is "refill" (finished rows leave, waiting prompts join), "static" (`model.generate` batches) or
    "auto" (refill when greedy, static when sampling)."""

    name = "hf"

    def __init__(
        self, model, tokenizer, batch_size: int = 8, record_statistics: bool = True, scheduling: str = "auto"
    ):
        super().__init__(tokenizer)
        if scheduling not in SCHEDULING:
            raise ValueError(f"scheduling={scheduling!r}: must be one of {', '.join(SCHEDULING)}")
        self.model = model
        self.record_statistics = record_statistics
        # Statistics of the completions of the last `generate` call (caller's order), or None when not recorded.
        self.last_statistics: ResponseStatistics | None = None
        self.batch_size = batch_size
        self.scheduling = scheduling
        self.chunk_size = self.chunk_for(0.0)  # greedy's; the harness asks `chunk_for` with its temperature
        self.eos_ids = eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

    def _refills(self, temperature: float) -> bool:
        return self.scheduling == "refill" or (self.scheduling == "auto" and temperature == 0)

    def chunk_for(self, temperature: float) -> int:
        """Refill keeps batch_size rows busy across a whole call: it gets many prompts per call (the harness appends
        samples.jsonl per call, so this is also how much a crash can lose); static batches are one call each."""
        return self.batch_size * REFILL_CALLS if self._refills(temperature) else self.batch_size

    @torch.no_grad()
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
        check_sampling(n, temperature, max_new_tokens, top_p)
        stop = [s for s in stop if s]
        ids = self.prompt_ids(prompts)
        seqs = [p for p in ids for _ in range(n)]  # prompt-major: n copies of each prompt
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        if seed is not None:
            torch.manual_seed(seed)
        if temperature > 0:
            mode = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:
            mode = dict(do_sample=False, temperature=1.0, top_p=1.0, top_k=None)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        out: list[Completion | None] = [None] * len(seqs)
        self.last_statistics = None
        sc = torch.zeros(len(seqs), dtype=torch.float32)
        ent = torch.zeros(len(seqs), dtype=torch.float32)
        recorded = self.record_statistics
        try:
            if self._refills(temperature):
                try:
                    return self._generate_refill(seqs, order, max_new_tokens, stop, mode, recorded)
                except RefillUnsupported:  # a cache that cannot be re-batched (sliding windows): static batches
                    self.scheduling, self.chunk_size = "static", self.batch_size
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(seqs[i]) for i in batch)
                input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)  # (B, T) left-padded
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for b, i in enumerate(batch):
                    input_ids[b, width - len(seqs[i]) :] = torch.tensor(seqs[i], dtype=torch.long)
                    mask[b, width - len(seqs[i]) :] = 1
                with record_generation(self.model) if recorded else nullcontext() as recorder:
                    generated = self.model.generate(
                        input_ids=input_ids.to(device),
                        attention_mask=mask.to(device),
                        max_new_tokens=max_new_tokens,
                        eos_token_id=self.eos_ids,
                        pad_token_id=self.pad_id,
                        repetition_penalty=1.0,
                        **({"stopping_criteria": [StopOnStrings(self.tokenizer, stop, width)]} if stop else {}),
                        **mode,
                    )[:, width:].cpu()  # (B, <= max_new_tokens): only the new tokens
                for b, i in enumerate(batch):
                    cids = trim_completion(generated[b].tolist(), self.eos_ids)
                    out[i] = stop_completion(self.tokenizer, cids, stop)
                if recorded:
                    try:
                        stats = recorder.statistics([len(out[i].ids) for i in batch])
                    except (
                        RecordingMismatch
                    ):  # e.g. a patched generate that bypassed the LM head: let the harness score
                        recorded = False
                        continue
                    sc[batch], ent[batch] = stats.self_certainty, stats.entropy
        finally:
            self.model.train(was_training)
        if recorded:
            self.last_statistics = ResponseStatistics(sc, ent)
        return out  # type: ignore[return-value]

    def _generate_refill(self, seqs, order, max_new_tokens, stop, mode, recorded) -> list[Completion]:
        """All of `seqs` through `refill_generate` (shortest prompts first, as the static batches), cut and
        recorded as the static path does; statistics are the means of each request's own recorded steps."""
        stopper = StopOnStrings(self.tokenizer, stop, 0) if stop else None
        with record_generation(self.model) if recorded else nullcontext() as recorder:
            requests = refill_generate(
                self.model,
                [seqs[i] for i in order],
                batch_size=self.batch_size,
                max_new_tokens=max_new_tokens,
                eos_ids=self.eos_ids,
                pad_id=self.pad_id,
                temperature=mode["temperature"] if mode["do_sample"] else 0.0,
                top_p=mode["top_p"],
                min_new_tokens=int(getattr(self.model.generation_config, "min_new_tokens", None) or 0),
                stopped=stopper.hit if stopper else None,
                recorder=recorder,
            )
        out: list[Completion | None] = [None] * len(seqs)
        for i, req in zip(order, requests):
            out[i] = stop_completion(self.tokenizer, trim_completion(req.tokens, self.eos_ids), stop)
        if recorded:  # the means over the steps that predicted the kept tokens, back in the callers' order
            stats = request_statistics(requests, [len(out[i].ids) for i in order])
            sc = torch.zeros(len(seqs), dtype=torch.float32)
            ent = torch.zeros(len(seqs), dtype=torch.float32)
            sc[order], ent[order] = stats.self_certainty, stats.entropy
            self.last_statistics = ResponseStatistics(sc, ent)
        return out  # type: ignore[return-value]
