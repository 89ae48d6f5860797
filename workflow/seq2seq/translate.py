"""Translate sentences with a trained model, in batches: what the evaluate and figures stages and the
``seq2seq-translate`` command (:mod:`seq2seq.translate_command`) decode with."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .batching import fit_source
from .corpus import normalize
from .search import decode_in_batches
from .tokens import UNK_INDEX
from .vocab import Vocabulary, word_label, word_spans

LOG = logging.getLogger(__name__)


@dataclass
class Translation:
    """One decoded sentence.

    source_tokens: labels of the source tokens the model read (after normalization and any cut), without
    ``<eos>``: words, or subword pieces with their ``▁`` word-start marks.
    output_tokens: labels of the produced tokens, ending with ``"<eos>"`` unless cut at the maximum length.
    attention: float tensor [len(output_tokens), len(source_tokens) + 1]; the last column is the source <eos>.
    score: summed log-probability of the output under the model.
    text: the translation as plain text (detokenized), what BLEU is computed on.
    """

    source_tokens: list[str]
    output_tokens: list[str]
    attention: Tensor
    score: float
    text: str

    def word_level(self) -> "Translation":
        """The same translation in words: attention summed over a source word's pieces and averaged over a
        produced word's pieces (rows still sum to 1); unchanged for a word vocabulary."""
        source_spans = word_spans(self.source_tokens)
        output_spans = word_spans(self.output_tokens)
        columns = [*source_spans, (len(self.source_tokens), len(self.source_tokens) + 1)]  # <eos> stays alone
        summed = torch.stack([self.attention[:, a:b].sum(dim=1) for a, b in columns], dim=1)  # [T, words+1]
        weights = torch.stack([summed[a:b].mean(dim=0) for a, b in output_spans]) if output_spans else summed[:0]
        return Translation([word_label(self.source_tokens[a:b]) for a, b in source_spans],
                           [word_label(self.output_tokens[a:b]) for a, b in output_spans], weights, self.score,
                           self.text)


def prepare_sources(sentences: Sequence[str], normalization: str | None, source_vocab: Vocabulary,
                    max_source_length: int | None, names: Sequence[str] | None = None
                    ) -> tuple[list[list[int]], list[list[str]]]:
    """Sentences -> (source ids per sentence, ending with <eos>; labels of the tokens read, without <eos>).

    ``normalization`` ("ascii" | "unicode") is applied with :func:`seq2seq.corpus.normalize`; None means the
    sentences are already normalized. Unknown words become ``<unk>``. A model with a fixed source length (the
    tutorial attention: ``max_source_length`` tokens including ``<eos>``) gets longer sentences cut, with a
    logged warning naming the sentence (``names``, default "sentence N").
    """
    if normalization is not None:
        sentences = [normalize(s, normalization) for s in sentences]
    names = names or [f"sentence {number}" for number in range(1, len(sentences) + 1)]
    sources, labels = [], []
    unknown = total = 0
    for name, sentence in zip(names, sentences):
        full = source_vocab.encode(sentence)
        ids = fit_source(full, max_source_length)
        if len(ids) < len(full):
            LOG.warning("%s has %d tokens but this model reads at most %d (plus <eos>): translating only %r",
                        name, len(full) - 1, len(ids) - 1, source_vocab.decode(ids))
        unknown += ids.count(UNK_INDEX)
        total += len(ids) - 1
        sources.append(ids)
        labels.append(source_vocab.labels(ids[:-1]))
    if unknown:
        LOG.info("%d of %d source tokens are not in the vocabulary and are read as <unk>", unknown, total)
    return sources, labels


def translate_sentences(model: torch.nn.Module, sentences: Sequence[str], source_vocab: Vocabulary,
                        target_vocab: Vocabulary, normalization: str | None, *, max_len: int, batch_size: int,
                        beam_size: int = 1, alpha: float = 0.0, names: Sequence[str] | None = None
                        ) -> list[Translation]:
    """Translate sentences in batches of similar length (for speed); results come back in input order.

    ``beam_size`` 1 uses :func:`seq2seq.search.greedy`, larger ones :func:`seq2seq.search.beam_search` with
    length-penalty exponent ``alpha``. Runs on the device of the model's parameters. ``names`` label the
    sentences in warnings.
    """
    if not sentences:
        return []
    sources, labels = prepare_sources(sentences, normalization, source_vocab,
                                      getattr(model, "max_source_length", None), names)
    found = decode_in_batches(model, sources, max_len=max_len, batch_size=batch_size, beam_size=beam_size,
                              alpha=alpha)
    return [Translation(source, target_vocab.labels(ids), attention, score, target_vocab.decode(ids))
            for source, ids, score, attention in zip(labels, found.tokens, found.scores, found.attention)]
