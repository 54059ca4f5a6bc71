"""The benchmark tasks: loading the real local files, prompts, extraction, scoring with hand-made responses, errors.

Code tasks run their checks in the real sandbox (a few tenths of a second each); math checks run through the
math-verify helper process. No network: the AlpacaEval judge talks to a fake server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import pickle
import threading
import time
import zlib
from pathlib import Path

import pytest

from intuitor.tasks import get_task, load_all
from intuitor.tasks.alpaca_eval import JUDGE_SYSTEM, parse_judgement, to_alpaca_eval
from intuitor.tasks.cruxeval import extract_output
from intuitor.tasks.humaneval import extract_code
from intuitor.tasks.livecodebench import LiveCodeBench, decode_tests
from intuitor.tasks.livecodebench import extract_code as lcb_extract_code
from intuitor.tasks.math_train import MATH_SYSTEM_PROMPTS
from intuitor.tasks.mathverify import extract_boxed, extract_gsm8k_gold, math_equal
from intuitor.tasks.mmlu_pro import extract_letter


LCB_FIXTURE = Path(__file__).parent / "fixtures" / "livecodebench"
MINE = ("gsm8k", "math500", "math", "cruxeval", "humaneval", "livecodebench", "mmlu_pro", "alpaca_eval")


def fence(code: str, tag: str = "python") -> str:
    return f"Let me think.\n```{tag}\n{code}\n```\nDone."


# ------------------------------------------------------------------------------------------------ math-verify


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        (r"\frac{1}{2}", "0.5", True),
        ("0.5", r"\frac{1}{2}", True),
        (r"so the answer is $\boxed{\frac12}$.", "0.5", True),
        (r"\boxed{2}", "2.0", True),
        (r"\boxed{1,234}", "1234", True),
        ("In total she pays 1,234 dollars. The answer is 1234.", "1234", True),
        (r"first \boxed{4}, then on reflection \boxed{5}", "5", True),  # the last box, not the set {4, 5}
        (r"first \boxed{5}, then on reflection \boxed{4}", "5", False),
        (r"\boxed{x = 3}", "3", True),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)", True),
        (r"\boxed{(3, \pi)}", r"\left( 3, \frac{\pi}{2} \right)", False),
        (r"\boxed{\dfrac{\sqrt{3}}{2}}", r"\frac{\sqrt3}2", True),
        (r"\boxed{3}", "4", False),
        ("", "4", False),
        ("I do not know.", "4", False),
    ],
)
def test_math_equal(response, gold, expected):
    assert math_equal(response, gold) is expected


def test_math_equal_in_process_and_in_threads():
    assert math_equal(r"\boxed{\frac{1}{2}}", "0.5", isolate=False) is True
    assert math_equal(r"\boxed{3}", "0.5", isolate=False) is False
    results = []
    workers = [
        threading.Thread(target=lambda iso=iso: results.append(math_equal(r"\boxed{2}", "2.0", isolate=iso)))
        for iso in (True, False)  # off the main thread, isolate=False falls back to the helper
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert results == [True, True]


def test_math_equal_pathological_answer_times_out_and_helper_recovers():
    start = time.monotonic()
    # SymPy evaluates 9^(9^(9^9)) in C: no signal can stop it, only killing the helper does.
    assert math_equal(r"\boxed{9^{9^{9^{9}}}}", "5", timeout_s=0.5) is False
    assert time.monotonic() - start < 8
    assert math_equal(r"\boxed{5}", "5") is True  # a fresh helper took over


def test_extract_boxed_and_gsm8k_gold():
    assert extract_boxed(r"x \boxed{\frac{a}{\sqrt{b}}} y") == r"\frac{a}{\sqrt{b}}"
    assert extract_boxed(r"\fbox{7} and later \boxed{8}") == "8"
    assert extract_boxed(r"\boxed{unclosed") is None and extract_boxed("plain") is None
    assert extract_gsm8k_gold("so 1000 + 234\n#### 1,234") == "1234"
    with pytest.raises(ValueError, match="####"):
        extract_gsm8k_gold("no final line")


# ------------------------------------------------------------------------------------------------ math tasks


def test_gsm8k(data_dir):
    task = get_task("gsm8k", data_dir=str(data_dir))
    assert len(task.load()) == 1319
    rows = task.load(limit=3)
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert [r["answer"] for r in rows] == ["18", "3", "70000"]
    assert rows[0]["prompt"][0] == {"role": "system", "content": MATH_SYSTEM_PROMPTS["qwen2.5-3b"]}
    assert rows[0]["prompt"][1]["content"].startswith("Question: Janet\u2019s ducks lay 16 eggs")  # lighteval's query
    assert rows[0]["prompt"][1]["content"].endswith("at the farmers' market?\nAnswer:")
    assert task.stop_sequences == ("Question:",)
    assert task.score(r"She makes 9 * 2 = 18 dollars. \boxed{18}", rows[0])
    assert task.score("She makes $18 every day. The answer is 18.", rows[0])
    assert task.score(r"\boxed{70,000}", rows[2]) and task.score(r"\boxed{70000.0}", rows[2])
    assert not task.score(r"\boxed{16}", rows[0])
    assert task.extract(r"... \boxed{18}") == "18" and task.extract("no number") is None


def test_math500(data_dir):
    task = get_task("math500", data_dir=str(data_dir))
    assert len(task.load()) == 500
    row = task.load(limit=1)[0]
    assert row["id"] == "test/precalculus/807.json" and row["answer"] == r"\left( 3, \frac{\pi}{2} \right)"
    assert set(row) >= {"id", "prompt", "answer", "subject", "level"}
    assert task.score(r"The polar coordinates are $\boxed{\left(3, \frac{\pi}{2}\right)}$.", row)
    assert not task.score(r"$\boxed{(3, \pi)}$", row)


def test_math_train(data_dir, tmp_path):
    task = get_task("math", data_dir=str(data_dir))
    assert len(task.load()) == 7500
    row = task.load(limit=1)[0]
    assert row["answer"] == "0" and row["level"] == "Level 5" and row["type"] == "Algebra"
    assert row["prompt"][0]["content"].endswith("Please stop generation immediately after outputing the box.")
    small = get_task("math", data_dir=str(data_dir), system_prompt="qwen2.5-1.5b").load(limit=1)[0]
    assert small["prompt"][0]["content"].endswith(r"\boxed{Your Answer}.")
    # rows in the hub's layout: the answer is the last box of the worked solution
    hub_like = tmp_path / "train.jsonl"
    hub_like.write_text(
        json.dumps({"problem": "1+1?", "solution": r"It is $\boxed{2}$.", "level": "Level 1", "type": "Algebra"})
        + "\n"
    )
    assert get_task("math", path=str(hub_like)).load()[0]["answer"] == "2"
    hub_like.write_text(json.dumps({"problem": "1+1?", "solution": "two"}) + "\n")
    with pytest.raises(ValueError, match=rf"{hub_like}:1: solution has no"):
        get_task("math", path=str(hub_like)).load()


# ------------------------------------------------------------------------------------------------ CRUXEval-O


def test_cruxeval_extraction():
    # ZeroEval: the first complete {...}, braces in strings counted; str() of the JSON value; quotes stripped
    assert extract_output('```json\n{"reasoning": "count pairs {x}", "answer": "[(4, 1), (2, 3)]"}\n```') == (
        "[(4, 1), (2, 3)]"
    )
    assert extract_output('{"reasoning": "r", "answer": true}') == "True"
    assert extract_output('{"answer": [1, 2]}') == "[1, 2]" and extract_output('{"answer": "\'ab\'"}') == "ab"
    assert extract_output('{"answer": "first"} then {"answer": "second"}') == "first"
    # no JSON object with an answer: ZeroEval's regexes, quoted first, then unquoted up to a comma or space
    assert extract_output('"answer": "x" and more') == "x" and extract_output("answer: 42, done") == "42"
    # CRUXEval's own [ANSWER] format is not read by ZeroEval
    assert extract_output("[THOUGHT]...[/THOUGHT]\n[ANSWER]\nassert f('a') == 'ab'\n[/ANSWER]") is None
    assert extract_output('{"reasoning": "no answer key"}') is None and extract_output("") is None


def test_cruxeval(data_dir):
    task = get_task("cruxeval", data_dir=str(data_dir))
    assert len(task.load()) == 800
    row, row1 = task.load(limit=2)
    assert row["id"] == "sample_0" and row["answer"] == "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]"
    content = row["prompt"][0]["content"]
    assert "[PYTHON]\n" + row["code"] + "\nassert f([1, 1, 3, 1, 3, 1]) == ??\n[/PYTHON]" in content  # ZeroEval's
    assert content.startswith("\n## Question: \n\nYou are given a Python function") and '"answer": "___"' in content
    # ZeroEval compares strings: the gold's own spelling is right, another spelling of the same value is not
    assert task.score('{"reasoning": "...", "answer": "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]"}', row)
    assert not task.score('{"reasoning": "...", "answer": "[(4,1),(4,1),(4,1),(4,1),(2,3),(2,3)]"}', row)
    assert not task.score('{"reasoning": "...", "answer": "[(4, 1), (2, 3)]"}', row)
    assert row1["answer"] == "{1: None, 2: None}" and not task.score('{"answer": "{2: None, 1: None}"}', row1)
    literal = get_task("cruxeval", compare="literal")  # the named departure: values, not spellings
    assert literal.score('{"answer": "[(4,1),(4,1),(4,1),(4,1),(2,3),(2,3)]"}', row)
    assert literal.score('{"answer": "{2: None, 1: None}"}', row1)
    assert not literal.score('{"answer": "print(\'all tests passed\')"}', row1)  # text, never executed
    assert not task.score("I am not sure.", row1)
    with pytest.raises(ValueError, match="compare='exec'"):
        get_task("cruxeval", compare="exec")


def test_cruxeval_quotes_and_types():
    task, literal = get_task("cruxeval"), get_task("cruxeval", compare="literal")
    row = {"id": "x", "answer": "'hello'"}
    assert task.score('{"answer": "hello"}', row) and task.score('{"answer": "\'hello\'"}', row)
    assert not task.score('{"answer": "hello!"}', row)
    assert literal.score('{"answer": "hello"}', row) and not literal.score('{"answer": "hello!"}', row)
    boolean = {"id": "y", "answer": "True"}
    assert task.score('{"answer": true}', boolean) and not task.score('{"answer": 1}', boolean)
    assert not literal.score('{"answer": 1}', boolean)  # 1 == True in Python, but not the same literal


# ------------------------------------------------------------------------------------------------ HumanEval


def test_humaneval(data_dir):
    task = get_task("humaneval", data_dir=str(data_dir))
    assert len(task.load()) == 164
    row = task.load(limit=1)[0]
    assert row["id"] == "HumanEval/0" and row["entry_point"] == "has_close_elements"
    assert row["prompt"][0]["content"].startswith("Please provide a self-contained Python script")
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in row["prompt"][0]["content"]
    assert row["prompt"][1] == {
        "role": "assistant",
        "content": "Below is a Python script with a self-contained "
        "function that solves the problem and passes corresponding tests:\n```python\n",
    }
    assert "\n```\n" in task.stop_sequences and "\nprint(" in task.stop_sequences
    body = row["canonical_solution"]
    assert not task.score(fence(body), row)  # EvalPlus runs the solution alone: a bare body defines nothing
    full = "from typing import List\n\ndef has_close_elements(numbers, threshold):\n" + body
    assert task.score(fence(full) + "\nUsage:\n" + fence("print(has_close_elements([1.0], 0.5))"), row)
    assert task.score(full + "\n\nprint(has_close_elements([1.0], 0.5))\nassert False\n```", row)  # sanitised
    assert not task.score(fence("def has_close_elements(numbers, threshold):\n    return True"), row)
    assert not task.score(fence("print('all tests passed')\nimport os\nos._exit(0)"), row)
    assert not task.score("```text\nno code\n```", row)


def test_extract_code_rules():
    # EvalPlus's sanitiser: the longest parsable run of lines, cut to what the entry point reaches
    assert extract_code(fence("def f():\n    return 1") + fence("f()"), "f") == "def f():\n    return 1"
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1"  # truncated fence
    assert extract_code("def f():\n    print(1)\n", "f") == "def f():\n    print(1)"  # no return: the run itself
    assert lcb_extract_code(fence("print(1)") + fence("print(2)")) == "print(2)"  # LCB: the last block


# ------------------------------------------------------------------------------------------------ LiveCodeBench


def test_livecodebench_loads_fixture():
    task = get_task("livecodebench", path=str(LCB_FIXTURE))
    rows = task.load()
    assert [r["id"] for r in rows] == ["abc900_a", "9901", "abc901_b"]
    assert [r["fn_name"] for r in rows] == [None, "scale", None]
    (user,) = rows[0]["prompt"]  # lighteval's prompt (the authors' tooling), one user message
    assert user["content"].startswith("You will be given a question (problem specification) and will generate")
    assert "\n\nQuestion: You are given two integers A and B." in user["content"]
    assert user["content"].endswith("writes output to STDOUT.\n```python\n# YOUR CODE HERE\n```\n\n")
    assert "delimiters.\n```python\nclass Solution:\n    def scale(self" in rows[1]["prompt"][0]["content"]
    system, user = get_task("livecodebench", path=str(LCB_FIXTURE), prompt_style="lcb_runner").load()[0]["prompt"]
    assert system["content"].startswith("You are an expert Python programmer.")
    assert user["content"].startswith("### Question:\nYou are given two integers A and B.")
    assert "Read the inputs from stdin solve the problem" in user["content"]
    assert user["content"].endswith("### Answer: (use the provided format with backticks)\n\n")
    # private tests: compressed (rows 0, 1) and plain JSON (row 2) both decode
    assert decode_tests(rows[0]["private_tests"])[0] == {"input": "10 20\n", "output": "30\n", "testtype": "stdin"}
    assert decode_tests(rows[2]["private_tests"])[1]["output"] == "0.5\n"
    assert [r["id"] for r in get_task("livecodebench", path=str(LCB_FIXTURE), start_date="2025-01-01").load()] == [
        "abc901_b"
    ]
    assert len(task.load(limit=2)) == 2
    assert LiveCodeBench.release_files("release_v3") == ["test.jsonl", "test2.jsonl", "test3.jsonl"]
    with pytest.raises(ValueError, match="release_v1"):
        LiveCodeBench.release_files("v9")


def test_livecodebench_scoring():
    task = get_task("livecodebench", path=str(LCB_FIXTURE / "test.jsonl"), test_timeout_s=1.0)
    stdin, functional, decimal = task.load()
    assert task.score(fence("a, b = map(int, input().split())\nprint(a + b)"), stdin)
    assert task.score(fence("a, b = map(int, open(0).read().split())\nprint(a + b)"), stdin)
    assert not task.score(fence("print(3)"), stdin)  # passes the public test only
    assert not task.score(fence("print('all tests passed')\nimport os\nos._exit(0)"), stdin)
    assert not task.score("a, b = map(int, input().split())\nprint(a + b)", stdin)  # no fence: no code (LCB)
    solution = (
        "class Solution:\n    def scale(self, nums: List[int], k: int) -> List[int]:\n"
        "        return tuple(x * k for x in nums)"
    )
    assert task.score(fence(solution), functional)  # List from LCB's prelude; a tuple counts as a list
    assert not task.score(fence(solution.replace("x * k", "x + k")), functional)
    assert task.score(fence("n = int(input())\nprint(sum(map(int, input().split())) / n)"), decimal)  # 2.5 == 2.50
    start = time.monotonic()
    assert not task.score(fence("while True:\n    pass"), stdin)
    assert time.monotonic() - start < 6


# ------------------------------------------------------------------------------------------------ MMLU-Pro


def test_mmlu_pro(data_dir, tmp_path):
    task = get_task("mmlu_pro", data_dir=str(data_dir))
    rows = task.load()
    assert len(rows) == 12032
    row = rows[0]
    assert isinstance(row["prompt"], str)  # the original prompt, no chat template
    assert row["prompt"].startswith("The following are multiple choice questions (with answers) about business.")
    assert "where X is the correct letter choice.\n\n\n\nQuestion:\n" in row["prompt"]  # initial_prompt.txt + "\n"
    assert task.stop_sequences == ("Question:",)
    assert "\nOptions:\nA. Safe practices, Fear, Jealousy, Trivial\n" in row["prompt"]
    assert row["prompt"].endswith("I. Unsafe practices, Distress, Fear, Serious\nAnswer: Let's think step by step.")
    assert row["answer"] == "I"
    # its `answer` says C (N-H), its answer_index 1 (P-Cl); N-H is right (N is the negative end, written first)
    disagreeing = next(r for r in rows if r["id"] == "3983")
    assert disagreeing["answer"] == "C" and "\nC. N\u2014H\n" in disagreeing["prompt"]
    assert task.score("Step by step... the answer is (I).", row)
    assert not task.score("the answer is (A)", row)
    assert extract_letter("Answer: E") == "E" and extract_letter("neither") is None
    shots = tmp_path / "validation.jsonl"
    shots.write_text(
        json.dumps(
            {
                "question": "Q?",
                "options": ["x", "y"],
                "category": "business",
                "cot_content": "A: Let's think step by step. It is y. The answer is (B).",
            }
        )
        + "\n"
    )
    fewshot = get_task("mmlu_pro", data_dir=str(data_dir), num_fewshot=1, fewshot_path=str(shots)).load(limit=1)[0]
    assert "Question:\nQ?\nOptions:\nA. x\nB. y\nAnswer: Let's think step by step. It is y." in fewshot["prompt"]


# ------------------------------------------------------------------------------------------------ AlpacaEval


def test_alpaca_eval_rows_and_outputs(data_dir):
    task = get_task("alpaca_eval", data_dir=str(data_dir))
    rows = task.load()
    assert len(rows) == 805
    assert rows[0]["prompt"] == [{"role": "user", "content": rows[0]["instruction"]}]
    assert rows[0]["dataset"] == "helpful_base" and rows[0]["reference"].startswith("Several famous actors")
    assert not task.score("anything", rows[0]) and task.extract("anything") is None
    assert task.aggregate([]) == {"score": None, "judged": False}
    out = to_alpaca_eval(rows[:2], ["a", "b"], "my-model")
    assert out[1] == {
        "instruction": rows[1]["instruction"],
        "output": "b",
        "generator": "my-model",
        "dataset": rows[1]["dataset"],
    }
    with pytest.raises(ValueError, match="one response per row"):
        to_alpaca_eval(rows[:2], ["a"], "m")
    with pytest.raises(ValueError, match="judge_model"):
        get_task("alpaca_eval", judge_url="http://127.0.0.1:1")


class _FakeJudge(http.server.BaseHTTPRequestHandler):
    replies: list = []
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = type(self).replies.pop(0)
        if isinstance(reply, int):  # an HTTP error status
            self.send_error(reply)
            return
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_alpaca_eval_judge_with_fake_server(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("INTUITOR_TEST_JUDGE_KEY", "sk-test")
        task = get_task(
            "alpaca_eval",
            judge_url=f"http://127.0.0.1:{server.server_port}/v1",
            judge_model="gpt-4.1",
            judge_api_key_env="INTUITOR_TEST_JUDGE_KEY",
        )
        task.judge.retries = 1
        row = {"id": "7", "instruction": "Say hi", "reference": "Hello.", "dataset": "x"}
        token = "m" if zlib.crc32(b"7") % 2 == 1 else "M"  # the identifier our response gets for id 7 (Judge)
        other = "M" if token == "m" else "m"
        _FakeJudge.replies = [
            {
                "choices": [
                    {
                        "message": {"content": token},
                        "logprobs": {
                            "content": [
                                {
                                    "token": token,
                                    "logprob": -0.2,
                                    "top_logprobs": [
                                        {"token": token, "logprob": -0.2},
                                        {"token": other, "logprob": -1.7},
                                    ],
                                }
                            ]
                        },
                    }
                ]
            },
            {"choices": [{"message": {"content": other}}]},
            400,  # a server that rejects logprobs: asked again without them
            {"choices": [{"message": {"content": token}}]},
        ]
        assert task.score("Hi there!", row) is True
        assert task.score("go away", row) is False
        assert task.score("Hi!", row) is True
        assert "logprobs" in _FakeJudge.requests[2]["body"] and "logprobs" not in _FakeJudge.requests[3]["body"]
        first = _FakeJudge.requests[0]
        assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
        assert first["body"]["model"] == "gpt-4.1" and first["body"]["max_tokens"] == 1
        system, user = first["body"]["messages"]
        assert system == {"role": "system", "content": JUDGE_SYSTEM}
        assert '"instruction": """Say hi"""' in user["content"]
        assert '"output": """Hi there!"""' in user["content"] and '"output": """Hello."""' in user["content"]
        assert task.aggregate([]) == {"judged": True, "judge_model": "gpt-4.1"}
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="expected 'm' or 'M'"):
        parse_judgement({"choices": [{"message": {"content": "Model A"}}]}, "m")


# ------------------------------------------------------------------------------------------------ all tasks, errors


@pytest.mark.parametrize("name", MINE)
def test_every_task_loads_rows_of_the_interface(name, data_dir):
    cls = load_all()[name]
    assert cls.version >= 1 and cls.default_path and cls.hub_id
    task = get_task(name, path=str(LCB_FIXTURE)) if name == "livecodebench" else get_task(name, data_dir=str(data_dir))
    rows = task.load(limit=2)
    assert len(rows) == 2 and len({r["id"] for r in rows}) == 2
    for r in rows:
        assert {"id", "prompt", "answer"} <= set(r) and isinstance(r["answer"], str)
        last = "assistant" if name == "humaneval" else "user"  # HumanEval: EvalPlus's pre-filled assistant turn
        assert isinstance(r["prompt"], str) if name == "mmlu_pro" else r["prompt"][-1]["role"] == last
        json.dumps(r)  # rows travel through datasets / samples.jsonl


def test_malformed_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "q", "answer": "x\\n#### 1"}\n{"question": oops}\n')
    with pytest.raises(ValueError, match=rf"{bad}:2: malformed JSON"):
        get_task("gsm8k", path=str(bad)).load()
    bad.write_text('{"question": "q", "answer": "#### 1"}\n\n{"question": "no answer"}\n')
    with pytest.raises(ValueError, match=rf"{bad}:3: row is missing field\(s\) answer"):
        get_task("gsm8k", path=str(bad)).load()
    bad.write_text('{"question": "q", "answer": "no final number"}\n')
    with pytest.raises(ValueError, match=rf"{bad}:1: GSM8K answer has no"):
        get_task("gsm8k", path=str(bad)).load()
    gz = tmp_path / "test.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write('{"question_id": 1, "question": "q", "options": ["a"], "answer_index": 3, "category": "law"}\n')
    with pytest.raises(ValueError, match=rf"{gz}:1: answer_index 3 outside"):
        get_task("mmlu_pro", path=str(gz)).load()
    lcb = tmp_path / "lcb.jsonl"
    packed = base64.b64encode(zlib.compress(pickle.dumps("not json"))).decode()
    lcb.write_text(
        json.dumps(
            {
                "question_id": "1",
                "question_content": "q",
                "starter_code": "",
                "public_test_cases": "[]",
                "private_test_cases": packed,
                "metadata": "{}",
            }
        )
        + "\n"
    )
    with pytest.raises(ValueError, match=rf"{lcb}:1: unreadable test cases"):
        get_task("livecodebench", path=str(lcb)).load()


def test_missing_data_file_says_what_to_pass(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(FileNotFoundError, match=rf"data file not found: {missing}.*--data-dir"):
        get_task("gsm8k", path=str(missing)).load()
    # a data dir without the file: the hub is tried, which fails offline; the error still says what to pass
    with pytest.raises(FileNotFoundError, match=r"no local file at .*gsm8k/test.jsonl.*openai/gsm8k.*--data-dir"):
        get_task("gsm8k", data_dir=str(tmp_path)).load()


def test_unknown_task_did_you_mean():
    with pytest.raises(KeyError, match="Did you mean: gsm8k"):
        get_task("gsm8")
