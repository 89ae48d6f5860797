"""The summary stage: one row per pair x model (its seeds together) or ensemble, and every comparison with the
baseline, from the evaluate stage's metrics.json and translations.tsv and the training runs' history.tsv.

Columns of results/summary.tsv (and the Markdown copy), BLEU and chrF 0-100:

- pair, model (a model of the config, or an ensemble), kind (model | ensemble), attention, seeds (runs);
- bleu (beam search, the mean over seeds), bleu_std (sample standard deviation over seeds, empty for one),
  bleu_min, bleu_max, bleu_ci_low, bleu_ci_high (95% bootstrap interval: one seed's from its metrics.json, drawn
  with evaluation.bootstrap_resamples and evaluation.seed; several seeds' of their mean BLEU, drawn here with
  compare.resamples and compare.seed, resampling test sentences, each with all of its seeds' outputs); the same
  for greedy search as greedy_bleu...;
- chrf, exact_match (beam, means over seeds; exact_match a fraction);
- parameters (trainable, per run; an ensemble's sum), epochs, training_minutes, pairs_per_s (means over
  seeds; empty for ensembles), sentences (test pairs);
- baseline, delta_bleu, delta_ci_low, delta_ci_high, p_value: beam BLEU against the baseline (empty on
  the baseline's own row), as in comparisons.tsv.

results/comparisons.tsv: one row per pair x system other than the baseline x metric (greedy_bleu, beam_bleu):
pair, model, baseline, metric, delta (the difference of the seeds' mean BLEU), ci_low, ci_high, p_value (4
significant digits), runs, baseline_runs (the runs of each side; see metrics.paired_comparison). It has only its
header when the config has one system (nothing to compare).

With fewer test sentences than ``evaluation.min_interval_sentences``, the interval and p-value cells say so
("too few test sentences (14 < ...)") instead of holding numbers that would mean nothing.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .fileio import atomic_open, atomic_path
from .formats import FormatError, read_history, read_metrics, read_translations
from .logs import InputError
from .metrics import paired_comparison, runs_statistics, statistics_bootstrap_ci, too_few_for_an_interval
from .plots import comparison_chart, save_figure

LOG = logging.getLogger(__name__)

COLUMNS = ["pair", "model", "kind", "attention", "seeds",
           "bleu", "bleu_std", "bleu_min", "bleu_max", "bleu_ci_low", "bleu_ci_high",
           "greedy_bleu", "greedy_bleu_std", "greedy_bleu_min", "greedy_bleu_max", "greedy_bleu_ci_low",
           "greedy_bleu_ci_high", "chrf", "exact_match", "parameters", "epochs", "training_minutes", "pairs_per_s",
           "sentences", "baseline", "delta_bleu", "delta_ci_low", "delta_ci_high", "p_value"]
COMPARISON_COLUMNS = ["pair", "model", "baseline", "metric", "delta", "ci_low", "ci_high", "p_value", "runs",
                      "baseline_runs"]
METHODS = {"greedy": "greedy_bleu", "beam": "beam_bleu"}
_DECIMALS = 2
_ROUNDING = {"exact_match": 4, "pairs_per_s": 1}
_SIGNIFICANT = {"p_value": 4}  # a p-value's digits: with 30,000 resamples its smallest, 1/30,001, is 3.333e-05


def _history_numbers(path: str | os.PathLike[str]) -> dict:
    history = read_history(path)
    return {"epochs": int(history["epoch"].max()) if len(history) else 0,
            "training_minutes": float(history["seconds"].sum()) / 60,
            "pairs_per_s": float(history["pairs_per_s"].mean())}


def _spread(values: Sequence[float], name: str) -> dict:
    array = np.asarray(values, dtype=float)
    return {name: float(array.mean()), f"{name}_std": float(array.std(ddof=1)) if len(array) > 1 else math.nan,
            f"{name}_min": float(array.min()), f"{name}_max": float(array.max())}


class Runs:
    """The systems of one pair as the stage reads them: per (pair, name) the runs' metrics, hypotheses and
    histories; a model's runs are its seeds, an ensemble is one run."""

    def __init__(self, labels: Sequence[Sequence[Any]], metrics: Sequence, translations: Sequence,
                 histories: Sequence) -> None:
        if not len(labels) == len(metrics) == len(translations):
            raise InputError(f"summary needs as many metrics ({len(metrics)}) and translations "
                             f"({len(translations)}) as labels ({len(labels)})")
        for label in labels:
            if not isinstance(label, (list, tuple)) or len(label) != 4:
                raise InputError(f"label {label!r}: a system's label is [pair, system, model or ensemble, seed or "
                                 f"null], e.g. [fra-eng, bahdanau/seed1, bahdanau, 1]")
        trained = [label for label in labels if label[3] is not None]
        if len(histories) != len(trained):
            raise InputError(f"summary needs one history per training run (a label with a seed): {len(histories)} "
                             f"for {len(trained)}")
        history_of = dict(zip((tuple(label[:2]) for label in trained), histories))
        self.groups: dict[tuple[str, str], list[dict]] = {}
        for (pair, system, name, seed), metrics_path, translations_path in zip(labels, metrics, translations):
            rows = read_translations(translations_path)
            run = {"metrics": read_metrics(metrics_path), "seed": seed, "references": [r["reference"] for r in rows],
                   **{method: [r[method] for r in rows] for method in METHODS}, "path": metrics_path}
            if seed is not None:
                run["history"] = _history_numbers(history_of[(pair, system)])
            self.groups.setdefault((pair, name), []).append(run)


def summary_row(pair: str, name: str, runs: list[dict], resamples: int, seed: int,
                min_sentences: int = 1) -> dict:
    """One table row of a model's seeds or of an ensemble (without the comparison); no intervals (NaN) for
    fewer than ``min_sentences`` test sentences."""
    try:
        first = runs[0]["metrics"]
        row: dict[str, Any] = {"pair": pair, "model": name, "attention": first["attention"],
                               "kind": "model" if runs[0]["seed"] is not None else "ensemble", "seeds": len(runs),
                               "parameters": first["parameters"], "sentences": first["beam"]["sentences"]}
        for method, column in (("beam", "bleu"), ("greedy", "greedy_bleu")):
            row.update(_spread([run["metrics"][method]["bleu"] for run in runs], column))
            if too_few_for_an_interval(row["sentences"], min_sentences):
                row[f"{column}_ci_low"] = row[f"{column}_ci_high"] = math.nan
            elif len(runs) == 1:
                # none where the evaluate stage had more sentences as its minimum for an interval
                row[f"{column}_ci_low"], row[f"{column}_ci_high"] = first[method]["bleu_ci95"] or (math.nan,) * 2
            else:
                row[f"{column}_ci_low"], row[f"{column}_ci_high"] = statistics_bootstrap_ci(
                    runs_statistics([run[method] for run in runs], runs[0]["references"]), resamples, seed)
        row["chrf"] = float(np.mean([run["metrics"]["beam"]["chrf"] for run in runs]))
        row["exact_match"] = float(np.mean([run["metrics"]["beam"]["exact_match"] for run in runs]))
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise FormatError(f"{runs[0]['path']}: not an evaluate-stage metrics.json ({type(error).__name__}: "
                          f"{error})") from None
    for key in ("epochs", "training_minutes", "pairs_per_s"):
        row[key] = float(np.mean([run["history"][key] for run in runs])) if "history" in runs[0] else math.nan
    return row


def compare_with_baseline(groups: dict[tuple[str, str], list[dict]], baseline: str, compare: dict,
                          min_sentences: int = 1) -> list[dict]:
    """Every system of a pair against the pair's baseline, greedy and beam BLEU; the interval and p-value are NaN
    for fewer than ``min_sentences`` test sentences."""
    if compare["test"] not in ("bs", "ar"):
        raise InputError(f"compare.test: {compare['test']!r} is no paired test here; expected bs or ar")
    if len(groups) > 1 and baseline not in {name for _, name in groups}:
        raise InputError(f"compare.baseline: {baseline!r} is none of the systems "
                         f"({', '.join(sorted({name for _, name in groups}))})")
    rows = []
    for (pair, name), runs in groups.items():
        if name == baseline or (pair, baseline) not in groups:
            continue
        base = groups[(pair, baseline)]
        for run in runs + base[1:]:  # every seed is scored against the references of the baseline's first
            if run["references"] != base[0]["references"]:
                raise FormatError(f"{run['path']}: another test split than the baseline's {base[0]['path']}")
        for method, metric in METHODS.items():
            result = paired_comparison([run[method] for run in runs], [run[method] for run in base],
                                       runs[0]["references"], compare["test"], compare["resamples"], compare["seed"])
            if too_few_for_an_interval(len(runs[0]["references"]), min_sentences):
                result.update(ci_low=math.nan, ci_high=math.nan, p_value=math.nan)
            rows.append({"pair": pair, "model": name, "baseline": baseline, "metric": metric,
                         "delta": result["delta"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                         "p_value": result["p_value"], "runs": result["runs"],
                         "baseline_runs": result["baseline_runs"]})
    return rows


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as the tables give them: 2 decimals (BLEU), others per column; p-values to 4 significant digits.
    ``+ 0.0`` turns a -0.0 from rounding into 0.0."""
    floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    rounded = table.round({c: _ROUNDING.get(c, _DECIMALS) for c in floats if c not in _SIGNIFICANT})
    for column, digits in _SIGNIFICANT.items():
        if column in rounded:
            rounded[column] = [float(f"{value:.{digits}g}") for value in rounded[column]]
    rounded[floats] = rounded[floats] + 0.0
    return rounded


def summary_tables(groups: dict[tuple[str, str], list[dict]], baseline: str, compare: dict,
                   min_sentences: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, comparisons) DataFrames of :class:`Runs` ``groups``, rows in the groups' order; NaN intervals
    and p-values where a pair has fewer than ``min_sentences`` test sentences."""
    found = compare_with_baseline(groups, baseline, compare, min_sentences)
    beam = {(c["pair"], c["model"]): c for c in found if c["metric"] == "beam_bleu"}
    rows = []
    for (pair, name), runs in groups.items():
        row = summary_row(pair, name, runs, compare["resamples"], compare["seed"], min_sentences)
        versus = beam.get((pair, name), {})
        row.update(baseline=baseline, delta_bleu=versus.get("delta", math.nan),
                   delta_ci_low=versus.get("ci_low", math.nan), delta_ci_high=versus.get("ci_high", math.nan),
                   p_value=versus.get("p_value", math.nan))
        rows.append(row)
    return (_rounded(pd.DataFrame(rows, columns=COLUMNS)),
            _rounded(pd.DataFrame(found, columns=COMPARISON_COLUMNS)))


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub pipe table (written here rather than through the optional ``tabulate`` package)."""

    def cell(value) -> str:
        if isinstance(value, float) and math.isnan(value):
            return ""
        return str(value).replace("|", "\\|")

    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(table.columns) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def explain_missing_intervals(table: pd.DataFrame, sentences: Sequence[float], min_sentences: int,
                              columns: Sequence[str], rows: Sequence[bool] | None = None) -> pd.DataFrame:
    """A copy of ``table`` in which the empty ``columns`` (intervals, p-values) of ``rows`` (default: all) with
    fewer than ``min_sentences`` test sentences (``sentences``: each row's count) say why they are empty."""
    shown = table.copy()
    for position, count in enumerate(sentences):
        note = too_few_for_an_interval(int(count), min_sentences)
        if note is None or (rows is not None and not rows[position]):
            continue
        for column in columns:
            shown[column] = shown[column].astype(object)
            shown.iloc[position, shown.columns.get_loc(column)] = note
    return shown


def _write_tsv(table: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def write_summary(metrics: Sequence, translations: Sequence, histories: Sequence, labels: Sequence[Sequence[Any]],
                  tsv, md, chart, comparisons, baseline: str, compare: dict,
                  min_interval_sentences: int = 1) -> pd.DataFrame:
    """The summary stage. ``labels``: [pair, system, model or ensemble name, seed (None for an ensemble)] of
    each ``metrics``/``translations`` file; ``histories``: the training runs' (labels with a seed), in order.
    Writes the summary TSV, its Markdown copy, the chart and the ``comparisons`` TSV, each atomically; a pair with
    fewer than ``min_interval_sentences`` test sentences gets no interval or p-value, and a warning."""
    groups = Runs(labels, metrics, translations, histories).groups
    table, found = summary_tables(groups, baseline, compare, min_interval_sentences)
    for pair, count in dict(zip(table["pair"], table["sentences"])).items():
        note = too_few_for_an_interval(int(count), min_interval_sentences)
        if note:
            LOG.warning("%s: no intervals or p-values in the summary: %s", pair, note)
    intervals = ["bleu_ci_low", "bleu_ci_high", "greedy_bleu_ci_low", "greedy_bleu_ci_high"]
    shown = explain_missing_intervals(table, table["sentences"], min_interval_sentences, intervals)
    shown = explain_missing_intervals(shown, table["sentences"], min_interval_sentences,
                                      ["delta_ci_low", "delta_ci_high", "p_value"], table["delta_bleu"].notna())
    sentences_of = {(row.pair, row.model): row.sentences for row in table.itertuples()}
    _write_tsv(shown, tsv)
    _write_tsv(explain_missing_intervals(found, [sentences_of[(p, m)] for p, m in zip(found["pair"], found["model"])],
                                         min_interval_sentences, ["ci_low", "ci_high", "p_value"]), comparisons)
    with atomic_open(md) as handle:
        handle.write(to_markdown(shown))
    per_seed = {key: {method: [run["metrics"][method]["bleu"] for run in runs] for method in METHODS}
                for key, runs in groups.items()}
    save_figure(comparison_chart(table, per_seed), chart)
    LOG.info("summary of %d systems and %d comparisons written to %s", len(table), len(found), tsv)
    return table
