"""The A/B table of training recipes: each recipe's seeds against the baseline's, on the same test sentences.

    python workflow/benchmarks/recipes/compare.py \\
        'default=/tmp/recipes/results/fra-eng/default/seed*' \\
        'sp-cos20=/tmp/recipes-sp/results/fra-eng/sp-cos20/seed*'

The first recipe is the baseline. Each argument is LABEL=RUN[,RUN...], a run being a finished training's folder
(``history.tsv``, ``metrics.json``, ``translations.tsv``) or a glob pattern of such folders (quote it; it matches
finished runs only). Runs from two pipeline folders compare only when their test splits are the same, which is
checked (same references, in order): the vocabulary (words or subwords) is free, the data split is not.

For each recipe: epochs run (best), minutes of training as recorded (these depend on the machine's load; time
epochs on a quiet machine for a speed claim), greedy and beam test BLEU as mean ± sd over its runs, and the
difference of the mean BLEU over runs from the baseline's (``seq2seq.metrics.paired_comparison``: percentile
bootstrap interval, and sacrebleu's paired bootstrap p-value, both resampling test sentences with all their runs).
"""

from __future__ import annotations

import argparse
import glob
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the package, also where it is not installed

from seq2seq.formats import FormatError, read_history, read_metrics, read_translations  # noqa: E402
from seq2seq.logs import one_line_errors  # noqa: E402
from seq2seq.metrics import paired_comparison  # noqa: E402
from seq2seq.schema import schema_default  # noqa: E402
from seq2seq.stages import positive_int  # noqa: E402
from seq2seq.summary import to_markdown  # noqa: E402

SEARCHES = ("greedy", "beam")


@dataclass
class Run:
    folder: Path
    epochs: int
    best_epoch: int
    minutes: float
    bleu: dict[str, float]  # search -> test BLEU (metrics.json)
    hypotheses: dict[str, list[str]]  # search -> translations in test order
    references: list[str]


def read_run(folder: Path) -> Run:
    history = read_history(folder / "history.tsv")
    metrics = read_metrics(folder / "metrics.json")
    rows = read_translations(folder / "translations.tsv")
    return Run(folder=folder, epochs=int(history["epoch"].max()), best_epoch=int(metrics["epoch"]),
               minutes=float(history["seconds"].sum()) / 60,
               bleu={search: float(metrics[search]["bleu"]) for search in SEARCHES},
               hypotheses={search: [row[search] for row in rows] for search in SEARCHES},
               references=[row["reference"] for row in rows])


def parse_recipe(argument: str) -> tuple[str, list[Path]]:
    label, sep, folders = argument.partition("=")
    if not sep or not label or not folders:
        raise argparse.ArgumentTypeError(f"{argument!r}: expected LABEL=RUN[,RUN...]")
    runs = []
    for pattern in folders.split(","):
        if any(c in pattern for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(pattern))
            finished = [m for m in matches if (m / "metrics.json").exists()]
            if len(finished) < len(matches):
                print(f"{label}: leaving out {len(matches) - len(finished)} unfinished run(s) (no metrics.json) "
                      f"of {pattern}", file=sys.stderr)
            matches = finished
        else:
            matches = [Path(pattern)]
        if not matches:
            raise argparse.ArgumentTypeError(f"{label}: no finished run folder matches {pattern!r}")
        runs += matches
    return label, runs


def mean_sd(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.2f}{spread}"


def compare(recipes: list[tuple[str, list[Run]]], resamples: int = schema_default("compare.resamples"),
            seed: int = schema_default("compare.seed"), test: str = schema_default("compare.test")) -> str:
    """Markdown table, the first recipe being the baseline (the paired test of the pipeline's summary)."""
    baseline = recipes[0][1]
    references = baseline[0].references
    for _, runs in recipes:
        for run in runs:
            if run.references != references:
                raise SystemExit(f"{run.folder}: its test references differ from {baseline[0].folder}'s "
                                 "(another data split): the recipes cannot be compared sentence by sentence")
    header = ["recipe", "runs", "epochs (best)", "minutes as run", "greedy BLEU", "beam BLEU",
              "Δ greedy [95% CI], p", "Δ beam [95% CI], p"]
    rows = []
    for label, runs in recipes:
        cells = [label, str(len(runs)), ", ".join(f"{r.epochs} ({r.best_epoch})" for r in runs),
                 ", ".join(f"{r.minutes:.1f}" for r in runs)]
        cells += [mean_sd([r.bleu[search] for r in runs]) for search in SEARCHES]
        for search in SEARCHES:
            if runs is baseline:
                cells.append("")
                continue
            result = paired_comparison([r.hypotheses[search] for r in runs],
                                       [r.hypotheses[search] for r in baseline], references, test, resamples, seed)
            cells.append(f"{result['delta']:+.2f} [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}], "
                         f"p = {result['p_value']:.3f}")
        rows.append(cells)
    return to_markdown(pd.DataFrame(rows, columns=header))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", type=parse_recipe, metavar="LABEL=RUN[,RUN...]",
                        help="the baseline first")
    parser.add_argument("--resamples", type=positive_int, default=schema_default("compare.resamples"))
    args = parser.parse_args(argv)
    try:
        recipes = [(label, [read_run(folder) for folder in folders]) for label, folders in args.recipes]
    except FormatError as error:
        raise SystemExit(f"compare.py: {error}") from None
    print(compare(recipes, args.resamples), end="")


if __name__ == "__main__":
    with one_line_errors(Path(__file__).name):
        main()
