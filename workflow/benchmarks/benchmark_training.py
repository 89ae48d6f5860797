"""Training-throughput benchmark: our model's attention variants against the PyTorch tutorial's loops.

    python workflow/benchmarks/benchmark_training.py --out results/benchmarks/training_throughput.tsv

Our model's rows time the model the pipeline trains (the schema's defaults: bidirectional encoder, tied
embeddings, dropout 0.3, label smoothing 0.1); ``--no-bidirectional --no-tie-embeddings --dropout 0.1
--label-smoothing 0`` times the smaller model of earlier releases' tables. ``--vocab-dir`` encodes the data with
the pipeline's vocabularies (sentencepiece ones included), ``--batch-tokens`` batches by tokens.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.logs import one_line_errors  # noqa: E402
from seq2seq.stages import positive_float, positive_int  # noqa: E402
from training_throughput import (  # noqa: E402
    ALL_VARIANTS, BenchmarkConfig, ModelOptions, format_report, load_data, profile_variant, run_benchmark,
    write_table,
)


def benchmark(out: str, data_dir: str | None, config: BenchmarkConfig, profile: str | None = None,
              vocab_dir: str | None = None) -> None:
    data = load_data(data_dir, seed=config.seed, vocab_dir=vocab_dir)
    if profile:
        print(profile_variant(profile, data, config))
        return
    result = run_benchmark(data, config)
    # --amp: mixed precision where the device computes it (flops_fraction stays against the fp32 matmul rate)
    precision = "bf16/fp16 autocast (--amp)" if config.amp else "fp32"
    write_table(result.rows, out, {**result.machine, "data": result.data, "precision": precision})
    print(format_report(result.rows, {**result.machine, "data": result.data, "precision": precision,
                                      "our model": config.model.describe()}))


def main(argv: list[str] | None = None) -> None:
    defaults, model = BenchmarkConfig(), ModelOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="TSV file to write (atomically); required unless --profile")
    parser.add_argument("--data-dir", default="results/fra-eng/data",
                        help="folder holding train.tsv; a synthetic corpus of the same shape when missing")
    parser.add_argument("--vocab-dir", default=None,
                        help="folder holding the pipeline's source.json and target.json (default: word "
                             "vocabularies built from train.tsv)")
    parser.add_argument("--hidden", type=positive_int, default=defaults.hidden)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--batch-tokens", type=positive_int, default=None,
                        help="our model: batches of at most this many padded tokens instead of --batch-size pairs")
    parser.add_argument("--threads", type=positive_int, default=defaults.threads)
    parser.add_argument("--seconds", type=positive_float, default=defaults.seconds, help="timed seconds per variant")
    parser.add_argument("--baseline-seconds", type=positive_float, default=None,
                        help="timed seconds of the per-pair baseline (default: --seconds)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup_steps,
                        help="untimed steps per variant (x10 for the baseline)")
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--variants", nargs="+", default=list(ALL_VARIANTS), choices=ALL_VARIANTS)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision for our model, as training.amp: true (CUDA: bf16 or fp16; CPU: bf16)")
    parser.add_argument("--no-flop-count", action="store_true",
                        help="skip counting FLOPs with FlopCounterMode: our rows' mflops_per_pair and "
                        "flops_fraction are then nan (the tutorial rows keep their analytic counts)")
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=model.bidirectional,
                        help="our model: bidirectional encoder")
    parser.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=model.tie_embeddings,
                        help="our model: tied decoder embedding and output layer")
    parser.add_argument("--dropout", type=float, default=model.dropout, help="our model's dropout")
    parser.add_argument("--label-smoothing", type=float, default=model.label_smoothing, help="our model's loss")
    parser.add_argument("--profile", choices=ALL_VARIANTS, default=None,
                        help="print a torch.profiler table of one variant instead of timing")
    args = parser.parse_args(argv)
    if args.out is None and args.profile is None:
        parser.error("--out is required (unless --profile)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = BenchmarkConfig(hidden=args.hidden, batch_size=args.batch_size, threads=args.threads,
                             seconds=args.seconds, baseline_seconds=args.baseline_seconds, warmup_steps=args.warmup,
                             device=args.device, variants=args.variants, seed=args.seed,
                             count_flops=not args.no_flop_count, amp=args.amp,
                             model=ModelOptions(args.bidirectional, args.tie_embeddings, args.dropout,
                                                args.label_smoothing, args.batch_tokens))
    benchmark(args.out, args.data_dir, config, args.profile, args.vocab_dir)


if __name__ == "__main__":
    with one_line_errors(Path(__file__).name):
        main()
