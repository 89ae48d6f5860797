"""Training-throughput benchmark: our model's attention variants against the PyTorch tutorial's loops.

    python workflow/scripts/benchmark_training.py --out results/benchmarks/training_throughput.tsv

Our model's rows use the model's own defaults (one-directional encoder, untied embeddings, dropout 0.1, no label
smoothing). To time the model the pipeline's config.yaml trains, add
``--bidirectional --tie-embeddings --dropout 0.3 --label-smoothing 0.1``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from seq2seq.benchmark import ALL_VARIANTS, BenchmarkConfig, ModelOptions, format_report, load_data, \
    profile_variant, run_benchmark, write_table


def benchmark(out: str, data_dir: str | None, config: BenchmarkConfig, profile: str | None = None) -> None:
    data = load_data(data_dir, seed=config.seed)
    if profile:
        print(profile_variant(profile, data, config))
        return
    result = run_benchmark(data, config)
    write_table(result.rows, out, result.machine)
    print(format_report(result.rows, {**result.machine, "data": result.data,
                                      "our model": config.model.describe()}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="TSV file to write (atomically)")
    parser.add_argument("--data-dir", default="results/fra-eng/data",
                        help="folder holding train.tsv; a synthetic corpus of the same shape when missing")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per variant")
    parser.add_argument("--baseline-seconds", type=float, default=None,
                        help="timed seconds of the per-pair baseline (default: --seconds)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant (x10 for the baseline)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--variants", nargs="+", default=list(ALL_VARIANTS), choices=ALL_VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", action="store_true", help="mixed precision for our model (CUDA only)")
    parser.add_argument("--no-flop-count", action="store_true",
                        help="skip the FlopCounterMode cross-check of the analytic FLOP formulas")
    parser.add_argument("--bidirectional", action="store_true", help="our model: bidirectional encoder")
    parser.add_argument("--tie-embeddings", action="store_true",
                        help="our model: decoder embedding and output layer share one matrix")
    parser.add_argument("--dropout", type=float, default=0.1, help="our model's dropout")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="our model's loss")
    parser.add_argument("--profile", choices=ALL_VARIANTS, default=None,
                        help="print a torch.profiler table for this variant instead of benchmarking")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = BenchmarkConfig(hidden=args.hidden, batch_size=args.batch_size, threads=args.threads,
                             seconds=args.seconds, baseline_seconds=args.baseline_seconds,
                             warmup_steps=args.warmup, device=args.device, variants=args.variants,
                             seed=args.seed, count_flops=not args.no_flop_count, amp=args.amp,
                             model=ModelOptions(args.bidirectional, args.tie_embeddings, args.dropout,
                                                args.label_smoothing))
    benchmark(args.out, args.data_dir, config, args.profile)


if __name__ == "__main__":
    main()
