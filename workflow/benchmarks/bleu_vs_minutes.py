"""Test BLEU against training minutes for our model: the counterpart of ``joeynmt_peer.py``'s rows, for comparing
quality at equal training time.

    python workflow/benchmarks/bleu_vs_minutes.py --results results/fra-eng --configfile workflow/configs/full.yaml \\
        --minutes 30 --work-dir results/benchmarks/bleu-vs-minutes --out results/benchmarks/bleu_vs_minutes.tsv

Trains the first model of ``config.yaml`` deep-merged with ``--configfile`` (the pipeline's settings, the schema's
defaults) on ``<results>/data/train.tsv`` with the vocabularies of ``<results>/vocab/``, as the pipeline would
(its epochs, learning-rate schedule and early stopping), but for at most ``--minutes`` of wall-clock training
(``training.max_minutes``, checked at the end of an epoch, so the last epoch finishes). Each epoch's weights go to
a file of the work folder as it ends (kept in memory they would add to the peak). Then it decodes the test split
greedily with each epoch's weights, and with beam search with the last epoch's, and scores the plain text with
sacrebleu as the evaluate stage does. ``minutes`` is the running total of the epochs' wall-clock time, validation
included (as ``joeynmt_peer.py --clock wall``). The last row also gives the process's peak resident memory,
training and decoding. ``<work-dir>/last_epoch.pt`` is the last epoch's model, for ``seq2seq-translate``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also where it is not installed

from seq2seq.checkpoint import load_checkpoint, save_model  # noqa: E402
from seq2seq.corpus import check_normalized, read_split  # noqa: E402
from seq2seq.devices import resolve_device  # noqa: E402
from seq2seq.fileio import atomic_open  # noqa: E402
from seq2seq.logs import one_line_errors  # noqa: E402
from seq2seq.metadata import Metadata  # noqa: E402
from seq2seq.metrics import corpus_bleu  # noqa: E402
from seq2seq.runs import pipeline_config as _pipeline_config  # noqa: E402
from seq2seq.runs import model_settings  # noqa: E402
from seq2seq.settings import TrainConfig, training_settings  # noqa: E402
from seq2seq.stages import positive_float, positive_int  # noqa: E402
from seq2seq.training import Hooks, TrainingData, TrainingFiles, train_model  # noqa: E402
from seq2seq.translate import translate_sentences  # noqa: E402
from seq2seq.vocab import load_vocabulary  # noqa: E402
from machine import cpu_model  # noqa: E402
from training_throughput import build_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ("epoch", "minutes", "epoch_seconds", "pairs_per_s", "valid_bleu", "test_bleu_greedy", "greedy_decode_s",
           "test_bleu_beam", "beam_decode_s", "peak_mb", "threads", "cpu", "torch")


def pipeline_config(configfile: Path | None) -> dict:
    """config.yaml with ``configfile`` merged in, checked, defaults filled (as the pipeline sees it)."""
    return _pipeline_config(REPO / "config.yaml", *([configfile] if configfile is not None else []))


def score(model: torch.nn.Module, test: list[tuple[str, str]], source_vocab, target_vocab, beam_size: int,
          evaluation: dict) -> tuple[float, float]:
    """(corpus BLEU on plain text, seconds) of decoding ``test``'s sources."""
    start = time.perf_counter()
    alpha = evaluation["length_penalty"] if beam_size > 1 else 0.0
    translations = translate_sentences(model, [s for s, _ in test], source_vocab, target_vocab, None,
                                       beam_size=beam_size, alpha=alpha, max_len=evaluation["max_length"],
                                       batch_size=evaluation["batch_size"])
    hypotheses = [t.text for t in translations]
    return corpus_bleu(hypotheses, [t for _, t in test]), time.perf_counter() - start


def epoch_weights(work: Path, epoch: int) -> Path:
    """Where an epoch's weights wait to be decoded."""
    return work / f"epoch_{epoch}_weights.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="results/<pair> with data/ and vocab/")
    parser.add_argument("--configfile", type=Path, default=None, help="override merged into config.yaml")
    parser.add_argument("--minutes", type=positive_float, required=True, help="wall-clock training budget")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--beam-size", type=positive_int, default=5, help="for the last epoch (1: no beam run)")
    parser.add_argument("--work-dir", type=Path, required=True, help="checkpoints and history")
    parser.add_argument("--out", type=Path, required=True, help="TSV to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    config = pipeline_config(args.configfile)
    name = next(iter(config["models"]))
    source_vocab = load_vocabulary(args.results / "vocab" / "source.json")
    target_vocab = load_vocabulary(args.results / "vocab" / "target.json")
    train, valid, test = (read_split(args.results / "data" / f"{split}.tsv") for split in ("train", "valid", "test"))
    # as the train stage does: splits prepared with another normalization than the config's would be recorded
    # with the config's, and seq2seq-translate would normalize new input unlike the training data
    check_normalized(args.results / "data" / "train.tsv", train, config["prepare"]["normalization"])
    # its config is what trains; the model itself decodes each epoch's weights afterwards
    model = build_model(model_settings(config, name), len(source_vocab), len(target_vocab))
    model_config = model.config
    training = TrainConfig.from_dict({**training_settings(config, name), "max_minutes": args.minutes})
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    resume = work / "resume.pt"
    resume.unlink(missing_ok=True)  # a timed run from the start, never the rest of an earlier one

    def keep_epoch(epoch: int) -> None:  # the state saved as the epoch ended: its weights, for decoding later
        torch.save(load_checkpoint(resume)["model_state"], epoch_weights(work, epoch))

    metadata = Metadata(pair=args.results.name, model_name=name, normalization=config["prepare"]["normalization"])
    summary = train_model(TrainingData(train, valid, source_vocab, target_vocab), model_config, training,
                          TrainingFiles(work / "model.pt", work / "last.pt", work / "history.tsv", resume), metadata,
                          threads=args.threads, hooks=Hooks(after_epoch=keep_epoch))
    model = model.to(resolve_device(training.device)).eval()  # decode where training ran
    rows, minutes = [], 0.0
    for i, epoch_row in enumerate(summary.history):
        minutes += epoch_row["seconds"] / 60
        model.load_state_dict(torch.load(epoch_weights(work, epoch_row["epoch"]), weights_only=True))
        greedy, greedy_s = score(model, test, source_vocab, target_vocab, 1, config["evaluation"])
        last = i == len(summary.history) - 1
        beam, beam_s = (score(model, test, source_vocab, target_vocab, args.beam_size,
                              config["evaluation"])
                        if last and args.beam_size > 1 else (None, None))
        rows.append({"epoch": epoch_row["epoch"], "minutes": minutes, "epoch_seconds": epoch_row["seconds"],
                     "pairs_per_s": epoch_row["pairs_per_s"], "valid_bleu": epoch_row["valid_bleu"],
                     "test_bleu_greedy": greedy, "greedy_decode_s": greedy_s, "test_bleu_beam": beam,
                     "beam_decode_s": beam_s, "peak_mb": None, "threads": torch.get_num_threads(),  # as capped
                     "cpu": cpu_model(), "torch": torch.__version__})
        logging.info("epoch %d at %.1f min: test BLEU greedy %.2f%s", epoch_row["epoch"], minutes, greedy,
                     f", beam {beam:.2f}" if beam is not None else "")
    last_epoch = summary.history[-1]["epoch"]
    save_model(work / "last_epoch.pt", model_config, model.state_dict(), source_vocab, target_vocab,
               replace(metadata, epoch=last_epoch))
    for epoch_row in summary.history:
        epoch_weights(work, epoch_row["epoch"]).unlink()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training and decoding
    rows[-1]["peak_mb"] = peak_mb
    with atomic_open(args.out) as handle:
        writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else f"{v:.2f}" if isinstance(v, float) else v
                             for k, v in row.items()})
    beam = rows[-1]["test_bleu_beam"]
    print(f"wrote {args.out}: {len(rows)} epochs in {minutes:.1f} min; last test BLEU greedy "
          f"{rows[-1]['test_bleu_greedy']:.2f}{'' if beam is None else f', beam {beam:.2f}'}; "
          f"peak memory {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    with one_line_errors(Path(__file__).name):
        sys.exit(main())
