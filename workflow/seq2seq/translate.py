"""Translate sentences with a trained model, as a library (batched) and as the ``seq2seq-translate`` command.

    seq2seq-translate --model results/fra-eng/bahdanau/model.pt "je suis content ." "tu es grand ."
    printf 'je suis content .\\ntu es grand .\\n' | seq2seq-translate --model model.pt --beam 5

The command needs nothing but the checkpoint: it carries the model, both vocabularies and the normalization.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .batching import fit_source
from .checkpoint import load_model
from .corpus import normalize, utf8_lines
from .devices import resolve_device
from .logs import InputError
from .plots import attention_figure, check_figure_path, save_figure
from .search import decode_in_batches
from .vocab import UNK_INDEX, Vocabulary, word_label, word_spans

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
                    max_source_length: int | None, log: logging.Logger = LOG, names: Sequence[str] | None = None
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
            log.warning("%s has %d tokens but this model reads at most %d (plus <eos>): translating only %r",
                        name, len(full) - 1, len(ids) - 1, source_vocab.decode(ids))
        unknown += ids.count(UNK_INDEX)
        total += len(ids) - 1
        sources.append(ids)
        labels.append(source_vocab.labels(ids[:-1]))
    if unknown:
        log.info("%d of %d source tokens are not in the vocabulary and are read as <unk>", unknown, total)
    return sources, labels


def translate_sentences(model: torch.nn.Module, sentences: Sequence[str], source_vocab: Vocabulary,
                        target_vocab: Vocabulary, normalization: str | None, beam_size: int = 1,
                        alpha: float = 0.0, max_len: int = 30, batch_size: int = 64,
                        log: logging.Logger = LOG, names: Sequence[str] | None = None) -> list[Translation]:
    """Translate sentences in batches of similar length (for speed); results come back in input order.

    ``beam_size`` 1 uses :func:`seq2seq.search.greedy`, larger ones :func:`seq2seq.search.beam_search` with
    length-penalty exponent ``alpha``. Runs on the device of the model's parameters. ``names`` label the
    sentences in warnings.
    """
    if not sentences:
        return []
    sources, labels = prepare_sources(sentences, normalization, source_vocab,
                                      getattr(model, "max_source_length", None), log, names)
    found = decode_in_batches(model, sources, beam_size, alpha, max_len, batch_size)
    return [Translation(source, target_vocab.labels(ids), attention, score, target_vocab.decode(ids))
            for source, ids, score, attention in zip(labels, found.tokens, found.scores, found.attention)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-translate",
        description="Translate sentences with a trained checkpoint (model.pt). Sentences come from the "
                    "arguments or, when there are none, one per line from standard input (UTF-8); one line is "
                    "printed per input, an empty one for an empty input.")
    parser.add_argument("sentences", nargs="*", help="sentences to translate (default: read stdin)")
    parser.add_argument("--model", required=True, help="checkpoint written by the train stage (model.pt)")
    parser.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy search (default)")
    parser.add_argument("--alpha", type=float, default=0.6, help="GNMT length-penalty exponent for beam search")
    parser.add_argument("--max-len", type=int, default=30, help="longest output in tokens (default 30)")
    parser.add_argument("--plot", metavar="FILE", help="save the attention heatmap of the first sentence "
                        "(format from the extension: png, svg, pdf)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences translated together")
    return parser


class _CommandFormatter(logging.Formatter):
    """``seq2seq-translate: warning: ...`` for warnings and errors, ``seq2seq-translate: ...`` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"seq2seq-translate: {level}{record.getMessage()}"


def read_inputs(arguments: Sequence[str], stdin) -> list[tuple[str, str]]:
    """(label, text) per input: the arguments, or else the lines of ``stdin`` (read as bytes and decoded as
    UTF-8 whatever the locale). InputError for text that is not UTF-8, naming the argument or line."""
    if arguments:
        inputs = []
        for number, text in enumerate(arguments, start=1):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # undecodable argv bytes arrive as surrogate escapes
                raise InputError(f"argument {number} is not UTF-8 text") from None
            inputs.append((f"argument {number}", text))
        return inputs
    stream = getattr(stdin, "buffer", None)
    lines = utf8_lines(stream, "stdin") if stream is not None else enumerate(
        (line.rstrip("\r\n") for line in stdin), start=1)
    return [(f"line {number} of stdin", text) for number, text in lines]


def _sources_to_translate(inputs: Sequence[tuple[str, str]], normalization: str,
                          longest_trained: int | None) -> dict[int, str]:
    """{input index: normalized source text} of the inputs worth translating, warning about the others (empty)
    and about inputs longer than the model was trained on (translated anyway; a model that reads a fixed
    length cuts them, with a warning of :func:`prepare_sources`)."""
    sources: dict[int, str] = {}
    for index, (label, text) in enumerate(inputs):
        normalized = normalize(text, normalization)
        words = len(normalized.split())
        if not words:
            LOG.warning("%s is empty%s: nothing to translate, an empty line is printed for it", label,
                        " after normalization" if text.strip() else "")
            continue
        if longest_trained and words > longest_trained:
            LOG.warning("%s has %d words, the model was trained on sentences of at most %d: translated anyway "
                        "(expect a poorer translation)", label, words, longest_trained)
        sources[index] = normalized
    return sources


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status: 0, or 2 when nothing was translated (an unusable
    checkpoint, a bad argument or input, or no input worth translating), with one line saying why."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.beam < 1 or args.max_len < 1 or args.batch_size < 1:
        parser.error("--beam, --max-len and --batch-size must be at least 1")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CommandFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        if args.plot:
            check_figure_path(args.plot)
        inputs = read_inputs(args.sentences, sys.stdin)
        if not inputs:
            raise InputError("nothing to translate: give sentences as arguments or one per line on stdin")
        device = resolve_device(args.device)
        model, source_vocab, target_vocab, metadata = load_model(args.model, device=device)
        sources = _sources_to_translate(inputs, metadata.normalization, metadata.longest_source_words)
        if not sources:
            raise InputError(f"nothing to translate: every input is empty ({len(inputs)} given)")
    except (InputError, ValueError) as error:  # one line, no traceback
        print(f"seq2seq-translate: error: {error}", file=sys.stderr)
        return 2
    translations = translate_sentences(model, list(sources.values()), source_vocab, target_vocab,
                                       normalization=None, beam_size=args.beam, alpha=args.alpha,
                                       max_len=args.max_len, batch_size=args.batch_size,
                                       names=[inputs[index][0] for index in sources])
    by_input = dict(zip(sources, translations))
    for index, (label, _) in enumerate(inputs):
        translation = by_input.get(index)
        if translation is not None and translation.output_tokens[-1:] != ["<eos>"]:
            LOG.warning("the translation of %s was cut at --max-len %d tokens", label, args.max_len)
        print(translation.text if translation is not None else "")
    if args.plot:
        first = translations[0]
        save_figure(attention_figure(first, title=f"{' '.join(first.source_tokens)}\n-> {first.text}"),
                    args.plot)
        LOG.info("attention heatmap of %s saved to %s", inputs[next(iter(sources))][0], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
