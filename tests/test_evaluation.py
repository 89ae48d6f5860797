"""The evaluate stage: metrics.json, translations.tsv and attention.json.gz of a checkpoint on a test split; BLEU
scored on the detokenized text, as sacrebleu scores the table it writes."""

from __future__ import annotations

import csv
import gzip
import json

import pandas as pd
import pytest
import sacrebleu
import torch

from helpers import save_tiny_checkpoint
from seq2seq import evaluation
from seq2seq.corpus import write_split
from seq2seq.evaluation import evaluate_model
from seq2seq.explorer import EOS, write_explorer
from seq2seq.logs import logging_to
from seq2seq.settings import EvaluationSettings
from seq2seq.translate import Translation

OUTPUTS = ("translations.tsv", "metrics.json", "attention.json.gz")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(model.pt of the shared tiny model, its 144 training pairs)."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("evaluation") / "model.pt")


def evaluate(folder, checkpoint, pairs, **settings):
    """Run the stage on ``pairs`` as the test split; returns (metrics, the translations table, output paths)."""
    write_split(folder / "test.tsv", pairs)
    outputs = {name: folder / name for name in OUTPUTS}
    metrics = evaluate_model([checkpoint], folder / "test.tsv", outputs["translations.tsv"], outputs["metrics.json"],
                             outputs["attention.json.gz"], EvaluationSettings(**settings), threads=1, device="cpu")
    table = pd.read_csv(outputs["translations.tsv"], sep="\t", keep_default_na=False)
    return metrics, table, outputs


def test_evaluate_stage_writes_metrics_and_translations(tmp_path, checkpoint) -> None:
    model, pairs = checkpoint
    test = pairs[::9] + [("je suis xylophone .", "i am a xylophone .")]
    metrics, table, outputs = evaluate(tmp_path, model, test, beam_size=3, length_penalty=0.6, max_length=12,
                                       batch_size=4, bootstrap_resamples=50, seed=3, min_interval_sentences=10)
    assert json.loads(outputs["metrics.json"].read_text()) == metrics
    settings = (metrics["pair"], metrics["model"], metrics["beam_size"], metrics["alpha"])
    assert settings == ("fra-eng", "bahdanau", 3, 0.6)
    assert list(table.columns) == ["source", "reference", "greedy", "beam", "greedy_bleu", "greedy_chrf",
                                   "beam_bleu", "beam_chrf"]
    assert table["source"].tolist() == [s for s, _ in test]  # input order kept despite length sorting
    for name in ("greedy", "beam"):
        block = metrics[name]
        assert {"bleu", "bleu_ci95", "chrf", "exact_match", "sentences", "sentences_per_s", "signature"} <= set(block)
        assert block["sentences"] == len(test) and block["sentences_per_s"] > 0
        # the scores are those of the table it wrote, against the references
        hypotheses, references = table[name].tolist(), table["reference"].tolist()
        expected = sacrebleu.corpus_bleu(hypotheses, [references], force=True).score
        assert block["bleu"] == pytest.approx(expected, abs=1e-9)
        assert block["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-9)
        assert block["bleu_ci95"][0] <= block["bleu"] <= block["bleu_ci95"][1]
        assert block["exact_match"] == pytest.approx((len(test) - 1) / len(test))  # all but the made-up pair
    assert (table["greedy"].iloc[:-1] == table["reference"].iloc[:-1]).all()
    assert table["beam_bleu"].iloc[0] == pytest.approx(100.0)


def test_the_length_penalty_and_the_beam_size_reach_beam_search(tmp_path, checkpoint, monkeypatch) -> None:
    """evaluation.length_penalty and beam_size are what the beam pass decodes with (the other tests use the
    default 0.6, which a stage that dropped the setting would also use), and the greedy pass is greedy."""
    model, pairs = checkpoint
    used = []
    real = evaluation.translate_sentences

    def spy(*args, **kwargs):
        used.append((kwargs["beam_size"], kwargs["alpha"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "translate_sentences", spy)
    metrics, _, _ = evaluate(tmp_path, model, pairs[::20], beam_size=4, length_penalty=2.5, bootstrap_resamples=20,
                             min_interval_sentences=100)
    assert sorted(used) == [(1, 2.5), (4, 2.5)]
    assert (metrics["beam_size"], metrics["alpha"]) == (4, 2.5)


def test_bleu_is_scored_on_the_detokenized_text_not_on_the_pieces(tmp_path, checkpoint, monkeypatch) -> None:
    """A subword model's translations are pieces ("▁ti red") and text ("tired"): BLEU, chrF and exact match
    score the text, the same text translations.tsv holds (decoding is replaced by pieces of the reference)."""
    model, pairs = checkpoint
    test = pairs[:12]

    def pieces(text: str) -> list[str]:
        return [piece for word in text.split() for piece in ("\u2581" + word[:2], word[2:]) if piece] + [EOS]

    def translate(model, sentences, source_vocab, target_vocab, normalization, beam_size, **kwargs):
        references = dict(test)
        found = []
        for source in sentences:
            output = pieces(references[source])
            uniform = torch.full((len(output), len(source.split()) + 1), 1 / (len(source.split()) + 1))
            found.append(Translation(source.split(), output, uniform, 0.0, references[source]))
        return found

    monkeypatch.setattr(evaluation, "translate_sentences", translate)
    metrics, table, _ = evaluate(tmp_path, model, test, beam_size=2, bootstrap_resamples=10,
                                 min_interval_sentences=10)
    assert table["greedy"].tolist() == [t for _, t in test]
    for name in ("greedy", "beam"):
        assert metrics[name]["bleu"] == pytest.approx(100.0)
        assert metrics[name]["chrf"] == pytest.approx(100.0) and metrics[name]["exact_match"] == 1.0


def test_too_few_test_sentences_get_no_interval_and_a_warning(tmp_path, checkpoint, capsys) -> None:
    """Five pairs published a "95% interval" [1.24, 1.24]: below evaluation.min_interval_sentences there is
    none, metrics.json says why, and the warning reaches the stage's stderr (Snakemake's output)."""
    model, pairs = checkpoint
    assert EvaluationSettings().min_interval_sentences == 30  # the schema's default
    with logging_to(tmp_path / "evaluate.log", "evaluation"):
        metrics, _, _ = evaluate(tmp_path, model, pairs[:5], beam_size=2, bootstrap_resamples=20)
    note = "too few test sentences (5 < evaluation.min_interval_sentences = 30)"
    for name in ("greedy", "beam"):
        assert metrics[name]["bleu_ci95"] is None
        assert metrics[name]["signature"]["bleu_ci95"] == f"none: {note}"
    assert capsys.readouterr().err == (f"WARNING seq2seq.evaluation: {tmp_path / 'test.tsv'}: no BLEU interval: "
                                       f"{note}; the scores of so few sentences say little about others\n")


def test_evaluate_writes_the_attention_of_every_test_sentence(tmp_path, checkpoint) -> None:
    model, pairs = checkpoint
    chosen = pairs[:5]
    settings = {"beam_size": 2, "bootstrap_resamples": 10, "max_length": 12}
    _, _, outputs = evaluate(tmp_path, model, chosen, **settings)
    first = outputs["attention.json.gz"].read_bytes()
    assert first[:2] == b"\x1f\x8b"
    record = json.loads(gzip.decompress(first))
    assert list(record) == ["format", "source_tokens", "greedy", "beam"] and record["format"] == 1
    assert record["source_tokens"] == [s.split() for s, _ in chosen]  # without <eos>
    with open(outputs["translations.tsv"], encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for search in ("greedy", "beam"):
        block = record[search]
        assert list(block) == ["output_tokens", "weights"]
        assert len(block["output_tokens"]) == len(block["weights"]) == len(chosen)
        for source, output, matrix, row in zip(record["source_tokens"], block["output_tokens"], block["weights"],
                                               rows):
            assert output[-1] == EOS and EOS not in output[:-1]  # this model ends every sentence in time
            assert " ".join(output[:-1]) == row[search]
            assert len(matrix) == len(output) and all(len(r) == len(source) + 1 for r in matrix)
            for weights_row in matrix:
                assert sum(weights_row) == pytest.approx(1.0, abs=5e-3)
                assert all(0.0 <= w <= 1.0 and round(w, 4) == w for w in weights_row)
    # rerun: byte-identical (no time stamp or file name in the gzip header)
    evaluate(tmp_path, model, chosen, **settings)
    assert outputs["attention.json.gz"].read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["test.tsv", *OUTPUTS])
    # and the explorer reads it
    data = write_explorer([outputs["translations.tsv"]], [outputs["attention.json.gz"]], [["fra-eng", "tiny"]],
                          tmp_path / "page" / "explorer.html")
    assert data["pairs"][0]["source"] == [s for s, _ in chosen]
