"""Group-aware rewards, and the options against decay.

GRPO normalises each reward within the group of G samples of one prompt, and TRL may split a group across
processes: every process scores only its local samples, then TRL gathers the rewards and views them as (-1, G), the
global order being process 0's samples, then process 1's, ... with each group contiguous. A reward that needs the
whole group (the plurality vote, a floored z-score) therefore gathers what it needs with
`accelerate.utils.gather_object`, computes on the global batch, and returns its local slice. `GroupAware` does
that; `attach(trainer)` (which `IntuitorTrainer` calls) tells it G and the process layout.

Options against decay. Self-certainty-only training can decay once a group's samples become nearly alike: the
group std of the reward shrinks, z-scoring divides by it, and the policy chases noise. Three remedies:

1. A floor on the group std (`advantage_std_floor: 0.05`, this module's `apply_std_floor`): the group's reward is
   z-scored with its std replaced by max(std, floor), so nearly-tied groups get small advantages instead of
   amplified noise. With several rewards the floor applies to their weighted sum (TRL's default
   `multi_objective_aggregation: sum_then_normalize`): advantage = (S - mean_g S) / max(std_g S, floor) with
   S = sum_k w_k r_k, the std being TRL's (Bessel-corrected, NaN-aware).
2. No std scaling at all (`scale_rewards: none`, TRL's own option; Dr. GRPO, Liu et al. 2025): advantage =
   reward - group mean, so small differences stay small.
3. Mixing self-certainty with the plurality vote (`--rewards self_certainty plurality_vote:0.5`, GRPO-PV as in
   TTRL): an answer-level signal that rewards agreeing with the group's majority answer.
The collapse guard (`guard: warn|stop`, `intuitor.training.guard`) watches for decay while these act against it.

Not in the paper: the authors' code z-scores with std + 1e-4 (TRL's `normalize_then_sum`), has no floor and no vote.
"""

from __future__ import annotations

import math
from collections.abc import Callable


__all__ = ["GroupAware", "FlooredReward", "apply_std_floor", "completion_text", "group_std_floor_divisors"]


def completion_text(completion) -> str:
    """The text of one completion, given as a string or as conversational messages.

    >>> completion_text("x = 2"), completion_text([{"role": "assistant", "content": "x = 2"}])
    ('x = 2', 'x = 2')
    >>> blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    >>> completion_text([{"role": "assistant", "content": blocks}])
    'ab'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    for message in completion or []:
        if message.get("role", "assistant") != "assistant":
            continue  # tool results are not the model's words
        content = message.get("content") or ""
        if isinstance(content, list):  # content blocks
            content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        parts.append(content)
    return "\n".join(parts)


class GroupAware:
    """Mixin for rewards that see the whole group of each prompt, across processes.

    Stand-alone (not attached to a trainer), G is `num_generations` and the process layout is torch.distributed's,
    if initialised. Attached, G follows the trainer's mode (`num_generations` in training, `num_generations_eval` in
    evaluation), as TRL's own grouping does.
    """

    num_generations: int | None = None
    _trainer = None

    def attach(self, trainer) -> None:
        self._trainer = trainer

    def __getstate__(self):
        # The trainer is process-local; a pickled reward is rebuilt unattached.
        return {**self.__dict__, "_trainer": None}

    def group_size(self) -> int:
        trainer = self._trainer
        if trainer is not None:
            return trainer.num_generations if trainer.model.training else trainer.num_generations_eval
        if not self.num_generations:
            raise ValueError(
                f"{type(self).__name__}: the group size G is unknown; construct it with num_generations=G or use it "
                "inside IntuitorTrainer (which calls attach(trainer))"
            )
        return self.num_generations

    def _layout(self) -> tuple[int, int]:
        """(process index, number of processes)."""
        trainer = self._trainer
        if trainer is not None:
            return trainer.accelerator.process_index, trainer.accelerator.num_processes
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def gather_groups(self, local: list) -> tuple[list, slice]:
        """All processes' items in TRL's global order, and the slice of them that is this process's.

        >>> class R(GroupAware): num_generations = 2
        >>> R().gather_groups(["a", "b", "c", "d"])
        (['a', 'b', 'c', 'd'], slice(0, 4, None))
        """
        rank, world = self._layout()
        if world > 1:
            from accelerate.utils import gather_object

            per_process = gather_object([list(local)])  # one list per process, in rank order
        else:
            per_process = [list(local)]
        start = sum(len(p) for p in per_process[:rank])
        everything = [x for p in per_process for x in p]
        size = self.group_size()
        if len(everything) % size:
            raise ValueError(
                f"{type(self).__name__}: {len(everything)} samples in the gathered batch do not form whole groups of "
                f"G={size}; every prompt's G samples must be scored in the same batch"
            )
        return everything, slice(start, start + len(local))


# ------------------------------------------------------------------------------------------------------------------
# Option 1: the group-std floor
#
# Why wrappers, not an advantage hook: TRL 1.16 has no overridable seam for advantages. `GRPOTrainer.
# _generate_and_score_completions` (trl/trainer/grpo_trainer.py:2324, one ~600-line method) computes them inline:
# `rewards_per_func = self._calculate_rewards(...)` (line 2753, already gathered across processes), then for
# `sum_then_normalize` S = nansum_k w_k r_k (2763), the group mean (2765-2766), the group std (2767-2771),
# `advantages = rewards - mean_grouped_rewards` (2785), divided by std + 1e-4 unless `scale_rewards='none'`
# (2786-2787), and NaN advantages zeroed (2810). With `scale_rewards='none'` TRL only centres, so rewards r_k / d_g
# (d_g = max(std_g S, floor), one divisor per group) give (S - mean_g S) / d_g: exactly the floored z-score. The
# nearest private seam is `_calculate_rewards` (line 1579, returns the gathered [N, K] tensor): dividing its rows by
# d_g there would drop the wrappers and their gather_object, but it is one more private override for
# tests/test_trl_contract.py to pin (its set of overridden private methods would grow by one) and still scales
# rewards, not advantages: not worth it.


def _nanstd(values: list[float]) -> float:
    """TRL's `nanstd` of one group: Bessel-corrected, NaNs ignored; NaN with fewer than two values."""
    vals = [v for v in values if not math.isnan(v)]
    if len(vals) < 2:
        return math.nan
    mean = sum(vals) / len(vals)
    return math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def group_std_floor_divisors(rows: list[list[float]], weights: list[float], group_size: int, floor: float):
    """Per sample: max(std of its group's weighted-sum reward, floor), and per group whether the floor applied.

    `rows[i][k]` is reward k of sample i (NaN = the reward gave none); the weighted sum follows TRL's
    `sum_then_normalize`: a NaN-skipping sum, NaN only when every reward of the sample is NaN.

    >>> divisors, floored = group_std_floor_divisors([[1.0], [1.0], [0.0], [2.0]], [1.0], 2, floor=0.5)
    >>> divisors, floored
    ([0.5, 0.5, 1.4142135623730951, 1.4142135623730951], [True, False])
    """
    sums = []
    for row in rows:
        terms = [w * r for w, r in zip(weights, row) if not math.isnan(r)]
        sums.append(sum(terms) if terms else math.nan)
    divisors, floored = [], []
    for start in range(0, len(sums), group_size):
        std = _nanstd(sums[start : start + group_size])
        low = not std >= floor  # NaN std (under two scored samples) takes the floor too
        floored.append(low)
        divisors += [floor if low else std] * group_size
    return divisors, floored


class _FloorCoordinator(GroupAware):
    """Scores all rewards once per batch, gathers the groups, and hands each wrapper its scaled column."""

    def __init__(self, funcs: list[Callable], names: list[str], weights: list[float], floor: float):
        self.funcs, self.names, self.weights, self.floor = funcs, names, weights, floor
        self._batch = None  # the `completions` object the cache belongs to (TRL passes one list to every reward)
        self._columns: list[list] = []

    def __getstate__(self):
        return {**super().__getstate__(), "_batch": None, "_columns": []}

    def column(self, index: int, prompts, completions, completion_ids, kwargs) -> list:
        if self._batch is not completions:
            self._score(prompts, completions, completion_ids, kwargs)
            self._batch = completions
        return self._columns[index]

    def _score(self, prompts, completions, completion_ids, kwargs) -> None:
        raw = []  # raw[k][i]: reward k of local sample i, NaN for None
        for func in self.funcs:
            out = func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
            raw.append([math.nan if r is None else float(r) for r in out])
        local_rows = [list(row) for row in zip(*raw)]  # [n_local][K]
        rows, mine = self.gather_groups(local_rows)  # [N][K], all processes
        divisors, floored = group_std_floor_divisors(rows, self.weights, self.group_size(), self.floor)
        local_div = divisors[mine]
        self._columns = [
            [None if math.isnan(r) else (r if w == 0 else r / d) for r, d in zip(column, local_div)]
            for column, w in zip(raw, self.weights)
        ]
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:  # what rewards/<name>/mean would have shown without the floor
            for k, name in enumerate(self.names):
                if self.weights[k] == 0:
                    continue  # returned unscaled: TRL's own rewards/<name>/mean is already the raw value
                column = [row[k] for row in rows if not math.isnan(row[k])]
                mean = sum(column) / len(column) if column else math.nan
                log_metric(f"rewards/{name}/raw_mean", mean)
                log_metric(f"rewards/{name}/raw_std", _nanstd(column))
            log_metric("rewards/std_floor/frac_floored", sum(floored) / max(len(floored), 1))


class FlooredReward:
    """One reward of a floored set: returns its raw values divided by the group's max(std, floor).

    Keeps the wrapped reward's `__name__` (so metric keys stay `rewards/<name>/...`) and its
    `needs_policy_statistics` flag. Weight-0 rewards (monitoring, e.g. `accuracy:0`) come back unscaled.
    """

    def __init__(self, coordinator: _FloorCoordinator, index: int, func: Callable):
        self.coordinator, self.index, self.func = coordinator, index, func
        self.__name__ = coordinator.names[index]
        self.needs_policy_statistics = getattr(func, "needs_policy_statistics", False)

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        return self.coordinator.column(self.index, prompts, completions, completion_ids, kwargs)

    def __repr__(self) -> str:
        return f"FlooredReward({self.__name__}, floor={self.coordinator.floor})"


def apply_std_floor(trainer) -> None:
    """Wrap `trainer.reward_funcs` so that TRL's advantage becomes (S - mean_g S) / max(std_g S, floor).

    Needs `scale_rewards='none'` (IntuitorConfig sets it with `advantage_std_floor`) so that TRL only centres the
    weighted sum S' = S / d of what the wrappers return (d: the group's divisor), and TRL's default
    `multi_objective_aggregation='sum_then_normalize'`: `normalize_then_sum` re-z-scores each reward per group, which
    would undo the floor.
    """
    import inspect

    from torch import nn

    args = trainer.args
    floor = args.advantage_std_floor
    if floor is None or floor <= 0:
        raise ValueError("advantage_std_floor must be > 0 to apply a std floor")
    if trainer.scale_rewards != "none":
        raise ValueError(
            f"advantage_std_floor needs scale_rewards='none' (got {trainer.scale_rewards!r}): the floored z-score "
            "replaces TRL's std scaling; set scale_rewards: none"
        )
    if trainer.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            f"advantage_std_floor works with multi_objective_aggregation='sum_then_normalize' (got "
            f"{trainer.multi_objective_aggregation!r}): 'normalize_then_sum' z-scores each reward per group again, "
            "undoing the floor; set multi_objective_aggregation: sum_then_normalize"
        )
    funcs = list(trainer.reward_funcs)
    for func, name in zip(funcs, trainer.reward_func_names):
        method = getattr(func, "__call__", func)  # noqa: B004  (a callable object's own method, for the async check)
        if isinstance(func, nn.Module) or inspect.iscoroutinefunction(method) or inspect.iscoroutinefunction(func):
            raise ValueError(
                f"advantage_std_floor: reward '{name}' is a reward model or an async function; the floor supports "
                "plain (synchronous) reward callables only"
            )
    if any(isinstance(f, FlooredReward) for f in funcs):
        return  # already applied
    weights = [float(w) for w in trainer.reward_weights.tolist()]
    coordinator = _FloorCoordinator(funcs, list(trainer.reward_func_names), weights, floor)
    coordinator.attach(trainer)
    trainer.reward_funcs = [FlooredReward(coordinator, i, f) for i, f in enumerate(funcs)]
