"""Device choice: a job without a GPU slot never takes a card; named devices are checked up front."""

import pytest
import torch

from seq2seq.devices import device_for_job, resolve_device


@pytest.mark.parametrize(("device", "gpus", "expected"), [
    ("auto", 0, "cpu"),  # e.g. `evaluate` with its default gpu=0: stays off a card that training may hold
    ("auto", 1, "auto"),
    ("cuda:1", 0, "cuda:1"),  # an explicit choice is the user's
    ("cpu", 1, "cpu"),
])
def test_auto_means_cpu_for_a_job_that_holds_no_gpu(device, gpus, expected):
    assert device_for_job(device, gpus) == expected


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
