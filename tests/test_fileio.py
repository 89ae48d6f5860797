"""Atomic writes: all or nothing, with the usual permissions."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from seq2seq import fileio
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


def test_a_strict_umask_still_writes_and_syncs():
    """The fsync opens the temporary file again: under a umask that leaves its owner no read permission (0o444),
    that failed with PermissionError where the write itself had worked. (Root reads any file: as root, the write
    runs as the user nobody, in a folder of the system's temporary one that nobody can reach.)"""
    script = ("import os, sys; os.umask(0o444); from seq2seq.fileio import write_json; "
              "write_json(sys.argv[1], {'a': 1})")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "x.json"
        command = [sys.executable, "-c", script, str(target)]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("root, and no setpriv to write as another user")
            Path(folder).chmod(0o777)
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        package = str(Path(fileio.__file__).resolve().parents[1])
        reach = subprocess.run([*command[:command.index("-c") + 1], "import seq2seq.fileio"], capture_output=True,
                               env={**os.environ, "PYTHONPATH": package})
        if reach.returncode != 0:
            pytest.skip("the user nobody cannot run this interpreter or read the package here")
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": package})
        assert done.returncode == 0, done.stderr[-2000:]
        assert stat.S_IMODE(target.stat().st_mode) == 0o222
