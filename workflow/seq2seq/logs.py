"""What the stage scripts share: logging, one line per record, to the rule's log file or stderr; the user's
input errors as one line; the rule's files as keyword arguments of the stage function."""

import contextlib
import logging
import os
import sys
from typing import Any, Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class InputError(Exception):
    """Bad input the user can fix (a file, a URL, a setting), with a one-line message naming it: the rule's
    log gets that line, not a traceback."""


def setup_logging(path: str | os.PathLike[str] | None = None) -> None:
    """Send INFO and above to ``path`` (a Snakemake rule's log file), or to stderr when None."""
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT, force=True)


@contextlib.contextmanager
def logging_to(path: str | os.PathLike[str] | None, stage: str) -> Iterator[logging.Logger]:
    """Log to ``path`` for the block; a failure is written there too (Snakemake shows the log of a failed job,
    and cluster job logs do not outlive it). An :class:`InputError` ends the process with its one-line message
    on stderr too (exit status 1, no traceback: the user's mistake, not ours); anything else propagates with
    its traceback."""
    setup_logging(path)
    log = logging.getLogger(f"seq2seq.{stage}")
    try:
        yield log
    except InputError as error:
        log.error("%s failed: %s", stage, error)
        if path is not None:
            print(f"{stage} failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception:
        log.exception("%s failed", stage)
        raise


def rule_files(smk: Any, skip: tuple[str, ...] = ("code", "assets")) -> dict[str, Any]:
    """A Snakemake job's named inputs and outputs as keyword arguments (``str``, or a list for a list), without
    the ones that only make the rule rerun (``code``: the package files the script imports)."""
    files: dict[str, Any] = {}
    for name, value in [*smk.input.items(), *smk.output.items()]:
        if name not in skip:
            files[name] = str(value) if isinstance(value, str) else [str(v) for v in value]
    return files
