"""Isolation: everything one sandboxed process needs and leaves (`_Launch`), and the bubblewrap command around it.

Bubblewrap gives new PID, network, IPC, UTS and cgroup namespaces; a root file system holding only /usr, the
interpreter's folders, a generated /etc/passwd with the sandbox user, all read-only, and size-capped tmpfs /tmp and
/dev/shm; killing bwrap kills its PID namespace. Inside, the launcher (`launcher.py`) adds no_new_privs, seccomp,
the setrlimit limits built here (CPU seconds, tasks, open files, file size, and memory per process where no cgroup
bounds the whole program) and the uid drop. A `_Launch` also owns the run's working folder, its cgroups
(`cgroups.py`) and its uid (`processes.py`), and removes them all on exit.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from intuitor.sandbox.cgroups import _CPU_SETTINGS, _MEMORY_SETTINGS, _Cgroup, _cpu_cgroup_base, _memory_cgroup_base
from intuitor.sandbox.launcher import _LAUNCHER
from intuitor.sandbox.optin import BACKENDS, _check_unsafe
from intuitor.sandbox.processes import _fresh_uid, _kill_pid, _kill_uid, _release_uid


logger = logging.getLogger(__name__)

_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_warned_scope = False


class _Launch:
    """Everything one sandboxed process needs and leaves: backend, uid, working folder, cgroup; cleaned on exit."""

    def __init__(
        self,
        code,
        timeout,
        memory_mb,
        processes,
        open_files,
        disk_mb,
        backend,
        python,
        cpus=1.0,
        server=False,
        *,
        choose: Callable[[], str],
    ):
        """`choose` picks the backend when `backend` is None (`run.sandbox_backend`, handed in because it probes
        bubblewrap by running a program through this class); it is called after the limits are checked."""
        if timeout <= 0 or memory_mb <= 0 or processes <= 0 or open_files <= 0 or disk_mb <= 0 or cpus <= 0:
            raise ValueError(
                f"timeout={timeout}, memory_mb={memory_mb}, processes={processes}, open_files={open_files}, "
                f"disk_mb={disk_mb}, cpus={cpus}: all limits must be positive"
            )
        if backend is None:
            backend = choose()
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
        self.etc = {
            "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{uid}:{gid}:sandbox:/tmp:"
            "/usr/sbin/nologin\n"
            if uid != 0
            else "root:x:0:0:root:/tmp:/usr/sbin/nologin\n",
            "group": f"root:x:0:\nsandbox:x:{gid}:\n" if gid != 0 else "root:x:0:\n",
        }
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
                logger.warning(
                    "intuitor sandbox: no writable memory cgroup here: memory_mb bounds each process, "
                    "so a program may use up to processes * memory_mb (run as root for a total bound)"
                )
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
        cfg = {
            "mode": self.backend,
            "python": self.python,
            "uid": self.uid,
            "rlimits": self.rlimits,
            "session": self.server,
            "server": self.server and self.backend == "bwrap" and self.uid is not None,
        }
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
        return subprocess.Popen(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
        )

    def _bwrap_options(self) -> list[str]:
        args = [
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
        ]
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
        args += [
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--perms",
            "1777",
            "--size",
            size,
            "--tmpfs",
            "/dev/shm",
            "--perms",
            "1777",
            "--size",
            size,
            "--tmpfs",
            "/tmp",
        ]
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
        return args + [
            "--ro-bind",
            self.main,
            "/tmp/main.py",
            "--chdir",
            "/tmp",
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
        ]

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
    candidates = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.abspath(python)),
        os.path.dirname(os.path.realpath(python)),
    }
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
