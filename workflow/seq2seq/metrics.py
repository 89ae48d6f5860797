"""Translation quality with sacrebleu: corpus BLEU and chrF, exact match, bootstrap intervals.

Hypotheses and references are detokenized strings; here they are the pipeline's normalized sentences, tokens
joined by single spaces (``"i am happy ."``). sacrebleu's default 13a tokenizer leaves such text as it is, so
BLEU is computed on our tokens, with one exception: a word model's ``<unk>`` is split into ``< unk >``, three
tokens (a subword model's unknown piece decodes to one, ``⁇``). With the default ``vocab.min_freq: 1`` the models
hardly ever produce it. ``force=True`` only silences sacrebleu's "looks tokenized" warning.
"""

from __future__ import annotations

import math
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


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Each sentence's BLEU sufficient statistics: [N, 2 + 2 * 4] int64 rows (hypothesis length, reference
    length, n-gram matches, n-gram totals), which sum over any set of sentences into corpus BLEU."""
    bleu = _bleu(effective_order=True)  # changes only the sentence score, not the statistics used here
    rows = [[s.sys_len, s.ref_len, *s.counts, *s.totals]
            for s in (bleu.sentence_score(h, [r]) for h, r in zip(hypotheses, references))]
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 + 2 * bleu.max_ngram_order)


def bleu_from_statistics(total: np.ndarray) -> float:
    """Corpus BLEU (0-100) from summed :func:`bleu_statistics` rows, computed as sacrebleu computes it from its
    statistics (in the array's own precision: sacrebleu's paired bootstrap sums in float32)."""
    bleu = _bleu()
    order = bleu.max_ngram_order
    return float(BLEU.compute_bleu(correct=total[2:2 + order], total=total[2 + order:], sys_len=int(total[0]),
                                   ref_len=int(total[1]), smooth_method=bleu.smooth_method,
                                   smooth_value=bleu.smooth_value, max_ngram_order=order).score)


def _percentiles(scores: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(scores, [tail, 100 - tail])
    return (float(low), float(high))


def _as_runs(stats: np.ndarray) -> np.ndarray:
    """Per-sentence statistics as runs: [N, F] (one run) or [R, N, F] -> [R, N, F]."""
    return stats[None] if stats.ndim == 2 else stats


def mean_bleu(totals: np.ndarray) -> float:
    """The mean over runs of each run's corpus BLEU, from the runs' summed statistics [R, F] (one run: its BLEU).
    A model's seeds are compared by this mean (the ``bleu`` of the summary's row), not by the BLEU of their
    outputs pooled into one corpus, which the brevity penalty can put outside the range of the seeds' own."""
    return float(np.mean([bleu_from_statistics(total) for total in totals]))


def statistics_bootstrap_ci(stats: np.ndarray, resamples: int, seed: int, confidence: float = 0.95
                            ) -> tuple[float, float]:
    """Percentile bootstrap interval of corpus BLEU from per-sentence statistics ``stats``, [N, F] for one run
    or [R, N, F] for R runs (a model's seeds; the statistic is then :func:`mean_bleu`): resample the N test
    sentences with replacement ``resamples`` times, each carrying all of its runs; each resample sums the picked
    rows into corpus BLEU, as sacrebleu's own bootstrap does (which however takes its seed from the
    SACREBLEU_SEED environment variable, hence this function)."""
    runs = _as_runs(stats)
    rng = np.random.default_rng(seed)
    count = runs.shape[1]
    scores = np.array([mean_bleu(runs[:, rng.integers(0, count, size=count)].sum(axis=1))
                       for _ in range(resamples)])
    return _percentiles(scores, confidence)


def bleu_bootstrap_ci(hypotheses: Sequence[str], references: Sequence[str], resamples: int, seed: int,
                      confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of corpus BLEU over the test sentences (:func:`statistics_bootstrap_ci`)."""
    _check(hypotheses, references)
    if not hypotheses:
        return (0.0, 0.0)
    return statistics_bootstrap_ci(bleu_statistics(hypotheses, references), resamples, seed, confidence)


def runs_statistics(runs: Sequence[Sequence[str]], references: Sequence[str]) -> np.ndarray:
    """The BLEU statistics of each run (a model's seeds) for each test sentence, [R, N, F] int64. Intervals and
    tests resample their second axis, the test sentences, each with all of its runs: the runs of one sentence
    are no independent samples (an ensemble's one output counted three times beside three seeds says
    nothing new)."""
    for hypotheses in runs:
        _check(hypotheses, references)
    return np.stack([bleu_statistics(hypotheses, references) for hypotheses in runs])


def _paired_runs(system: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' runs repeated to their least common multiple, [L, N, F] each, so that run j of one side
    faces run j of the other (copies leave :func:`mean_bleu` as it is)."""
    ours, theirs = _as_runs(system), _as_runs(baseline)
    count = math.lcm(len(ours), len(theirs))
    return np.repeat(ours, count // len(ours), axis=0), np.tile(theirs, (count // len(theirs), 1, 1))


def _p_value(resampled: np.ndarray, observed: float) -> float:
    """sacrebleu's p-value of a paired test (``significance._compute_p_value``, after multeval): the share of
    resampled statistics strictly above the observed one, with +1 for the observed itself."""
    return (int(np.sum(resampled > observed)) + 1) / (len(resampled) + 1)


def paired_p_value(system: np.ndarray, baseline: np.ndarray, test: str, resamples: int, seed: int) -> float:
    """The p-value of sacrebleu's paired test of corpus BLEU on per-sentence statistics of two systems, [N, F]
    or [R, N, F] (runs; compared by :func:`mean_bleu`): ``bs`` (paired bootstrap resampling, as Moses'
    bootstrap-hypothesis-difference-significance.pl) or ``ar`` (paired approximate randomization: each
    sentence's outputs, all of its runs, swapped between the systems with probability 1/2). The same draws and
    arithmetic as sacrebleu's ``PairedTest`` (which gives the same p-value for single runs; a test checks it),
    and with ``seed`` used as given (sacrebleu reads it from the environment and leaves the generator unseeded
    for 0)."""
    ours, theirs = _paired_runs(system, baseline)
    rng = np.random.default_rng(seed)
    count = ours.shape[1]
    observed = abs(mean_bleu(ours.sum(axis=1)) - mean_bleu(theirs.sum(axis=1)))
    if test == "bs":
        picks = rng.choice(count, size=(resamples, count), replace=True)
        ours32, theirs32 = ours.astype(np.float32), theirs.astype(np.float32)
        differences = np.abs(np.array([mean_bleu(ours32[:, pick].sum(axis=1)) for pick in picks])
                             - np.array([mean_bleu(theirs32[:, pick].sum(axis=1)) for pick in picks]))
        return _p_value(differences - differences.mean(), observed)
    if test == "ar":
        swap = rng.integers(2, size=(resamples, count), dtype=bool)
        # per resample and run: the summed statistics of each side after the swaps, [resamples, L, F]
        first = np.einsum("rn,lnf->rlf", swap, theirs) + np.einsum("rn,lnf->rlf", ~swap, ours)
        second = np.einsum("rn,lnf->rlf", ~swap, theirs) + np.einsum("rn,lnf->rlf", swap, ours)
        differences = np.abs(np.array([mean_bleu(totals) for totals in first])
                             - np.array([mean_bleu(totals) for totals in second]))
        return _p_value(differences, observed)
    raise ValueError(f"unknown paired test {test!r}; expected bs or ar")


def paired_comparison(system: Sequence[Sequence[str]], baseline: Sequence[Sequence[str]],
                      references: Sequence[str], test: str, resamples: int, seed: int,
                      confidence: float = 0.95) -> dict:
    """``system`` against ``baseline`` on the same test sentences: BLEU difference, its percentile bootstrap
    interval, and the p-value of sacrebleu's paired test (``bs``: paired bootstrap resampling, ``ar``: paired
    approximate randomization, :func:`paired_p_value`), both with a fixed seed.

    Each side is a list of runs (a model's seeds; one run for a single model or an ensemble), each a list of
    hypotheses in test order, and is scored by the mean of its runs' corpus BLEU (:func:`mean_bleu`): the
    interval and the test resample the test sentences, each carrying all of its runs, so that neither narrows
    with the number of runs, and copies of a run change nothing. Returns ``delta`` (system - baseline, the
    difference of the means), ``ci_low``, ``ci_high``, ``p_value``, ``runs`` and ``baseline_runs`` (how many
    runs each side has).
    """
    ours, theirs = runs_statistics(system, references), runs_statistics(baseline, references)
    if np.array_equal(*_paired_runs(ours, theirs)):
        # No difference at all. sacrebleu counts resampled differences strictly greater than the observed one,
        # which for identical outputs (every difference exactly 0) gives its smallest p-value, 1/(n+1).
        p_value = 1.0
    else:
        p_value = paired_p_value(ours, theirs, test, resamples, seed)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(resamples):
        pick = rng.integers(0, len(references), size=len(references))
        deltas.append(mean_bleu(ours[:, pick].sum(axis=1)) - mean_bleu(theirs[:, pick].sum(axis=1)))
    low, high = _percentiles(np.array(deltas), confidence)
    delta = mean_bleu(ours.sum(axis=1)) - mean_bleu(theirs.sum(axis=1))
    return {"delta": delta, "ci_low": low, "ci_high": high, "p_value": p_value, "runs": len(system),
            "baseline_runs": len(baseline)}


def too_few_for_an_interval(sentences: int, minimum: int) -> str | None:
    """Why no interval or paired test is given for ``sentences`` test sentences (None when there are enough)."""
    if sentences >= minimum:
        return None
    return f"too few test sentences ({sentences} < evaluation.min_interval_sentences = {minimum})"


def signatures(resamples: int, seed: int, interval_note: str | None = None) -> dict[str, str]:
    """sacrebleu signatures of the BLEU and chrF settings used here, and how the BLEU interval was drawn (or why
    it was not)."""
    bleu, chrf = _bleu(), CHRF()
    bleu.num_refs = chrf.num_refs = 1  # sacrebleu fills this in only after scoring
    return {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature()),
            "bleu_ci95": f"none: {interval_note}" if interval_note else
            f"percentile bootstrap|resamples:{resamples}|seed:{seed}"}


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], resamples: int, seed: int,
                  min_interval_sentences: int) -> dict:
    """The metrics.json block of one decoding method, without timing.

    Keys: ``bleu``, ``bleu_ci95`` ([low, high], or None for fewer than ``min_interval_sentences`` sentences),
    ``chrf`` (0-100), ``exact_match`` (fraction 0-1), ``sentences``, ``signature`` (dict of sacrebleu signature
    strings: ``bleu``, ``chrf``, ``bleu_ci95``: how the interval was drawn, or why there is none).
    """
    note = too_few_for_an_interval(len(hypotheses), min_interval_sentences)
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "bleu_ci95": None if note else list(bleu_bootstrap_ci(hypotheses, references, resamples, seed)),
        "chrf": corpus_chrf(hypotheses, references),
        "exact_match": exact_match(hypotheses, references),
        "sentences": len(hypotheses),
        "signature": signatures(resamples, seed, note),
    }


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """Sentence BLEU (0-100) with effective n-gram order, so short sentences are not always 0."""
    return float(_bleu(effective_order=True).sentence_score(hypothesis, [reference]).score)


def sentence_scores(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[float], list[float]]:
    """(sentence BLEU list, sentence chrF list), one score per hypothesis."""
    _check(hypotheses, references)
    bleu, chrf = _bleu(effective_order=True), CHRF()
    return ([float(bleu.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)],
            [float(chrf.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)])

