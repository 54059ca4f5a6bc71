"""Format: 1.0 when the response gives a final answer in the requested form, else 0.0.

Default form: a non-empty `\\boxed{...}` (nested braces allowed), what the math prompts ask for. Pass `pattern=` (a
regular expression searched over the whole response, `re.DOTALL`) for another form, e.g. `r"```python\\n.+?```"`.
The shaping reward of DeepSeek-R1 (Guo et al. 2025) and open-r1, reduced to the answer format.
"""

from __future__ import annotations

import re

from intuitor.rewards import factory, register_reward
from intuitor.rewards.group import completion_text


class FormatReward:
    """1.0 if the response contains the answer form, else 0.0.

    >>> FormatReward()(prompts=["q"] * 3, completions=["so \\\\boxed{\\\\frac{1}{2}}", "\\\\boxed{}", "42"])
    [1.0, 0.0, 0.0]
    >>> FormatReward(pattern=r"answer: \\d+")(prompts=["q"] * 2, completions=["answer: 7", "answer: x"])
    [1.0, 0.0]
    """

    __name__ = "format"

    def __init__(self, pattern: str | None = None):
        self.pattern = pattern
        self._regex = re.compile(pattern, re.DOTALL) if pattern is not None else None

    def matches(self, text: str) -> bool:
        if self._regex is not None:
            return self._regex.search(text) is not None
        from intuitor.tasks.mathverify import extract_boxed

        return bool(extract_boxed(text))

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        return [float(self.matches(completion_text(c))) for c in completions]


@register_reward(
    "format",
    "1 if the response gives a final answer as \\boxed{...} (or a given regex)",
    "DeepSeek-R1 (Guo et al. 2025) / open-r1",
)
@factory
def build(config=None):
    return FormatReward()
