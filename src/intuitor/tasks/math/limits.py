"""Where a math check runs, and how long and how large it may grow.

math-verify bounds each `parse`/`verify` step with `signal.alarm`, which only works in the main thread and cannot
interrupt long C-level work (`\\boxed{9^{9^{9^{9}}}}` makes SymPy build a 370-million-digit integer). So a check
runs in one persistent helper process (`_in_helper`; started on first use, its start not charged to a check): the
helper bounds each step with its own timer (`_with_alarm`, `DEADLINE_GRACE_S` short of the limit) and reports after
each one (a `tick` line); when a step reaches the limit without a report, the caller kills the helper and the next
check starts a new one. The helper's address space is capped (`HELPER_MEMORY_BYTES`, RLIMIT_AS). `_run_request`
runs one request in this process instead (`isolate=False`, main thread only). See `intuitor.tasks.mathverify`.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from intuitor.tasks.math.equivalence import _check, _classes_of


class _CheckTimeout(BaseException):
    """The helper's step timer. Not an Exception: math-verify's `parse` and SymPy swallow those (`except Exception`),
    which would turn a timeout into an unbounded second attempt."""


HELPER_MEMORY_BYTES = 512 << 20  # the helper's address space (RLIMIT_AS; it needs ~70 MB): towers fail, not swap
DEADLINE_GRACE_S = 0.5  # the helper's own timer fires this much before `timeout_s`; at `timeout_s` it is killed


def _alarm_usable() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # don't clobber someone else's timer
    )


def _with_alarm(timeout_s: float, tick=None):
    """`bounded(fn, *args, default=...)`: fn(*args) under an ITIMER_REAL timer (main thread); default on timeout
    or error (unparsable or incomparable answers are simply not equal). `bounded.limit` records the last limit hit
    ("time" or "memory"); `tick()`, if given, runs after each step (the helper's heartbeat to its caller)."""

    def bounded(fn, *args, default):
        def on_alarm(signum, frame):
            raise _CheckTimeout

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return fn(*args)
        except _CheckTimeout:
            bounded.limit = "time"
            return default
        except MemoryError:  # the helper's address-space limit
            bounded.limit = "memory"
            return default
        except Exception:
            return default
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if tick is not None:
                tick()

    bounded.limit = None
    return bounded


def _run_request(req: dict, tick=None):
    """One request: a check gives True, False or the limit it hit ("time" / "memory"); classes give lists."""
    bounded = _with_alarm(req["timeout"], tick)
    if req.get("op") == "classes":
        return [_classes_of(group, bounded) for group in req["groups"]]
    verdict = bounded(_check, req["pred"], req["gold"], default=False)
    return bounded.limit or verdict


# --------------------------------------------------------------------------------------------------------------
# The helper process


def _serve() -> None:
    """Helper process main loop: one JSON request per stdin line; a `tick` line after each bounded step, then one
    JSON reply line."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints from SymPy must not corrupt the protocol

    def tick() -> None:
        reply.write("tick\n")
        reply.flush()

    try:
        import resource

        cap = HELPER_MEMORY_BYTES  # a runaway integer raises MemoryError (or GMP aborts the helper), never eats RAM
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass
    import math_verify  # noqa: F401  (warm up before saying ready)

    reply.write("ready\n")
    reply.flush()
    for line in sys.stdin:
        reply.write(json.dumps(_run_request(json.loads(line), tick)) + "\n")
        reply.flush()


class _Helper:
    STARTUP_S = 120.0  # importing SymPy on a loaded machine

    def __init__(self):
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[3])  # so the helper imports this very copy of intuitor
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")  # one check at a time: no thread pools (and their address space)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from intuitor.tasks.math.limits import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buf = b""
        if self._readline(self.STARTUP_S) != "ready":
            self.kill()
            raise RuntimeError(
                f"the math-verify helper process did not start; check that `{sys.executable} -c "
                f"'import math_verify, intuitor'` works"
            )

    def _readline(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # helper died
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def request(self, req: dict, step_s: float):
        """The helper's reply, or None when one step ran past `step_s` without a tick, or the helper died (then it
        must be replaced)."""
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        while True:
            line = self._readline(step_s)
            if line != "tick":
                return None if line is None else json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def _in_helper(req: dict):
    """Run one request in the helper; None when a step overran its limit (C-level work the helper's own timer
    could not stop) or the helper died (its memory limit): the helper is then killed, and a new one starts on the
    next request (its start-up is not charged to that request's limit)."""
    global _helper
    with _helper_lock:  # one request at a time; the protocol is strictly request -> reply
        if _helper is None or _helper.owner != os.getpid():  # a forked child must not share its parent's pipes
            _helper = _Helper()
        limit = req["timeout"]  # the helper's own timer fires a little earlier, so that its reply is in time
        result = _helper.request({**req, "timeout": max(limit - DEADLINE_GRACE_S, limit / 2)}, limit)
        if result is None:
            _helper.kill()
            _helper = None
        return result


@atexit.register
def _stop_helper() -> None:
    if _helper is not None and _helper.owner == os.getpid():
        _helper.kill()
