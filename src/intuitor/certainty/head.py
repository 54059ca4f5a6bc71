"""From hidden states to the logits forward() returns, the model's own way (`logit_head`).

`response_statistics` runs the backbone, keeps only the scored positions, and maps them to logits itself, chunk by
chunk. That map must be exactly the one in the model's forward(): some architectures transform the LM head's
output (Gemma-2/3/3n/4 soft-capping, Granite dividing by `logits_scaling`, Cohere multiplying by `logit_scale`,
Falcon-H1, HyperCLOVA X, recurrent Gemma...) or its input (MiniCPM3). Rather than a list of model types, which a
new architecture would silently drift from, `logit_head` reads the statements of the model's forward() between
the backbone call and the loss, recognises each one (projection, scale, soft-cap, vocabulary slice, cast) and
refuses the model when one is not recognised. So both the recorder (which hooks forward() itself) and this path
see the very logits forward() returns, and an unknown transform is an error, never a wrong number.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass

import torch


class UnsupportedArchitecture(ValueError):
    """The model's forward() maps hidden states to logits in a way `logit_head` cannot reproduce exactly."""


_HIDDEN, _LOGITS = r"hidden_states", r"(?:lm_)?logits"
_ATTR = r"self\.((?:config\.|model\.)?\w+)"  # a value read from the model: self.config.x, self.model.x, self.x
_SOFTCAP_BODY = "{v} = {v} / {c}\n    {v} = torch.tanh({v})\n    {v} = {v} * {c}"


def _recognise(stmt: str, aliases: dict[str, str]) -> tuple | None:
    """One statement of forward()'s head (ast.unparse'd) -> a step, ("noop",), or None when not recognised.

    Steps: ("module", attr, cast) applies a submodule (casting its input to the weight dtype when forward does);
    ("scale", op, attr) divides or multiplies by a value of the model; ("softcap", attr, upcast) is
    cap * tanh(x / cap) when the value is set; ("float",) upcasts; ("vocab", attr) keeps the first n logits.
    """

    def full(pattern):
        return re.fullmatch(pattern, stmt, flags=re.S)

    if m := full(r"(\w+) = self\.(config\.\w+)"):  # `cap = self.config.logits_soft_cap`, used below
        aliases[m[1]] = m[2]
        return ("noop",)
    if full(
        rf"{_HIDDEN} = (?:slice_logits_to_keep\()?(?:{_HIDDEN}|\w+\.last_hidden_state|\w+\[0\]"
        rf"|\w+\.last_hidden_state if return_dict else \w+\[0\])(?:, logits_to_keep\))?"
    ):
        return ("noop",)  # the backbone's output, sliced to the kept positions: we gather positions ourselves
    if full(
        rf"if {_HIDDEN}\.shape\[1\] == \(input_ids if input_ids is not None else inputs_embeds\)\.shape\[1\]:"
        rf"\n    {_HIDDEN} = slice_logits_to_keep\({_HIDDEN}, logits_to_keep\)"
    ):
        return ("noop",)
    if m := full(rf"{_HIDDEN} = (?:{_HIDDEN}|\w+\.last_hidden_state) / {_ATTR}"):
        return ("pre_scale", "/", m[1])
    head = rf"self\.(\w+)\((?:{_HIDDEN}|\w+\[0\])(\.to\((?:dtype=)?self\.\w+\.weight\.dtype\))?\)"
    if m := full(rf"{_LOGITS} = (?:self\.(\w+)\()?{head}\)?(\.float\(\)|\.contiguous\(\))?(?: ([*/]) {_ATTR})?"):
        outer, inner, cast, suffix, op, attr = m.groups()
        steps = [("module", inner, cast is not None)]
        if outer:
            steps.append(("module", outer, False))
        if suffix == ".float()":
            steps.append(("float",))
        if op:
            steps.append(("scale", op, attr))
        return ("head", *steps)
    if m := full(rf"{_LOGITS} = {_LOGITS} ([*/]) {_ATTR}"):
        return ("scale", m[1], m[2])
    if m := full(rf"{_LOGITS} = self\.(\w+)\({_LOGITS}\)"):
        return ("module", m[1], False)
    if m := full(rf"{_LOGITS} = {_LOGITS}\[\.\.\., :self\.(config\.\w+)\]"):
        return ("vocab", m[1])
    if m := full(r"if (\w+) is not None and \1 < logits\.shape\[-1\]:\n    logits = logits\[\.\.\., :\1\]"):
        return ("vocab", aliases[m[1]]) if m[1] in aliases else None
    softcaps = {
        "if self.config.final_logit_softcapping is not None:\n    "
        + _SOFTCAP_BODY.format(v="logits", c="self.config.final_logit_softcapping"): (
            "softcap",
            "config.final_logit_softcapping",
            False,
        ),
        "if (final_logit_softcapping := self.config.get_text_config().final_logit_softcapping) is not None:\n    "
        + _SOFTCAP_BODY.format(v="logits", c="final_logit_softcapping"): (
            "softcap",
            "text_config.final_logit_softcapping",
            False,
        ),
        "if self.config.final_logit_softcapping is not None:\n    "
        + _SOFTCAP_BODY.format(v="logits", c="self.config.final_logit_softcapping").replace(
            "logits = logits / ", "logits = logits.float() / ", 1
        ): ("softcap", "config.final_logit_softcapping", True),
    }
    if stmt in softcaps:
        return softcaps[stmt]
    if (m := full(r"logits = nn\.functional\.tanh\(logits / (\w+)\) \* \1")) and m[1] in aliases:
        return ("softcap", aliases[m[1]], False)
    return None


def _value(model, attr: str):
    if attr.startswith("text_config."):
        return getattr(model.config.get_text_config(), attr.split(".", 1)[1])
    obj = model
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


@dataclass(frozen=True)
class LogitHead:
    """How a causal LM's forward() turns its backbone's last hidden state into the logits it returns.

    `backbone` is the attribute path of the module forward() calls first (`model`, `transformer`, `model.decoder`),
    `steps` what forward() then does to the kept hidden states, in order; calling the head on hidden states [N, H]
    gives logits [N, V] equal to forward()'s at those positions.
    """

    architecture: str
    backbone: tuple[str, ...]
    steps: tuple[tuple, ...]

    def backbone_of(self, model):
        for name in self.backbone:
            model = getattr(model, name)
        return model

    def __call__(self, model, hidden: torch.Tensor, project=None) -> torch.Tensor:
        """Logits [N, V] for hidden states [N, H]. `project(module, x)`, if given, replaces the head module's call
        (e.g. a projection with weights gathered once under ZeRO-3/FSDP); every other step is forward()'s own."""
        x = hidden
        for step in self.steps:
            kind = step[0]
            if kind == "module":
                module = getattr(model, step[1])
                if step[2]:
                    x = x.to(module.weight.dtype)
                x = module(x) if project is None else project(module, x)
            elif kind in ("scale", "pre_scale"):
                x = x / _value(model, step[2]) if step[1] == "/" else x * _value(model, step[2])
            elif kind == "softcap":
                cap = _value(model, step[1])
                if cap is not None:
                    x = (x.float() if step[2] else x) / cap  # the operations of the models' own code, in order
                    x = torch.tanh(x)
                    x = x * cap
            elif kind == "float":
                x = x.float()
            elif kind == "vocab":
                n = _value(model, step[1])
                if n is not None and n < x.size(-1):
                    x = x[..., :n]
        return x


_HEADS: dict[type, LogitHead] = {}


def logit_head(model) -> LogitHead:
    """The map from `model`'s backbone output to its forward() logits, read from forward()'s own code.

    Raises `UnsupportedArchitecture` naming the statement it cannot reproduce.
    """
    cls = type(model)
    if cls in _HEADS:
        return _HEADS[cls]
    name = cls.__name__
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.forward)))
    except (OSError, TypeError, SyntaxError) as e:
        raise UnsupportedArchitecture(f"{name}: cannot read its forward() ({e}); its logits cannot be checked") from e
    body = tree.body[0].body
    call = next(
        (
            i
            for i, st in enumerate(body)
            if isinstance(st, (ast.Assign, ast.AnnAssign))
            and isinstance(st.value, ast.Call)
            and ast.unparse(st.value.func).startswith("self.")
            and any(kw.arg in ("input_ids", "inputs_embeds") for kw in st.value.keywords)
        ),
        None,
    )
    if call is None:
        raise UnsupportedArchitecture(
            f"{name}: its forward() calls no backbone with input_ids; not a causal LM "
            "intuitor can score from hidden states"
        )
    backbone = tuple(ast.unparse(body[call].value.func).split(".")[1:])
    steps, aliases, head_seen = [], {}, False
    for st in body[call + 1 :]:
        text = ast.unparse(st)
        if isinstance(st, ast.Return) or "loss" in text or "labels" in text:
            break
        step = _recognise(text, aliases)
        if step is None or (step[0] == "head" and head_seen):
            raise UnsupportedArchitecture(
                f"{name}.forward() computes its logits with `{text.splitlines()[0]}`, which intuitor cannot "
                "reproduce from hidden states; self-certainty would differ from the model's own logits. Score "
                "completions during generation (`record_generation`, the trainer's default) instead."
            )
        if step[0] == "noop":
            continue
        if (step[0] == "pre_scale" and head_seen) or (step[0] not in ("pre_scale", "head") and not head_seen):
            raise UnsupportedArchitecture(f"{name}.forward(): `{text.splitlines()[0]}` in an unexpected place")
        if step[0] == "head":
            head_seen = True
            steps.extend(step[1:])
        else:
            steps.append(step)
    if not head_seen:
        raise UnsupportedArchitecture(f"{name}.forward(): no LM head projection of the hidden states found")
    head = LogitHead(name, backbone, tuple(steps))
    _HEADS[cls] = head
    return head


def _unwrap(model):
    # PEFT wraps the model: reach the transformers model underneath.
    return model.get_base_model() if hasattr(model, "get_base_model") else model
