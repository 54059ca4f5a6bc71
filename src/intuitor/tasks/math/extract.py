"""Which answer a math response states (`extract_answer`): regular expressions only, no SymPy, no time limit.

The order (boxes, `#### N`, bare LaTeX after an answer phrase, then math-verify's own regexes) and the departures
from lighteval are described in `intuitor.tasks.mathverify`'s docstring; this file is their code.
"""

from __future__ import annotations

import functools
import re


_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, content) of each top-level box, left to right; content None when the box never closes."""
    out: list[tuple[int, int, str | None]] = []
    pos = 0
    while True:
        m = _BOX.search(text, pos)
        if m is None:
            return out
        i = m.end()
        if text.startswith(" ", i) and not text[i:].lstrip(" ").startswith("{"):  # `\boxed 7`
            arg = re.match(r" +([^\s$]+)", text[i:])
            if arg:
                out.append((m.start(), i + arg.end(), arg.group(1)))
                pos = i + arg.end()
                continue
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "{":
            pos = m.end()
            continue
        depth, j = 0, i
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
        if depth:  # never closed: the response ends inside this box
            out.append((m.start(), len(text), None))
            return out
        out.append((m.start(), j + 1, text[i + 1 : j]))
        pos = j + 1


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` in `text` (nested braces kept), or None.

    None too when the last box never closes: the answer it was starting is lost, an earlier box does not stand in.

    >>> extract_boxed(r"so $x = \\boxed{\\frac{1}{2}}$")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"first \\boxed{4}, finally \\boxed{5}.")
    '5'
    >>> extract_boxed(r"\\boxed 7") , extract_boxed("no box") , extract_boxed(r"\\boxed{4} then \\boxed{unclosed")
    ('7', None, None)
    """
    if not text:
        return None
    boxes = _boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None
    return boxes[-1][2].strip()


def extract_gsm8k_gold(answer: str) -> str:
    """The final number of a GSM8K worked solution: what follows `#### `, thousands commas removed.

    >>> extract_gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18.\\n#### 1,234")
    '1234'
    """
    if "####" not in answer:
        raise ValueError(f"GSM8K answer has no '#### <number>' line: {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "").rstrip(".")


# What may stand between two boxes of one list answer: spaces, math delimiters, commas, "and"/"or", `x =`.
_BETWEEN_BOXES = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;]|\\[,;:! ]|~|\\q?quad|\b(?:and|or)\b|\\text\{\s*(?:and|or|,)?\s*\}"
    r"|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*"
)
# `2 2/3` is read whole
_GSM8K_FINAL = re.compile(r"####\s*\$?\s*((?:-|\u2212)?\d[\d,]*(?:\.\d+)?(?:[ \t]+\d+/\d+(?![\d/]))?)")
_ANSWER_PHRASE = re.compile(r"(?i:answer)\s*(?:is|:|=)\s*:?[ \t]*(?P<span>[^\n]*)")
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
_DELIMITED = re.compile(r"\$|\\\(|\\\[")


# A response cut off inside an expression (`so the total is 26 * 4 =`): its last sign, spaces and math delimiters
# aside, is an operator (not `**`, markdown bold). The unfinished expression is the run of math before it on the
# last line: numbers, operators, LaTeX commands, one-letter variables, up to a word or a sentence's end.
_DANGLING_END = re.compile(r"(?:=|\+|[-–−]|(?<!\*)\*|/|[×÷·⋅]|\^|\\(?:times|cdot|div|pm|mp))[\s$]*(?:\\[)\]][\s$]*)?$")
_MATH_RUN = re.compile(
    r"(?:[ \t\d+\-–−*/×÷·⋅^=()<>\[\]{}$|!_]|[.,](?=\S)|\\[a-zA-Z]+|\\[(){}\[\],;:! ]"
    r"|(?<![a-zA-Z\\])[a-zA-Z](?![a-zA-Z]))*+$"
)


def strip_unfinished(text: str) -> str:
    """`text` without the expression it was cut off in (an answer is never read from a half-written expression).

    >>> strip_unfinished("Each box holds 4. So the total is 26 * 4 ="), strip_unfinished("The answer is **104**")
    ('Each box holds 4. So the total is', 'The answer is **104**')
    >>> strip_unfinished("The answer is 104.\\nCheck: $26 \\\\times 4 = $")
    'The answer is 104.\\nCheck:'
    """
    if not text or not _DANGLING_END.search(text[-200:]):
        return text
    body = text.rstrip()
    tail = _MATH_RUN.search(body, max(body.rfind("\n") + 1, len(body) - 400))  # on the last line
    return body[: tail.start()].rstrip() if tail else text


def _balanced(answer: str) -> bool:
    depth = 0
    for ch in answer:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def _is_bare_latex(span: str) -> bool:
    """A LaTeX expression without `$`/`\\(` delimiters and without prose: `2\\sqrt{3}`, `\\frac{\\pi}{2}`."""
    if (
        not span
        or len(span) > 200
        or _DELIMITED.search(span)
        or not _LATEX_COMMAND.search(span)
        or not _balanced(span)
    ):
        return False
    words = re.sub(r"\\(?:text|mathrm|mbox|operatorname)\{[^{}]*\}|\\[a-zA-Z]+", " ", span)
    return re.search(r"[a-zA-Z]{2,}", words) is None  # no word outside commands ("so", "pi", "and"): not prose


def _trim_span(span: str) -> str:
    span = re.split(r"(?i)\s*I hope\b|\.\s|\.$", span.strip(), maxsplit=1)[0]
    return span.strip().rstrip(".").strip()


@functools.lru_cache(maxsize=1)
def _mv_regexes():
    from math_verify.parser import (
        ExprExtractionConfig,
        LatexExtractionConfig,
        get_extraction_regexes,
    )

    # math-verify's defaults (lighteval's MATH metric), boxes already handled by step 1.
    latex = LatexExtractionConfig(boxed_match_priority=-1)
    patterns = [
        (p, prio, cfg) for pats, cfg in get_extraction_regexes([latex, ExprExtractionConfig()]) for p, prio in pats
    ]
    return sorted(patterns, key=lambda x: x[1])


def _match_string(match: re.Match, config) -> str | None:
    """The answer text of one math-verify regex match (LaTeX normalised as math-verify does; a list joined)."""
    from latex2sympy2_extended.latex2sympy2 import normalize_latex
    from math_verify.parser import LatexExtractionConfig

    groups = match.groupdict()
    if isinstance(config, LatexExtractionConfig):
        parts = []
        for prefix in ["first_"] + [f"next{i}_" for i in range(1, 6)]:
            latex = next((v for k, v in groups.items() if k.startswith(prefix + "latex") and v), None)
            if latex is None:
                continue
            text = normalize_latex(latex, config.normalization_config)
            if groups.get(prefix + "percent"):
                text += "\\%"
            parts.append(text)
        return ", ".join(parts) or None
    if groups.get("expr"):
        # The expression's characters include a final stop and markdown bold (`**104**` -> `104**`).
        return groups["expr"].strip().rstrip(".").strip().strip("*").strip() or None
    integer = next((v for k, v in groups.items() if k.startswith("integer") and v), "")
    decimal = next((v for k, v in groups.items() if k.startswith("decimal") and v), "")
    number = (integer + decimal).strip()
    if not number:
        return None
    return number + ("%" if groups.get("percent") else "")


def _math_verify_extract(text: str) -> str | None:
    """math-verify's extraction (`extract_target_from_pred`): best priority first, rightmost match within it. Where
    math-verify moves on from a match that does not parse, we move on from one that cannot (unbalanced braces,
    e.g. a response cut inside `$\\frac{`) and otherwise take it: no SymPy here."""
    from itertools import groupby

    for _, group in groupby(_mv_regexes(), key=lambda x: x[1]):
        matches = [(m, config) for pattern, _, config in group for m in pattern.finditer(text)]
        matches.sort(key=lambda mc: (-mc[0].end(), mc[0].start()))
        for m, config in matches:
            answer = _match_string(m, config)
            if answer and _balanced(answer):
                return answer
    return None


@functools.lru_cache(maxsize=2048)  # a training step's responses, read by the accuracy reward, the vote and the metric
def extract_answer(text: str | None) -> str | None:
    """The answer `text` (a response, or a bare answer) states, as the string that is graded; None when none.

    >>> extract_answer(r"so $x = \\boxed{\\frac{\\sqrt{3}}{2}}$."), extract_answer(r"$\\boxed{1}$ and $\\boxed{2}$")
    ('\\\\frac{\\\\sqrt{3}}{2}', '1, 2')
    >>> extract_answer("#### 18\\nNote: it took 3 hours."), extract_answer(r"The answer is 2\\sqrt{3}.")
    ('18', '2\\\\sqrt{3}')
    >>> extract_answer(r"\\boxed{4}. Hmm, no: \\boxed{5"), extract_answer("She has 1,234 eggs."), extract_answer("no")
    (None, '1,234', None)
    """
    if not text or not text.strip():
        return None
    text = strip_unfinished(text)  # cut off mid-expression: that expression is no answer (departure, above)
    boxes = _boxes(text)
    if boxes:
        start, _, content = boxes[-1]
        if content is None:
            return None  # cut off inside the final box: the answer is lost (an abandoned earlier box is not it)
        parts = [content.strip()]
        for prev_start, prev_end, prev in reversed(boxes[:-1]):
            if prev is None or not _BETWEEN_BOXES.fullmatch(text[prev_end:start]):
                break
            parts.insert(0, prev.strip())
            start = prev_start
        parts = list(dict.fromkeys(p for p in parts if p))  # a repeated final box is one answer
        return ", ".join(parts) or None
    finals = _GSM8K_FINAL.findall(text)
    if finals:
        return finals[-1]
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        span = _trim_span(phrases[-1].group("span"))
        if _is_bare_latex(span):
            return span
    stripped = text.strip().rstrip(".").strip()
    if "\n" not in stripped and _is_bare_latex(stripped):
        return stripped
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and "=" in lines[-1] and not _DELIMITED.search(lines[-1]):
        rhs = _trim_span(lines[-1].rsplit("=", 1)[1])
        if _is_bare_latex(rhs):
            return rhs
    return _math_verify_extract(text)
