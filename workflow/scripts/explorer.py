"""Snakemake script of rule `explorer` (seq2seq.explorer.write_explorer); by hand: python -m seq2seq explorer."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.explorer import write_explorer  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "explorer"):
    write_explorer(**rule_files(smk), labels=smk.params.labels)
