"""Snakemake script of rule `download` (seq2seq.download.download_corpus); by hand: python -m seq2seq download."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.download import download_corpus  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import DownloadSettings  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "download"):
    # retries and timeouts come from the config: they are not params, so that changing them reruns nothing
    settings = DownloadSettings(**smk.params.settings, **smk.config["download"])
    download_corpus(**rule_files(smk), settings=settings)
