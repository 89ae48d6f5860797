"""The GPU check (workflow/benchmarks/gpu_check.py): its CPU dry run end to end, and its pieces."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

import gpu_check  # workflow/benchmarks/, on the path through conftest.py
from helpers import REPO
from training_throughput import OUR_VARIANTS


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.workflow  # runs the pipeline end to end, among the rest
def test_the_cpu_dry_run_runs_every_part_and_writes_its_tables(tmp_path: Path) -> None:
    out = tmp_path / "check"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SEQ2SEQ_CUDA_TESTS_DEVICE", None)
    result = subprocess.run([sys.executable, str(REPO / "workflow" / "benchmarks" / "gpu_check.py"), str(out),
                             "--cpu-dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    summary = read_tsv(out / "summary.tsv")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert [row["part"] for row in summary] == list(gpu_check.PART_NAMES)
    assert {row["outcome"] for row in summary} == {"ok"}, summary
    outcomes = {row["part"]: row for row in summary}
    assert "passed" in outcomes["tests"]["result"] and "failed" not in outcomes["tests"]["result"]
    assert "| pipeline |" in (out / "summary.md").read_text()

    machine = gpu_check.read_json(out / "machine.json")
    assert machine["device"] == "cpu" and machine["fp32_matmul_tflops"] > 0 and machine["bf16_matmul_tflops"] > 0
    assert machine["gru_dtype_under_bf16_autocast"] == "float32"  # the CPU's autocast leaves RNNs alone

    stages = {row["stage"].split("/")[0]: float(row["seconds"]) for row in read_tsv(out / "pipeline_stages.tsv")}
    assert {"prepare", "vocab", "train", "evaluate", "snakemake, end to end"} <= set(stages)
    assert all(seconds > 0 for seconds in stages.values())
    [run] = read_tsv(out / "pipeline_summary.tsv")
    assert float(run["epochs"]) == 2 and 0 <= float(run["bleu"]) <= 100  # the dry run's two epochs
    assert "training on cpu" in outcomes["pipeline"]["result"]

    rows = read_tsv(out / "benchmark.tsv")
    assert [(r["variant"], int(r["batch_size"])) for r in rows] == [
        (v, b) for b in (8, 16, 32) for v in OUR_VARIANTS]  # every attention of the schema at every batch size
    assert all(float(r["pairs_per_s"]) > 0 and float(r["tokens_per_s"]) > float(r["pairs_per_s"]) for r in rows)
    readme = gpu_check.readme_cpu_rates()
    for row in rows:
        assert float(row["ratio_to_readme_cpu"]) == pytest.approx(
            float(row["pairs_per_s"]) / readme[row["variant"]], rel=1e-3)

    epochs = read_tsv(out / "full_corpus.tsv")
    assert epochs and all(0 <= float(r["test_bleu_greedy"]) <= 100 for r in epochs)
    assert epochs[-1]["test_bleu_beam"] != ""

    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"check/summary.md", "check/benchmark.tsv", "check/logs/tests.log", "check/logs/pipeline.log"} <= names
    assert not any("/work/" in name or name.endswith(".pt") for name in names)
    # scratch beside OUT, not in it: a machine that hands back few files gets OUT's few
    assert not (out / "work").exists() and (tmp_path / "check-work" / "pipeline").is_dir()


def plan(tmp_path: Path, minutes: float) -> gpu_check.Plan:
    (tmp_path / "logs").mkdir(exist_ok=True)
    return gpu_check.make_plan(tmp_path, None, True, gpu_check.PART_NAMES, minutes, None)


def test_a_failing_part_is_recorded_and_the_next_one_runs(tmp_path: Path) -> None:
    budgets = {}

    def runner(name: str):
        def run(plan: gpu_check.Plan, budget: float) -> tuple[str, str]:
            budgets[name] = budget
            if name == "tests":
                raise RuntimeError("CUDA error: an illegal memory access")
            return "ok", f"{name} done"
        return run

    rows = gpu_check.run_parts(plan(tmp_path, 10), {name: runner(name) for name in gpu_check.PART_NAMES})
    assert [r["outcome"] for r in rows] == ["ok", "ok", "failed", "ok", "ok", "ok"]
    assert rows[2]["result"] == "RuntimeError: CUDA error: an illegal memory access"
    assert budgets == {p.name: pytest.approx(p.dry_cap, abs=1) for p in gpu_check.PARTS}  # 10 minutes: all caps
    assert read_tsv(tmp_path / "summary.tsv")[2]["outcome"] == "failed"


def test_parts_share_the_time_left_and_one_without_enough_is_skipped(tmp_path: Path) -> None:
    parts = {p.name: p for p in gpu_check.PARTS}
    later = [parts["benchmark"], parts["full"]]
    # 100 s left: the pipeline may use what the benchmark's and the whole corpus's minimums leave
    assert gpu_check.part_budget(parts["pipeline"], later, 100, dry_run=False) == 100 - 20 - 45
    assert gpu_check.part_budget(parts["pipeline"], later, 1000, dry_run=False) == parts["pipeline"].cap
    now = [0.0]

    def runner(name: str):
        def run(plan: gpu_check.Plan, budget: float) -> tuple[str, str]:
            now[0] += budget + (40 if name == "pipeline" else 0)  # each uses its budget, the pipeline 40 s more
            return "ok", ""
        return run

    rows = gpu_check.run_parts(plan(tmp_path, 5), {name: runner(name) for name in gpu_check.PART_NAMES},
                               clock=lambda: now[0])
    assert [(r["part"], r["outcome"], r["budget_s"]) for r in rows] == [
        ("prepare", "ok", 120), ("machine", "ok", 60), ("tests", "ok", 25), ("pipeline", "ok", 30),
        ("benchmark", "skipped", -20), ("full", "skipped", 25)]
    assert rows[-1]["result"] == "25 s left for it, needs 45"


def test_the_whole_corpus_minutes_leave_time_for_decoding(tmp_path: Path) -> None:
    gpu = gpu_check.make_plan(tmp_path, None, False, gpu_check.PART_NAMES, None, None)
    assert gpu.full_minutes == 1.5 and gpu.batch_sizes == [64, 256, 1024] and gpu.total_seconds == 450
    assert gpu_check.full_minutes(gpu, 240) == 1.5
    assert gpu_check.full_minutes(gpu, 150) == 1.0  # 90 s of start-up and decoding kept
    assert gpu_check.full_minutes(gpu, 60) == 0.5  # never less than half a minute


def test_a_whole_corpus_run_that_cannot_finish_is_skipped_before_it_starts(tmp_path: Path, monkeypatch) -> None:
    """Its table is written once, at the end: with 95 s left (half a minute of training + 90 s of the rest does
    not fit) it would time out and leave nothing, after spending the GPU's time."""
    gpu = gpu_check.make_plan(tmp_path / "out", None, False, gpu_check.PART_NAMES, None, None)
    vocab = gpu_check.prepared_dir(gpu, "full") / "vocab"
    vocab.mkdir(parents=True)
    (vocab / "target.json").write_text("{}")
    monkeypatch.setattr(gpu_check, "run_command", lambda *a, **k: pytest.fail("started anyway"))
    assert gpu_check.run_full(gpu, 95) == ("skipped", "95 s left, needs 120 for 0.5 min")


def test_the_readme_cpu_table_names_every_attention_variant() -> None:
    rates = gpu_check.readme_cpu_rates()
    assert set(OUR_VARIANTS) <= set(rates) and all(rate > 0 for rate in rates.values())
    assert "bahdanau-h128" not in rates  # the row "`bahdanau`, batch 32, hidden 128" is another setting


def test_only_a_local_corpus_is_read() -> None:
    config = gpu_check.run_config(None)
    assert gpu_check.local_corpus(config, "fra-eng") == REPO / "data" / "fra-eng.zip"
    with pytest.raises(ValueError, match="would be downloaded, and this check never downloads"):
        gpu_check.local_corpus({"corpora": {"deu-eng": {"url": "https://example.org/deu-eng.zip"}}}, "deu-eng")


def test_pytest_summary_is_the_closing_line() -> None:
    text = "collected 3 items\n\n=== short test summary info ===\nPASSED a\n===== 2 passed, 1 failed in 3.2s =====\n"
    assert gpu_check.pytest_summary(text) == "2 passed, 1 failed in 3.2s"
    assert gpu_check.pytest_summary("killed") == ""


def test_the_tests_part_reports_what_the_cuda_tests_printed() -> None:
    log = ("luong: 200 steps, first loss 3.2/3.2, last 0.01/0.01 (fp32/torch.bfloat16), largest early gap 2.50e-03\n"
           "bahdanau: 200 steps, first loss 3.1/3.1, last 0.01/0.01 (fp32/torch.bfloat16), largest early gap 7.00e-03\n"
           "checkpoint trained on cuda (torch.bfloat16): 144 sentences greedy, 1 differ between CPU and cuda\n"
           "luong on CPU and cuda: beam 1: 0 of 144 differ (ties); beam 4: 2 of 144 differ (ties)\n"
           "======================== 10 passed in 31.50s ========================\n")
    assert gpu_check.describe_tests(log, "cuda") == (
        "10 passed in 31.50s; 3 translations differ between the CPU and cuda over 3 decodings; "
        "first 20 losses of mixed precision within 7.0e-03 of fp32")


def test_the_pipeline_command_puts_the_override_after_the_target(tmp_path: Path) -> None:
    dry = plan(tmp_path, 1)
    command = gpu_check.pipeline_command(dry, tmp_path / "run")
    assert command[-3:] == ["results/summary.tsv", "--configfile",
                            str(tmp_path.with_name(f"{tmp_path.name}-work") / "tiny.yaml")]
    assert str(REPO / "workflow" / "profiles" / "local") in command
    gpu = gpu_check.make_plan(tmp_path, None, False, gpu_check.PART_NAMES, None, None)
    assert gpu_check.pipeline_command(gpu, tmp_path / "run")[-1] == "results/summary.tsv"  # config.yaml as shipped


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_without_cuda_the_check_points_to_the_dry_run(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        gpu_check.main([str(tmp_path / "out")])
    assert "--cpu-dry-run runs every part on the CPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
