"""The ``seq2seq-translate`` command: translate sentences with a trained checkpoint.

    seq2seq-translate --model results/fra-eng/bahdanau/model.pt "je suis content ." "tu es grand ."
    printf 'je suis content .\\ntu es grand .\\n' | seq2seq-translate --model model.pt --beam 5

It needs nothing but the checkpoint: it carries the model, both vocabularies and the normalization. Every user
mistake is one line and exit status 2, before anything is translated or written.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from typing import Sequence

from .checkpoint import load_model
from .corpus import normalize, utf8_lines
from .devices import resolve_device
from .logs import InputError
from .schema import subschema
from .settings import EvaluationSettings
from .tokens import EOS
from .translate import translate_sentences

LOG = logging.getLogger("seq2seq.translate")
EVALUATION = EvaluationSettings()  # the evaluate stage's defaults (the config schema's)
MAX_ALPHA = subschema("evaluation.length_penalty")["maximum"]
MAX_LEN = subschema("evaluation.max_length")["maximum"]  # search allocates room for it from the start


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-translate",
        description="Translate sentences with a trained checkpoint (model.pt). Sentences come from the "
                    "arguments or, when there are none, one per line from standard input (UTF-8); one line is "
                    "printed per input, an empty one for an empty input.")
    parser.add_argument("sentences", nargs="*", help="sentences to translate (default: read stdin)")
    parser.add_argument("--model", required=True, help="checkpoint written by the train stage (model.pt)")
    parser.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy search (default)")
    parser.add_argument("--alpha", type=float, default=EVALUATION.length_penalty,
                        help=f"GNMT length-penalty exponent for beam search (default {EVALUATION.length_penalty})")
    parser.add_argument("--max-len", type=int, default=EVALUATION.max_length,
                        help=f"longest output in tokens (default {EVALUATION.max_length})")
    parser.add_argument("--plot", metavar="FILE", help="save the attention heatmap of the first sentence "
                        "(format from the extension: png, svg, pdf)")
    parser.add_argument("--word-level", action="store_true", help="with --plot and a subword model: draw the "
                        "attention over words (summed over a source word's pieces, averaged over a produced word's)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=EVALUATION.batch_size,
                        help=f"sentences translated together (default {EVALUATION.batch_size})")
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
    if stdin is None:  # started with standard input closed (`<&-`)
        return []
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
    checkpoint, a bad argument or input, or no input worth translating), 1 when the translations could not be
    written, 130 on Ctrl-C, each with one line saying why; 141 (as a process killed by SIGPIPE) when the reader
    of the output went away (`| head`), silently."""
    try:
        return _translate(argv)
    except KeyboardInterrupt:
        print("seq2seq-translate: interrupted", file=sys.stderr)
        return 130


def _translate(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.beam < 1 or args.max_len < 1 or args.batch_size < 1:
        parser.error("--beam, --max-len and --batch-size must be at least 1")
    if args.word_level and not args.plot:
        parser.error("--word-level draws the --plot's attention over words: give --plot FILE too (the translations "
                     "are the same either way)")
    if args.max_len > MAX_LEN:
        parser.error(f"--max-len must be at most {MAX_LEN} (as the pipeline's evaluation.max_length): search "
                     f"holds room for that many tokens of every sentence from its first step, got {args.max_len}")
    # beam search stops early by a bound that holds for alpha >= 0 only (and not for NaN); a huge alpha overflows
    if not 0 <= args.alpha <= MAX_ALPHA:
        parser.error(f"--alpha must be from 0 to {MAX_ALPHA} (as the pipeline's evaluation.length_penalty), "
                     f"got {args.alpha}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CommandFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        if args.plot:
            from .plots import check_figure_path  # here: matplotlib and pandas would slow every other call

            check_figure_path(args.plot)
        inputs = read_inputs(args.sentences, sys.stdin)
        if not inputs:
            raise InputError("nothing to translate: give sentences as arguments or one per line on stdin")
        device = resolve_device(args.device, "--device")
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
    # UTF-8 whatever the locale, as the input is read (a C locale's ASCII stdout failed at the first accent)
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", line_buffering=False) \
        if getattr(sys.stdout, "buffer", None) is not None else sys.stdout
    try:
        for index, (label, _) in enumerate(inputs):
            translation = by_input.get(index)
            if translation is not None and translation.output_tokens[-1:] != [EOS]:
                LOG.warning("the translation of %s was cut at --max-len %d tokens", label, args.max_len)
            out.write((translation.text if translation is not None else "") + "\n")
        out.flush()
        status = 0
    except BrokenPipeError:  # the reader is gone (`| head -1`): what it wanted was written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        status = 141
    except OSError as error:
        print(f"seq2seq-translate: error: cannot write the translations to stdout: {error.strerror or error}",
              file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    finally:
        if out is not sys.stdout:
            out.detach()  # sys.stdout keeps the buffer
    if args.plot:
        from .plots import attention_figure, save_figure

        first = translations[0].word_level() if args.word_level else translations[0]
        save_figure(attention_figure(first, title=f"{' '.join(first.source_tokens)}\n-> {first.text}"),
                    args.plot)
        LOG.info("attention heatmap of %s saved to %s", inputs[next(iter(sources))][0], args.plot)
    return status


if __name__ == "__main__":
    sys.exit(main())
