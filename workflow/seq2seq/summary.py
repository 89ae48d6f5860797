"""The summary stage: one row per (pair, model) from metrics.json, history.tsv and the checkpoint.

Columns of results/summary.tsv (and the Markdown copy):

pair, model, attention; bleu, bleu_ci_low, bleu_ci_high, chrf, exact_match (beam search, exact_match as a
fraction); greedy_bleu; parameters (trainable model parameters); epochs (epochs trained); training_minutes
(sum of history ``seconds`` / 60); pairs_per_s (mean of history ``pairs_per_s``); sentences (test pairs);
greedy_bleu_ci_low, greedy_bleu_ci_high.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Sequence

import pandas as pd

from .fileio import atomic_open, atomic_path

LOG = logging.getLogger(__name__)

COLUMNS = ["pair", "model", "attention", "bleu", "bleu_ci_low", "bleu_ci_high", "chrf", "exact_match",
           "greedy_bleu", "parameters", "epochs", "training_minutes", "pairs_per_s", "sentences",
           "greedy_bleu_ci_low", "greedy_bleu_ci_high"]
_DECIMALS = {"bleu": 2, "bleu_ci_low": 2, "bleu_ci_high": 2, "chrf": 2, "exact_match": 4, "greedy_bleu": 2,
             "training_minutes": 2, "pairs_per_s": 1, "greedy_bleu_ci_low": 2, "greedy_bleu_ci_high": 2}


def _read_json(path: str | os.PathLike[str]) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read metrics ({error})") from None


def _history_numbers(path: str | os.PathLike[str]) -> dict:
    history = pd.read_csv(path, sep="\t")
    nan = float("nan")
    return {
        "epochs": int(history["epoch"].max()) if "epoch" in history and len(history) else len(history),
        "training_minutes": float(history["seconds"].sum()) / 60 if "seconds" in history else nan,
        "pairs_per_s": float(history["pairs_per_s"].mean()) if "pairs_per_s" in history else nan,
    }


def _model_numbers(path: str | os.PathLike[str]) -> dict:
    from .checkpoint import load_model

    model, _, _, _ = load_model(path, device="cpu")
    return {"parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "attention": model.config.attention}


def summary_row(label: Sequence[str], metrics_path, history_path, model_path) -> dict:
    """One table row; ``label`` is [pair, model_name]."""
    metrics = _read_json(metrics_path)
    try:
        beam, greedy = metrics["beam"], metrics["greedy"]
        row = {"pair": label[0], "model": label[1],
               "bleu": beam["bleu"], "bleu_ci_low": beam["bleu_ci95"][0], "bleu_ci_high": beam["bleu_ci95"][1],
               "chrf": beam["chrf"], "exact_match": beam["exact_match"], "greedy_bleu": greedy["bleu"],
               "sentences": beam["sentences"], "greedy_bleu_ci_low": greedy["bleu_ci95"][0],
               "greedy_bleu_ci_high": greedy["bleu_ci95"][1]}
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{metrics_path}: not an evaluate-stage metrics.json (missing {error})") from None
    row.update(_history_numbers(history_path))
    row.update(_model_numbers(model_path))
    return row


def summary_table(metrics_paths: Sequence, history_paths: Sequence, model_paths: Sequence,
                  labels: Sequence[Sequence[str]]) -> pd.DataFrame:
    """The summary DataFrame (columns :data:`COLUMNS`), one row per label, in the given order."""
    if not len(metrics_paths) == len(history_paths) == len(model_paths) == len(labels):
        raise ValueError(f"summary needs as many metrics ({len(metrics_paths)}), histories "
                         f"({len(history_paths)}), models ({len(model_paths)}) as labels ({len(labels)})")
    rows = [summary_row(*args) for args in zip(labels, metrics_paths, history_paths, model_paths)]
    return pd.DataFrame(rows, columns=COLUMNS).round(_DECIMALS)


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


def write_summary(metrics_paths: Sequence, history_paths: Sequence, model_paths: Sequence,
                  labels: Sequence[Sequence[str]], tsv_path, md_path, chart_path,
                  log: logging.Logger = LOG) -> pd.DataFrame:
    """Build the table and write the TSV, the Markdown copy and the comparison chart, each atomically."""
    from .plots import comparison_chart, save_figure

    table = summary_table(metrics_paths, history_paths, model_paths, labels)
    with atomic_path(tsv_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    with atomic_open(md_path) as handle:
        handle.write(to_markdown(table))
    save_figure(comparison_chart(table), chart_path)
    log.info("summary of %d runs written to %s", len(table), tsv_path)
    return table
