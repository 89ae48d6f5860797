"""The recipes' A/B table (workflow/benchmarks/recipes/compare.py) on run folders written here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
import sacrebleu

from helpers import REPO
from seq2seq.formats import write_history, write_metrics, write_translations

spec = importlib.util.spec_from_file_location("recipes_compare", REPO / "workflow/benchmarks/recipes/compare.py")
compare = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = compare  # its dataclass looks its module up
spec.loader.exec_module(compare)

REFERENCES = ["we are worried about you .", "we re finished already .", "i am very happy .", "he is tall ."] * 5
GOOD = list(REFERENCES)
WORSE = ["we are worried .", "we re done .", "i am happy .", "he is tall ."] * 5


def write_run(folder: Path, hypotheses: list[str], epochs: int, best: int, seconds: float,
              references: list[str] = REFERENCES) -> Path:
    folder.mkdir(parents=True)
    write_history(folder / "history.tsv", [
        {"epoch": e, "train_loss": 1.0, "valid_loss": 1.0, "valid_bleu": 50.0, "learning_rate": 1e-3,
         "seconds": seconds, "pairs_per_s": 100.0} for e in range(1, epochs + 1)])
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    write_metrics(folder / "metrics.json", {"epoch": best, "greedy": {"bleu": bleu}, "beam": {"bleu": bleu}})
    write_translations(folder / "translations.tsv", pd.DataFrame({
        "source": ["x"] * len(references), "reference": references, "greedy": hypotheses, "beam": hypotheses,
        "greedy_bleu": 0.0, "greedy_chrf": 0.0, "beam_bleu": 0.0, "beam_chrf": 0.0}))
    return folder


def test_each_recipe_is_compared_with_the_baseline_as_seed_averaged_systems(tmp_path):
    base = [write_run(tmp_path / "a" / f"seed{s}", WORSE, 40, 34, 30.0) for s in (1, 2)]
    better = [write_run(tmp_path / "b" / f"seed{s}", GOOD, 20, 18, 15.0) for s in (1, 2, 3)]
    label, runs = compare.parse_recipe(f"default={tmp_path / 'a' / 'seed*'}")
    assert label == "default" and runs == base
    table = compare.compare([("default", [compare.read_run(r) for r in base]),
                             ("short", [compare.read_run(r) for r in better])], resamples=200).splitlines()
    assert table[0].startswith("| recipe | runs | epochs (best) | minutes as run |")
    baseline_row, short_row = table[2].split(" | "), table[3].split(" | ")
    worse_bleu = sacrebleu.corpus_bleu(WORSE, [REFERENCES]).score
    assert baseline_row[1:4] == ["2", "40 (34), 40 (34)", "20.0, 20.0"]
    assert baseline_row[4] == f"{worse_bleu:.2f} ± 0.00"
    assert short_row[1:5] == ["3", "20 (18), 20 (18), 20 (18)", "5.0, 5.0, 5.0", "100.00 ± 0.00"]
    delta = 100.0 - worse_bleu
    assert short_row[6].startswith(f"{delta:+.2f} [") and short_row[6].endswith("p = 0.005")  # 1/(200+1)


def test_runs_of_another_test_split_are_refused_with_the_folder_named(tmp_path):
    base = write_run(tmp_path / "a", GOOD, 2, 2, 1.0)
    other = write_run(tmp_path / "b", GOOD[::-1], 2, 2, 1.0, references=REFERENCES[::-1])
    with pytest.raises(SystemExit, match=f"{other}: its test references differ"):
        compare.compare([("a", [compare.read_run(base)]), ("b", [compare.read_run(other)])], resamples=10)


def test_a_pattern_that_matches_nothing_is_an_argument_error(tmp_path):
    with pytest.raises(Exception, match="no finished run folder matches"):
        compare.parse_recipe(f"x={tmp_path}/nothing*")


def test_a_pattern_leaves_out_runs_still_training(tmp_path, capsys):
    done = write_run(tmp_path / "seed1", GOOD, 2, 2, 1.0)
    (tmp_path / "seed2").mkdir()  # training: no metrics.json yet
    assert compare.parse_recipe(f"x={tmp_path}/seed*") == ("x", [done])
    assert "leaving out 1 unfinished run(s)" in capsys.readouterr().err
