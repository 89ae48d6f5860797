"""The evaluate stage: translate the test split with greedy and beam search, score both, write the results.

metrics.json (key-sorted JSON)::

    {"pair": ..., "model": ..., "attention": ..., "epoch": ..., "normalization": ...,
     "beam_size": K, "alpha": a, "max_length": n, "device": "cpu",
     "greedy": {"bleu", "bleu_ci95": [low, high], "chrf", "exact_match", "sentences", "sentences_per_s",
                "seconds", "signature": {"bleu": sacrebleu BLEU signature, "chrf": chrF signature,
                                         "bleu_ci95": how the interval was drawn}},
     "beam": {... the same ...}}

BLEU and chrF are 0-100, exact_match a fraction 0-1. translations.tsv has one row per test pair, in the
split's order: source, reference, greedy, beam, greedy_bleu, greedy_chrf, beam_bleu, beam_chrf.
"""

from __future__ import annotations

import csv
import logging
import os
import time

import pandas as pd
import torch

from .corpus import read_split
from .devices import resolve_device, set_cpu_threads
from .fileio import atomic_path, write_json
from .metrics import corpus_scores, sentence_scores
from .translate import translate_sentences

LOG = logging.getLogger(__name__)


def _timed_translate(model, sources, source_vocab, target_vocab, device: torch.device,
                     **search) -> tuple[list[str], float]:
    start = time.perf_counter()
    translations = translate_sentences(model, sources, source_vocab, target_vocab, normalization=None, **search)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return [t.text for t in translations], time.perf_counter() - start


def evaluate_model(model_path: str | os.PathLike[str], test_path: str | os.PathLike[str],
                   translations_path: str | os.PathLike[str], metrics_path: str | os.PathLike[str], *,
                   beam_size: int = 5, length_penalty: float = 0.6, max_length: int = 30, batch_size: int = 128,
                   bootstrap_resamples: int = 1000, seed: int = 12345, threads: int | None = None,
                   device: str = "auto", log: logging.Logger = LOG) -> dict:
    """Evaluate one checkpoint on one test split; writes both outputs atomically and returns the metrics dict.

    Test sources are already normalized by the prepare stage, so they are only tokenized here. Greedy search
    and beam search (``beam_size``, GNMT length-penalty exponent ``length_penalty``) both run batched on CUDA
    when available (``device="auto"``), else on CPU with ``threads`` threads.
    """
    from .checkpoint import load_model

    if threads:
        set_cpu_threads(threads)
    torch_device = resolve_device(device)
    model, source_vocab, target_vocab, metadata = load_model(model_path, device=torch_device)
    pairs = read_split(test_path)
    sources = [source for source, _ in pairs]
    references = [target for _, target in pairs]
    log.info("evaluating %s on %d test pairs from %s (device %s)", model_path, len(pairs), test_path, torch_device)

    metrics: dict = {
        "pair": metadata.get("pair"), "model": metadata.get("model_name"), "epoch": metadata.get("epoch"),
        "attention": model.config.attention, "normalization": metadata.get("normalization"),
        "beam_size": beam_size, "alpha": length_penalty, "max_length": max_length, "device": str(torch_device),
    }
    outputs: dict[str, list[str]] = {}
    for name, size in (("greedy", 1), ("beam", beam_size)):
        hypotheses, seconds = _timed_translate(model, sources, source_vocab, target_vocab, torch_device,
                                               beam_size=size, alpha=length_penalty, max_len=max_length,
                                               batch_size=batch_size, log=log)
        block = corpus_scores(hypotheses, references, bootstrap_resamples, seed)
        block["seconds"] = seconds
        block["sentences_per_s"] = len(hypotheses) / seconds if seconds > 0 else 0.0
        metrics[name] = block
        outputs[name] = hypotheses
        log.info("%s (beam %d): BLEU %.2f [%.2f, %.2f], chrF %.2f, exact match %.3f, %.1f sentences/s", name,
                 size, block["bleu"], *block["bleu_ci95"], block["chrf"], block["exact_match"],
                 block["sentences_per_s"])

    table = pd.DataFrame({"source": sources, "reference": references,
                          "greedy": outputs["greedy"], "beam": outputs["beam"]})
    for name in ("greedy", "beam"):
        table[f"{name}_bleu"], table[f"{name}_chrf"] = sentence_scores(outputs[name], references)
    with atomic_path(translations_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.2f", quoting=csv.QUOTE_MINIMAL,
                     lineterminator="\n")
    write_json(metrics_path, metrics)
    return metrics
