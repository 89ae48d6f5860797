"""Training throughput of our model against JoeyNMT 2.3 on the same training split, same hidden and embedding sizes,
same batch size, same threads, in one run:

    python workflow/benchmarks/peer_comparison.py --joeynmt-python /path/to/joeynmt-venv/bin/python \\
        --data-dir results/fra-eng/data --out results/benchmarks/peer_tutorial.tsv

    python workflow/benchmarks/peer_comparison.py --joeynmt-python /path/to/joeynmt-venv/bin/python \\
        --data-dir results/fra-eng/data --vocab-dir results/fra-eng/vocab --level sentencepiece \\
        --our-batch-tokens 1500 --out results/benchmarks/peer_full.tsv        # with full.yaml's results

JoeyNMT runs in its own virtual environment (``--joeynmt-python``; its pins would clash with ours) through
``joeynmt_peer.py``, which builds the matched model: a bidirectional GRU encoder, a GRU decoder with Bahdanau
attention, hidden and embeddings 256, tied decoder embedding and output layer, dropout 0.3, label smoothing 0.1, Adam
at 2e-3, gradient-norm clipping 1. Matched in those settings, not in size: JoeyNMT's encoder concatenates its two
directions (512 values a position, ours adds them into 256), which its attention keys and its bridge to the decoder
project back, and its decoder feeds its attention vector back as input; ``parameters`` gives each model's weights
(about 12% more in JoeyNMT's on the tutorial subset). Ours is the pipeline's ``bahdanau`` model (the schema's
defaults). The order is ours, JoeyNMT, ours again, so that a drifting machine shows up as a gap between our two rows;
the ratio uses their mean. On a VM whose speed drifts, ``--rounds N`` alternates longer (ours, then N times JoeyNMT
and ours) and takes each side's mean, and prints each JoeyNMT run's ratio to ours just around it. Throughput counts
target tokens incl. the end-of-sentence token, padding excluded, as both toolkits count them (words at ``--level
word``; each toolkit's own sentencepiece pieces at ``sentencepiece``, so ``pairs_per_s`` is the vocabulary-free
measure there). Both train in fp32; ``--our-amp`` adds a row of ours under bf16 autocast (what ``training.amp: true``
trains with; it pays on a CPU that computes bf16 natively), outside the mean. Without a JoeyNMT environment it prints
one ``SKIP:`` line and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import logging
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.fileio import atomic_open  # noqa: E402
from seq2seq.logs import one_line_errors  # noqa: E402
from seq2seq.stages import positive_float, positive_int  # noqa: E402
from seq2seq.vocab import load_vocabulary  # noqa: E402
from training_throughput import BenchmarkConfig, BenchmarkData, ModelOptions, load_data, run_benchmark  # noqa: E402

PEER_SCRIPT = Path(__file__).with_name("joeynmt_peer.py")
OURS = "ours (bahdanau)"  # the system of our fp32 rows: their runs make the mean and the ratios
COLUMNS = ("system", "run", "level", "batch", "tokens_per_s", "pairs_per_s", "ratio_to_joeynmt_tokens",
           "ratio_to_joeynmt_pairs", "parameters", "seconds", "cpu", "threads", "torch")


def joeynmt_missing(python: str) -> str | None:
    """Why ``python`` cannot run JoeyNMT, or None when it can."""
    try:
        done = subprocess.run([python, "-c", "import joeynmt, torch, sentencepiece, sacrebleu"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python}: {error}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["import failed"])[-1]
        return f"{python} cannot import joeynmt ({last})"
    return None


def measure_ours(args: argparse.Namespace, data: BenchmarkData, batch_tokens: int | None,
                 amp: bool = False) -> dict:
    """One timed run of our ``bahdanau`` model on ``data`` (in fp32, or with ``amp`` under the mixed precision
    ``training.amp: true`` trains with: bf16 autocast on the CPU); a row of :data:`COLUMNS` (ratios filled in
    later)."""
    config = BenchmarkConfig(batch_size=args.batch_size, hidden=args.hidden, threads=args.threads,
                             seconds=args.seconds, variants=["bahdanau"], count_flops=False, amp=amp,
                             model=ModelOptions(batch_tokens=batch_tokens))
    result = run_benchmark(data, config)
    row, machine = result.rows[0], result.machine
    return {"system": "ours (bahdanau, bf16 autocast)" if amp else OURS, "level": args.level,
            "batch": f"{batch_tokens} tokens" if batch_tokens else f"{args.batch_size} pairs",
            "tokens_per_s": row["tokens_per_s"], "pairs_per_s": row["pairs_per_s"],
            "parameters": row["parameters"], "seconds": row["seconds_measured"], "cpu": machine["cpu"],
            "threads": args.threads, "torch": machine["torch"]}


def measure_joeynmt(args: argparse.Namespace, work_dir: Path) -> dict:
    """One JoeyNMT training of ``--joeynmt-minutes`` (training time; no validation in between)."""
    table = work_dir / "joeynmt.tsv"
    command = [args.joeynmt_python, str(PEER_SCRIPT), "--data-dir", str(args.data_dir), "--work-dir",
               str(work_dir / "joeynmt"), "--level", args.level, "--minutes", str(args.joeynmt_minutes),
               "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--hidden", str(args.hidden),
               "--validation-freq", "100000000", "--valid-limit", "20", "--test-limit", "20", "--beam-size", "1",
               "--flush-denormal", "--out", str(table)]
    logging.info("joeynmt: %s", " ".join(command))
    subprocess.run(command, check=True)
    with table.open(encoding="utf-8") as handle:
        row = list(csv.DictReader(handle, delimiter="\t"))[-1]
    return {"system": f"JoeyNMT {row['joeynmt']}", "level": args.level, "batch": f"{args.batch_size} pairs",
            "tokens_per_s": float(row["tokens_per_s"]), "pairs_per_s": float(row["pairs_per_s"]),
            "parameters": int(row["params"]), "seconds": float(row["minutes"]) * 60, "cpu": row["cpu"],
            "threads": args.threads, "torch": row["torch"]}


def time_alternating(args: argparse.Namespace, data: BenchmarkData, work_dir: Path) -> list[dict]:
    """Ours, then ``args.rounds`` times JoeyNMT and ours again (each JoeyNMT run in a folder of its own when
    there are several): rows in the order they were timed, ``run`` counting each system's runs."""
    rows = [{**measure_ours(args, data, None), "run": 1}]
    for number in range(1, args.rounds + 1):
        folder = work_dir / f"round{number}" if args.rounds > 1 else work_dir
        folder.mkdir(parents=True, exist_ok=True)
        rows.append({**measure_joeynmt(args, folder), "run": number})
        rows.append({**measure_ours(args, data, None), "run": number + 1})
    return rows


def is_run_of(row: dict, system: str, batch: str) -> bool:
    """Whether ``row`` timed ``system`` with ``batch`` (our token-batch and bf16 rows are not our mean's runs)."""
    return row["system"] == system and row["batch"] == batch


def add_means(rows: list[dict], ours: str, batch: str) -> None:
    """Append a ``mean`` row of our runs with ``batch`` (system ``ours``) and, when JoeyNMT ran more than once,
    one of JoeyNMT's: the means of their throughputs and seconds."""
    for chosen in ([r for r in rows if is_run_of(r, ours, batch)],
                   [r for r in rows if r["system"].startswith("JoeyNMT")]):
        if len(chosen) > 1:
            rows.append({**chosen[0], "run": "mean", **{k: statistics.mean(r[k] for r in chosen)
                                                        for k in ("tokens_per_s", "pairs_per_s", "seconds")}})


def round_ratios(rows: list[dict], ours: str, batch: str) -> list[float]:
    """Each JoeyNMT run's pairs/s ratio: the mean of our runs (system ``ours`` with ``batch``) just before and after
    it over it; ``rows`` in the order :func:`time_alternating` timed them."""
    timed = [r for r in rows if r["run"] != "mean" and (is_run_of(r, ours, batch) or r["system"].startswith("JoeyNMT"))]
    return [(before["pairs_per_s"] + after["pairs_per_s"]) / 2 / peer["pairs_per_s"]
            for before, peer, after in zip(timed[0::2], timed[1::2], timed[2::2])]


def add_ratios(rows: list[dict]) -> None:
    """Each row's throughput over JoeyNMT's (the mean of its runs when it ran more than once), in place."""
    peers = [r for r in rows if r["system"].startswith("JoeyNMT")]
    peer = next((r for r in peers if r.get("run") == "mean"), peers[0])
    for row in rows:
        row["ratio_to_joeynmt_tokens"] = row["tokens_per_s"] / peer["tokens_per_s"]
        row["ratio_to_joeynmt_pairs"] = row["pairs_per_s"] / peer["pairs_per_s"]


def write_rows(rows: list[dict], path: Path) -> None:
    """The rows as a tab-separated file with a header line, written atomically."""
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.2f}" if isinstance(v, float) else v for k, v in row.items()})


def markdown(rows: list[dict]) -> str:
    lines = ["| system | run | batch | target tokens/s | pairs/s | x JoeyNMT (tokens) | x JoeyNMT (pairs) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['run']} | {r['batch']} | {r['tokens_per_s']:,.0f} | {r['pairs_per_s']:,.1f} | "
              f"{r['ratio_to_joeynmt_tokens']:.2f} | {r['ratio_to_joeynmt_pairs']:.2f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joeynmt-python", required=True, help="python of a venv with joeynmt==2.3.0")
    parser.add_argument("--data-dir", type=Path, default=Path("results/fra-eng/data"))
    parser.add_argument("--vocab-dir", type=Path, default=None, help="our vocabularies (default: words of train)")
    parser.add_argument("--level", choices=("word", "sentencepiece"), default="word",
                        help="JoeyNMT's tokenization; match --vocab-dir's")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--our-batch-tokens", type=positive_int, default=None,
                        help="also time ours with token batches of this size (full.yaml: 1500)")
    parser.add_argument("--our-amp", action="store_true",
                        help="also time ours under bf16 autocast (training.amp: true; pays on a native-bf16 CPU)")
    parser.add_argument("--hidden", type=positive_int, default=256)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seconds", type=positive_float, default=40.0, help="timed seconds of each of our runs")
    parser.add_argument("--joeynmt-minutes", type=positive_float, default=2.0, help="JoeyNMT's training minutes")
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="JoeyNMT's runs, each followed by one of ours (against a drifting machine's speed)")
    parser.add_argument("--work-dir", type=Path, default=None, help="JoeyNMT's files (default: a temp folder)")
    parser.add_argument("--out", type=Path, required=True, help="TSV to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    ours = load_vocabulary(args.vocab_dir / "source.json").kind if args.vocab_dir else "word"
    if ours != args.level:  # tokens/s of pieces against words say nothing; pairs/s would, but say so first
        parser.error(f"--level {args.level} for JoeyNMT, but ours would train on {ours} vocabularies "
                     f"({args.vocab_dir or 'words of train.tsv, without --vocab-dir'}): give both the same")
    missing = joeynmt_missing(args.joeynmt_python)
    if missing:
        print(f"SKIP: {missing}; install joeynmt==2.3.0 in a venv of its own and pass its python")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = args.work_dir or Path(scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        data = load_data(args.data_dir, vocab_dir=args.vocab_dir, required=True)  # read once for all our runs
        rows = time_alternating(args, data, work_dir)
        if args.our_batch_tokens:
            rows.append({**measure_ours(args, data, args.our_batch_tokens), "run": 1})
        if args.our_amp:
            rows.append({**measure_ours(args, data, None, amp=True), "run": 1})
    per_round = round_ratios(rows, OURS, f"{args.batch_size} pairs")
    add_means(rows, OURS, f"{args.batch_size} pairs")
    add_ratios(rows)
    write_rows(rows, args.out)
    print(f"data: {args.data_dir} ({args.level}); {rows[0]['cpu']}, {args.threads} threads, torch {rows[0]['torch']}")
    print(markdown(rows))
    print("pairs/s over JoeyNMT's, each of its runs against ours just before and after it: "
          + ", ".join(f"{ratio:.2f}" for ratio in per_round))
    return 0


if __name__ == "__main__":
    with one_line_errors(Path(__file__).name):
        sys.exit(main())
