"""The code sandbox against hostile programs: each test runs one attack and asserts the machine and the
harness came through (status, output, files, processes, our own pid).

Security tests run on bubblewrap; the "rlimit" fallback is not a security boundary, runs only when the user
opts in, and is only checked for what it promises. Whole-program memory, keyrings, chatty and threaded honest
programs, and faked verdicts are in tests/test_verdicts.py.
"""

import os
import secrets
import shutil
import socket
import sys
import tempfile
import time

import pytest

from intuitor.evaluation import sandbox
from intuitor.sandbox import SandboxResult, run_many, run_python, run_tests, sandbox_backend

NAMESPACED = [b for b in ("bwrap",) if shutil.which(b) and sandbox._works(b)]
# In CI (CI=true) a missing namespace sandbox must fail loudly, not skip: .ci/run installs bubblewrap.
pytestmark = pytest.mark.skipif(not NAMESPACED and not os.environ.get("CI"),
                                reason="no namespace sandbox (install bubblewrap)")


@pytest.fixture(params=NAMESPACED)
def backend(request):
    return request.param


def marked(code: str, marker: str) -> str:
    """`code` re-executed as `python -c code marker`: every process it forks shows `marker` in /proc/*/cmdline."""
    execv = f"os.execv(sys.executable, [sys.executable, '-c', {code!r}, {marker!r}])"
    return f"import os, sys\nif len(sys.argv) < 2:\n    {execv}\n"


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_backend_is_detected_once_and_bwrap_preferred():
    print(f"sandbox backend: {sandbox_backend()}, memory bound: {sandbox.memory_scope()}")
    assert sandbox_backend() in sandbox.BACKENDS
    if "bwrap" in NAMESPACED:
        assert sandbox_backend() == "bwrap"


def test_without_bubblewrap_model_code_runs_only_after_an_opt_in_naming_the_risk(monkeypatch):
    monkeypatch.setattr(sandbox, "_bwrap_works", False)
    monkeypatch.setattr(sandbox, "_unsafe_allowed", False)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    monkeypatch.delenv("INTUITOR_SANDBOX_BACKEND", raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="confirm-run-unsafe-code"):
        run_python("print(1)")
    with pytest.raises(sandbox.SandboxUnavailable, match=sandbox.UNSAFE_ENV):
        run_python("print(1)", backend="rlimit")
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        assert sandbox_backend() == "rlimit"
    monkeypatch.setenv("INTUITOR_SANDBOX_BACKEND", "unshare")  # dropped: it leaked home, /run and setuid
    with pytest.raises(ValueError, match="choose one of bwrap, rlimit"):
        sandbox_backend()


def test_stdin_to_stdout(backend):
    result = run_python("print(sum(map(int, input().split())))", stdin="2 3 4\n", backend=backend)
    assert (result.status, result.stdout, result.returncode, result.truncated) == ("ok", "9\n", 0, False)
    assert result.backend == backend and 0 < result.duration < 5


def test_own_folder_is_writable_and_removed_afterwards(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_python("open('note.txt', 'w').write('hi')\nprint(open('note.txt').read())", backend=backend)
    assert (result.status, result.stdout) == ("ok", "hi\n")
    assert list(tmp_path.iterdir()) == []  # the host-side working folder is gone


def test_infinite_loop_and_sleep_time_out_on_wall_clock(backend):
    for code in ("while True:\n    pass", "import time\ntime.sleep(60)"):
        result = run_python(code, timeout=1, backend=backend)
        assert result.status == "timeout"
        assert 1 <= result.duration < 3


def test_memory_bomb_is_reported_as_memory(backend):
    result = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))", memory_mb=200, backend=backend)
    assert result.status == "memory"
    assert result.stderr.rstrip().endswith("MemoryError")
    touched = run_python("chunks = []\nwhile True:\n    chunks.append(b'x' * 10**7)", memory_mb=200, backend=backend)
    assert touched.status == "memory"


def test_fork_bomb_is_contained_and_leaves_no_process(backend):
    marker = f"forkbomb-{secrets.token_hex(8)}"
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    start = time.monotonic()
    result = run_python(marked(bomb, marker), timeout=2, processes=16, backend=backend)
    assert result.status == "timeout"
    assert time.monotonic() - start < 6
    assert processes_with(marker) == []


def test_processes_that_leave_the_session_are_killed(backend):
    marker = f"daemon-{secrets.token_hex(8)}"
    daemon = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('bye')"
    )
    result = run_python(marked(daemon, marker), timeout=5, backend=backend)
    assert (result.status, result.stdout) == ("ok", "bye\n")
    assert result.duration < 3
    assert processes_with(marker) == []


def test_gigabytes_of_output_are_truncated_and_stopped(backend):
    code = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"
    result = run_python(code, timeout=10, max_output=100_000, backend=backend)
    assert result.truncated
    assert result.status == "error"
    assert result.stdout == "y" * 100_000
    assert result.duration < 5  # stopped at the limit, not at the deadline


def test_stderr_beyond_the_cap_is_cut_not_fatal(backend):
    code = "import sys\nfor _ in range(40):\n    sys.stderr.write('d' * 65536)\nprint('answer')"  # 2.6 MB
    result = run_python(code, max_output=1_000_000, backend=backend)
    assert (result.status, result.stdout, result.truncated) == ("ok", "answer\n", False)
    assert result.stderr.startswith("d" * 1_000_000)
    assert result.stderr.endswith(f"stderr cut: {40 * 65536 - 1_000_000} more bytes dropped")


def test_cannot_write_or_delete_outside_its_folder(backend, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = tmp_path / "planted.txt"
    in_venv = os.path.join(sys.prefix, f"planted-{secrets.token_hex(4)}")  # visible, bound read-only
    code = (
        "import os, shutil\n"
        f"for path in ({str(planted)!r}, {in_venv!r}, '/usr/planted'):\n"
        "    try:\n"
        "        open(path, 'w').write('x'); print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
        f"for path in ({str(victim)!r}, {sys.executable!r}):\n"
        "    try:\n"
        "        os.remove(path); print('removed', path)\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
        f"shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)\n"
    )
    try:
        result = run_python(code, backend=backend)
        assert result.status == "ok"
        assert "wrote" not in result.stdout and "removed" not in result.stdout
        assert result.stdout.count("refused") == 5
        assert victim.read_text() == "keep me"
        assert not planted.exists() and not os.path.exists(in_venv) and not os.path.exists("/usr/planted")
        assert os.path.exists(sys.executable)
    finally:
        if os.path.exists(in_venv):
            os.remove(in_venv)


def test_parent_environment_does_not_leak(backend, monkeypatch):
    secret = secrets.token_hex(16)
    monkeypatch.setenv("INTUITOR_TEST_SECRET", secret)
    code = (
        "import os\n"
        "print(','.join(sorted(os.environ)))\n"
        f"for pid in ('1', 'self', {str(os.getpid())!r}):\n"
        "    try:\n"
        "        print(open(f'/proc/{pid}/environ').read())\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = run_python(code, backend=backend)
    assert result.status == "ok"
    assert secret not in result.stdout and "INTUITOR_TEST_SECRET" not in result.stdout
    names = set(result.stdout.splitlines()[0].split(","))
    allowed = {"HOME", "LANG", "LC_ALL", "PATH", "PWD", "TMPDIR", "MALLOC_ARENA_MAX"}  # bwrap adds PWD
    assert {"HOME", "PATH"} <= names <= allowed


def test_sockets_cannot_reach_the_host(backend):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"for address in (('127.0.0.1', {port}), ('1.1.1.1', 80)):\n"
            "    try:\n"
            "        socket.create_connection(address, timeout=1); print('connected')\n"
            "    except OSError as e:\n"
            "        print('refused', type(e).__name__)\n"
        )
        result = run_python(code, backend=backend)
    assert result.status == "ok"
    assert result.stdout.count("refused") == 2 and "connected" not in result.stdout


def test_cannot_kill_its_parent_or_the_harness(backend):
    harness = os.getpid()
    code = (
        "import os, signal\n"
        f"for pid in (os.getppid(), 1, {harness}, -1):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL); print('killed', pid)\n"
        "    except OSError:\n"
        "        print('refused')\n"
        f"try:\n    os.killpg({os.getpgid(0)}, signal.SIGKILL); print('killed group')\n"
        "except OSError:\n    print('refused')\n"
    )
    result = run_python(code, backend=backend)
    assert (result.status, result.stdout) == ("ok", "refused\n" * 5)
    os.kill(harness, 0)  # still here


@pytest.mark.parametrize(
    ("code", "status", "returncode"),
    [
        ("import sys\nsys.exit(0)", "ok", 0),
        ("import sys\nsys.exit(3)", "error", 3),
        ("import sys\nsys.exit('bye')", "error", 1),
        ("import os\nos._exit(7)", "error", 7),
        ("raise ValueError('no')", "error", 1),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "error", -11),
    ],
)
def test_exit_paths_give_status_and_returncode(code, status, returncode):
    result = run_python(code)
    assert (result.status, result.returncode) == (status, returncode)


def test_disk_is_capped(backend):
    code = "open('big', 'wb').write(b'x' * (20 << 20))\nprint('wrote')"
    result = run_python(code, disk_mb=8, backend=backend)
    assert result.status == "error" and "wrote" not in result.stdout


@pytest.mark.parametrize(
    ("program", "tests", "passed"),
    [
        ("def double(x):\n    return 2 * x", "assert double(2) == 4\nassert double(0) == 0", True),
        ("def double(x):\n    print('noise', end='')\n    return 2 * x", "assert double(2) == 4", True),
        ("def double(x):\n    return x", "assert double(2) == 4", False),
        ("print('all tests passed')\nimport os\nos._exit(0)", "assert False", False),
        ("import sys\nprint('all tests passed')\nsys.exit(0)", "assert False", False),
        ("import atexit\natexit.register(print, 'all tests passed')", "assert False", False),
        ("import builtins\nbuiltins.print = lambda *a, **k: None", "assert True", False),
        ("while True:\n    pass", "assert True", False),
    ],
)
def test_run_tests_judges_by_the_sentinel_not_by_claims(program, tests, passed):
    result = run_tests(program, tests, timeout=1)
    assert result.passed is passed
    if passed:
        assert "INTUITOR-TESTS-PASSED" not in result.stdout


def test_run_tests_keeps_the_programs_own_output():
    result = run_tests("print('hello')", "assert 1 + 1 == 2")
    assert result.passed and result.stdout == "hello\n"


def test_run_many_keeps_order_and_runs_in_parallel():
    programs = [(f"import time\ntime.sleep(0.5)\nprint({i})",) for i in range(4)]
    programs += [{"code": "print(input())", "stdin": "dict"}, {"program": "x = 1", "test_code": "assert x == 1"}]
    start = time.monotonic()
    results = run_many(programs, max_workers=4)
    elapsed = time.monotonic() - start
    assert all(isinstance(r, SandboxResult) for r in results)
    assert [r.stdout for r in results[:5]] == ["0\n", "1\n", "2\n", "3\n", "dict\n"]
    assert results[5].passed is True
    assert elapsed < 4 * 0.5 + 1  # four half-second sleeps overlapped


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        run_python("print(1)", timeout=0)
    with pytest.raises(ValueError, match="choose one of"):
        run_python("print(1)", backend="docker")


def test_rlimit_fallback_refuses_root_or_refuses_sockets(monkeypatch):
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    if os.geteuid() == 0 and not sandbox._others_can_read(sys.executable):
        with pytest.raises(RuntimeError, match="bubblewrap"):
            run_python("print(1)", backend="rlimit")
        return
    code = (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
        "except OSError as e:\n    print(e.errno)"
    )
    result = run_python(code, backend="rlimit")
    assert (result.status, result.stdout) == ("ok", "1\n")
