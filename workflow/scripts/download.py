"""Snakemake script of rule `download`: fetch the raw corpus of one pair (seq2seq.download.fetch_corpus)."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from seq2seq.download import fetch_corpus
from seq2seq.logs import logging_to, setup_logging


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "download"):
        fetch_corpus(smk.params.url, smk.output[0], member=smk.params.member, sha256=smk.params.sha256,
                     retries=smk.params.retries, timeout=smk.params.timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="https://, http://, file:// URL or a local path")
    parser.add_argument("dest", help="raw text file to write, e.g. data/raw/fra-eng.txt")
    parser.add_argument("--member", help="file inside a .zip archive (default: its only .txt file)")
    parser.add_argument("--sha256", help="expected sha256 of the file as downloaded")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per attempt")
    args = parser.parse_args(argv)
    setup_logging()
    fetch_corpus(args.url, args.dest, member=args.member, sha256=args.sha256,
                 retries=args.retries, timeout=args.timeout)


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
