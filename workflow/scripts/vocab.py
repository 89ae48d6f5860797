"""Snakemake script of rule `vocab`: source and target vocabularies from the train split only."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from seq2seq.corpus import write_vocabularies
from seq2seq.logs import logging_to, setup_logging


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "vocab"):
        write_vocabularies(smk.input.train, smk.output.source, smk.output.target, int(smk.params.min_freq))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", help="train split TSV, e.g. results/fra-eng/data/train.tsv")
    parser.add_argument("source", help="source vocabulary JSON to write")
    parser.add_argument("target", help="target vocabulary JSON to write")
    parser.add_argument("--min-freq", type=int, default=1)
    args = parser.parse_args(argv)
    setup_logging()
    write_vocabularies(args.train, args.source, args.target, args.min_freq)


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
