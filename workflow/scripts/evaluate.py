"""Snakemake script of rule `evaluate` (seq2seq.evaluation.evaluate_model); by hand: python -m seq2seq evaluate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.devices import device_for_job  # noqa: E402
from seq2seq.evaluation import evaluate_model  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import EvaluationSettings  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "evaluation"):
    evaluate_model(**rule_files(smk), settings=EvaluationSettings(**smk.params.settings), threads=smk.threads,
                   device=device_for_job("auto", smk.resources.get("gpu", 0)))
