"""The evaluate stage: translate the test split with greedy and beam search, score both, write the results.

metrics.json (key-sorted JSON)::

    {"pair": ..., "model": ..., "attention": ..., "epoch": ..., "normalization": ..., "parameters": N,
     "members": [checkpoint paths], "beam_size": K, "alpha": a, "max_length": n, "device": "cpu",
     "greedy": {"bleu", "bleu_ci95": [low, high] or null, "chrf", "exact_match", "sentences", "sentences_per_s",
                "seconds", "signature": {"bleu": sacrebleu BLEU signature, "chrf": chrF signature,
                                         "bleu_ci95": how the interval was drawn, or why
                                                      there is none (fewer than min_interval_sentences)}},
     "beam": {... the same ...}}

BLEU and chrF are 0-100, exact_match a fraction 0-1; "members" has one checkpoint, or an ensemble's several.
translations.tsv has one row per test pair, in the split's order: source, reference, greedy, beam,
greedy_bleu, greedy_chrf, beam_bleu, beam_chrf (plain text, as scored).

attention.json.gz (gzip, JSON; what the explorer draws, so that it decodes nothing again)::

    {"format": 1,
     "source_tokens": [[label, ...], ...],   # per test sentence, in split order: the tokens read, without <eos>
     "greedy": {"output_tokens": [[label, ..., "<eos>"], ...],     # "<eos>" when produced
                "weights": [[[w, ...], ...], ...]},   # per sentence [len(output)][len(source) + 1], 4 decimals
     "beam": {... the same ...}}
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from .corpus import read_split
from .devices import resolve_device, set_cpu_threads
from .ensemble import load_system
from .formats import ATTENTION_FORMAT, write_attention, write_metrics, write_translations
from .metrics import corpus_scores, sentence_scores, too_few_for_an_interval
from .settings import EvaluationSettings
from .translate import Translation, translate_sentences

LOG = logging.getLogger(__name__)


@dataclass
class Decoded:
    """One decoding method's translations of the test split and the seconds they took."""

    translations: list[Translation]
    seconds: float


def decode_test_split(model: torch.nn.Module, sources: Sequence[str], source_vocab, target_vocab,
                      device: torch.device, beam_size: int, settings: EvaluationSettings) -> Decoded:
    """Translate the (already normalized) test sources; timed, waiting for the GPU to finish."""
    start = time.perf_counter()
    translations = translate_sentences(model, sources, source_vocab, target_vocab, normalization=None,
                                       beam_size=beam_size, alpha=settings.length_penalty,
                                       max_len=settings.max_length, batch_size=settings.batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return Decoded(translations, time.perf_counter() - start)


def attention_record(decoded: dict[str, Decoded]) -> dict:
    """The content of attention.json.gz (see the module docstring) for the decodings of the test split."""
    first = next(iter(decoded.values())).translations
    record: dict = {"format": ATTENTION_FORMAT, "source_tokens": [t.source_tokens for t in first]}
    for name, result in decoded.items():
        record[name] = {"output_tokens": [t.output_tokens for t in result.translations],
                        "weights": [[[round(w, 4) for w in row] for row in t.attention.tolist()]
                                    for t in result.translations]}
    return record


def evaluate_model(models: Sequence[str | os.PathLike[str]], test: str | os.PathLike[str],
                   translations: str | os.PathLike[str], metrics: str | os.PathLike[str],
                   attention: str | os.PathLike[str], settings: EvaluationSettings, threads: int | None = None,
                   device: str = "auto") -> dict:
    """Evaluate one checkpoint, or an ensemble of several, on one test split; writes the three outputs atomically
    and returns the metrics dict.

    Test sources are already normalized by the prepare stage. Greedy search and beam search (``beam_size``,
    GNMT length-penalty exponent ``length_penalty``) both run batched on CUDA when available
    (``device="auto"``), else on CPU with ``threads`` threads.
    """
    if threads:
        set_cpu_threads(threads)
    torch_device = resolve_device(device, "--device")
    model, source_vocab, target_vocab, metadata = load_system(models, device=torch_device)
    pairs = read_split(test)
    sources = [source for source, _ in pairs]
    references = [target for _, target in pairs]
    LOG.info("evaluating %s on %d test pairs from %s (device %s)", ", ".join(map(str, models)), len(pairs), test,
             torch_device)
    result: dict = {
        "pair": metadata.pair, "model": metadata.model_name, "epoch": metadata.epoch, "attention": model.label,
        "normalization": metadata.normalization, "parameters": metadata.parameters,
        "members": [str(path) for path in models], "beam_size": settings.beam_size, "alpha": settings.length_penalty,
        "max_length": settings.max_length, "device": str(torch_device),
    }
    decoded: dict[str, Decoded] = {}
    for name, size in (("greedy", 1), ("beam", settings.beam_size)):
        decoded[name] = decode_test_split(model, sources, source_vocab, target_vocab, torch_device, size, settings)
        hypotheses = [t.text for t in decoded[name].translations]
        block = corpus_scores(hypotheses, references, settings.bootstrap_resamples, settings.seed,
                              settings.min_interval_sentences)
        block["seconds"] = decoded[name].seconds
        block["sentences_per_s"] = len(hypotheses) / decoded[name].seconds if decoded[name].seconds > 0 else 0.0
        result[name] = block
        interval = "[{:.2f}, {:.2f}]".format(*block["bleu_ci95"]) if block["bleu_ci95"] else "(no interval)"
        LOG.info("%s (beam %d): BLEU %.2f %s, chrF %.2f, exact match %.3f, %.1f sentences/s", name, size,
                 block["bleu"], interval, block["chrf"], block["exact_match"], block["sentences_per_s"])
    note = too_few_for_an_interval(len(pairs), settings.min_interval_sentences)
    if note:
        LOG.warning("%s: no BLEU interval: %s; the scores of so few sentences say little about others", test, note)

    table = pd.DataFrame({"source": sources, "reference": references,
                          **{name: [t.text for t in d.translations] for name, d in decoded.items()}})
    for name in decoded:
        table[f"{name}_bleu"], table[f"{name}_chrf"] = sentence_scores(list(table[name]), references)
    write_translations(translations, table)
    write_attention(attention, attention_record(decoded))
    write_metrics(metrics, result)
    return result
