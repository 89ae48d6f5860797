"""A tiny pipeline with subword vocabularies, two models x two seeds and an ensemble: the seed folders, the
summary's spread and comparisons, subword runs that learn and are scored on plain text, and a subword model that
translates from its checkpoint alone. (Figures are the pipeline test's: this run builds everything but them.)"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import sacrebleu

from helpers import (BLEU_FLOOR, TINY_TRAINING, TWO_MODELS, grouped_rules, snakemake, tiny_config, write_config,
                     write_raw_corpus)
from seq2seq.explorer import read_page_data

pytestmark = pytest.mark.workflow
RUNS = [f"{model}/seed{seed}" for model in TWO_MODELS for seed in (1, 2)] + ["both"]
PRODUCTS = ["results/summary.tsv", "results/comparisons.tsv", "results/explorer.html"]  # all but the figures


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("experiment")
    raw = write_raw_corpus(root / "corpus" / "fra-eng.txt")
    config = tiny_config(raw, models=TWO_MODELS, seeds=[1, 2], vocab={"type": "sentencepiece", "size": 60},
                         prepare={"normalization": "unicode"}, ensembles={"both": {"models": ["bahdanau"]}},
                         compare={"baseline": "bahdanau", "resamples": 100})
    workdir = root / "run"
    workdir.mkdir()
    snakemake(workdir, "--cores", "2", *PRODUCTS, "--configfile", str(write_config(root / "tiny.yaml", config)))
    return workdir / "results"


def test_each_seed_has_its_folder_and_the_ensemble_its_own(experiment):
    for model in TWO_MODELS:
        for seed in (1, 2):
            run = experiment / "fra-eng" / model / f"seed{seed}"
            assert (run / "model.pt").exists() and (run / "metrics.json").exists()
            history = pd.read_csv(run / "history.tsv", sep="\t")
            assert list(history["epoch"]) == list(range(1, TINY_TRAINING["epochs"] + 1))
    ensemble = json.loads((experiment / "fra-eng" / "both" / "metrics.json").read_text())
    assert ensemble["attention"] == "ensemble" and len(ensemble["members"]) == 2
    assert not (experiment / "fra-eng" / "both" / "model.pt").exists()  # evaluated, never trained


def test_reordering_an_ensembles_members_evaluates_it_again(experiment, tmp_path):
    """Inputs compare as a set, but the order is the ensemble's: its first member names it in metrics.json."""
    workdir = experiment.parent
    reordered = write_config(tmp_path / "reordered.yaml",
                             {"ensembles": {"both": {"models": ["bahdanau"], "seeds": [2, 1]}}})
    result = snakemake(workdir, *PRODUCTS, "-n", "--quiet", "rules", "--configfile",
                       str(workdir.parent / "tiny.yaml"), str(reordered))
    assert grouped_rules(result.stdout) == {"evaluate": "1", "summary": "1", "explorer": "1", "total": "3"}, \
        result.stdout


def test_the_summary_has_the_spread_over_seeds_and_the_comparisons(experiment):
    summary = pd.read_csv(experiment / "summary.tsv", sep="\t")
    assert summary["model"].tolist() == ["bahdanau", "luong", "both"]
    assert summary["seeds"].tolist() == [2, 2, 1] and summary["kind"].tolist() == ["model", "model", "ensemble"]
    for column in ("bleu_std", "bleu_min", "bleu_max", "greedy_bleu_std", "delta_bleu", "p_value"):
        assert column in summary
    assert summary.loc[0, "bleu_min"] <= summary.loc[0, "bleu"] <= summary.loc[0, "bleu_max"]
    comparisons = pd.read_csv(experiment / "comparisons.tsv", sep="\t")
    assert comparisons[["model", "baseline", "metric"]].values.tolist() == [
        ["luong", "bahdanau", "greedy_bleu"], ["luong", "bahdanau", "beam_bleu"],
        ["both", "bahdanau", "greedy_bleu"], ["both", "bahdanau", "beam_bleu"]]
    assert ((comparisons["ci_low"] <= comparisons["delta"]) & (comparisons["delta"] <= comparisons["ci_high"])).all()
    assert comparisons["p_value"].between(0, 1).all()


def test_subword_vocabularies_are_trained_and_scored_on_plain_text(experiment):
    vocab = experiment / "fra-eng" / "vocab"
    assert {p.name for p in vocab.iterdir()} == {"source.json", "target.json", "source.model", "target.model"}
    attention = json.loads(gzip.decompress((experiment / "fra-eng" / "bahdanau" / "seed1" /
                                            "attention.json.gz").read_bytes()))
    assert any(token.startswith("\u2581") for tokens in attention["source_tokens"] for token in tokens)
    assert any(token.startswith("\u2581") for tokens in attention["greedy"]["output_tokens"] for token in tokens)


@pytest.mark.parametrize("run", RUNS)
def test_every_subword_run_learns_and_is_scored_on_its_detokenized_output(experiment, run):
    """Each seed and the ensemble translate most test sentences (so that what follows is tested on real output):
    no output holds a word-start mark, and metrics.json's BLEU is sacrebleu's on the plain text of the table."""
    table = pd.read_csv(experiment / "fra-eng" / run / "translations.tsv", sep="\t", keep_default_na=False)
    metrics = json.loads((experiment / "fra-eng" / run / "metrics.json").read_text())
    for search in ("greedy", "beam"):
        outputs = table[search].tolist()
        assert sum(bool(text) for text in outputs) >= len(outputs) - 1
        assert not [text for text in outputs if "\u2581" in text or "<" in text]
        references = table["reference"].tolist()
        expected = sacrebleu.corpus_bleu(outputs, [references], force=True).score
        assert metrics[search]["bleu"] == pytest.approx(expected, abs=1e-9)
        assert metrics[search]["bleu"] >= BLEU_FLOOR, (run, search, outputs)


def test_a_subword_model_translates_from_its_checkpoint_alone(experiment, tmp_path, capsys):
    from seq2seq.translate_command import main

    model = tmp_path / "model.pt"
    model.write_bytes((experiment / "fra-eng" / "luong" / "seed2" / "model.pt").read_bytes())
    assert main(["--model", str(model), "--beam", "2", "Je suis très content.", "Il est là."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line and "\u2581" not in line for line in lines)
    for flags in ([], ["--word-level"]):
        plot = tmp_path / f"attention{len(flags)}.png"
        assert main(["--model", str(model), "--plot", str(plot), *flags, "Je suis très content."]) == 0
        assert plot.stat().st_size > 0


def test_the_explorer_page_holds_every_test_sentence_of_every_run(experiment):
    test = pd.read_csv(experiment / "fra-eng" / "data" / "test.tsv", sep="\t", keep_default_na=False)
    [pair] = read_page_data((experiment / "explorer.html").read_text(encoding="utf-8"))["pairs"]
    assert pair["subword"] and pair["source"] == test["source"].tolist()
    assert pair["reference"] == test["target"].tolist()
    assert sorted(run["name"] for run in pair["runs"]) == sorted(RUNS)
    for run in pair["runs"]:
        table = pd.read_csv(experiment / "fra-eng" / run["name"] / "translations.tsv", sep="\t",
                            keep_default_na=False)
        assert run["greedy"]["text"] == table["greedy"].tolist()
