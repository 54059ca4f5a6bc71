"""What a sandboxed run reports, and the caps on what it may hand back.

`SandboxResult` is one run's outcome (`run_python`, `SandboxSession.close`); `ProgramFailed` is a session's "no
well-formed answer" (a fail, never a pass); `SandboxUnavailable` says that nothing here can isolate model code and
the user did not opt in to running it without isolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


STATUSES = ("ok", "error", "timeout", "memory")
_MEMORY_SIGNS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory")
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
