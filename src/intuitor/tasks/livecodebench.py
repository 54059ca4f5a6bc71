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
Scoring (`judge`): LCB's rule (lcb_runner/evaluation/testing_util.py at the commit above, `grade_call_based` and
`grade_stdio`), with the verdict decided out of the program's reach: every public and private test must pass,
stopping at the first failure; LCB's import prelude (`from collections import *`, ... ) comes first. The sandbox
(`intuitor.sandbox.SandboxSession`) receives only inputs and returns outputs; expected outputs and the comparison
stay in this process. Stdin tests: each input runs the program as __main__ in a forked child with a real stdin
(LCB patches `sys.stdin` in-process instead); its stdout comes back and is compared here line by line after
stripping, a line also matching when all its tokens are equal as decimals; SystemExit ends the program normally
and stderr is ignored, as in LCB; an uncaught exception is a runtime error. Functional tests: the program is loaded
once (an exit or error while loading fails) into a process of its own, one `Solution()` serves every test (as LCB's
`compile_code`; a plain function when the code has no `class Solution`, as LCB decides), each test calls
`<func_name>(*args)` with one JSON argument per input line, and the returned value, which must be plain data or
numpy (it crosses as numpy), is compared here (a tuple read as a list) with the JSON output as LCB compares it: a
comparison that raises (a numpy array against a list) is a runtime error, a fail; a method that exits instead of
returning fails (in LCB the SystemExit escapes the grader). `test_timeout_s` seconds per test (LCB: 6). A stdin
test may print `output_cap(expected)` bytes (room for any right answer), the session's cap at most.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from decimal import Decimal, InvalidOperation
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
    memory_mb = 4096  # the whole program where a memory cgroup exists (LCB itself sets no memory limit)

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
                    "private_tests": r["private_test_cases"]
                    if isinstance(r["private_test_cases"], str)
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
        timeout = min(self.max_timeout_s, 5.0 + self.test_timeout_s * len(tests))
        try:
            return judge(
                code,
                tests,
                row.get("fn_name"),
                test_timeout=self.test_timeout_s,
                timeout=timeout,
                memory_mb=self.memory_mb,
            )
        except ValueError as e:
            raise ValueError(f"livecodebench {row['id']}: {e}") from None


def same_output(got: str, want: str) -> bool:
    """lcb_runner's stdin comparison (`grade_stdio`): stripped lines, equal in number; each line equal as text or,
    failing that, token by token as decimals.

    >>> same_output("3 \\n1.50\\n", "3\\n1.5"), same_output("3\\n", "3\\n4"), same_output("yes", "Yes")
    (True, False, False)
    """
    got, want = got.strip(), want.strip()
    if got.count("\n") != want.count("\n"):  # before splitting: a flood of short lines costs one pass, no list
        return False
    got_lines = [line.strip() for line in got.split("\n")]
    want_lines = [line.strip() for line in want.split("\n")]
    for a, b in zip(got_lines, want_lines):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except InvalidOperation:
            return False
    return True


def output_cap(want: str) -> int:
    """The stdout a stdin test may print: room for any right answer (four times the expected bytes plus 1 MiB:
    lcb_runner strips each line, so trailing spaces are allowed), at most the sandbox's MAX_OUTPUT (64 MiB). What
    the harness holds for one test stays in proportion to the data, not to what a program chooses to print.

    >>> output_cap("5\\n") == 4 * 2 + (1 << 20), output_cap("x" * (40 << 20)) == 64 << 20
    (True, True)
    """
    from intuitor.sandbox import MAX_OUTPUT

    return min(MAX_OUTPUT, 4 * len(want.encode()) + (1 << 20))


def judge(
    code: str,
    tests: list[dict],
    fn_name: str | None,
    *,
    test_timeout: float = 6.0,
    timeout: float = 120.0,
    memory_mb: int = 4096,
) -> bool:
    """Whether `code` passes every test (module docstring, "Scoring"). Only inputs enter the sandbox.

    >>> tests = [{"input": "2 3\\n", "output": "5\\n"}, {"input": "10 -4\\n", "output": "6\\n"}]
    >>> judge("a, b = map(int, input().split())\\nprint(a + b)", tests, None)
    True
    >>> judge("print(5)", tests, None)
    False
    """
    from intuitor.sandbox import ProgramFailed, SandboxSession

    try:  # the data set's side, decoded before anything runs: a malformed test is a data error, not a fail
        if fn_name is None:
            cases = [(str(t["input"]), str(t["output"])) for t in tests]
        else:
            cases = [([json.loads(line) for line in t["input"].split("\n")], json.loads(t["output"])) for t in tests]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable test case ({type(e).__name__}: {e})") from None
    source = IMPORT_PRELUDE + "\n" + code
    with SandboxSession(timeout=timeout, memory_mb=memory_mb) as session:
        try:
            if fn_name is None:
                session.store(source, warm=IMPORT_PRELUDE)
                for stdin, want in cases:
                    if not same_output(
                        session.run_stdin(stdin, timeout=test_timeout, max_output=output_cap(want)), want
                    ):
                        return False
            else:
                session.load(source)
                cls = "Solution" if "class Solution" in source else None  # lcb_runner's `compile_code` rule
                for args, want in cases:
                    got = session.call(fn_name, *args, cls=cls, timeout=test_timeout)
                    if isinstance(got, tuple):  # LCB: "don't penalize model if it produces tuples instead of lists"
                        got = list(got)
                    try:  # as lcb_runner: `tmp_result = prediction == gt_out; if not tmp_result` (an array's truth
                        same = got == want  # raises there: a runtime error, a fail)
                        if not same:
                            return False
                    except Exception:
                        return False
        except ProgramFailed:
            return False
    return True
