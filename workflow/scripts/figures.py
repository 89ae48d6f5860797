"""Snakemake script of rule `figures` (seq2seq.figures.draw_figures); by hand: python -m seq2seq figures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.figures import draw_figures  # noqa: E402
from seq2seq.logs import logging_to, rule_files  # noqa: E402
from seq2seq.settings import FigureSettings  # noqa: E402

smk = snakemake  # noqa: F821
with logging_to(smk.log[0], "figures") as log:
    # the sentences come from the config: the params hold only their digest (see text_digest in common.smk)
    settings = FigureSettings(**{**smk.params.settings, "sentences": smk.config["figures"]["sentences"]})
    draw_figures(**rule_files(smk), settings=settings, log=log)
