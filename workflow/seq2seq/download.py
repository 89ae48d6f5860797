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
from pathlib import Path, PurePosixPath, PureWindowsPath

import pooch
import requests

from .fileio import atomic_path
from .logs import InputError
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
    retries: int = 3,
    timeout: float = 60,
    backoff: float = 2.0,
) -> Path:
    """Write the raw text corpus behind ``url`` to ``dest`` and return ``dest``.

    ``url`` is an ``http(s)://`` or ``file://`` URL or a plain (relative or absolute) path.
    ``sha256`` is checked against the file as given (the archive, not the member). A ``.zip``
    archive yields ``member``, or its only ``.txt`` member when ``member`` is None; other files
    are copied. ``retries`` extra attempts, ``timeout`` seconds each and an exponential
    ``backoff`` (seconds) apply to remote URLs. ``dest`` only appears once everything succeeded.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = local_path(url)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as tmp_dir:
        if local is None:
            source = _download(url, Path(tmp_dir), dest, retries=retries, timeout=timeout, backoff=backoff)
        else:
            if not local.is_file():
                raise DownloadError(f"{url}: no such file")
            source = local
            logger.info("using local file %s (%d bytes)", source, source.stat().st_size)
        digest = file_sha256(source)
        logger.info("sha256 of %s: %s", url, digest)
        if sha256 is not None and digest.lower() != sha256.strip().lower():
            kept = "" if local is not None else "; the download was not kept"
            raise DownloadError(
                f"{url}: sha256 mismatch: expected {sha256.strip().lower()}, got {digest}{kept}; if this is the "
                f"file you meant, set corpora.{dest.name.removesuffix('.txt')}.sha256 to its hash (or null)"
            )
        with atomic_path(dest) as tmp:
            if _is_zip(source):
                name = _extract_member(source, member, tmp, label=url)
                logger.info("extracted %s from %s to %s", name, url, dest)
            elif member is not None:
                raise DownloadError(f"{url}: member {member!r} was requested but the file is not a zip archive")
            else:
                shutil.copyfile(source, tmp)
                logger.info("copied %s to %s", url, dest)
    logger.info("wrote %s (%d bytes)", dest, dest.stat().st_size)
    return dest


def download_corpus(raw: str | os.PathLike[str], settings: DownloadSettings) -> Path:
    """The download stage: :func:`fetch_corpus` of one corpus to ``raw``."""
    return fetch_corpus(settings.url, raw, member=settings.member, sha256=settings.sha256, retries=settings.retries,
                        timeout=settings.timeout)


def local_path(url: str) -> Path | None:
    """The local file a ``file://`` URL or plain path names; None for a remote (http/https) URL."""
    parsed = urllib.parse.urlparse(url)
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


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
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


def _extract_member(archive: Path, member: str | None, target: Path, label: str) -> str:
    """Copy one member of the zip ``archive`` into the file ``target``; return the member's name."""
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
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{label}: not a valid zip archive ({error})") from error
    return member
