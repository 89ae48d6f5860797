"""Choosing the torch device from a config or command-line string."""

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; any other name as given.

    A named CUDA device on a machine without CUDA is an error here rather than deep inside the first
    tensor copy.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested, but CUDA is not available on this machine")
    return device
