"""The summary stage: seeds together (mean, spread), ensembles, comparisons with the baseline, Markdown, chart."""

from __future__ import annotations

import json
import random
import statistics

import pandas as pd
import pytest

from seq2seq.formats import HISTORY_COLUMNS, TRANSLATION_COLUMNS
from seq2seq.logs import InputError
from seq2seq.metrics import corpus_bleu, corpus_chrf, exact_match, sentence_scores
from seq2seq.summary import COLUMNS, COMPARISON_COLUMNS, Runs, summary_tables, to_markdown, write_summary

REFERENCES = [" ".join(random.Random(i).choices(["a", "b", "c", "d", "e", "f", "g"], k=7)) for i in range(60)]
COMPARE = {"test": "bs", "resamples": 200, "seed": 12345}


def damaged(hypotheses: list[str], every: int, seed: int) -> list[str]:
    """Every ``every``-th hypothesis (shifted by ``seed``) loses its last two words."""
    return [" ".join(h.split()[:-2]) if (i + seed) % every == 0 else h for i, h in enumerate(hypotheses)]


def fake_run(folder, system: str, attention: str, beam: list[str], greedy: list[str], seconds=(60.0, 30.0),
             parameters: int = 1000):
    """metrics.json, translations.tsv and history.tsv as the evaluate and train stages write them."""
    folder.mkdir(parents=True)
    blocks = {}
    for name, hypotheses in (("beam", beam), ("greedy", greedy)):
        bleu = corpus_bleu(hypotheses, REFERENCES)
        blocks[name] = {"bleu": bleu, "bleu_ci95": [bleu - 2, bleu + 2], "chrf": corpus_chrf(hypotheses, REFERENCES),
                        "exact_match": exact_match(hypotheses, REFERENCES),
                        "sentences": len(REFERENCES), "sentences_per_s": 100.0, "signature": {}}
    (folder / "metrics.json").write_text(json.dumps({"attention": attention, "parameters": parameters,
                                                     "model": system, **blocks}))
    scores = {f"{name}_{metric}": values for name, hypotheses in (("greedy", greedy), ("beam", beam))
              for metric, values in zip(("bleu", "chrf"), sentence_scores(hypotheses, REFERENCES))}
    translations = pd.DataFrame({"source": [f"s{i}" for i in range(len(REFERENCES))], "reference": REFERENCES,
                                 "greedy": greedy, "beam": beam, **scores})
    translations[list(TRANSLATION_COLUMNS)].to_csv(folder / "translations.tsv", sep="\t", index=False,
                                                   float_format="%.2f")
    epochs = range(1, len(seconds) + 1)
    history = pd.DataFrame({"epoch": epochs, "train_loss": [3.0 / e for e in epochs],
                            "valid_loss": [3.5 / e for e in epochs], "valid_bleu": [10.0 * e for e in epochs],
                            "learning_rate": 0.002, "seconds": seconds, "pairs_per_s": 1000.0})
    history[list(HISTORY_COLUMNS)].to_csv(folder / "history.tsv", sep="\t", index=False)
    return folder


@pytest.fixture
def grid(tmp_path):
    """Two models x two seeds (and an ensemble), as the pipeline lays them out."""
    runs, labels = [], []
    for model, every in (("bahdanau", 5), ("worse", 2)):
        for seed in (1, 2):
            beam = damaged(REFERENCES, every, seed)
            runs.append(fake_run(tmp_path / model / f"seed{seed}", model, model, beam, damaged(beam, 3, seed),
                                 seconds=(60.0 * seed, 30.0)))
            labels.append(["fra-eng", f"{model}/seed{seed}", model, seed])
    runs.append(fake_run(tmp_path / "ens", "ens", "ensemble", REFERENCES, REFERENCES, parameters=2000))
    labels.append(["fra-eng", "ens", "ens", None])
    files = {"metrics": [r / "metrics.json" for r in runs], "translations": [r / "translations.tsv" for r in runs],
             "histories": [r / "history.tsv" for r in runs[:-1]]}
    return files, labels


def test_seeds_are_summarized_together_as_by_hand(grid, tmp_path):
    files, labels = grid
    table = write_summary(**files, labels=labels, tsv=tmp_path / "summary.tsv", md=tmp_path / "summary.md",
                          chart=tmp_path / "summary.png", comparisons=tmp_path / "comparisons.tsv",
                          baseline="bahdanau", compare=COMPARE)
    assert list(table.columns) == COLUMNS and table["model"].tolist() == ["bahdanau", "worse", "ens"]
    bahdanau = table.iloc[0]
    by_hand = [corpus_bleu(damaged(REFERENCES, 5, seed), REFERENCES) for seed in (1, 2)]
    assert bahdanau["seeds"] == 2 and bahdanau["kind"] == "model"
    assert bahdanau["bleu"] == pytest.approx(statistics.mean(by_hand), abs=0.01)
    assert bahdanau["bleu_std"] == pytest.approx(statistics.stdev(by_hand), abs=0.01)
    assert (bahdanau["bleu_min"], bahdanau["bleu_max"]) == pytest.approx((min(by_hand), max(by_hand)), abs=0.01)
    beams = [damaged(REFERENCES, 5, seed) for seed in (1, 2)]
    greedies = [damaged(beam, 3, seed) for beam, seed in zip(beams, (1, 2))]
    greedy_by_hand = [corpus_bleu(greedy, REFERENCES) for greedy in greedies]
    assert bahdanau["greedy_bleu"] == pytest.approx(statistics.mean(greedy_by_hand), abs=0.01)
    assert bahdanau["greedy_bleu_std"] == pytest.approx(statistics.stdev(greedy_by_hand), abs=0.01)
    # chrF and exact match: beam search's, like the bleu column, averaged over the seeds
    assert bahdanau["chrf"] == pytest.approx(statistics.mean(corpus_chrf(b, REFERENCES) for b in beams), abs=0.01)
    assert bahdanau["chrf"] != pytest.approx(statistics.mean(corpus_chrf(g, REFERENCES) for g in greedies), abs=0.01)
    assert bahdanau["exact_match"] == pytest.approx(statistics.mean(exact_match(b, REFERENCES) for b in beams),
                                                    abs=1e-4)
    assert bahdanau["bleu_ci_low"] <= bahdanau["bleu"] <= bahdanau["bleu_ci_high"]
    assert bahdanau["epochs"] == 2 and bahdanau["training_minutes"] == pytest.approx((1.5 + 2.5) / 2)
    assert pd.isna(bahdanau["delta_bleu"]) and bahdanau["baseline"] == "bahdanau"  # the baseline itself
    worse, ensemble = table.iloc[1], table.iloc[2]
    assert worse["delta_bleu"] < 0 and worse["p_value"] < 0.05 and worse["delta_ci_high"] < 0
    assert ensemble["kind"] == "ensemble" and ensemble["seeds"] == 1 and ensemble["delta_bleu"] > 0
    assert pd.isna(ensemble["epochs"]) and ensemble["parameters"] == 2000

    comparisons = pd.read_csv(tmp_path / "comparisons.tsv", sep="\t")
    assert list(comparisons.columns) == COMPARISON_COLUMNS
    assert comparisons[["model", "metric"]].values.tolist() == [
        ["worse", "greedy_bleu"], ["worse", "beam_bleu"], ["ens", "greedy_bleu"], ["ens", "beam_bleu"]]
    assert comparisons["runs"].tolist() == [2, 2, 1, 1] and comparisons["baseline_runs"].tolist() == [2, 2, 2, 2]
    # the summary's delta and p-value are beam search's comparison (the greedy one differs)
    beam = comparisons[(comparisons["model"] == "worse") & (comparisons["metric"] == "beam_bleu")].iloc[0]
    greedy = comparisons[(comparisons["model"] == "worse") & (comparisons["metric"] == "greedy_bleu")].iloc[0]
    assert (worse["delta_bleu"], worse["p_value"]) == pytest.approx((beam["delta"], beam["p_value"]), abs=1e-4)
    assert worse["delta_bleu"] != pytest.approx(greedy["delta"], abs=0.01)
    markdown = (tmp_path / "summary.md").read_text().splitlines()
    assert markdown[0].startswith("| pair | model | kind | attention | seeds | bleu |") and len(markdown) == 5
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_one_seed_keeps_its_own_interval_and_has_no_spread(tmp_path):
    run = fake_run(tmp_path / "a", "luong", "luong", REFERENCES, REFERENCES)
    groups = Runs([["fra-eng", "luong", "luong", 1]], [run / "metrics.json"], [run / "translations.tsv"],
                  [run / "history.tsv"]).groups
    table, comparisons = summary_tables(groups, "luong", COMPARE)
    row = table.iloc[0]
    assert row["seeds"] == 1 and pd.isna(row["bleu_std"]) and row["bleu_min"] == row["bleu_max"] == row["bleu"]
    assert (row["bleu_ci_low"], row["bleu_ci_high"]) == (98.0, 102.0)  # as metrics.json has it
    assert comparisons.empty


def test_summary_errors_name_the_file(tmp_path):
    run = fake_run(tmp_path / "a", "luong", "luong", REFERENCES, REFERENCES)
    (tmp_path / "bad.json").write_text('{"greedy": {}}')
    with pytest.raises(ValueError, match="bad.json: not an evaluate-stage metrics.json"):
        groups = Runs([["fra-eng", "luong", "luong", 1]], [tmp_path / "bad.json"], [run / "translations.tsv"],
                      [run / "history.tsv"]).groups
        summary_tables(groups, "luong", COMPARE)
    with pytest.raises(InputError, match="as many metrics"):
        Runs([["fra-eng", "luong", "luong", 1]], [], [run / "translations.tsv"], [run / "history.tsv"])


def test_markdown_escapes_pipes_and_leaves_missing_values_empty():
    text = to_markdown(pd.DataFrame({"model": ["a|b"], "bleu": [float("nan")]}))
    assert text.splitlines() == ["| model | bleu |", "| --- | ---: |", "| a\\|b |  |"]


def test_too_few_test_sentences_say_so_where_the_intervals_and_p_values_would_be(grid, tmp_path, caplog):
    """60 test sentences with a threshold of 100: no interval, no p-value, the reason in their cells of the
    summary and the comparisons, and a warning; the BLEU means and differences stay."""
    files, labels = grid
    with caplog.at_level("WARNING"):
        write_summary(**files, labels=labels, tsv=tmp_path / "summary.tsv", md=tmp_path / "summary.md",
                      chart=tmp_path / "summary.png", comparisons=tmp_path / "comparisons.tsv",
                      baseline="bahdanau", compare=COMPARE, min_interval_sentences=100)
    note = "too few test sentences (60 < evaluation.min_interval_sentences = 100)"
    table = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    for column in ("bleu_ci_low", "bleu_ci_high", "greedy_bleu_ci_low", "greedy_bleu_ci_high"):
        assert table[column].tolist() == [note] * 3
    assert pd.isna(table["p_value"].iloc[0])  # the baseline's own row compares with nothing
    assert table["p_value"].iloc[1:].tolist() == [note] * 2 and table["delta_bleu"].iloc[1] < 0
    comparisons = pd.read_csv(tmp_path / "comparisons.tsv", sep="\t")
    assert comparisons["ci_low"].tolist() == comparisons["p_value"].tolist() == [note] * 4
    assert note in (tmp_path / "summary.md").read_text()
    assert [r.getMessage() for r in caplog.records] == [f"fra-eng: no intervals or p-values in the summary: {note}"]


def test_the_spread_over_seeds_is_the_sample_standard_deviation(tmp_path):
    """Three seeds of different quality: bleu_std is the sample standard deviation (n - 1), as the README's
    'mean ± sd' over seeds says, not the population one."""
    runs, labels = [], []
    for seed, every in ((1, 2), (2, 3), (3, 7)):
        beam = damaged(REFERENCES, every, seed)
        runs.append(fake_run(tmp_path / f"seed{seed}", "m", "luong", beam, beam))
        labels.append(["fra-eng", f"m/seed{seed}", "m", seed])
    groups = Runs(labels, [r / "metrics.json" for r in runs], [r / "translations.tsv" for r in runs],
                  [r / "history.tsv" for r in runs]).groups
    table, _ = summary_tables(groups, "m", COMPARE)
    scores = [corpus_bleu(damaged(REFERENCES, every, seed), REFERENCES) for seed, every in ((1, 2), (2, 3), (3, 7))]
    assert statistics.stdev(scores) > 1.0
    assert table.loc[0, "bleu_std"] == pytest.approx(statistics.stdev(scores), abs=0.01)
    assert table.loc[0, "greedy_bleu_std"] == pytest.approx(statistics.stdev(scores), abs=0.01)


def test_identical_seeds_give_the_interval_of_one_run(tmp_path):
    """The interval of several seeds resamples test sentences, each with all of its seeds' outputs: seeds that
    all wrote the same translations add no evidence and leave it as one run's (greedy and beam alike)."""
    from seq2seq.metrics import bleu_bootstrap_ci

    beam, greedy = damaged(REFERENCES, 3, 1), damaged(REFERENCES, 2, 1)
    runs = [fake_run(tmp_path / f"seed{seed}", "m", "bahdanau", beam, greedy) for seed in (1, 2, 3)]
    groups = Runs([["fra-eng", f"m/seed{seed}", "m", seed] for seed in (1, 2, 3)], [r / "metrics.json" for r in runs],
                  [r / "translations.tsv" for r in runs], [r / "history.tsv" for r in runs]).groups
    row = summary_tables(groups, "m", COMPARE)[0].iloc[0]
    one_beam = bleu_bootstrap_ci(beam, REFERENCES, COMPARE["resamples"], COMPARE["seed"])
    one_greedy = bleu_bootstrap_ci(greedy, REFERENCES, COMPARE["resamples"], COMPARE["seed"])
    assert (row["bleu_ci_low"], row["bleu_ci_high"]) == pytest.approx(one_beam, abs=0.01)
    assert (row["greedy_bleu_ci_low"], row["greedy_bleu_ci_high"]) == pytest.approx(one_greedy, abs=0.01)
    assert one_beam != pytest.approx(one_greedy, abs=0.01)


def test_bad_summary_inputs_are_one_line_each_naming_what_is_wrong(tmp_path):
    """Each of these was a traceback or a silent empty table (review)."""
    good = fake_run(tmp_path / "a", "luong", "luong", REFERENCES, damaged(REFERENCES, 3, 0))
    other = fake_run(tmp_path / "b", "tutorial", "tutorial", damaged(REFERENCES, 2, 0), REFERENCES)
    labels = [["fra-eng", "luong", "luong", 1], ["fra-eng", "tutorial", "tutorial", 1]]

    def groups(*metrics):
        return Runs(labels, list(metrics), [good / "translations.tsv", other / "translations.tsv"],
                    [good / "history.tsv", other / "history.tsv"]).groups

    with pytest.raises(InputError, match=r"compare.baseline: 'goood' is none of the systems \(luong, tutorial\)"):
        summary_tables(groups(good / "metrics.json", other / "metrics.json"), "goood", COMPARE)
    with pytest.raises(InputError, match="compare.test: 'xx' is no paired test here"):
        summary_tables(groups(good / "metrics.json", other / "metrics.json"), "luong", {**COMPARE, "test": "xx"})
    for name, change in (("no-beam", lambda m: m.pop("beam")), ("text-bleu", lambda m: m["beam"].update(bleu="x"))):
        metrics = json.loads((other / "metrics.json").read_text())
        change(metrics)
        (tmp_path / f"{name}.json").write_text(json.dumps(metrics))
        with pytest.raises(InputError, match=f"{name}.json: not an evaluate-stage metrics.json"):
            summary_tables(groups(good / "metrics.json", tmp_path / f"{name}.json"), "luong", COMPARE)


def test_every_seed_must_be_on_the_baselines_test_split(tmp_path):
    """Only a system's first seed was checked: a second seed on another split was scored against the first's
    references (review: a perfect seed 2 of a reordered split read BLEU 100 and a loss of 49.8)."""
    shuffled = fake_run(tmp_path / "m2", "m", "luong", REFERENCES, REFERENCES)
    frame = pd.read_csv(shuffled / "translations.tsv", sep="\t", keep_default_na=False)
    frame.iloc[::-1].to_csv(shuffled / "translations.tsv", sep="\t", index=False)
    runs = [fake_run(tmp_path / "base", "base", "luong", REFERENCES, REFERENCES),
            fake_run(tmp_path / "m1", "m", "luong", REFERENCES, REFERENCES), shuffled]
    labels = [["fra-eng", "base", "base", 1], ["fra-eng", "m/seed1", "m", 1], ["fra-eng", "m/seed2", "m", 2]]
    groups = Runs(labels, [r / "metrics.json" for r in runs], [r / "translations.tsv" for r in runs],
                  [r / "history.tsv" for r in runs]).groups
    with pytest.raises(InputError, match=r"m2/metrics.json: another test split than the baseline's"):
        summary_tables(groups, "base", COMPARE)


def test_p_values_keep_their_digits_and_no_number_reads_minus_zero(tmp_path, grid):
    from seq2seq.summary import _rounded

    table = _rounded(pd.DataFrame({"p_value": [1 / 30_001, 0.04567, float("nan")], "delta": [-0.004, 0.004, 1.0]}))
    assert table["p_value"].iloc[0] == pytest.approx(3.333e-05) and table["p_value"].iloc[1] == 0.04567
    assert [str(x) for x in table["delta"]] == ["0.0", "0.0", "1.0"]


def test_a_single_runs_interval_left_out_by_the_evaluate_stage_is_left_out(tmp_path):
    """metrics.json of an evaluate stage with a higher minimum for intervals has bleu_ci95 null: the summary
    said "not an evaluate-stage metrics.json (missing cannot unpack non-iterable NoneType object)"."""
    run = fake_run(tmp_path / "a", "luong", "luong", REFERENCES, REFERENCES)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["beam"]["bleu_ci95"] = metrics["greedy"]["bleu_ci95"] = None
    (run / "metrics.json").write_text(json.dumps(metrics))
    groups = Runs([["fra-eng", "luong", "luong", 1]], [run / "metrics.json"], [run / "translations.tsv"],
                  [run / "history.tsv"]).groups
    summary, _ = summary_tables(groups, "luong", COMPARE)
    assert summary[["bleu_ci_low", "bleu_ci_high", "greedy_bleu_ci_low"]].isna().all(axis=None)
