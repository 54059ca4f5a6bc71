"""One answer extraction and equivalence for math (`intuitor.tasks.mathverify`), shared by the math tasks, the
accuracy reward, the plurality vote, the agreement metric and `select` majority/Borda.

Each math-checking kind of issue 10 has a case with the right value; where the reference (lighteval's extractive
match = math-verify 0.9.0's parse/verify, see the module docstring) decides otherwise, `reference()` shows its
verdict next to ours, so a change of the reference shows up here. Then equal answers that must vote together, and
different ones that must not, on hand-made groups.
"""

from __future__ import annotations

import pytest

from intuitor.analysis.select import select_item
from intuitor.rewards.accuracy import AccuracyReward
from intuitor.rewards.plurality_vote import PluralityVoteReward, plurality_labels, vote
from intuitor.tasks import get_task, mathverify
from intuitor.tasks.mathverify import answer_classes, answer_equal, extract_answer, math_equal, quick_key
from intuitor.training.metrics import answer_grouper, generic_extract, group_agreement


def reference(response: str, gold: str) -> bool:
    """lighteval's MATH500 verdict (`math_pass_at_1_1n`: Expr + LaTeX extraction of gold and response, then
    compare), with math-verify 0.9.0, the code lighteval's metric utilities were split out into."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    targets = [ExprExtractionConfig(), LatexExtractionConfig()]
    return verify(parse(f"${gold}$", targets), parse(response, targets))


# ------------------------------------------------------------------------------------------ issue 10's kinds


def test_tiny_different_values_are_not_equal():
    # 1/2006! - 1/2004! is about 1e-5760: math-verify's evalf(chop=True) rounds it to 0 (reference: equal).
    assert reference(r"\boxed{\frac{1}{2006!}}", r"\frac{1}{2004!}") is True
    assert math_equal(r"\boxed{\frac{1}{2006!}}", r"\frac{1}{2004!}") is False
    assert math_equal(r"\boxed{\frac{1}{2004!}}", r"\frac{1}{2004!}") is True
    assert math_equal(r"\boxed{\frac{1}{2004 \cdot 2003!}}", r"\frac{1}{2004!}") is True  # same value, other form
    assert math_equal(r"\boxed{10^{-30}}", r"2 \cdot 10^{-30}") is False
    assert math_equal(r"\boxed{0.333333}", r"\frac{1}{3}") is True  # floats keep math-verify's 6-decimal rounding


@pytest.mark.parametrize(
    "response, gold, ours, ref",
    [
        (r"The answer is 2\sqrt{3}.", r"2\sqrt{3}", True, False),  # the reference reads 2
        (r"The answer is 2\sqrt{3}.", "2", False, True),
        (r"So the final answer is \frac{\sqrt{3}}{2}. I hope it is correct.", r"\frac{\sqrt{3}}{2}", True, False),
        ("We simplify both sides.\nSo x = 3\\pi/2", r"\frac{3\pi}{2}", True, False),
        (r"\frac{\sqrt{3}}{2}", r"\frac{\sqrt{3}}{2}", True, False),  # a bare answer given alone
        (r"The answer is $2\sqrt{3}$.", r"2\sqrt{3}", True, True),  # delimited LaTeX: both read it whole
    ],
)
def test_unboxed_bare_latex_is_read_whole(response, gold, ours, ref):
    assert math_equal(response, gold) is ours
    assert reference(response, gold) is ref


def test_unterminated_final_box_is_no_answer():
    response = r"First guess: \boxed{4}. Wait, that double counts. Redoing it: \boxed{5"
    assert reference(response, "4") is True  # the reference falls back to the abandoned box
    assert extract_answer(response) is None
    assert math_equal(response, "4") is False
    assert get_task("math500").extract(response) is None
    assert math_equal(r"First guess: \boxed{4}. Redoing it: \boxed{\frac{7}{2}}", r"\frac{7}{2}") is True


def test_a_response_cut_inside_unbalanced_latex_never_shows_a_broken_answer():
    # math-verify moves on from a match that does not parse; so do we, from one that cannot (unbalanced braces).
    response = "We get $\\frac{3x-8}{x-2}$\n4. Now subtract: $f(x) = \\frac{"
    assert extract_answer(response) == "4"  # as the reference: the rightmost number that parses
    assert extract_answer("So the answer is \\frac{3}{") is None


def test_gsm8k_final_line_beats_a_later_remark():
    response = "She sells 9 eggs at $2.\n#### 18\n\nNote: this took 3 steps."
    assert reference(response, "18") is False  # the reference takes the last number, 3
    assert extract_answer(response) == "18"
    assert math_equal(response, "18") is True and math_equal(response, "3") is False
    assert math_equal("#### 1,234\nDone in 2 steps.", "1234") is True


@pytest.mark.parametrize(
    "answer, gold, ours",
    [
        (r"1\,234", "1234", True),
        ("12 000", "12000", True),
        (r"12\,000", "12000", True),
        (r"1{,}234{,}567", "1234567", True),
        ("1\u2009234", "1234", True),  # a Unicode thin space
        (r"1\,234", "234", False),
        (r"1\,234.5", "1234.5", True),
    ],
)
def test_thin_space_and_space_thousands_separators(answer, gold, ours):
    assert math_equal(rf"\boxed{{{answer}}}", gold) is ours


def test_thousands_separators_reference_misreads_them():
    assert reference(r"\boxed{1\,234}", "1234") is False and reference(r"\boxed{12\,000}", "12000") is False


@pytest.mark.parametrize(
    "response, gold, ours",
    [
        (r"$x = \boxed{-2}$ or $x = \boxed{3}$.", "-2, 3", True),
        (r"$x = \boxed{-2}$ or $x = \boxed{3}$.", "3, -2", True),  # a list of solutions: order does not matter
        (r"\boxed{1}, \boxed{2} and \boxed{5}", "1, 2, 5", True),
        (r"\boxed{1}, \boxed{2}", "1, 2, 5", False),  # one missing
        (r"$x = \boxed{-2}$ or $x = \boxed{3}$.", "3", False),
        (r"At first \boxed{4}; on reflection the count is \boxed{5}", "5", True),  # prose between: the last box
        (r"\boxed{5}" "\n\n" r"\boxed{5}", "5", True),  # a repeated final box is one answer
    ],
)
def test_list_gold_answered_with_one_box_per_element(response, gold, ours):
    assert math_equal(response, gold) is ours


def test_answer_column_is_the_value_graded():
    # Before: `extract` showed the last number ("4") while math-verify graded the anchored 3/4.
    task = get_task("math500")
    row = {"answer": r"\frac{3}{4}"}
    cases = {
        r"so the final answer is $\frac{3}{4}$.": r"\frac{3}{4}",
        "The final answer is 3/4. We used 2 tricks.": "3/4",
        "The answer is 3/4.": "3/4",
        r"\boxed{\frac{3}{4}} since 4 divides 12": r"\frac{3}{4}",
        r"\boxed{0.75}": "0.75",
        "The answer is 4.": "4",
        "no answer here": None,
    }
    for response, shown in cases.items():
        assert task.extract(response) == shown, response
        assert task.score(response, row) is (shown not in ("4", None)), response
        assert task.score(response, row) is answer_equal(shown, row["answer"])


def test_accuracy_reward_and_tasks_share_the_checker():
    r = AccuracyReward()
    completions = ["#### 18\nNote: 3 steps.", r"\boxed{1\,234}", r"\boxed{4} then \boxed{5", r"answer is 2\sqrt{3}"]
    golds = ["18", "1234", "4", r"2\sqrt{3}"]
    assert r(prompts=["q"] * 4, completions=completions, answer=golds) == [1.0, 1.0, 0.0, 1.0]
    gsm8k = get_task("gsm8k")
    assert [gsm8k.score(c, {"answer": g}) for c, g in zip(completions, golds)] == [True, True, False, True]


def test_assignments_follow_math_verify_when_graded():
    assert answer_equal("x=3", "3") and answer_equal("3", "x=3")
    assert not answer_equal("y=3", "x=3")  # math-verify: two assignments to different variables differ
    assert answer_classes(["x=3", "3", "y=3"]) == [0, 0, 0]  # the vote: all state the value 3


# ------------------------------------------------------------------------------------------ issue 26's kinds

MATH_TASKS = ("gsm8k", "math500", "math")  # "math": the math_train module's training task


def every_verdict(response: str, gold: str) -> set[bool]:
    """The verdict of each consumer of the math checker: the math tasks, the accuracy reward, math_equal."""
    verdicts = {get_task(name).score(response, {"answer": gold}) for name in MATH_TASKS}
    verdicts.add(AccuracyReward()(prompts=["q"], completions=[response], answer=[gold])[0] == 1.0)
    verdicts.add(math_equal(response, gold))
    return verdicts


@pytest.mark.parametrize(
    "response, gold, shown",
    [
        ("so the total is 26 * 4 =", "104", None),
        ("Each box holds 4 apples, so the total is 26 * 4 =", "104", "4"),  # read as if it ended before the cut
        ("so the total is 26 * 4 =", "4", None),  # nor an operand
        (r"so the total is $26 \times 4 = $", "104", None),
        ("Total: 26 * 4 = 104 apples, then 104 + 5 =", "109", "104"),  # a finished step stays, not the cut one
        ("The answer is 104.\nLet me double-check: 26 * 4 =", "104", "104"),  # what was stated before stays
        (r"\[ 3 \cdot 17 + \]", "51", None),
        ("the area is 6^", "6", None),
    ],
)
def test_a_response_cut_off_mid_expression_is_not_credited_with_it(response, gold, shown):
    assert extract_answer(response) == shown
    assert every_verdict(response, gold) == {shown is not None and shown == gold}
    for name in MATH_TASKS:
        assert get_task(name).extract(response) == shown


def test_cut_off_expression_reference_and_other_tasks():
    assert reference("so the total is 26 * 4 =", "104") is True  # lighteval credits the expression's value
    arithmetic = get_task("arithmetic")
    row = {"answer": "20"}
    assert arithmetic.extract("40 - 20 =") is None and arithmetic.score("So 40 - 20 =", row) is False
    assert arithmetic.score("It is 20; check: 40 - 20 =", row) is True
    # Not cut off: markdown bold, a finished line, a final rule.
    assert extract_answer("The answer is **104**") == "104" and math_equal("So the answer is **104**.", "104")
    assert extract_answer("26 * 4 = 104") == "104" and math_equal("The answer is 5.\n---", "5")
    # The vote never groups a cut-off response with the value of its unfinished expression.
    r = PluralityVoteReward(num_generations=3)
    assert r(prompts=["q"] * 3, completions=["so 26 * 4 =", r"\boxed{104}", "so 26 * 4 ="]) == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "response, gold",
    [
        (r"The solution set is $3 < x \le 4$.", "(3,4]"),
        (r"$\boxed{3 < x \leq 4}$", r"(3, 4]"),
        (r"$\boxed{x > 3}$", r"(3, \infty)"),
        (r"$\boxed{1 \le x \le 2}$", "[1,2]"),
        (r"$\boxed{(3,4]}$", r"3 < x \le 4"),  # the other way round, as before
    ],
)
def test_an_inequality_answers_an_interval(response, gold):
    assert every_verdict(response, gold) == {True}


def test_inequality_versus_interval_reference():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    targets = [ExprExtractionConfig(), LatexExtractionConfig()]
    gold, pred = parse("$(3,4]$", targets), parse(r"The solution set is $3 < x \le 4$.", targets)
    assert verify(gold, pred, allow_set_relation_comp=True) is True  # math-verify's own comparison, which we use
    assert reference(r"The solution set is $3 < x \le 4$.", "(3,4]") is False  # lighteval's call leaves it off
    assert reference(r"$(3,4]$", r"3 < x \le 4") is True  # ... and accepts the other way round only


def test_inequality_versus_interval_still_needs_the_same_set():
    for response, gold in [
        (r"$\boxed{3 < x < 4}$", "(3,4]"),
        (r"$\boxed{x \ge 3}$", r"(3, \infty)"),
        (r"$\boxed{3 < x \le 5}$", "(3,4]"),
    ]:
        assert every_verdict(response, gold) == {False}
    # The vote groups them both ways round, and keeps a different set apart.
    assert answer_classes(["(3,4]", r"3 < x \le 4", "3<x<4"]) == [0, 0, 2]
    assert answer_classes([r"3 < x \le 4", "(3,4]", "(3,4)"]) == [0, 0, 2]


@pytest.mark.parametrize(
    "response, gold, ours",
    [
        ("The answer is 2 2/3.", "8/3", True),
        ("She needs 2 2/3 cups of flour.", r"\frac{8}{3}", True),
        ("#### 2 2/3", "8/3", True),
        (r"\boxed{2 2/3}", "8/3", True),
        ("$x = -1 1/2$", "-3/2", True),
        ("The answer is 2 2/3.", "2", False),  # never the leading integer
        ("The answer is 2 2/3.", r"\frac{4}{3}", False),  # nor 2 * 2/3, math-verify's plain-text reading
        ("The answer is 2 2/3.", "22/3", False),  # nor the digits glued
        ("#### 2 2/3", "2", False),
    ],
)
def test_plain_text_mixed_numbers_are_their_value(response, gold, ours):
    assert every_verdict(response, gold) == {ours}


def test_mixed_numbers_keys_and_votes():
    assert reference(r"\boxed{2 2/3}", "8/3") is False  # math-verify reads 2 * 2/3
    assert extract_answer("#### 2 2/3") == "2 2/3"
    assert quick_key("2 2/3") == quick_key(r"2\frac{2}{3}") == quick_key("8/3") == ("q", "8/3")
    assert quick_key("1 2") != quick_key("12")  # digits split by a space are not one number
    assert answer_equal("1 2", "12") is False
    assert answer_classes(["2 2/3", "8/3", r"\frac{8}{3}", "2", r"2\frac{2}{3}"]) == [0, 0, 0, 3, 0]
    # Ambiguous forms are left to math-verify as written: an improper fraction, a thousands group.
    assert mathverify.normalize_answer("2 5/3") == "2 5/3" and mathverify.normalize_answer("1 234/567") == "1234/567"


@pytest.mark.parametrize("tower", [r"2^{2^{2^{2^{2^{2}}}}}", "9^9^9^9", r"9^{9^{9^{9}}}", r"10^{10^{10}}"])
def test_power_towers_are_wrong_within_the_time_limit(tower, caplog):
    import time

    assert math_equal(r"\boxed{\sqrt{4}}", "2")  # the helper is up: its start is not part of a check's limit
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="intuitor.tasks.mathverify"):
        assert math_equal(rf"\boxed{{{tower}}}", "4", timeout_s=1.0) is False
    took = time.monotonic() - start
    assert took < 1.0 + 0.5, took  # the limit, + 0.5 s for a loaded machine (it was 7.5 s past a 5 s limit)
    if took > 0.4:  # it hit the limit (the helper's timer is at 0.5 s of 1 s): the row says so, naming the answer
        assert any(tower[:10] in r.getMessage() and "counted as wrong" in r.getMessage() for r in caplog.records)
    assert math_equal(r"\boxed{\frac{1}{2}}", "0.5") is True  # the helper (or a new one) still answers


def test_helper_address_space_is_capped():
    from pathlib import Path

    assert math_equal(r"\boxed{\sqrt{4}}", "2")  # needs SymPy: the helper is up
    limits = Path(f"/proc/{mathverify._helper.proc.pid}/limits").read_text()
    line = next(ln for ln in limits.splitlines() if ln.startswith("Max address space"))
    assert int(line.split()[3]) == mathverify.HELPER_MEMORY_BYTES == 512 << 20


def test_a_stuck_helper_is_killed_at_the_deadline_and_replaced(caplog):
    """C-level work no signal interrupts (simulated: the helper is stopped) ends at timeout + grace, logged."""
    import os
    import signal
    import time

    assert math_equal(r"\boxed{\sqrt{4}}", "2")  # needs SymPy: the helper is up
    stuck = mathverify._helper.proc.pid
    os.kill(stuck, signal.SIGSTOP)
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="intuitor.tasks.mathverify"):
        assert math_equal(r"\boxed{7}", r"\sqrt{49}", timeout_s=0.5) is False  # equal, but never answered
    assert time.monotonic() - start < 0.5 + 0.5
    assert any(
        "helper killed and restarted" in r.getMessage() and "counted as wrong" in r.getMessage()
        for r in caplog.records
    )
    assert mathverify._helper is None  # killed; the next check starts a fresh one
    with caplog.at_level("WARNING", logger="intuitor.tasks.mathverify"):
        assert answer_classes([r"\sqrt{2}", r"\frac{2}{\sqrt{2}}"], timeout_s=0.5) == [0, 0]
    assert mathverify._helper.proc.pid != stuck
    os.kill(mathverify._helper.proc.pid, signal.SIGSTOP)  # the vote's grouping: per step, the quick keys decide
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="intuitor.tasks.mathverify"):
        assert answer_classes([r"\sqrt{2}", "5", r"\frac{2}{\sqrt{2}}", "5.0"], timeout_s=0.5) == [0, 1, 2, 1]
    assert time.monotonic() - start < 0.5 + 0.5
    assert any("grouping answers" in r.getMessage() for r in caplog.records)


# -------------------------------------------------------------------------------------------- votes: grouping

EQUAL_PAIRS = [
    (r"\$18", "18"),
    (r"\text{13}", "13"),
    (r"13\text{ cm}", "13"),
    (r"28\%", "28"),
    (r"\dfrac12", r"\frac{1}{2}"),
    ("\u22123", "-3"),
    ("x=3", "3"),
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"),
    (r"\sqrt{4}", "2"),
    (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"\frac{\pi}{4}", r"\frac{1}{4}\pi"),
    (r"\left(1, 2\right)", "(1,2)"),
    ("1,000", "1000.00"),
    (r"x^2+2x+1", r"(x+1)^2"),
]
DIFFERENT_PAIRS = [
    (r"\frac{1}{2}", r"\frac{1}{3}"),
    (r"\sqrt{2}", r"\sqrt{3}"),
    ("x+1", "x-1"),
    ("28", "0.28"),
    ("1, 2", "1, 3"),
    (r"\frac{\sqrt{3}}{2}", "2"),  # the old default extractor read \boxed{\frac{\sqrt{3}}{2}} as 2
    ("A", "B"),
    (r"\frac{1}{2006!}", r"\frac{1}{2004!}"),
    (r"\sqrt{2}", "1.414213"),  # a number close to another is not it
]


@pytest.mark.parametrize("a, b", EQUAL_PAIRS)
def test_equal_answers_vote_together(a, b):
    assert answer_classes([a, b]) == [0, 0]
    assert answer_classes([b, a]) == [0, 0]
    r = PluralityVoteReward(num_generations=3)  # a third, different answer comes first: a and b must outvote it
    completions = ["\\boxed{7}", f"\\boxed{{{a}}}", f"\\boxed{{{b}}}"]
    assert r(prompts=["q"] * 3, completions=completions) == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("a, b", DIFFERENT_PAIRS)
def test_different_answers_do_not_vote_together(a, b):
    assert answer_classes([a, b]) == [0, 1]
    r = PluralityVoteReward(num_generations=3)
    assert r(prompts=["q"] * 3, completions=[f"\\boxed{{{b}}}", f"\\boxed{{{a}}}", f"\\boxed{{{a}}}"]) == [
        0.0,
        1.0,
        1.0,
    ]


def test_vote_ties_are_deterministic_earliest_first():
    answers = [r"\frac12", "3", "0.5", "3.0"]  # two groups of two: the one whose first sample is earliest wins
    assert vote(answers, 4)[0] == [0] and plurality_labels(answers, 4) == [r"\frac12"]
    r = PluralityVoteReward(num_generations=4)
    completions = [f"\\boxed{{{a}}}" for a in answers]
    assert r(prompts=["q"] * 4, completions=completions) == [1.0, 0.0, 1.0, 0.0]
    flipped = completions[1:] + completions[:1]
    assert r(prompts=["q"] * 4, completions=flipped) == [1.0, 0.0, 1.0, 0.0]  # now "3" comes first
    assert r(prompts=["q"] * 4, completions=completions) == [1.0, 0.0, 1.0, 0.0]  # same input, same result


def test_groups_never_span_prompts_and_none_never_votes():
    answers = ["5", "5.0", None, "6", "5", None, None, None]
    assert answer_classes(answers, group_size=4) == [0, 0, None, 3, 4, None, None, None]
    assert plurality_labels(answers, 4) == ["5", "5"]  # group 2: its only answer
    assert plurality_labels([None] * 4, 4) == [None]


def test_default_extractor_handles_nested_braces():
    assert generic_extract(r"so \boxed{\frac{\sqrt{3}}{2}}") == r"\frac{\sqrt{3}}{2}"
    group = [r"\boxed{\frac{\sqrt{3}}{2}}", r"\boxed{\frac{\sqrt{5}}{2}}", r"\boxed{\frac{\sqrt3}{2}}", "\\boxed{2}"]
    answers = [generic_extract(t) for t in group]
    assert group_agreement(answers, 4) == 0.5  # the two sqrt(3)/2: not all four "2"
    r = PluralityVoteReward(num_generations=4)
    assert r(prompts=["q"] * 4, completions=group) == [1.0, 0.0, 1.0, 0.0]


def test_agreement_uses_the_tasks_own_grouping():
    # Letters (MMLU-Pro) and code compare as strings, never through math-verify.
    assert group_agreement(["A", "A", "B", None], 4, answer_grouper("mmlu_pro")) == 0.5
    code = ["def f():\n    return 1", "def f():\n    return 2", "def g():\n    return 1", None]
    assert answer_grouper("humaneval")(code, 4) == [0, 1, 2, None]
    assert answer_grouper("math500")([r"\frac12", "0.5"], 2) == [0, 0]
    assert answer_grouper(None)([r"\frac12", "0.5"], 2) == [0, 0]


def test_vote_calibration_uses_the_vote_s_grouping():
    from intuitor.training.metrics import vote_calibration

    # \frac12 and 0.5 agree (scores 3, 2) against 3 and no answer (1, 2): pairs 3>1, 3>2, 2>1, 2=2 -> 3.5 / 4.
    # As strings, \frac12 alone would be the plurality: 3 against 2, 1, 2 -> 1.0.
    assert vote_calibration([3.0, 2.0, 1.0, 2.0], [r"\frac12", "0.5", "3", None], 4) == 0.875


def test_plain_numbers_never_need_the_helper(monkeypatch):
    def no_helper(*args, **kwargs):
        raise AssertionError("plain numbers must be grouped without SymPy")

    monkeypatch.setattr(mathverify, "_in_helper", no_helper)
    monkeypatch.setattr(mathverify, "_run_request", no_helper)
    answers = ["18", r"\$18", "18.0", "1,000", "1000", r"\frac{1}{2}", "0.5", "x = 7", "7", None] * 2
    assert answer_classes(answers, group_size=10) == [
        0,
        0,
        0,
        3,
        3,
        5,
        5,
        7,
        7,
        None,
        10,
        10,
        10,
        13,
        13,
        15,
        15,
        17,
        17,
        None,
    ]
    assert quick_key(r"28\%") == quick_key("28") and quick_key("28") != quick_key("0.28")


def test_vote_with_a_pathological_answer_stays_within_the_time_limit():
    import time

    start = time.monotonic()
    # SymPy would build a 370-million-digit integer: the helper is killed, the quick keys decide this call.
    assert answer_classes([r"9^{9^{9^{9}}}", "5", "5.0", r"\sqrt{2}"], timeout_s=0.5) == [0, 1, 1, 3]
    assert time.monotonic() - start < 15
    assert answer_classes([r"\sqrt{2}", r"\frac{2}{\sqrt{2}}"]) == [0, 0]  # a fresh helper took over


# ------------------------------------------------------------------------------ select majority / Borda


def _samples(answers, certainties, correct, task="math500"):
    return [
        {"task": task, "id": "q", "sample": i, "answer": a, "self_certainty": s, "correct": c}
        for i, (a, s, c) in enumerate(zip(answers, certainties, correct))
    ]


def test_select_majority_and_borda_group_equal_answers():
    # 1/2 written three ways (3 samples) vs 1/3 twice: majority picks 1/2, named by its first sample.
    samples = _samples(
        [r"\frac12", "1/3", "0.5", r"\dfrac{1}{3}", r"\dfrac{1}{2}"],
        [0.1, 0.9, 0.2, 0.8, 0.3],
        [True, False, True, False, True],
    )
    assert select_item(samples, "majority") == (("answer", r"\frac12"), True)
    # Borda p=1: ranks by SC: s1 (5, 1/3), s3 (4, 1/3), s4 (3, 1/2), s2 (2, 1/2), s0 (1, 1/2) -> 1/3: 9, 1/2: 6.
    assert select_item(samples, "borda", 1.0) == (("answer", "1/3"), False)
    # p=0 is majority, with the same grouping.
    assert select_item(samples, "borda", 0.0) == select_item(samples, "majority")
    # As strings the five answers would be five groups: majority would fall to the earliest sample by tie.
    strings = select_item(samples, "majority", classes=answer_grouper("mmlu_pro"))
    assert strings == (("answer", r"\frac12"), True)


def test_select_majority_uses_the_vote_s_grouping():
    answers = [r"\$18", "17", "18", "17", r"18\text{ dollars}"]
    samples = _samples(answers, [0.5] * 5, [True, False, True, False, True], task="gsm8k")
    assert select_item(samples, "majority") == (("answer", r"\$18"), True)
    winners, _ = vote(answers, 5, answer_grouper("gsm8k"))
    assert answers[winners[0]] == r"\$18"


def test_answers_have_one_home_that_the_old_paths_re_export():
    """`intuitor.tasks.answers` holds extraction and equivalence; training.metrics and the vote reward still expose
    the names they had (the very same objects, so a vote, a metric and `select` group answers alike)."""
    from intuitor.rewards import plurality_vote
    from intuitor.tasks import answers
    from intuitor.training import metrics

    for name in ("answer_extractor", "answer_grouper", "canonical_answer", "generic_extract", "string_classes"):
        assert getattr(metrics, name) is getattr(answers, name), name
    assert plurality_vote.canonical_answer is answers.canonical_answer
    assert answers.answer_grouper("mmlu_pro") is answers.string_classes
    assert answers.answer_grouper("arithmetic")(["41", "41.0", "x", "$41"], 2) == [0, 0, None, 3]


def test_rewards_and_select_load_without_the_training_package():
    """Rewards sit below training: importing the vote and cluster rewards (and `select`) loads no training module."""
    import subprocess
    import sys

    code = (
        "import sys, intuitor.rewards.plurality_vote, intuitor.rewards.cluster_frequency, intuitor.analysis.select"
        "\nprint(sorted(m for m in sys.modules if m.startswith('intuitor.training')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
