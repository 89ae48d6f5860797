"""Rule logs: a user's input error is one line, anything else keeps its traceback."""

import pytest

from seq2seq.corpus import CorpusError
from seq2seq.download import DownloadError
from seq2seq.logs import InputError, logging_to


@pytest.mark.parametrize("error", [DownloadError("could not download x (ConnectionError, 4 attempt(s))"),
                                   CorpusError("raw.txt:3: not UTF-8 text")])
def test_input_errors_are_one_line_in_the_log_and_on_stderr(tmp_path, error, capsys):
    """The user's mistake ends the job with its message, not a traceback (Snakemake shows the job's stderr)."""
    log = tmp_path / "rule.log"
    with pytest.raises(SystemExit) as caught, logging_to(log, "stage"):
        raise error
    assert caught.value.code == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"ERROR seq2seq.stage: stage failed: {error}")
    assert capsys.readouterr().err == f"stage failed: {error}\n"
    assert isinstance(error, InputError)


def test_unexpected_errors_keep_their_traceback(tmp_path):
    log = tmp_path / "rule.log"
    with pytest.raises(KeyError), logging_to(log, "stage"):
        {}["missing"]
    text = log.read_text()
    assert "stage failed" in text and "Traceback (most recent call last)" in text and "KeyError" in text


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied", "/out/train.tsv"),
                                   FileExistsError(17, "File exists", "/out/stats.json"),
                                   PermissionError(1, "Operation not permitted", "/out/.tmp1", "/out/stats.json")])
def test_a_system_error_on_a_named_path_is_one_line(tmp_path, error, capsys):
    """A folder without write permission ended the stage with a traceback, printed twice (review)."""
    log = tmp_path / "rule.log"
    with pytest.raises(SystemExit) as caught, logging_to(log, "prepare"):
        raise error
    target = f" -> {error.filename2}" if error.filename2 else ""
    assert caught.value.code == 1
    assert capsys.readouterr().err == f"prepare failed: {error.filename}{target}: {error.strerror}\n"
    assert "Traceback" not in log.read_text()


def test_a_system_error_without_a_path_keeps_its_traceback(tmp_path):
    with pytest.raises(OSError), logging_to(tmp_path / "rule.log", "stage"):
        raise OSError(5, "Input/output error")
    assert "Traceback (most recent call last)" in (tmp_path / "rule.log").read_text()
