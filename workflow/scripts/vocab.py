"""Snakemake script of rule `vocab` (seq2seq.vocab.write_vocabularies); by hand: python -m seq2seq vocab."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import VocabSettings  # noqa: E402
from seq2seq.vocab import write_vocabularies  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "vocab"):
    files = rule_files(smk, skip=("code", "source_model", "target_model"))  # the models come with the JSONs
    write_vocabularies(**files, settings=VocabSettings(**smk.params.settings))
