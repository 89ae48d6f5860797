"""The summary stage: a table from two fake metrics/history sets and real checkpoints, Markdown, chart."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from seq2seq.checkpoint import model_payload, save_checkpoint
from seq2seq.model import Seq2Seq
from seq2seq.settings import ModelConfig
from seq2seq.summary import COLUMNS, summary_table, to_markdown, write_summary
from seq2seq.vocab import Vocabulary


def fake_run(folder, attention: str, bleu: float, seconds: list[float]) -> list:
    folder.mkdir(parents=True)
    block = {"bleu": bleu, "bleu_ci95": [bleu - 2, bleu + 2], "chrf": 50.0, "exact_match": 0.25,
             "sentences": 40, "sentences_per_s": 100.0, "signature": {}}
    metrics = {"greedy": {**block, "bleu": bleu - 1, "bleu_ci95": [bleu - 3, bleu + 1]}, "beam": block}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    history = pd.DataFrame({"epoch": range(1, len(seconds) + 1), "train_loss": 1.0, "valid_loss": 1.0,
                            "valid_bleu": 1.0, "learning_rate": 0.001, "seconds": seconds, "pairs_per_s": 1000.0})
    history.to_csv(folder / "history.tsv", sep="\t", index=False)
    vocab = Vocabulary.build([["a", "b", "c"]])
    model = Seq2Seq(ModelConfig(len(vocab), len(vocab), attention, hidden_size=8))
    save_checkpoint(folder / "model.pt", model_payload(model, vocab, vocab, {"normalization": "ascii"}))
    expected_parameters = sum(p.numel() for p in model.parameters())
    return [folder / "metrics.json", folder / "history.tsv", folder / "model.pt", expected_parameters]


def test_summary_table_from_two_runs(tmp_path) -> None:
    torch.manual_seed(0)
    runs = [fake_run(tmp_path / "a", "bahdanau", 30.0, [60.0, 60.0, 30.0]),
            fake_run(tmp_path / "b", "none", 20.0, [30.0])]
    labels = [["fra-eng", "bahdanau"], ["fra-eng", "plain"]]
    table = write_summary([r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs], labels,
                          tmp_path / "summary.tsv", tmp_path / "summary.md", tmp_path / "summary.png")
    assert list(table.columns) == COLUMNS
    first = table.iloc[0]
    assert (first["pair"], first["model"], first["attention"]) == ("fra-eng", "bahdanau", "bahdanau")
    assert (first["bleu"], first["bleu_ci_low"], first["bleu_ci_high"], first["greedy_bleu"]) == (30, 28, 32, 29)
    assert first["epochs"] == 3 and first["training_minutes"] == pytest.approx(2.5)
    assert first["pairs_per_s"] == 1000 and first["sentences"] == 40
    assert table["parameters"].tolist() == [runs[0][3], runs[1][3]] and runs[0][3] > runs[1][3]
    assert table.iloc[1]["attention"] == "none"
    assert pd.read_csv(tmp_path / "summary.tsv", sep="\t")["model"].tolist() == ["bahdanau", "plain"]
    markdown = (tmp_path / "summary.md").read_text().splitlines()
    assert markdown[0].startswith("| pair | model | attention | bleu |") and len(markdown) == 4
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_errors_name_the_file(tmp_path) -> None:
    run = fake_run(tmp_path / "a", "luong", 10.0, [5.0])
    (tmp_path / "bad.json").write_text('{"greedy": {}}')
    with pytest.raises(ValueError, match="bad.json: not an evaluate-stage metrics.json"):
        summary_table([tmp_path / "bad.json"], [run[1]], [run[2]], [["fra-eng", "luong"]])
    with pytest.raises(ValueError, match="as many metrics"):
        summary_table([run[0]], [], [run[2]], [["fra-eng", "luong"]])


def test_markdown_escapes_pipes_and_leaves_missing_values_empty() -> None:
    text = to_markdown(pd.DataFrame({"model": ["a|b"], "bleu": [float("nan")]}))
    assert text.splitlines() == ["| model | bleu |", "| --- | ---: |", "| a\\|b |  |"]
