"""Rewards: plain TRL-style callables `reward(prompts, completions, completion_ids, **kwargs) -> list[float]`.

Each reward lives in one file of this package and registers a factory under its name; `intuitor rewards` lists
them. Adding a reward is one new file with `@register_reward`. A factory receives the run's `IntuitorConfig`
(or None, stand-alone) and returns the callable; its `__name__` becomes the metric key `rewards/<name>/mean`.

Rewards that read gold answers (accuracy) say so: `register_reward(..., needs_golds=True)` and `needs_golds = True`
on the callable. `intuitor train` refuses such a reward on data without golds before any model loads, and withholds
the task's gold columns from the rewards when no such reward is named (test-time training stays label-free).

Rewards that need the policy's own statistics (self-certainty, entropy) set `needs_policy_statistics = True`:
inside `IntuitorTrainer` they read the statistics recorded while the rollouts were generated (no extra forward);
on a stock `GRPOTrainer` they score with the model they were given.

In a trainer's `reward_funcs`, a string is a registry name if it is one; any other string keeps TRL's meaning (a
reward-model id or path), so IntuitorTrainer accepts every `reward_funcs` GRPOTrainer does.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


REWARDS: dict[str, RewardEntry] = {}


@dataclass
class RewardEntry:
    name: str
    factory: Callable
    summary: str
    origin: str
    needs_golds: bool = False  # reads the data set's gold answers (the `answer` column)


def register_reward(name: str, summary: str, origin: str, needs_golds: bool = False):
    """Register `factory(config) -> callable` (or a plain reward function) under `name`; `needs_golds`: it reads
    the gold answers, so label-free data cannot feed it."""

    def wrap(factory):
        REWARDS[name] = RewardEntry(name, factory, summary, origin, needs_golds)
        return factory

    return wrap


def load_all() -> dict[str, RewardEntry]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return REWARDS


def parse_reward_spec(spec: str) -> tuple[str, float]:
    """'accuracy:0.5' -> ('accuracy', 0.5); 'self_certainty' -> ('self_certainty', 1.0).

    >>> parse_reward_spec("accuracy:0.5")
    ('accuracy', 0.5)
    """
    name, sep, weight = spec.partition(":")
    if not sep:
        return name.strip(), 1.0
    try:
        value = float(weight)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"reward spec {spec!r}: the weight after ':' must be a number, e.g. accuracy:0.5")
    return name.strip(), value


def _unknown_reward(name: str) -> str:
    close = difflib.get_close_matches(name, REWARDS, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"Unknown reward '{name}'.{hint} Known rewards: {', '.join(sorted(REWARDS))}"


def check_reward_specs(specs, reward_weights=None) -> list[float]:
    """Check NAME[:WEIGHT] specs without building a reward, and return their weights: a list of strings, each a
    registered name (did-you-mean otherwise) with a numeric weight. `reward_weights` (GRPOConfig's field), when
    given too, must not disagree with weights written in the specs: the trainer would use one and silently drop the
    other (`[self_certainty, accuracy:0]` with `reward_weights: [1, 1]` would let the logged-only accuracy steer).
    Specs without any weight leave the weights to `reward_weights`.

    >>> check_reward_specs(["self_certainty", "accuracy:0"])
    [1.0, 0.0]
    >>> check_reward_specs(["self_certainty", "accuracy:0"], [1, 1])
    Traceback (most recent call last):
    ...
    ValueError: rewards [self_certainty, accuracy:0] weigh them [1, 0] but reward_weights is [1, 1]: two sources of weights that disagree; give the weights in one place (NAME:WEIGHT in rewards, and drop reward_weights)
    """
    if not isinstance(specs, (list, tuple)) or not all(isinstance(s, str) for s in specs):
        raise ValueError(f"rewards={specs!r}: expected a list of NAME[:WEIGHT], e.g. [self_certainty, accuracy:0]")
    load_all()
    weights = []
    for spec in specs:
        name, weight = parse_reward_spec(spec)
        if name not in REWARDS:
            raise ValueError(_unknown_reward(name))
        weights.append(weight)
    if reward_weights is not None:
        given = [float(w) for w in reward_weights]
        listed = "[" + ", ".join(specs) + "]"
        if len(given) != len(specs):
            raise ValueError(
                f"reward_weights has {len(given)} weight(s) for the {len(specs)} rewards {listed}: give "
                "one weight per reward, or write them as NAME:WEIGHT in rewards and drop reward_weights"
            )
        if any(":" in s for s in specs) and given != weights:
            raise ValueError(
                f"rewards {listed} weigh them [{', '.join(f'{w:g}' for w in weights)}] but reward_weights is "
                f"[{', '.join(f'{w:g}' for w in given)}]: two sources of weights that disagree; give the weights in "
                "one place (NAME:WEIGHT in rewards, and drop reward_weights)"
            )
    return weights


def get_reward(name: str, config=None):
    """Build the reward registered as `name`; an unknown name gets a did-you-mean."""
    load_all()
    if name not in REWARDS:
        raise KeyError(_unknown_reward(name))
    entry = REWARDS[name]
    reward = entry.factory(config) if _is_factory(entry.factory) else entry.factory
    return reward


def resolve_reward_func(func, config=None):
    """One entry of a trainer's `reward_funcs`, resolved the way GRPOTrainer would plus our registry.

    A registry name becomes that reward; any other string keeps TRL's rule (a reward-model id or path, loaded by
    GRPOTrainer as a sequence-classification model with one label) and is returned unchanged; callables and models
    pass through. A bare word that is neither a registry name nor a local path but is close to a registry name is
    almost surely a typo, not a hub id: it gets the registry's did-you-mean instead of a hub error.

    >>> resolve_reward_func("trl-internal-testing/tiny-Qwen2ForSequenceClassification-2.5")
    'trl-internal-testing/tiny-Qwen2ForSequenceClassification-2.5'
    >>> resolve_reward_func("self_certainty").__name__
    'self_certainty'
    """
    if not isinstance(func, str):
        return func
    load_all()
    if func in REWARDS:
        return get_reward(func, config)
    if "/" not in func and not os.path.exists(func) and difflib.get_close_matches(func, REWARDS, n=1):
        get_reward(func, config)  # raises the did-you-mean
    return func


def _is_factory(obj) -> bool:
    return getattr(obj, "_reward_factory", False)


def factory(fn):
    """Mark a function as a factory `fn(config) -> reward` rather than a reward itself."""
    fn._reward_factory = True
    return fn


def gold_rewards(specs: list[str]) -> list[str]:
    """The names among NAME[:WEIGHT] specs of rewards that read gold answers (whatever their weight: `accuracy:0`
    still reads them, to log).

    >>> gold_rewards(["self_certainty", "accuracy:0"])
    ['accuracy']
    """
    load_all()
    names = [parse_reward_spec(s)[0] for s in specs]
    return [n for n in names if n in REWARDS and REWARDS[n].needs_golds]


def build_rewards(specs: list[str], config=None) -> tuple[list[Callable], list[float]]:
    """Rewards and weights from NAME[:WEIGHT] specs."""
    if not specs:
        raise ValueError("rewards is empty: give at least one, e.g. --rewards self_certainty")
    funcs, weights = [], []
    for spec in specs:
        name, weight = parse_reward_spec(spec)
        funcs.append(get_reward(name, config))
        weights.append(weight)
    return funcs, weights
