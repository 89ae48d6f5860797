"""Attention heatmaps (tick labels, shapes), deterministic saving, learning curve and comparison chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seq2seq.plots import (attention_figure, attention_grid, attention_heatmap, comparison_chart, learning_curve,
                           save_figure, train_loss_label)
from seq2seq.translate import Translation


def translation(source: str = "je suis tres content .", output: str = "i am very happy . <eos>") -> Translation:
    src, out = source.split(), output.split()
    weights = torch.rand(len(out), len(src) + 1, generator=torch.Generator().manual_seed(0)).softmax(dim=1)
    return Translation(src, out, weights, -1.5, " ".join(t for t in out if t != "<eos>"))


def labels(ticks) -> list[str]:
    return [tick.get_text() for tick in ticks]


def test_subword_pieces_are_labelled_readably_and_the_word_view_sums_to_one() -> None:
    """Pieces: "_" marks a word start, "·" a piece that continues a word; words: attention summed over a source
    word's pieces and averaged over a produced word's pieces."""
    pieces = translation("\u2581je \u2581tre s \u2581content \u2581.", "\u2581i \u2581am \u2581ver y \u2581. <eos>")
    figure = Figure()
    ax = figure.add_subplot()
    attention_heatmap(ax, pieces.source_tokens, pieces.output_tokens, pieces.attention.numpy())
    assert labels(ax.get_xticklabels()) == ["_je", "_tre", "·s", "_content", "_.", "<eos>"]
    assert labels(ax.get_yticklabels()) == ["_i", "_am", "_ver", "·y", "_.", "<eos>"]
    words = pieces.word_level()
    assert words.source_tokens == ["je", "tres", "content", "."]
    assert words.output_tokens == ["i", "am", "very", ".", "<eos>"]
    assert words.attention.shape == (5, 5)
    assert torch.allclose(words.attention.sum(dim=1), torch.ones(5))
    weights = pieces.attention
    assert torch.allclose(words.attention[2, 1], (weights[2, 1:3].sum() + weights[3, 1:3].sum()) / 2)


def test_heatmap_has_one_label_per_token_in_order() -> None:
    """Rows are the produced tokens, columns the source tokens then <eos>: 4 x 6 weights draw as a 4 x 6 image
    equal to them (a square matrix would not tell a transposed image apart)."""
    t = translation(output="i am happy <eos>")
    weights = t.attention.numpy()
    assert weights.shape == (4, 6)
    ax = Figure().add_subplot()
    image = attention_heatmap(ax, t.source_tokens, t.output_tokens, weights)
    assert labels(ax.get_xticklabels()) == ["je", "suis", "tres", "content", ".", "<eos>"]
    assert list(ax.get_xticks()) == list(range(6))
    assert labels(ax.get_yticklabels()) == ["i", "am", "happy", "<eos>"]
    assert list(ax.get_yticks()) == list(range(4))
    drawn = np.asarray(image.get_array())
    assert drawn.shape == (4, 6), f"the image is {drawn.shape}, expected (produced tokens, source tokens + 1)"
    np.testing.assert_allclose(drawn, weights, err_msg="the image is not the weights, row for row")


def test_heatmap_rejects_weights_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="expected \\(2, 3\\)"):
        attention_heatmap(Figure().add_subplot(), ["a", "b"], ["x", "<eos>"], torch.zeros(2, 2).numpy())


def test_png_is_byte_identical_when_redrawn(tmp_path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    save_figure(attention_figure(translation(), title="je suis tres content ."), first)
    save_figure(attention_figure(translation(), title="je suis tres content ."), second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_vector_formats_follow_the_extension_and_are_reproducible(tmp_path, fmt: str) -> None:
    paths = [tmp_path / f"{name}.{fmt}" for name in "ab"]
    for path in paths:
        save_figure(attention_grid([translation(), translation("tu es grand .", "you are tall .")],
                                   ["one", "two"], columns=2), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes().startswith(b"%PDF" if fmt == "pdf" else b"<?xml")


def test_unknown_extension_is_an_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(Figure(), tmp_path / "x.jpg")


def test_grid_draws_every_sentence_and_blanks_the_rest() -> None:
    figure = attention_grid([translation()] * 5, [f"s{i}" for i in range(5)], columns=3)
    heatmaps = [ax for ax in figure.axes if ax.get_title().startswith("s")]
    assert len(heatmaps) == 5
    assert not any(ax.axison for ax in figure.axes if not ax.get_title() and ax.get_label() != "<colorbar>")


def test_learning_curve_and_comparison_chart(tmp_path) -> None:
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "valid_loss": [3.1, 2.4, 2.2],
                            "valid_bleu": [5.0, 12.0, 20.0]})
    figure = learning_curve(history, title="fra-eng bahdanau")
    assert [line.get_label() for ax in figure.axes for line in ax.get_lines()] == [
        "train loss", "valid loss", "valid BLEU"]
    assert train_loss_label(0.3, 0.1) == "train loss (with dropout 0.3, label smoothing 0.1)"
    assert train_loss_label(0.0, 0.1) == "train loss (with label smoothing 0.1)"
    assert train_loss_label(0.0, 0.0) == "train loss"
    labelled = learning_curve(history, train_label=train_loss_label(0.3, 0.0))
    assert labelled.axes[0].get_lines()[0].get_label() == "train loss (with dropout 0.3)"
    table = pd.DataFrame({"pair": ["fra-eng", "fra-eng"], "model": ["a", "b"], "greedy_bleu": [20.0, 25.0],
                          "bleu": [22.0, 27.0], "bleu_ci_low": [20.5, 25.0], "bleu_ci_high": [23.0, 29.0]})
    chart = comparison_chart(table)
    heights = [bar.get_height() for bar in chart.axes[0].patches]
    assert heights == [20.0, 25.0, 22.0, 27.0]
    assert [text.get_text() for text in chart.axes[0].texts] == ["20.0", "25.0", "22.0", "27.0"]
    renderer = FigureCanvasAgg(chart).get_renderer()
    legend_box = chart.axes[0].get_legend().get_window_extent(renderer)
    axes_box = chart.axes[0].get_window_extent(renderer)
    assert legend_box.y0 >= axes_box.y1 - 1  # the legend sits above the bars, not on them
    save_figure(chart, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0
