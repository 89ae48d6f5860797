"""The Snakemake script of every stage rule: runs the rule's stage (seq2seq.stages.STAGES) with the job's files,
params and resources. By hand, the same stages: python -m seq2seq STAGE --help."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.pipeline.jobs import run_job  # noqa: E402

run_job(snakemake)  # noqa: F821
