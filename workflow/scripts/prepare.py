"""Snakemake script of rule `prepare` (seq2seq.corpus.prepare_corpus); by hand: python -m seq2seq prepare."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.corpus import prepare_corpus  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import PrepareSettings  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "prepare"):
    prepare_corpus(**rule_files(smk), settings=PrepareSettings(**smk.params.settings))
