"""The seq2seq-translate command: arguments and stdin, beam search and plots, and every mistake as one line and
exit status 2 before anything is translated or written."""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys

import pytest
import torch

from helpers import model_config, save_tiny_checkpoint, tiny_pairs
from seq2seq import plots
from seq2seq import translate_command as translate
from seq2seq.checkpoint import cpu_state, load_model, save_checkpoint, save_model
from seq2seq.corpus import normalize
from seq2seq.metadata import Metadata
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.translate import translate_sentences
from seq2seq.translate_command import main
from seq2seq.vocab import SentencePieceVocabulary


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")
    return path


def test_command_translates_arguments(checkpoint, capsys) -> None:
    assert main(["--model", str(checkpoint), "Je suis content.", "tu es grand ."]) == 0
    assert capsys.readouterr().out.splitlines() == ["i am happy .", "you are tall ."]


def test_command_reads_stdin_with_beam_search_and_saves_a_plot(checkpoint, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Nous sommes très fatigué.\nelle est zorglub .\n"))
    plot = tmp_path / "attention.svg"
    assert main(["--model", str(checkpoint), "--beam", "3", "--alpha", "0.6", "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "we are very tired ."
    assert len(lines) == 2 and lines[1].startswith("she is")
    assert plot.read_bytes().startswith(b"<?xml")


# Inputs on which the tiny model's greedy and beam searches disagree (greedy repeats a word or drops the subject).
DIFFERENT_UNDER_BEAM = ["tres fatigue", "riche es n nous malade", "content nous grand riche suis", "tres pret"]


def test_beam_option_decodes_with_the_packages_beam_search_at_that_size(checkpoint, capsys) -> None:
    """--beam 3 --alpha 0.6 prints what beam search of size 3 with that length penalty finds, which differs from
    the greedy translation on these inputs (so a command that ignored --beam would print the greedy one)."""
    model, source_vocab, target_vocab, _ = load_model(checkpoint, device="cpu")
    options = {"max_len": 30, "batch_size": 64}
    greedy = [t.text for t in translate_sentences(model, DIFFERENT_UNDER_BEAM, source_vocab, target_vocab, None,
                                                  **options)]
    beam = [t.text for t in translate_sentences(model, DIFFERENT_UNDER_BEAM, source_vocab, target_vocab, None,
                                                beam_size=3, alpha=0.6, **options)]
    assert greedy != beam, f"greedy and beam search agree on {DIFFERENT_UNDER_BEAM}: choose other inputs"
    assert main(["--model", str(checkpoint), "--beam", "3", "--alpha", "0.6", "--max-len", "30", "--batch-size",
                 "64", *DIFFERENT_UNDER_BEAM]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == beam, f"printed {printed}, beam search finds {beam} (greedy: {greedy})"


@pytest.fixture(scope="module")
def subword_checkpoint(tmp_path_factory):
    """An untrained GRU model over sentencepiece vocabularies of the tiny corpus (only the tokens count)."""
    pairs = [(normalize(fr, "unicode"), normalize(en, "unicode")) for en, fr in tiny_pairs()]
    source = SentencePieceVocabulary.train([s for s, _ in pairs], 60, "unigram")
    target = SentencePieceVocabulary.train([t for _, t in pairs], 60, "unigram")
    torch.manual_seed(0)
    model = GRUSeq2Seq(model_config(len(source), len(target), "bahdanau"))
    path = tmp_path_factory.mktemp("subword") / "model.pt"
    save_model(path, model.config, cpu_state(model), source, target, Metadata(normalization="unicode"))
    return path, source


@pytest.mark.parametrize("word_level", [False, True])
def test_word_level_plots_a_subword_models_attention_over_words(subword_checkpoint, tmp_path, monkeypatch,
                                                               capsys, word_level) -> None:
    """--word-level: the heatmap's columns are the source words then <eos> and its rows the produced words (no
    piece marks); without it, the pieces the model read."""
    path, source_vocab = subword_checkpoint
    sentence = "nous sommes très fatigué ."
    pieces = source_vocab.labels(source_vocab.encode(sentence)[:-1])
    assert len(pieces) > len(sentence.split()), f"every word is one piece ({pieces}): choose another sentence"
    drawn = []

    def spy(translation, title=""):
        figure = real(translation, title)
        drawn.append((translation, figure))
        return figure

    real = plots.attention_figure
    monkeypatch.setattr(plots, "attention_figure", spy)
    plot = tmp_path / "attention.svg"
    arguments = ["--model", str(path), "--max-len", "6", "--plot", str(plot), sentence]
    assert main(arguments + (["--word-level"] if word_level else [])) == 0
    capsys.readouterr()
    [(shown, figure)] = drawn
    columns = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    rows = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    if word_level:
        assert shown.source_tokens == sentence.split(), shown.source_tokens
        assert columns == [*sentence.split(), "<eos>"], f"the columns are {columns}, not the source words"
        assert rows == shown.output_tokens, f"the rows are {rows}, not the produced words"
        assert not any("\u2581" in t or t.startswith(("_", "\u00b7")) for t in rows), f"pieces among the rows: {rows}"
        assert shown.attention.shape == (len(shown.output_tokens), len(sentence.split()) + 1)
    else:
        assert shown.source_tokens == pieces
        assert len(columns) == len(pieces) + 1 and columns[0].startswith("_") and columns[-1] == "<eos>", columns
    assert plot.read_bytes().startswith(b"<?xml")


def _one_error_line(capsys) -> str:
    """The command's stderr, checked to be exactly one error line without a traceback."""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("seq2seq-translate: error: "), err
    return err.strip()


def test_missing_or_broken_checkpoint_is_one_clear_error(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    assert main(["--model", str(missing), "je suis content ."]) == 2
    assert _one_error_line(capsys) == f"seq2seq-translate: error: {missing}: checkpoint file not found"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["--model", str(broken), "je suis content ."]) == 2
    assert _one_error_line(capsys) == (f"seq2seq-translate: error: {broken}: not a checkpoint (not a zip file as "
                                       f"torch.save writes)")


def test_a_file_holding_other_python_objects_is_refused_without_torchs_advice(tmp_path, capsys) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"format": 2, "payload": argparse.Namespace(x=1)}, path)  # needs a full unpickler
    assert main(["--model", str(path), "je suis content ."]) == 2
    err = _one_error_line(capsys)
    assert err == (f"seq2seq-translate: error: {path}: refused: the file holds Python objects other than tensors "
                   f"and plain data, which this pipeline never writes")
    assert "weights_only" not in err


@pytest.mark.parametrize("damage", ["bytes", "nan"])
def test_a_damaged_checkpoint_is_refused(checkpoint, tmp_path, capsys, damage) -> None:
    """Bytes damaged in the middle still unpickle, into garbage weights: the digest written with the weights
    catches them; weights that are not finite are refused too."""

    path = tmp_path / "damaged.pt"
    if damage == "bytes":
        data = bytearray(checkpoint.read_bytes())
        start = data.index(b"data/0") + 200  # inside the stored bytes of the first tensor
        data[start:start + 16] = bytes(16)
        path.write_bytes(bytes(data))
        expected = "damaged checkpoint: its content does not match the sha256 stored when it was written"
    else:
        payload = torch.load(checkpoint, weights_only=True)
        payload["model_state"]["decoder.out.bias"][3] = float("nan")
        save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "weights_sha256")})
        expected = "damaged checkpoint: decoder.out.bias holds NaN or infinite values"
    assert main(["--model", str(path), "je suis content ."]) == 2
    assert _one_error_line(capsys) == f"seq2seq-translate: error: {path}: {expected}"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("inputs", [["", "   "], "\n  \n"])
def test_empty_input_invents_no_sentence(checkpoint, capsys, monkeypatch, inputs) -> None:
    if isinstance(inputs, str):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(inputs.encode())))
        arguments = []
    else:
        arguments = inputs
    assert main(["--model", str(checkpoint), *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[-1] == "seq2seq-translate: error: nothing to translate: every input is empty (2 given)"
    assert len(lines) == 3 and all("is empty" in line and "warning" in line for line in lines[:2])


def test_an_empty_line_among_others_is_skipped_with_a_warning_and_keeps_the_line_count(checkpoint, capsys,
                                                                                          monkeypatch) -> None:

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"je suis content .\n\n--- 42 ---\ntu es grand .\n")))
    assert main(["--model", str(checkpoint)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["i am happy .", "", "", "you are tall ."]
    assert ("seq2seq-translate: warning: line 2 of stdin is empty: nothing to translate, an empty line is printed "
            "for it") in captured.err
    assert "line 3 of stdin is empty after normalization" in captured.err


def test_no_input_at_all_is_an_error(checkpoint, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["--model", str(checkpoint)]) == 2
    assert _one_error_line(capsys) == ("seq2seq-translate: error: nothing to translate: give sentences as arguments "
                                       "or one per line on stdin")


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_stdin_that_is_not_utf8_names_the_line_whatever_the_locale(checkpoint, tmp_path, locale) -> None:
    """Run as a process, so that the locale really is the one the user has."""
    env = {**os.environ, "LC_ALL": locale, "LANG": locale, "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    result = subprocess.run([sys.executable, "-m", "seq2seq.translate_command", "--model", str(checkpoint)],
                            input="je suis content .\ntu es très grand .\n".encode("latin-1"), capture_output=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode().strip() == ("seq2seq-translate: error: stdin:2: not UTF-8 text (byte 8 of the "
                                              "line: b'\\xe8')")


def test_a_translation_without_a_plot_loads_no_plotting_library(checkpoint) -> None:
    """matplotlib and pandas are for --plot only: imported on every call, they added a second to each (README)."""
    code = ("import sys; from seq2seq.translate_command import main; "
            "status = main(['--model', sys.argv[1], 'je suis content .']); "
            "print(sorted(name for name in ('matplotlib', 'pandas', 'seq2seq.plots') if name in sys.modules)); "
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, str(checkpoint)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["i am happy .", "[]"]


def test_an_argument_that_is_not_utf8_is_named(checkpoint, capsys) -> None:
    assert main(["--model", str(checkpoint), "je suis", "tr\udce8s grand"]) == 2  # how Python passes bad argv bytes
    assert _one_error_line(capsys) == "seq2seq-translate: error: argument 2 is not UTF-8 text"


def test_input_longer_than_the_training_sentences_is_translated_with_a_warning(checkpoint, tmp_path, capsys) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    payload["metadata"]["longest_source_words"] = 4
    path = tmp_path / "model.pt"
    save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "weights_sha256")})
    assert main(["--model", str(path), "je suis tres tres tres content ."]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert ("seq2seq-translate: warning: argument 1 has 7 words, the model was trained on sentences of at most 4: "
            "translated anyway (expect a poorer translation)") in captured.err


def test_input_longer_than_a_fixed_length_attention_reads_is_cut_with_a_warning(tmp_path, capsys) -> None:
    path, _ = save_tiny_checkpoint(tmp_path / "tutorial.pt", attention="tutorial", steps=10)
    limit = torch.load(path, weights_only=True)["model_config"]["max_length"] - 1
    words = ["je"] * (limit + 3)
    assert main(["--model", str(path), " ".join(words)]) == 0
    err = capsys.readouterr().err
    assert (f"seq2seq-translate: warning: argument 1 has {len(words)} tokens but this model reads at most {limit} "
            f"(plus <eos>): translating only {' '.join(words[:limit])!r}") in err


def test_output_cut_at_max_len_is_said(checkpoint, capsys) -> None:
    assert main(["--model", str(checkpoint), "--max-len", "2", "je suis tres content ."]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.split()) == 2
    assert "seq2seq-translate: warning: the translation of argument 1 was cut at --max-len 2 tokens" in captured.err


@pytest.mark.parametrize(("name", "reason"), [
    ("attention.xyz", "unsupported figure format ('.xyz'; use .png, .svg or .pdf)"),
    ("attention", "unsupported figure format (no extension; use .png, .svg or .pdf)"),
    ("missing/attention.png", "the folder {tmp}/missing does not exist"),
    ("file.txt/attention.png", "the folder {tmp}/file.txt does not exist"),
])
def test_a_bad_plot_path_is_one_line_before_anything_is_translated(checkpoint, tmp_path, capsys, monkeypatch,
                                                                   name, reason) -> None:

    (tmp_path / "file.txt").write_text("a file, not a folder")
    monkeypatch.setattr(translate, "translate_sentences", lambda *a, **k: pytest.fail("translated anyway"))
    plot = tmp_path / name
    assert translate.main(["--model", str(checkpoint), "--plot", str(plot), "je suis content ."]) == 2
    assert _one_error_line(capsys) == f"seq2seq-translate: error: {plot}: {reason.format(tmp=tmp_path)}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_plot_path_that_is_not_a_regular_file_is_one_line_before_anything_is_translated(
        checkpoint, tmp_path, capsys, monkeypatch, kind) -> None:
    """An existing folder named like a figure (which the save cannot replace: it failed with a traceback after
    printing the translation) or another path that is not a regular file (a FIFO) is refused up front, as the
    README promises for every mistake, and left as it was."""
    plot = tmp_path / "attention.png"
    if kind == "folder":
        plot.mkdir()
        (plot / "keep.txt").write_text("not to be touched")
        reason = "is a folder, not a file"
    else:
        os.mkfifo(plot)
        reason = "exists and is not a regular file"
    monkeypatch.setattr(translate, "translate_sentences", lambda *a, **k: pytest.fail("translated anyway"))
    assert translate.main(["--model", str(checkpoint), "--plot", str(plot), "je suis content ."]) == 2
    assert _one_error_line(capsys) == f"seq2seq-translate: error: {plot}: {reason}"
    assert capsys.readouterr().out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["attention.png"]
    assert kind == "fifo" or (plot / "keep.txt").read_text() == "not to be touched"


def test_an_unwritable_plot_folder_is_one_line(checkpoint, tmp_path, capsys, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)  # root may write anywhere: simulate the refusal
    plot = tmp_path / "attention.png"
    assert main(["--model", str(checkpoint), "--plot", str(plot), "je suis content ."]) == 2
    assert _one_error_line(capsys) == (f"seq2seq-translate: error: {plot}: cannot write to the folder {tmp_path} "
                                       f"(Permission denied)")


@pytest.mark.parametrize("change", ["format", "vocabulary"])
def test_a_checkpoint_of_another_release_or_with_a_mismatched_vocabulary_is_one_line(checkpoint, tmp_path, capsys,
                                                                                      change) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    path = tmp_path / f"{change}.pt"
    if change == "format":
        payload["format"] = 2
        torch.save(payload, path)
        expected = (f"{path}: checkpoint format 2 of another release, this one reads formats 3 and 4; retrain the "
                    f"model (snakemake -R train)")
    else:
        payload["target_vocab"]["tokens"] = payload["target_vocab"]["tokens"][:-1]
        save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "sha256")})
        expected = f"{path}: vocabulary sizes do not match the model config"
    assert main(["--model", str(path), "je suis content ."]) == 2
    assert _one_error_line(capsys) == f"seq2seq-translate: error: {expected}"


@pytest.mark.parametrize("alpha", ["-0.5", "nan", "10.5", "inf"])
def test_a_length_penalty_out_of_range_is_refused(checkpoint, capsys, monkeypatch, alpha) -> None:
    """Beam search's early stop (no live hypothesis can beat the best finished one) holds for alpha >= 0 only;
    a huge alpha overflows the penalty of a long output (alpha 500 raised OverflowError), inf ranks nothing."""
    monkeypatch.setattr(translate, "translate_sentences", lambda *a, **k: pytest.fail("translated anyway"))
    with pytest.raises(SystemExit) as exited:
        translate.main(["--model", str(checkpoint), "--beam", "3", "--alpha", alpha, "je suis content ."])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"seq2seq-translate: error: --alpha must be from 0 to 10 (as the pipeline's evaluation.length_penalty), "
        f"got {float(alpha)}")


def test_the_length_penalty_reaches_beam_search(checkpoint, capsys, monkeypatch) -> None:
    """--alpha is the exponent beam search uses (every other test passes the default, 0.6, which a command that
    dropped the option would also use)."""
    used = []

    def spy(*args, **kwargs):
        used.append((kwargs.get("beam_size"), kwargs.get("alpha")))
        return translate_sentences(*args, **kwargs)

    monkeypatch.setattr(translate, "translate_sentences", spy)
    assert main(["--model", str(checkpoint), "--beam", "3", "--alpha", "2.5", "je suis content ."]) == 0
    assert used == [(3, 2.5)]
    assert main(["--model", str(checkpoint), "--beam", "3", "--alpha", "10", "je suis content ."]) == 0  # the bound
    assert used[-1] == (3, 10.0)
    at_2_5, at_10 = capsys.readouterr().out.splitlines()
    assert at_2_5 == "i am happy ." and len(at_10.split()) > 4  # a large alpha favours long outputs


def test_a_closed_stdin_is_nothing_to_translate(checkpoint, capsys, monkeypatch) -> None:
    """Started with standard input closed (`seq2seq-translate --model m.pt <&-`), Python's sys.stdin is None."""
    monkeypatch.setattr("sys.stdin", None)
    assert main(["--model", str(checkpoint)]) == 2
    assert _one_error_line(capsys) == (
        "seq2seq-translate: error: nothing to translate: give sentences as arguments or one per line on stdin")


TRANSLATE = [sys.executable, "-m", "seq2seq.translate_command"]


def test_output_piped_into_head_ends_quietly(checkpoint) -> None:
    """`| head -1`: the reader goes away; no traceback, exit status 141 as for a process SIGPIPE stopped."""
    reader = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    result = subprocess.run([*TRANSLATE, "--model", str(checkpoint)], input=b"je suis content .\n" * 20000,
                            stdout=reader.stdin, stderr=subprocess.PIPE, timeout=300)
    reader.stdin.close()
    assert reader.stdout.read() == b"i am happy .\n"
    assert b"Traceback" not in result.stderr and b"Exception ignored" not in result.stderr, result.stderr[-500:]
    assert result.returncode == 141
    reader.wait(timeout=30)


def test_a_full_disk_on_stdout_is_one_line(checkpoint) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run([*TRANSLATE, "--model", str(checkpoint), "je suis content ."], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("seq2seq-translate: error: cannot write the translations to stdout: No space "
                                     "left on device")


def test_a_translation_with_accents_is_printed_as_utf8_whatever_the_locale(checkpoint, tmp_path) -> None:
    """Input is read as UTF-8 whatever the locale; so is the output written (a C locale's ASCII failed on 'è')."""
    payload = torch.load(checkpoint, weights_only=True)
    payload["target_vocab"]["tokens"][0] = "très"  # the first word after the specials, renamed ...
    payload["model_state"]["decoder.out.bias"][4] = 1000.0  # ... and always produced
    accents = tmp_path / "accents.pt"
    save_checkpoint(accents, {key: value for key, value in payload.items() if key not in ("format", "sha256")})
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    result = subprocess.run([*TRANSLATE, "--model", str(accents), "--max-len", "2", "je suis content ."],
                            capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-500:]
    assert result.stdout == "très très\n".encode("utf-8")


def test_a_max_len_beyond_the_pipelines_limit_is_a_usage_error(checkpoint, capsys) -> None:
    """Search holds room for --max-len tokens from its start: 10**9 took 22.9 GB for a four-word output. Run as a
    process under a 4 GB address-space limit, so that code without the check fails here instead of filling the
    machine's memory."""
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    result = subprocess.run([*TRANSLATE, "--model", str(checkpoint), "--max-len", "1000000000", "je suis content ."],
                            capture_output=True, text=True, preexec_fn=limit_memory, timeout=120)
    assert result.returncode == 2 and "--max-len must be at most 1000" in result.stderr, result.stderr[-500:]
    assert main(["--model", str(checkpoint), "--max-len", "1000", "je suis content ."]) == 0


@pytest.mark.parametrize("device", ["mps", "xpu", "meta"])
def test_a_device_this_machine_lacks_is_one_line(checkpoint, capsys, device) -> None:
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    assert main(["--model", str(checkpoint), "--device", device, "je suis content ."]) == 2
    error = _one_error_line(capsys)
    assert error.startswith(f"seq2seq-translate: error: device '{device}'") and "--device auto or cpu" in error


def test_word_level_without_a_plot_is_a_usage_error(checkpoint, capsys) -> None:
    """--word-level changes only the plot: without --plot it was ignored without a word."""
    with pytest.raises(SystemExit) as caught:
        main(["--model", str(checkpoint), "--word-level", "je suis content ."])
    assert caught.value.code == 2
    assert "--word-level draws the --plot's attention over words: give --plot FILE too" in capsys.readouterr().err
