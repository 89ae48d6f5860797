"""The machine a benchmark ran on, described the same way by every script in workflow/benchmarks/.

Standard library only at import time (torch is imported inside the functions that need it), so that
``joeynmt_peer.py``, which runs in JoeyNMT's own environment and imports nothing of the package, can use it too.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` prints it (else /proc/cpuinfo, else platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C"})
        for line in out.stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``unknown``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def thread_env(threads: int) -> dict[str, str]:
    """This process's environment with OpenMP/MKL limited to ``threads`` threads (for a child process)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that a clock read after it is honest."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_flops(device: torch.device, size: int = 1024, seconds: float = 1.0, rounds: int = 3,
                         dtype: torch.dtype | None = None) -> float:
    """Best ``torch.mm`` rate (FLOP/s) of [size,size] x [size,size] in ``dtype`` (default fp32) over ``rounds``
    timed rounds of about ``seconds`` each."""
    import torch

    dtype = dtype or torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    flop = 2.0 * size ** 3
    for _ in range(3):
        torch.mm(a, b, out=out)
    synchronize(device)
    start = time.perf_counter()
    torch.mm(a, b, out=out)
    synchronize(device)
    repeats = max(5, int(seconds / max(time.perf_counter() - start, 1e-6)))
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        synchronize(device)
        best = max(best, flop * repeats / (time.perf_counter() - start))
    return best


def machine_info(device: torch.device, threads: int, matmul_flops_per_s: float | None = None) -> dict:
    """cpu, cores (those this process may run on: a Slurm job's or a container's CPU set, not the host's), torch,
    device, threads, ``matmul_gflops`` (when a rate is given) and, on CUDA, the gpu."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": cpu_model(), "cores": cores, "torch": torch.__version__, "device": str(device),
            "threads": threads}
    if matmul_flops_per_s is not None:
        info["matmul_gflops"] = round(matmul_flops_per_s / 1e9, 1)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
