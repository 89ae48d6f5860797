"""Snakemake script of rule `evaluate`: greedy and beam search on the test split, BLEU/chrF with intervals
(seq2seq.evaluation.evaluate_model)."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from seq2seq.devices import device_for_job
from seq2seq.evaluation import evaluate_model
from seq2seq.logs import logging_to, setup_logging


def run_from_snakemake(smk) -> None:
    with logging_to(smk.log[0], "evaluation"):
        evaluate_model(smk.input.model, smk.input.test, smk.output.translations, smk.output.metrics,
                       threads=smk.threads, device=device_for_job("auto", smk.resources.get("gpu", 0)),
                       **smk.params.evaluation)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="checkpoint, e.g. results/fra-eng/bahdanau/model.pt")
    parser.add_argument("test", help="test split, e.g. results/fra-eng/data/test.tsv")
    parser.add_argument("--translations", required=True, help="translations.tsv to write")
    parser.add_argument("--metrics", required=True, help="metrics.json to write")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha")
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--bootstrap-resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    setup_logging()
    evaluate_model(args.model, args.test, args.translations, args.metrics, beam_size=args.beam_size,
                   length_penalty=args.length_penalty, max_length=args.max_length, batch_size=args.batch_size,
                   bootstrap_resamples=args.bootstrap_resamples, seed=args.seed, threads=args.threads,
                   device=args.device)


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
