"""Answer checking for the math tasks: `math_equal`, `extract_boxed`, `extract_gsm8k_gold`.

`math_equal(response_or_answer, gold)` decides whether a model's response (or a bare answer) states the gold answer,
with Hugging Face's `math-verify` (`parse` then `verify`): `\\frac{1}{2}` equals `0.5`, `\\boxed{2}` equals `2.0`,
`1,234` equals `1234`, `x=3` equals `3`. The math tasks' `score` and the accuracy reward both call it.

Which answer is read from a response: the content of the LAST `\\boxed{...}` (or `\\fbox{...}`) when there is one;
otherwise math-verify's own extraction ("final answer is ...", the last LaTeX or plain number). math-verify by
itself would merge several boxes into one set (`\\boxed{4} ... \\boxed{5}` -> {4, 5}), which is never right.
The gold is parsed as if it were boxed (`\\boxed{gold}`), or from its own last box if it has one.

Time limit. math-verify bounds each `parse`/`verify` step with `signal.alarm`, which (a) only works in the main
thread (it raises `ValueError` inside TRL's or any other worker thread) and (b) cannot interrupt long C-level work:
`\\boxed{9^{9^{9^{9}}}}` makes SymPy build a 370-million-digit integer and the alarm never fires. So by default
each check runs in one persistent helper process (started on first use, about a second): the helper bounds each
check with its own timer, and the caller kills and restarts it when an answer overruns `timeout_s` anyway. That works
from any thread and any process (TRL reward calls, evaluation threads, DataLoader workers). `isolate=False` checks
in this process instead: faster for bulk offline scoring, bounded by a SIGALRM timer in the main thread (in other
threads, or when another ITIMER_REAL is running, it falls back to the helper). A check that times out counts as wrong.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["math_equal", "extract_boxed", "extract_gsm8k_gold"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` in `text` (nested braces kept), or None.

    >>> extract_boxed(r"so $x = \\boxed{\\frac{1}{2}}$")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"first \\boxed{4}, finally \\boxed{5}.")
    '5'
    >>> extract_boxed(r"\\boxed 7") , extract_boxed("no box") , extract_boxed(r"\\boxed{unclosed")
    ('7', None, None)
    """
    if not text:
        return None
    start, command = max((text.rfind(c), c) for c in _BOX_COMMANDS)
    if start < 0:
        return None
    i = start + len(command)
    if i < len(text) and text[i] == " ":  # `\boxed 7` form: up to the next space or `$`
        m = re.match(r" +([^\s$]+)", text[i:])
        return m.group(1) if m else None
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def extract_gsm8k_gold(answer: str) -> str:
    """The final number of a GSM8K worked solution: what follows `#### `, thousands commas removed.

    >>> extract_gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18.\\n#### 1,234")
    '1234'
    """
    if "####" not in answer:
        raise ValueError(f"GSM8K answer has no '#### <number>' line: {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "").rstrip(".")


# --------------------------------------------------------------------------------------------------------------
# The check itself (runs in the helper process, or here with isolate=False)


class _CheckTimeout(Exception):
    pass


class _DropTimeoutDisabledWarning(logging.Filter):
    """We pass math-verify's timeouts as None (we time the whole check ourselves); silence its warning about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def _parse(text: str) -> list:
    from math_verify import parse

    return parse(text, parsing_timeout=None)  # type: ignore[arg-type]  # None: no signal use inside


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    # GRPO checks num_generations responses against the same gold: parse it once.
    boxed = extract_boxed(gold)
    parsed = _parse(f"\\boxed{{{boxed if boxed is not None else gold}}}")
    return tuple(parsed or _parse(gold))


def _check(pred: str, gold: str) -> bool:
    from math_verify import verify

    gold_parsed = list(_parse_gold(gold.strip()))
    if not gold_parsed:
        return False
    boxed = extract_boxed(pred)
    pred_parsed = _parse(f"\\boxed{{{boxed}}}") if boxed is not None else _parse(pred)
    if not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _alarm_usable() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # don't clobber someone else's timer
    )


def _check_with_alarm(pred: str, gold: str, timeout_s: float) -> bool:
    """`_check` bounded by an ITIMER_REAL timer (main thread only); a timeout counts as not equal."""

    def on_alarm(signum, frame):
        raise _CheckTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return _check(pred, gold)
    except _CheckTimeout:
        return False
    except Exception:  # unparsable or incomparable answers are simply not equal
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------------------------
# The helper process


def _serve() -> None:
    """Helper process main loop: one JSON request per stdin line, one '1'/'0' reply per stdout line."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints from SymPy must not corrupt the protocol
    try:
        import resource

        cap = 4 << 30  # a runaway integer should raise MemoryError, not eat the machine
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass
    import math_verify  # noqa: F401  (warm up before saying ready)

    reply.write("ready\n")
    reply.flush()
    for line in sys.stdin:
        req = json.loads(line)
        ok = _check_with_alarm(req["pred"], req["gold"], req["timeout"])
        reply.write("1\n" if ok else "0\n")
        reply.flush()


class _Helper:
    STARTUP_S = 120.0  # importing SymPy on a loaded machine

    def __init__(self):
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # so the helper imports this very copy of intuitor
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")  # one check at a time: no thread pools (and their address space)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from intuitor.tasks.mathverify import _serve; _serve()"],
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
            chunk = os.read(fd, 4096)
            if not chunk:  # helper died
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def check(self, pred: str, gold: str, timeout_s: float) -> bool | None:
        """True/False, or None when the helper overran its deadline or died (then it must be replaced)."""
        request = json.dumps({"pred": pred, "gold": gold, "timeout": timeout_s}) + "\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        line = self._readline(timeout_s + 1.0 + 0.5 * timeout_s)  # the helper's own timer fires first normally
        return None if line is None else line == "1"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def _check_in_helper(pred: str, gold: str, timeout_s: float) -> bool:
    global _helper
    with _helper_lock:  # one request at a time; the protocol is strictly request -> reply
        if _helper is None or _helper.owner != os.getpid():  # a forked child must not share its parent's pipes
            _helper = _Helper()
        result = _helper.check(pred, gold, timeout_s)
        if result is None:  # overran (C-level work the helper's own timer could not stop) or died
            _helper.kill()
            _helper = None
            return False
        return result


@atexit.register
def _stop_helper() -> None:
    if _helper is not None and _helper.owner == os.getpid():
        _helper.kill()


def math_equal(response_or_answer: str, gold: str, timeout_s: float = 5.0, isolate: bool = True) -> bool:
    """Whether `response_or_answer` (a full response or a bare answer) states the same value as `gold`.

    The answer compared is the last `\\boxed{}` of the response when it has one (see the module docstring). A check
    that takes longer than `timeout_s` seconds counts as False. `isolate=False`: check in this process (see above).

    >>> math_equal(r"... so the answer is $\\boxed{\\frac{1}{2}}$.", "0.5")
    True
    >>> math_equal(r"\\boxed{2}", "2.0"), math_equal("1,234", "1234"), math_equal(r"\\boxed{3}", "4")
    (True, True, False)
    """
    if not response_or_answer or gold is None or not str(gold).strip():
        return False
    pred, gold = str(response_or_answer), str(gold)
    if not isolate and _alarm_usable():
        return _check_with_alarm(pred, gold, timeout_s)
    return _check_in_helper(pred, gold, timeout_s)
