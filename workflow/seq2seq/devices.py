"""Choosing the torch device from a config or command-line string."""

import os

import torch

from .logs import InputError


class DeviceError(InputError, ValueError):
    """A device setting this machine cannot satisfy (e.g. ``cuda`` without CUDA)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; any other name as given.

    A named CUDA device on a machine without CUDA is an error here rather than deep inside the first
    tensor copy.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested, but CUDA is not available on this machine (set "
                          f"training.device: auto or cpu, or run this job where a GPU is)")
    return device


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_cpu_threads(requested: int | None) -> int:
    """Use ``requested`` intra-op threads (None: keep torch's current setting), but never more than there are
    CPUs: `snakemake --cores 4` on a 2-core laptop gives a job 4 threads, and oversubscribed threads made
    training 2x slower here, not faster. Returns the number set."""
    threads = min(requested or torch.get_num_threads(), available_cpus())
    torch.set_num_threads(threads)
    return threads
