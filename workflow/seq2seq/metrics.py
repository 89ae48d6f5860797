"""Translation quality with sacrebleu: corpus BLEU and chrF, exact match, bootstrap intervals.

Hypotheses and references are detokenized strings; here they are the pipeline's normalized sentences, tokens
joined by single spaces (``"i am happy ."``). sacrebleu's default 13a tokenizer leaves such text as it is, so
BLEU is computed on our tokens. ``force=True`` only silences sacrebleu's "looks tokenized" warning.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF


def _bleu(**kwargs) -> BLEU:
    return BLEU(force=True, **kwargs)


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of detokenized hypothesis strings against one reference each."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    return float(_bleu().corpus_score(list(hypotheses), [list(references)]).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0-100), sacrebleu's defaults (character 6-grams, beta 2)."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction (0-1) of hypotheses equal to their reference after whitespace normalization."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    return sum(h.split() == r.split() for h, r in zip(hypotheses, references)) / len(hypotheses)


def bleu_bootstrap_ci(hypotheses: Sequence[str], references: Sequence[str], resamples: int = 1000,
                      seed: int = 12345, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of corpus BLEU: resample sentences with replacement ``resamples`` times.

    Each sentence's BLEU sufficient statistics (n-gram matches and totals, lengths) are computed once; a
    resample sums the picked rows and turns the sum into corpus BLEU, as sacrebleu's own bootstrap does (which
    however takes its seed from the SACREBLEU_SEED environment variable, hence this function).
    """
    _check(hypotheses, references)
    if not hypotheses:
        return (0.0, 0.0)
    bleu = _bleu(effective_order=True)  # changes only the sentence score, not the statistics used here
    order = bleu.max_ngram_order
    rows = []
    for hypothesis, reference in zip(hypotheses, references):
        s = bleu.sentence_score(hypothesis, [reference])
        rows.append([s.sys_len, s.ref_len, *s.counts, *s.totals])
    stats = np.asarray(rows, dtype=np.int64)  # [N, 2 + 2*order]
    rng = np.random.default_rng(seed)
    scores = np.empty(resamples)
    for i in range(resamples):
        total = stats[rng.integers(0, len(stats), size=len(stats))].sum(axis=0)
        scores[i] = BLEU.compute_bleu(correct=total[2:2 + order].tolist(), total=total[2 + order:].tolist(),
                                      sys_len=int(total[0]), ref_len=int(total[1]),
                                      smooth_method=bleu.smooth_method, smooth_value=bleu.smooth_value,
                                      max_ngram_order=order).score
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(scores, [tail, 100 - tail])
    return (float(low), float(high))


def signatures(resamples: int, seed: int) -> dict[str, str]:
    """sacrebleu signatures of the BLEU and chrF settings used here, and how the BLEU interval was drawn."""
    bleu, chrf = _bleu(), CHRF()
    bleu.num_refs = chrf.num_refs = 1  # sacrebleu fills this in only after scoring
    return {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature()),
            "bleu_ci95": f"percentile bootstrap|resamples:{resamples}|seed:{seed}"}


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], resamples: int = 1000,
                  seed: int = 12345) -> dict:
    """The metrics.json block of one decoding method, without timing.

    Keys: ``bleu``, ``bleu_ci95`` ([low, high]), ``chrf`` (0-100), ``exact_match`` (fraction 0-1),
    ``sentences``, ``signature`` (dict of sacrebleu signature strings: ``bleu``, ``chrf``, ``bleu_ci95``).
    """
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "bleu_ci95": list(bleu_bootstrap_ci(hypotheses, references, resamples, seed)),
        "chrf": corpus_chrf(hypotheses, references),
        "exact_match": exact_match(hypotheses, references),
        "sentences": len(hypotheses),
        "signature": signatures(resamples, seed),
    }


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """Sentence BLEU (0-100) with effective n-gram order, so short sentences are not always 0."""
    return float(_bleu(effective_order=True).sentence_score(hypothesis, [reference]).score)


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (0-100)."""
    return float(CHRF().sentence_score(hypothesis, [reference]).score)


def sentence_scores(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[float], list[float]]:
    """(sentence BLEU list, sentence chrF list), one score per hypothesis."""
    _check(hypotheses, references)
    bleu, chrf = _bleu(effective_order=True), CHRF()
    return ([float(bleu.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)],
            [float(chrf.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)])

