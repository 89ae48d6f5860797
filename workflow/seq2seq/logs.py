"""Logging set-up shared by the stage scripts: one line per record, to the rule's log file or stderr."""

import contextlib
import logging
import os
import sys
from typing import Iterator

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
