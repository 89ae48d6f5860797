"""The explorer stage: one self-contained HTML page to browse every test sentence of every run.

A *run* is one trained model of one pair (a model variant, a seed, an ensemble: whatever the labels name). The
page reads what the evaluate stage wrote, nothing else, so it never decodes a second time:
``results/{pair}/{model}/translations.tsv`` (texts and sentence scores) and ``attention.json.gz`` (tokens and
attention weights, see :mod:`seq2seq.evaluation`). It is built with the standard library only; its HTML, CSS and
JavaScript are the files in ``explorer_assets/``, inlined with the data, so the page needs no network.

The data sits in the page as JSON in ``<script type="application/json" id="explorer-data">`` (every ``<``
written ``\\u003c``, so that no sentence can end the script element)::

    {"format": 1, "scale": 255, "eos": "<eos>", "word_start": "\u2581",   # the labels the tokens below use
     "tokens": [token, ...],                 # token table: the override lists below hold indices into it
     "pairs": [{"name": "fra-eng", "subword": false,     # true when some run's does
                "source": [text, ...], "reference": [text, ...],   # per test sentence, as translations.tsv
                "runs": [{"name": "bahdanau", "subword": false,      # true when some token carries "\u2581"
                          "source_tokens": {"i": [token index, ...]},   # only where not words(source[i])
                          "greedy": {"text": [...], "bleu": [...], "chrf": [...],
                                     "output_tokens": {"i": [...]},  # only where not words(text[i]) + <eos>
                                     "same": [],                     # (beam) sentences equal to greedy
                                     "weights": base64},
                          "beam": {... the same ...}}]}]}

``weights`` is every sentence's matrix [len(output_tokens)][len(source_tokens) + 1], row by row, one byte per
cell (weight x 255, rounded), sentences in order; the beam block leaves out the sentences listed in ``same``,
whose output tokens and bytes equal greedy's. Scores are rounded to 1 decimal; a missing score is null.

``words(text)`` is the text split on the space U+0020 alone, empty strings dropped (:func:`words`, and explorer.js's
``words()``, the same rule): not ``str.split()``, whose whitespace is not JavaScript's ``\\s`` (U+0085, U+001C to
U+001F, U+FEFF...), so that the page reads every text as the tokens Python checked it against.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Sequence

from .fileio import atomic_open
from .formats import SEARCHES, FormatError, read_attention, read_translations
from .logs import InputError
from .tokens import EOS, WORD_START

LOG = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("explorer_assets")
DATA_FORMAT = 1
SCALE = 255  # a weight w is stored as round(w * SCALE), one byte


class ExplorerInputError(FormatError):
    """Evaluation outputs that do not fit together (two runs of one name, other test sentences); the one-line
    message names the file."""


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


def load_run(pair: str, name: str, translations_path: str | os.PathLike[str],
             attention_path: str | os.PathLike[str]) -> Run:
    """Read one run's translations.tsv and attention.json.gz and check that they describe the same sentences."""
    rows = read_translations(translations_path)
    attention = read_attention(attention_path)
    if len(attention["source_tokens"]) != len(rows):
        raise ExplorerInputError(f"{attention_path}: {len(attention['source_tokens'])} sentences, but "
                                 f"{translations_path} has {len(rows)}")
    return Run(pair, name, rows, attention, os.fspath(translations_path), os.fspath(attention_path))


def words(text: str) -> list[str]:
    """The words of a text as the page reads them: split on U+0020 spaces only, empty strings dropped. explorer.js's
    ``words()`` is the same rule; a token list equal to it is not stored (see the module docstring)."""
    return [word for word in text.split(" ") if word]


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
        if output != [*words(text), EOS]:
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
                            if tokens != words(row["source"])}
        greedy = _search_block(run, "greedy", table)
        beam = _search_block(run, "beam", table, greedy)
        greedy.pop("_bytes")
        beam.pop("_bytes")
        labels = [t for tokens in sources for t in tokens]
        labels += [t for search in SEARCHES for tokens in run.attention[search]["output_tokens"] for t in tokens]
        subword = any(WORD_START in t for t in labels)
        entry["subword"] = entry["subword"] or subword
        entry["runs"].append({"name": run.name, "subword": subword, "source_tokens": source_overrides,
                              "greedy": greedy, "beam": beam})
    return {"format": DATA_FORMAT, "scale": SCALE, "eos": EOS, "word_start": WORD_START, "tokens": table.tokens,
            "pairs": list(pairs.values())}


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
                   labels: Sequence[Sequence[str]], html: str | os.PathLike[str]) -> dict[str, Any]:
    """The explorer stage: read every run's ``translations`` TSV and ``attention`` file (``labels[i]`` is the
    ``[pair, run name]`` of the i-th files), write the page to ``html`` atomically; returns the embedded data."""
    if not len(translations) == len(attention) == len(labels):
        raise InputError(f"{len(translations)} translations files, {len(attention)} attention files "
                         f"and {len(labels)} labels: expected one of each per run")
    if not labels:
        raise InputError("no runs to explore")
    for label in labels:
        if not isinstance(label, (list, tuple)) or len(label) != 2:
            raise InputError(f"label {label!r}: a run's label is [pair, system], e.g. [fra-eng, bahdanau]")
    runs = [load_run(str(pair), str(name), translations_path, attention_path)
            for (pair, name), translations_path, attention_path in zip(labels, translations, attention)]
    data = build_data(runs)
    page = render_page(data, page_title(labels))
    with atomic_open(html) as handle:
        handle.write(page)
    sentences = sum(len(pair["source"]) for pair in data["pairs"])
    LOG.info("wrote %s: %d run(s) of %d pair(s), %d test sentences, %.1f MB", html, len(runs),
             len(data["pairs"]), sentences, len(page.encode("utf-8")) / 1e6)
    return data
