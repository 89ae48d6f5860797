"""Fetch a raw sentence-pair corpus from a URL or a local path, verify it, unpack it, write it atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

import pooch
import requests

from .fileio import atomic_path
from .logs import InputError
from .schema import schema_default
from .settings import DownloadSettings

logger = logging.getLogger("seq2seq.download")

REMOTE_SCHEMES = ("http", "https")


class DownloadError(InputError, RuntimeError):
    """The corpus could not be fetched, verified or unpacked (one-line message)."""


def fetch_corpus(
    url: str,
    dest: str | os.PathLike[str],
    member: str | None = None,
    sha256: str | None = None,
    retries: int = schema_default("download.retries"),
    timeout: float = schema_default("download.timeout"),
    backoff: float = 2.0,
    max_line_chars: int | None = None,
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction"),
) -> Path:
    """Write the raw text corpus behind ``url`` to ``dest`` and return ``dest``.

    ``url`` is an ``http(s)://`` or ``file://`` URL or a plain (relative or absolute) path.
    ``sha256`` is checked against the file as given (the archive, not the member). A ``.zip``
    archive yields ``member``, or its only ``.txt`` member when ``member`` is None; other files
    are copied. ``retries`` extra attempts, ``timeout`` seconds each and an exponential
    ``backoff`` (seconds) apply to remote URLs. ``dest`` only appears once everything succeeded.
    With ``max_line_chars``, a text that the prepare stage would refuse for its long lines (more
    than ``max_malformed_fraction`` of them over ``max_line_chars`` characters) is refused while
    it is read, in bounded memory, and nothing is written (see :class:`LongLines`).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = local_path(url)
    lines = LongLines(max_line_chars) if max_line_chars is not None else None
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as tmp_dir:
        if local is None:
            source = _download(url, Path(tmp_dir), dest, retries=retries, timeout=timeout, backoff=backoff)
        else:
            if not local.is_file():
                raise DownloadError(f"{url}: no such file")
            source = local
            logger.info("using local file %s (%d bytes)", source, source.stat().st_size)
        archive = _is_zip(source)
        digest = file_sha256(source, observe=None if archive or lines is None else lines.feed)
        logger.info("sha256 of %s: %s", url, digest)
        if sha256 is not None and digest.lower() != sha256.strip().lower():
            kept = "" if local is not None else "; the download was not kept"
            raise DownloadError(
                f"{url}: sha256 mismatch: expected {sha256.strip().lower()}, got {digest}{kept}; if this is the "
                f"file you meant, set corpora.{dest.name.removesuffix('.txt')}.sha256 to its hash (or null)"
            )
        if not archive and member is not None:
            raise DownloadError(f"{url}: member {member!r} was requested but the file is not a zip archive")
        if not archive and lines is not None:
            lines.check(url, max_malformed_fraction, dest)  # before a byte is copied
        with atomic_path(dest) as tmp:
            if archive:
                name = _extract_member(source, member, tmp, label=url,
                                       observe=lines.feed if lines is not None else None)
                if lines is not None:
                    lines.check(f"{url} ({name})", max_malformed_fraction, dest)  # the copy is removed
                logger.info("extracted %s from %s to %s", name, url, dest)
            else:
                shutil.copyfile(source, tmp)
                logger.info("copied %s to %s", url, dest)
    logger.info("wrote %s (%d bytes)", dest, dest.stat().st_size)
    return dest


def download_corpus(raw: str | os.PathLike[str], settings: DownloadSettings) -> Path:
    """The download stage: :func:`fetch_corpus` of one corpus to ``raw``."""
    return fetch_corpus(settings.url, raw, member=settings.member, sha256=settings.sha256, retries=settings.retries,
                        timeout=settings.timeout, max_line_chars=settings.max_line_chars,
                        max_malformed_fraction=settings.max_malformed_fraction)


_BOM = b"\xef\xbb\xbf"
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that continue a character
# Bytes that make a line non-blank for str.strip() whatever follows: ASCII but whitespace (a NUL or another control
# byte that is not whitespace counts: a file of zero bytes is one long line), and lead bytes of characters that are
# never whitespace (U+00C0 and up, except the ranges that hold U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000).
_NOT_BLANK = bytes([*range(0x00, 0x09), *range(0x0E, 0x1C), *range(0x21, 0x80), *range(0xC3, 0xE1),
                    *range(0xE4, 0xF5)])
_OTHER = bytes(sorted(set(range(256)) - set(_NOT_BLANK)))


class LongLines:
    """The prepare stage's long-line rule (``prepare.max_line_chars``), applied to a text fed in chunks, in memory
    bounded by the chunk size whatever the length of a line: it counts the lines (blank ones too: at least as
    many as prepare reads) and the lines that surely have more than ``max_line_chars`` characters and are not
    blank (malformed for prepare), so that a file it refuses is one that prepare would refuse."""

    def __init__(self, max_line_chars: int) -> None:
        self.max_line_chars = max_line_chars
        self.lines = 0
        self.long = 0
        self.first_long: tuple[int, int] | None = None  # (line number, characters)
        self._bytes = self._chars = self._trailing_cr = 0  # of the line being read
        self._visible = False
        self._start: bytes | None = b""

    def feed(self, chunk: bytes) -> None:
        if self._start is not None:  # the file's first bytes, until we know whether they are a byte-order mark
            self._start += chunk
            if len(self._start) < len(_BOM) and b"\n" not in self._start:
                return
            chunk, self._start = self._start.removeprefix(_BOM), None  # prepare drops it
        parts = chunk.split(b"\n")
        self._extend(parts[0])  # continues the line being read
        if len(parts) == 1:
            return
        self._end_line()
        for part in parts[1:-1]:  # whole lines
            if len(part) > self.max_line_chars:  # bytes >= characters: only these can be long
                self._extend(part)
                self._end_line()
            else:
                self.lines += 1
        self._extend(parts[-1])  # the start of the next line

    def _extend(self, part: bytes) -> None:
        """Add ``part`` (bytes without a line break) to the line being read."""
        if not part:
            return
        self._bytes += len(part)
        self._chars += len(part.translate(None, _CONTINUATION))
        self._visible = self._visible or bool(part.translate(None, _OTHER))
        stripped = part.rstrip(b"\r")  # prepare strips the line's trailing carriage returns
        self._trailing_cr = self._trailing_cr + len(part) if not stripped else len(part) - len(stripped)

    def _end_line(self) -> None:
        characters = self._chars - self._trailing_cr
        if self._visible and characters > self.max_line_chars:
            self.long += 1
            if self.first_long is None:
                self.first_long = (self.lines + 1, characters)
        self.lines += 1
        self._bytes = self._chars = self._trailing_cr = 0
        self._visible = False

    def check(self, label: str, max_fraction: float, dest: Path) -> None:
        """DownloadError, naming the first long line, when more than ``max_fraction`` of the lines are long."""
        if self._start:  # a file shorter than a byte-order mark
            start, self._start = self._start, None
            self.feed(start)
        if self._bytes:
            self._end_line()
        if self.first_long is None or self.long <= max_fraction * self.lines:
            return
        number, characters = self.first_long
        raise DownloadError(
            f"{label}:{number}: {self.long:,} of {self.lines:,} lines have more than prepare.max_line_chars="
            f"{self.max_line_chars:,} characters (line {number}: {characters:,}), more than prepare."
            f"max_malformed_fraction={max_fraction:.1%} of them: not a file of sentence pairs? Nothing was "
            f"written to {dest}")


def local_path(url: str) -> Path | None:
    """The local file a ``file://`` URL or plain path names; None for a remote (http/https) URL."""
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError as error:  # e.g. an unclosed "[" in the host: "Invalid IPv6 URL"
        raise DownloadError(f"{url}: not a valid URL ({error})") from None
    scheme = parsed.scheme.lower()
    if scheme in REMOTE_SCHEMES:
        return None
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DownloadError(f"{url}: file:// URLs must name a local file (file:///path/to/file)")
        return Path(urllib.request.url2pathname(parsed.path))
    if scheme == "" or len(scheme) == 1:  # a plain path, or a Windows drive letter such as C:
        return Path(url).expanduser()
    raise DownloadError(f"{url}: unsupported URL scheme {parsed.scheme!r} (use https://, http://, file:// or a path)")


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20,
                observe: Callable[[bytes], None] | None = None) -> str:
    """Hex sha256 digest of a file, read in chunks; ``observe`` sees each chunk too."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
            if observe is not None:
                observe(chunk)
    return digest.hexdigest()


def _download(url: str, folder: Path, dest: Path, retries: int, timeout: float, backoff: float) -> Path:
    """Download ``url`` into ``folder`` with pooch, retrying transient failures; return the file."""
    name = PurePosixPath(urllib.parse.urlparse(url).path).name or "download"
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    attempts = max(0, int(retries)) + 1
    for attempt in range(1, attempts + 1):
        try:
            logger.info("downloading %s (attempt %d of %d, timeout %gs)", url, attempt, attempts, timeout)
            return Path(pooch.retrieve(url, known_hash=None, fname=name, path=folder, downloader=downloader))
        except requests.exceptions.RequestException as error:
            reason = _short_reason(error)
            status = getattr(getattr(error, "response", None), "status_code", None)
            permanent = status is not None and 400 <= status < 500 and status not in (408, 429)
            if permanent or attempt == attempts:
                pair = dest.name.removesuffix(".txt")
                raise DownloadError(
                    f"could not download {url} ({reason}, {attempt} attempt(s)); offline? point the pipeline "
                    f"at a local copy with --configfile local.yaml holding "
                    f"'corpora: {{{pair}: {{url: /path/to/file.zip, member: FILE.txt}}}}'"
                ) from None  # the message names the reason; requests' chain of nested reprs adds ~80 lines
            wait = backoff * 2 ** (attempt - 1)
            logger.warning("download of %s failed (%s); retrying in %.1fs", url, reason, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _short_reason(error: Exception) -> str:
    """A one-line description of a requests error (their messages nest several reprs)."""
    response = getattr(error, "response", None)
    if response is not None and getattr(response, "status_code", None) is not None:
        return f"HTTP {response.status_code}"
    return type(error).__name__


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _unsafe_member(name: str) -> bool:
    """True for archive member names that would point outside the folder they are unpacked into."""
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PureWindowsPath(name).is_absolute():
        return True
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return ".." in parts


def _extract_member(archive: Path, member: str | None, target: Path, label: str,
                    observe: Callable[[bytes], None] | None = None) -> str:
    """Copy one member of the zip ``archive`` into the file ``target`` (``observe`` sees each chunk); return the
    member's name."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [info.filename for info in zf.infolist() if not info.is_dir()]
            if member is None:
                texts = [n for n in names if n.lower().endswith(".txt")]
                if len(texts) != 1:
                    found = "no .txt member" if not texts else f"{len(texts)} .txt members"
                    raise DownloadError(
                        f"{label}: {found}; set 'member' to one of {names}"
                    )
                member = texts[0]
            if _unsafe_member(member):
                raise DownloadError(
                    f"{label}: refusing archive member {member!r}: it points outside the target folder"
                )
            if member not in names:
                raise DownloadError(f"{label}: no member {member!r} in the archive; members: {names}")
            if zf.getinfo(member).flag_bits & 0x1:
                raise DownloadError(f"{label}: member {member!r} is password-protected; give an unencrypted archive")
            with zf.open(member) as src, open(target, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    out.write(chunk)
                    if observe is not None:
                        observe(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # a damaged archive or member
        raise DownloadError(f"{label}: not a valid zip archive ({error})") from error
    except NotImplementedError as error:  # zipfile reads stored, deflate, bzip2 and lzma members only
        raise DownloadError(f"{label}: member {member!r}: {error}; re-pack the archive with deflate") from error
    return member
