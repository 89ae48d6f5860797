"""The pipeline through the project's own SLURM profile on a real one-node Slurm with one (fake) GPU.

The cluster is `workflow/profiles/slurm/local-cluster/cluster.sh` (`.ci/run` starts it before the tests and stops
it after them); where none answers, the whole module is skipped with one line saying why. The `runs` fixture
starts every scenario in a thread (they mostly wait on the scheduler) and each test waits for its own:

- pipeline: every stage through the profile as shipped, as Slurm jobs, where Snakemake sees no accounting (the
  profile's `slurm-status-command: squeue`), beside a local run of the same config at the same thread counts,
  whose products must be the same;
- walltime: a training job with `runtime: 1` stopped by its time limit, resumed by the profile's retry, with
  `--slurm-status-command sacct` and accounting on;
- scancel: a training job cancelled by hand, reported in one line, resumed by running the command again; both
  compared with the same training run locally without a break.

The interrupted training jobs are frozen with SIGSTOP after their first epoch, so that they are still mid-run
when Slurm's SIGTERM comes (Slurm sends SIGCONT with it) without burning a CPU for the minute before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
import torch
import yaml

from helpers import REPO, slurm_unreachable, snakemake, tiny_config, write_config, write_raw_corpus

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

CLUSTER_SCRIPT = "workflow/profiles/slurm/local-cluster/cluster.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
ACCOUNT = PARTITION = "local"  # what cluster.sh creates
# The plugin's first status check comes this many seconds after a submission, the next ones 10 s later each time
# (10, 20, 30...) until a job has finished. The tiny stages take 9-19 s as Slurm jobs here: a first check at 5 s
# finds each at the second (20 s after submission) instead of the third (30 s), over six levels of the DAG. The
# time-limit job lasts 61-92 s (Slurm enforces limits every 30 s): its checks come at 9, 28, 57 and 96 s.
FIRST_CHECK = {"stage": 5, "time limit": 9}
# One thread a job, here and in the local runs they are compared with: on 2 cores, five scenarios at once with
# the profile's 4 threads (2 once capped to the CPUs) made every job several times slower.
THREADS = ["--set-threads", "train=1", "evaluate=1", "figures=1"]
TIMEOUT = 600  # seconds for one Snakemake command: far more than it needs; a hung status poll fails the test
PAIR, MODEL = "fra-eng", "bahdanau"
RUN = Path("results") / PAIR / MODEL
TRAIN_LOG = Path("results") / "logs" / "train" / PAIR / f"{MODEL}.log"
# Long enough to be stopped mid-run, short enough for the rest to finish inside the 1-minute limit.
RESUME_TRAINING = {"epochs": 4, "batch_size": 4, "device": "cpu", "early_stopping": {"patience": 100}}
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/")


def _cluster_problem() -> str | None:
    """Why the Slurm tests cannot run here, or None."""
    start = f"(start one as root: {CLUSTER_SCRIPT} start)"
    missing = [name for name in ("sbatch", "scontrol", "sinfo", "squeue", "sacct", "scancel") if not shutil.which(name)]
    if missing:
        return f"no {', '.join(missing)} on PATH: no Slurm here {start}"
    unreachable = slurm_unreachable()  # found when the suite started (conftest.py)
    if unreachable:
        return f"no Slurm controller answers (scontrol ping: {unreachable}) {start}"
    try:
        # scontrol ping answers at once; sinfo retries a controller that is down for 10 s
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
        if "UP" not in ping.stdout:
            said = (ping.stdout.strip() or ping.stderr.strip() or "no answer").splitlines()[0]
            return f"no Slurm controller answers (scontrol ping: {said}) {start}"
        nodes = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%G %t"], capture_output=True, text=True,
                               timeout=15)
        accounting = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return f"the Slurm commands do not answer within 15 s {start}"
    if nodes.returncode != 0:
        return f"no Slurm controller answers: {nodes.stderr.strip() or nodes.stdout.strip()} {start}"
    if "gpu:1" not in nodes.stdout:
        return f"no partition {PARTITION!r} with a GPU node: not the local test cluster {start}"
    if accounting.returncode != 0:
        return f"the cluster runs without accounting (sacct: {accounting.stderr.strip()}) {start}"
    return None


_problem = _cluster_problem()
if _problem:
    pytest.skip(_problem, allow_module_level=True)


# ------------------------------------------------------------------------------------------------- helpers

def profile_copy(folder: Path, train: dict | None = None) -> Path:
    """The SLURM profile as a user copies it: the account and partition placeholders filled in; ``train``
    replaces entries of the train rule's resources."""
    text = PROFILE.read_text().replace("CHANGE_ME_account", ACCOUNT).replace("CHANGE_ME_partition", PARTITION)
    if train:
        profile = yaml.safe_load(text)
        profile["set-resources"]["train"].update(train)
        text = yaml.safe_dump(profile, sort_keys=False)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(text)
    return folder


def slurm_args(profile: Path, config: Path, first_check: int = FIRST_CHECK["stage"]) -> list[str]:
    """Options of a run through the profile (they take several values each: targets go before them)."""
    return ["--profile", str(profile), "--slurm-init-seconds-before-status-checks", str(first_check), *THREADS,
            "--configfile", str(config)]


def local_args(config: Path) -> list[str]:
    return ["--cores", "2", *THREADS, "--configfile", str(config)]


def submitted_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, Slurm job id) of every submission, in order, from Snakemake's output."""
    return [(rule, job) for job, rule in SUBMITTED.findall(output)]


def sacct(jobs: list[str], fields: str = "JobID,State,AllocTRES,ElapsedRaw,ExitCode") -> dict[str, dict]:
    """Accounting records of the given jobs (allocations only, not their steps)."""
    result = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(jobs), "-o", fields],
                            capture_output=True, text=True, check=True, timeout=30)
    names = fields.split(",")
    records = [dict(zip(names, line.split("|"))) for line in result.stdout.splitlines() if line]
    return {record["JobID"]: record for record in records}


def same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def history_without_timing(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str).drop(columns=["seconds", "pairs_per_s"])


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model_state"]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first), f"{a} and {b} differ"


def threads_line(log: Path) -> str:
    """The training log's line naming the device and thread count ('training on the CPU with 2 threads')."""
    return next(line.split(": ", 1)[1] for line in log.read_text().splitlines() if " threads" in line)


def training_process(workdir: Path, timeout: float = 300) -> int:
    """The PID of the training script running for ``workdir`` (a Slurm job step on this machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                if not any(arg.endswith(b"stage.py") for arg in args) or Path(os.readlink(proc / "cwd")) != workdir:
                    continue
                # every stage runs workflow/scripts/stage.py: the training job is the one writing the train log
                if any(os.readlink(fd) == str(workdir / TRAIN_LOG) for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
            except OSError:  # gone, or not ours to read
                continue
        time.sleep(0.25)  # a scan reads every process's command line: a few ms, more on a busy machine
    raise AssertionError(f"no training process for {workdir} within {timeout:.0f} s")


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, T for stopped, ...), or None once it has exited (a zombie has: its
    parent died with it on SIGTERM, and whoever inherits it may reap it much later)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


class EndedBeforeFirstEpoch(AssertionError):
    """The training job ended before its first epoch was logged."""

    def __init__(self, job: str, log: str):
        super().__init__(f"the training job (Slurm job {job}) ended before its first epoch; its log:\n{log}")
        self.job = job


def freeze_after_first_epoch(workdir: Path) -> tuple[int, dict[str, str]]:
    """Wait for the training job's first epoch, then a moment more, and stop it (SIGSTOP): it is (usually)
    mid-epoch when Slurm signals it. Returns its PID and environment."""
    pid = training_process(workdir)
    try:
        environment = process_environment(pid)
    except OSError:
        environment = {}
    log = workdir / TRAIN_LOG
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        epoch = re.search(r"epoch 1/\d+ .* (\d+(?:\.\d+)?)s ", log.read_text() if log.exists() else "")
        if epoch:
            break
        if process_state(pid) is None:
            raise EndedBeforeFirstEpoch(environment.get("SLURM_JOB_ID", "?"),
                                        log.read_text() if log.exists() else "(none)")
        time.sleep(0.02)
    else:
        raise AssertionError(f"no first epoch in {log} within 300 s")
    # epoch 1 includes the warm-up and takes about twice as long as the next ones: a quarter of it lands
    # mid-way through epoch 2 on machines seen so far; a faster one may reach the boundary (accepted below)
    time.sleep(float(epoch.group(1)) / 4)
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        raise AssertionError("the training job ended within half an epoch after its first") from None
    while process_state(pid) not in ("T", None):  # the signal takes effect a moment later
        time.sleep(0.01)
    assert process_state(pid) == "T", "the training job ended within half an epoch after its first"
    return pid, environment


def wait_for_signal_and_exit(pid: int, workdir: Path, keep: Path) -> float:
    """Wait until Slurm resumes the frozen process (SIGCONT comes with SIGTERM) and it exits; keep its log and
    resume state as they were then (the retry overwrites both). Returns the seconds from signal to exit."""
    while process_state(pid) == "T":
        time.sleep(0.1)
    signalled = time.monotonic()
    while process_state(pid) is not None:
        time.sleep(0.05)
    exited = time.monotonic() - signalled
    keep.mkdir(parents=True)
    for path in (workdir / TRAIN_LOG, workdir / RUN / "resume.pt"):
        if path.exists():
            shutil.copy2(path, keep / path.name)
    return exited


def start_snakemake(workdir: Path, output: Path, *args: str) -> subprocess.Popen:
    """Snakemake in the background, its output (stdout and stderr) going to the file ``output``."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    with output.open("w") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True, env=env)


def interrupt(process: subprocess.Popen) -> None:
    """End a background Snakemake as Ctrl-C would (it cancels its Slurm jobs); kill it if that takes a minute."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def background_snakemake(workdir: Path, output: Path, *args: str) -> Iterator[subprocess.Popen]:
    """Snakemake running in the background for the block, which waits for it (5 minutes at most); interrupted
    if the block fails, so that no Slurm job outlives a failed check."""
    process = start_snakemake(workdir, output, *args)
    try:
        yield process
        process.wait(timeout=TIMEOUT)
    finally:
        interrupt(process)


def cancel_jobs_under(root: Path) -> None:
    """scancel every job still queued or running with a working directory under ``root``."""
    queue = subprocess.run(["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True, timeout=30).stdout
    jobs = [job for job, _, folder in (line.partition(" ") for line in queue.splitlines())
            if Path(folder).is_relative_to(root)]
    if jobs:
        subprocess.run(["scancel", *jobs], timeout=30)


# ------------------------------------------------------------------------------------------------ scenarios

def without_accounting(root: Path) -> dict[str, str]:
    """Environment for Slurm's commands to run as on a cluster without accounting: they read a copy of
    slurm.conf without AccountingStorageType (the daemons are the same), and sacct fails."""
    lines = Path("/etc/slurm/slurm.conf").read_text().splitlines()
    conf = root / "slurm-no-accounting.conf"
    conf.write_text("".join(f"{line}\n" for line in lines if not line.startswith("AccountingStorage")))
    return {"SLURM_CONF": str(conf)}


def sacct_problem(env: dict[str, str]) -> str:
    """What sacct says when it cannot answer in this environment, else ''."""
    check = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True, env={**os.environ, **env},
                           timeout=30)
    return "" if check.returncode == 0 else check.stderr.strip() or "failed"


@dataclass
class PipelineRun:
    slurm: Path
    local: Path
    output: str
    sacct_error: str  # what sacct told the Snakemake of this run
    jobs: list[tuple[str, str]]
    accounting: dict[str, dict]  # as the cluster's accounting recorded them
    scontrol: str  # `scontrol show job -d` of the training job


def run_pipeline(root: Path) -> PipelineRun:
    """The whole pipeline through the profile as shipped (status from squeue) where Snakemake sees no
    accounting, and the same config run locally at the same thread counts, up to the summary."""
    raw = write_raw_corpus(root / "corpus" / f"{PAIR}.txt")
    config = write_config(root / "tiny.yaml", tiny_config(raw))
    profile = profile_copy(root / "profile")
    env = without_accounting(root)
    slurm, local = root / "slurm", root / "local"
    slurm.mkdir()
    local.mkdir()
    with ThreadPoolExecutor(2) as pool:
        on_cluster = pool.submit(snakemake, slurm, "--verbose", *slurm_args(profile, config), env=env,
                                 timeout=TIMEOUT)
        # locally only what the comparison reads: the summary and what it needs (no figures, no explorer)
        pool.submit(snakemake, local, "results/summary.tsv", *local_args(config), timeout=TIMEOUT).result()
        result = on_cluster.result()
    output = result.stdout + result.stderr
    jobs = submitted_jobs(output)
    train = [job for rule, job in jobs if rule == "train"]
    scontrol = subprocess.run(["scontrol", "show", "job", "-d", *train[:1]], capture_output=True, text=True,
                              timeout=30).stdout
    return PipelineRun(slurm, local, output, sacct_problem(env), jobs, sacct([job for _, job in jobs]), scontrol)


def prepared_training(root: Path) -> tuple[Path, Path]:
    """A workdir whose data stages are done (locally) for the resume scenarios, and its config."""
    raw = write_raw_corpus(root / "corpus" / f"{PAIR}.txt")
    config = write_config(root / "tiny.yaml", tiny_config(raw, training=RESUME_TRAINING))
    workdir = root / "prepared"
    workdir.mkdir()
    snakemake(workdir, "--cores", "1", f"results/{PAIR}/vocab/source.json", f"results/{PAIR}/vocab/target.json",
              "--configfile", str(config))
    return workdir, config


def copy_workdir(prepared: Future, destination: Path) -> tuple[Path, Path]:
    """A copy of the prepared workdir (once it is ready), and the config."""
    source, config = prepared.result()
    shutil.copytree(source, destination, symlinks=True)
    return destination, config


@dataclass
class InterruptedRun:
    workdir: Path
    outputs: list[str]
    returncodes: list[int]
    jobs: list[tuple[str, str]]
    accounting: dict[str, dict]
    environment: dict[str, str]  # of the training process, read while it ran under Slurm
    seconds_to_exit: float  # from Slurm's SIGCONT+SIGTERM to the training process's exit
    kept: Path  # its log and resume state as the signal left them
    too_slow: list[str] = dataclasses.field(default_factory=list)  # attempts run again: no first epoch in time


def final_state(job: str, timeout: float = 60) -> str:
    """The job's state in accounting once it has left RUNNING and COMPLETING (or whatever it is after
    ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        state = sacct([job]).get(job, {}).get("State", "unknown")
        if state not in ("PENDING", "RUNNING", "COMPLETING", "unknown") or time.monotonic() > deadline:
            return state
        time.sleep(1)


def run_into_time_limit(root: Path, prepared: Future, frozen: threading.Event) -> InterruptedRun:
    """Training with `runtime: 1` (minutes), stopped by Slurm at its time limit; the profile's `retries: 1`
    submits it again. No GPU for this one job: it holds its allocation for a minute or more, and the node's one
    GPU is busy with the other scenarios (the time limit works the same either way). Job status from sacct
    (accounting on), the profile's other status command. ``frozen`` is set once the job is frozen (the other
    scenarios wait for it: the job must reach its first epoch within its minute).

    Where a machine too busy for that lets the job time out before its first epoch, nothing of what is tested
    happened (no state to save yet): the scenario runs once more from the start, and says so."""
    profile = profile_copy(root / "profile", train={"runtime": 1, "gpu": 0})
    _, config = prepared.result()
    args = ["--slurm-status-command", "sacct", "--verbose", *slurm_args(profile, config, FIRST_CHECK["time limit"])]
    too_slow: list[str] = []
    attempts = 2
    for attempt in range(1, attempts + 1):
        # each attempt's workdir as deep as the prepared one: Snakemake records the input files' paths relative to
        # it (the package's files are inputs), and another depth would rerun the data stages
        workdir, _ = copy_workdir(prepared, root / f"run{attempt}")
        log = root / f"snakemake{attempt}.log"
        kept = root / f"kept{attempt}"
        try:
            with background_snakemake(workdir, log, str(RUN / "model.pt"), *args) as process:
                pid, environment = freeze_after_first_epoch(workdir)
                frozen.set()
                seconds = wait_for_signal_and_exit(pid, workdir, kept)
        except EndedBeforeFirstEpoch as early:
            state = final_state(early.job)
            if state != "TIMEOUT" or attempt == attempts:
                raise AssertionError(f"{early} (Slurm: {state}; attempts too slow before: {too_slow})") from None
            too_slow.append(f"attempt {attempt}: job {early.job} timed out before its first epoch")
            continue
        finally:
            frozen.set()
        output = log.read_text()
        jobs = submitted_jobs(output)
        return InterruptedRun(workdir, [output], [process.returncode], jobs, sacct([job for _, job in jobs]),
                              environment, seconds, kept, too_slow)
    raise AssertionError(f"no attempt of {attempts}")  # not reached: the last attempt returns or raises


def run_and_cancel(root: Path, prepared: Future) -> InterruptedRun:
    """Training through the profile as it is (a GPU), cancelled with scancel mid-run; then the same command
    again (`--retries 0`, so that the first command ends with the cancellation instead of retrying)."""
    workdir, config = copy_workdir(prepared, root / "run")
    profile = profile_copy(root / "profile")
    args = [str(RUN / "model.pt"), "--retries", "0", *slurm_args(profile, config)]
    log = root / "snakemake.log"
    with background_snakemake(workdir, log, *args) as process:
        pid, environment = freeze_after_first_epoch(workdir)
        subprocess.run(["scancel", environment["SLURM_JOB_ID"]], check=True, timeout=30)
        seconds = wait_for_signal_and_exit(pid, workdir, root / "kept")
    first = log.read_text()
    again = snakemake(workdir, *args, check=False, timeout=TIMEOUT)
    second = again.stdout + again.stderr
    jobs = submitted_jobs(first + second)
    return InterruptedRun(workdir, [first, second], [process.returncode, again.returncode], jobs,
                          sacct([job for _, job in jobs]), environment, seconds, root / "kept")


def run_uninterrupted(root: Path, prepared: Future) -> Path:
    """The same training locally, at the thread count of the Slurm job, from start to end."""
    workdir, config = copy_workdir(prepared, root / "run")
    snakemake(workdir, str(RUN / "model.pt"), *local_args(config), timeout=TIMEOUT)
    return workdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Future]:
    """Every scenario started in threads; each test waits for the one it checks. The scancel and reference runs
    start once the time-limit job is frozen: it must reach its first epoch within its minute, and on 2 cores
    their start-up would slow its own."""
    root = tmp_path_factory.mktemp("slurm")
    pool = ThreadPoolExecutor(6)
    futures = {"pipeline": pool.submit(run_pipeline, root / "pipeline")}
    prepared = pool.submit(prepared_training, root / "resume")
    frozen = threading.Event()

    def after_frozen(scenario, *args):
        frozen.wait(timeout=TIMEOUT)
        return scenario(*args)

    futures["walltime"] = pool.submit(run_into_time_limit, root / "walltime", prepared, frozen)
    futures["scancel"] = pool.submit(after_frozen, run_and_cancel, root / "scancel", prepared)
    futures["reference"] = pool.submit(after_frozen, run_uninterrupted, root / "reference", prepared)
    yield futures
    pool.shutdown(wait=True)
    cancel_jobs_under(root)  # left by a scenario that failed


# ------------------------------------------------------------------------------------------------ the tests

def test_every_stage_runs_as_a_slurm_job_and_download_on_the_submit_host(runs):
    run = runs["pipeline"].result()
    rules = sorted(rule for rule, _ in run.jobs)
    assert rules == ["evaluate", "explorer", "figures", "prepare", "summary", "train", "vocab"], run.output
    assert {job: record["State"] for job, record in run.accounting.items()} == \
        {job: "COMPLETED" for _, job in run.jobs}, run.accounting
    assert "localrule download:" in run.output
    assert (run.slurm / "data" / "raw" / f"{PAIR}.txt").exists()


def test_results_equal_a_local_run_at_the_same_thread_counts(runs):
    run = runs["pipeline"].result()
    slurm, local = run.slurm / "results", run.local / "results"
    assert threads_line(run.slurm / TRAIN_LOG) == threads_line(run.local / TRAIN_LOG)
    data = sorted(path.relative_to(local) for folder in ("data", "vocab") for path in (local / PAIR / folder).iterdir())
    assert len(data) >= 6
    for path in data + [Path(PAIR) / MODEL / "translations.tsv"]:
        assert same_file(slurm / path, local / path), path
    pd.testing.assert_frame_equal(history_without_timing(slurm / PAIR / MODEL / "history.tsv"),
                                  history_without_timing(local / PAIR / MODEL / "history.tsv"))
    assert_same_weights(slurm / PAIR / MODEL / "model.pt", local / PAIR / MODEL / "model.pt")
    timing = {"seconds", "sentences_per_s"}
    on_cluster, here = (json.loads((folder / PAIR / MODEL / "metrics.json").read_text()) for folder in (slurm, local))
    for search in ("greedy", "beam"):
        assert {k: v for k, v in on_cluster[search].items() if k not in timing} == \
            {k: v for k, v in here[search].items() if k not in timing}
    summary_timing = ["training_minutes", "pairs_per_s"]
    pd.testing.assert_frame_equal(pd.read_csv(slurm / "summary.tsv", sep="\t").drop(columns=summary_timing),
                                  pd.read_csv(local / "summary.tsv", sep="\t").drop(columns=summary_timing))


def test_the_training_job_is_allocated_the_gpu_and_trains_on_the_configured_cpu(runs):
    run = runs["pipeline"].result()
    train = next(job for rule, job in run.jobs if rule == "train")
    assert "gres/gpu=1" in run.accounting[train]["AllocTRES"], run.accounting[train]
    assert re.search(r"^\s*TRES=\S*gres/gpu=1", run.scontrol, re.MULTILINE), run.scontrol
    # no other stage holds the GPU but evaluation, which the profile gives one for beam search
    holders = sorted(rule for rule, job in run.jobs if "gres/gpu=1" in run.accounting[job]["AllocTRES"])
    assert holders == ["evaluate", "train"], holders
    # `device: cpu` in the config: a (fake) GPU in the allocation does not move training off the CPU
    assert threads_line(run.slurm / TRAIN_LOG).startswith("training on the CPU")


def test_a_training_job_sees_the_gpu_slurm_gave_it(runs):
    run = runs["scancel"].result()
    assert run.environment.get("SLURM_JOB_ID"), run.environment
    assert run.environment.get("CUDA_VISIBLE_DEVICES") == "0", run.environment


def test_status_from_sacct_with_accounting(runs):
    """The time-limit run: sacct reports a job that timed out and one that completed."""
    run = runs["walltime"].result()
    assert not sacct_problem({})
    assert "command=sacct" in run.outputs[0] and "command=squeue" not in run.outputs[0]  # the plugin's debug line
    assert sorted(record["State"] for record in run.accounting.values()) == ["COMPLETED", "TIMEOUT"]
    assert run.returncodes == [0]


def test_status_from_squeue_without_accounting(runs):
    """The profile's choice; the pipeline's Snakemake runs where sacct cannot answer."""
    run = runs["pipeline"].result()
    assert run.sacct_error, "sacct answered: the run did not go without accounting"
    assert "command=squeue" in run.output and "command=sacct" not in run.output
    assert "Falling back" not in run.output


def assert_stopped_and_resumed_where_it_stopped(run: InterruptedRun, signal_name: str) -> None:
    """The signal's log line says where training stopped: mid-epoch (the batches kept of an unfinished epoch) or,
    on a machine fast enough to finish the epoch before the signal, at an epoch's end; the next attempt resumes
    exactly there. (Mid-epoch resumption to identical results is also tested without Slurm in
    test_training_guards.py.)"""
    kept_log = (run.kept / TRAIN_LOG.name).read_text()
    log = (run.workdir / TRAIN_LOG).read_text()
    mid_epoch = re.search(rf"stopped by {signal_name} in epoch (\d+) after (\d+) batches", kept_log)
    if mid_epoch:
        epoch, batches = int(mid_epoch.group(1)), int(mid_epoch.group(2))
        assert epoch >= 2 and batches >= 1  # frozen after the first epoch: mid-way through another
        assert f"after epoch {epoch - 1} and {batches} batches of epoch {epoch}" in log, log
        return
    at_end = re.search(rf"stopped by {signal_name} after epoch (\d+);", kept_log)
    assert at_end, kept_log
    epoch = int(at_end.group(1))
    assert 1 <= epoch < RESUME_TRAINING["epochs"], kept_log
    assert re.search(rf"resuming from \S+ after epoch {epoch}$", log, re.MULTILINE), log


def assert_equals_uninterrupted(workdir: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(history_without_timing(workdir / RUN / "history.tsv"),
                                  history_without_timing(reference / RUN / "history.tsv"))
    assert list(pd.read_csv(workdir / RUN / "history.tsv", sep="\t")["epoch"]) == \
        list(range(1, RESUME_TRAINING["epochs"] + 1))
    for name in ("model.pt", "last.pt"):
        assert_same_weights(workdir / RUN / name, reference / RUN / name)
    assert not (workdir / RUN / "resume.pt").exists()


def test_a_training_job_at_its_time_limit_saves_its_state_and_the_retry_resumes_it(runs):
    run = runs["walltime"].result()
    for attempt in run.too_slow:
        warnings.warn(f"run again: {attempt} (machine too busy)", stacklevel=1)
    reference = runs["reference"].result()
    trains = [job for rule, job in run.jobs if rule == "train"]
    assert len(trains) == 2, run.outputs[0]
    first, retry = (run.accounting[job] for job in trains)
    assert first["State"] == "TIMEOUT" and int(first["ElapsedRaw"]) >= 60, first
    assert retry["State"] == "COMPLETED", retry
    assert run.returncodes == [0], run.outputs[0]
    assert run.seconds_to_exit < 30, "training outlived Slurm's KillWait: it was killed, not stopped"
    assert (run.kept / "resume.pt").exists(), "no resume state after SIGTERM"
    assert_stopped_and_resumed_where_it_stopped(run, "SIGTERM")
    assert threads_line(run.workdir / TRAIN_LOG) == threads_line(reference / TRAIN_LOG)
    assert_equals_uninterrupted(run.workdir, reference)


def test_a_cancelled_training_job_is_reported_in_one_line_and_a_rerun_resumes_it(runs):
    run = runs["scancel"].result()
    reference = runs["reference"].result()
    cancelled = run.environment["SLURM_JOB_ID"]
    assert run.returncodes[0] != 0
    assert run.accounting[cancelled]["State"].startswith("CANCELLED"), run.accounting[cancelled]
    lines = [line for line in run.outputs[0].splitlines() if cancelled in line and "CANCELLED" in line]
    assert lines, run.outputs[0]
    assert run.returncodes[1] == 0, run.outputs[1]
    assert run.seconds_to_exit < 30
    assert_stopped_and_resumed_where_it_stopped(run, "SIGTERM")
    assert_equals_uninterrupted(run.workdir, reference)
