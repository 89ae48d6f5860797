"""What a Snakemake dry run plans, for many configs at once: one process loads Snakemake once and plans each
config through its Python API (about 0.2 s a config instead of 2-3 s for a `snakemake -n` each).

Used by the tests as ``plans(items)``; run by hand as ``python tests/snakemake_plans.py < request.json`` (a JSON
list of ``[snakefile, workdir, [config files]]``).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


Item = tuple[Path, Path, list[Path]]  # (Snakefile, working directory, config files as --configfile gets them)


def with_overrides(snakefile: Path, workdir: Path, configfiles: list[Path], overrides: list[dict],
                   folder: Path) -> list[Item]:
    """One item per override: ``configfiles`` and the override, written to ``folder``, as a last config file."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for number, override in enumerate(overrides):
        path = folder / f"override-{number}.yaml"
        path.write_text(yaml.safe_dump(override), encoding="utf-8")
        items.append((snakefile, workdir, [*configfiles, path]))
    return items


def plans(items: list[Item], workers: int = 2, timeout: float = 300) -> list[dict[str, Any]]:
    """For each item, what a dry run plans: ``jobs``, the planned jobs as ``[rule, wildcards]`` (rule ``all``
    left out), ``config``, the merged and checked config, and ``error``, the one-line message of a config the
    workflow refused (else None). ``workers`` processes share the items (dry runs only read)."""
    workers = max(1, min(workers, len(items)))
    processes = []
    for number in range(workers):
        request = [[str(snakefile), str(workdir), [str(Path(c).resolve()) for c in configfiles]]
                   for snakefile, workdir, configfiles in items[number::workers]]
        process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append((process, json.dumps(request)))
    answers: list[list[dict[str, Any]]] = []
    for process, request in processes:
        stdout, stderr = process.communicate(request, timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"planning failed ({process.returncode}):\n{stderr[-4000:]}")
        answers.append(json.loads(stdout))
    return [answers[i % workers][i // workers] for i in range(len(items))]


def _plan_one(snakefile: Path, workdir: Path, configfiles: list[Path]) -> dict[str, Any]:
    from snakemake.api import SnakemakeApi
    from snakemake.logging import logger
    from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings
    from snakemake_interface_logger_plugins.common import LogEvent

    jobs: list[list[Any]] = []

    class JobInfo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == LogEvent.JOB_INFO and record.rule_name != "all":
                jobs.append([record.rule_name, dict(record.wildcards or {})])

    handler = JobInfo()
    output = OutputSettings(quiet={Quietness.ALL}, dryrun=True, enable_file_logging=False)
    try:
        with SnakemakeApi(output) as api:
            workflow = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    config_settings=ConfigSettings(configfiles=configfiles),
                                    snakefile=snakefile, workdir=workdir)
            logger.addHandler(handler)
            try:
                dag = workflow.dag()
                config = json.loads(json.dumps(workflow._workflow.config, default=str))
                dag.execute_workflow(executor="dryrun")
            finally:
                logger.removeHandler(handler)
    except Exception as error:  # a config the workflow refuses: its one-line message
        return {"jobs": [], "config": None, "error": str(error).strip().splitlines()[0]}
    return {"jobs": sorted(jobs, key=json.dumps), "config": config, "error": None}


def main() -> None:
    answers = [_plan_one(Path(snakefile), Path(workdir), [Path(c) for c in configfiles])
               for snakefile, workdir, configfiles in json.load(sys.stdin)]
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
