"""Accuracy: 1.0 when the response states the gold answer, else 0.0 (the verifiable reward of RLVR / GRPO).

The paper trains INTUITOR without it and logs it for monitoring only; recipes do the same with `accuracy:0`
(weight 0: scored and logged as `rewards/accuracy/mean`, the label accuracy of the rollouts, without steering).
The gold comes from the dataset's `answer` column, which TRL passes to rewards as a keyword argument.

Scoring: with a training task that defines its own `score` (config.answer_extractor, which `intuitor train` sets to
the task), the task scores the response, so training and evaluation agree. Otherwise `math_equal`, the math tasks'
own check (`intuitor.tasks.mathverify`: the answer `extract_answer` reads, i.e. the last `\\boxed{}` or run of
adjacent boxes, else `#### N`, else the final stated answer, compared with the gold by math-verify; `\\frac{1}{2}` ==
`0.5`; where and why it departs from lighteval is in that module), each check under a time limit that counts as wrong
when exceeded. A GSM8K worked solution as gold (`... #### 72`) is reduced to
its final number first. Rows whose gold is empty score None (TRL: NaN, left out of the mean).
"""

from __future__ import annotations

from intuitor.rewards import factory, register_reward
from intuitor.rewards.group import completion_text


class AccuracyReward:
    """Gold-answer correctness, 1.0 / 0.0 (None where the row has no gold answer).

    >>> reward = AccuracyReward()
    >>> reward(prompts=["q"] * 3, completions=["so \\\\boxed{\\\\frac{1}{2}}", "It is 3.", "no idea"],
    ...        answer=["0.5", "#### 3", "4"])
    [1.0, 1.0, 0.0]
    """

    __name__ = "accuracy"
    needs_golds = True

    def __init__(self, task: str | None = None, timeout_s: float = 5.0, gold_column: str = "answer"):
        self.task, self.timeout_s, self.gold_column = task, timeout_s, gold_column
        self._scorer = None  # resolved lazily: the task instance, or False for math_equal

    def __getstate__(self):
        return {**self.__dict__, "_scorer": None}

    def _task_scorer(self):
        if self._scorer is None:
            self._scorer = False
            if self.task:
                from intuitor.tasks import Task, get_task

                task = get_task(self.task)
                if type(task).score is not Task.score:
                    self._scorer = task
        return self._scorer or None

    def score_one(self, response: str, gold, row: dict | None = None) -> float | None:
        if gold is None or not str(gold).strip():
            return None
        task = self._task_scorer()
        if task is not None:
            try:
                return float(bool(task.score(response, {**(row or {}), self.gold_column: gold})))
            except NotImplementedError:
                pass
        from intuitor.tasks.mathverify import extract_gsm8k_gold, math_equal

        gold = str(gold)
        if "####" in gold:
            gold = extract_gsm8k_gold(gold)
        return float(math_equal(response, gold, timeout_s=self.timeout_s))

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        golds = kwargs.get(self.gold_column)
        if golds is None:
            raise ValueError(
                f"accuracy needs gold answers: the training data has no '{self.gold_column}' column (drop the "
                "accuracy reward for label-free data)"
            )
        columns = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(completions)}
        return [
            self.score_one(completion_text(c), gold, {k: v[i] for k, v in columns.items()})
            for i, (c, gold) in enumerate(zip(completions, golds, strict=True))
        ]


@register_reward(
    "accuracy",
    "1 if the response states the gold answer (math-verify), else 0",
    "RLVR / GRPO (Shao et al. 2024; Lambert et al. 2024)",
    needs_golds=True,
)
@factory
def build(config=None):
    if config is None:
        return AccuracyReward()
    return AccuracyReward(task=getattr(config, "answer_extractor", None))
