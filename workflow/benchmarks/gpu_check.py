"""The GPU check: one command that runs, on one CUDA card, everything the README should say about GPUs.

    python workflow/benchmarks/gpu_check.py OUT                 # from the repository root, on a CUDA machine
    python workflow/benchmarks/gpu_check.py OUT --cpu-dry-run   # every part on the CPU at tiny size

Parts, in this order (each in its own process under its own time budget, except ``prepare``; a failing or
overrunning part is recorded and the next one runs; all of them fit in ``--minutes``, 7.5 by default):

1. ``prepare`` (CPU, before anything touches the GPU): the splits and vocabularies the benchmark and the
   whole-corpus run train on, of ``config.yaml`` and of ``workflow/configs/full.yaml``, from the shipped corpus
   (a corpus that would have to be downloaded is refused: this check never downloads);
2. ``machine``: the GPU's name, memory, compute capability, driver, the torch/CUDA/cuDNN versions, and the
   card's measured bf16 and fp32 matrix-multiply rates (``torch.mm``, fp32 without TF32);
3. ``tests``: ``tests/test_cuda.py`` (mixed precision against fp32, CUDA checkpoints on the CPU, greedy and
   beam search on both devices), with pytest's summary;
4. ``pipeline``: the default pipeline (``config.yaml``, ``device: auto``, the local profile) from a clean results
   folder to ``results/summary.tsv``: each stage's wall time from Snakemake's benchmark files, epochs, BLEU;
5. ``benchmark``: training throughput (``training_throughput.py``) of every attention variant of the config
   schema, mixed precision, at batch 64, 256 and 1024: pairs/s, target tokens/s, the ratio to the README's CPU
   numbers (batch 64) and the fraction of the card's measured bf16 matmul rate;
6. ``full``: ``full.yaml`` trained for a fixed number of minutes (``--full-minutes``, less if earlier parts
   left less time), test BLEU at each epoch's end (``bleu_vs_minutes.py``).

Writes under OUT: ``summary.tsv`` and ``summary.md`` (one row per part: outcome, seconds, budget, result; rewritten
after every part), each part's tables (``machine.json``, ``pipeline_stages.tsv``, ``pipeline_summary.tsv``,
``benchmark.tsv``/``.md``, ``full_corpus.tsv``, ``prepared.tsv``), its log in ``logs/``, and at the end
``gpu_check.tar.gz`` holding all of these. Scratch (Snakemake's folder, checkpoints: tens of MB) goes to
``--work-dir`` (default ``OUT-work`` beside OUT, so that OUT holds only what is worth bringing back). On a machine
that hands back only a few files (a lent GPU machine that returns at most 8, two folders deep), write OUT to a
scratch folder and keep ``summary.md`` and ``gpu_check.tar.gz``:

    python workflow/benchmarks/gpu_check.py /tmp/gc; cp /tmp/gc/summary.md /tmp/gc/gpu_check.tar.gz "$KEEP"/

Exit status 0 when every part succeeded, else 1.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "workflow"))  # the package, also where it is not installed
sys.path.insert(0, str(BENCHMARKS))

from seq2seq.corpus import prepare_corpus  # noqa: E402
from seq2seq.download import download_corpus, local_path  # noqa: E402
from seq2seq.fileio import atomic_open, write_json  # noqa: E402
from seq2seq.runs import pipeline_config  # noqa: E402
from seq2seq.schema import deep_merge  # noqa: E402
from seq2seq.settings import VocabSettings, download_settings, prepare_settings  # noqa: E402
from seq2seq.vocab import load_vocabulary, write_vocabularies  # noqa: E402

log = logging.getLogger("gpu_check")
FULL_YAML = REPO / "workflow" / "configs" / "full.yaml"
CUDA_TESTS = "tests/test_cuda.py"


# --------------------------------------------------------------------------------------------------
# The plan: what every part runs with (written to JSON for the worker processes)
# --------------------------------------------------------------------------------------------------

@dataclass
class Plan:
    out: str
    work: str
    dry_run: bool
    parts: list[str]
    total_seconds: float  # every part together
    full_minutes: float  # training budget of the whole-corpus part (less if time runs short)
    batch_sizes: list[int]  # the benchmark's
    hidden: int  # the benchmark's model
    bench_seconds: float  # timed seconds per benchmark row
    bench_warmup: int  # untimed steps per benchmark row
    matmul_size: int
    matmul_seconds: float
    threads: int  # CPU threads of each worker

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    @property
    def work_dir(self) -> Path:
        return Path(self.work)


def make_plan(out: Path, work: Path | None, dry_run: bool, parts: Sequence[str], minutes: float | None,
              full_minutes: float | None) -> Plan:
    """The GPU run's sizes, or the dry run's tiny ones (seconds on a CPU)."""
    threads = max(1, min(8, len(os.sched_getaffinity(0))))  # the cores this process may use (a CPU set)
    out = out.resolve()
    work = (work or out.with_name(f"{out.name}-work")).resolve()  # beside OUT: OUT keeps what is worth keeping
    common = {"out": str(out), "work": str(work), "dry_run": dry_run, "parts": list(parts)}
    if dry_run:
        return Plan(**common, total_seconds=60 * (minutes or 10), full_minutes=full_minutes or 0.005,
                    batch_sizes=[8, 16, 32], hidden=16, bench_seconds=0.05, bench_warmup=1, matmul_size=128,
                    matmul_seconds=0.05, threads=1)
    return Plan(**common, total_seconds=60 * (minutes or 7.5), full_minutes=full_minutes or 1.5,
                batch_sizes=[64, 256, 1024], hidden=256, bench_seconds=3.0, bench_warmup=10, matmul_size=8192,
                matmul_seconds=1.0, threads=threads)


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    cap: float  # most seconds it may take on the GPU
    dry_cap: float  # ... in the CPU dry run
    minimum: float  # fewer seconds left than this for it: skipped


PARTS: tuple[Part, ...] = (
    Part("prepare", "splits and vocabularies (CPU)", 120, 120, 5),
    Part("machine", "GPU, driver, versions, matmul rates", 60, 60, 10),
    Part("tests", CUDA_TESTS, 150, 150, 20),
    Part("pipeline", "default pipeline, device auto, to summary.tsv", 300, 240, 30),
    Part("benchmark", "training throughput, mixed precision", 150, 90, 20),
    Part("full", "whole corpus (full.yaml), test BLEU per epoch", 240, 120, 45),
)
PART_NAMES = tuple(p.name for p in PARTS)
SUMMARY_COLUMNS = ("part", "what", "outcome", "seconds", "budget_s", "result")


# --------------------------------------------------------------------------------------------------
# The dry run's tiny corpus and configs
# --------------------------------------------------------------------------------------------------

def tiny_raw_corpus(path: Path) -> Path:
    """144 English<TAB>French pairs in manythings.org's layout, all passing the tutorial's prefix filter."""
    subjects = (("I am", "Je suis"), ("He is", "Il est"), ("She is", "Elle est"), ("We are", "Nous sommes"),
                ("You are", "Vous etes"), ("They are", "Ils sont"))
    adjectives = (("tall", "grand"), ("small", "petit"), ("happy", "content"), ("tired", "fatigue"),
                  ("sad", "triste"), ("rich", "riche"), ("sick", "malade"), ("ready", "pret"))
    adverbs = (("", ""), ("very ", "tres "), ("so ", "si "))
    lines = [f"{en_s} {en_a}{en_j}.\t{fr_s} {fr_a}{fr_j}.\n"
             for (en_s, fr_s), (en_j, fr_j), (en_a, fr_a) in itertools.product(subjects, adjectives, adverbs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tiny_overrides(raw: Path) -> dict:
    """What the dry run changes in a config: the tiny corpus, a tiny model, two epochs, few resamples."""
    return {
        "corpora": {"fra-eng": {"url": str(raw), "member": None, "sha256": None}},
        "models": {"bahdanau": {"attention": "bahdanau", "hidden_size": 16, "dropout": 0.0}},
        "training": {"epochs": 2, "batch_size": 16},
        "evaluation": {"beam_size": 2, "bootstrap_resamples": 20, "batch_size": 32},
        "figures": {"count": 2, "sentences": ["je suis tres content ."]},
        "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}},
    }


def override_files(plan: Plan) -> dict[str, Path | None]:
    """The override merged into config.yaml for the default run and for the whole-corpus run (None: none);
    the dry run's are written to the work folder (with its tiny corpus) on first use."""
    if not plan.dry_run:
        return {"default": None, "full": FULL_YAML}
    work = plan.work_dir
    files = {"default": work / "tiny.yaml", "full": work / "tiny-full.yaml"}
    if not all(path.exists() for path in files.values()):
        tiny = tiny_overrides(tiny_raw_corpus(work / "tiny-corpus" / "fra-eng.txt"))
        full = deep_merge(yaml.safe_load(FULL_YAML.read_text(encoding="utf-8")), tiny)
        for name, data in (("default", tiny), ("full", full)):
            with atomic_open(files[name]) as handle:
                yaml.safe_dump(data, handle, sort_keys=False)
    return files


def run_config(override: Path | None) -> dict:
    """config.yaml with ``override`` merged in, checked, defaults filled (as the pipeline sees it)."""
    return pipeline_config(REPO / "config.yaml", *([override] if override is not None else []))


def local_corpus(config: dict, pair: str) -> Path:
    """The local file the corpus of ``pair`` is read from (relative: from the repository, as the pipeline reads
    it); ValueError for one that would be downloaded."""
    url = config["corpora"][pair]["url"]
    path = local_path(url)
    if path is None:
        raise ValueError(f"corpus {pair}: {url} would be downloaded, and this check never downloads")
    if not path.is_absolute():
        path = (path if path.exists() else REPO / path).resolve()
    if not path.is_file():
        raise ValueError(f"corpus {pair}: {path} not found")
    return path


# --------------------------------------------------------------------------------------------------
# Running parts: budgets, processes, the summary
# --------------------------------------------------------------------------------------------------

def child_env(plan: Plan, **extra: str) -> dict[str, str]:
    """This interpreter's folder first on PATH (Snakemake's scripts run with the `python` on PATH), the package
    importable, output unbuffered."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "workflow"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    if plan.dry_run:  # one thread per process: spinning OpenMP threads slow a loaded small machine down many times
        env["OMP_NUM_THREADS"] = str(plan.threads)
    env.update(extra)
    return env


def run_command(command: Sequence[str], log_path: Path, timeout: float, env: dict[str, str]) -> str:
    """Run ``command`` from the repository root in a session of its own, output to ``log_path``; kill the whole
    session (Snakemake's jobs too) after ``timeout`` seconds. Returns the outcome: ok, failed (exit N), timeout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write(f"$ {shlex.join(map(str, command))}\n")
        handle.flush()
        process = subprocess.Popen(list(map(str, command)), cwd=REPO, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_session(process)
            handle.write(f"\n[gpu_check] killed after its budget of {timeout:.0f} s\n")
            return f"timeout ({timeout:.0f} s)"
    return "ok" if code == 0 else f"failed (exit {code})"


def stop_session(process: subprocess.Popen) -> None:
    """SIGTERM to the process's session, SIGKILL 15 s later if it is still there."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def worker_command(plan: Plan, part: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", part, "--plan",
            str(plan.work_dir / "plan.json")]


def part_budget(part: Part, later: Sequence[Part], seconds_left: float, dry_run: bool) -> float:
    """Seconds ``part`` may take: its cap, less what the later parts need at least."""
    return min(part.dry_cap if dry_run else part.cap, seconds_left - sum(p.minimum for p in later))


def run_parts(plan: Plan, runners: dict[str, Callable[[Plan, float], tuple[str, str]]],
              clock: Callable[[], float] = time.monotonic) -> list[dict]:
    """Run the plan's parts in order under their budgets; the summary is rewritten after each one."""
    selected = [p for p in PARTS if p.name in plan.parts]
    deadline = clock() + plan.total_seconds
    rows: list[dict] = []
    for i, part in enumerate(selected):
        budget = part_budget(part, selected[i + 1:], deadline - clock(), plan.dry_run)
        start = clock()
        if budget < part.minimum:
            outcome, result = "skipped", f"{max(budget, 0):.0f} s left for it, needs {part.minimum:.0f}"
        else:
            log.info("part %s (%s): budget %.0f s", part.name, part.title, budget)
            try:
                outcome, result = runners[part.name](plan, budget)
            except Exception as error:  # noqa: BLE001 - one part's failure must not stop the others
                log.exception("part %s failed", part.name)
                outcome, result = "failed", f"{type(error).__name__}: {error}"
        rows.append({"part": part.name, "what": part.title, "outcome": outcome,
                     "seconds": round(clock() - start, 1), "budget_s": round(budget), "result": result})
        log.info("part %s: %s in %.1f s: %s", part.name, outcome, rows[-1]["seconds"], result)
        write_summary(plan, rows)
    return rows


def write_summary(plan: Plan, rows: Sequence[dict]) -> None:
    out = plan.out_dir
    with atomic_open(out / "summary.tsv") as handle:
        writer = csv.DictWriter(handle, SUMMARY_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with atomic_open(out / "summary.md") as handle:
        handle.write(summary_markdown(plan, rows))


def summary_markdown(plan: Plan, rows: Sequence[dict]) -> str:
    machine = read_json(plan.out_dir / "machine.json")
    head = f"GPU check{' (CPU dry run)' if plan.dry_run else ''}: {machine.get('gpu', 'machine unknown')}"
    return markdown_table(head, SUMMARY_COLUMNS, rows)


def markdown_table(title: str, columns: Sequence[str], rows: Sequence[dict]) -> str:
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_tsv(path: Path, columns: Sequence[str], rows: Sequence[dict]) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, columns, delimiter="\t", lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def archive(plan: Plan) -> Path:
    """OUT as a .tar.gz (tables, logs; not the work folder, no checkpoints), for machines that hand back few files."""
    out, work = plan.out_dir, plan.work_dir
    target = out / "gpu_check.tar.gz"
    tmp = out / ".gpu_check.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if path.is_file() and path not in (target, tmp) and work not in path.parents and path.suffix != ".pt":
                tar.add(path, arcname=str(Path(out.name) / path.relative_to(out)))
    tmp.replace(target)
    return target


# --------------------------------------------------------------------------------------------------
# Part 1: prepare (in this process: CPU only, no torch)
# --------------------------------------------------------------------------------------------------

def prepare_pair(config: dict, pair: str, folder: Path) -> dict:
    """The pipeline's download (a copy: the corpus is local), prepare and vocab stages of one pair into
    ``folder`` (``raw.txt``, ``data/``, ``vocab/``), with the same settings as the pipeline."""
    start = time.perf_counter()
    corpus = local_corpus(config, pair)
    settings = dataclasses.replace(download_settings(config, pair), url=str(corpus))
    download_corpus(folder / "raw.txt", settings)
    data, vocab = folder / "data", folder / "vocab"
    prepare_corpus(folder / "raw.txt", data / "train.tsv", data / "valid.tsv", data / "test.tsv", data / "stats.json",
                   settings=prepare_settings(config, pair))
    write_vocabularies(data / "train.tsv", vocab / "source.json", vocab / "target.json",
                       settings=VocabSettings(**config["vocab"]))
    stats = read_json(data / "stats.json")
    sizes = [len(load_vocabulary(vocab / f"{side}.json")) for side in ("source", "target")]
    return {"pair": pair, "vocab": config["vocab"]["type"], "source_vocab": sizes[0], "target_vocab": sizes[1],
            **{k: v for k, v in stats.items() if isinstance(v, (int, float))},
            "seconds": round(time.perf_counter() - start, 1)}


def prepared_dir(plan: Plan, name: str, pair: str = "fra-eng") -> Path:
    return plan.work_dir / "prepared" / name / pair


def run_prepare(plan: Plan, budget: float) -> tuple[str, str]:
    handler = logging.FileHandler(plan.out_dir / "logs" / "prepare.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        rows = []
        for name, override in override_files(plan).items():
            config = run_config(override)
            for pair in config["pairs"]:
                shutil.rmtree(prepared_dir(plan, name, pair), ignore_errors=True)
                rows.append({"config": name, **prepare_pair(config, pair, prepared_dir(plan, name, pair))})
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_tsv(plan.out_dir / "prepared.tsv", columns, rows)
    return "ok", "; ".join(f"{r['config']}/{r['pair']}: {r['vocab']} {r['source_vocab']}/{r['target_vocab']}, "
                           f"{r['seconds']} s" for r in rows)


# --------------------------------------------------------------------------------------------------
# Part 2: the machine (worker process)
# --------------------------------------------------------------------------------------------------

def driver_version() -> str:
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - no NVML: say so
        return "unknown"


def machine_worker(plan: Plan) -> None:
    import torch

    from machine import machine_info, measure_matmul_flops

    device = torch.device(plan.device)
    info = {**machine_info(device, plan.threads), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "python": platform.python_version()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, memory_gib=round(props.total_memory / 2 ** 30, 1),
                    capability=f"{props.major}.{props.minor}", multiprocessors=props.multi_processor_count,
                    driver=driver_version())
    else:
        info.update(gpu="none (CPU dry run)", memory_gib=None, capability=None, multiprocessors=None, driver=None)
    torch.set_num_threads(plan.threads)
    info["fp32_matmul_tf32"] = torch.backends.cuda.matmul.allow_tf32  # False: the fp32 rate is plain fp32
    info["matmul_size"] = plan.matmul_size
    info["gru_dtype_under_bf16_autocast"] = gru_autocast_dtype(device)
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        rate = measure_matmul_flops(device, plan.matmul_size, plan.matmul_seconds, rounds=3, dtype=dtype)
        info[f"{name}_matmul_tflops"] = round(rate / 1e12, 4)
    write_json(plan.out_dir / "machine.json", info)


def gru_autocast_dtype(device) -> str:
    """The dtype an nn.GRU computes in under bf16 autocast on ``device``: cuDNN's RNNs are cast to fp16 under any
    CUDA autocast (PyTorch's AutocastRNN.cpp), which is why training keeps a GradScaler there; the CPU leaves
    them in fp32. Recorded so that the one GPU run says what it saw."""
    import torch

    gru = torch.nn.GRU(8, 8, batch_first=True).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        output, _ = gru(torch.randn(2, 3, 8, device=device))
    return str(output.dtype).removeprefix("torch.")


def describe_machine(info: dict) -> str:
    gpu = info.get("gpu", "?")
    if info.get("memory_gib") is not None:
        gpu += (f", {info['memory_gib']} GiB, compute capability {info.get('capability')}, "
                f"{info.get('multiprocessors')} SMs, driver {info.get('driver')}")
    return (f"{gpu}; torch {info.get('torch')}, CUDA {info.get('cuda')}, cuDNN {info.get('cudnn')}; matmul "
            f"{info.get('matmul_size')}^3: bf16 {info.get('bf16_matmul_tflops')} TFLOP/s, fp32 "
            f"{info.get('fp32_matmul_tflops')} TFLOP/s; CPU {info.get('cpu')} x{info.get('cores')}")


def run_machine(plan: Plan, budget: float) -> tuple[str, str]:
    outcome = run_command(worker_command(plan, "machine"), plan.out_dir / "logs" / "machine.log", budget,
                          child_env(plan))
    info = read_json(plan.out_dir / "machine.json")
    return outcome, describe_machine(info) if info else "no machine.json (see logs/machine.log)"


# --------------------------------------------------------------------------------------------------
# Part 3: the CUDA tests
# --------------------------------------------------------------------------------------------------

def pytest_summary(text: str) -> str:
    """pytest's closing line (``== 9 passed, 1 failed in 12.3s ==``) without the rules, or ''."""
    lines = [line.strip("= ").strip() for line in text.splitlines()
             if re.match(r"^=+ .*\b(passed|failed|error|errors|skipped|no tests ran)\b.* =+$", line.strip())]
    return lines[-1] if lines else ""


def run_tests(plan: Plan, budget: float) -> tuple[str, str]:
    log_path = plan.out_dir / "logs" / "tests.log"
    # `-o addopts=`: one process (the project's pytest options start xdist workers; its wheels are not shipped)
    command = [sys.executable, "-m", "pytest", CUDA_TESTS, "-rA", "-p", "no:cacheprovider", "-o", "addopts="]
    env = child_env(plan, **({"SEQ2SEQ_CUDA_TESTS_DEVICE": "cpu"} if plan.dry_run else {}))
    outcome = run_command(command, log_path, budget, env)
    return outcome, describe_tests(log_path.read_text(encoding="utf-8", errors="replace"), plan.device)


def describe_tests(log_text: str, device: str) -> str:
    """pytest's summary, with what the passed tests printed: translations that differ between the devices (ties,
    if the tests passed) and the largest gap between the first mixed-precision and fp32 losses."""
    parts = [pytest_summary(log_text) or "no pytest summary (see logs/tests.log)"]
    differ = [int(n) for n in re.findall(r"\b(\d+)(?: of \d+)? differ\b", log_text)]
    if differ:
        parts.append(f"{sum(differ)} translations differ between the CPU and {device} over {len(differ)} decodings")
    gaps = [float(g) for g in re.findall(r"largest early gap ([\d.e+-]+)", log_text)]
    if gaps:
        parts.append(f"first 20 losses of mixed precision within {max(gaps):.1e} of fp32")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------
# Part 4: the default pipeline
# --------------------------------------------------------------------------------------------------

PIPELINE_ORDER = ("download", "prepare", "vocab", "train", "evaluate", "figures", "summary", "explorer")


def pipeline_command(plan: Plan, workdir: Path) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--profile", str(REPO / "workflow" / "profiles" / "local"), "results/summary.tsv"]
    override = override_files(plan)["default"]
    return command + (["--configfile", str(override)] if override else [])  # after the target: it takes several


def collect_pipeline(workdir: Path, out: Path, wall_seconds: float) -> str:
    """Stage times (Snakemake's benchmark files), the summary's epochs and BLEU, the training device (from the
    train logs); copies the logs and tables into ``out``."""
    results = workdir / "results"
    stages = []
    order = {stage: i for i, stage in enumerate(PIPELINE_ORDER)}
    files = sorted((results / "benchmarks").rglob("*.tsv"),
                   key=lambda p: (order.get(p.relative_to(results / "benchmarks").parts[0], len(order)), str(p)))
    for path in files:
        rows = read_tsv(path)
        if rows:
            stages.append({"stage": str(path.relative_to(results / "benchmarks").with_suffix("")),
                           "seconds": float(rows[0]["s"]), "max_rss_mb": rows[0].get("max_rss", "")})
    stages.append({"stage": "snakemake, end to end", "seconds": round(wall_seconds, 1), "max_rss_mb": ""})
    write_tsv(out / "pipeline_stages.tsv", ("stage", "seconds", "max_rss_mb"), stages)
    if (results / "logs").is_dir():
        shutil.copytree(results / "logs", out / "logs" / "pipeline", dirs_exist_ok=True)
    for history in sorted(results.glob("*/*/history.tsv")):
        shutil.copy2(history, out / f"pipeline_history_{history.parent.name}.tsv")
    parts = [f"{wall_seconds:.0f} s end to end"]
    parts += [f"{s['stage'].split('/')[0]} {s['seconds']:.1f} s" for s in stages[:-1]]
    summary = results / "summary.tsv"
    if summary.exists():
        shutil.copy2(summary, out / "pipeline_summary.tsv")
        for row in read_tsv(summary):
            parts.append(f"{row['model']}: {row['epochs']} epochs, {row['training_minutes']} training min, "
                         f"{row['pairs_per_s']} pairs/s, BLEU greedy {row['greedy_bleu']} beam {row['bleu']}")
    # training logs a line on the CPU only; device auto elsewhere means CUDA
    devices = {"cpu" if "training on the CPU" in log.read_text(encoding="utf-8", errors="replace") else "cuda"
               for log in (results / "logs" / "train").rglob("*.log")}
    if devices:
        parts.append(f"training on {', '.join(sorted(devices))} (train logs)")
    return "; ".join(parts)


def run_pipeline(plan: Plan, budget: float) -> tuple[str, str]:
    workdir = plan.work_dir / "pipeline"
    shutil.rmtree(workdir, ignore_errors=True)  # from a clean results folder
    workdir.mkdir(parents=True)
    override = override_files(plan)["default"]
    config = run_config(override)
    for pair in config["pairs"]:
        local_corpus(config, pair)  # refuse a corpus that would be downloaded
    start = time.monotonic()
    outcome = run_command(pipeline_command(plan, workdir), plan.out_dir / "logs" / "pipeline.log", budget,
                          child_env(plan))
    return outcome, collect_pipeline(workdir, plan.out_dir, time.monotonic() - start)


# --------------------------------------------------------------------------------------------------
# Part 5: the training benchmark (worker process)
# --------------------------------------------------------------------------------------------------

BENCHMARK_COLUMNS = ("variant", "batch_size", "hidden_size", "pairs_per_s", "tokens_per_s", "readme_cpu_pairs_per_s",
                     "ratio_to_readme_cpu", "achieved_tflops", "bf16_fraction", "mflops_per_pair", "mflops_counted",
                     "steps", "seconds_measured", "round_spread", "device", "amp", "error")


def readme_cpu_rates(readme: Path = REPO / "README.md") -> dict[str, float]:
    """pairs/s per attention variant in the README's "Training throughput" table (the CPU, batch 64)."""
    text = readme.read_text(encoding="utf-8")
    start = text.find("**Training throughput**")
    rates: dict[str, float] = {}
    if start < 0:
        return rates
    in_table = False
    for line in text[start:].splitlines():
        if line.startswith("|"):
            in_table = True
            match = re.match(r"^\| `([\w-]+)` \| ([\d,.]+) \|", line)
            if match:
                rates[match[1]] = float(match[2].replace(",", ""))
        elif in_table:
            break
    return rates


def benchmark_rows(measurements: Sequence, bf16_flops_per_s: float, readme: dict[str, float],
                   amp: str | None) -> list[dict]:
    """The benchmark table's rows, with the README's CPU rate and the fraction of the bf16 matmul rate."""
    from training_throughput import build_table

    rows = build_table(measurements, bf16_flops_per_s, baselines=()) if measurements else []
    for row in rows:
        cpu = readme.get(row["variant"])
        row.update(readme_cpu_pairs_per_s=cpu if cpu is not None else "",
                   ratio_to_readme_cpu=row["pairs_per_s"] / cpu if cpu else math.nan,
                   achieved_tflops=row["achieved_gflops"] / 1e3, bf16_fraction=row["flops_fraction"], amp=amp or "",
                   error="")
    return rows


def write_benchmark(out: Path, rows: Sequence[dict]) -> None:
    def fmt(value: object) -> object:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.4g}"
        return value

    formatted = [{k: fmt(v) for k, v in row.items()} for row in rows]
    write_tsv(out / "benchmark.tsv", BENCHMARK_COLUMNS, formatted)
    columns = ("variant", "batch_size", "pairs_per_s", "tokens_per_s", "ratio_to_readme_cpu", "bf16_fraction", "error")
    with atomic_open(out / "benchmark.md") as handle:
        handle.write(markdown_table("Training throughput, mixed precision", columns, formatted))


def benchmark_worker(plan: Plan) -> None:
    import torch

    from machine import measure_matmul_flops
    from training_throughput import OUR_VARIANTS, BenchmarkConfig, load_data, measure_variant
    from seq2seq.optimization import resolve_amp

    device = torch.device(plan.device)
    torch.set_num_threads(plan.threads)
    # word vocabularies, as the README's CPU table; the prepare part's data or nothing (its rates are compared
    # with the README's on that data)
    data = load_data(prepared_dir(plan, "default") / "data", required=True)
    bf16 = read_json(plan.out_dir / "machine.json").get("bf16_matmul_tflops")
    bf16_rate = bf16 * 1e12 if bf16 else measure_matmul_flops(device, plan.matmul_size, plan.matmul_seconds,
                                                              dtype=torch.bfloat16)
    amp_dtype, _ = resolve_amp(True, device)
    readme = readme_cpu_rates()
    measurements, failed = [], []
    for batch_size in plan.batch_sizes:
        config = BenchmarkConfig(hidden=plan.hidden, batch_size=batch_size, threads=plan.threads,
                                 seconds=plan.bench_seconds, warmup_steps=plan.bench_warmup, device=plan.device,
                                 variants=OUR_VARIANTS, amp=True,
                                 flop_samples=4)  # counted on the CPU: a few seconds a row at batch 1024
        for variant in OUR_VARIANTS:
            try:
                measurements.append(measure_variant(variant, data, device, config))
                m = measurements[-1]
                log.info("%s batch %d: %.0f pairs/s", variant, batch_size, m.pairs / m.seconds)
            except Exception as error:  # noqa: BLE001 - the other rows still count
                log.exception("%s batch %d failed", variant, batch_size)
                failed.append({"variant": variant, "batch_size": batch_size, "error": f"{type(error).__name__}: "
                               f"{error}"})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            amp = str(amp_dtype) if amp_dtype else "none (fp32)"
            write_benchmark(plan.out_dir, benchmark_rows(measurements, bf16_rate, readme, amp) + failed)
    if failed:
        raise SystemExit(f"{len(failed)} benchmark rows failed")


def run_benchmark(plan: Plan, budget: float) -> tuple[str, str]:
    outcome = run_command(worker_command(plan, "benchmark"), plan.out_dir / "logs" / "benchmark.log", budget,
                          child_env(plan))
    path = plan.out_dir / "benchmark.tsv"
    if not path.exists():
        return outcome, "no benchmark.tsv (see logs/benchmark.log)"
    rows = read_tsv(path)
    cells = [f"{r['variant']}@{r['batch_size']}: {r['error']}" if r.get("error") else
             f"{r['variant']}@{r['batch_size']} {float(r['pairs_per_s']):.0f} pairs/s "
             f"(x{r['ratio_to_readme_cpu']} CPU, {r['bf16_fraction']} of bf16)" for r in rows]
    return outcome, "; ".join(cells)


# --------------------------------------------------------------------------------------------------
# Part 6: the whole corpus for a fixed number of minutes
# --------------------------------------------------------------------------------------------------

FULL_OVERHEAD_S = 90  # on the GPU: start-up, the last epoch's overrun, decoding the test split after each epoch


def full_minutes(plan: Plan, budget: float) -> float:
    """Training minutes that leave, within ``budget``, time for start-up, the last epoch's overrun and decoding
    the test split after every epoch."""
    overhead = 20 if plan.dry_run else FULL_OVERHEAD_S
    return round(max(0.005 if plan.dry_run else 0.5, min(plan.full_minutes, (budget - overhead) / 60)), 3)


def run_full(plan: Plan, budget: float) -> tuple[str, str]:
    folder = prepared_dir(plan, "full")
    if not (folder / "vocab" / "target.json").exists():
        return "skipped", "the prepare part did not write the whole corpus's data"
    work = plan.work_dir / "full"
    shutil.rmtree(work, ignore_errors=True)
    out = plan.out_dir / "full_corpus.tsv"
    out.unlink(missing_ok=True)
    minutes = full_minutes(plan, budget)
    if not plan.dry_run and budget < FULL_OVERHEAD_S + 60 * minutes:
        # it would time out before writing its table (written once, at the end): spend no device time on it
        return "skipped", f"{budget:.0f} s left, needs {FULL_OVERHEAD_S + 60 * minutes:.0f} for {minutes} min"
    command = [sys.executable, str(BENCHMARKS / "bleu_vs_minutes.py"), "--results", str(folder), "--configfile",
               str(override_files(plan)["full"]), "--minutes", str(minutes), "--threads", str(plan.threads),
               "--work-dir", str(work), "--out", str(out)]
    outcome = run_command(command, plan.out_dir / "logs" / "full.log", budget, child_env(plan))
    if not out.exists():
        return outcome, f"{minutes} min budget; no full_corpus.tsv (see logs/full.log)"
    rows = read_tsv(out)
    epochs = ", ".join(f"{r['test_bleu_greedy']} at {r['minutes']} min" for r in rows)
    beam = rows[-1].get("test_bleu_beam") if rows else ""
    return outcome, (f"{minutes} min budget, {len(rows)} epochs; test BLEU greedy {epochs}; beam (last) {beam}; "
                     f"{rows[-1].get('pairs_per_s') if rows else '?'} pairs/s")


RUNNERS: dict[str, Callable[[Plan, float], tuple[str, str]]] = {
    "prepare": run_prepare, "machine": run_machine, "tests": run_tests, "pipeline": run_pipeline,
    "benchmark": run_benchmark, "full": run_full,
}
WORKERS: dict[str, Callable[[Plan], None]] = {"machine": machine_worker, "benchmark": benchmark_worker}


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, help="folder for the tables, logs and archive")
    parser.add_argument("--cpu-dry-run", action="store_true", help="every part on the CPU at tiny size")
    parser.add_argument("--parts", nargs="+", choices=PART_NAMES, default=list(PART_NAMES),
                        help="run only these parts (in the fixed order; the later ones need prepare's data)")
    parser.add_argument("--minutes", type=float, default=None, help="all parts together (default 7.5; dry run 10)")
    parser.add_argument("--full-minutes", type=float, default=None,
                        help="training minutes of the whole-corpus part (default 1.5; less if time runs short)")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default OUT-work, beside OUT)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.worker:
        WORKERS[args.worker](Plan(**json.loads(args.plan.read_text(encoding="utf-8"))))
        return 0
    if args.out is None:
        parser.error("the output folder is required")
    if not args.cpu_dry_run:
        import torch

        if not torch.cuda.is_available():
            parser.error("CUDA is not available on this machine; --cpu-dry-run runs every part on the CPU")
    plan = make_plan(args.out, args.work_dir, args.cpu_dry_run, args.parts, args.minutes, args.full_minutes)
    (plan.out_dir / "logs").mkdir(parents=True, exist_ok=True)
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    write_json(plan.work_dir / "plan.json", asdict(plan))
    log.info("GPU check%s: parts %s within %.1f min; output %s", " (CPU dry run)" if plan.dry_run else "",
             " ".join(plan.parts), plan.total_seconds / 60, plan.out)
    rows = run_parts(plan, RUNNERS)
    print(summary_markdown(plan, rows))
    print(f"archive: {archive(plan)}")
    return 0 if all(row["outcome"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
