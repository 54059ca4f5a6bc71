"""cgroups: one memory and one cpu group per run, under the cgroups this process is in (v1 or v2).

Where a memory cgroup is writable (root, cgroup v1 memory or a v2 tree with the memory controller) it bounds the
whole program's memory: every process, tmpfs/memfd page and kernel object (inodes of a million empty files) counts
against `memory_mb`; without one, `memory_mb` is an address-space limit per process (`memory_scope()` says which
holds). A cpu cgroup, where writable, gives the whole run `cpus` CPUs (`cpu_scope()`), so a program of many busy
processes is one contender. Both are probed once, by making and removing a group.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from typing import Any

from intuitor.sandbox.processes import _kill_pid


logger = logging.getLogger(__name__)

_cgroup_lock = threading.Lock()
_cgroup_probed = False
_cgroup_base: tuple[str, str] | None = None  # memory: (version "v1" | "v2", folder to create runs in)
_cpu_base: tuple[str, str] | None = None  # cpu: the same, or None
CPU_PERIOD_US = 100_000

# What a run's group holds, per version: (file, value, optional).
_MEMORY_SETTINGS = {
    "v2": lambda limit: [("memory.max", limit, False), ("memory.swap.max", 0, True), ("memory.oom.group", 1, True)],
    "v1": lambda limit: [
        ("memory.limit_in_bytes", limit, False),
        ("memory.memsw.limit_in_bytes", limit, True),
    ],  # no swapping past the limit
}
_CPU_SETTINGS = {
    "v2": lambda cpus: [("cpu.max", f"{max(1000, int(cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}", False)],
    "v1": lambda cpus: [
        ("cpu.cfs_period_us", CPU_PERIOD_US, False),
        ("cpu.cfs_quota_us", max(1000, int(cpus * CPU_PERIOD_US)), False),
    ],
}


def memory_scope() -> str:
    """ "program (cgroup v1)" / "program (cgroup v2)" where a cgroup bounds the whole program's memory; else
    "process" (memory_mb is an address-space limit per process: the bound is processes * memory_mb)."""
    base = _memory_cgroup_base()
    return f"program (cgroup {base[0]})" if base else "process"


def cpu_scope() -> str:
    """ "program (cgroup v1)" / "program (cgroup v2)" where a cpu cgroup caps the whole program at `cpus` CPUs (and
    makes it one contender, however many processes it runs); else "process" (only RLIMIT_CPU, per process)."""
    base = _cpu_cgroup_base()
    return f"program (cgroup {base[0]})" if base else "process"


def _memory_cgroup_base() -> tuple[str, str] | None:
    global _cgroup_probed, _cgroup_base, _cpu_base
    with _cgroup_lock:
        if not _cgroup_probed:
            _cgroup_probed = True
            for controller in ("memory", "cpu"):
                try:
                    found = _find_cgroup(controller)
                except OSError as error:
                    logger.info("intuitor sandbox: no %s cgroup: %s", controller, error)
                    found = None
                if controller == "memory":
                    _cgroup_base = found
                else:
                    _cpu_base = found
        return _cgroup_base


def _cpu_cgroup_base() -> tuple[str, str] | None:
    _memory_cgroup_base()
    return _cpu_base


def _find_cgroup(controller: str) -> tuple[str, str] | None:
    if os.environ.get("INTUITOR_SANDBOX_NO_CGROUP"):  # tests of the fallback
        return None
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            mounts.append((fields[3], fields[4], tail[0], tail[2].split(",") if len(tail) > 2 else []))
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    candidates = []
    for root, point, fstype, options in mounts:
        if fstype == "cgroup" and controller in options:
            key = next((c for c in own if controller in c.split(",")), None)
            if key is not None:
                candidates.append(("v1", root, point, own[key]))
        elif fstype == "cgroup2" and "" in own:
            candidates.append(("v2", root, point, own[""]))
    settings = {"memory": _MEMORY_SETTINGS, "cpu": _CPU_SETTINGS}[controller]
    probe_value = {"memory": 64 << 20, "cpu": 1.0}[controller]
    for version, root, point, path in candidates:
        if root != "/" and path.startswith(root):
            path = path[len(root) :]
        folder = os.path.join(point, path.lstrip("/"))
        if version == "v2":
            with open(os.path.join(folder, "cgroup.controllers")) as f:
                if controller not in f.read().split():
                    continue
        probe = _Cgroup(version, folder, settings[version](probe_value))
        ok = probe.usable
        probe.remove()
        if ok:
            return version, folder
    return None


class _Cgroup:
    def __init__(self, version: str, parent: str, settings: list[tuple[str, Any, bool]]):
        self.version, self.path, self.usable = version, os.path.join(parent, f"intuitor-{secrets.token_hex(6)}"), False
        try:
            os.mkdir(self.path, 0o755)
        except OSError:
            self.path = None
            return
        try:
            if version == "v2":
                subtree = os.path.join(parent, "cgroup.subtree_control")
                with open(subtree) as f:
                    enabled = f.read().split()
                for controller in {name.split(".")[0] for name, _, optional in settings if not optional}:
                    if controller not in enabled:
                        with open(subtree, "w") as g:  # EBUSY when the parent holds processes: no cgroup then
                            g.write(f"+{controller}")
            for name, value, optional in settings:
                self._write(name, value, optional)
            self.usable = True
        except OSError as error:
            logger.debug("cgroup %s unusable: %s", self.path, error)

    def _write(self, name: str, value: Any, optional: bool = False) -> None:
        path = os.path.join(self.path, name)
        if optional and not os.path.exists(path):
            return
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError:
            if not optional:
                raise

    def _read(self, name: str) -> str:
        try:
            with open(os.path.join(self.path, name)) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split()]

    def oom_kills(self) -> int:
        text = self._read("memory.events" if self.version == "v2" else "memory.oom_control")
        match = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(match[1]) if match else 0

    def peak_mb(self) -> float | None:
        text = self._read("memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes").strip()
        return int(text) / (1 << 20) if text.isdigit() else None

    def remove(self) -> None:
        if self.path is None:
            return
        if self.version == "v2" and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            self._write("cgroup.kill", 1, optional=True)
        deadline = time.monotonic() + 5
        while True:
            for pid in self.pids():
                _kill_pid(pid)
            try:
                os.rmdir(self.path)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    logger.warning("intuitor sandbox: cannot remove cgroup %s: %s", self.path, error)
                    return
                time.sleep(0.01)
