"""Choosing the torch device from a config or command-line string."""

import os

import torch

from .logs import InputError


class DeviceError(InputError, ValueError):
    """A device setting this machine cannot satisfy (e.g. ``cuda`` without CUDA)."""


def resolve_device(name: str, setting: str = "training.device") -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; any other name as given, if this machine has it.

    A device this machine lacks (CUDA or a CUDA index it does not have, MPS off a Mac, a device type PyTorch knows
    but the pipeline does not run on) is an error here, naming ``setting`` (the config key or option it came
    from), rather than deep inside the first tensor copy.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"device {name!r}: {error}") from None
    fix = f"use {setting} auto or cpu" if setting.startswith("-") else f"set {setting}: auto or cpu"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested, but CUDA is not available on this machine ({fix}, or "
                              f"run this job where a GPU is)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r} requested, but this machine has {count} CUDA device"
                              f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1}); {fix}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {name!r} requested, but MPS (Apple's GPU) is not available on this machine "
                              f"({fix})")
    elif device.type != "cpu":
        raise DeviceError(f"device {name!r}: the pipeline runs on cpu, cuda or mps ({fix})")
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
