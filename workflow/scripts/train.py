"""Snakemake script of rule `train`: train one model variant on one language pair."""

import sys
from pathlib import Path

# Make the package importable from this checkout also where it is not installed (per-rule conda envs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

from seq2seq.devices import device_for_job
from seq2seq.logs import logging_to, setup_logging
from seq2seq.training import train_from_files


def run_from_snakemake(smk) -> None:
    training = dict(smk.params.training)
    training["device"] = device_for_job(training.get("device", "auto"), smk.resources.get("gpu", 0))
    with logging_to(smk.log[0], "training") as log:
        train_from_files(
            smk.input.train, smk.input.valid, smk.input.source_vocab, smk.input.target_vocab,
            smk.output.model, smk.output.last, smk.output.history,
            model_settings=dict(smk.params.model), training_settings=training,
            resume=smk.params.resume, metadata=dict(smk.params.metadata), threads=smk.threads, log=log,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True, help="train split TSV")
    parser.add_argument("--valid", required=True, help="validation split TSV")
    parser.add_argument("--source-vocab", required=True)
    parser.add_argument("--target-vocab", required=True)
    parser.add_argument("--out-dir", required=True, help="writes model.pt, last.pt, history.tsv, resume.pt here")
    parser.add_argument("--model", default='{"attention": "bahdanau"}',
                        help='model settings as JSON, e.g. \'{"attention": "luong", "hidden_size": 256}\'')
    parser.add_argument("--training", default="{}", help='training settings as JSON, e.g. \'{"epochs": 10}\'')
    parser.add_argument("--pair", default="fra-eng")
    parser.add_argument("--model-name", default="model")
    parser.add_argument("--normalization", default="ascii", choices=["ascii", "unicode"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    setup_logging()
    out = args.out_dir.rstrip("/")
    train_from_files(
        args.train, args.valid, args.source_vocab, args.target_vocab,
        f"{out}/model.pt", f"{out}/last.pt", f"{out}/history.tsv",
        model_settings=json.loads(args.model), training_settings=json.loads(args.training),
        resume=f"{out}/resume.pt",
        metadata={"pair": args.pair, "model_name": args.model_name, "normalization": args.normalization},
        threads=args.threads,
    )


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
