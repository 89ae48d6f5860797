"""Decoding benchmark: greedy and beam search over a whole test split with a trained checkpoint.

    python workflow/benchmarks/benchmark_decoding.py --model results/fra-eng/bahdanau/model.pt \\
        --test results/fra-eng/data/test.tsv --out results/benchmarks/decoding.tsv

Times :func:`seq2seq.translate.translate_sentences` as the evaluate stage calls it (its batch size, maximum length
and length penalty: the evaluation section's defaults, or the flags, e.g. ``--max-length 60`` for full.yaml), after
one untimed warm-up pass, best of ``--repeats``; counts the FLOPs of one pass with torch's FlopCounterMode (on the
CPU, see :func:`flops.count_flops`) to say what fraction of the machine's fp32 matrix-multiply rate decoding
reaches; and prints a sha256 of the translations, so that two versions of the code can be shown to decode the same.
With ``--amp`` each search runs a second time under bf16 autocast (the ``precision`` column), and ``changed`` counts
the sentences whose translation differs from the fp32 row's: the evaluate stage decodes in fp32 unless that is 0.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

import torch  # noqa: E402
from flops import count_flops  # noqa: E402
from machine import cpu_model, measure_matmul_flops, synchronize  # noqa: E402

from seq2seq.checkpoint import load_model  # noqa: E402
from seq2seq.corpus import read_split  # noqa: E402
from seq2seq.devices import resolve_device, set_cpu_threads  # noqa: E402
from seq2seq.fileio import atomic_open  # noqa: E402
from seq2seq.logs import one_line_errors  # noqa: E402
from seq2seq.settings import EvaluationSettings  # noqa: E402
from seq2seq.stages import positive_int  # noqa: E402
from seq2seq.translate import translate_sentences  # noqa: E402

COLUMNS = ("search", "precision", "changed", "beam_size", "batch_size", "sentences", "seconds", "sentences_per_s",
           "gflop_per_pass", "achieved_gflops", "flops_fraction", "translations_sha256", "max_length", "length_penalty",
           "matmul_gflops", "cpu", "threads", "torch")


def decode(model, sources, source_vocab, target_vocab, beam_size: int, settings: EvaluationSettings) -> list[str]:
    translations = translate_sentences(model, sources, source_vocab, target_vocab, None, beam_size=beam_size,
                                       alpha=settings.length_penalty, max_len=settings.max_length,
                                       batch_size=settings.batch_size)
    return [t.text for t in translations]


def main(argv: list[str] | None = None) -> None:
    defaults = EvaluationSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint (model.pt)")
    parser.add_argument("--test", required=True, help="test split (test.tsv)")
    parser.add_argument("--out", required=True, help="TSV to write")
    parser.add_argument("--beam-size", type=positive_int, default=defaults.beam_size)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--max-length", type=positive_int, default=defaults.max_length,
                        help="longest translation in tokens, as evaluation.max_length (full.yaml: 60)")
    parser.add_argument("--length-penalty", type=float, default=defaults.length_penalty,
                        help="beam search's alpha, as evaluation.length_penalty")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true",
                        help="also decode under bf16 autocast and count the translations that change")
    args = parser.parse_args(argv)
    threads = set_cpu_threads(args.threads)
    device = resolve_device(args.device)
    torch.set_flush_denormal(True)
    settings = EvaluationSettings(beam_size=args.beam_size, batch_size=args.batch_size, max_length=args.max_length,
                                  length_penalty=args.length_penalty)
    model, source_vocab, target_vocab, _ = load_model(args.model, device)
    counted_model = model if device.type == "cpu" else load_model(args.model, torch.device("cpu"))[0]
    sources = [source for source, _ in read_split(args.test)]
    matmul = measure_matmul_flops(device)
    rows = []
    precisions = {"fp32": None, **({"bf16": torch.bfloat16} if args.amp else {})}
    for search, size in (("greedy", 1), ("beam", settings.beam_size)):
        flops, _ = count_flops(lambda: decode(counted_model, sources, source_vocab, target_vocab, size, settings))
        reference: list[str] = []
        for precision, dtype in precisions.items():
            autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
            with autocast:
                texts = decode(model, sources, source_vocab, target_vocab, size, settings)  # warm-up
                best = float("inf")
                for _ in range(args.repeats):
                    synchronize(device)
                    start = time.perf_counter()
                    texts = decode(model, sources, source_vocab, target_vocab, size, settings)
                    synchronize(device)
                    best = min(best, time.perf_counter() - start)
            reference = reference or texts
            rows.append({"search": search, "precision": precision,
                         "changed": sum(a != b for a, b in zip(texts, reference)), "beam_size": size,
                         "batch_size": settings.batch_size,
                         "sentences": len(sources), "seconds": round(best, 4),
                         "sentences_per_s": round(len(sources) / best, 1), "gflop_per_pass": round(flops / 1e9, 3),
                         "achieved_gflops": round(flops / best / 1e9, 2),
                         "flops_fraction": round(flops / best / matmul, 4),
                         "translations_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16],
                         "max_length": settings.max_length,
                         "length_penalty": settings.length_penalty if size > 1 else "",  # greedy search has none
                         "matmul_gflops": round(matmul / 1e9, 1), "cpu": cpu_model(), "threads": threads,
                         "torch": torch.__version__})
            print("\t".join(f"{k}={rows[-1][k]}" for k in COLUMNS[:12]), flush=True)
    with atomic_open(args.out) as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            handle.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")


if __name__ == "__main__":
    with one_line_errors(Path(__file__).name):
        main()
