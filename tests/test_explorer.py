"""The explorer page (built from synthetic evaluate outputs, no browser) and the attention file evaluate writes."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import pytest

from seq2seq.evaluation import write_attention
from seq2seq.explorer import EOS, SCALE, read_page_data, write_explorer

PIECE = "\u2581"
COLUMNS = ["source", "reference", "greedy", "beam", "greedy_bleu", "greedy_chrf", "beam_bleu", "beam_chrf"]
# (source, reference, greedy, beam): the last source carries markup, which the page must keep as text
SENTENCES = [
    ("je suis content .", "i am happy .", "i am happy .", "i am happy ."),
    ("tu es grand .", "you are tall .", "you are big .", "you are tall ."),
    ("il est </script><b>x</b> .", "he is <x> .", "he is .", "he is ."),
]
# characters Python's str.split() and JavaScript's \s disagree on (U+0085, U+001C to U+001F: whitespace to Python
# alone; U+FEFF: to JavaScript alone), then some whitespace to both: inside the texts below, tokens their str.split()
ODD_SPACES = "\x85\x1c\x1d\x1e\x1f\ufeff\xa0\u2028\u3000\x0b\x0c"


def weights(rows: int, columns: int, seed: int) -> list[list[float]]:
    """A deterministic row-stochastic matrix, rounded to 4 decimals like the evaluate stage's."""
    matrix = []
    for r in range(rows):
        raw = [1.0 + ((seed * 7 + r * 5 + c * 3) % 11) ** 2 for c in range(columns)]
        matrix.append([round(x / sum(raw), 4) for x in raw])
    return matrix


def pieces(text: str) -> list[str]:
    """Words as sentencepiece-like pieces: '▁' at word starts, words longer than 3 letters split in two."""
    out = []
    for word in text.split():
        out += [PIECE + word[:3], word[3:]] if len(word) > 3 else [PIECE + word]
    return out


def write_run(folder: Path, subword: bool = False, seed: int = 0, sentences=SENTENCES) -> tuple[Path, Path, dict]:
    """translations.tsv and attention.json.gz as the evaluate stage writes them; returns (tsv, gz, record)."""
    folder.mkdir(parents=True, exist_ok=True)
    split = pieces if subword else str.split
    record: dict = {"format": 1, "source_tokens": [], "greedy": {"output_tokens": [], "weights": []},
                    "beam": {"output_tokens": [], "weights": []}}
    with open(folder / "translations.tsv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for i, (source, reference, greedy, beam) in enumerate(sentences):
            writer.writerow([source, reference, greedy, beam, f"{10.0 * i:.2f}", f"{20.0 + i:.2f}",
                             f"{30.0 + i:.2f}", f"{40.5 + i:.2f}"])
            record["source_tokens"].append(split(source))
            for search, text in (("greedy", greedy), ("beam", beam)):
                output = [*split(text), EOS]
                record[search]["output_tokens"].append(output)
                record[search]["weights"].append(weights(len(output), len(split(source)) + 1,
                                                         seed + i + (search == "beam")))
    write_attention(folder / "attention.json.gz", record)
    return folder / "translations.tsv", folder / "attention.json.gz", record


def js_words(text: str) -> list[str]:
    """explorer.js's words(): ``text.split(" ").filter(Boolean)``, the text split on U+0020 spaces alone."""
    return [word for word in text.split(" ") if word]


def decode(data: dict, pair: int, run: int, search: str, i: int) -> tuple[list[str], list[str], list[list[float]]]:
    """(source tokens, output tokens, weights) of one sentence from the page's data, as explorer.js reads it."""
    entry = data["pairs"][pair]
    block = entry["runs"][run]
    tokens = data["tokens"]

    def source_tokens(k: int) -> list[str]:
        override = block["source_tokens"].get(str(k))
        return [tokens[t] for t in override] if override is not None else js_words(entry["source"][k])

    def output_tokens(name: str, k: int) -> list[str]:
        if name == "beam" and k in block["beam"]["same"]:
            return output_tokens("greedy", k)
        override = block[name]["output_tokens"].get(str(k))
        return [tokens[t] for t in override] if override is not None else [*js_words(block[name]["text"][k]), EOS]

    if search == "beam" and i in block["beam"]["same"]:
        search = "greedy"
    cells = base64.b64decode(block[search]["weights"])
    offset = 0
    for k in range(i):
        if not (search == "beam" and k in block["beam"]["same"]):
            offset += len(output_tokens(search, k)) * (len(source_tokens(k)) + 1)
    rows, columns = len(output_tokens(search, i)), len(source_tokens(i)) + 1
    flat = [b / SCALE for b in cells[offset:offset + rows * columns]]
    return source_tokens(i), output_tokens(search, i), [flat[r * columns:(r + 1) * columns] for r in range(rows)]


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[list[Path], list[Path], list[list[str]], list[dict]]:
    words = write_run(tmp_path / "fra-eng" / "words", seed=0)
    subword = write_run(tmp_path / "fra-eng" / "pieces", subword=True, seed=3)
    return ([words[0], subword[0]], [words[1], subword[1]], [["fra-eng", "words"], ["fra-eng", "pieces"]],
            [words[2], subword[2]])


def test_the_page_is_one_self_contained_file(two_runs, tmp_path: Path) -> None:
    translations, attention, labels, _ = two_runs
    out = tmp_path / "page" / "explorer.html"
    write_explorer(translations, attention, labels, out)
    assert [p.name for p in out.parent.iterdir()] == ["explorer.html"]  # no temporary or side files
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    # nothing loaded from elsewhere: no external script, stylesheet, image or font
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<link\b|<img\b|@import|url\(", page, re.I)
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the code, nothing more
    assert page.count("<style>") == 1
    # the sentence with markup stays data: no raw "</script>" or "<b>" from it anywhere in the page
    assert "<b>x</b>" not in page and "he is <x>" not in page
    assert "innerHTML" not in page  # text reaches the page as text nodes only
    assert "Attention explorer: fra-eng (words, pieces)" in page


def test_the_embedded_data_round_trips(two_runs, tmp_path: Path) -> None:
    translations, attention, labels, records = two_runs
    out = tmp_path / "explorer.html"
    write_explorer(translations, attention, labels, out)
    data = read_page_data(out.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["scale"] == SCALE
    [pair] = data["pairs"]
    assert pair["name"] == "fra-eng" and pair["subword"] is True
    assert pair["source"] == [s[0] for s in SENTENCES] and pair["reference"] == [s[1] for s in SENTENCES]
    assert [run["name"] for run in pair["runs"]] == ["words", "pieces"]
    assert [run["subword"] for run in pair["runs"]] == [False, True]
    assert len(data["tokens"]) == len(set(data["tokens"]))  # each token string stored once
    for r, record in enumerate(records):
        run = pair["runs"][r]
        for search, column in (("greedy", 2), ("beam", 3)):
            assert run[search]["text"] == [s[column] for s in SENTENCES]
            assert run[search]["bleu"] == [round(10.0 * i if search == "greedy" else 30.0 + i, 1) for i in range(3)]
            for i in range(len(SENTENCES)):
                source, output, matrix = decode(data, 0, r, search, i)
                assert source == record["source_tokens"][i]
                assert output == record[search]["output_tokens"][i]
                expected = record[search]["weights"][i]
                assert len(matrix) == len(expected) and all(len(row) == len(source) + 1 for row in matrix)
                for got_row, want_row in zip(matrix, expected):
                    assert got_row == pytest.approx(want_row, abs=0.5 / SCALE + 1e-6)
    # the word-level run stores no token lists at all: they are the texts split on spaces
    assert pair["runs"][0]["source_tokens"] == {} and pair["runs"][0]["greedy"]["output_tokens"] == {}
    assert any(PIECE in t for t in data["tokens"])


def test_texts_with_any_whitespace_round_trip(tmp_path: Path) -> None:
    """The page splits a text on U+0020 spaces alone (explorer.js's words()): a sentence whose tokens are not that
    split carries its tokens, so that texts with whitespace Python and JavaScript disagree on read back right."""
    sentences = [(f"je{space}suis content .", "i am happy .", f"i{space}am happy .", f"i am{space}glad .")
                 for space in ODD_SPACES]
    sentences.append(("  tu  es grand . ", "you are tall .", "you are  tall .", " you are tall ."))
    tsv, gz, record = write_run(tmp_path / "run", sentences=sentences)
    data = write_explorer([tsv], [gz], [["fra-eng", "m"]], tmp_path / "explorer.html")
    assert data["pairs"][0]["source"] == [s[0] for s in sentences]
    for search in ("greedy", "beam"):
        for i, (source, *_) in enumerate(sentences):
            tokens, output, matrix = decode(data, 0, 0, search, i)
            assert (tokens, output) == (record["source_tokens"][i], record[search]["output_tokens"][i]), \
                f"{search} sentence {i} ({source!r}): the page reads other tokens than those stored"
            assert len(matrix) == len(output) and all(len(row) == len(tokens) + 1 for row in matrix)
    # the last sentence's tokens are its texts split on spaces: nothing stored for them
    last = str(len(sentences) - 1)
    run = data["pairs"][0]["runs"][0]
    assert last not in run["source_tokens"] and last not in run["greedy"]["output_tokens"]


def test_beam_sentences_equal_to_greedy_are_stored_once(tmp_path: Path) -> None:
    tsv, gz, record = write_run(tmp_path / "run")
    for i in (0, 2):  # the same output and the same weights as greedy
        record["beam"]["weights"][i] = record["greedy"]["weights"][i]
    write_attention(gz, record)
    out = tmp_path / "explorer.html"
    data = write_explorer([tsv], [gz], [["fra-eng", "bahdanau"]], out)
    beam = data["pairs"][0]["runs"][0]["beam"]
    assert beam["same"] == [0, 2]
    assert len(base64.b64decode(beam["weights"])) == 5 * 5  # only sentence 2: 5 output tokens x (4 + 1)
    for i in range(3):
        assert decode(data, 0, 0, "beam", i)[1] == record["beam"]["output_tokens"][i]


def test_runs_of_one_pair_must_have_the_same_sentences(tmp_path: Path) -> None:
    first = write_run(tmp_path / "fra-eng" / "a")
    second = write_run(tmp_path / "fra-eng" / "b", sentences=SENTENCES[:2])
    with pytest.raises(ValueError, match=r"b/translations.tsv: 2 test sentences, but .*a/translations.tsv") as error:
        write_explorer([first[0], second[0]], [first[1], second[1]], [["fra-eng", "a"], ["fra-eng", "b"]],
                       tmp_path / "explorer.html")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "explorer.html").exists()
    # a different pair may have other sentences
    write_explorer([first[0], second[0]], [first[1], second[1]], [["fra-eng", "a"], ["deu-eng", "b"]],
                   tmp_path / "explorer.html")


def test_a_weights_matrix_of_the_wrong_shape_names_the_file(tmp_path: Path) -> None:
    tsv, gz, record = write_run(tmp_path / "run")
    record["beam"]["weights"][1] = [row[:-1] for row in record["beam"]["weights"][1]]  # <eos> column missing
    write_attention(gz, record)
    with pytest.raises(ValueError, match=r"attention.json.gz: beam sentence 2: .*expected 5x5") as error:
        write_explorer([tsv], [gz], [["fra-eng", "m"]], tmp_path / "explorer.html")
    assert str(gz) in str(error.value) and "\n" not in str(error.value)


def test_sentence_counts_of_translations_and_attention_must_agree(tmp_path: Path) -> None:
    tsv, _, _ = write_run(tmp_path / "run")
    _, short_gz, _ = write_run(tmp_path / "short", sentences=SENTENCES[:1])
    with pytest.raises(ValueError, match=r"short/attention.json.gz: 1 sentences, but .*run/translations.tsv has 3"):
        write_explorer([tsv], [short_gz], [["fra-eng", "m"]], tmp_path / "explorer.html")


@pytest.mark.parametrize("missing", ["translations.tsv", "attention.json.gz"])
def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path: Path, missing: str) -> None:
    tsv, gz, _ = write_run(tmp_path / "run")
    (tmp_path / "run" / missing).unlink()
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "run" / missing)) + ": no such file") as error:
        write_explorer([tsv], [gz], [["fra-eng", "m"]], tmp_path / "explorer.html")
    assert "\n" not in str(error.value)


def test_an_attention_file_that_is_not_gzip_json_names_the_file(tmp_path: Path) -> None:
    tsv, gz, _ = write_run(tmp_path / "run")
    gz.write_text("not gzip")
    with pytest.raises(ValueError, match=re.escape(str(gz)) + ": not a gzip-compressed JSON attention file"):
        write_explorer([tsv], [gz], [["fra-eng", "m"]], tmp_path / "explorer.html")


def test_the_command_line_builds_the_page(tmp_path: Path) -> None:
    from seq2seq.cli import main

    tsv, gz, _ = write_run(tmp_path / "results" / "fra-eng" / "bahdanau")
    assert main(["explorer", "--translations", str(tsv), "--attention", str(gz), "--labels",
                 "[[fra-eng, bahdanau]]", "--html", str(tmp_path / "page.html")]) == 0
    assert read_page_data((tmp_path / "page.html").read_text(encoding="utf-8"))["pairs"][0]["runs"][0]["name"] \
        == "bahdanau"


def test_the_explorer_reads_the_format_the_evaluate_stage_writes(tmp_path: Path) -> None:
    """One reader and one writer of attention.json.gz and translations.tsv (seq2seq.formats), and one set of
    special tokens, which the page receives with its data."""
    from seq2seq import evaluation, explorer, formats, tokens, vocab

    assert evaluation.ATTENTION_FORMAT == formats.ATTENTION_FORMAT
    assert evaluation.write_attention is formats.write_attention and explorer.read_attention is formats.read_attention
    assert evaluation.write_translations is formats.write_translations
    assert explorer.read_translations is formats.read_translations
    assert (explorer.EOS, explorer.WORD_START) == (vocab.EOS, vocab.WORD_START) == (tokens.EOS, tokens.WORD_START)
    tsv, gz, _ = write_run(tmp_path / "run", subword=True)
    data = write_explorer([tsv], [gz], [["fra-eng", "m"]], tmp_path / "explorer.html")
    assert (data["eos"], data["word_start"]) == (tokens.EOS, tokens.WORD_START) and data["pairs"][0]["subword"]
