"""Analysis package: hand-computed statistics, selection rules, answer types, and the files each command writes.

Fixtures (tests/fixtures/analysis/) are small hand-made files:
- model_a/samples.jsonl: 4 items x 5 samples (gsm8k q1..q3, math500 q1), answers and self-certainties below.
- model_b/samples.jsonl: one item, no `model` field (label = folder name); correct SC [3, 4, 5], incorrect [1, 2].
- code/samples.jsonl: livecodebench responses, each with its `expected_type`.
- run_online/, run_offline/: training runs (metrics.jsonl, config, completions.jsonl, eval/checkpoint-*/).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from intuitor.analysis import read_jsonl
from intuitor.analysis.answer_types import (
    CODE_WITHOUT_REASONING,
    NO_VALID_CODE,
    REASONING_THEN_CODE,
    answer_type_counts,
    classify_answer,
)
from intuitor.analysis.calibration import analyze_samples, calibration_stats, mann_whitney, u_statistic
from intuitor.analysis.select import select_answers, select_item, selection_accuracy


FIX = Path(__file__).parent / "fixtures" / "analysis"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


# ---------------------------------------------------------------- Mann-Whitney U, effect size, AUROC


def test_mann_whitney_separated_groups_by_hand():
    # Every correct value beats every incorrect one: U = 3 * 2 = 6, AUROC = 1.
    # No ties: sigma^2 = n1 n2 (N + 1) / 12 = 6 * 6 / 12 = 3, Z = (6 - 3) / sqrt(3) = sqrt(3), r = sqrt(3 / 5).
    # Exact two-sided p: U = 6 is 1 of C(5, 2) = 10 equally likely arrangements, doubled: 0.2.
    r = mann_whitney([3, 4, 5], [1, 2])
    assert r.u_statistic == 6.0
    assert r.auroc == 1.0
    assert r.z == pytest.approx(math.sqrt(3))
    assert r.effect_size_r == pytest.approx(math.sqrt(0.6))
    assert r.p_value == pytest.approx(0.2)
    assert (r.n_correct, r.n_incorrect) == (3, 2)


def test_mann_whitney_with_ties_by_hand():
    # Correct [1, 2, 2] vs incorrect [2, 3]. Pairs won by correct: (2 vs 2) twice at 1/2 each -> U = 1.
    # AUROC = 1 / 6. Pooled 1, 2, 2, 2, 3: one tie group of t = 3 -> sum(t^3 - t) = 24, N = 5.
    # sigma^2 = 6 / 12 * (6 - 24 / 20) = 2.4; Z = (1 - 3) / sqrt(2.4); r = Z / sqrt(5) = -2 / sqrt(12) = -1/sqrt(3).
    r = mann_whitney([1, 2, 2], [2, 3])
    assert r.u_statistic == 1.0
    assert r.auroc == pytest.approx(1 / 6)
    assert r.z == pytest.approx(-2 / math.sqrt(2.4))
    assert r.effect_size_r == pytest.approx(-1 / math.sqrt(3))
    # With ties scipy uses the normal approximation with continuity correction: z = (2 - 0.5) / sqrt(2.4).
    assert r.p_value == pytest.approx(math.erfc(1.5 / math.sqrt(2.4) / math.sqrt(2)))


def test_u_statistic_matches_scipy_and_pairwise_count():
    from scipy.stats import mannwhitneyu

    x = [0.1, 0.5, 0.5, 0.9, 1.3, 2.0, 2.0]
    y = [0.5, 0.2, 2.0, 0.05, 1.0]
    pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)
    assert u_statistic(x, y) == pairs == mannwhitneyu(x, y).statistic


def test_mann_whitney_degenerate_cases():
    tied = mann_whitney([1.0, 1.0], [1.0])
    assert (tied.u_statistic, tied.auroc, tied.z, tied.effect_size_r, tied.p_value) == (1.0, 0.5, 0.0, 0.0, 1.0)
    empty = mann_whitney([1.0, 2.0], [])
    assert math.isnan(empty.auroc) and math.isnan(empty.p_value) and empty.n_correct == 2


def test_calibration_stats_skips_unscored_rows():
    rows = [
        {"correct": True, "self_certainty": 3.0},
        {"correct": False, "self_certainty": 1.0},
        {"correct": None, "self_certainty": 2.0},
        {"correct": True, "self_certainty": float("nan")},
        {"correct": True},
    ]
    s = calibration_stats(rows)
    assert (s["n_correct"], s["n_incorrect"], s["n_skipped"]) == (1, 1, 3)
    assert s["auroc"] == 1.0


def test_analyze_samples_labels_and_per_task():
    res = analyze_samples([FIX / "model_a" / "samples.jsonl", FIX / "model_b", FIX / "code" / "samples.jsonl"])
    assert list(res) == ["model-a", "model_b", "code-ckpt"]  # `model` field, else folder name
    b = res["model_b"]
    assert (b["u_statistic"], b["auroc"], b["n_correct"], b["n_incorrect"]) == (6.0, 1.0, 3, 2)
    assert b["effect_size_r"] == pytest.approx(math.sqrt(0.6))
    assert set(res["model-a"]["by_task"]) == {"gsm8k", "math500"}
    assert res["model-a"]["by_task"]["math500"]["n_correct"] == 1
    assert "answer_types" not in res["model-a"]  # math tasks: no answer types by default
    assert res["code-ckpt"]["answer_types"]["livecodebench"]["n"] == 8


# ---------------------------------------------------------------- best-of-N selection


# model_a, hand-computed (answer, self-certainty, correct) per sample:
#   gsm8k q1: 1 .2 T | 2 .9 F | 1 .3 T | 1 .1 T | 2 .8 F
#   gsm8k q2: 7 1.5 T | 8 .5 F | 9 .4 F | 8 .3 F | 7 1.2 T
#   gsm8k q3: 3 .5 F | 4 .8 T | 3 .1 F | 4 .7 T | 3 .2 F
#   math500 q1: None .1 F | 3 .2 F | 4 .9 T | 3 .5 F | None .95 F
@pytest.fixture(scope="module")
def model_a():
    return read_jsonl(FIX / "model_a" / "samples.jsonl")


def _picked(rows, method, power=1.0):
    return {(s.task, s.id): (s.answer, s.correct) for s in select_answers(rows, method, power)}


def test_self_certainty_selection_by_hand(model_a):
    assert _picked(model_a, "self_certainty") == {
        ("gsm8k", "q1"): ("2", False),  # sample 1, SC .9
        ("gsm8k", "q2"): ("7", True),  # sample 0, SC 1.5
        ("gsm8k", "q3"): ("4", True),  # sample 1, SC .8
        ("math500", "q1"): (None, False),  # sample 4, SC .95, nothing extracted
    }


def test_majority_by_hand(model_a):
    assert _picked(model_a, "majority") == {
        ("gsm8k", "q1"): ("1", True),  # 3 votes vs 2
        ("gsm8k", "q2"): ("7", True),  # 7 and 8 tie at 2: 7 appears first (sample 0)
        ("gsm8k", "q3"): ("3", False),  # 3 votes vs 2
        ("math500", "q1"): ("3", False),  # 2 votes; each null answer is its own group of 1
    }


def test_borda_p1_by_hand(model_a):
    # q1: ranks by SC: s1 (5 votes, "2"), s4 (4, "2"), s2 (3, "1"), s0 (2, "1"), s3 (1, "1") -> "2": 9, "1": 6.
    # q3: s1 (5, "4"), s3 (4, "4"), s0 (3, "3"), s4 (2, "3"), s2 (1, "3") -> "4": 9, "3": 6.
    # math500 q1: s4 (5, null#4), s2 (4, "4"), s3 (3, "3"), s1 (2, "3"), s0 (1, null#0) -> "3" and null#4 tie at 5:
    #   "3" first appears at sample 1, before sample 4 -> "3".
    assert _picked(model_a, "borda", 1.0) == {
        ("gsm8k", "q1"): ("2", False),
        ("gsm8k", "q2"): ("7", True),  # s0 5 + s4 4 = 9 for "7"
        ("gsm8k", "q3"): ("4", True),
        ("math500", "q1"): ("3", False),
    }


def test_borda_p0_is_majority(model_a):
    assert _picked(model_a, "borda", 0.0) == _picked(model_a, "majority")
    # and with a large power Borda follows the most certain sample wherever that sample has an answer
    assert _picked(model_a, "borda", 8.0)[("gsm8k", "q1")] == _picked(model_a, "self_certainty")[("gsm8k", "q1")]


def test_selection_accuracy_and_baselines(model_a):
    res = selection_accuracy(model_a, power=1.0)
    assert res["self_certainty"]["accuracy"] == 0.5 and res["self_certainty"]["n_items"] == 4
    assert res["majority"]["accuracy"] == 0.5
    assert res["borda"]["accuracy"] == 0.5 and res["borda"]["power"] == 1.0
    assert res["pass@1"]["accuracy"] == pytest.approx((3 / 5 + 2 / 5 + 2 / 5 + 1 / 5) / 4)
    assert res["pass@k"]["accuracy"] == 1.0
    assert res["majority"]["by_task"]["gsm8k"] == {"accuracy": pytest.approx(2 / 3), "n_items": 3}
    assert res["k"] == {"min": 5, "max": 5}


def test_selected_answer_correct_if_any_same_answer_sample_correct():
    samples = [
        {"answer": "x", "self_certainty": 0.9, "correct": False},
        {"answer": " x ", "self_certainty": 0.1, "correct": True},  # same answer after stripping
        {"answer": "y", "self_certainty": 0.5, "correct": False},
    ]
    assert select_item(samples, "self_certainty") == (("answer", "x"), True)
    with pytest.raises(ValueError, match="Unknown selection method 'best'"):
        select_item(samples, "best")


# ---------------------------------------------------------------- answer types


@pytest.mark.parametrize(
    "response, expected",
    [
        ("The answer is to iterate over the list.", NO_VALID_CODE),
        ("42", NO_VALID_CODE),  # a valid Python expression, but not a program
        ("", NO_VALID_CODE),
        (None, NO_VALID_CODE),
        ("```python\ndef f(:\n```", NO_VALID_CODE),  # does not parse
        ("```python\nprint(1)", NO_VALID_CODE),  # truncated: fence never closed
        ("```javascript\nconsole.log(1);\n```", NO_VALID_CODE),
        ("```python\nx = 1\n```", CODE_WITHOUT_REASONING),
        ("Here is my solution in Python:\n```\nx = 1\n```", CODE_WITHOUT_REASONING),  # 6 words < 10
        ("def f(x):\n    return x", CODE_WITHOUT_REASONING),  # unfenced program
        ("one two three four five six seven eight nine ten\n```python\nx = 1\n```", REASONING_THEN_CODE),
        ("one two three four five six seven eight nine\n```python\nx = 1\n```", CODE_WITHOUT_REASONING),
        ("```python\nx = 1\n```\n" + "then a long explanation after the code " * 3, CODE_WITHOUT_REASONING),
    ],
)
def test_classify_answer(response, expected):
    assert classify_answer(response) == expected


def test_answer_types_min_words_and_fixture_counts():
    assert classify_answer("Sort then scan.\n```python\nx = 1\n```", min_reasoning_words=3) == REASONING_THEN_CODE
    rows = read_jsonl(FIX / "code" / "samples.jsonl")
    for row in rows:
        assert classify_answer(row["response"]) == row["expected_type"], row["response"]
    counts = answer_type_counts(rows)
    assert counts["n"] == 8
    assert counts["counts"] == {NO_VALID_CODE: 2, CODE_WITHOUT_REASONING: 4, REASONING_THEN_CODE: 2}
    assert sum(counts["fractions"].values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- curves


def test_curves_write_pngs_for_present_families(tmp_path):
    from intuitor.analysis.curves import load_runs, plot_curves, summarize_metrics

    runs = load_runs([FIX / "run_online", FIX / "run_offline"])
    assert list(runs) == ["run_online", "run_offline"]
    written = plot_curves(runs, tmp_path)
    for fam in ("rewards", "accuracy", "self_certainty", "std", "length", "entropy", "kl", "repetition", "agreement"):
        assert _is_png(written[fam]), fam
    assert _is_png(written["grid"]) and written["grid"].name == "curves.png"
    # offline run alone: only what it logged is plotted
    offline = plot_curves([FIX / "run_offline"], tmp_path / "offline")
    assert set(offline) == {"rewards", "accuracy", "self_certainty", "kl", "grid"}
    s = summarize_metrics(runs["run_online"])
    assert s["metrics"]["kl"]["last"] == pytest.approx(0.036) and s["metrics"]["kl"]["n"] == 6
    assert s["unplotted"] == ["num_tokens"]


@pytest.mark.parametrize(
    "key, family",
    [
        ("rewards/self_certainty/mean", "self_certainty"),  # TRL's reward log
        ("reward/self_certainty/mean", "self_certainty"),  # namespaced
        ("self_certainty/mean", "self_certainty"),  # IntuitorTrainer's rollout statistics
        ("self_certainty/std", "std"),
        ("rewards/accuracy/mean", "accuracy"),
        ("rewards/format/raw_mean", "rewards"),
        ("token_entropy/mean", "entropy"),
        ("completions/repetition_rate", "repetition"),
        ("completions/max_terminated_length", "length"),
        ("alignment/trajectory_entropy/auroc", "alignment_auroc"),  # IntuitorTrainer, when golds exist
        ("alignment/self_certainty/top1", "alignment_top1"),
        ("clip_ratio/region_mean", None),
        ("epoch", None),
    ],
)
def test_metric_families(key, family):
    from intuitor.analysis.curves import family_of

    assert family_of(key) == family


def test_read_metrics_tolerates_partial_last_line(tmp_path):
    from intuitor.analysis.curves import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 2, "kl": 0.2}\n{"step": 1, "kl": 0.1}\n{"step": 3, "kl"')
    with pytest.warns(UserWarning, match="malformed last line"):
        rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]
    (tmp_path / "metrics.jsonl").write_text('{"step": 1\n{"step": 2}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:1"):
        read_metrics(tmp_path)


# ---------------------------------------------------------------- report


def test_report_sections_and_escaping(tmp_path):
    from intuitor.analysis.report import build_report

    out = build_report(FIX / "run_online", tmp_path / "r.html")
    page = out.read_text()
    for sid in ("config", "curves", "evaluation", "calibration", "answer-types", "completions"):
        assert f'<section id="{sid}">' in page
    assert page.count('src="data:image/png;base64,') == 3  # curves grid, calibration, answer types
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; escaped" in page  # from config.yaml
    # checkpoints in numeric order, with their scores
    assert page.index("checkpoint-2") < page.index("checkpoint-10")
    assert "<td>25.0%</td>" in page and "<td>75.0%</td>" in page
    # completions at several steps
    assert all(f"<b>step {s}</b>" in page for s in (1, 3, 6))


def test_report_on_a_sparse_run(tmp_path):
    from intuitor.analysis.report import build_report

    page = build_report(FIX / "run_offline", tmp_path / "r.html").read_text()
    assert "config.json" in page and "No evaluation in the run folder" in page and "No completions.jsonl" in page
    # each empty section names the command that fills it, with flags `intuitor eval` has
    run = (FIX / "run_offline").as_posix()
    assert f"intuitor eval {run} --tasks TASK --output-dir {run}/eval/greedy" in page
    assert f"--samples 8 --temperature 1.0 --output-dir {run}/eval/sampled" in page
    assert page.count("data:image/png;base64,") == 1
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "missing")


# ---------------------------------------------------------------- CLI functions


def test_cli_commands_write_json_and_pngs(tmp_path):
    from typer.testing import CliRunner

    from intuitor.analysis.cli import app

    runner = CliRunner()
    a = runner.invoke(
        app,
        [
            "analyze",
            str(FIX / "model_a"),
            str(FIX / "model_b"),
            str(FIX / "code"),
            "--out-dir",
            str(tmp_path / "an"),
            "--json",
            str(tmp_path / "a.json"),
        ],
    )
    assert a.exit_code == 0, a.output
    data = json.loads((tmp_path / "a.json").read_text())
    assert list(data) == ["model-a", "model_b", "code-ckpt"]
    for key in ("p_value", "effect_size_r", "auroc", "u_statistic", "n_correct", "n_incorrect"):
        assert key in data["model_b"]
    assert data["model_b"]["u_statistic"] == 6.0
    assert _is_png(tmp_path / "an" / "calibration.png") and _is_png(tmp_path / "an" / "answer_types.png")

    s = runner.invoke(
        app,
        [
            "select",
            str(FIX / "model_a" / "samples.jsonl"),
            "--method",
            "borda",
            "-m",
            "majority",
            "--power",
            "0",
            "--json",
            str(tmp_path / "s.json"),
        ],
    )
    assert s.exit_code == 0, s.output
    sel = json.loads((tmp_path / "s.json").read_text())
    assert set(sel) == {"borda", "majority", "pass@1", "pass@k", "k"}
    assert sel["borda"]["accuracy"] == sel["majority"]["accuracy"] and sel["borda"]["n_items"] == 4

    c = runner.invoke(
        app,
        [
            "curves",
            str(FIX / "run_online"),
            str(FIX / "run_offline"),
            "-o",
            str(tmp_path / "c"),
            "--json",
            str(tmp_path / "c.json"),
        ],
    )
    assert c.exit_code == 0, c.output
    assert json.loads((tmp_path / "c.json").read_text())["runs"]["run_offline"]["n_rows"] == 3

    r = runner.invoke(app, ["report", str(FIX / "run_online"), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").stat().st_size > 10_000

    bad = runner.invoke(app, ["select", str(tmp_path / "nope.jsonl")])
    assert bad.exit_code == 1 and "file not found" in bad.output


def test_cli_module_imports_no_torch_no_matplotlib():
    code = (
        "import sys, intuitor.analysis.cli, intuitor.analysis.calibration, intuitor.analysis.select, "
        "intuitor.analysis.curves, intuitor.analysis.report, intuitor.analysis.answer_types, "
        "intuitor.analysis.compare, intuitor.analysis.preflight, intuitor.layout\n"
        "bad = [m for m in ('torch', 'matplotlib', 'scipy', 'trl', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- layout, comparison statistics, comparison report


def _eval(folder: Path, rows: list[dict], task: str = "addition") -> Path:
    """An evaluation folder as `intuitor eval` writes it: samples.jsonl and results.json (score, n)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "samples.jsonl").write_text("".join(json.dumps({"task": task, **r}) + "\n" for r in rows))
    score = sum(r["correct"] for r in rows) / len(rows)
    (folder / "results.json").write_text(json.dumps({"model": "m", "tasks": {task: {"score": score, "n": len(rows)}}}))
    return folder


def test_layout_writes_and_finds_every_documented_place(tmp_path):
    from intuitor.layout import eval_dir, find_evals

    run = tmp_path / "run"
    row = [{"id": "a", "sample": 0, "correct": True}]
    for where in (
        eval_dir(run, "greedy"),
        eval_dir(run, "sampled", "checkpoint-10"),
        run / "eval" / "checkpoint-2",
        eval_dir(run, "gsm8k", "final"),
        run / "eval" / "empty-not-an-eval",
    ):
        if "empty" in where.name:
            where.mkdir(parents=True)
        else:
            _eval(where, row)
    assert eval_dir(run, "gsm8k", "final") == eval_dir(run, "gsm8k") == run / "eval" / "gsm8k"
    found = [(r.checkpoint, r.setting, r.label) for r in find_evals(run)]
    assert found == [
        ("checkpoint-2", "default", "checkpoint-2"),
        ("checkpoint-10", "sampled", "checkpoint-10 / sampled"),
        ("final", "greedy", "greedy"),
        ("final", "gsm8k", "gsm8k"),
    ]
    # the demo's earlier nesting eval/final/SETTING is read as the final model's SETTING
    old = tmp_path / "old"
    _eval(old / "eval" / "final" / "greedy", row)
    assert [(r.checkpoint, r.label) for r in find_evals(old)] == [("final", "greedy")]
    # a folder that is itself an evaluation (intuitor eval --output-dir X) is a run with one setting named X
    assert [r.label for r in find_evals(old / "eval" / "final" / "greedy")] == ["greedy"]
    assert find_evals(tmp_path / "nothing") == []


def test_wilson_and_exact_mcnemar_by_hand():
    from intuitor.analysis.compare import mcnemar_exact, paired, task_accuracy, wilson_interval

    # Wilson, z = 1.96: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n) with p = 0.8, n = 10
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and all(math.isnan(v) for v in wilson_interval(0, 0))
    # exact McNemar: 6 discordant pairs all one way: p = 2 * 0.5^6; 3 vs 3: p = 1
    assert mcnemar_exact(0, 6) == pytest.approx(0.03125) and mcnemar_exact(3, 3) == pytest.approx(1.0)
    base = [{"task": "t", "id": str(i), "sample": 0, "correct": c} for i, c in enumerate([1, 1, 0, 0, 0, 1])]
    run = [{"task": "t", "id": str(i), "sample": 0, "correct": c} for i, c in enumerate([1, 0, 1, 1, 1])]
    for r in base + run:
        r["correct"] = bool(r["correct"])
    p = paired(base, run)["t"]  # 5 common items; b = right for the base only (id 1), c = for the run only (2, 3, 4)
    assert (p["n"], p["b"], p["c"]) == (5, 1, 3) and p["delta"] == pytest.approx(2 / 5)
    assert p["p"] == pytest.approx(0.625)  # 2 * P(X <= 1), X ~ Bin(4, 1/2) = 2 * 5/16
    acc = task_accuracy(run)["t"]
    assert (acc["k"], acc["n"], acc["samples_per_item"]) == (4, 5, 1)
    k2 = [{**r, "sample": 1} for r in run]
    assert paired(base, run + k2) == {}  # K > 1: no paired test


def _comparison_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    base, a, b = tmp_path / "base", tmp_path / "intuitor", tmp_path / "grpo"
    rows = lambda flags, sc: [  # noqa: E731
        {
            "id": f"q{i}",
            "sample": 0,
            "correct": bool(c),
            "self_certainty": s,
            "prompt": f"<b>prompt {i}</b>",
            "response": f"answer from {{}} {i}",
            "answer": str(i),
        }
        for i, (c, s) in enumerate(zip(flags, sc))
    ]
    for folder, flags in ((base, [1, 0, 0, 0, 1, 0]), (a, [1, 1, 1, 1, 1, 0]), (b, [1, 1, 0, 1, 1, 1])):
        data = rows(flags, [1.0 + f + 0.1 * i for i, f in enumerate(flags)])
        for r in data:
            r["response"] = r["response"].format(folder.name)
        _eval(folder / "eval" / "greedy", data)
    for folder, lr in ((a, 1e-5), (b, 2e-5)):
        (folder / "config.json").write_text(
            json.dumps(
                {
                    "config": {
                        "learning_rate": lr,
                        "beta": 0.02,
                        "output_dir": str(folder),
                        "answer_extractor": "addition",
                    },
                    "versions": {"trl": "1.16.0"},
                }
            )
        )
        (folder / "metrics.jsonl").write_text(
            "".join(
                json.dumps({"step": s, "reward": 0.1 * s, "completions/mean_length": 20 + s}) + "\n"
                for s in range(1, 6)
            )
        )
        (folder / "completions.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "step": s,
                        "prompt": [{"role": "user", "content": "1 + 2"}],
                        "completion": [{"role": "assistant", "content": f"{folder.name} says {s}"}],
                        "self_certainty": 9.5,
                        "advantage": 0.5,
                    }
                )
                + "\n"
                for s in range(1, 6)
            )
        )
    return base, a, b


def test_comparison_report_deltas_paired_tests_config_diff_and_side_by_side(tmp_path):
    from intuitor.analysis.report import build_report

    base, a, b = _comparison_runs(tmp_path)
    page = build_report([base, a, b], tmp_path / "compare.html").read_text()
    assert "<title>intuitor report: base vs intuitor, grpo</title>" in page
    # base 2/6, intuitor 5/6: +50.0 points; discordant b = 0, c = 3: McNemar p = 0.25; Wilson of 5/6
    assert "<td>33.3%</td>" in page and "<td>83.3%</td>" in page and "<td>+50.0</td>" in page
    assert "<td>0 / 3</td><td>0.25</td>" in page
    assert "<td>83.3%</td><td>43.6&ndash;97.0%</td>" in page
    # config diff: learning_rate differs, beta and output_dir (ignored) do not show
    diff = page[page.index("Config differences") :]
    diff = diff[: diff.index("</table>")]
    assert "learning_rate" in diff and "1e-05" in diff and "2e-05" in diff
    assert ">beta<" not in diff and "output_dir" not in diff
    # the same prompt answered by each run, in one row; training rollouts of both runs at steps 1, 3, 5
    side = page[page.index("the same prompts, side by side") :]
    assert side.index("answer from base 0") < side.index("answer from intuitor 0") < side.index("answer from grpo 0")
    assert "&lt;b&gt;prompt 0&lt;/b&gt;" in side
    assert all(f"<b>step {s}</b>" in page for s in (1, 3, 5)) and "<b>step 2</b>" not in page
    assert "intuitor says 5" in page and "grpo says 5" in page
    # curves overlaid (one grid) and one calibration panel per run: two images
    assert page.count('src="data:image/png;base64,') == 2
    assert "No training curves for base" in page


def test_comparison_report_names_the_command_for_a_missing_evaluation(tmp_path):
    from intuitor.analysis.report import build_report

    base, a, _ = _comparison_runs(tmp_path)
    _eval(a / "eval" / "sampled", [{"id": "q0", "sample": 0, "correct": True}])
    page = build_report([base, a], tmp_path / "c.html").read_text()
    assert f"intuitor eval {base.as_posix()} --tasks addition --output-dir {base.as_posix()}/eval/sampled" in page


def test_report_cli_takes_several_runs(tmp_path):
    from typer.testing import CliRunner

    from intuitor.analysis.cli import app

    base, a, b = _comparison_runs(tmp_path)
    r = CliRunner().invoke(
        app, ["report", str(base), str(a), str(b), "-o", str(tmp_path / "c.html"), "--json", str(tmp_path / "c.json")]
    )
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["base"] == str(base) and data["runs"][str(a)]["evals"] == {"greedy": str(a / "eval" / "greedy")}
    assert data["runs"][str(a)]["completions"] is True and data["runs"][str(base)]["metrics"] is False
    bad = CliRunner().invoke(app, ["report", str(base), str(tmp_path / "missing")])
    assert bad.exit_code == 1 and "run folder not found" in bad.output


# ---------------------------------------------------------------- preflight


def _pf_rows(right_sc, wrong_sc, k):
    """Items of k samples: item i's samples are right (answer '1') or wrong (answer '2')."""
    rows, flat = [], [(True, s) for s in right_sc] + [(False, s) for s in wrong_sc]
    for n, (ok, s) in enumerate(flat):
        rows.append(
            {
                "task": "addition",
                "id": f"q{n // k}",
                "sample": n % k,
                "correct": ok,
                "self_certainty": s,
                "answer": "1" if ok else "2",
                "truncated": n == 0,
                "num_tokens": 10,
            }
        )
    return rows


def test_preflight_stats_and_verdict_by_hand():
    from intuitor.analysis.preflight import preflight_stats, summary_line

    # 2 items x 4 samples: item q0 = [R .9, R .8, R .7, W .1], item q1 = [W .2, W .3, W .4, R .6]
    rows = _pf_rows([0.9, 0.8, 0.7], [0.1, 0.2, 0.3, 0.4, 0.0], 4)
    rows[7].update(correct=True, self_certainty=0.6, answer="1")
    s = preflight_stats(rows)
    assert (s["k"], s["n_items"], s["n_correct"], s["n_incorrect"]) == (4, 2, 4, 4)
    assert s["auroc"] == 1.0  # every right sample (.9 .8 .7 .6) above every wrong one (.1 .2 .3 .4)
    assert s["pass@1"] == 0.5 and s["best_of_4_self_certainty"] == 1.0 and s["majority_of_4"] == 0.5
    assert s["agreement"] == 0.75 and s["truncation_rate"] == 1 / 8 and s["mean_length"] == 10
    assert s["verdict"] == "self-certainty separates right from wrong (AUROC 1.00): INTUITOR can help"
    assert "p = 2.9e-02" in s["reasons"][0]  # exact Mann-Whitney, 4 vs 4 fully separated: p = 2/70
    assert summary_line(s).startswith("self-certainty AUROC right vs wrong = 1.00 (p = 2.9e-02); one sample 50.0%")


def test_preflight_verdicts_separate_and_edge_cases():
    from intuitor.analysis.preflight import preflight_stats, verdict

    s = preflight_stats(_pf_rows([5 + 0.1 * i for i in range(20)], [0.1 * i for i in range(20)], 8))
    assert s["verdict"] == "self-certainty separates right from wrong (AUROC 1.00): INTUITOR can help"
    assert any("best of 8 by self-certainty" in r for r in s["reasons"])
    base = {"auroc": float("nan"), "p_value": float("nan"), "effect_size_r": float("nan"), "k": 8}
    assert verdict({**base, "n_correct": 0, "n_incorrect": 0})[0].startswith("no gold answers")
    assert verdict({**base, "n_correct": 0, "n_incorrect": 5})[0].startswith("no sample is right")
    assert verdict({**base, "n_correct": 5, "n_incorrect": 0})[0] == "every sample is right: nothing to learn here"
    weak = preflight_stats(_pf_rows([0.1 * i for i in range(20)], [0.1 * i + 0.05 for i in range(20)], 8))
    assert weak["auroc"] < 0.6
    expected = f"self-certainty does not separate right from wrong (AUROC {weak['auroc']:.2f}): expect little"
    assert weak["verdict"] == expected


# ---------------------------------------------------------------- completions.jsonl (training writes, the report reads)


def test_completions_callback_is_bounded_once_per_step_and_resumable(tmp_path):
    from collections import deque
    from types import SimpleNamespace

    from intuitor.training.callbacks import CompletionsJsonlCallback

    logs = {
        "prompt": deque(["p1"] * 6),
        "completion": deque(["x" * 50] * 6),
        "rewards": {"self_certainty": deque([0.5] * 6), "accuracy": deque([1.0] * 6)},
        "advantages": deque([float("nan")] + [0.1] * 5),
    }
    cb = CompletionsJsonlCallback(logs, per_step=4, max_chars=10)
    args = SimpleNamespace(output_dir=str(tmp_path))
    state = SimpleNamespace(global_step=1, is_world_process_zero=True)
    cb.on_log(args, state, None, logs={"loss": 0.1})
    cb.on_log(args, state, None, logs={"train_runtime": 3.0})  # end-of-training summary of the same step: skipped
    state.global_step = 2
    cb.on_log(args, state, None, logs={"eval_loss": 0.1})  # evaluation logs: skipped
    cb.on_log(args, state, None, logs={"loss": 0.1})
    rows = read_jsonl(tmp_path / "completions.jsonl")
    assert [r["step"] for r in rows] == [1] * 4 + [2] * 4
    assert rows[0] == {
        "step": 1,
        "prompt": "p1",
        "completion": "x" * 10,
        "self_certainty": 0.5,
        "accuracy": 1.0,
        "advantage": None,
    }
    state.global_step = 1  # resumed from a checkpoint at step 1: step 2's rows belong to the abandoned run
    CompletionsJsonlCallback(logs).on_train_begin(args, state, None)
    assert [r["step"] for r in read_jsonl(tmp_path / "completions.jsonl")] == [1] * 4


def test_run_config_is_read_beside_the_models_own_config_json(tmp_path):
    """A finished `intuitor train` folder holds both the run's config (run_config.json) and the saved model's
    config.json; folders of older runs kept the run config in config.json, and are still read."""
    from intuitor.layout import find_config, read_run_config

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": 259}))
    assert read_run_config(tmp_path) == {}  # a model's config is not a run config
    (tmp_path / "run_config.json").write_text(json.dumps({"config": {"beta": 0.01}, "versions": {}}))
    assert read_run_config(tmp_path) == {"beta": 0.01} and find_config(tmp_path).name == "run_config.json"
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"config": {"beta": 0.02}}))
    assert read_run_config(old) == {"beta": 0.02}
