"""seq2seq.formats: the history reader checks its values, naming the file and line (the summary, the figures
and the recipe comparison read it)."""

from __future__ import annotations

import math

import pytest

from seq2seq.formats import HISTORY_COLUMNS, FormatError, read_history, write_history


def rows(epochs: int = 3) -> list[dict]:
    return [{"epoch": e, "train_loss": 3.0 / e, "valid_loss": 2.0 / e, "valid_bleu": 10.0 * e,
             "learning_rate": 1e-3, "seconds": 1.5, "pairs_per_s": 500.0} for e in range(1, epochs + 1)]


def test_a_written_history_reads_back_as_numbers(tmp_path) -> None:
    history = rows()
    history[0]["valid_bleu"] = math.nan  # what a validation without sentences writes
    write_history(tmp_path / "history.tsv", history)
    table = read_history(tmp_path / "history.tsv")
    assert list(table.columns) == list(HISTORY_COLUMNS)
    assert table["epoch"].tolist() == [1, 2, 3] and table["epoch"].dtype.kind == "i"
    assert math.isnan(table["valid_bleu"][0]) and table["valid_bleu"][1:].tolist() == [20.0, 30.0]


@pytest.mark.parametrize("column, value, line, message", [
    ("epoch", "2x", 3, "epoch is '2x', not a number"), ("valid_bleu", "high", 4, "valid_bleu is 'high', not a number"),
    ("seconds", "1,5", 3, "seconds is '1,5', not a number"), ("epoch", "", 2, "epoch is empty, not a whole number"),
    ("epoch", "1.5", 2, "epoch is '1.5', not a whole number")])
def test_a_value_that_is_not_a_number_is_one_line_naming_the_line(tmp_path, column, value, line, message) -> None:
    """Read by the summary, it was a ValueError traceback (int('2x')) far from the file."""
    path = tmp_path / "history.tsv"
    write_history(path, rows())
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[line - 1].split("\t")
    cells[HISTORY_COLUMNS.index(column)] = value
    lines[line - 1] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(FormatError) as error:
        read_history(path)
    assert str(error.value) == f"{path}:{line}: {message}"
