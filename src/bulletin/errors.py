"""The exceptions bulletin raises; the command line maps each to an exit code."""

from __future__ import annotations


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command had done by then and how to finish it."""


_TERMINATED: list[int] = []  # SIGTERM, once it came


def stop_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (`kill`, a cron or CI time limit, a service manager) stops a command the way
    Ctrl-C does, where it is, files whole: the command line then says so and ends as killed."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one (to the process group too) waits
    note_sigterm()
    raise KeyboardInterrupt


def note_sigterm() -> None:
    """A command that stops by itself on SIGTERM (send, between two messages) says it came,
    so that the command line says so too and ends as killed."""
    _TERMINATED.append(15)


def forget_sigterm() -> None:
    """A new command starts: no SIGTERM came for it yet."""
    _TERMINATED.clear()


def terminated() -> bool:
    """Whether the KeyboardInterrupt being handled came from SIGTERM."""
    return bool(_TERMINATED)


class BulletinError(Exception):
    """Something stopped bulletin; the message says what and how to fix it."""

    exit_code = 2


class ConfigError(BulletinError):
    """bulletin.toml is missing, unreadable or has bad values; nothing was built."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(BulletinError):
    """A command was given options that do not fit together."""


class RefusedError(BulletinError):
    """bulletin refused to go on (strict mode, stale window, lock held, too many failures)."""

    exit_code = 3


class OutputError(BulletinError, OSError):
    """An output file could not be written (a full disk, a read-only folder); the run stopped."""

    exit_code = 3


class TemplateError(BulletinError):
    """A template does not compile or render; the run stopped at it."""


class NoContentError(RefusedError):
    """content/ is missing, not a folder or cannot be listed: with no items read, the run
    would empty every published feed and remove every topic's, so it writes nothing."""


class NoLedgerError(RefusedError):
    """There is no ledger (missing, an empty file, no bulletin tables) and none may be created."""


class LedgerError(RefusedError):
    """The ledger is damaged or cannot be used; nothing was mailed because of it."""


class ItemError(Exception):
    """A file cannot become an item (its front matter or a field); it is reported and skipped.

    `line` is the file's line (1-based) where known.
    """

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class NotAFileError(OSError):
    """A path under content/ names something other than a regular file (a FIFO, a device)."""
