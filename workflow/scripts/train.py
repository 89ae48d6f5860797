"""Snakemake script of rule `train` (seq2seq.training.train_from_files); by hand: python -m seq2seq train."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.checkpoint import Metadata  # noqa: E402
from seq2seq.devices import device_for_job  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import TrainConfig  # noqa: E402
from seq2seq.training import train_from_files  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "training"):
    training = TrainConfig(**smk.params.training)
    training.device = device_for_job(training.device, smk.resources.get("gpu", 0))
    train_from_files(**rule_files(smk), model_settings=dict(smk.params.model), training=training,
                     resume=smk.params.resume, metadata=Metadata(**smk.params.metadata), threads=smk.threads)
