"""Running a stage as a Snakemake job: the one script of every rule (``workflow/scripts/stage.py``) calls
:func:`run_job`, which looks the rule's stage up in :data:`seq2seq.stages.STAGES`."""

from __future__ import annotations

from typing import Any

from ..logs import logging_to
from ..stages import STAGES
from .runlock import hold_while_running


def rule_files(smk: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A Snakemake job's named inputs and outputs as keyword arguments (``str``, or a list for a list), without
    ``code`` (the package files the stage runs: they only make the rule rerun) and the names in ``skip``."""
    files: dict[str, Any] = {}
    for name, value in [*smk.input.items(), *smk.output.items()]:
        if name not in ("code", *skip):
            files[name] = str(value) if isinstance(value, str) else [str(v) for v in value]
    return files


def rule_param(value: Any) -> Any:
    """``value`` as a rule's param: every dict's keys in sorted order, at every depth. Snakemake reruns a job when
    the ``repr`` of a param changes, and a dict's repr follows its keys' order, which is the config's: writing a
    setting out at the value it has, or in another place, would retrain and re-evaluate for nothing."""
    if isinstance(value, dict):
        return {key: rule_param(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return type(value)(rule_param(item) for item in value)
    return value


def run_job(smk: Any) -> Any:
    """Run the stage of the job's rule with the job's files, params and resources, logging to its log file: a
    user's mistake, a full disk or an interruption end it with one line (see :func:`seq2seq.logs.logging_to`)."""
    stage = STAGES[smk.rule]
    hold_while_running()  # the run stays alive while this job does, even if its Snakemake was killed
    with logging_to(smk.log[0], stage.label):
        return stage.run(**rule_files(smk, stage.job_skips), **stage.job(smk))
