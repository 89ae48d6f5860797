"""Atomic writes: all or nothing, with the usual permissions."""

import os
import stat

import pytest

from seq2seq.fileio import atomic_open, write_json


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names open files through /proc (Linux)")
def test_the_bytes_reach_the_disk_before_the_rename_and_the_rename_before_it_returns(tmp_path, monkeypatch):
    """A machine that fails just after the rename must find the whole new file, not an empty one: without an
    fsync the rename can reach the disk before the bytes do."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", os.path.basename(path), os.path.getsize(path)))
        real_fsync(fd)

    def replace(source, target):
        events.append(("rename", os.path.basename(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_open(tmp_path / "out.txt") as handle:
        handle.write("all of it")
    [(kind, temporary, size), rename, folder] = events
    assert (kind, size) == ("fsync", len("all of it")) and temporary.startswith(".out.txt.")  # the bytes first,
    assert rename == ("rename", "out.txt")                                                  # then the rename,
    assert folder[:2] == ("fsync", tmp_path.name)                                           # then its folder
