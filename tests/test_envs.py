"""The per-rule conda environments: well-formed, conda-forge only, pinned, and used by every rule.

Conda cannot be installed on the machines these tests run on, so the files are checked, not solved."""

from __future__ import annotations

import re

import yaml

from conftest import REPO

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
