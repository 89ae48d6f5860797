# Neural machine translation with attention: raw sentence pairs -> splits -> vocabularies -> trained GRU
# encoder-decoders -> BLEU/chrF -> attention figures -> summary and report.
# Run `snakemake --cores 4`; see README.md for reruns, local data and the SLURM profile.

import os

from snakemake.utils import min_version

min_version("9.0")


# config.yaml of the working directory; under `--directory DIR` without one, the workflow's own.
configfile: "config.yaml" if os.path.exists("config.yaml") else os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
