"""The sandboxed program's processes: a uid of its own for each run (as root), and killing by pid or by uid.

As root the program runs as a fresh unused uid: root ignores RLIMIT_NPROC, and a uid of its own lets us kill every
process it left, wherever it went. Kills go through a pidfd, so a recycled pid is never hit.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading


def _kill_pid(pid: int) -> int:
    try:
        fd = os.pidfd_open(pid)  # a handle first, so a recycled pid is never hit
    except OSError:
        return 0
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return 1
    except OSError:
        return 0
    finally:
        os.close(fd)


def _kill_uid(uid: int) -> int:
    """SIGKILL every process whose real, effective or saved uid is `uid`; return how many were found."""
    found = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fd = os.pidfd_open(int(entry.name))
        except OSError:
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if line.startswith(("State:", "Uid:")))
            if fields.get("State", "").split()[:1] == ["Z"]:
                continue  # already dead, waiting for its parent to reap it: not worth waiting for
            if str(uid) in fields["Uid"].split()[:3]:
                found += 1
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except (OSError, KeyError, ValueError):
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
