"""seq2seq.download.fetch_corpus: local paths and URLs, checksums, archive members, failures (no network)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from seq2seq.download import DownloadError, fetch_corpus

TEXT = "Go.\tVa !\nI am tall.\tJe suis grand.\n"


def make_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` (temporary ones included)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_plain_path_text_file_is_copied(tmp_path):
    source = tmp_path / "pairs.txt"
    source.write_text(TEXT, encoding="utf-8")
    dest = tmp_path / "out" / "fra-eng.txt"
    assert fetch_corpus(str(source), dest) == dest
    assert dest.read_text(encoding="utf-8") == TEXT
    assert leftovers(dest.parent) == ["fra-eng.txt"]


def test_relative_path_and_file_url(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "fra-eng.zip", {"fra.txt": TEXT})
    monkeypatch.chdir(tmp_path)
    fetch_corpus("fra-eng.zip", tmp_path / "a.txt", member="fra.txt")
    fetch_corpus(archive.as_uri(), tmp_path / "b.txt", member="fra.txt")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == TEXT
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == TEXT


def test_single_txt_member_is_picked_automatically(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"data/eng-fra.txt": TEXT, "README.md": "about"})
    dest = fetch_corpus(str(archive), tmp_path / "out.txt")
    assert dest.read_text(encoding="utf-8") == TEXT


def test_several_txt_members_need_a_name(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"fra.txt": TEXT, "_about.txt": "about"})
    with pytest.raises(DownloadError, match=r"2 \.txt members.*'fra\.txt'.*'_about\.txt'"):
        fetch_corpus(str(archive), tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_missing_member_names_member_and_members_present(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"fra.txt": TEXT, "_about.txt": "about"})
    with pytest.raises(DownloadError, match=r"no member 'deu\.txt'.*members: \['fra\.txt', '_about\.txt'\]"):
        fetch_corpus(str(archive), tmp_path / "out" / "x.txt", member="deu.txt")
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "data/../../evil.txt", "C:\\evil.txt"])
def test_escaping_member_is_refused(tmp_path, member):
    archive = make_zip(tmp_path / "c.zip", {member: TEXT})
    with pytest.raises(DownloadError, match="refusing archive member .*outside the target folder"):
        fetch_corpus(str(archive), tmp_path / "out" / "x.txt", member=member)
    # also when it is the only .txt member and picked automatically
    with pytest.raises(DownloadError, match="refusing archive member"):
        fetch_corpus(str(archive), tmp_path / "out" / "x.txt")
    assert leftovers(tmp_path / "out") == []
    assert not (tmp_path / "evil.txt").exists()


def test_checksum_of_the_archive_is_verified(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"fra.txt": TEXT})
    good = sha256(archive)
    fetch_corpus(str(archive), tmp_path / "ok.txt", member="fra.txt", sha256=good.upper())
    assert (tmp_path / "ok.txt").exists()

    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        fetch_corpus(str(archive), tmp_path / "out" / "bad.txt", member="fra.txt", sha256=wrong)
    assert wrong in str(info.value) and good in str(info.value)
    assert leftovers(tmp_path / "out") == []


def test_missing_local_file_and_unknown_scheme(tmp_path):
    with pytest.raises(DownloadError, match="no such file"):
        fetch_corpus(str(tmp_path / "nope.zip"), tmp_path / "x.txt")
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        fetch_corpus("ftp://example.org/x.zip", tmp_path / "x.txt")


@pytest.mark.parametrize("url", ["https://[bad/fra-eng.zip", "file://[::1/fra-eng.zip"])
def test_a_malformed_url_is_one_line(tmp_path, url):
    """urllib's ValueError ('Invalid IPv6 URL') was a traceback."""
    with pytest.raises(DownloadError, match=r"^.+: not a valid URL \(Invalid IPv6 URL\)$"):
        fetch_corpus(url, tmp_path / "out" / "x.txt")
    assert leftovers(tmp_path / "out") == []


def test_member_requested_from_a_text_file(tmp_path):
    source = tmp_path / "pairs.txt"
    source.write_text(TEXT, encoding="utf-8")
    with pytest.raises(DownloadError, match="not a zip archive"):
        fetch_corpus(str(source), tmp_path / "x.txt", member="fra.txt")


def test_corrupt_zip_is_reported(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        fetch_corpus(str(broken), tmp_path / "out" / "x.txt")
    assert leftovers(tmp_path / "out") == []


def _damaged_member(path: Path) -> Path:
    """A zip whose deflated member has bytes flipped in the middle of its data (the directory intact)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fra.txt", "".join(f"I am {i}.\tJe suis {i} {i * i}.\n" for i in range(3000)))
    data = bytearray(path.read_bytes())
    start = 30 + len("fra.txt") + 200  # past the local header, inside the deflate stream
    data[start:start + 20] = bytes(255 - b for b in data[start:start + 20])
    path.write_bytes(bytes(data))
    return path


def _with_flag(path: Path, compress_type: int = zipfile.ZIP_STORED, flag_bits: int = 0) -> Path:
    """A zip of one stored member, with its method or flag bits rewritten in both headers (as another tool
    would have written them)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fra.txt", TEXT)
    data = bytearray(path.read_bytes())
    for header, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(header) + offset
        data[at:at + 2] = flag_bits.to_bytes(2, "little")
        data[at + 2:at + 4] = compress_type.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("archive, message", [
    (_damaged_member, r"broken.zip: not a valid zip archive \(.+\)"),
    (lambda path: _with_flag(path, compress_type=9),  # Deflate64, which Python's zipfile cannot read
     r"broken.zip: member 'fra.txt': .*compression.*; re-pack the archive with deflate"),
    (lambda path: _with_flag(path, flag_bits=0x1),
     r"broken.zip: member 'fra.txt' is password-protected; give an unencrypted archive"),
])
def test_a_damaged_or_unreadable_member_is_one_line_and_leaves_nothing(tmp_path, archive, message):
    """Found by reading the member, not the directory: zlib's, zipfile's and the encryption errors become one line
    (the checksum, when one is set, catches damage first; the manythings and tutorial configs set none)."""
    broken = archive(tmp_path / "broken.zip")
    with pytest.raises(DownloadError, match=message) as error:
        fetch_corpus(str(broken), tmp_path / "out" / "x.txt", member="fra.txt")
    assert "\n" not in str(error.value)
    assert leftovers(tmp_path / "out") == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_url_fails_fast_with_a_local_copy_hint(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/fra-eng.zip"
    dest = tmp_path / "raw" / "fra-eng.txt"
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        fetch_corpus(url, dest, retries=1, timeout=2, backoff=0.01)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert url in message and "2 attempt(s)" in message
    assert "--configfile" in message and "fra-eng" in message and "\n" not in message
    assert leftovers(dest.parent) == []


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server serving tmp_path/www; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_extracts_and_verifies(tmp_path, http_server):
    base, root = http_server
    archive = make_zip(root / "fra-eng.zip", {"fra.txt": TEXT, "_about.txt": "about"})
    dest = tmp_path / "raw" / "fra-eng.txt"
    fetch_corpus(f"{base}/fra-eng.zip", dest, member="fra.txt", sha256=sha256(archive), retries=0, timeout=5)
    assert dest.read_text(encoding="utf-8") == TEXT
    assert leftovers(dest.parent) == ["fra-eng.txt"]  # the temporary download folder is gone

    with pytest.raises(DownloadError, match=r"expected 0{64}, got .*the download was not kept"):
        fetch_corpus(f"{base}/fra-eng.zip", tmp_path / "raw" / "bad.txt", member="fra.txt", sha256="0" * 64,
                     retries=0, timeout=5)
    assert leftovers(dest.parent) == ["fra-eng.txt"]


def test_http_404_is_not_retried(tmp_path, http_server):
    base, _ = http_server
    with pytest.raises(DownloadError, match=r"HTTP 404, 1 attempt\(s\)"):
        fetch_corpus(f"{base}/missing.zip", tmp_path / "x.txt", retries=3, timeout=5, backoff=5)
