"""LiveCodeBench code generation (Jain et al. 2024), "LCB" in the paper's Table 1.

Data: the public `livecodebench/code_generation_lite` format, one JSON object per problem with question_title,
question_content, platform, question_id, contest_id, contest_date, starter_code, difficulty, public_test_cases
(a JSON string: a list of {input, output, testtype: "stdin" | "functional"}), private_test_cases (the same list as
a JSON string, or, in the released files, `base64(zlib(pickle(json_string)))`; both are read) and metadata (a JSON
string; `func_name` names the method of functional tests). A local path is one .jsonl file or a folder of them
(`test.jsonl` ... `test6.jsonl` as in the hub repository); without one, the hub files of `release` are downloaded.
`release`: "release_vN" = all problems up to release N (LCB's `version_tag`, cumulative), "vN" = only release N's
file. The paper says "LiveCodeBench v6"; we default to release_v6 (the paper does not say which window it used).
`start_date` / `end_date` (ISO dates) keep problems whose contest_date lies in [start, end].

References: the authors' tooling runs lighteval's port (`extended|lcb:codegeneration`, open-r1-intuitor
`utils/evaluation.py`), lighteval at commit 9619194bdbf42fcdc2078f29db49de6d883bfa2e, src/lighteval/tasks/extended/
lcb/main.py and codegen_metrics.py; the official runner is LiveCodeBench/LiveCodeBench at commit
28fef95ea8c9f7a547c8329f2cd3d32b92c1fa24 (lcb_runner).
Prompt (`prompt_style`): "lighteval" (default: what the authors' tooling sends) is lighteval's `prepare_prompt`
(main.py lines 38-48) as one user message, no system message; "lcb_runner" is LCB's official chat prompt
(lcb_runner/prompts/code_generation.py, `format_prompt_generation` for chat models: its generic system message and
`get_generic_question_template_answer`, verbatim).
Extraction: the rule both share (lcb_runner/utils/extraction_utils.py `extract_code` lines 4-17, lighteval
codegen_metrics.py `extract_code` lines 668-673): the lines between the LAST two lines that contain ```, "" when
there are fewer than two (so a response whose last block is an example run, not the program, fails, as there).
Scoring: LCB's rule (lcb_runner/evaluation/testing_util.py) run in our sandbox: every public and private test must
pass, stopping at the first failure; LCB's import prelude (`from collections import *`, ... ) comes first;
stdin tests compare stdout with the expected output line by line after stripping, a line also matching when all
its tokens are equal as decimals; functional tests call `Solution().<func_name>(*args)` with one JSON argument per
input line and compare the result (a tuple read as a list) with the JSON output. Each test runs in a forked child
of one sandboxed driver with real stdin/stdout (LCB patches `sys.stdin` in-process instead), `test_timeout_s`
seconds per test (LCB: 6).
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from typing import Any

from intuitor.tasks.base import Task, load_records, read_records, register_task, require_fields

# lcb_runner/prompts/code_generation.py (PromptConstants), verbatim.
SYSTEM_MESSAGE = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will generate a "
    "correct Python program that matches the specification and passes all tests."
)
FORMATTING_WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
FORMATTING_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample "
    "inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the "
    "inputs, runs the algorithm and writes output to STDOUT."
)
# get_generic_question_template_answer, verbatim.
QUESTION_TEMPLATE = "### Question:\n{question}\n\n"
STARTER_TEMPLATE = "### Format: " + FORMATTING_WITH_STARTER_CODE + "\n```python\n{starter_code}\n```\n\n"
STDIN_TEMPLATE = "### Format: " + FORMATTING_WITHOUT_STARTER_CODE + "\n```python\n# YOUR CODE HERE\n```\n\n"
ANSWER_LINE = "### Answer: (use the provided format with backticks)\n\n"

# lighteval src/lighteval/tasks/extended/lcb/main.py `prepare_prompt`, verbatim.
LIGHTEVAL_INTRO = (
    "You will be given a question (problem specification) and will generate a correct Python program that matches "
    "the specification and passes all tests.\n\n"
)
LIGHTEVAL_QUESTION = "Question: {question}\n\n"
LIGHTEVAL_STARTER = FORMATTING_WITH_STARTER_CODE + "\n```python\n{starter_code}\n```\n\n"
LIGHTEVAL_STDIN = FORMATTING_WITHOUT_STARTER_CODE + "\n```python\n# YOUR CODE HERE\n```\n\n"
PROMPT_STYLES = ("lighteval", "lcb_runner")

# lcb_runner/evaluation/testing_util.py `import_string`, verbatim.
IMPORT_PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\n"
    "from bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\n"
    "from itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\n"
    "from json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\n"
    "import itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\n"
    "sys.setrecursionlimit(50000)\n"
)

HUB_FILES = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl"]

# The sandboxed driver: one forked child per test, real file descriptors, a per-test deadline, stop at the first
# failure. It exits 1 unless every test passed (run_tests then also requires its sentinel after this code).
_DRIVER = r'''
import json, os, sys, tempfile, time, traceback
from decimal import Decimal, InvalidOperation

_SPEC = json.loads(__SPEC__)


def _child(source, test, out_fd):
    os.dup2(out_fd, 1)
    try:
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(source, "<solution>", "exec"), namespace)
        if _SPEC["fn_name"] is None:
            sys.stdout.flush()
            os._exit(0)
        if "Solution" in namespace:
            target = namespace["Solution"]()
        else:
            target = None
        method = getattr(target, _SPEC["fn_name"], None) if target is not None else namespace.get(_SPEC["fn_name"])
        args = [json.loads(line) for line in test["input"].split("\n")]
        result = method(*args)
        if isinstance(result, tuple):
            result = list(result)
        os._exit(0 if result == json.loads(test["output"]) else 3)
    except SystemExit as e:
        sys.stdout.flush()
        os._exit(0 if e.code in (None, 0) else 1)
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def _lines(text):
    return [line.strip() for line in text.strip().split("\n")]


def _same_output(got, want):
    got, want = _lines(got), _lines(want)
    if len(got) != len(want):
        return False
    for a, b in zip(got, want):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except InvalidOperation:
            return False
    return True


def _run(index, test):
    fin = tempfile.TemporaryFile()
    fin.write(test["input"].encode() if _SPEC["fn_name"] is None else b"")
    fin.seek(0)
    fout = tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.dup2(fin.fileno(), 0)
        _child(_SPEC["source"], test, fout.fileno())
    deadline = time.monotonic() + _SPEC["test_timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return f"test {index}: time limit exceeded"
        time.sleep(0.002)
    code = os.waitstatus_to_exitcode(status)
    fout.seek(0)
    out = fout.read().decode("utf-8", "replace")
    fin.close()
    fout.close()
    if _SPEC["fn_name"] is not None:
        return None if code == 0 else f"test {index}: " + ("wrong answer" if code == 3 else f"error (exit {code})")
    if code != 0:
        return f"test {index}: runtime error (exit {code})"
    return None if _same_output(out, test["output"]) else f"test {index}: wrong answer"


for _i, _test in enumerate(_SPEC["tests"]):
    _failure = _run(_i, _test)
    if _failure is not None:
        print(_failure)
        sys.exit(1)
'''


def decode_tests(value: Any) -> list[dict]:
    """Test cases from a JSON string, a list, or LCB's `base64(zlib(pickle(json_string)))` form.

    >>> packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps([{"input": "1", "output": "2",
    ...     "testtype": "stdin"}])))).decode()
    >>> decode_tests(packed)[0]["output"], decode_tests('[{"input": "", "output": "", "testtype": "stdin"}]')[0]["input"]
    ('2', '')
    """
    if isinstance(value, list):
        return value
    try:
        tests = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        # pickle of a plain str (what the data set holds); only ever applied to the data file the user points at
        tests = json.loads(pickle.loads(zlib.decompress(base64.b64decode(value.encode("utf-8")))))
    if not isinstance(tests, list):
        raise ValueError(f"test cases must be a list, found {type(tests).__name__}")
    return tests


def extract_code(response: str) -> str:
    """LCB's (and lighteval's) extraction: the lines between the last two lines containing ```; "" when fewer.

    >>> extract_code("Plan...\\n```python\\nprint(1)\\n```\\nthen\\n```python\\nprint(2)\\n```")
    'print(2)'
    """
    lines = response.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


@register_task
class LiveCodeBench(Task):
    """LiveCodeBench code generation, LCB's chat prompt and checker (all tests, sandboxed)."""

    name = "livecodebench"
    metric = "pass@1"
    version = 2  # 2: lighteval's prompt by default, the LAST fenced block
    score_workers = 8  # sandboxed runs are independent processes; the sandbox is thread-safe
    default_path = "livecodebench"
    hub_id = "livecodebench/code_generation_lite"
    memory_mb = 4096  # per process; the driver holds every test case (LCB itself sets no memory limit)

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        release: str = "release_v6",
        start_date: str | None = None,
        end_date: str | None = None,
        test_timeout_s: float = 6.0,
        max_timeout_s: float = 120.0,
        prompt_style: str = "lighteval",
    ):
        super().__init__(path, data_dir)
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style={prompt_style!r}: expected one of {', '.join(PROMPT_STYLES)}")
        self.prompt_style = prompt_style
        self.files = self.release_files(release)
        self.release = release
        self.start_date, self.end_date = start_date, end_date
        self.test_timeout_s, self.max_timeout_s = test_timeout_s, max_timeout_s

    @staticmethod
    def release_files(release: str) -> list[str]:
        """Hub files of a release tag: "release_vN" (cumulative) or "vN" (that release only).

        >>> LiveCodeBench.release_files("release_v2"), LiveCodeBench.release_files("v6")
        (['test.jsonl', 'test2.jsonl'], ['test6.jsonl'])
        """
        tag = release.removeprefix("release_")
        if not (tag.startswith("v") and tag[1:].isdigit() and 1 <= int(tag[1:]) <= len(HUB_FILES)):
            n = len(HUB_FILES)
            raise ValueError(f"release={release!r}: expected release_v1 ... release_v{n} or v1 ... v{n}")
        n = int(tag[1:])
        return HUB_FILES[:n] if release.startswith("release_") else [HUB_FILES[n - 1]]

    def _records(self, limit: int | None) -> list[tuple[str, dict]]:
        path = self.resolve_path()
        if path is not None and path.is_dir():
            chosen = [path / f for f in self.files if (path / f).exists()]
            if chosen:  # a copy of the hub folder: the release's files only
                out: list[tuple[str, dict]] = []
                for f in chosen:
                    out += read_records(f, None if limit is None else limit - len(out))
                return out
        return load_records(self, limit, split="test", data_files={"test": self.files})

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        filtered = self.start_date is not None or self.end_date is not None
        rows = []
        for where, r in self._records(None if filtered else limit):
            require_fields(
                r,
                ("question_id", "question_content", "starter_code", "public_test_cases", "private_test_cases"),
                where,
            )
            date = str(r.get("contest_date", ""))[:10]
            if (self.start_date and date < self.start_date) or (self.end_date and date > self.end_date):
                continue
            try:
                public = decode_tests(r["public_test_cases"])
                decode_tests(r["private_test_cases"])  # checked here; decoded again when scoring
                metadata = r.get("metadata") or {}
                metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
            except Exception as e:
                raise ValueError(f"{where}: unreadable test cases or metadata ({type(e).__name__}: {e})") from None
            fn_name = metadata.get("func_name")
            rows.append(
                {
                    "id": str(r["question_id"]),
                    "prompt": self.prompt(r["question_content"], r["starter_code"] or ""),
                    "answer": "",
                    "platform": str(r.get("platform", "")),
                    "difficulty": str(r.get("difficulty", "")),
                    "contest_date": str(r.get("contest_date", "")),
                    "fn_name": fn_name,
                    "public_tests": json.dumps(public),
                    "private_tests": r["private_test_cases"] if isinstance(r["private_test_cases"], str)
                    else json.dumps(r["private_test_cases"]),
                }
            )
            if limit is not None and len(rows) >= limit:
                break
        return rows

    def prompt(self, question: str, starter: str) -> list[dict[str, str]]:
        """The chat messages of one problem in `prompt_style` (module docstring)."""
        if self.prompt_style == "lighteval":
            user = LIGHTEVAL_INTRO + LIGHTEVAL_QUESTION.format(question=question)
            user += LIGHTEVAL_STARTER.format(starter_code=starter) if starter else LIGHTEVAL_STDIN
            return [{"role": "user", "content": user}]
        user = QUESTION_TEMPLATE.format(question=question)
        user += STARTER_TEMPLATE.format(starter_code=starter) if starter else STDIN_TEMPLATE
        user += ANSWER_LINE
        return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user}]

    def extract(self, response: str) -> str | None:
        return extract_code(response) or None

    def score(self, response: str, row: dict[str, Any]) -> bool:
        code = self.extract(response)
        if code is None:
            return False
        tests = decode_tests(row["public_tests"]) + decode_tests(row["private_tests"])
        if not tests:
            raise ValueError(f"livecodebench {row['id']}: no test cases")
        from intuitor.sandbox import run_tests

        spec = {
            "source": IMPORT_PRELUDE + "\n" + code,
            "tests": tests,
            "fn_name": row.get("fn_name"),
            "test_timeout": self.test_timeout_s,
        }
        driver = _DRIVER.replace("__SPEC__", repr(json.dumps(spec)))
        timeout = min(self.max_timeout_s, 5.0 + self.test_timeout_s * len(tests))
        return bool(run_tests("", driver, timeout=timeout, memory_mb=self.memory_mb).passed)
