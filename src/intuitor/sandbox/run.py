"""Running one program: `run_python` (and `run_tests`, `run_many` on top of it), and which backend it runs in.

`run_python(code, stdin)` runs one program in its own sandbox and returns what it did (`SandboxResult`); it never
raises for anything the program does. stdout is kept up to `max_output` (past it the program is stopped), stderr up
to `max_stderr` (past it only dropped), and the deadline stops the run; then everything it left is killed.
`sandbox_backend()` probes bubblewrap once by running a program, and falls back to "rlimit" only under the user's
opt-in (`optin.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from intuitor.sandbox.cgroups import cpu_scope, memory_scope
from intuitor.sandbox.isolation import _Launch
from intuitor.sandbox.optin import BACKENDS, _check_unsafe
from intuitor.sandbox.results import _MEMORY_SIGNS, MAX_OUTPUT, MAX_STDERR, SandboxResult, SandboxUnavailable


logger = logging.getLogger(__name__)
_backend_lock = threading.Lock()
_bwrap_works: bool | None = None


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
    with _Launch(
        code, timeout, memory_mb, processes, open_files, disk_mb, backend, python, cpus, choose=sandbox_backend
    ) as launch:
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
                logger.info(
                    "intuitor sandbox: using bwrap; memory bound: %s; cpu share: %s", memory_scope(), cpu_scope()
                )
    if _bwrap_works:
        return "bwrap"
    if forced == "bwrap":
        raise SandboxUnavailable("INTUITOR_SANDBOX_BACKEND=bwrap but bubblewrap does not work here")
    return _check_unsafe("rlimit")


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


def _supervise(
    proc: subprocess.Popen, launch: _Launch, timeout: float, max_output: int, max_stderr: int
) -> SandboxResult:
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
    return SandboxResult(
        status, out, err, returncode, duration, truncated, launch.backend, peak_memory_mb=launch.peak_memory_mb()
    )
