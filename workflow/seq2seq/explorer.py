"""The explorer stage: one self-contained HTML page to browse every test sentence of every run.

A *run* is one trained model of one pair (a model variant, a seed, an ensemble: whatever the labels name). The
page reads what the evaluate stage wrote, nothing else, so it never decodes a second time:
``results/{pair}/{model}/translations.tsv`` (texts and sentence scores) and ``attention.json.gz`` (tokens and
attention weights, see :mod:`seq2seq.evaluation`). It is built with the standard library only; its HTML, CSS and
JavaScript are the files in ``explorer_assets/``, inlined with the data, so the page needs no network.

The data sits in the page as JSON in ``<script type="application/json" id="explorer-data">`` (every ``<``
written ``\\u003c``, so that no sentence can end the script element)::

    {"format": 1, "scale": 255,
     "tokens": [token, ...],                 # token table: the override lists below hold indices into it
     "pairs": [{"name": "fra-eng", "subword": false,     # true when some run's does
                "source": [text, ...], "reference": [text, ...],   # per test sentence, as translations.tsv
                "runs": [{"name": "bahdanau", "subword": false,      # true when some token carries "\u2581"
                          "source_tokens": {"i": [token index, ...]},   # only where not source[i].split()
                          "greedy": {"text": [...], "bleu": [...], "chrf": [...],
                                     "output_tokens": {"i": [...]},  # only where not text[i].split() + <eos>
                                     "same": [],                     # (beam) sentences equal to greedy
                                     "weights": base64},
                          "beam": {... the same ...}}]}]}

``weights`` is every sentence's matrix [len(output_tokens)][len(source_tokens) + 1], row by row, one byte per
cell (weight x 255, rounded), sentences in order; the beam block leaves out the sentences listed in ``same``,
whose output tokens and bytes equal greedy's. Scores are rounded to 1 decimal; a missing score is null.
"""

from __future__ import annotations

import base64
import csv
import gzip
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Sequence

from .fileio import atomic_open
from .logs import InputError

LOG = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("explorer_assets")
DATA_FORMAT = 1
ATTENTION_FORMAT = 1
SCALE = 255  # a weight w is stored as round(w * SCALE), one byte
EOS = "<eos>"
PIECE_MARK = "\u2581"  # sentencepiece's word-start marker
SEARCHES = ("greedy", "beam")
TRANSLATION_COLUMNS = ("source", "reference", "greedy", "beam", "greedy_bleu", "greedy_chrf", "beam_bleu",
                       "beam_chrf")
_TOLERANCE = 1e-3  # weights are rounded to 4 decimals: allow a little outside 0..1


class ExplorerInputError(InputError, ValueError):
    """A translations.tsv or attention.json.gz the page cannot be built from; the one-line message names the
    file."""


@dataclass
class Run:
    """One run's evaluation outputs, checked against each other.

    rows: translations.tsv rows (dicts of :data:`TRANSLATION_COLUMNS`, scores as floats or None).
    attention: the content of attention.json.gz (format 1), with as many sentences as ``rows``.
    """

    pair: str
    name: str
    rows: list[dict[str, Any]]
    attention: dict[str, Any]
    translations_path: str
    attention_path: str


def _score(value: str, path: str | os.PathLike[str], line: int, column: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ExplorerInputError(f"{path}:{line}: {column} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ExplorerInputError(f"{path}:{line}: {column} is not a finite number: {value!r}")
    return number


def read_translations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read translations.tsv (evaluate stage) -> one dict per test sentence, in order; scores as floats."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise ExplorerInputError(f"{path}: empty file, expected a translations.tsv header")
            missing = [c for c in TRANSLATION_COLUMNS if c not in header]
            if missing:
                raise ExplorerInputError(f"{path}:1: missing column(s) {', '.join(missing)} "
                                         f"(expected {', '.join(TRANSLATION_COLUMNS)})")
            index = {c: header.index(c) for c in TRANSLATION_COLUMNS}
            rows = []
            for line, fields in enumerate(reader, start=2):
                if len(fields) != len(header):
                    raise ExplorerInputError(f"{path}:{line}: {len(fields)} fields, expected {len(header)}")
                row: dict[str, Any] = {c: fields[index[c]] for c in TRANSLATION_COLUMNS[:4]}
                for column in TRANSLATION_COLUMNS[4:]:
                    row[column] = _score(fields[index[column]], path, line, column)
                rows.append(row)
    except FileNotFoundError:
        raise ExplorerInputError(f"{path}: no such file (the evaluate stage writes it)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ExplorerInputError(f"{path}: cannot read translations ({error})") from None
    return rows


def _token_lists(value: Any, path: str | os.PathLike[str], what: str) -> list[list[str]]:
    if not isinstance(value, list) or not all(
            isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) for tokens in value):
        raise ExplorerInputError(f"{path}: {what} must be a list of token lists (strings)")
    return value


def read_attention(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check attention.json.gz (evaluate stage): format 1, one entry per sentence in every list, and
    every weights matrix [len(output_tokens)][len(source_tokens) + 1] of numbers in 0..1."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ExplorerInputError(f"{path}: no such file (the evaluate stage writes it)") from None
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        raise ExplorerInputError(f"{path}: not a gzip-compressed JSON attention file "
                                 f"({type(error).__name__}: {error})") from None
    if not isinstance(data, dict) or data.get("format") != ATTENTION_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ExplorerInputError(f"{path}: expected attention format {ATTENTION_FORMAT}, found {found!r}")
    sources = _token_lists(data.get("source_tokens"), path, "source_tokens")
    for search in SEARCHES:
        block = data.get(search)
        if not isinstance(block, dict):
            raise ExplorerInputError(f"{path}: no {search!r} block")
        outputs = _token_lists(block.get("output_tokens"), path, f"{search}.output_tokens")
        weights = block.get("weights")
        if not isinstance(weights, list):
            raise ExplorerInputError(f"{path}: {search}.weights must be a list of matrices")
        if not len(sources) == len(outputs) == len(weights):
            raise ExplorerInputError(f"{path}: {len(sources)} source_tokens, {len(outputs)} {search}.output_tokens "
                                     f"and {len(weights)} {search}.weights: expected one each per sentence")
        for number, (source, output, matrix) in enumerate(zip(sources, outputs, weights), start=1):
            _check_matrix(matrix, len(output), len(source) + 1, path, f"{search} sentence {number}")
    return data


def _check_matrix(matrix: Any, rows: int, columns: int, path: str | os.PathLike[str], where: str) -> None:
    expected = f"expected {rows}x{columns} ({rows} output tokens, {columns - 1} source tokens + <eos>)"
    if not isinstance(matrix, list) or len(matrix) != rows:
        shape = f"{len(matrix)} rows" if isinstance(matrix, list) else type(matrix).__name__
        raise ExplorerInputError(f"{path}: {where}: weights have {shape}, {expected}")
    for row in matrix:
        if not isinstance(row, list) or len(row) != columns:
            width = len(row) if isinstance(row, list) else type(row).__name__
            raise ExplorerInputError(f"{path}: {where}: weights have a row of {width}, {expected}")
        for w in row:
            if (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w)
                    or not -_TOLERANCE <= w <= 1 + _TOLERANCE):
                raise ExplorerInputError(f"{path}: {where}: weight {w!r} is not a number in 0..1")


def load_run(pair: str, name: str, translations_path: str | os.PathLike[str],
             attention_path: str | os.PathLike[str]) -> Run:
    """Read one run's translations.tsv and attention.json.gz and check that they describe the same sentences."""
    rows = read_translations(translations_path)
    attention = read_attention(attention_path)
    if len(attention["source_tokens"]) != len(rows):
        raise ExplorerInputError(f"{attention_path}: {len(attention['source_tokens'])} sentences, but "
                                 f"{translations_path} has {len(rows)}")
    return Run(pair, name, rows, attention, os.fspath(translations_path), os.fspath(attention_path))


def _quantize(matrix: list[list[float]]) -> bytes:
    return bytes(min(SCALE, max(0, round(w * SCALE))) for row in matrix for w in row)


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 1)


class _TokenTable:
    """Token strings stored once; lists of tokens become lists of indices."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self._index: dict[str, int] = {}

    def encode(self, tokens: Sequence[str]) -> list[int]:
        ids = []
        for token in tokens:
            if token not in self._index:
                self._index[token] = len(self.tokens)
                self.tokens.append(token)
            ids.append(self._index[token])
        return ids


def _search_block(run: Run, search: str, table: _TokenTable, greedy: dict | None = None) -> dict[str, Any]:
    """One run's data for one search; with ``greedy`` (that run's greedy block, as built here plus its raw
    bytes under ``"_bytes"``) sentences identical to greedy are listed in ``same`` instead of stored again."""
    texts = [row[search] for row in run.rows]
    outputs = run.attention[search]["output_tokens"]
    matrices = run.attention[search]["weights"]
    overrides: dict[str, list[int]] = {}
    same: list[int] = []
    blob = bytearray()
    sentence_bytes: list[bytes] = []
    for i, (text, output, matrix) in enumerate(zip(texts, outputs, matrices)):
        cells = _quantize(matrix)
        sentence_bytes.append(cells)
        if greedy is not None and output == run.attention["greedy"]["output_tokens"][i] \
                and cells == greedy["_bytes"][i]:
            same.append(i)
            continue
        if output != [*text.split(), EOS]:
            overrides[str(i)] = table.encode(output)
        blob += cells
    block: dict[str, Any] = {
        "text": texts,
        "bleu": [_rounded(row[f"{search}_bleu"]) for row in run.rows],
        "chrf": [_rounded(row[f"{search}_chrf"]) for row in run.rows],
        "output_tokens": overrides,
        "same": same,
        "weights": base64.b64encode(bytes(blob)).decode("ascii"),
        "_bytes": sentence_bytes,
    }
    return block


def build_data(runs: Sequence[Run]) -> dict[str, Any]:
    """The page's data (see the module docstring) for runs grouped by pair, pairs and runs in the given order.

    Runs of one pair must cover the same test sentences: same count and same sources.
    """
    table = _TokenTable()
    pairs: dict[str, dict[str, Any]] = {}
    first_run: dict[str, Run] = {}
    for run in runs:
        if run.pair not in pairs:
            pairs[run.pair] = {"name": run.pair, "subword": False,
                               "source": [row["source"] for row in run.rows],
                               "reference": [row["reference"] for row in run.rows], "runs": []}
            first_run[run.pair] = run
        entry, first = pairs[run.pair], first_run[run.pair]
        if any(r["name"] == run.name for r in entry["runs"]):
            raise ExplorerInputError(f"{run.translations_path}: run name {run.name!r} appears twice for pair "
                                     f"{run.pair!r}")
        if len(run.rows) != len(first.rows):
            raise ExplorerInputError(f"{run.translations_path}: {len(run.rows)} test sentences, but "
                                     f"{first.translations_path} (same pair {run.pair}) has {len(first.rows)}")
        for number, (row, reference_row) in enumerate(zip(run.rows, first.rows), start=2):
            if (row["source"], row["reference"]) != (reference_row["source"], reference_row["reference"]):
                raise ExplorerInputError(f"{run.translations_path}:{number}: the sentence differs from line "
                                         f"{number} of {first.translations_path} (same pair {run.pair}): both "
                                         f"must come from the same test split")
        sources = run.attention["source_tokens"]
        source_overrides = {str(i): table.encode(tokens) for i, (tokens, row) in enumerate(zip(sources, run.rows))
                            if tokens != row["source"].split()}
        greedy = _search_block(run, "greedy", table)
        beam = _search_block(run, "beam", table, greedy)
        greedy.pop("_bytes")
        beam.pop("_bytes")
        labels = [t for tokens in sources for t in tokens]
        labels += [t for search in SEARCHES for tokens in run.attention[search]["output_tokens"] for t in tokens]
        subword = any(PIECE_MARK in t for t in labels)
        entry["subword"] = entry["subword"] or subword
        entry["runs"].append({"name": run.name, "subword": subword, "source_tokens": source_overrides,
                              "greedy": greedy, "beam": beam})
    return {"format": DATA_FORMAT, "scale": SCALE, "tokens": table.tokens, "pairs": list(pairs.values())}


def embed_json(data: Any) -> str:
    """JSON text safe inside a ``<script>`` element: compact, UTF-8, every ``<`` escaped as ``\\u003c``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def _asset(name: str, closing: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if closing in text.lower():
        raise ValueError(f"{ASSETS / name}: contains {closing!r}, which would end the inlined element early")
    return text


def render_page(data: dict[str, Any], title: str = "Attention explorer") -> str:
    """The whole page: explorer.html with explorer.css, explorer.js and ``data`` inlined."""
    values = {
        "title": escape(title),
        "style": _asset("explorer.css", "</style"),
        "script": _asset("explorer.js", "</script"),
        "data": embed_json(data),
    }
    template = (ASSETS / "explorer.html").read_text(encoding="utf-8")
    # one pass: text inserted for one placeholder is never searched for another
    return re.sub(r"\{\{(title|style|script|data)\}\}", lambda match: values[match.group(1)], template)


def read_page_data(page: str) -> dict[str, Any]:
    """The data embedded in a page written by :func:`render_page` (for tests and tools)."""
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S)
    if match is None:
        raise ValueError("no explorer data in this page")
    return json.loads(match.group(1))


def page_title(labels: Sequence[Sequence[str]]) -> str:
    """``Attention explorer: fra-eng (bahdanau, luong)``: pairs and their runs, in order."""
    by_pair: dict[str, list[str]] = {}
    for pair, name in labels:
        by_pair.setdefault(pair, []).append(name)
    return "Attention explorer: " + "; ".join(f"{pair} ({', '.join(names)})" for pair, names in by_pair.items())


def write_explorer(translations: Sequence[str | os.PathLike[str]], attention: Sequence[str | os.PathLike[str]],
                   labels: Sequence[Sequence[str]], html: str | os.PathLike[str],
                   log: logging.Logger = LOG) -> dict[str, Any]:
    """The explorer stage: read every run's ``translations`` TSV and ``attention`` file (``labels[i]`` is the
    ``[pair, run name]`` of the i-th files), write the page to ``html`` atomically; returns the embedded data."""
    if not len(translations) == len(attention) == len(labels):
        raise ValueError(f"{len(translations)} translations files, {len(attention)} attention files "
                         f"and {len(labels)} labels: expected one of each per run")
    if not labels:
        raise ValueError("no runs to explore")
    runs = [load_run(str(pair), str(name), translations_path, attention_path)
            for (pair, name), translations_path, attention_path in zip(labels, translations, attention)]
    data = build_data(runs)
    page = render_page(data, page_title(labels))
    with atomic_open(html) as handle:
        handle.write(page)
    sentences = sum(len(pair["source"]) for pair in data["pairs"])
    log.info("wrote %s: %d run(s) of %d pair(s), %d test sentences, %.1f MB", html, len(runs),
             len(data["pairs"]), sentences, len(page.encode("utf-8")) / 1e6)
    return data
