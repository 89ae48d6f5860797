"""workflow/profiles/slurm/local-cluster/cluster.sh, the parts that need no Slurm: what `stop` leaves behind.

The script's folders are pointed at temporary ones (LOCAL_SLURM_ETC, LOCAL_SLURM_STATE), so that these tests
never touch a cluster that runs here (the `slurm` tests' one, in .ci/run)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers import REPO

SCRIPT = REPO / "workflow" / "profiles" / "slurm" / "local-cluster" / "cluster.sh"
MARK = "# written by seq2seq local-cluster/cluster.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cluster.sh stop runs as root only (it stops daemons)")


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LOCAL_SLURM_ETC=str(tmp_path / "etc"), LOCAL_SLURM_STATE=str(tmp_path / "state"))
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_stop_removes_the_config_it_wrote_and_nothing_else(tmp_path: Path) -> None:
    # A slurm.conf left behind names a controller that is gone: every Slurm command then waits ~10 s for it,
    # and so does every Snakemake start with the SLURM plugin installed (it runs `scontrol show config`).
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("slurm.conf", "gres.conf", "slurmdbd.conf"):
        (etc / name).write_text(f"{MARK}\nSomething=1\n")
    (etc / "plugstack.conf").write_text("include /etc/slurm/plugstack.conf.d/*.conf\n")  # the package's own
    (tmp_path / "state").mkdir()

    stopped = run_script(tmp_path, "stop")

    assert stopped.returncode == 0, stopped.stderr
    assert "local-cluster: stopped" in stopped.stderr
    assert sorted(p.name for p in etc.iterdir()) == ["plugstack.conf"]


def test_stop_leaves_a_config_it_did_not_write(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    site = "ClusterName=site\nSlurmctldHost=head\n"
    (etc / "slurm.conf").write_text(site)

    stopped = run_script(tmp_path, "stop")

    assert stopped.returncode == 0, stopped.stderr
    assert (etc / "slurm.conf").read_text() == site
