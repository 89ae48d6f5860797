# Neural machine translation with attention: raw sentence pairs -> splits -> vocabularies -> trained GRU
# encoder-decoders -> BLEU/chrF -> attention figures -> summary, report and explorer page.
# Run `snakemake --cores 4`; see README.md for reruns, local data and the SLURM profile.

import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))
from seq2seq.schema import ConfigError, check_yaml

# config.yaml of the working directory; under `--directory DIR` without one, the workflow's own.
CONFIG_YAML = "config.yaml" if os.path.exists("config.yaml") else os.path.join(workflow.basedir, "config.yaml")
try:
    check_yaml(CONFIG_YAML)  # a syntax error as file:line:column (Snakemake's own message names neither)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


configfile: CONFIG_YAML


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/explorer.smk"


rule all:
    default_target: True
    input:
        all_targets(),
