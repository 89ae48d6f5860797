"""The SLURM profile, against stand-in sbatch/sacct/sinfo/sacctmgr commands that record their calls."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from helpers import REPO, snakemake

pytestmark = pytest.mark.workflow

PROFILE = str(REPO / "workflow" / "profiles" / "slurm")

# Each stand-in appends its command line to $SLURM_STUB_LOG. sbatch records the job and then refuses it: the
# tests only look at what was submitted and what ran locally, and a refused job ends the run at once (an
# accepted one kept the executor polling sacct for ~10 s more before it shut down).
STUBS = {
    "sbatch": 'echo "sbatch $*" >> "$SLURM_STUB_LOG"\necho "sbatch: error: stand-in refuses every job" >&2\nexit 1\n',
    "sacct": 'echo "sacct $*" >> "$SLURM_STUB_LOG"\necho "4242|FAILED"\n',
    "squeue": 'echo "squeue $*" >> "$SLURM_STUB_LOG"\necho "4242|FAILED"\n',
    "sinfo": 'echo "sinfo $*" >> "$SLURM_STUB_LOG"\n',
    "scancel": 'echo "scancel $*" >> "$SLURM_STUB_LOG"\n',
    "sacctmgr": 'echo "sacctmgr $*" >> "$SLURM_STUB_LOG"\necho CHANGE_ME_account\n',
    "sshare": 'echo "sshare $*" >> "$SLURM_STUB_LOG"\necho CHANGE_ME_account\n',
}


@pytest.fixture
def slurm_stubs(tmp_path: Path) -> tuple[dict, Path]:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "slurm-calls.log"
    log.touch()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_STUB_LOG": str(log)}
    return env, log


def sbatch_calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("sbatch ")]


def job_settings(dry_run: str, rule: str) -> list[dict]:
    """threads and resources of each job of ``rule`` in the output of `snakemake -n`: [{"threads": "2",
    "gpu": "1", ...}, ...]."""
    jobs = []
    for block in dry_run.split(f"rule {rule}:\n")[1:]:
        lines = []
        for line in block.splitlines():
            if not line.startswith("    "):  # the job's indented lines end here
                break
            lines.append(line.strip())
        settings = {"threads": "1"}
        for line in lines:
            if line.startswith("threads:"):
                settings["threads"] = line.split(":", 1)[1].strip()
            elif line.startswith("resources:"):
                settings.update(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))
        jobs.append(settings)
    return jobs


def test_slurm_profile_dry_run_plans_the_whole_pipeline_with_evaluate_on_a_gpu(tmp_path):
    """The profile's set-threads and set-resources reach every job: evaluate (greedy and beam search over the
    test split) asks for a GPU and as many CPUs per GPU as it runs threads, its memory and time."""
    profile = yaml.safe_load((Path(PROFILE) / "config.yaml").read_text())
    wanted, threads = profile["set-resources"]["evaluate"], profile["set-threads"]["evaluate"]
    result = snakemake(tmp_path, "--profile", PROFILE, "-n", "--cores", "8")
    assert "train" in result.stdout and "summary" in result.stdout
    [evaluate] = job_settings(result.stdout, "evaluate")
    assert evaluate["threads"] == str(threads) == str(wanted["cpus_per_gpu"])
    assert int(evaluate["gpu"]) == wanted["gpu"] >= 1
    assert (evaluate["mem_mb"], evaluate["runtime"]) == (str(wanted["mem_mb"]), str(wanted["runtime"]))
    assert evaluate["slurm_partition"] == profile["default-resources"]["slurm_partition"]
    [train] = job_settings(result.stdout, "train")
    assert train["threads"] == str(profile["set-threads"]["train"]) and train["gpu"] == "1"


def test_locally_evaluate_holds_no_gpu_and_runs_the_configured_threads(tmp_path):
    """Without a cluster profile evaluate uses resources.evaluate: 2 threads on the CPU, no GPU held (so it can
    run beside a training job on a one-GPU workstation)."""
    result = snakemake(tmp_path, "-n", "--cores", "8")
    [evaluate] = job_settings(result.stdout, "evaluate")
    assert (evaluate["threads"], evaluate["gpu"], evaluate["mem_mb"], evaluate["runtime"]) == ("2", "0", "4000", "60")


def test_download_runs_locally_and_the_next_stage_is_submitted(tiny_workdir, slurm_stubs):
    workdir, config = tiny_workdir
    env, log = slurm_stubs
    snakemake(workdir, "--profile", PROFILE, "--retries", "0", "--slurm-init-seconds-before-status-checks", "1",
              "results/fra-eng/data/stats.json",
              "--configfile", str(config), check=False, env=env, timeout=300)
    assert (workdir / "data" / "raw" / "fra-eng.txt").exists()  # ran on the submit host
    calls = sbatch_calls(log)
    assert calls, log.read_text()
    assert not any("rule_download" in call for call in calls)
    assert any("rule_prepare" in call for call in calls)


def test_train_is_submitted_with_a_gpu_request(tiny_workdir, slurm_stubs):
    workdir, config = tiny_workdir
    env, log = slurm_stubs
    # the data stages first, locally, so that training is the next job to submit
    snakemake(workdir, "--cores", "2", "results/fra-eng/vocab/source.json", "results/fra-eng/vocab/target.json",
              "--configfile", str(config))
    snakemake(workdir, "--profile", PROFILE, "--retries", "0", "--slurm-init-seconds-before-status-checks", "1",
              "results/fra-eng/bahdanau/model.pt",
              "--configfile", str(config), check=False, env=env, timeout=300)
    train_calls = [call for call in sbatch_calls(log) if "rule_train" in call]
    assert len(train_calls) == 1, log.read_text()
    call = train_calls[0]
    assert "--gpus=1" in call or "--gres=gpu:1" in call, call
    assert "--cpus-per-gpu=4" in call, call
    assert "-p CHANGE_ME_partition" in call or "--partition CHANGE_ME_partition" in call or \
        "--partition=CHANGE_ME_partition" in call, call


def test_the_compare_config_plans_24_training_jobs_each_asking_for_a_gpu(tmp_path):
    """2 pairs x 4 models x 3 seeds, spread over a cluster's GPUs by the SLURM profile (a dry run needs no sbatch)."""
    compare = str(REPO / "workflow" / "configs" / "compare.yaml")
    result = snakemake(tmp_path, "--profile", PROFILE, "-n", "--configfile", compare)
    counts = dict(line.split()[:2] for line in result.stdout.splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit())
    assert counts["train"] == "24" and counts["evaluate"] == "24" and counts["summary"] == "1", result.stdout
    trains = [block for block in result.stdout.split("rule train:")[1:]]
    assert len(trains) == 24
    assert all("gpu=1" in block.split("\n\n")[0] for block in trains), trains[0]
    for pair in ("fra-eng", "deu-eng"):
        for model in ("none", "tutorial", "bahdanau", "luong"):
            for seed in (1, 2, 3):
                assert f"results/{pair}/{model}/seed{seed}/model.pt" in result.stdout


def test_every_request_of_the_profile_fits_a_one_gpu_node():
    """What the profile's header promises: 1 GPU, 4 CPUs and 16 GB (a 16-GB node offers Slurm a little less) are
    enough for any one of its jobs (the real scheduler test in test_workflow_slurm.py runs them)."""
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, resources in profile["set-resources"].items():
        merged = {**profile["default-resources"], **resources}
        gpus = merged.get("gpu", 0)
        cpus = merged["cpus_per_gpu"] * gpus if gpus and "cpus_per_gpu" in merged else profile["set-threads"][rule]
        assert gpus <= 1 and cpus <= 4 and merged["mem_mb"] <= 15000, (rule, merged)


def test_the_cluster_extras_ask_for_a_slurm_plugin_whose_squeue_status_works():
    """The profile's `slurm-status-command: squeue` fails on every check with plugins 2.0 and 2.1 (`--format=%i|%T`
    unquoted in a shell) and the run waits forever; the installed plugin must fit the extras' requirement."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = [Requirement(spec) for extra in ("cluster", "test") for spec in extras[extra]
              if Requirement(spec).name == "snakemake-executor-plugin-slurm"]
    assert len(wanted) == 2
    for requirement in wanted:
        assert not requirement.specifier.contains("2.1.0") and requirement.specifier.contains(
            importlib.metadata.version("snakemake-executor-plugin-slurm")), requirement


def test_the_readmes_squeue_advice_covers_the_plugins_longest_wait_between_status_checks():
    """squeue is safe while it still lists a finished job at the plugin's next check: the README's MinJobAge
    floor (300 s) must exceed the plugin's longest wait, which it names (180 s in 2.8.0)."""
    import inspect
    import re

    import snakemake_executor_plugin_slurm

    longest = int(re.search(r"max_sleep_time = (\d+)", inspect.getsource(snakemake_executor_plugin_slurm)).group(1))
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"up to {longest} s apart" in readme and "keep squeue where `MinJobAge` is at least 300" in readme
    assert longest + 60 <= 300  # and slurmctld's purge pass, about a minute
