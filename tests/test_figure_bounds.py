"""Figures stay small whatever the sentence: a heatmap draws at most MAX_FIGURE_TOKENS tokens a side (the first
ones, with a warning), a grid at most MAX_GRID_PANELS sentences, and `seq2seq-translate --plot` of a 20,000-word
line stays under 1 GB of memory."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.plots import (MAX_FIGURE_INCHES, MAX_FIGURE_TOKENS, MAX_GRID_PANELS, attention_figure, attention_grid,
                           clip_for_figure)
from seq2seq.runs import check_config
from seq2seq.schema import ConfigError
from seq2seq.translate import Translation

LONG_WORDS = 20_000
MAX_PIXELS = (MAX_FIGURE_INCHES[0] * 150, MAX_FIGURE_INCHES[1] * 150)  # saved at 150 dpi


def long_translation(sources: int = LONG_WORDS, outputs: int = 150) -> Translation:
    weights = torch.rand(outputs, sources + 1, generator=torch.Generator().manual_seed(0)).softmax(dim=1)
    return Translation([f"w{i}" for i in range(sources)], [f"o{i}" for i in range(outputs - 1)] + ["<eos>"],
                       weights, -1.0, "o0 o1")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_a_long_sentence_shows_its_first_tokens_and_the_rest_in_one_column() -> None:
    translation = long_translation()
    shown, note = clip_for_figure(translation)
    limit = MAX_FIGURE_TOKENS
    assert note == (f"showing the first {limit} of 20,000 source tokens and the first {limit} of 150 produced "
                    f"tokens (figures draw at most {limit} a side)")
    assert shown.source_tokens == [*translation.source_tokens[:limit], "\u2026 +19,900"]
    assert shown.output_tokens == translation.output_tokens[:limit]
    weights = np.asarray(translation.attention, dtype=float)
    assert shown.attention.shape == (limit, limit + 2)
    np.testing.assert_allclose(shown.attention[:, :limit], weights[:limit, :limit])
    np.testing.assert_allclose(shown.attention[:, limit], weights[:limit, limit:-1].sum(axis=1))
    np.testing.assert_allclose(shown.attention[:, -1], weights[:limit, -1])
    np.testing.assert_allclose(shown.attention.sum(axis=1), 1.0, rtol=1e-6)
    short = long_translation(5, 4)
    assert clip_for_figure(short) == (short, None)


def test_the_rest_column_of_a_subword_sentence_is_labelled_with_its_count_not_as_a_piece() -> None:
    """Pieces that continue a word get a leading "·"; the column that sums the left-out pieces is not one."""
    pieces = [f"\u2581w{i}" if i % 2 == 0 else f"p{i}" for i in range(MAX_FIGURE_TOKENS + 30)]
    weights = torch.full((3, len(pieces) + 1), 1.0 / (len(pieces) + 1))
    figure = attention_figure(Translation(pieces, ["\u2581o", "k", "<eos>"], weights, -1.0, "ok"), "a title")
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels[-3:] == [f"\u00b7p{MAX_FIGURE_TOKENS - 1}", "\u2026 +30", "<eos>"]
    assert labels[:2] == ["_w0", "\u00b7p1"]


def test_the_figure_of_a_long_sentence_is_bounded_and_says_so(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="seq2seq.plots")
    title = " ".join(f"w{i}" for i in range(LONG_WORDS)) + "\n-> o0 o1"
    figure = attention_figure(long_translation(), title=title)
    assert " ".join(figure.axes[0].get_title().split()).endswith(f"(figures draw at most {MAX_FIGURE_TOKENS} a side))")
    assert len(figure.axes[0].get_title()) < 600  # the title's 100,000-character first line is cut
    # 100 x 100 cells and their labels in 24 x 18 inches (saved at 150 dpi: 3,600 x 2,700 pixels, ~330 MB to draw)
    assert tuple(figure.get_size_inches()) == MAX_FIGURE_INCHES
    [record] = caplog.records
    assert record.getMessage().startswith("attention figure of 'w0 w1 w2")
    assert record.getMessage().endswith(f"showing the first {MAX_FIGURE_TOKENS} of 20,000 source tokens and the "
                                        f"first {MAX_FIGURE_TOKENS} of 150 produced tokens (figures draw at most "
                                        f"{MAX_FIGURE_TOKENS} a side)")


def test_the_grid_draws_its_first_sentences(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="seq2seq.plots")
    translations = [long_translation(4, 3)] * (MAX_GRID_PANELS + 6)
    figure = attention_grid(translations, [f"s{i}" for i in range(len(translations))], columns=4)
    assert sum(1 for ax in figure.axes if ax.images) == MAX_GRID_PANELS
    assert [r.getMessage() for r in caplog.records] == [
        f"the attention grid shows the first {MAX_GRID_PANELS} of {MAX_GRID_PANELS + 6} sentences (each has its "
        f"own figure)"]


@pytest.mark.parametrize("figures, message", [
    ({"count": 101}, "config: figures.count: 101 is greater than the maximum of 100"),
    ({"sentences": ["je suis là ."] * 101}, "config: figures.sentences: ['je suis là .', 'je suis là .', "
                                            "'je suis là .', 'je suis là... (101 items) is too long"),
])
def test_the_number_of_figures_is_bounded(figures, message) -> None:
    config = {"corpora": {"fra-eng": {"url": "x.txt"}}, "pairs": ["fra-eng"],
              "models": {"m": {"attention": "bahdanau"}}, "figures": figures}
    with pytest.raises(ConfigError) as error:
        check_config(config)
    assert str(error.value) == message


@pytest.mark.workflow
def test_translate_plot_of_a_20000_word_line_stays_under_1_gb(finished_run, tmp_path) -> None:
    """The README's `--plot` on one 20,000-word line (once 3 minutes, 18.5 GB and a 1,350,337-pixel-wide PNG):
    exit 0, the translation, one warning about the figure, a bounded PNG, peak memory under 1 GB."""
    workdir, _, _ = finished_run
    model = next((workdir / "results").glob("*/*/model.pt"))
    line = " ".join(["je suis tres content ."] * (LONG_WORDS // 5))
    plot = tmp_path / "long.png"
    command = [sys.executable, "-m", "seq2seq.translate_command", "--model", str(model), "--plot", str(plot)]
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], input=sys.stdin.read(), "
               "capture_output=True, text=True); sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", measure, *command], input=line + "\n", capture_output=True,
                            text=True, timeout=300)
    *lines, last = result.stderr.splitlines()
    peak_kb, status = map(int, last.split())
    assert status == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    warnings = [x for x in lines if x.startswith("seq2seq-translate: warning: attention figure of")]
    assert len(warnings) == 1 and f"showing the first {MAX_FIGURE_TOKENS} of 20,000 source tokens" in warnings[0]
    width, height = png_size(plot)
    assert width <= MAX_PIXELS[0] and height <= MAX_PIXELS[1], (width, height)
    assert peak_kb < 1024 * 1024, f"peak memory {peak_kb / 1024:.0f} MB"


@pytest.mark.workflow
def test_the_figures_stage_draws_a_long_config_sentence_in_bounded_figures(finished_run, tmp_path, caplog) -> None:
    """A 1,000-word sentence in figures.sentences (the cut is the same as for 20,000 words, and cheaper to
    translate): its heatmap and the grid show the first 100 tokens, with a warning each."""
    from seq2seq.figures import draw_figures
    from seq2seq.settings import FigureSettings

    workdir, _, _ = finished_run
    model = next((workdir / "results").glob("*/*/model.pt"))
    caplog.set_level(logging.WARNING)
    files = {"attention": [tmp_path / "attention_01.png"], "grid": tmp_path / "grid.png",
             "curve": tmp_path / "curve.png"}
    draw_figures(model, model.parents[1] / "data" / "test.tsv", model.with_name("history.tsv"), **files,
                 settings=FigureSettings(count=0, sentences=[" ".join(["je suis tres content ."] * 200)]))
    for path in (files["attention"][0], files["grid"]):
        width, height = png_size(path)
        assert width * height <= MAX_PIXELS[0] * MAX_PIXELS[1], (path, width, height)
    notes = [r.getMessage() for r in caplog.records if "source tokens" in r.getMessage()]
    assert len(notes) == 2 and all("of 1,000 source tokens" in note for note in notes), notes  # figure, grid
