"""The per-rule conda environments: well-formed, conda-forge only, pinned, and used by every rule.

Conda cannot be installed on the machines these tests run on, so the files are checked, not solved."""

from __future__ import annotations

import re
import shutil

import yaml

from helpers import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))


def test_every_env_is_conda_forge_only_and_pinned():
    assert {p.stem for p in ENVS} == {"data", "train", "plot"}
    for path in ENVS:
        env = yaml.safe_load(path.read_text())
        assert env["channels"] == ["conda-forge", "nodefaults"], path
        for dependency in env["dependencies"]:
            assert isinstance(dependency, str) and re.search(r"\s=\S", dependency), f"{path}: unpinned {dependency!r}"


def test_training_env_has_a_cuda_pytorch():
    env = yaml.safe_load((REPO / "envs" / "train.yaml").read_text())
    assert any(d.startswith("pytorch ") and "cuda" in d for d in env["dependencies"])
    assert any(d.startswith("cuda-version ") for d in env["dependencies"])


def test_every_rule_has_a_conda_env_and_a_log():
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    rules = re.findall(r"^rule (\w+):", text, re.M)
    assert set(rules) >= {"download", "prepare", "vocab", "train", "evaluate", "figures", "summary"}
    for rule, body in zip(rules, re.split(r"^rule \w+:", text, flags=re.M)[1:]):
        assert re.search(r'conda:\s*\n\s*"\.\./\.\./envs/\w+\.yaml"', body), rule
        assert re.search(r'log:\s*\n\s*"results/logs/', body), rule
        env = re.search(r'envs/(\w+)\.yaml', body).group(1)
        assert (REPO / "envs" / f"{env}.yaml").exists(), rule


def test_ci_stops_when_chromium_cannot_be_installed(tmp_path):
    """.ci/run on a machine without Chromium and without apt-get: it stops with one line saying why, before it
    builds anything (without Chromium the browser tests would not run)."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id", "sudo"):  # all .ci/run needs before its Chromium block; no chromium, no apt-get
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = subprocess.run(["/bin/bash", str(REPO / ".ci" / "run")], capture_output=True, text=True, timeout=60,
                            env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: Chromium is missing and could not be installed")
    assert "export REQUIRE_BROWSER=1" in (REPO / ".ci" / "run").read_text()


def test_required_browser_tests_fail_instead_of_skipping(tmp_path):
    """With REQUIRE_BROWSER=1 (as .ci/run sets it) a missing Chromium fails the browser tests, before any
    pipeline run (without it they are skipped, saying why)."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",  # one process
               "-k", "loads_without_errors", str(REPO / "tests" / "test_explorer_browser.py")]
    env = {**os.environ, "SEQ2SEQ_CHROMIUM": str(tmp_path / "no-chromium"), "REQUIRE_BROWSER": "1"}
    required = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert required.returncode == 1, required.stdout
    assert f"REQUIRE_BROWSER=1 but the browser tests cannot run: no Chromium at {tmp_path / 'no-chromium'}" in \
        required.stdout
    assert "1 error" in required.stdout and "passed" not in required.stdout
