"""Answer types of code responses: how the shape of the answers evolves during training (paper Figure 6).

The paper sorts LiveCodeBench responses into "no valid code", "code without reasoning" and "reasoning + code"
and shows INTUITOR moving mass towards reasoning before code. The paper does not spell out its rule; ours is:

1. Code blocks are the fenced blocks (```python / ```py / ```python3 / ``` with no language). A block is *valid*
   when its dedented body is non-empty and `ast.parse`s. Blocks in other languages are ignored.
2. With no fenced block, the whole response counts as one code block (at position 0) when it `ast.parse`s and
   contains at least one statement that is not a bare expression (so that prose such as "yes" or "42",
   which are valid Python expressions, is not taken for code).
3. No valid code block -> `no_valid_code`.
4. Otherwise the *prose* is the text before the first valid block with the bodies of any earlier (invalid or
   non-Python) fenced blocks removed; `<think>` tags count as prose. At least `min_reasoning_words` words
   (default 10; `\\w+` runs that contain a letter) -> `reasoning_then_code`, else `code_without_reasoning`.
   The default keeps one-line lead-ins such as "Here is the solution:" out of "reasoning".
"""

from __future__ import annotations

import ast
import re
import textwrap


NO_VALID_CODE = "no_valid_code"
CODE_WITHOUT_REASONING = "code_without_reasoning"
REASONING_THEN_CODE = "reasoning_then_code"
ANSWER_TYPES = (NO_VALID_CODE, CODE_WITHOUT_REASONING, REASONING_THEN_CODE)

MIN_REASONING_WORDS = 10
PYTHON_FENCE_LANGS = {"", "python", "py", "python3"}
# Task names containing one of these are code-generation tasks (answer types are reported for them by default).
CODE_TASK_HINTS = ("code", "humaneval", "mbpp", "lcb")

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.DOTALL | re.MULTILINE)
_WORD = re.compile(r"\w*[^\W\d_]\w*")


def is_code_task(task: str) -> bool:
    """True for code-generation task names (LiveCodeBench, HumanEval, MBPP...).

    >>> is_code_task("livecodebench"), is_code_task("humaneval"), is_code_task("gsm8k"), is_code_task("cruxeval")
    (True, True, False, False)
    """
    name = task.lower()
    return any(h in name for h in CODE_TASK_HINTS)


def _parses(code: str) -> bool:
    code = textwrap.dedent(code).strip()
    if not code:
        return False
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
        return False
    return True


def _looks_like_program(text: str) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(text).strip())
    except (SyntaxError, ValueError):
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)


def count_words(text: str) -> int:
    """Words of prose: runs of word characters containing at least one letter.

    >>> count_words("First, sort the list; then 2 passes.")
    6
    """
    return len(_WORD.findall(text))


def classify_answer(response: str | None, min_reasoning_words: int = MIN_REASONING_WORDS) -> str:
    """One of `no_valid_code`, `code_without_reasoning`, `reasoning_then_code` (rule in the module docstring).

    >>> classify_answer("I think the answer is to loop.")
    'no_valid_code'
    >>> classify_answer("```python\\ndef f(x):\\n    return x + 1\\n```")
    'code_without_reasoning'
    >>> classify_answer("We need the sum of all numbers, so we add them one by one in a loop.\\n"
    ...                 "```python\\nprint(sum(map(int, input().split())))\\n```")
    'reasoning_then_code'
    """
    text = response or ""
    prose_parts: list[str] = []
    cursor = 0
    for m in _FENCE.finditer(text):
        lang = m.group(2).lower()
        if lang in PYTHON_FENCE_LANGS and _parses(m.group(3)):
            prose_parts.append(text[cursor : m.start()])
            prose = " ".join(prose_parts)
            return REASONING_THEN_CODE if count_words(prose) >= min_reasoning_words else CODE_WITHOUT_REASONING
        prose_parts.append(text[cursor : m.start()])  # drop the body of a block that is not valid Python
        cursor = m.end()
    if not _FENCE.search(text) and _looks_like_program(text):
        return CODE_WITHOUT_REASONING
    return NO_VALID_CODE


def answer_type_counts(rows: list[dict], min_reasoning_words: int = MIN_REASONING_WORDS) -> dict:
    """Counts and fractions of each answer type over `rows` (their `response` field), plus `n`.

    Returns {"n": N, "counts": {type: count}, "fractions": {type: count / N}} with every type present.
    """
    counts = dict.fromkeys(ANSWER_TYPES, 0)
    for row in rows:
        counts[classify_answer(row.get("response"), min_reasoning_words)] += 1
    n = len(rows)
    return {"n": n, "counts": counts, "fractions": {t: (c / n if n else 0.0) for t, c in counts.items()}}


def answer_types_figure(per_model: dict[str, dict]):
    """Stacked bars of answer-type fractions, one bar per model/checkpoint in the given order.

    per_model: {label: answer_type_counts(...)}.
    """
    from intuitor.analysis import new_figure

    labels = list(per_model)
    if not labels:
        raise ValueError("no answer types to plot")
    fig = new_figure(max(4.0, 1.1 * len(labels) + 2.5), 3.8)
    ax = fig.subplots()
    bottom = [0.0] * len(labels)
    colors = {NO_VALID_CODE: "#bbbbbb", CODE_WITHOUT_REASONING: "#1f77b4", REASONING_THEN_CODE: "#ff7f0e"}
    for t in ANSWER_TYPES:
        vals = [per_model[label]["fractions"][t] for label in labels]
        ax.bar(range(len(labels)), vals, bottom=bottom, color=colors[t], label=t.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals)]
    tilt = len(labels) > 3 or max(len(label) for label in labels) > 14
    ax.set_xticks(range(len(labels)), labels, rotation=25 if tilt else 0, ha="right" if tilt else "center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of responses")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
