"""Metrics: BLEU and chrF as sacrebleu computes them, the bootstrap interval against a plain percentile
bootstrap written here, the paired test against sacrebleu's own; limits, exact match, sentence scores."""

from __future__ import annotations

import math
import os
import random
from collections import Counter

import numpy as np
import pytest
import sacrebleu

from seq2seq.metrics import (bleu_bootstrap_ci, bleu_statistics, corpus_bleu, corpus_chrf, corpus_scores,
                             exact_match, paired_comparison, runs_statistics, sentence_bleu, sentence_scores,
                             statistics_bootstrap_ci)

REFERENCES = ["i am happy .", "he is very tall .", "we are sad .", "you are rich .", "she is not ready ."]
HYPOTHESES = ["i am happy .", "he is tall .", "we are not sad .", "you are rich .", "she is ready ."]


def test_perfect_hypotheses_score_100_and_empty_ones_0() -> None:
    assert corpus_bleu(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert corpus_chrf(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert corpus_bleu([""] * len(REFERENCES), REFERENCES) == 0.0
    assert corpus_bleu([], []) == 0.0
    assert sentence_bleu("i am happy .", "i am happy .") == pytest.approx(100.0)


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])


def test_exact_match_is_a_fraction() -> None:
    assert exact_match(HYPOTHESES, REFERENCES) == pytest.approx(2 / 5)
    assert exact_match(["a  b"], ["a b"]) == 1.0


def test_bootstrap_interval_contains_the_score_and_is_reproducible() -> None:
    hypotheses, references = HYPOTHESES * 20, REFERENCES * 20
    low, high = bleu_bootstrap_ci(hypotheses, references, resamples=200, seed=7)
    assert low < corpus_bleu(hypotheses, references) < high
    assert (low, high) == bleu_bootstrap_ci(hypotheses, references, resamples=200, seed=7)
    assert bleu_bootstrap_ci(REFERENCES, REFERENCES, resamples=50, seed=12345) == pytest.approx((100.0, 100.0))


def test_corpus_scores_block_has_the_metrics_json_keys() -> None:
    block = corpus_scores(HYPOTHESES, REFERENCES, resamples=50, seed=1, min_interval_sentences=1)
    assert set(block) == {"bleu", "bleu_ci95", "chrf", "exact_match", "sentences", "signature"}
    assert block["sentences"] == 5 and len(block["bleu_ci95"]) == 2
    assert "tok:13a" in block["signature"]["bleu"] and "nc:6" in block["signature"]["chrf"]
    assert "resamples:50|seed:1" in block["signature"]["bleu_ci95"]


def test_sentence_scores_one_per_hypothesis() -> None:
    bleu, chrf = sentence_scores(HYPOTHESES, REFERENCES)
    assert len(bleu) == len(chrf) == 5
    assert bleu[0] == pytest.approx(100.0) and bleu[1] < 100.0
    assert chrf[3] == pytest.approx(100.0)


# --------------------------------------------------------------------------- comparing two systems

def _corpus(n=300):
    return [" ".join(random.Random(i).choices("abcdefghij", k=9)) for i in range(n)]


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_system_against_itself_is_no_difference(test) -> None:
    references = _corpus()
    system = [r if i % 4 else " ".join(r.split()[:-3]) for i, r in enumerate(references)]
    result = paired_comparison([system], [system], references, test, resamples=200, seed=12345)
    assert result["delta"] == 0 and result["ci_low"] == result["ci_high"] == 0 and result["p_value"] == 1.0
    # another run of the same quality: better on some sentences, worse on as many others: no evidence either
    other = [r if i % 4 != 1 else " ".join(r.split()[:-3]) for i, r in enumerate(references)]
    assert paired_comparison([system], [other], references, test, resamples=200, seed=12345)["p_value"] > 0.2


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_clearly_worse_copy_gets_a_small_p_value_and_a_negative_interval(test) -> None:
    references = _corpus()
    truncated = [" ".join(r.split()[:4]) for r in references]
    result = paired_comparison([truncated], [references], references, test, resamples=200, seed=3)
    assert result["p_value"] < 0.01 and result["ci_low"] <= result["delta"] <= result["ci_high"] < 0
    assert result == paired_comparison([truncated], [references], references, test, resamples=200, seed=3)


def test_several_seeds_are_compared_by_the_mean_of_their_bleu() -> None:
    references = _corpus(100)
    seeds = [[r if (i + s) % 3 else " ".join(r.split()[:-2]) for i, r in enumerate(references)] for s in range(3)]
    result = paired_comparison(seeds, [references], references, "bs", resamples=100, seed=12345)
    mean = sum(corpus_bleu(seed, references) for seed in seeds) / 3  # the summary row's bleu
    assert (result["runs"], result["baseline_runs"]) == (3, 1)
    assert result["delta"] == pytest.approx(mean - 100.0, abs=1e-9)


def test_seeds_of_unlike_lengths_get_an_interval_and_a_difference_of_their_mean() -> None:
    """One seed stops early, the other runs on: both score about 7 BLEU below the baseline, but their outputs
    pooled into one corpus get no brevity penalty and scored above it. The interval, the difference and the
    test were of that pooled BLEU, beside the mean in the summary's row: a row of bleu 73.4 read an interval
    [80.09, 82.33] and a difference of +0.67 (review)."""
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(400)]
    references = [" ".join(rng.sample(vocab, rng.randint(5, 14))) for _ in range(300)]

    def noisy(text: str, p: float) -> str:
        return " ".join(w if rng.random() > p else rng.choice(vocab) for w in text.split())

    short = [" ".join(noisy(r, 0.03).split()[:max(1, int(len(r.split()) * 0.85))]) for r in references]
    long_ = [noisy(r, 0.03) + " x1 x2" for r in references]
    baseline = [noisy(r, 0.085) for r in references]
    seeds = [corpus_bleu(short, references), corpus_bleu(long_, references)]
    base = corpus_bleu(baseline, references)
    assert max(seeds) < base - 5 < corpus_bleu(short + long_, references * 2) - 5  # pooled: above the baseline
    low, high = statistics_bootstrap_ci(runs_statistics([short, long_], references), 300, 7)
    assert low < sum(seeds) / 2 < high and high < base
    result = paired_comparison([short, long_], [baseline], references, "bs", resamples=300, seed=7)
    assert result["delta"] == pytest.approx(sum(seeds) / 2 - base, abs=1e-9)
    assert result["ci_high"] < 0 and result["p_value"] < 0.01


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_copies_of_a_run_leave_the_difference_as_it_is_where_no_4gram_matches(test) -> None:
    """sacrebleu's smoothing of an n-gram order without a match is not the same for statistics counted several
    times: pooling copies of a run moved the difference from -80.93 to -82.31 (review)."""
    rng = random.Random(0)
    words = "the a cat dog sat on mat is red big small house".split()
    references = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)]
    weak = [" ".join(r.split()[:3]) + " zz yy xx" for r in references]  # no 4-gram matches anywhere
    baseline = [r if i % 2 else " ".join(r.split()[:6]) for i, r in enumerate(references)]
    one = paired_comparison([weak], [baseline], references, test, resamples=200, seed=12345)
    assert one["delta"] == pytest.approx(corpus_bleu(weak, references) - corpus_bleu(baseline, references))
    for system_runs, baseline_runs in ((1, 3), (2, 1), (3, 2)):
        many = paired_comparison([weak] * system_runs, [baseline] * baseline_runs, references, test,
                                 resamples=200, seed=12345)
        assert [many[k] for k in ("delta", "ci_low", "ci_high", "p_value")] == pytest.approx(
            [one[k] for k in ("delta", "ci_low", "ci_high", "p_value")]), (system_runs, baseline_runs)


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_repeating_the_same_outputs_as_more_runs_changes_no_interval_or_p_value(test) -> None:
    """The intervals and tests resample test sentences, each with all of its runs: copies of one output add no
    evidence, so one run against one, three copies against three and two against three give the same numbers
    (pooling runs as independent sentences made the interval narrower and p smaller with every copy)."""
    system, references = noisy_corpus(200, seed=5)
    baseline = [" ".join(h.split()[:-1]) if i % 40 == 0 else h for i, h in enumerate(system)]  # 5 words fewer
    one = paired_comparison([system], [baseline], references, test, resamples=300, seed=7)
    assert 0.02 < one["p_value"] < 0.5 and one["ci_low"] < 0 < one["ci_high"]  # a difference resampling blurs
    for system_runs, baseline_runs in ((3, 3), (2, 3), (1, 3)):
        many = paired_comparison([system] * system_runs, [baseline] * baseline_runs, references, test,
                                 resamples=300, seed=7)
        assert many["delta"] == pytest.approx(one["delta"])
        assert (many["ci_low"], many["ci_high"], many["p_value"]) == pytest.approx(
            (one["ci_low"], one["ci_high"], one["p_value"])), (system_runs, baseline_runs)
    stats = bleu_statistics(system, references)
    assert statistics_bootstrap_ci(runs_statistics([system] * 3, references), 300, 7) == pytest.approx(
        statistics_bootstrap_ci(stats, 300, 7))


@pytest.mark.parametrize("test", ["bs", "ar"])
@pytest.mark.parametrize("seed", [12345, 3])
def test_the_p_value_of_single_runs_is_sacrebleus(test, seed, monkeypatch) -> None:
    """sacrebleu's own PairedTest (seeded through SACREBLEU_SEED) is the reference for one run a side."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    system, references = noisy_corpus(150, seed=8)
    baseline = [" ".join(h.split()[:-1]) if i % 15 == 0 else h for i, h in enumerate(system)]
    monkeypatch.setenv("SACREBLEU_SEED", str(seed))
    _, results = PairedTest([("baseline", baseline), ("system", system)], {"BLEU": BLEU(force=True)}, [references],
                            test_type=test, n_samples=200)()
    ours = paired_comparison([system], [baseline], references, test, resamples=200, seed=seed)["p_value"]
    assert ours == float(results["BLEU"][1].p_value)


# --------------------------------------------------------------------------- independent derivations

WORDS = "the a cat dog sat ran on under mat table big small red blue".split()


def noisy_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """(hypotheses, references): references of 6-12 words; each hypothesis its reference with about one word in
    five replaced, dropped or doubled, so that sentence BLEU varies and every n-gram order has matches."""
    rng = random.Random(seed)
    hypotheses, references = [], []
    for _ in range(n):
        reference = [rng.choice(WORDS) for _ in range(rng.randint(6, 12))] + ["."]
        hypothesis = []
        for word in reference:
            roll = rng.random()
            if roll < 0.08:
                hypothesis.append(rng.choice(WORDS))
            elif roll < 0.14:
                continue
            elif roll < 0.2:
                hypothesis += [word, word]
            else:
                hypothesis.append(word)
        hypotheses.append(" ".join(hypothesis))
        references.append(" ".join(reference))
    return hypotheses, references


def ngram_statistics(hypothesis: str, reference: str) -> list[int]:
    """[hypothesis length, reference length, clipped matches of 1..4-grams, hypothesis 1..4-grams], Papineni et
    al. 2002, on whitespace tokens (sacrebleu's 13a tokenizer leaves this text as it is)."""
    hyp, ref = hypothesis.split(), reference.split()
    matches, totals = [], []
    for n in range(1, 5):
        h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        matches.append(sum(min(count, r[gram]) for gram, count in h.items()))
        totals.append(max(len(hyp) - n + 1, 0))
    return [len(hyp), len(ref), *matches, *totals]


def plain_bleu(total: np.ndarray) -> float:
    """BLEU = BP * exp(mean of log n-gram precisions), BP = min(1, exp(1 - r/c)); every precision non-zero."""
    c, r, matches, totals = total[0], total[1], total[2:6], total[6:10]
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return 100 * brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / 4)


def plain_bootstrap(hypotheses, references, resamples: int, seed: int) -> np.ndarray:
    """BLEU of ``resamples`` corpora drawn from the test sentences with replacement, each as large as the test
    set: the distribution a percentile bootstrap interval is read from."""
    stats = np.array([ngram_statistics(h, r) for h, r in zip(hypotheses, references)])
    rng = np.random.default_rng(seed)
    return np.array([plain_bleu(stats[rng.integers(0, len(stats), len(stats))].sum(axis=0))
                     for _ in range(resamples)])


def test_corpus_bleu_and_chrf_are_sacrebleus_defaults_and_the_papers_formula():
    hypotheses, references = noisy_corpus(80, seed=1)
    stats = np.array([ngram_statistics(h, r) for h, r in zip(hypotheses, references)]).sum(axis=0)
    assert corpus_bleu(hypotheses, references) == pytest.approx(plain_bleu(stats), abs=1e-9)
    assert corpus_bleu(hypotheses, references) == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], force=True).score, abs=1e-9)
    assert corpus_chrf(hypotheses, references) == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-9)


def test_the_bootstrap_interval_is_a_95_percent_percentile_interval_of_full_size_resamples():
    """Against a plain percentile bootstrap written here (its own n-gram counting, resampling and seed): the
    module's interval holds 95% of the plain bootstrap's BLEU scores, with the same width. An interval of
    another level, or drawn from resamples of another size than the test set's, fails one of the two."""
    hypotheses, references = noisy_corpus(200, seed=2)
    low, high = bleu_bootstrap_ci(hypotheses, references, resamples=2000, seed=1)
    scores = plain_bootstrap(hypotheses, references, resamples=4000, seed=2)
    inside = float(np.mean((scores >= low) & (scores <= high)))
    assert inside == pytest.approx(0.95, abs=0.02)
    plain_low, plain_high = np.percentile(scores, [2.5, 97.5])
    assert (high - low) / (plain_high - plain_low) == pytest.approx(1.0, abs=0.08)
    assert (low + high) / 2 == pytest.approx((plain_low + plain_high) / 2, abs=0.1 * (high - low))


def test_the_bootstrap_interval_narrows_as_the_test_set_grows():
    """The interval's width falls as 1 / sqrt(sentences): four times the sentences, half the width."""
    hypotheses, references = noisy_corpus(400, seed=3)
    small = bleu_bootstrap_ci(hypotheses[:100], references[:100], resamples=1000, seed=4)
    large = bleu_bootstrap_ci(hypotheses, references, resamples=1000, seed=4)
    ratio = (large[1] - large[0]) / (small[1] - small[0])
    assert 0.35 < ratio < 0.7, ratio


def sacrebleus_own_p_value(system, baseline, references, test, resamples, seed) -> float:
    """The p-value sacrebleu's paired test gives (as `sacrebleu -t ... --paired-{bs,ar}` would)."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    saved = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        _, results = PairedTest([("baseline", baseline), ("system", system)], {"BLEU": BLEU(force=True)}, [references],
                                test_type=test, n_samples=resamples)()
    finally:
        if saved is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = saved
    return float(results["BLEU"][1].p_value)


DROP = 0.16


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_the_paired_test_is_sacrebleus_own(test):
    """Two systems of about the same quality (p-values well inside (0, 1), where the two tests differ): the
    comparison's p-value is the one sacrebleu's own paired test gives, for the test asked for; its interval of
    the difference is a plain paired percentile bootstrap's."""
    system, references = noisy_corpus(150, seed=5)
    rng = random.Random(6)  # the baseline drops words where the system replaces, drops or doubles them
    baseline = [" ".join(w for w in r.split() if rng.random() > DROP) for r in references]
    result = paired_comparison([system], [baseline], references, test, resamples=300, seed=7)
    own = sacrebleus_own_p_value(system, baseline, references, test, 300, 7)
    assert 0.005 < own < 0.995 and result["p_value"] == pytest.approx(own, abs=1e-12)
    other = sacrebleus_own_p_value(system, baseline, references, "ar" if test == "bs" else "bs", 300, 7)
    assert other != own  # the two tests tell apart here, so the right one was run

    ours = np.array([ngram_statistics(h, r) for h, r in zip(system, references)])
    theirs = np.array([ngram_statistics(h, r) for h, r in zip(baseline, references)])
    picks = np.random.default_rng(8).integers(0, len(references), (2000, len(references)))
    deltas = [plain_bleu(ours[p].sum(axis=0)) - plain_bleu(theirs[p].sum(axis=0)) for p in picks]
    plain_low, plain_high = np.percentile(deltas, [2.5, 97.5])
    assert result["delta"] == pytest.approx(plain_bleu(ours.sum(axis=0)) - plain_bleu(theirs.sum(axis=0)))
    assert (result["ci_high"] - result["ci_low"]) / (plain_high - plain_low) == pytest.approx(1.0, abs=0.12)
