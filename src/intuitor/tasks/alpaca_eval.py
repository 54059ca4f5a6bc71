"""AlpacaEval 2.0 (Dubois et al. 2024): 805 open-ended instructions, judged against GPT-4-turbo's answers.

There is no gold answer. The paper reports AlpacaEval 2.0 length-controlled win rates judged by GPT-4.1, computed
with the `alpaca_eval` package. The intended route here is the same: evaluate, turn the responses into
alpaca_eval's model-outputs file with `to_alpaca_eval(rows, responses, generator)`
(`[{instruction, output, generator, dataset}]`), and run `alpaca_eval --model_outputs that.json`.

Optional built-in judge (off by default): `judge_url` = any OpenAI-compatible endpoint (".../v1" or the full
".../chat/completions"), `judge_model` its model name, the key from the environment variable named by
`judge_api_key_env` (default OPENAI_API_KEY; none is sent when it is unset). Each response is compared with the
reference output by alpaca_eval's `alpaca_eval_clf_gpt4_turbo` prompt (system + user message, verbatim below),
one token asked, the two outputs in a seeded random order (as alpaca_eval randomises them); with token logprobs the
preference is P(model) / (P(m) + P(M)) as in `weighted_alpaca_eval_gpt4_turbo`, else 1 or 0 from the token. `score`
is True when the preference is above 0.5, so the harness's mean is a raw win rate: not length-controlled (the GLM
correction needs alpaca_eval and its leaderboard), so not the paper's number. Without a judge `score` is False and
`aggregate` reports score None ("not judged"), so no 0% appears in a results table.

Prompt: the instruction as the only user message (the chat template, as in the paper; ZeroEval also sends the bare
instruction).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
import zlib
from typing import Any

from intuitor.tasks.base import Task, load_records, read_records, register_task, require_fields


REFERENCE_FILE = "gpt4_1106_preview_model_outputs.json"  # next to the questions file

# alpaca_eval src/alpaca_eval/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt, verbatim
# (its <|im_start|>system / user blocks as chat messages).
JUDGE_SYSTEM = (
    "You are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on "
    "the quality of their responses to a given instruction. This process will be used to create a leaderboard "
    "reflecting the most accurate and human-preferred answers."
)
JUDGE_TEMPLATE = """I require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.

## Instruction

{{
    "instruction": \"\"\"{instruction}\"\"\",
}}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.

{{
    {{
        "model_identifier": "m",
        "output": \"\"\"{output_1}\"\"\"
    }},
    {{
        "model_identifier": "M",
        "output": \"\"\"{output_2}\"\"\"
    }}
}}

## Task

Evaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.

## Best Model Identifier"""


def to_alpaca_eval(rows: list[dict], responses: list[str], generator: str) -> list[dict[str, str]]:
    """alpaca_eval's model-outputs records for `responses` to `rows` (same order), labelled `generator`.

    >>> to_alpaca_eval([{"instruction": "Hi", "dataset": "helpful_base"}], ["Hello!"], "qwen-intuitor")
    [{'instruction': 'Hi', 'output': 'Hello!', 'generator': 'qwen-intuitor', 'dataset': 'helpful_base'}]
    """
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses: give one response per row, in order")
    return [
        {"instruction": r["instruction"], "output": out, "generator": generator, "dataset": r.get("dataset", "")}
        for r, out in zip(rows, responses)
    ]


def judge_messages(instruction: str, output_1: str, output_2: str) -> list[dict[str, str]]:
    """The judge's chat messages: output_1 is model "m", output_2 model "M"."""
    user = JUDGE_TEMPLATE.format(instruction=instruction, output_1=output_1, output_2=output_2)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judgement(reply: dict, model_is: str) -> float:
    """Preference for the model (identifier `model_is`, "m" or "M") from an OpenAI chat-completions reply: from the
    first token's top logprobs when present, else 1.0 / 0.0 from the text; ValueError when it names neither.

    >>> reply = {"choices": [{"message": {"content": "M"}, "logprobs": {"content": [{"token": "M", "logprob": -0.1,
    ...     "top_logprobs": [{"token": "M", "logprob": -0.1}, {"token": "m", "logprob": -2.4}]}]}}]}
    >>> round(parse_judgement(reply, "M"), 3), round(parse_judgement(reply, "m"), 3)
    (0.909, 0.091)
    """
    choice = reply["choices"][0]
    content = (choice.get("logprobs") or {}).get("content") or []
    if content and content[0].get("top_logprobs"):
        probs = {"m": 0.0, "M": 0.0}
        for alt in content[0]["top_logprobs"]:
            token = alt["token"].strip()
            if token in probs:
                probs[token] += math.exp(alt["logprob"])
        if probs["m"] + probs["M"] > 0:
            return probs[model_is] / (probs["m"] + probs["M"])
    text = (choice.get("message") or {}).get("content") or ""
    token = text.strip()
    if token not in ("m", "M"):
        raise ValueError(f"judge answered {text[:50]!r}: expected 'm' or 'M'")
    return 1.0 if token == model_is else 0.0


class Judge:
    """An OpenAI-compatible chat-completions endpoint asked alpaca_eval's pairwise question (urllib, no SDK)."""

    def __init__(
        self, url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0, retries: int = 3
    ):
        self.url = url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions"
        self.model, self.api_key_env, self.timeout_s, self.retries = model, api_key_env, timeout_s, retries
        self.logprobs = True  # turned off for good if the endpoint rejects them (HTTP 400)

    def request(self, messages: list[dict]) -> urllib.request.Request:
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0}
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=5)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def preference(self, instruction: str, reference: str, output: str, seed: str) -> float:
        """P(output beats reference) in [0, 1]; the pair's order is a stable pseudo-random function of `seed`."""
        model_first = zlib.crc32(seed.encode()) % 2 == 1
        pair = (output, reference) if model_first else (reference, output)
        messages = judge_messages(instruction, *pair)
        for attempt in range(self.retries):
            try:
                with urllib.request.urlopen(self.request(messages), timeout=self.timeout_s) as r:
                    reply = json.loads(r.read().decode())
                return parse_judgement(reply, "m" if model_first else "M")
            except urllib.error.HTTPError as e:
                if e.code == 400 and self.logprobs:  # e.g. a server without logprobs: ask for the token only
                    self.logprobs = False
                    return self.preference(instruction, reference, output, seed)
                if attempt == self.retries - 1:
                    raise RuntimeError(f"AlpacaEval judge at {self.url} failed {self.retries} times: {e}") from e
                time.sleep(2**attempt)
            except (urllib.error.URLError, TimeoutError, json.JSONDecodeError, KeyError, IndexError) as e:
                if attempt == self.retries - 1:
                    raise RuntimeError(f"AlpacaEval judge at {self.url} failed {self.retries} times: {e}") from e
                time.sleep(2**attempt)
        raise AssertionError("unreachable")


@register_task
class AlpacaEval(Task):
    """AlpacaEval 2.0 instructions; judged only when a judge endpoint is given."""

    name = "alpaca_eval"
    metric = "win_rate"
    version = 1
    default_path = "alpaca_eval/alpaca_eval_questions.json"
    hub_id = "tatsu-lab/alpaca_eval"

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        judge_url: str | None = None,
        judge_model: str | None = None,
        judge_api_key_env: str = "OPENAI_API_KEY",
        reference_path: str | None = None,
    ):
        super().__init__(path, data_dir)
        if judge_url and not judge_model:
            raise ValueError("judge_url given without judge_model: name the judge model, e.g. --judge-model gpt-4.1")
        self.judge = Judge(judge_url, judge_model, judge_api_key_env) if judge_url else None
        self.reference_path = reference_path

    def _references(self, n: int | None) -> list[tuple[str, dict]] | None:
        if self.reference_path:
            return read_records(self.reference_path, n)
        local = self.resolve_path()
        if local is not None and (local.parent / REFERENCE_FILE).exists():
            return read_records(local.parent / REFERENCE_FILE, n)
        return None

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        # hub: alpaca_eval's AlpacaEval 2.0 reference file (instructions with GPT-4-turbo's outputs inline)
        records = load_records(self, limit, split="eval", data_files={"eval": "alpaca_eval_gpt4_baseline.json"})
        references = self._references(len(records))
        if references is not None and len(references) < len(records):
            raise ValueError(
                f"{references[0][0].split('#')[0]}: {len(references)} reference outputs for "
                f"{len(records)} instructions"
            )
        rows = []
        for i, (where, r) in enumerate(records):
            require_fields(r, (), where, text=("instruction",))
            reference = r.get("output", "")  # the hub's baseline file has the outputs inline
            if references is not None:
                ref_where, ref = references[i]
                require_fields(ref, (), ref_where, text=("instruction", "output"))
                if ref["instruction"] != r["instruction"]:
                    raise ValueError(f"{ref_where}: reference output is for another instruction than {where}")
                reference = ref["output"]
            rows.append(
                {
                    "id": str(i),
                    "prompt": [{"role": "user", "content": r["instruction"]}],
                    "answer": "",
                    "instruction": r["instruction"],
                    "dataset": str(r.get("dataset", "")),
                    "reference": reference,
                }
            )
        return rows

    def extract(self, response: str) -> str | None:
        return None  # nothing to extract: the whole response is judged

    def score(self, response: str, row: dict[str, Any]) -> bool:
        """Whether the judge prefers `response` to the reference output; False without a judge."""
        if self.judge is None:
            return False
        if not row.get("reference"):
            raise ValueError(
                f"alpaca_eval row {row['id']} has no reference output to judge against: pass "
                f"reference_path (alpaca_eval's {REFERENCE_FILE}) or use the data dir that holds it"
            )
        return self.judge.preference(row["instruction"], row["reference"], response, seed=str(row["id"])) > 0.5

    def aggregate(self, rows: list[dict]) -> dict[str, Any]:
        """Harness hook: without a judge there is no score (None, shown as "-"), not a 0% win rate."""
        if self.judge is None:
            return {"score": None, "judged": False}
        return {"judged": True, "judge_model": self.judge.model}
