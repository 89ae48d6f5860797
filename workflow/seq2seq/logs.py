"""What the stage scripts share: logging, one line per record, to the rule's log file or stderr; the user's
input errors, a full disk and an interruption as one line."""

import contextlib
import errno
import logging
import os
import signal
import sys
from typing import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class InputError(Exception):
    """Bad input the user can fix (a file, a URL, a setting), with a one-line message naming it: the rule's
    log gets that line, not a traceback."""


class Interrupted(Exception):
    """A stage stopped by a signal (Ctrl-C, a wall-time limit's SIGTERM, scancel) after saving what it could;
    the message says what was kept. The process exits with 128 + the signal's number, as the shell reports a
    process killed by it."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signal_number = int(signal_number)


def setup_logging(path: str | os.PathLike[str] | None = None) -> None:
    """Send INFO and above to ``path`` (a Snakemake rule's log file), or to stderr when None. With a log file,
    warnings also go to stderr (Snakemake's output), since a warning nobody sees protects nobody (a failure
    prints its own line there: see :func:`logging_to`)."""
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT, force=True)
    if path is not None:
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.addFilter(lambda record: record.levelno == logging.WARNING)
        to_stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(to_stderr)


def user_message(error: BaseException) -> str | None:
    """The one-line message of a failure that is the user's or the machine's, not ours (an :class:`InputError`,
    a system error on a named path), or None for one that keeps its traceback."""
    if isinstance(error, InputError):
        return str(error)
    if isinstance(error, OSError) and error.filename and error.strerror:
        target = f" -> {error.filename2}" if error.filename2 else ""
        return f"{error.filename}{target}: {error.strerror}"
    return None


@contextlib.contextmanager
def one_line_errors(program: str) -> Iterator[None]:
    """For the tools outside the stages (the benchmark scripts): a failure :func:`user_message` says ends the
    program with ``program: error: message`` on stderr and status 1, before any traceback."""
    try:
        yield
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        print(f"{program}: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


@contextlib.contextmanager
def logging_to(path: str | os.PathLike[str] | None, stage: str) -> Iterator[logging.Logger]:
    """Log to ``path`` for the block; a failure is written there too (Snakemake shows the log of a failed job,
    and cluster job logs do not outlive it). An :class:`InputError` (a full disk, a file or folder that is not
    there, and any other failure of the system on a named path, such as a folder without write permission, among
    them) ends the process with its one-line message on stderr too (exit status 1, no traceback: the
    user's mistake or the machine's, not ours); Ctrl-C (or an :class:`Interrupted` stage) with one line and 128 +
    the signal's number; anything else propagates with its traceback."""
    setup_logging(path)
    log = logging.getLogger(f"seq2seq.{stage}")

    def one_line(message: str, status: int) -> SystemExit:
        log.error("%s", message)
        if path is not None:
            print(message, file=sys.stderr)
        return SystemExit(status)

    try:
        yield log
    except InputError as error:
        raise one_line(f"{stage} failed: {error}", 1) from None
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f"{error.filename}: " if error.filename else ""
            raise one_line(f"{stage} failed: {where}no space left on the disk ({error.strerror})", 1) from None
        message = user_message(error)  # a path the user can see to: not there, or a folder without write permission
        if message is None:
            log.exception("%s failed", stage)
            raise
        raise one_line(f"{stage} failed: {message}", 1) from None
    except Interrupted as error:
        raise one_line(f"{stage} interrupted: {error}", 128 + error.signal_number) from None
    except KeyboardInterrupt:
        raise one_line(f"{stage} interrupted (Ctrl-C); nothing of this job was published", 128 + signal.SIGINT
                       ) from None
    except Exception:
        log.exception("%s failed", stage)
        raise
