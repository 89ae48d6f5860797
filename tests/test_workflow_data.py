"""Snakemake runs of the data stages on a tiny corpus, dry runs of the default DAG and config validation."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from helpers import REPO, snakemake, tiny_workdir_in, write_config, write_raw_corpus

pytestmark = pytest.mark.workflow


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def data_run(tmp_path_factory) -> tuple[Path, Path]:
    """(workdir, configfile): the data stages of the tiny corpus, run once for the module's first two tests."""
    workdir, config = tiny_workdir_in(tmp_path_factory.mktemp("data"))
    snakemake(workdir, "--cores", "2", "results/fra-eng/vocab/source.json", "results/fra-eng/vocab/target.json",
              "--configfile", str(config))
    return workdir, config


def test_data_stages_write_splits_and_vocabularies(data_run):
    workdir, _ = data_run
    data = workdir / "results" / "fra-eng" / "data"
    splits = {name: read_tsv(data / f"{name}.tsv") for name in ("train", "valid", "test")}
    assert all(splits.values())
    assert sum(len(rows) for rows in splits.values()) == 144
    # normalized as the tutorial does, French is the source side
    assert {"source": "je suis tres content .", "target": "i am very happy ."} in [
        row for rows in splits.values() for row in rows
    ]
    train_sources = {row["source"] for row in splits["train"]}
    assert not train_sources & {row["source"] for row in splits["test"]}

    stats = json.loads((data / "stats.json").read_text())
    assert stats["read"] == 144 and stats["malformed"] == 0
    assert stats["train"] + stats["valid"] + stats["test"] == 144

    vocab_dir = workdir / "results" / "fra-eng" / "vocab"
    source = json.loads((vocab_dir / "source.json").read_text())
    target = json.loads((vocab_dir / "target.json").read_text())
    assert source["specials"] == ["<pad>", "<sos>", "<eos>", "<unk>"]
    train_source_words = {w for row in splits["train"] for w in row["source"].split()}
    train_target_words = {w for row in splits["train"] for w in row["target"].split()}
    assert set(source["tokens"]) == train_source_words
    assert set(target["tokens"]) == train_target_words
    assert source["counts"]["."] == len(splits["train"])  # every sentence ends with one

    for name in ("download", "prepare", "vocab"):
        assert (workdir / "results" / "logs" / name / "fra-eng.log").exists()


def test_data_stages_are_byte_identical_on_rerun(data_run):
    workdir, config = data_run
    outputs = ["results/fra-eng/data/train.tsv", "results/fra-eng/data/test.tsv",
               "results/fra-eng/data/stats.json", "results/fra-eng/vocab/source.json"]
    first = {o: hashlib.sha256((workdir / o).read_bytes()).hexdigest() for o in outputs}
    snakemake(workdir, "--cores", "2", "--forceall", *outputs, "--configfile", str(config))
    second = {o: hashlib.sha256((workdir / o).read_bytes()).hexdigest() for o in outputs}
    assert first == second


def test_dry_run_of_the_default_pipeline_plans_every_stage(tmp_path):
    result = snakemake(tmp_path, "-n", "--quiet", "rules")
    for rule in ("download", "prepare", "vocab", "train", "evaluate", "figures", "summary", "all"):
        assert rule in result.stdout, result.stdout


def test_dry_run_with_the_shipped_config_in_the_working_directory():
    # --forceall: plan every job even where the README's pipeline has already run in this checkout
    result = snakemake(REPO, "-n", "--quiet", "rules", "--forceall")
    assert "train" in result.stdout, result.stdout


def test_an_override_leaves_a_model_out_with_null(tmp_path):
    override = write_config(tmp_path / "only-luong.yaml",
                            {"models": {"bahdanau": None, "luong": {"attention": "luong"}}})
    result = snakemake(tmp_path, "-n", "--configfile", str(override))
    assert "results/fra-eng/luong/model.pt" in result.stdout
    assert "results/fra-eng/bahdanau/" not in result.stdout
    everything_out = write_config(tmp_path / "none.yaml", {"models": {"bahdanau": None}})
    failed = snakemake(tmp_path, "-n", "--configfile", str(everything_out), check=False)
    assert failed.returncode != 0 and "config: models: {} should be non-empty" in failed.stdout + failed.stderr


# Each message is checked in-process in test_settings.py; these two (one the schema finds, one found across keys)
# check that such a line reaches the user alone, before any job, through Snakemake.
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"trainig": {"epochs": 3}}, "config: (top level): Additional properties are not allowed ('trainig' was "
                                     "unexpected) (bad.yaml:1)"),
        ({"models": {"m": {"attention": "luong", "embedding_size": 64}}}, "models.m: tie_embeddings needs"),
    ],
)
def test_bad_config_fails_before_any_job_with_the_key_named(tmp_path, override, message):
    config = write_config(tmp_path / "bad.yaml", override)
    result = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output
    assert "(bad.yaml:" in output  # where the key is set: the file (relative to the working folder) and line
    assert len(output.splitlines()) < 10, output  # the message, not a dump of the schema


def test_local_copy_override_is_one_line(tmp_path):
    raw = write_raw_corpus(tmp_path / "fra-eng.txt")
    config = tmp_path / "local.yaml"
    config.write_text(f"corpora: {{fra-eng: {{url: {raw}, member: null, sha256: null}}}}\n", encoding="utf-8")
    snakemake(tmp_path, "--cores", "1", "data/raw/fra-eng.txt", "--configfile", str(config))
    assert (tmp_path / "data" / "raw" / "fra-eng.txt").read_bytes() == raw.read_bytes()
    # A newer file at the same path (no checksum set to notice it) is copied again, not ignored
    raw.write_bytes(raw.read_bytes() + "We are here.\tNous sommes ici.\n".encode())
    copy_time = time.time() - 10  # the copy older than the new file, whatever the filesystem's time step
    os.utime(tmp_path / "data" / "raw" / "fra-eng.txt", (copy_time, copy_time))
    snakemake(tmp_path, "--cores", "1", "data/raw/fra-eng.txt", "--configfile", str(config))
    assert (tmp_path / "data" / "raw" / "fra-eng.txt").read_bytes() == raw.read_bytes()


def test_lint_finds_nothing():
    result = snakemake(REPO, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def _offline(command: list[str]) -> list[str]:
    """``command`` without network: in a network namespace of its own where the machine allows one, else with
    proxies that refuse every connection."""
    import shutil
    import subprocess

    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn", *command]
    return command


OFFLINE_ENV = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "",
               # Snakemake's SLURM plugin runs `scontrol show config` when imported; where a Slurm is installed
               # (as on CI), in a namespace without network that waits out its 10 s timeout. No config: it fails
               # at once (these runs are local).
               "SLURM_CONF": "/dev/null"}


def _snakemake_offline(workdir: Path, *args: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, **OFFLINE_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = _offline([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                        str(workdir), *args])
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_the_default_config_runs_the_data_stages_offline_from_the_shipped_corpus(tmp_path):
    """A fresh clone with no network: the default config reads data/fra-eng.zip, sha256 checked."""
    result = _snakemake_offline(tmp_path, "--cores", "2", "results/fra-eng/vocab/source.json",
                                "results/fra-eng/vocab/target.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = (tmp_path / "results" / "logs" / "download" / "fra-eng.log").read_text()
    assert "using local file" in log and "16c4f7d0df9e7c5e6c54cdb0447f3f4a18a55052ff5e2e0b27dd4a06c0e49d04" in log
    data = tmp_path / "results" / "fra-eng" / "data"
    stats = json.loads((data / "stats.json").read_text())
    assert stats["read"] == 142_787 and stats["raw_sha256"]
    # the tutorial's filter (fewer than 10 words, "i am / he is ..." prefixes) keeps exactly these, as
    # data/README.md and the README's numbers say; 7 of them are duplicates
    assert (stats["kept"], stats["unique"]) == (11_182, 11_175)
    assert (stats["train"], stats["valid"], stats["test"]) == (8_938, 1_118, 1_119)
    splits = {name: read_tsv(data / f"{name}.tsv") for name in ("train", "valid", "test")}
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [8_938, 1_118, 1_119]
    sources = {name: {row["source"] for row in rows} for name, rows in splits.items()}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["valid"]
    assert not sources["valid"] & sources["test"]
    vocab = tmp_path / "results" / "fra-eng" / "vocab"
    source, target = (json.loads((vocab / f"{side}.json").read_text()) for side in ("source", "target"))
    # config.yaml's 2,000 sentencepiece pieces a side; the English side has only 1,829 in this training split
    assert (source["type"], source["size"], target["size"]) == ("sentencepiece", 2000, 1829)


def test_an_offline_download_error_reaches_the_user_as_one_line(tmp_path):
    """deu-eng is not shipped: without network its download fails with a message saying what to do, and no
    traceback and no half-written file."""
    config = write_config(tmp_path / "deu.yaml", {"pairs": ["deu-eng"], "download": {"retries": 0, "timeout": 5}})
    result = _snakemake_offline(tmp_path, "--cores", "1", "data/raw/deu-eng.txt", "--configfile", str(config))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "download failed: could not download https://www.manythings.org/anki/deu-eng.zip (" in output
    assert "offline? point the pipeline at a local copy" in output
    assert "Traceback" not in output
    assert not (tmp_path / "data" / "raw" / "deu-eng.txt").exists()
    assert not list((tmp_path / "data" / "raw").glob(".download-*"))
