"""One reader and one writer for each file the evaluate and train stages pass on, with its columns and format
numbers (the splits' are in :mod:`seq2seq.corpus`, the vocabularies' in :mod:`seq2seq.vocab`, each beside the
code that makes them):

- ``history.tsv`` (train): one row per epoch, :data:`HISTORY_COLUMNS`;
- ``translations.tsv`` (evaluate): one row per test pair, :data:`TRANSLATION_COLUMNS` (plain text, as scored;
  sentence scores 0-100 with 2 decimals);
- ``attention.json.gz`` (evaluate): the tokens and attention weights the explorer draws,
  :data:`ATTENTION_FORMAT` (see :mod:`seq2seq.evaluation`);
- ``metrics.json`` (evaluate): key-sorted JSON (see :mod:`seq2seq.evaluation`).

Every reader checks what it reads and says what is wrong in one line naming the file (and line).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from typing import Any, Sequence

import pandas as pd

from .fileio import atomic_open, atomic_path, write_json
from .logs import InputError

HISTORY_COLUMNS = ("epoch", "train_loss", "valid_loss", "valid_bleu", "learning_rate", "seconds", "pairs_per_s")
_HISTORY_FORMATS = {"epoch": "{:d}", "train_loss": "{:.6f}", "valid_loss": "{:.6f}", "valid_bleu": "{:.4f}",
                    "learning_rate": "{:.6g}", "seconds": "{:.3f}", "pairs_per_s": "{:.1f}"}
SEARCHES = ("greedy", "beam")
TRANSLATION_COLUMNS = ("source", "reference", "greedy", "beam", "greedy_bleu", "greedy_chrf", "beam_bleu",
                       "beam_chrf")
ATTENTION_FORMAT = 1
_TOLERANCE = 1e-3  # weights are rounded to 4 decimals: allow a little outside 0..1


class FormatError(InputError, ValueError):
    """A file between stages that is missing, damaged or not what its writer writes; the one-line message names
    the file."""


# --------------------------------------------------------------------------------------------- history.tsv

def write_history(path: str | os.PathLike[str], rows: Sequence[dict]) -> None:
    """Write history.tsv atomically: one row per epoch, the :data:`HISTORY_COLUMNS` of each dict in ``rows``."""
    with atomic_open(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow([_HISTORY_FORMATS[c].format(row[c]) for c in HISTORY_COLUMNS])


def read_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """history.tsv as a DataFrame with the :data:`HISTORY_COLUMNS`."""
    try:
        table = pd.read_csv(path, sep="\t")
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file (the train stage writes it)") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise FormatError(f"{path}: cannot read the training history ({error})") from None
    missing = [c for c in HISTORY_COLUMNS if c not in table.columns]
    if missing:
        raise FormatError(f"{path}:1: missing column(s) {', '.join(missing)} (expected {', '.join(HISTORY_COLUMNS)})")
    for column in HISTORY_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        problems = {"not a number": values.isna() & table[column].notna()}  # NaN where the writer wrote nan
        if column == "epoch":
            problems["not a whole number"] = values.isna() | (values % 1 != 0)
        for problem, bad in problems.items():
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                cell = table[column].iloc[row]
                shown = "empty" if pd.isna(cell) else f"{str(cell)!r}"
                raise FormatError(f"{path}:{row + 2}: {column} is {shown}, {problem}")
        table[column] = values.astype(int) if column == "epoch" else values
    return table


# --------------------------------------------------------------------------------------------- translations.tsv

def write_translations(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write translations.tsv atomically from a table with the :data:`TRANSLATION_COLUMNS`."""
    missing = [c for c in TRANSLATION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"translations table lacks {missing}")
    with atomic_path(path) as tmp:
        table[list(TRANSLATION_COLUMNS)].to_csv(tmp, sep="\t", index=False, float_format="%.2f",
                                                quoting=csv.QUOTE_MINIMAL, lineterminator="\n")


def _score(value: str, path: str | os.PathLike[str], line: int, column: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise FormatError(f"{path}:{line}: {column} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise FormatError(f"{path}:{line}: {column} is not a finite number: {value!r}")
    return number


def read_translations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read translations.tsv (evaluate stage) -> one dict per test sentence, in order; scores as floats."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise FormatError(f"{path}: empty file, expected a translations.tsv header")
            missing = [c for c in TRANSLATION_COLUMNS if c not in header]
            if missing:
                raise FormatError(f"{path}:1: missing column(s) {', '.join(missing)} "
                                         f"(expected {', '.join(TRANSLATION_COLUMNS)})")
            index = {c: header.index(c) for c in TRANSLATION_COLUMNS}
            rows = []
            for line, fields in enumerate(reader, start=2):
                if len(fields) != len(header):
                    raise FormatError(f"{path}:{line}: {len(fields)} fields, expected {len(header)}")
                row: dict[str, Any] = {c: fields[index[c]] for c in TRANSLATION_COLUMNS[:4]}
                for column in TRANSLATION_COLUMNS[4:]:
                    row[column] = _score(fields[index[column]], path, line, column)
                rows.append(row)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file (the evaluate stage writes it)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FormatError(f"{path}: cannot read translations ({error})") from None
    return rows


def _token_lists(value: Any, path: str | os.PathLike[str], what: str) -> list[list[str]]:
    if not isinstance(value, list) or not all(
            isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) for tokens in value):
        raise FormatError(f"{path}: {what} must be a list of token lists (strings)")
    return value


def read_attention(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check attention.json.gz (evaluate stage): format 1, one entry per sentence in every list, and
    every weights matrix [len(output_tokens)][len(source_tokens) + 1] of numbers in 0..1."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file (the evaluate stage writes it)") from None
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        raise FormatError(f"{path}: not a gzip-compressed JSON attention file "
                                 f"({type(error).__name__}: {error})") from None
    if not isinstance(data, dict) or data.get("format") != ATTENTION_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise FormatError(f"{path}: expected attention format {ATTENTION_FORMAT}, found {found!r}")
    sources = _token_lists(data.get("source_tokens"), path, "source_tokens")
    for search in SEARCHES:
        block = data.get(search)
        if not isinstance(block, dict):
            raise FormatError(f"{path}: no {search!r} block")
        outputs = _token_lists(block.get("output_tokens"), path, f"{search}.output_tokens")
        weights = block.get("weights")
        if not isinstance(weights, list):
            raise FormatError(f"{path}: {search}.weights must be a list of matrices")
        if not len(sources) == len(outputs) == len(weights):
            raise FormatError(f"{path}: {len(sources)} source_tokens, {len(outputs)} {search}.output_tokens "
                                     f"and {len(weights)} {search}.weights: expected one each per sentence")
        for number, (source, output, matrix) in enumerate(zip(sources, outputs, weights), start=1):
            _check_matrix(matrix, len(output), len(source) + 1, path, f"{search} sentence {number}")
    return data


def _check_matrix(matrix: Any, rows: int, columns: int, path: str | os.PathLike[str], where: str) -> None:
    expected = f"expected {rows}x{columns} ({rows} output tokens, {columns - 1} source tokens + <eos>)"
    if not isinstance(matrix, list) or len(matrix) != rows:
        shape = f"{len(matrix)} rows" if isinstance(matrix, list) else type(matrix).__name__
        raise FormatError(f"{path}: {where}: weights have {shape}, {expected}")
    for row in matrix:
        if not isinstance(row, list) or len(row) != columns:
            width = len(row) if isinstance(row, list) else type(row).__name__
            raise FormatError(f"{path}: {where}: weights have a row of {width}, {expected}")
        for w in row:
            if (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w)
                    or not -_TOLERANCE <= w <= 1 + _TOLERANCE):
                raise FormatError(f"{path}: {where}: weight {w!r} is not a number in 0..1")



# --------------------------------------------------------------------------------------------- attention.json.gz

def write_attention(path: str | os.PathLike[str], record: dict) -> None:
    """Write ``record`` as compact gzip-compressed JSON, atomically and byte-identical for equal records (no
    file name or time stamp in the gzip header: the temporary file's random name would end up there)."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as handle:
        handle.write(text.encode("utf-8"))



# --------------------------------------------------------------------------------------------- metrics.json

def write_metrics(path: str | os.PathLike[str], metrics: dict) -> None:
    """Write metrics.json: pretty, key-sorted JSON, atomically."""
    write_json(path, metrics)


def read_metrics(path: str | os.PathLike[str]) -> dict:
    """metrics.json as a dict."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file (the evaluate stage writes it)") from None
    except (OSError, ValueError) as error:
        raise FormatError(f"{path}: cannot read metrics ({error})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: not an evaluate-stage metrics.json (a {type(data).__name__}, not an object)")
    return data
