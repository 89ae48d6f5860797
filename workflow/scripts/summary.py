"""Snakemake script of rule `summary` (seq2seq.summary.write_summary); by hand: python -m seq2seq summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.summary import write_summary  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "summary") as log:
    write_summary(**rule_files(smk), labels=smk.params.labels, baseline=smk.params.baseline,
                  compare=dict(smk.params.compare), min_interval_sentences=smk.params.min_interval_sentences,
                  log=log)
