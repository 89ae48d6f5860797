"""Snakemake script of rule `summary`: one table and one chart over every pair x model
(seq2seq.summary.write_summary)."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from seq2seq.logs import logging_to, setup_logging
from seq2seq.summary import write_summary


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "summary"):
        write_summary(list(smk.input.metrics), list(smk.input.histories), list(smk.input.models),
                      smk.params.labels, smk.output.tsv, smk.output.md, smk.output.chart)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", metavar="PAIR/MODEL",
                        help="runs to summarize, e.g. fra-eng/bahdanau (read from results/PAIR/MODEL/)")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--out", default="results/summary", help="output stem: STEM.tsv, STEM.md, STEM.png")
    args = parser.parse_args(argv)
    setup_logging()
    labels = [run.split("/", 1) for run in args.runs]
    base = [f"{args.results}/{pair}/{model}" for pair, model in labels]
    write_summary([f"{b}/metrics.json" for b in base], [f"{b}/history.tsv" for b in base],
                  [f"{b}/model.pt" for b in base], labels, f"{args.out}.tsv", f"{args.out}.md", f"{args.out}.png")


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
