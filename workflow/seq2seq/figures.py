"""The figures stage: attention heatmaps of chosen test sentences (one file each, and a grid of them) and the
learning curve, drawn with :mod:`seq2seq.plots`."""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np

from .checkpoint import load_model
from .corpus import normalize, read_split
from .formats import read_history
from .logs import InputError
from .metrics import sentence_bleu
from .plots import attention_figure, attention_grid, figure_format, learning_curve, save_figure, train_loss_label
from .settings import FigureSettings
from .translate import translate_sentences

LOG = logging.getLogger(__name__)


def choose_test_sentences(count: int, available: int, seed: int) -> list[int]:
    """Indices of ``count`` test pairs: a seeded random sample in split order (repeats only if too few)."""
    if available == 0 or count == 0:
        return []
    rng = np.random.default_rng(seed)
    if count <= available:
        return sorted(rng.choice(available, size=count, replace=False).tolist())
    return [i % available for i in range(count)]


def check_figure_formats(paths: Sequence[str | os.PathLike[str]], fmt: str) -> None:
    """InputError naming the first of ``paths`` whose extension is not a supported figure format or not ``fmt``
    (figures.format: the files are saved in the format of their extension, so a mismatch would be ignored)."""
    for path in paths:
        try:
            extension = figure_format(path)
        except ValueError as error:
            raise InputError(str(error)) from None
        if extension != fmt:
            raise InputError(f"{path}: a .{extension} file, but the figure format (figures.format, --format) is "
                             f"{fmt}: name it .{fmt} or set the format to {extension}")


def draw_figures(model: str | os.PathLike[str], test: str | os.PathLike[str], history: str | os.PathLike[str],
                 attention: Sequence[str | os.PathLike[str]], grid: str | os.PathLike[str],
                 curve: str | os.PathLike[str], settings: FigureSettings) -> None:
    """Heatmaps of ``settings.count`` sampled test sentences then of the extra ``settings.sentences`` (raw text,
    normalized like the training data), one file each in ``attention``, the same sentences as one ``grid``, and
    the learning ``curve`` from ``history``. Sentences are decoded with greedy search (the heatmaps show the
    attention of the greedy path); ``settings.word_level`` draws a subword model's attention over words. Test
    sentences are titled with their sentence BLEU against the reference; the extra ones have no reference.
    Every file's extension must be ``settings.format`` (InputError naming the file before anything is drawn).
    """
    check_figure_formats([*attention, grid, curve], settings.format)
    wanted = settings.count + len(settings.sentences)
    if len(attention) != wanted:  # before the model is loaded
        raise InputError(f"{len(attention)} attention figure paths given for {wanted} sentences ({settings.count} "
                         f"test sentences (figures.count, --count) + {len(settings.sentences)} from the config)")
    system, source_vocab, target_vocab, metadata = load_model(model, device="cpu")
    pairs = read_split(test)
    epochs = read_history(history)  # every input read before the first figure is saved
    chosen = [pairs[i] for i in choose_test_sentences(settings.count, len(pairs), settings.seed)]
    if settings.count > len(pairs):
        LOG.warning("figures.count is %d but the test split has only %d pairs: some are drawn twice",
                    settings.count, len(pairs))
    sources = [s for s, _ in chosen] + [normalize(s, metadata.normalization) for s in settings.sentences]
    translations = translate_sentences(system, sources, source_vocab, target_vocab, None,
                                       max_len=settings.max_length, batch_size=max(1, len(sources)))
    if settings.word_level:
        translations = [t.word_level() for t in translations]
    references = [t for _, t in chosen] + [None] * len(settings.sentences)
    titles = []
    for source, translation, reference in zip(sources, translations, references):
        head = f"{source}\n-> {translation.text}"
        if reference is None:
            titles.append(f"{head}\n(no reference: sentence from the config)")
        else:
            titles.append(f"{head}\nsentence BLEU {sentence_bleu(translation.text, reference):.1f} "
                          f"(reference: {reference})")
    for translation, title, path in zip(translations, titles, attention):
        save_figure(attention_figure(translation, title), path)
    save_figure(attention_grid(translations, titles, settings.grid_columns), grid)
    name = " ".join(str(v) for v in (metadata.pair, metadata.model_name) if v)
    smoothing = float(metadata.training.get("label_smoothing", 0.0))
    save_figure(learning_curve(epochs, name,
                               train_loss_label(getattr(system.config, "dropout", 0.0), smoothing)), curve)
    LOG.info("drew %d attention heatmaps, a grid and the learning curve", len(translations))
