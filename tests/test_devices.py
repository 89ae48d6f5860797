"""Device choice: a job without a GPU slot never takes a card; named devices are checked up front."""

import pytest
import torch

from seq2seq.devices import resolve_device
from seq2seq.logs import logging_to
from seq2seq.stages import device_for_job


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line_in_the_jobs_log(tmp_path, capsys):
    """Legitimate when Snakemake plans (a login node plans GPU jobs), but in the job: one line, no traceback."""
    log = tmp_path / "train.log"
    with pytest.raises(SystemExit), logging_to(log, "training"):
        resolve_device("cuda")
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "ERROR seq2seq.training: training failed: device 'cuda' requested, but CUDA is not available on this "
        "machine (set training.device: auto or cpu, or run this job where a GPU is)")
    assert "Traceback" not in capsys.readouterr().err
