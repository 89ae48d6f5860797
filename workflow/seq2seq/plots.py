"""Figures: attention heatmaps (one sentence or a grid), learning curves, the model comparison chart.

Everything draws with matplotlib's Agg backend and saves with fixed metadata, so rerunning on the same
inputs rewrites byte-identical PNG files (and SVG/PDF without dates or random ids).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402  (the backend is chosen first)
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from .fileio import atomic_path  # noqa: E402
from .tokens import EOS, WORD_START  # noqa: E402

LOG = logging.getLogger(__name__)

# Bounds that keep a figure's size, memory and drawing time small whatever the sentence (a 20,000-word line once
# made a 1,350,337-pixel-wide PNG and took 18.5 GB): a heatmap draws at most MAX_FIGURE_TOKENS source tokens and as
# many produced tokens (the first ones, the rest of the source's attention summed in one column), a title line at
# most MAX_TITLE_CHARS characters, a grid at most MAX_GRID_PANELS sentences (the first ones). README, "Figures".
MAX_FIGURE_TOKENS = 100
MAX_TITLE_CHARS = 200
MAX_GRID_PANELS = 24
MAX_FIGURE_INCHES = (24.0, 18.0)  # width, height of one heatmap: cells get smaller beyond (150 dpi: 9.7 Mpixels)
FIGURE_FORMATS = ("png", "svg", "pdf")
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


class Attended(Protocol):
    """What a heatmap draws (a :class:`seq2seq.translate.Translation` is one): attention [T, S+1] of the
    produced tokens over the source tokens and ``<eos>``."""

    source_tokens: Sequence[str]
    output_tokens: Sequence[str]
    attention: object  # tensor or array [T, S+1]


# The label of the column that sums the source tokens a figure leaves out ("… +30"): a token never has a space
REST_LABEL = "\u2026 +"


def tick_label(token: str) -> str:
    """A readable tick label: a subword piece's word-start mark becomes a leading ``_`` ("▁je" -> "_je"), a
    piece that continues a word gets a leading ``·`` ("s" in "tre s" -> "·s") only when a piece list is shown."""
    return "_" + token[1:] if token.startswith(WORD_START) else token


def _labels(tokens: Sequence[str]) -> list[str]:
    pieces = any(t.startswith(WORD_START) for t in tokens)
    return [tick_label(t) if t.startswith(WORD_START) or not pieces or t == EOS or t.startswith(REST_LABEL)
            else "\u00b7" + t for t in tokens]


def attention_heatmap(ax: Axes, source_tokens: Sequence[str], output_tokens: Sequence[str],
                      weights, fontsize: float | None = None) -> AxesImage:
    """Draw attention weights [T,S] on ``ax``: columns = source tokens then ``<eos>`` (S = len + 1), rows =
    produced tokens (T = len(output_tokens), ``<eos>`` included when produced). Every tick has its own label.
    Colours span 0..1 so that several heatmaps compare directly. Returns the image (for a colour bar).
    """
    weights = np.asarray(weights, dtype=float)
    columns = [*source_tokens, EOS]
    if weights.shape != (len(output_tokens), len(columns)):
        raise ValueError(f"attention weights have shape {weights.shape}, expected "
                         f"({len(output_tokens)}, {len(columns)}) for {len(output_tokens)} output tokens and "
                         f"{len(source_tokens)} source tokens + <eos>")
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(_labels(columns), rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(output_tokens)))
    ax.set_yticklabels(_labels(output_tokens), fontsize=fontsize)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    return image


def _wrap(title: str, width: int) -> str:
    """Each line of ``title`` cut to MAX_TITLE_CHARS characters, then wrapped at ``width``."""
    lines = [line if len(line) <= MAX_TITLE_CHARS else f"{line[:MAX_TITLE_CHARS - 1]}\u2026"
             for line in title.split("\n")]
    return "\n".join(textwrap.fill(line, width) for line in lines)


@dataclass
class _Shown:
    """The part of a translation a heatmap draws (see :func:`clip_for_figure`)."""

    source_tokens: list[str]
    output_tokens: list[str]
    attention: np.ndarray  # [T, S+1]


def clip_for_figure(translation: Attended, limit: int = MAX_FIGURE_TOKENS) -> tuple[Attended, str | None]:
    """What a heatmap of ``translation`` draws: its first ``limit`` produced tokens (rows) and first ``limit``
    source tokens, the attention on the others summed in one more column labelled with how many there are (so
    that rows still sum to 1), and ``<eos>``; with a note saying what was left out, None when nothing was."""
    sources, outputs = list(translation.source_tokens), list(translation.output_tokens)
    if len(sources) <= limit and len(outputs) <= limit:
        return translation, None
    weights = np.asarray(translation.attention, dtype=float)[:limit]  # [T', S+1]
    shown_sources = sources
    if len(sources) > limit:
        rest = weights[:, limit:len(sources)].sum(axis=1, keepdims=True)  # [T', 1]
        weights = np.concatenate([weights[:, :limit], rest, weights[:, -1:]], axis=1)  # [T', limit+2]
        shown_sources = [*sources[:limit], f"{REST_LABEL}{len(sources) - limit:,}"]
    cuts = [f"the first {limit} of {len(tokens):,} {side} tokens"
            for tokens, side in ((sources, "source"), (outputs, "produced")) if len(tokens) > limit]
    note = f"showing {' and '.join(cuts)} (figures draw at most {limit} a side)"
    return _Shown(shown_sources, outputs[:limit], weights), note


def _clipped(translation: Attended, title: str) -> tuple[Attended, str]:
    """:func:`clip_for_figure`, the note logged as a warning and added to the title."""
    shown, note = clip_for_figure(translation)
    if note is None:
        return translation, title
    first = title.split("\n", 1)[0]
    LOG.warning("attention figure of '%s': %s", first if len(first) <= 60 else f"{first[:59]}\u2026", note)
    return shown, f"{title}\n({note})" if title else f"({note})"


def attention_figure(translation: Attended, title: str = "") -> Figure:
    """One sentence's heatmap with a colour bar, sized to its token counts (at most MAX_FIGURE_TOKENS a side:
    a longer sentence shows its first part, with a warning in the log and in the title)."""
    translation, title = _clipped(translation, title)
    rows, columns = len(translation.output_tokens), len(translation.source_tokens) + 1
    width, height = max(4.0, 1.8 + 0.45 * columns), max(3.0, 1.8 + 0.35 * rows)
    fontsize = None
    if width > MAX_FIGURE_INCHES[0] or height > MAX_FIGURE_INCHES[1]:  # smaller cells, smaller tick labels
        width, height = min(width, MAX_FIGURE_INCHES[0]), min(height, MAX_FIGURE_INCHES[1])
        cell = min((width - 1.8) / columns, (height - 1.8) / rows)  # inches
        fontsize = max(4.0, min(10.0, 72 * 0.75 * cell))
    figure = Figure(figsize=(width, height))
    ax = figure.add_subplot()
    image = attention_heatmap(ax, translation.source_tokens, translation.output_tokens,
                              np.asarray(translation.attention), fontsize)
    figure.colorbar(image, ax=ax, label="attention weight")
    if title:
        ax.set_title(_wrap(title, 50), fontsize=9)
    figure.tight_layout()
    return figure


def attention_grid(translations: Sequence[Attended], titles: Sequence[str], columns: int = 4) -> Figure:
    """Several heatmaps side by side, ``columns`` per row, one shared colour bar (all use the 0..1 scale): the
    first MAX_GRID_PANELS sentences (with a warning when there are more), each cut as :func:`attention_figure`
    cuts it."""
    if len(translations) > MAX_GRID_PANELS:
        LOG.warning("the attention grid shows the first %d of %d sentences (each has its own figure)",
                    MAX_GRID_PANELS, len(translations))
        translations, titles = translations[:MAX_GRID_PANELS], titles[:MAX_GRID_PANELS]
    count = len(translations)
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(4.2 * columns + 1.0, 4.0 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    image = None
    for ax, translation, title in zip(axes, translations, titles):
        translation, title = _clipped(translation, title)
        image = attention_heatmap(ax, translation.source_tokens, translation.output_tokens,
                                  np.asarray(translation.attention))
        ax.set_title(_wrap(title, 40), fontsize=8)
    for ax in axes[count:]:
        ax.axis("off")
    if image is None:
        axes[0].text(0.5, 0.5, "no sentences to draw", ha="center", va="center")
    else:
        figure.colorbar(image, ax=list(axes), label="attention weight", shrink=0.8)
    return figure


def train_loss_label(dropout: float, label_smoothing: float) -> str:
    """Legend label of the train loss, naming what makes it the training objective rather than the plain
    cross-entropy of the valid loss (otherwise a train loss above the valid loss looks like a bug)."""
    parts = [f"dropout {dropout:g}"] if dropout > 0 else []
    parts += [f"label smoothing {label_smoothing:g}"] if label_smoothing > 0 else []
    return f"train loss (with {', '.join(parts)})" if parts else "train loss"


def learning_curve(history: pd.DataFrame, title: str = "", train_label: str = "train loss") -> Figure:
    """Train/valid loss (left axis) and valid BLEU (right axis) against epoch, from history.tsv columns
    ``epoch``, ``train_loss``, ``valid_loss``, ``valid_bleu`` (missing ones are skipped)."""
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.add_subplot()
    epochs = history["epoch"]
    lines = []
    for column, style, label in (("train_loss", "-o", train_label), ("valid_loss", "-s", "valid loss")):
        if column in history:
            lines += ax.plot(epochs, history[column], style, label=label, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (cross-entropy per token)")
    if "valid_bleu" in history:
        right = ax.twinx()
        lines += right.plot(epochs, history["valid_bleu"], "-^", color="tab:green", label="valid BLEU",
                            markersize=3)
        right.set_ylabel("BLEU")
    if lines:
        ax.legend(lines, [line.get_label() for line in lines], loc="upper center", bbox_to_anchor=(0.5, -0.15),
                  ncol=2, frameon=False)  # under the axes: the curves use the whole plot
    ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure


def comparison_chart(table: pd.DataFrame, per_seed: dict | None = None) -> Figure:
    """Greedy and beam BLEU per (pair, model) as grouped bars (the mean over seeds), with 95% bootstrap intervals
    as error bars and, where a model has several seeds, each seed's score as a dot on its bar.

    Columns used: ``pair``, ``model``, ``greedy_bleu``, ``bleu`` (beam) and the optional interval columns
    ``greedy_bleu_ci_low/high``, ``bleu_ci_low/high``. ``per_seed``: {(pair, model): {"greedy": [...], "beam":
    [...]}}.
    """
    labels = [f"{p}\n{m}" for p, m in zip(table["pair"], table["model"])]
    x = np.arange(len(labels))
    width = 0.38
    figure = Figure(figsize=(max(5.0, 1.3 * len(labels) + 2.0), 4.2))
    ax = figure.add_subplot()
    drew_seeds = False
    for offset, column, name in ((-width / 2, "greedy_bleu", "greedy"), (width / 2, "bleu", "beam")):
        values = table[column].to_numpy(dtype=float)
        error = None
        if f"{column}_ci_low" in table and f"{column}_ci_high" in table:
            low, high = table[f"{column}_ci_low"].to_numpy(float), table[f"{column}_ci_high"].to_numpy(float)
            error = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
        bars = ax.bar(x + offset, values, width, yerr=error, capsize=3, label=name)
        ax.bar_label(bars, fmt="%.1f", label_type="center", color="white", fontsize=8)
        for i, key in enumerate(zip(table["pair"], table["model"])):
            scores = (per_seed or {}).get(key, {}).get(name, [])
            if len(scores) > 1:
                ax.scatter(np.full(len(scores), x[i] + offset), scores, s=12, color="black", zorder=3,
                           label=None if drew_seeds else "one seed")
                drew_seeds = True
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_xlim(-0.7, len(labels) - 0.3)
    ax.set_ylabel("test BLEU (95% bootstrap interval)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)  # above: never on a bar
    figure.tight_layout()
    return figure


def figure_format(path: str | os.PathLike[str]) -> str:
    """The format named by ``path``'s extension (png, svg or pdf); ValueError naming the path otherwise."""
    fmt = Path(path).suffix.lower().removeprefix(".")
    if fmt not in FIGURE_FORMATS:
        shown = f"'.{fmt}'" if fmt else "no extension"
        raise ValueError(f"{path}: unsupported figure format ({shown}; use .png, .svg or .pdf)")
    return fmt


def check_figure_path(path: str | os.PathLike[str]) -> None:
    """Fail now, before any work, if a figure could not be saved at ``path``: an unsupported extension, an
    existing path that is not a regular file (a folder: the atomic save could not replace it), a folder that
    does not exist or cannot be written (tried with a temporary file, which is removed)."""
    figure_format(path)
    target = Path(path)
    if target.exists() and not target.is_file():
        raise ValueError(f"{path}: " + ("is a folder, not a file" if target.is_dir()
                                        else "exists and is not a regular file"))
    folder = target.parent
    if not folder.is_dir():
        raise ValueError(f"{path}: the folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{Path(path).name}.", suffix=".check"):
            pass
    except OSError as error:
        raise ValueError(f"{path}: cannot write to the folder {folder} ({error.strerror})") from None


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> None:
    """Save atomically in the format of the file extension (png, svg or pdf), without dates or versions."""
    fmt = figure_format(path)
    with matplotlib.rc_context({"svg.hashsalt": "seq2seq"}), atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=150, metadata=_METADATA[fmt])
