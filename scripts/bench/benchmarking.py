# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""Helpers shared by the benchmark scripts in `scripts/bench/` (imported as `benchmarking`: each script runs with
this folder first on `sys.path`). Not part of the importable package.

Timing with warm-up and repeats, the peak resident memory of a block of code, a description of the
machine, Markdown tables and JSON reports. Only the standard library, NumPy and torch are needed;
`psutil` is used when installed.

Example:

```python
>>> from benchmarking import PeakMemory, time_call
>>> with PeakMemory() as memory:
...     timing, total = time_call(lambda: sum(range(1000)), repeats=3, warmup=1)
>>> total, len(timing.times), memory.delta_bytes >= 0
(499500, 3, True)

```
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modeling_tfcovr.io_utils import atomic_write

__all__ = [
    "BenchmarkReport",
    "PeakMemory",
    "Timing",
    "busy_processes",
    "command_line",
    "current_rss_bytes",
    "format_bytes",
    "format_table",
    "machine_info",
    "ratio",
    "release_memory",
    "time_call",
    "write_json",
]

_PROC_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


# ----------------------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock times (seconds) of the measured repeats of one operation (warm-up runs excluded).

    Attributes:
        times: seconds of each measured repeat, in order.
        warmup: number of warm-up runs that preceded them.
    """

    times: list[float]
    warmup: int = 0

    @property
    def best(self) -> float:
        """The fastest repeat: the usual estimate of the cost without interference from other work."""
        return min(self.times)

    @property
    def median(self) -> float:
        """The median repeat."""
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        """The mean repeat."""
        return statistics.fmean(self.times)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: every time, best, median and mean."""
        return {
            "times_s": [round(t, 6) for t in self.times],
            "best_s": round(self.best, 6),
            "median_s": round(self.median, 6),
            "mean_s": round(self.mean, 6),
            "repeats": len(self.times),
            "warmup": self.warmup,
        }


def time_call(
    function: Callable[[], Any],
    repeats: int = 3,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
) -> tuple[Timing, Any]:
    """Times `function()` `repeats` times after `warmup` untimed calls.

    Args:
        function: the operation, called without arguments.
        repeats: measured calls (at least 1).
        warmup: untimed calls before them (first-call costs: allocation, lazy initialisation, caches).
        synchronize: called before each clock reading, e.g. `torch.cuda.synchronize` for GPU work.

    Returns:
        `(timing, result)`: the [`Timing`] and the result of the last call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    sync = synchronize or (lambda: None)
    result = None
    for _ in range(max(0, warmup)):
        result = function()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        sync()
        times.append(time.perf_counter() - start)
    return Timing(times, warmup=max(0, warmup)), result


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, `nan` when the denominator is zero."""
    return numerator / denominator if denominator else float("nan")


# ----------------------------------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------------------------------


def _status_kib(field_name: str) -> int | None:
    try:
        with open(_PROC_STATUS, encoding="ascii") as handle:
            match = re.search(rf"^{field_name}:\s+(\d+) kB", handle.read(), flags=re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def current_rss_bytes() -> int:
    """Resident memory of this process in bytes (from `/proc`, else `psutil`, else the peak from `getrusage`)."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def release_memory() -> None:
    """Collects garbage and asks glibc to return freed heap pages to the system (so RSS reflects live memory)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter (`VmHWM`) of this process; `False` where that is not possible."""
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class PeakMemory:
    """Measures the peak resident memory (RSS) of the process while a block runs.

    On Linux the kernel's own peak counter is reset at the start (`/proc/self/clear_refs`) and read at the end, so
    short spikes are caught exactly; elsewhere a thread samples the RSS every `interval` seconds. Freed memory is
    released to the system before the start reading (see [`release_memory`]), so `delta_bytes` is the memory the
    block needed above what was already live. Memory of child processes (DataLoader workers) is not included.

    Attributes:
        start_bytes: RSS when the block started.
        peak_bytes: highest RSS during the block.
        delta_bytes: `peak_bytes - start_bytes`.
        end_bytes: RSS when the block ended (what it left allocated).
        method: `"vmhwm"` (kernel counter) or `"sampling"`.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start_bytes = self.peak_bytes = self.end_bytes = 0
        self.method = "vmhwm"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        release_memory()
        self.start_bytes = current_rss_bytes()
        if _reset_peak_rss():
            self.method = "vmhwm"
        else:
            self.method = "sampling"
            self.peak_bytes = self.start_bytes
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, current_rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc_info: object) -> None:
        self.end_bytes = current_rss_bytes()
        if self.method == "vmhwm":
            self.peak_bytes = (_status_kib("VmHWM") or 0) * 1024
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.end_bytes, self.start_bytes)

    @property
    def delta_bytes(self) -> int:
        return self.peak_bytes - self.start_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (bytes)."""
        return {
            "start_rss_bytes": self.start_bytes,
            "peak_rss_bytes": self.peak_bytes,
            "peak_increase_bytes": self.delta_bytes,
            "end_rss_bytes": self.end_bytes,
            "method": self.method,
        }


def format_bytes(value: float) -> str:
    """`1536` -> `"1.5 KiB"`; binary units up to TiB."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(float(value))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    return f"{sign}{value:.1f} TiB"


# ----------------------------------------------------------------------------------------------------------------------
# Machine
# ----------------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The SIMD extensions that matter for the kernels timed here (AVX2, AVX-512, AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(
                        f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "fma"}
                    )
    except OSError:
        pass
    return []


def busy_processes(min_cpu_percent: float = 50.0, exclude_pid: int | None = None) -> list[str]:
    """Other processes using at least `min_cpu_percent` of a core (`ps`), as `"pid %cpu command"` lines.

    Benchmarks on a shared machine are slowed by such processes; the reports list them.
    """
    own = {os.getpid(), os.getppid(), exclude_pid}
    try:
        output = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in output.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        try:
            pid, cpu = int(parts[0]), float(parts[1])
        except ValueError:
            continue
        if cpu >= min_cpu_percent and pid not in own and not parts[2].startswith("ps "):
            busy.append(f"{pid} {cpu:.0f}% {parts[2][:120]}")
    return busy


def machine_info() -> dict[str, Any]:
    """The machine and software a benchmark ran on: CPU, cores, memory, library versions, threads, GPU."""
    import numpy as np
    import torch

    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable_cores = os.cpu_count()
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "nproc": usable_cores,
        "cpu_count": os.cpu_count(),
        "memory_gib": None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "other_busy_processes": busy_processes(),
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover - a project dependency
        pass
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        pass
    return info


# ----------------------------------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | Mapping[str, str] | None = None) -> str:
    """A Markdown table of `rows` (dicts).

    Args:
        rows: one dict per row.
        columns: the keys to show, in order (default: the keys of the first row), or a mapping from keys to headers.
            Floats are shown with 3 decimals below 10 and 1 above; keys ending in `_bytes` in binary units (KiB, MiB,
            ...); booleans as yes/no; missing keys as empty cells.
    """
    if not rows:
        return ""
    if columns is None:
        columns = list(rows[0])
    headers = dict(columns) if isinstance(columns, Mapping) else {key: key for key in columns}
    lines = ["| " + " | ".join(headers.values()) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [
            format_bytes(row[key]) if key.endswith("_bytes") and row.get(key) is not None else _cell(row.get(key))
            for key in headers
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _jsonable(value.to_dict())
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # NumPy / torch scalars
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Writes `payload` as indented JSON to `path` (parent folders created); NaN/inf become `null`."""
    path = Path(path)
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(_jsonable(payload), indent=2) + "\n")
    return path


@dataclass
class BenchmarkReport:
    """What every benchmark script writes: its name, the command, the machine, results, checks and targets.

    Attributes:
        name: the benchmark (`"retrieval"`, `"ingest"`, `"train"`, `"model"`).
        command: the command line that produced it.
        settings: the sizes and options used.
        machine: [`machine_info`] at the start.
        results: measured rows and derived ratios.
        checks: result-equality checks (`name -> {"passed": bool, ...}`); any failure makes the script exit non-zero.
        targets: performance targets (`name -> {"target": str, "value": float, "met": bool}`), reported, never asserted.
    """

    name: str
    command: str
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=machine_info)
    results: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float | None = None

    def add_check(self, name: str, passed: bool, **details: Any) -> bool:
        """Records a result-equality check; returns `passed`."""
        self.checks[name] = {"passed": bool(passed), **details}
        return bool(passed)

    def add_target(self, name: str, value: float, target: str, met: bool) -> None:
        """Records a performance target and whether the measured `value` met it."""
        self.targets[name] = {"value": value, "target": target, "met": bool(met)}

    @property
    def passed(self) -> bool:
        """Whether every result-equality check passed."""
        return all(check["passed"] for check in self.checks.values())

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the checks and targets."""
        lines = []
        for name, check in self.checks.items():
            lines.append(f"check  {name}: {'PASS' if check['passed'] else 'FAIL'}")
        for name, target in self.targets.items():
            lines.append(
                f"target {name}: {_cell(target['value'])} (target {target['target']}) -> "
                f"{'met' if target['met'] else 'NOT met'}"
            )
        return lines

    def write(self, path: str | os.PathLike) -> Path:
        """Writes the report as JSON."""
        return write_json(path, {**asdict(self), "passed": self.passed})

    def finish(self, path: str | os.PathLike, started: float) -> int:
        """The end of a benchmark: records the wall time since `started` (`time.perf_counter()`), prints the
        summary, writes the report to `path` and returns the exit status (1 when a check failed)."""
        self.wall_time_s = time.perf_counter() - started
        print("\n" + "\n".join(self.summary_lines()))
        print(f"wrote {self.write(path)} ({self.wall_time_s:.1f} s)")
        return 0 if self.passed else 1


def parse_benchmark_args(parser, argv: Sequence[str] | None, quick: Mapping[str, Any]):
    """Parses `argv`; with `--quick`, every option the user left at its default takes its `quick` value."""
    args = parser.parse_args(argv)
    if args.quick:
        defaults = parser.parse_args([])
        for key, value in quick.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    return args


def settings_of(args) -> dict[str, Any]:
    """The parsed options as JSON-ready settings (paths as strings)."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that ran `script` with `argv` (or `sys.argv[1:]`), for the reports."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", script, *args])
