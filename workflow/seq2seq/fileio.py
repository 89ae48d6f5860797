"""Atomic file writing: an interrupted write never leaves a file that looks finished, and a full disk is said
in one line naming the file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from .logs import InputError

# A write that failed while less than this was free on its file system failed for want of space. torch.save
# on a full disk raises "RuntimeError: [enforce fail at inline_container.cc] unexpected pos", with no errno.
FULL_DISK_BYTES = 1 << 20


class DiskFullError(InputError, OSError):
    """A file could not be written because its disk (or quota) is full; the message names the file."""


def free_bytes(folder: str | os.PathLike[str]) -> int:
    """Bytes free to this user on the file system of ``folder``."""
    return shutil.disk_usage(folder).free


def _is_full_disk(error: BaseException, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(error, (OSError, RuntimeError)):
        return False
    try:
        return free_bytes(folder) < FULL_DISK_BYTES
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync(path: Path) -> None:
    """fsync ``path``: a file's bytes, or a folder's entries (a rename in it). Systems that cannot open a folder
    (Windows) skip the folder; a file its owner may not read (the umask masks mkstemp's 0600 too: 0444 leaves
    0200) is opened for writing instead."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        if path.is_dir():
            return
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike[str]) -> None:
    """:class:`InputError` where ``path`` could not be written, to say so before the work that would write it:
    its folder, or the nearest one above it that exists (the writer makes the rest), is a file or not writable."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot be written: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot be written: no permission to write in {folder}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Parent folders are created. On any exception the temporary file is removed and ``path``
    is left as it was; a write that failed for want of space raises :class:`DiskFullError` naming ``path``.
    The new bytes reach the disk before the rename, and the rename before this returns, so that a machine that
    fails (a cluster node that loses power) leaves the old file or the whole new one, never an empty one that
    looks finished.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        if _is_full_disk(error, target.parent if target.parent.exists() else Path(".")):
            raise DiskFullError(f"{target}: cannot write it: no space left on the disk") from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, target)
        _sync(target.parent)
    except BaseException as error:
        full = not isinstance(error, DiskFullError) and _is_full_disk(error, target.parent)  # before the unlink
        tmp.unlink(missing_ok=True)
        if full:
            raise DiskFullError(f"{target}: cannot write it: no space left on the disk "
                                f"({free_bytes(target.parent) / 1e6:.1f} MB free once the partial file was "
                                f"removed)") from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as pretty, key-sorted JSON (byte-identical for equal data), atomically."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
