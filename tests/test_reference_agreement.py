"""Reference agreement: realistic responses per task, each with the verdict its pinned reference scorer gives.

Every case is a raw generation (what the model wrote before the task's stop string, if any, ended it: the suite cuts
it with the task's `stop_sequences`, as both backends do) and `ref`, the verdict of the reference, derived by reading
its code (references and commits in each task's module docstring; the rule deciding a case is cited next to it).
`human` is given where a careful human would judge differently. A case where our verdict departs from the reference on
purpose names the documented departure in `departure`; there ours must equal `human`. Per task, ours must equal the
reference on at least 95% of the cases, and every disagreement must be such a documented departure.

Math verdicts (GSM8K, MATH500) were derived from lighteval@9619194b's extractive-match metrics (gsm8k:
`Metrics.expr_gold_metric`, metrics.py lines 195-203: gold read from the whole worked solution with
ExprExtractionConfig, prediction with ExprExtractionConfig + LatexExtractionConfig(boxed_match_priority=0),
`fallback_mode="first_match"`, precision 5; math_500: `Metrics.math_pass_at_1_1n`, lines 381-407: gold from the
`solution`, both sides with Expr + Latex configs, `compare_gold_target`), worked through with math-verify 0.9.0, the
package lighteval's extraction code was split into.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from intuitor.generation.base import cut_at_stop
from intuitor.tasks import get_task


class Case(NamedTuple):
    response: str
    ref: bool | None  # None: the reference draws a random letter (MMLU-Pro, no letter found)
    why: str  # the reference's rule that decides it
    human: bool | None = None  # only where a careful human differs from the reference
    departure: str = ""  # the documented departure when ours differs from the reference
    row: int = 0  # which row of the task's fixture


def agreement(task, cases: list[Case], rows: list[dict]) -> tuple[float, list[str]]:
    """Share of cases where ours equals the reference; every disagreement must be a documented departure that
    gives the human verdict (returned as a list of problems, empty when all is well)."""
    problems, agree = [], 0
    for i, c in enumerate(cases):
        response = cut_at_stop(c.response, task.stop_sequences)[0]
        ours = bool(task.score(response, rows[c.row]))
        if ours == c.ref:
            agree += 1
            if c.departure:
                problems.append(f"case {i}: marked as departure ({c.departure}) but agrees with the reference")
        elif not c.departure:
            problems.append(f"case {i}: ours {ours}, reference {c.ref} ({c.why}): {c.response[:70]!r}")
        elif ours != c.human:
            problems.append(f"case {i}: departure {c.departure} should give the human verdict {c.human}, got {ours}")
    return agree / len(cases), problems


def check(task, cases, rows):
    assert len(cases) >= 25
    rate, problems = agreement(task, cases, rows)
    assert not problems, "\n".join(problems)
    assert rate >= 0.95, rate


# ------------------------------------------------------------------------------------------------------ MMLU-Pro
# TIGER-AI-Lab/MMLU-Pro@f418b116 evaluate_from_local.py: stop "Question:" (line 37); extract_answer line 112
# `answer is \(?([A-J])\)?` first match; extract_again line 122 `.*[aA]nswer:\s*([A-J])`; extract_final line 130
# last standalone A-J (DOTALL); compared with `answer` (line 163); no letter: random.randint (lines 157-160).
R1, R2, R3 = "extract_answer (line 112)", "extract_again (line 122)", "extract_final (line 130)"
MMLU = [
    Case(
        "Nitrogen is more electronegative than hydrogen, so in N-H the negative end comes first. The answer is (C).",
        True,
        R1,
    ),
    Case("Looking at each bond in turn... the answer is C", True, R1),
    Case(
        "The answer is (B). Wait, N-H puts the negative end first, so actually the answer is (C).",
        False,
        R1 + " first",
        human=True,
    ),
    Case("Let's check each option.\nAnswer: C", True, R2),
    Case(
        "Let's see, option C fits best.\n\nQuestion:\nWhat is 2+2?\nOptions:\nA. 4\nB. 5\nAnswer: Let's think step "
        "by step. 2+2=4. The answer is (A).",
        True,
        "stop at Question: (line 37), then " + R3,
    ),
    Case(
        "the answer is (C)\n\nQuestion:\nWhich gas is inert?\nOptions:\nA. Ne\nB. O2\nAnswer: the answer is (A).",
        True,
        "stop at Question: (line 37), then " + R1,
    ),
    Case("It is between A and C. Final: C", True, R3),
    Case("The correct choice is C. I am confident.", False, R3 + ": the last capital is the pronoun I", human=True),
    Case("Answer: (C)", True, R2 + " needs the letter right after 'Answer:'; " + R3 + " finds C"),
    Case("So the answer is $\\boxed{C}$.", True, R3),
    Case("The answer is (J).", False, R1),
    Case("Let me compute. Option A gives 5, option B gives 7, option", False, R3 + " (truncated: B)"),
    Case("A. is wrong because H is the negative end... C. has N first. the answer is (C)", True, R1),
    Case("answer is C.", True, R1),
    Case("The answer is: C", True, R3 + " ('answer is:' matches neither regex)"),
    Case("Both A and B write the negative end last, so the answer must be C", True, R3),
    Case("Options C and D look plausible; D has H first. D", False, R3),
    Case("The answer is (C) because option D writes H first.", True, R1),
    Case("My answer: B. Actually the answer is (C).", True, R1 + " before " + R2),
    Case("ANSWER: C", True, R3 + " ('ANSWER:' is not [aA]nswer:)"),
    Case("The answer is (C).\n\nQuestion:", True, R1),
    Case("In N—H the nitrogen end is negative and is written first, unlike P—Cl or H—O. Answer: C.", True, R2),
    Case("the answer is (D)\nQuestion:\nthe answer is (C)", False, "stop at Question: (line 37), then " + R1),
    Case("Considering electronegativity (N 3.0 > H 2.1), the answer is (C).", True, R1),
    Case(
        "hmm, not sure which one.",
        None,
        "no letter: random.randint (line 158)",
        human=False,
        departure="strict: no letter is wrong; the reference's draw is reported as score_reference",
    ),
    Case(
        "Step 1: H—O: O is negative, written last. Step 2: N—H: N is negative, written first.\nThe answer is (C)",
        True,
        R1,
    ),
    Case("The answer is C) N—H", True, R1),
    Case("Answer:C", True, R2),
]


def test_mmlu_pro_agrees_with_the_reference():
    task = get_task("mmlu_pro")
    check(task, MMLU, [{"id": "3983", "answer": "C"}])


def test_mmlu_pro_reference_score_draws_a_seeded_letter():
    task = get_task("mmlu_pro")
    prompt = "Question:\nQ?\nOptions:\nA. x\nB. y\nAnswer: Let's think step by step."
    rows = [
        {"id": "1", "sample": 0, "answer": "A", "gold": "A", "correct": True, "prompt": prompt},
        {"id": "2", "sample": 0, "answer": None, "gold": "A", "correct": False, "prompt": prompt},
        {"id": "3", "sample": 0, "answer": None, "gold": "B", "correct": False, "prompt": prompt},
    ]
    import random

    rng = random.Random(12345)  # the reference's seed; one draw per letterless response, in (id, sample) order
    draws = ["AB"[rng.randint(0, 1)] for _ in range(2)]
    expected = (1 + (draws[0] == "A") + (draws[1] == "B")) / 3
    out = task.aggregate(rows)
    assert out["no_answer"] == pytest.approx(2 / 3) and out["score_reference"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------------- CRUXEval-O
# ZeroEval@8c1485ed src/evaluation/crux_eval.py: line 25 first complete JSON (eval_utils.py lines 87-109), line 27
# regex fallback (eval_utils.py lines 57-83), lines 46-51 str() of the answer stripped of quotes, string equality.
J1, J2, EQ = (
    "first complete JSON (eval_utils.py 87-109)",
    "regex fallback (eval_utils.py 57-83)",
    "str equality (46-51)",
)
CRUX = [
    Case('{"reasoning": "f appends 1", "answer": "[1, 2, 1]"}', True, J1 + ", " + EQ, row=0),
    Case(
        '```json\n{\n    "reasoning": "f appends 1",\n    "answer": "[1, 2, 1]"\n}\n```',
        True,
        J1 + " (newlines dropped)",
        row=0,
    ),
    Case('{"reasoning": "...", "answer": [1, 2, 1]}', True, "str([1, 2, 1]) == '[1, 2, 1]'", row=0),
    Case('{"reasoning": "...", "answer": "[1,2,1]"}', False, EQ + ": spacing differs", human=True, row=0),
    Case('{"reasoning": "...", "answer": "[1, 2]"}', False, EQ, row=0),
    Case(
        '{"reasoning": "first try", "answer": "[1, 2]"}\nOops, recheck:\n{"reasoning": "again", "answer": "[1, 2, 1]"}',
        False,
        J1 + ": the first object is read",
        human=True,
        row=0,
    ),
    Case(
        'The function returns 816.\n```json\n{"reasoning": "join digits", "answer": "816"}\n```',
        True,
        EQ + ": quotes stripped from the gold '816'",
        row=1,
    ),
    Case('{"reasoning": "join digits", "answer": "\'816\'"}', True, EQ, row=1),
    Case('{"reasoning": "join digits", "answer": 816}', True, "str(816), gold stripped to 816", human=False, row=1),
    Case('{"reasoning": "...", "answer": "\\"816\\""}', True, EQ, row=1),
    Case('{"reasoning": "...", "answer": "816 "}', False, EQ + ": no whitespace strip", human=True, row=1),
    Case('{"reasoning": "x is positive", "answer": true}', True, "str(True) == 'True'", row=2),
    Case('{"reasoning": "x is positive", "answer": "True"}', True, EQ, row=2),
    Case('{"reasoning": "x is positive", "answer": 1}', False, EQ, row=2),
    Case('{"reasoning": "x is positive", "answer": "true"}', False, EQ + ": case matters", human=True, row=2),
    Case('{"reasoning": "halves", "answer": "2.0"}', False, EQ + ": gold is 2", row=3),
    Case('{"reasoning": "halves", "answer": 2}', True, EQ, row=3),
    Case('{"reasoning": "counts", "answer": "{\'a\': 2, \'b\': 1}"}', True, EQ, row=4),
    Case(
        '{"reasoning": "counts", "answer": "{\'b\': 1, \'a\': 2}"}', False, EQ + ": order differs", human=True, row=4
    ),
    Case('{"reasoning": "counts", "answer": {"a": 2, "b": 1}}', True, "str(dict) == \"{'a': 2, 'b': 1}\"", row=4),
    Case("Reasoning: it counts letters.\n\"answer\": \"{'a': 2, 'b': 1}\"", True, J2, row=4),
    Case(
        '{"reasoning": "uses {braces", "answer": "[1, 2, 1]"}',
        True,
        J1 + " never closes (the { in the string), " + J2 + " reads it",
        row=0,
    ),
    Case("I think the output is [1, 2, 1].", False, "no JSON, no answer key: no answer", human=True, row=0),
    Case(
        '{"reasoning": "f appends 1", "answer": "[1, 2, 1]',
        False,
        J2 + " (truncated): unquoted value up to the comma, '[1'",
        row=0,
    ),
    Case('{"reasoning": "empty", "answer": ""}', True, "both empty count as correct (lines 68-70)", row=5),
    Case('{"reasoning": "empty", "answer": "\'\'"}', True, EQ + ": quotes stripped on both sides", row=5),
    Case(
        "[ANSWER]\nassert f([1, 2]) == [1, 2, 1]\n[/ANSWER]",
        False,
        "ZeroEval reads no [ANSWER] block",
        human=True,
        row=0,
    ),
    Case('{"reasoning": "...", "answer": "hello\\nworld"}', True, "newline written as \\\\n (line 46)", row=6),
]
CRUX_ROWS = [
    {"id": "0", "answer": "[1, 2, 1]"},
    {"id": "1", "answer": "'816'"},
    {"id": "2", "answer": "True"},
    {"id": "3", "answer": "2"},
    {"id": "4", "answer": "{'a': 2, 'b': 1}"},
    {"id": "5", "answer": "''"},
    {"id": "6", "answer": "'hello\\nworld'"},
]


def test_cruxeval_agrees_with_the_reference():
    check(get_task("cruxeval"), CRUX, CRUX_ROWS)


def test_cruxeval_literal_departure_gives_the_human_verdict():
    literal = get_task("cruxeval", compare="literal")
    spelled = [c for c in CRUX if c.human is True and "spacing" in c.why or "order differs" in c.why]
    assert spelled and all(literal.score(c.response, CRUX_ROWS[c.row]) for c in spelled)


# ----------------------------------------------------------------------------------------------------- HumanEval
# EvalPlus@26d6d00b: sanitize.py `code_extract` (lines 31-44, the longest parsable run of >= 2 lines) then
# `extract_target_code_or_empty` (lines 111-170: imports, reachable return-having functions, classes, assignments),
# codegen.py line 80 (sanitise the raw chat output), evaluate.py (the sanitised solution runs alone). Responses
# continue EvalPlus's pre-filled "```python\n" and stop at "\n```\n" (provider/vllm.py).
STUB = 'def running_max(xs: list) -> list:\n    """Running maximum of xs."""\n'
TEST = (
    "def check(candidate):\n    assert candidate([1, 3, 2]) == [1, 3, 3]\n    assert candidate([]) == []\n"
    "    assert candidate([-2, -5]) == [-2, -2]\n"
)
GOOD = (
    "def running_max(xs: list) -> list:\n    out, best = [], None\n    for x in xs:\n"
    "        best = x if best is None else max(best, x)\n        out.append(best)\n    return out"
)
SAN, RUN, SEL = "sanitize.py 111-170", "evaluate.py: the solution alone", "code_extract (31-44)"
HUMANEVAL = [
    Case(GOOD + "\n```\n", True, SAN),
    Case(GOOD + "\n\nprint(running_max([1, 3, 2]))\n```\n", True, "stop at \\nprint( (utility.py EOS)"),
    Case(
        GOOD + "\n\nif __name__ == '__main__':\n    import sys\n    print(running_max(list(map(int, sys.stdin.read()."
        "split()))))\n",
        True,
        "stop at \\nif __name__",
    ),
    Case(GOOD + "\n\nassert running_max([1, 2]) == [1, 1]\n", True, SAN + ": top-level assert dropped"),
    Case(GOOD + "\n\nimport sys\nsys.exit(1)\n", True, SAN + ": top-level call dropped (the import stays)"),
    Case(
        "def helper(a, b):\n    return a if a > b else b\n\n" + GOOD.replace("max(best, x)", "helper(best, x)"),
        True,
        SAN + ": helper reached from the entry point",
    ),
    Case("import math\n\n" + GOOD, True, SAN + ": imports kept"),
    Case(
        "from itertools import accumulate\n\ndef running_max(xs: list) -> list:\n    return list(accumulate(xs, max))\n"
        "```\nThis uses accumulate.",
        True,
        "stop at \\n```\\n",
    ),
    Case(
        "def running_max(xs: list) -> list:\n    return list(accumulate(xs, max))\n",
        False,
        RUN + ": accumulate is not imported",
        human=False,
    ),
    Case(
        "    out, best = [], None\n    for x in xs:\n        best = x if best is None else max(best, x)\n"
        "        out.append(best)\n    return out\n",
        False,
        RUN + ": a body alone defines nothing",
        human=False,
    ),
    Case(
        "Here is the solution:\n```python\n" + GOOD + "\n```\nIt keeps the best so far.",
        True,
        SEL + ": prose lines do not parse",
    ),
    Case("Sure. The idea is to keep the maximum so far.\n" + GOOD + "\nThis runs in O(n).", True, SEL),
    Case("```python\n" + GOOD + "\n```\n```python\nprint(running_max([1, 3, 2]))\n```", True, SEL + " then " + SAN),
    Case("def running_max(xs: list) -> list:\n    return sorted(xs)\n", False, "wrong answer"),
    Case(
        "def running_max(xs: list) -> list:\n    return xs\n\n" + GOOD,
        False,
        SAN + ": the first definition of a name wins",
        human=True,
    ),
    Case(
        "from functools import lru_cache\n\n@lru_cache\n" + GOOD.replace("xs: list", "xs: tuple"),
        False,
        SAN + ": decorated definitions are dropped",
    ),
    Case(
        "def running_max(xs: list) -> list:\n    out = []\n    for i in range(len(xs)):\n        out.append(max(xs[: i + "
        "1]))\n    return out\n",
        True,
        SAN,
    ),
    Case(
        "class Tracker:\n    def __init__(self):\n        self.best = None\n\n"
        "def running_max(xs: list) -> list:\n    t, out = Tracker(), []\n    for x in xs:\n"
        "        t.best = x if t.best is None else max(t.best, x)\n        out.append(t.best)\n    return out\n",
        True,
        SAN + ": classes kept when reached",
    ),
    Case(
        "LIMIT = 10\n\ndef running_max(xs: list) -> list:\n    assert len(xs) < LIMIT\n" + GOOD.split("\n", 1)[1],
        True,
        SAN + ": module-level assignment reached",
    ),
    Case(
        "def running_max(xs: list) -> list:\n    out, best = [], None\n    for x in xs:\n        best = x if best is None"
        " else max(best, x)\n        out.append(best)\n",
        False,
        "no return: not a definition EvalPlus keeps",
    ),
    Case(
        "def running_max(xs: list) -> list:\n    out, best = [], None\n    for x in xs:\n        best = x if best is"
        " None else max(best",
        False,
        "truncated: the longest parsable run holds no complete function",
    ),
    Case(GOOD + "\n\ndef main():\n    print(running_max([3, 1]))\n", True, "stop at \\ndef main("),
    Case(
        "import itertools\n\ndef running_max(xs: list) -> list:\n    return list(itertools.accumulate(xs, max))\n",
        True,
        SAN + ": module imports kept",
    ),
    Case(GOOD.replace("out.append(best)", "out.append(best)  # keep it") + "\n", True, SAN),
    Case("async def other():\n    return 1\n\n" + GOOD, True, SAN + ": unreached definitions dropped"),
    Case(
        "def running_max(xs):\n    return [max(xs[: i + 1]) for i in range(len(xs))]\n\n\n\nrunning_max([1])\n",
        True,
        SAN,
    ),
]


@pytest.mark.slow
def test_humaneval_agrees_with_the_reference():
    task = get_task("humaneval")
    row = {"id": "t/0", "stub": STUB, "entry_point": "running_max", "test": TEST, "answer": ""}
    check(task, HUMANEVAL, [row])


# ------------------------------------------------------------------------------------------------- LiveCodeBench
# lcb_runner@28fef95e lcb_runner/utils/extraction_utils.py lines 4-17 (= lighteval@9619194b codegen_metrics.py lines
# 668-673): the lines between the last two lines containing ```; "" when fewer than two (no code: fail).
LAST = "extract_code: the last two ``` lines"
SUM = "a, b = map(int, input().split())\nprint(a + b)"
LCB = [
    Case("```python\n" + SUM + "\n```", True, LAST),
    Case("Read two integers and print their sum.\n```python\n" + SUM + "\n```\nThis is O(1).", True, LAST),
    Case(
        "```python\n" + SUM + "\n```\nExample:\n```\n3 4\n```", False, LAST + ": the example input is read", human=True
    ),
    Case("First attempt:\n```python\nprint(0)\n```\nFixed:\n```python\n" + SUM + "\n```", True, LAST),
    Case("```python\n" + SUM + "\n```\nWrong idea:\n```python\nprint(0)\n```", False, LAST, human=True),
    Case(SUM, False, LAST + ": no fence, no code", human=True),
    Case("```python\n" + SUM, False, LAST + ": one fence only (truncated)", human=True),
    Case("```\n" + SUM + "\n```", True, LAST + ": any fence tag"),
    Case("```py\nimport sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n```", True, LAST),
    Case("```python\na, b = map(int, input().split())\nprint(a - b)\n```", False, "wrong answer"),
    Case("```python\nprint(sum(map(int, input().split())))\n```", True, LAST),
    Case(
        "```python\nimport sys\ndata = sys.stdin.read().split()\nprint(int(data[0]) + int(data[1]))\n```", True, LAST
    ),
    Case("```python\ndef main():\n    a, b = map(int, input().split())\n    print(a + b)\n\nmain()\n```", True, LAST),
    Case(
        "```python\ndef main():\n    a, b = map(int, input().split())\n    print(a + b)\n```",
        False,
        "main is never called: no output",
    ),
    Case("```python\nif __name__ == '__main__':\n    " + SUM.replace("\n", "\n    ") + "\n```", True, LAST),
    Case(
        "Input format: ```A B```\n```python\n" + SUM + "\n```",
        True,
        LAST + ": the inline fence line is a fence line, the last two still bound the program",
    ),
    Case(
        "```python\n" + SUM + "\n```\n\nTest: ```3 4``` gives 7",
        False,
        LAST + ": the inline example line is the last fence line",
        human=True,
    ),
    Case("```python\na, b = map(int, input().split())\nprint(a + b, end='')\n```", True, "outputs compared stripped"),
    Case(
        "```python\na, b = map(int, input().split())\nprint(f'{a + b}.0')\n```",
        True,
        "lines compared as decimals when not equal as text",
    ),
    Case("```python\na, b = map(int, input().split())\nprint('Answer:', a + b)\n```", False, "wrong output"),
    Case("```python\nwhile True:\n    pass\n```", False, "time limit"),
    Case("```python\nimport sys\nprint(eval(sys.stdin.read().replace(' ', '+')))\n```", True, LAST),
    Case(
        "```python\na, b = map(int, input().split())\nprint(a + b)\nprint('debug', file=__import__('sys').stderr)\n```",
        True,
        "stderr is not compared",
    ),
    Case(
        "```python\n" + SUM + "\n```\n```python\n# same as above\n```",
        False,
        LAST + ": the last block is a comment",
        human=True,
    ),
    Case(
        "```python\nimport sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n```",
        True,
        LAST,
    ),
    Case("I will write the program.\n```python\nx = input().split()\nprint(int(x[0]) + int(x[1]))\n```\n", True, LAST),
]
LCB_ROW = {
    "id": "sum",
    "fn_name": None,
    "answer": "",
    "public_tests": json.dumps([{"input": "3 4\n", "output": "7\n", "testtype": "stdin"}]),
    "private_tests": json.dumps(
        [
            {"input": "10 -2\n", "output": "8\n", "testtype": "stdin"},
            {"input": "0 0\n", "output": "0\n", "testtype": "stdin"},
        ]
    ),
}


@pytest.mark.slow
def test_livecodebench_agrees_with_the_reference():
    task = get_task("livecodebench", test_timeout_s=2.0)
    check(task, LCB, [LCB_ROW])


# ---------------------------------------------------------------------------------------------------------- GSM8K
BOX_SET = (
    "last box: several boxes are one set to math-verify (lighteval), ours reads the last one "
    "(intuitor.tasks.mathverify module docstring)"
)
GSM8K = [
    Case(
        "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are sold. 9 * 2 = 18.\n"
        "\\boxed{18}",
        True,
        "boxed first (boxed_match_priority=0)",
    ),
    Case(
        "She sells 16 - 3 - 4 = 9 eggs for $2 each, so she makes 9 * 2 = $18 every day.\nThe answer is 18.",
        True,
        "'answer is' anchor",
    ),
    Case("16 - 3 - 4 = 9, 9 x 2 = 18 dollars.\n#### 18", True, "last number"),
    Case(
        "She has 9 eggs left and makes $18.\n\nQuestion: A farmer has 20 cows and sells 5. How many are left?\n"
        "Answer: 20 - 5 = 15. The answer is 15.",
        True,
        "stop at Question: (default_tasks.py line 8009)",
    ),
    Case("She sells 9 eggs. The answer is $\\boxed{\\$18}$.", True, "boxed, the dollar sign removed"),
    Case("She makes 16 * 2 = 32 dollars.\n\\boxed{32}", False, "32 != 18"),
    Case("Eggs sold: 16 - 3 - 4 = 9. Money: 9 * $2 = $18.00", True, "18.00 == 18"),
    Case("\\boxed{18.0}", True, "18.0 == 18"),
    Case(
        "First \\boxed{9} eggs are sold, so she earns \\boxed{18} dollars.",
        False,
        "the boxes read as {9, 18}",
        human=True,
        departure=BOX_SET,
    ),
    Case(
        "She makes 9*2 = 18 dollars a day. Some people would say 20, but 18 is right.",
        True,
        "the first match of the highest-priority pattern",
    ),
    Case(
        "It takes 2 bolts of blue fiber and 2/2 = 1 bolt of white fiber, so 2 + 1 = 3 bolts.\n\\boxed{3}",
        True,
        "boxed",
        row=1,
    ),
    Case("Blue: 2, white: 1. Total: \\boxed{3 \\text{ bolts}}", True, "units dropped", row=1),
    Case("2 + 2/2 = 3\nQuestion: What is 5+5?\nAnswer: 10", True, "stop at Question:", row=1),
    Case("Total = 2 + 1 = 3.\n\nFinal answer: 3", True, "last number", row=1),
    Case("2 + 0.5 = 2.5 bolts.\n\\boxed{2.5}", False, "2.5 != 3", row=1),
    Case("The robe takes three bolts in total.", False, "no number", human=True, row=1),
    Case(
        "Cost: 80,000 + 50,000 = 130,000. Value: 80,000 * 2.5 = 200,000. Profit: 70,000.\n\\boxed{70,000}",
        True,
        "thousands comma",
        row=2,
    ),
    Case("He made a profit of $70,000.", True, "last number", row=2),
    Case("The profit is \\boxed{70000} dollars.", True, "boxed", row=2),
    Case("Profit = 200000 - 130000 = 70000 dollars.\n#### 70000", True, "last number", row=2),
    Case(
        "The house is worth 80000*1.5 = 120000 more, so profit is 120000 - 50000 = \\boxed{70000}.",
        True,
        "boxed",
        row=2,
    ),
    Case("Profit: \\boxed{\\$70{,}000}", True, "boxed, {,} thousands separator", row=2),
    Case("3 sprints x 3 times x 60 m = 540 m a week.\n\\boxed{540}", True, "boxed", row=3),
    Case(
        "He runs 3*3 = 9 sprints of 60 meters: 9*60 = 540 meters.\nQuestion: Tom runs 5 km a day...",
        True,
        "stop at Question:",
        row=3,
    ),
    Case("3 * 60 = 180 meters.\n\\boxed{180}", False, "180 != 540", row=3),
    Case("20 chickens * 3 cups = 60 cups. 60 - 15 - 25 = 20.\n\\boxed{20}", True, "boxed", row=4),
    Case("She needs 20 cups in the final meal.", True, "the number", row=4),
    Case(
        "Every second glass costs 60% of $5 = $3. 8 glasses at $5 = $40, 8 at $3 = $24. Total $64.\n\\boxed{64}",
        True,
        "boxed",
        row=5,
    ),
]


def test_gsm8k_agrees_with_the_reference(data_dir):
    task = get_task("gsm8k", data_dir=str(data_dir))
    check(task, GSM8K, task.load(limit=6))


# -------------------------------------------------------------------------------------------------------- MATH500
MATH500 = [
    Case(
        "So $r = 3$ and $\\theta = \\frac{\\pi}{2}$. The answer is $\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.",
        True,
        "tuple",
    ),
    Case("$\\boxed{(3, \\pi/2)}$", True, "tuple, pi/2"),
    Case("The polar coordinates are $\\boxed{(3, \\pi)}$.", False, "(3, pi) != (3, pi/2)"),
    Case("r = 3, theta = pi/2, so (3, \\frac{\\pi}{2}).", False, "no box: the first match reads 3", human=True),
    Case("Switching the order of summation gives $\\boxed{p - q}$.", True, "symbolic", row=1),
    Case("$\\boxed{-q + p}$", True, "symbolic, reordered", row=1),
    Case("$\\boxed{p + q}$", False, "p + q != p - q", row=1),
    Case(
        "$f(-2) = \\frac{3(-2)-2}{-2-2} = \\frac{-8}{-4} = 2$, ... the sum is $\\boxed{\\frac{14}{3}}$.",
        True,
        "boxed fraction",
        row=2,
    ),
    Case("The sum is $\\boxed{14/3}$.", True, "14/3", row=2),
    Case("The sum is $\\boxed{4.67}$.", False, "4.67 != 14/3", row=2),
    Case(
        "Final Answer: The final answer is $\\frac{14}{3}$. I hope it is correct.",
        True,
        "'final answer is' anchor",
        row=2,
    ),
    Case("The number of divisors is $\\boxed{9}$.", True, "boxed", row=3),
    Case(
        "There are \\boxed{9} positive divisors, not \\boxed{8}.", False, "the boxes read as {9, 8}", human=True, row=3
    ),
    Case(
        "First I thought \\boxed{8}. Recounting, the answer is \\boxed{9}",
        False,
        "the boxes read as {8, 9}",
        human=True,
        departure=BOX_SET,
        row=3,
    ),
    Case("Evelyn has the greatest average speed: $\\boxed{\\text{Evelyn}}$.", True, "text", row=4),
    Case("$\\boxed{Evelyn}$", True, "letters compared after lower-casing", row=4),
    Case("The perimeter is $\\boxed{42}$ units.", True, "boxed", row=5),
    Case("The perimeter is $\\boxed{42 \\text{ units}}$.", True, "units dropped", row=5),
    Case("The sum of the digits is \\boxed{27}.", True, "boxed", row=6),
    Case("The answer is 27", True, "'answer is' anchor", row=6),
    Case("The angle is $\\boxed{90^\\circ}$.", True, "degrees", row=7),
    Case("The angle is $\\boxed{90}$ degrees.", True, "90 == 90 degrees", row=7),
    Case("The distance is $\\boxed{3\\sqrt{13}}$.", True, "boxed", row=8),
    Case("The distance is $\\boxed{\\sqrt{117}}$.", True, "sqrt(117) == 3 sqrt(13)", row=8),
    Case("$\\boxed{4}$", True, "boxed", row=9),
    Case("The answer is $\\boxed{2220}$.", True, "boxed", row=10),
    Case("The answer is $\\boxed{2,220}$.", True, "thousands comma", row=10),
    Case("The probability is $\\boxed{\\dfrac{3}{56}}$.", True, "dfrac", row=11),
]


def test_math500_agrees_with_the_reference(data_dir):
    task = get_task("math500", data_dir=str(data_dir))
    check(task, MATH500, task.load(limit=12))


# ------------------------------------------------------------------------------------------ stop strings, pre-fill


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_hf_backend_stops_at_a_stop_string_like_vllm(tiny):
    from intuitor.generation.base import render_prompt
    from intuitor.generation.hf import HFGenerator
    from intuitor.generation.vllm import sampling_kwargs

    model, tok = tiny
    prompts = [render_prompt(tok, [{"role": "user", "content": s}])[1] for s in ("a", "a longer prompt")]
    gen = HFGenerator(model, tok, batch_size=4)  # one batch: rows that stop early leave the others' draws alone
    kw = dict(n=2, temperature=1.0, max_new_tokens=24, seed=3)
    full = gen.generate(prompts, **kw)
    ids = full[0].ids
    # a stop string: the text of one token from the middle of a sampled response that decodes to plain characters
    stop = next(
        t
        for t in (tok.decode([i]) for i in ids[len(ids) // 2 :])
        if t.strip() and t.isprintable() and "\ufffd" not in t
    )
    cut = gen.generate(prompts, stop=[stop], **kw)
    assert len(cut[0].ids) < len(ids)
    for f, c in zip(full, cut):
        assert f.ids[: len(c.ids)] == c.ids and stop not in c.text  # the same draw, ended early
        decoded = tok.decode(c.ids, skip_special_tokens=True)
        if stop in decoded:  # it ends on the token that completes the stop string; the text stops before it
            assert stop not in tok.decode(c.ids[:-1], skip_special_tokens=True)
            assert c.text == decoded[: decoded.index(stop)]
        else:
            assert c.ids == f.ids
    assert sampling_kwargs(stop=["Question:"])["stop"] == ["Question:"] and "stop" not in sampling_kwargs()


def test_task_stop_strings_match_the_references():
    assert get_task("gsm8k").stop_sequences == ("Question:",)  # lighteval default_tasks.py line 8009
    assert get_task("mmlu_pro").stop_sequences == ("Question:",)  # evaluate_from_local.py line 37
    assert get_task("humaneval").stop_sequences == (  # evalplus utility.py EOS + provider/vllm.py chat
        "<|endoftext|>",
        "<|endofmask|>",
        "</s>",
        "\nif __name__",
        "\ndef main(",
        "\nprint(",
        "\n```\n",
    )
    for name in ("math500", "cruxeval", "livecodebench"):  # none in lighteval math_500 / ZeroEval / lighteval lcb
        assert get_task(name).stop_sequences == ()


def test_prefilled_assistant_turn_renders_like_evalplus(tiny):
    from intuitor.generation.base import render_prompt

    _, tok = tiny
    text, ids = render_prompt(
        tok, [{"role": "user", "content": "Write f."}, {"role": "assistant", "content": "Below:\n```python\n"}]
    )
    assert text == "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\nBelow:\n```python\n"
    assert ids == tok(text, add_special_tokens=False)["input_ids"]
