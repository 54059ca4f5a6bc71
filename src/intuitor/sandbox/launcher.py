"""The launcher: the first Python to run inside the sandbox, before any model code.

`isolation.py` starts it as `python -I -c _LAUNCHER <json config>` (inside bwrap, or bare under the opt-in "rlimit"
backend). It sets no_new_privs, installs a seccomp filter (refusing keyrings, ptrace and every socket but AF_UNIX;
a foreign ABI is refused whole), applies the setrlimit limits, drops to the run's own uid when we are root, then
execs main.py: the model's program, or the session server (`server.py`), which keeps root with
CAP_SETUID/SETGID/KILL only. Under "rlimit" there is no namespace, so it also refuses sockets in Python and runs the
program in its own process. It is shipped as text and must import only the stdlib.
"""

# Runs inside the sandbox as `python -I -c _LAUNCHER <json>`: it must import only the stdlib.
_LAUNCHER = r"""
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
"""
