"""Snakemake script of rule `figures`: attention heatmaps (one per sentence and a grid) with greedy decoding,
and the learning curve (seq2seq.plots.draw_figures)."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from seq2seq.logs import logging_to, setup_logging
from seq2seq.plots import draw_figures


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "figures"):
        draw_figures(smk.input.model, smk.input.test, smk.input.history, list(smk.output.attention),
                     smk.output.grid, smk.output.curve, **smk.params.figures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="checkpoint, e.g. results/fra-eng/bahdanau/model.pt")
    parser.add_argument("test", help="test split (test.tsv)")
    parser.add_argument("history", help="history.tsv of the training run")
    parser.add_argument("--outdir", required=True, help="folder for the figures")
    parser.add_argument("--count", type=int, default=8, help="test sentences to draw")
    parser.add_argument("--sentence", action="append", default=[], help="extra source sentence (repeatable)")
    parser.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    parser.add_argument("--grid-columns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    total = args.count + len(args.sentence)
    attention = [f"{args.outdir}/attention_{i:02d}.{args.format}" for i in range(1, total + 1)]
    draw_figures(args.model, args.test, args.history, attention, f"{args.outdir}/attention_grid.{args.format}",
                 f"{args.outdir}/learning_curve.{args.format}", count=args.count, sentences=args.sentence,
                 grid_columns=args.grid_columns, seed=args.seed)


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
