"""Kept for existing commands: the training benchmark now lives in workflow/benchmarks/benchmark_training.py."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_training.py"), run_name="__main__")
