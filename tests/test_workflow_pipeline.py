"""The whole pipeline through Snakemake on a tiny corpus: every product, the report, and what reruns. (A run killed
mid-training and resumed: tests/test_runlock.py.)"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sacrebleu

from helpers import BLEU_FLOOR, TINY_TRAINING, TWO_MODELS, copy_finished_run, grouped_rules, snakemake, write_config
from seq2seq.corpus import read_split
from seq2seq.explorer import read_page_data
from seq2seq.schema import schema_default

pytestmark = pytest.mark.workflow


def test_every_product_exists(finished_run):
    workdir, _, _ = finished_run
    for model in TWO_MODELS:
        base = workdir / "results" / "fra-eng" / model
        for name in ("model.pt", "last.pt", "history.tsv", "metrics.json", "translations.tsv", "attention.json.gz"):
            assert (base / name).stat().st_size > 0, name
        assert not (base / "resume.pt").exists()  # removed once training finished
        figures = base / "figures"
        # 2 test sentences + 1 sentence from the config, the grid and the learning curve
        assert sorted(p.name for p in figures.iterdir()) == [
            "attention_01.png", "attention_02.png", "attention_03.png",
            "attention_grid.png", "learning_curve.png",
        ]
        history = pd.read_csv(base / "history.tsv", sep="\t")
        assert list(history["epoch"]) == list(range(1, TINY_TRAINING["epochs"] + 1))
        for rule in ("train", "evaluate", "figures"):
            assert (workdir / "results" / "logs" / rule / "fra-eng" / f"{model}.log").exists()
        assert (workdir / "results" / "benchmarks" / "train" / "fra-eng" / f"{model}.tsv").exists()

    summary = pd.read_csv(workdir / "results" / "summary.tsv", sep="\t")
    assert sorted(summary["model"]) == sorted(TWO_MODELS)
    comparisons = pd.read_csv(workdir / "results" / "comparisons.tsv", sep="\t")
    assert comparisons[["model", "baseline"]].values.tolist() == [["luong", "bahdanau"]] * 2
    assert (workdir / "results" / "summary.md").read_text().count("\n") >= 4
    assert (workdir / "results" / "summary.png").stat().st_size > 0
    assert (workdir / "results" / "explorer.html").stat().st_size > 0


@pytest.mark.parametrize("model", TWO_MODELS)
def test_the_models_learn_and_metrics_json_scores_the_translations_it_lists(finished_run, model):
    """The tiny models learn the task (so the checks on content below mean something), and metrics.json's BLEU
    and chrF are sacrebleu's on translations.tsv against the test split's references."""
    workdir, _, _ = finished_run
    base = workdir / "results" / "fra-eng" / model
    test = read_split(workdir / "results" / "fra-eng" / "data" / "test.tsv")
    table = pd.read_csv(base / "translations.tsv", sep="\t", keep_default_na=False)
    assert table["source"].tolist() == [s for s, _ in test] and table["reference"].tolist() == [t for _, t in test]
    metrics = json.loads((base / "metrics.json").read_text())
    for search in ("greedy", "beam"):
        hypotheses, references = table[search].tolist(), table["reference"].tolist()
        entry = metrics[search]
        expected = sacrebleu.corpus_bleu(hypotheses, [references], force=True).score
        assert entry["bleu"] == pytest.approx(expected, abs=1e-9)
        assert entry["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-9)
        assert entry["bleu"] >= BLEU_FLOOR, (search, entry["bleu"], hypotheses)
        assert entry["exact_match"] == sum(h == r for h, r in zip(hypotheses, references)) / len(test)
        low, high = entry["bleu_ci95"]
        assert low <= entry["bleu"] <= high and entry["sentences"] == len(test)
        assert all(hypotheses) and not any("\u2581" in h or "<" in h for h in hypotheses)
    best = pd.read_csv(base / "history.tsv", sep="\t")["valid_bleu"].max()
    assert best >= BLEU_FLOOR  # validation sees the same learning


def test_the_explorer_page_holds_every_test_sentence_and_translation(finished_run):
    workdir, _, _ = finished_run
    test = read_split(workdir / "results" / "fra-eng" / "data" / "test.tsv")
    data = read_page_data((workdir / "results" / "explorer.html").read_text(encoding="utf-8"))
    [pair] = data["pairs"]
    assert pair["name"] == "fra-eng" and not pair["subword"]
    assert pair["source"] == [s for s, _ in test] and pair["reference"] == [t for _, t in test]
    assert [run["name"] for run in pair["runs"]] == list(TWO_MODELS)
    for run in pair["runs"]:
        table = pd.read_csv(workdir / "results" / "fra-eng" / run["name"] / "translations.tsv", sep="\t",
                            keep_default_na=False)
        assert run["greedy"]["text"] == table["greedy"].tolist()


def test_report_is_one_self_contained_page(finished_run):
    workdir, config, snakefile = finished_run
    built = snakemake(workdir, "--report", "results/report.html", "--configfile", str(config), snakefile=snakefile)
    assert "warning: --report" not in built.stdout + built.stderr  # the results are this config's
    html = (workdir / "results" / "report.html").read_text(encoding="utf-8", errors="replace")
    assert len(html) > 10_000
    for name in ("summary.png", "learning_curve.png", "attention_grid.png", "metrics.json"):
        assert name in html, name


def test_nothing_to_do_after_a_finished_run(finished_run):
    workdir, config, snakefile = finished_run
    result = snakemake(workdir, "-n", "--configfile", str(config), snakefile=snakefile)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_settings_written_out_at_their_values_in_another_order_rerun_nothing(finished_run, tmp_path):
    """Snakemake compares a param's repr, and a dict's repr follows the config's key order: naming a default, or
    the same settings in another order, retrained and re-evaluated every model."""
    workdir, config, snakefile = finished_run
    same = write_config(tmp_path / "same.yaml", {
        "training": {**dict(reversed(TINY_TRAINING.items())), "clip_grad": schema_default("training.clip_grad")},
        "evaluation": {"seed": schema_default("evaluation.seed")},
        "figures": {"seed": schema_default("figures.seed")},
        "compare": {"resamples": schema_default("compare.resamples")}})
    result = snakemake(workdir, "-n", "--configfile", str(config), str(same), snakefile=snakefile)
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


def test_changing_one_models_training_reruns_only_that_model(finished_run, tmp_path):
    workdir, config, snakefile = finished_run
    epochs = TINY_TRAINING["epochs"] + 1
    change = write_config(tmp_path / "change.yaml", {"models": {"luong": {"training": {"epochs": epochs}}}})
    result = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(config), str(change),
                       snakefile=snakefile)
    jobs = grouped_rules(result.stdout)
    assert jobs == {"train": "1", "evaluate": "1", "figures": "1", "summary": "1", "explorer": "1", "all": "1",
                    "total": "6"}, \
        result.stdout
    detailed = snakemake(workdir, "-n", "--configfile", str(config), str(change), snakefile=snakefile)
    assert "results/fra-eng/luong/model.pt" in detailed.stdout
    assert "results/fra-eng/bahdanau/model.pt" not in detailed.stdout.split("rule train")[-1].split("rule ")[0]


def test_a_models_training_override_keeps_the_rest_of_the_training_section(finished_run, tmp_path):
    """Overriding one key for one model must not reset its other keys to the schema's defaults (batch size 64
    and device auto instead of the run's 8 and cpu would retrain it)."""
    workdir, config, snakefile = finished_run
    same = write_config(tmp_path / "same.yaml",
                        {"models": {"luong": {"training": {"epochs": TINY_TRAINING["epochs"]}}}})
    result = snakemake(workdir, "-n", "--configfile", str(config), str(same), snakefile=snakefile)
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout


def test_editing_the_model_code_reruns_training(finished_run, tmp_path):
    workdir, config, snakefile = copy_finished_run(finished_run, tmp_path / "copy")  # the shared run stays as it is
    model_code = snakefile.parent / "workflow" / "seq2seq" / "models" / "gru.py"
    model_code.write_text(model_code.read_text() + "\n# an edit\n")
    result = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(config), snakefile=snakefile)
    jobs = grouped_rules(result.stdout)
    assert jobs.get("train") == "2", result.stdout
    assert "prepare" not in jobs and "vocab" not in jobs
