"""Snakemake script of rule `vocab`: source and target vocabularies from the train split only."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import logging

from seq2seq.corpus import build_vocabularies

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def write_vocabularies(train: str, source_out: str, target_out: str, min_freq: int) -> None:
    source, target = build_vocabularies(train, min_freq)
    source.save(source_out)
    target.save(target_out)


def run_from_snakemake(smk) -> None:
    logging.basicConfig(filename=smk.log[0], level=logging.INFO, format=LOG_FORMAT, force=True)
    try:
        write_vocabularies(smk.input.train, smk.output.source, smk.output.target, int(smk.params.min_freq))
    except Exception:
        logging.getLogger("seq2seq.corpus").exception("vocab failed")
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", help="train split TSV, e.g. results/fra-eng/data/train.tsv")
    parser.add_argument("source", help="source vocabulary JSON to write")
    parser.add_argument("target", help="target vocabulary JSON to write")
    parser.add_argument("--min-freq", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    write_vocabularies(args.train, args.source, args.target, args.min_freq)


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
