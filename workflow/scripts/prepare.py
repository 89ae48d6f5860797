"""Snakemake script of rule `prepare`: raw pairs -> train/valid/test TSVs and stats.json (seq2seq.corpus)."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

from seq2seq.corpus import prepare_corpus
from seq2seq.settings import PrepareSettings
from seq2seq.logs import logging_to, setup_logging


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "prepare"):
        prepare_corpus(smk.input.raw, smk.output.train, smk.output.valid, smk.output.test, smk.output.stats,
                       PrepareSettings.from_dict(dict(smk.params.settings)))


def main(argv: list[str] | None = None) -> None:
    defaults = PrepareSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", help="raw tab-separated pairs, e.g. data/raw/fra-eng.txt")
    parser.add_argument("outdir", help="folder for train.tsv, valid.tsv, test.tsv and stats.json")
    parser.add_argument("--source-column", type=int, default=defaults.source_column)
    parser.add_argument("--target-column", type=int, default=defaults.target_column)
    parser.add_argument("--normalization", choices=["ascii", "unicode"], default=defaults.normalization)
    parser.add_argument("--max-words", type=int, default=defaults.max_words)
    parser.add_argument("--target-prefixes", default=json.dumps(defaults.target_prefixes),
                        help='JSON: "tutorial", null or a list of prefixes (default: "tutorial")')
    parser.add_argument("--valid-fraction", type=float, default=defaults.valid_fraction)
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--max-malformed-fraction", type=float, default=defaults.max_malformed_fraction)
    args = parser.parse_args(argv)
    setup_logging()
    settings = PrepareSettings(
        source_column=args.source_column, target_column=args.target_column, normalization=args.normalization,
        max_words=args.max_words, target_prefixes=json.loads(args.target_prefixes),
        valid_fraction=args.valid_fraction, test_fraction=args.test_fraction, seed=args.seed,
        max_malformed_fraction=args.max_malformed_fraction,
    )
    out = args.outdir.rstrip("/")
    stats = prepare_corpus(args.raw, f"{out}/train.tsv", f"{out}/valid.tsv", f"{out}/test.tsv",
                           f"{out}/stats.json", settings)
    print(json.dumps(stats, indent=2, ensure_ascii=False))


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
