"""The download stage refuses, while it reads it in bounded memory, a corpus that the prepare stage would refuse for
its long lines (a 2 GB single-line file once peaked at 4.3 GB in prepare and left a 2 GB copy in data/raw/): one
line naming the file and line, nothing written."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from helpers import snakemake, tiny_config, write_config, write_raw_corpus
from seq2seq.corpus import CorpusError, read_raw_pairs
from seq2seq.download import DownloadError, LongLines, fetch_corpus


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_single_line_file_is_refused_and_nothing_is_written(tmp_path) -> None:
    source = tmp_path / "one-line.txt"
    source.write_bytes(b"Go.\t" + b"a" * 3_000_000)
    dest = tmp_path / "raw" / "fra-eng.txt"
    with pytest.raises(DownloadError) as error:
        fetch_corpus(str(source), dest, max_line_chars=1000)
    assert str(error.value) == (
        f"{source}:1: 1 of 1 lines have more than prepare.max_line_chars=1,000 characters (line 1: 3,000,004), "
        f"more than prepare.max_malformed_fraction=5.0% of them: not a file of sentence pairs? Nothing was "
        f"written to {dest}")
    assert leftovers(dest.parent) == []


def test_an_archive_member_of_long_lines_is_refused_and_its_copy_removed(tmp_path) -> None:
    archive = tmp_path / "corpus.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fra.txt", "Go.\tVa !\n" + ("x" * 500 + "\n") * 3)
    dest = tmp_path / "raw" / "fra-eng.txt"
    with pytest.raises(DownloadError, match=r"corpus.zip \(fra.txt\):2: 3 of 4 lines have more than prepare\."
                                            r"max_line_chars=100 characters \(line 2: 500\)"):
        fetch_corpus(str(archive), dest, member="fra.txt", max_line_chars=100)
    assert leftovers(dest.parent) == []


@pytest.mark.parametrize("byte", [b"\x00", b"\x07", b"\x1b"])
def test_a_file_of_control_bytes_is_one_long_line(tmp_path, byte) -> None:
    """A file of zero bytes (a common kind of damage) is one line for prepare, which refuses it after reading it
    whole: the download refuses it first (a NUL is not whitespace; only 0x09-0x0D, 0x1C-0x20 are)."""
    source = tmp_path / "zeros.txt"
    source.write_bytes(byte * 5000)
    dest = tmp_path / "raw" / "fra-eng.txt"
    with pytest.raises(DownloadError, match=r"zeros.txt:1: 1 of 1 lines have more than prepare.max_line_chars="
                                            r"1,000 characters \(line 1: 5,000\)"):
        fetch_corpus(str(source), dest, max_line_chars=1000)
    assert leftovers(dest.parent) == []
    with pytest.raises(CorpusError, match="1 of 1 lines are malformed"):
        read_raw_pairs(source, max_line_chars=1000)


def test_a_few_long_lines_pass_as_prepare_lets_them(tmp_path) -> None:
    source = tmp_path / "pairs.txt"
    source.write_text("".join(f"I am {i}.\tJe suis {i}.\n" for i in range(99)) + "x" * 5000 + "\n",
                      encoding="utf-8")
    dest = fetch_corpus(str(source), tmp_path / "raw.txt", max_line_chars=1000)
    assert dest.read_bytes() == source.read_bytes()
    assert read_raw_pairs(dest, max_line_chars=1000).malformed == 1


def _random_corpus(rng: random.Random) -> bytes:
    pieces = [b"Go.\tVa !", b"", b"   ", b"\r", "\u00a0\u3000".encode(), "Je suis l\u00e0.\tI am here.".encode(),
              b"x" * 30, "\u00e9".encode() * 25, b" " * 40, "\u3000".encode() * 30, b"a\tb" + b"\r" * 20,
              b"\x00" * 30, b"\x07\x1b" * 12, b"\x1c\x1f" * 20]
    lines = [rng.choice(pieces) * rng.randint(1, 3) for _ in range(rng.randint(1, 12))]
    text = b"\n".join(lines) + rng.choice([b"", b"\n", b"\r\n"])
    return (b"\xef\xbb\xbf" + text) if rng.random() < 0.3 else text


def test_it_refuses_only_what_prepare_refuses(tmp_path) -> None:
    """Random small files (blank and whitespace-only lines, CRLF, a byte-order mark, multi-byte characters, lines
    around the limit) fed in chunks of a few bytes: a file it refuses is one prepare refuses, and a file of long
    lines only is refused by both."""
    rng = random.Random(0)
    refused = 0
    for case in range(400):
        data = _random_corpus(rng)
        path = tmp_path / f"{case}.txt"
        path.write_bytes(data)
        limit, fraction = rng.choice([20, 35, 60]), rng.choice([0.0, 0.2, 0.5])
        lines = LongLines(limit)
        size = rng.randint(1, 9)
        for start in range(0, len(data), size):
            lines.feed(data[start:start + size])
        try:
            lines.check(str(path), fraction, tmp_path / "dest.txt")
        except DownloadError:
            refused += 1
            with pytest.raises(CorpusError):
                read_raw_pairs(path, max_malformed_fraction=fraction, max_line_chars=limit)
    assert refused > 20  # the cases exercise the refusal
    only_long = tmp_path / "long.txt"
    only_long.write_bytes(b"\xef\xbb\xbf" + b"y" * 61 + b"\r\n" + "\u00e9".encode() * 70 + b"\n")
    lines = LongLines(60)
    lines.feed(only_long.read_bytes())
    with pytest.raises(DownloadError, match=":1: 2 of 2 lines .* \\(line 1: 61\\)"):
        lines.check("long.txt", 0.05, tmp_path / "dest.txt")
    with pytest.raises(CorpusError, match="2 of 2 lines are malformed"):
        read_raw_pairs(only_long, max_line_chars=60)


@pytest.mark.workflow
def test_the_download_stage_stops_with_one_line_and_leaves_no_copy(tmp_path) -> None:
    raw = tmp_path / "corpus" / "one-line.txt"
    raw.parent.mkdir()
    raw.write_bytes(b"I am tall.\t" + b"grand " * 100_000)  # one 600,011-character line
    good = write_raw_corpus(tmp_path / "corpus" / "fra-eng.txt")  # noqa: F841  (a corpus beside it, untouched)
    config = write_config(tmp_path / "config.yaml", tiny_config(raw, prepare={"max_line_chars": 500}))
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = snakemake(workdir, "--cores", "1", "data/raw/fra-eng.txt", "--configfile", str(config), check=False)
    assert result.returncode == 1
    message = (f"download failed: {raw}:1: 1 of 1 lines have more than prepare.max_line_chars=500 characters "
               f"(line 1: 600,011), more than prepare.max_malformed_fraction=5.0% of them: not a file of sentence "
               f"pairs? Nothing was written to data/raw/fra-eng.txt")
    assert message in (result.stdout + result.stderr).splitlines(), result.stderr[-3000:]
    assert leftovers(workdir / "data" / "raw") == []
