"""sacrebleu-based metrics: limits, bootstrap interval, exact match, sentence scores."""

from __future__ import annotations

import pytest

from seq2seq.metrics import (bleu_bootstrap_ci, corpus_bleu, corpus_chrf, corpus_scores, exact_match,
                             sentence_bleu, sentence_scores)

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
    assert bleu_bootstrap_ci(REFERENCES, REFERENCES, resamples=50) == pytest.approx((100.0, 100.0))


def test_corpus_scores_block_has_the_metrics_json_keys() -> None:
    block = corpus_scores(HYPOTHESES, REFERENCES, resamples=50, seed=1)
    assert set(block) == {"bleu", "bleu_ci95", "chrf", "exact_match", "sentences", "signature"}
    assert block["sentences"] == 5 and len(block["bleu_ci95"]) == 2
    assert "tok:13a" in block["signature"]["bleu"] and "nc:6" in block["signature"]["chrf"]
    assert "resamples:50|seed:1" in block["signature"]["bleu_ci95"]


def test_sentence_scores_one_per_hypothesis() -> None:
    bleu, chrf = sentence_scores(HYPOTHESES, REFERENCES)
    assert len(bleu) == len(chrf) == 5
    assert bleu[0] == pytest.approx(100.0) and bleu[1] < 100.0
    assert chrf[3] == pytest.approx(100.0)


# --------------------------------------------------------------------------- the evaluate stage

def test_evaluate_stage_writes_metrics_and_translations(tmp_path) -> None:
    import json

    import pandas as pd
    from test_search import save_tiny_checkpoint

    from seq2seq.corpus import write_split
    from seq2seq.evaluation import evaluate_model
    from seq2seq.settings import EvaluationSettings

    model, pairs = save_tiny_checkpoint(tmp_path / "model.pt")
    test = pairs[::9] + [("je suis xylophone .", "i am a xylophone .")]
    write_split(tmp_path / "test.tsv", test)
    settings = EvaluationSettings(beam_size=3, length_penalty=0.6, max_length=12, batch_size=4,
                                  bootstrap_resamples=50, seed=3, min_interval_sentences=10)
    metrics = evaluate_model([model], tmp_path / "test.tsv", tmp_path / "translations.tsv", tmp_path / "metrics.json",
                             tmp_path / "attention.json.gz", settings, threads=1, device="cpu")
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    settings = (metrics["pair"], metrics["model"], metrics["beam_size"], metrics["alpha"])
    assert settings == ("fra-eng", "bahdanau", 3, 0.6)
    for name in ("greedy", "beam"):
        block = metrics[name]
        assert {"bleu", "bleu_ci95", "chrf", "exact_match", "sentences", "sentences_per_s", "signature"} <= set(block)
        assert block["sentences"] == len(test) and block["sentences_per_s"] > 0
        assert block["bleu_ci95"][0] <= block["bleu"] <= block["bleu_ci95"][1]
        assert block["exact_match"] == pytest.approx((len(test) - 1) / len(test))  # all but the made-up pair
    table = pd.read_csv(tmp_path / "translations.tsv", sep="\t")
    assert list(table.columns) == ["source", "reference", "greedy", "beam", "greedy_bleu", "greedy_chrf",
                                   "beam_bleu", "beam_chrf"]
    assert table["source"].tolist() == [s for s, _ in test]  # input order kept despite length sorting
    assert (table["greedy"].iloc[:-1] == table["reference"].iloc[:-1]).all()
    assert table["beam_bleu"].iloc[0] == pytest.approx(100.0)


def test_too_few_test_sentences_get_no_interval_and_a_warning(tmp_path, capsys) -> None:
    """Five pairs published a "95% interval" [1.24, 1.24]: below evaluation.min_interval_sentences there is
    none, metrics.json says why, and the warning reaches the stage's stderr (Snakemake's output)."""
    import json

    from test_search import save_tiny_checkpoint

    from seq2seq.corpus import write_split
    from seq2seq.evaluation import evaluate_model
    from seq2seq.logs import logging_to
    from seq2seq.settings import EvaluationSettings

    model, pairs = save_tiny_checkpoint(tmp_path / "model.pt")
    write_split(tmp_path / "test.tsv", pairs[:5])
    settings = EvaluationSettings(beam_size=2, bootstrap_resamples=20)
    assert settings.min_interval_sentences == 30  # the schema's default
    with logging_to(tmp_path / "evaluate.log", "evaluation"):
        evaluate_model([model], tmp_path / "test.tsv", tmp_path / "translations.tsv", tmp_path / "metrics.json",
                       tmp_path / "attention.json.gz", settings, threads=1, device="cpu")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    note = "too few test sentences (5 < evaluation.min_interval_sentences = 30)"
    for name in ("greedy", "beam"):
        assert metrics[name]["bleu_ci95"] is None
        assert metrics[name]["signature"]["bleu_ci95"] == f"none: {note}"
    assert capsys.readouterr().err == (f"WARNING seq2seq.evaluation: {tmp_path / 'test.tsv'}: no BLEU interval: "
                                       f"{note}; the scores of so few sentences say little about others\n")


# --------------------------------------------------------------------------- comparing two systems

def _corpus(n=300):
    import random

    return [" ".join(random.Random(i).choices("abcdefghij", k=9)) for i in range(n)]


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_system_against_itself_is_no_difference(test) -> None:
    from seq2seq.metrics import paired_comparison

    references = _corpus()
    system = [r if i % 4 else " ".join(r.split()[:-3]) for i, r in enumerate(references)]
    result = paired_comparison([system], [system], references, test, resamples=200)
    assert result["delta"] == 0 and result["ci_low"] == result["ci_high"] == 0 and result["p_value"] == 1.0
    # another run of the same quality: better on some sentences, worse on as many others: no evidence either
    other = [r if i % 4 != 1 else " ".join(r.split()[:-3]) for i, r in enumerate(references)]
    assert paired_comparison([system], [other], references, test, resamples=200)["p_value"] > 0.2


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_clearly_worse_copy_gets_a_small_p_value_and_a_negative_interval(test) -> None:
    from seq2seq.metrics import paired_comparison

    references = _corpus()
    truncated = [" ".join(r.split()[:4]) for r in references]
    result = paired_comparison([truncated], [references], references, test, resamples=200, seed=3)
    assert result["p_value"] < 0.01 and result["ci_low"] <= result["delta"] <= result["ci_high"] < 0
    assert result == paired_comparison([truncated], [references], references, test, resamples=200, seed=3)


def test_several_seeds_are_compared_as_their_pooled_systems() -> None:
    from seq2seq.metrics import bleu_statistics, bleu_from_statistics, paired_comparison, pooled

    references = _corpus(100)
    seeds = [[r if (i + s) % 3 else " ".join(r.split()[:-2]) for i, r in enumerate(references)] for s in range(3)]
    assert pooled(seeds, 6) == seeds[0] + seeds[1] + seeds[2] + seeds[0] + seeds[1] + seeds[2]
    result = paired_comparison(seeds, [references], references, resamples=100)
    pooled_bleu = bleu_from_statistics(bleu_statistics(pooled(seeds, 3), references * 3).sum(axis=0))
    assert result["runs"] == 3 and result["delta"] == pytest.approx(pooled_bleu - 100.0)
