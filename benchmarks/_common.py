"""Shared helpers of the benchmark scripts: interleaved timing, honest peak-memory probes, tables.

Timing. Candidates are run round-robin (A B C A B C ...) after a warm-up round, and each reports the median of
its repeats, so a burst of load from another process hits all candidates alike; ratios are taken between
medians measured in the same run. Never compare figures from different runs.

Peak extra memory. On CUDA: `torch.cuda.max_memory_allocated()` after a reset, minus what was allocated before
the call. On CPU, torch keeps no allocator statistics, so we read the kernel's own counters: the process's peak
resident set (VmHWM in /proc/self/status) is reset by writing "5" to /proc/self/clear_refs before the call, and
the figure is VmHWM after the call minus VmRSS before it, i.e. every page the call touched beyond what was
already resident. For that to see the call's temporaries and nothing else, glibc must return freed blocks to
the kernel instead of recycling them: during each measurement `exact_cpu_peak()` sets M_MMAP_THRESHOLD to 64 KiB
(so every tensor buffer is its own mmap, unmapped on free) after `malloc_trim(0)` has released the free blocks
that earlier allocations left resident in glibc's arenas. Those settings change allocation costs (and glibc's
dynamic thresholds do not come back after them), so memory is measured in a separate pass after all timings.
Where neither probe is available (not Linux), memory is reported as n/a.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


MiB = float(1 << 20)


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextmanager
def exact_cpu_peak():
    """While active, freed tensor buffers go straight back to the kernel (glibc), so RSS deltas are exact.

    On entry: mmap every block of 64 KiB or more (so it is unmapped when freed), trim eagerly, and release what
    the arenas already hold (`malloc_trim(0)`). On exit: thresholds of 32 MiB / 64 MiB, where glibc's own dynamic
    thresholds settle once large blocks have been freed, so code that runs afterwards (other tests in the same
    process) allocates as it normally would.
    """
    libc = _libc()
    ok = libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, 64 << 10))
    ok = ok and bool(libc.mallopt(M_TRIM_THRESHOLD, 128 << 10))
    if ok:
        libc.malloc_trim(0)
    try:
        yield ok
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
            libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


def cpu_peak_available() -> bool:
    return _status_bytes("VmHWM") is not None and _reset_hwm()


def set_threads(n: int) -> None:
    """Use n torch CPU threads (0: leave torch's default).

    On a CPU shared with other busy processes, OpenMP's barriers wait for a thread whose core someone else holds:
    on our 2-core box a tiny model's decoding step took 200 ms with 2 threads and 1.2 ms with 1.
    """
    if n > 0:
        torch.set_num_threads(n)


def quiet_hf() -> None:
    """Offline, and no progress bars or info logs from transformers, datasets and the hub in the tables."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Peak:
    """Result of `peak_extra`: bytes allocated beyond the starting point, None when it cannot be measured."""

    extra: int | None = None


@contextmanager
def peak_extra(device: torch.device | str = "cpu"):
    """Measure the peak memory a block allocates beyond what exists when it starts (see the module docstring)."""
    import gc

    gc.collect()
    peak = Peak()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        yield peak
        torch.cuda.synchronize()
        peak.extra = torch.cuda.max_memory_allocated() - before
        return
    with exact_cpu_peak():
        before = _status_bytes("VmRSS")
        ok = before is not None and _reset_hwm()
        yield peak
        if ok:
            peak.extra = max(0, _status_bytes("VmHWM") - before)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def default_clock(device: torch.device | str = "cpu") -> str:
    """`cpu` (process CPU time) on CPU with one torch thread, else `wall`.

    With one thread, process CPU time (user + system, so page faults count) is what the work would take on an idle
    core; wall time adds however long other processes kept the core, which on a shared box varied 3x between
    repeats of the same call. With several threads CPU time sums them, and on CUDA the work is on the device, so
    both use wall time.
    """
    return "cpu" if torch.device(device).type == "cpu" and torch.get_num_threads() == 1 else "wall"


@dataclass
class Timings:
    """Seconds per call of each candidate, on both clocks; `timings[name]` reads the chosen one."""

    clock: str
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[float]:
        return (self.cpu if self.clock == "cpu" else self.wall)[name]


def interleaved(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    device: str = "cpu",
    clock: str | None = None,
) -> Timings:
    """Time each candidate `repeats` times, round-robin, after `warmup` untimed rounds."""
    out = Timings(clock or default_clock(device), {n: [] for n in candidates}, {n: [] for n in candidates})
    for r in range(warmup + repeats):
        for name, fn in candidates.items():
            synchronize(device)
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            w1, c1 = time.perf_counter(), time.process_time()
            if r >= warmup:
                out.wall[name].append(w1 - w0)
                out.cpu[name].append(c1 - c0)
    return out


def clock_note(clock: str) -> str:
    if clock == "cpu":
        return "times: process CPU seconds, 1 thread (user + system: page faults count; waits for a busy core don't)"
    return "times: wall-clock seconds"


def bootstrap_ratio(a: list[float], b: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of median(a) / median(b), resampling each list with replacement."""
    import random

    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b))) for _ in range(n)
    )
    return ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[float]) -> str:
    """'min-max' of the repeats, to show how noisy a median is."""
    return f"{min(xs):.3g}-{max(xs):.3g}" if xs else "-"


def machine(device: str = "cpu") -> str:
    """One line naming the machine, thread count and current load (other processes share these cores)."""
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"load average {load}"
    )


def fmt_mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MiB:.1f}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain-text table with right-aligned columns (first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


@dataclass
class Verdict:
    """A named target and whether it was met, printed as `PASS|FAIL  name: detail`."""

    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class Report:
    """What a benchmark's main() returns: its table rows, ratios and verdicts (the smoke test checks them)."""

    rows: list[dict] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    def print_verdicts(self) -> None:
        if self.verdicts:
            print("\ntargets:")
            for v in self.verdicts:
                print(f"  {v}")
