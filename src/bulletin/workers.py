"""Worker processes for the parts of a build that parallelise: parsing items, rendering files.

Workers are forked where the platform can (they start with the build's memory: no re-import,
nothing pickled but the work's indices), die with the build, and leave Ctrl-C to it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded when a pool starts (8 ms that most rebuilds do not need)
    from concurrent.futures import ProcessPoolExecutor


def job_count(jobs: int | None, work: int, minimum: int) -> int:
    """How many processes `work` pieces get: `jobs`, else $BULLETIN_JOBS, else one per CPU;
    one below `minimum` pieces, where starting processes costs more than it saves."""
    if jobs is None:
        env = os.environ.get("BULLETIN_JOBS", "")
        jobs = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    return 1 if work < minimum else max(1, min(jobs, 8))


def forks() -> bool:
    """Whether workers can start as copies of the build: where the platform forks (not
    Windows), and the build is the process's only thread (a fork copies no other thread,
    and a lock one of them held would stay locked in the copy: `serve --watch`)."""
    import multiprocessing
    import threading

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


@contextlib.contextmanager
def process_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of `jobs` workers; on the way out (Ctrl-C included) the work not started is
    dropped instead of done."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork starts workers without re-importing bulletin; elsewhere the platform default.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(jobs, context, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
        try:
            with _ctrl_c_held():
                pool.submit(int)  # the workers start now: forked, then the pool's own thread
            yield pool
        finally:
            pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C waits until the block is done, then interrupts as usual. A KeyboardInterrupt
    raised while a worker is forked lands in an at-fork hook, which only prints it (the build
    then carries on), in the new worker before it ignores Ctrl-C (a traceback), or between
    the pool's start and its thread's (shutting it down then fails)."""
    import threading

    from .errors import stop_on_sigterm

    if threading.current_thread() is not threading.main_thread():  # `serve --watch` rebuilds
        yield
        return
    caught: list[signal.Signals] = []
    usual = ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, stop_on_sigterm))
    held = {  # unless ignored, or taken by something else
        signum: signal.signal(signum, lambda number, _frame: caught.append(signal.Signals(number)))
        for signum, handler in usual
        if signal.getsignal(signum) is handler
    }
    try:
        yield
    finally:
        for signum, previous in held.items():
            signal.signal(signum, previous)
    for first in caught[:1]:
        handler = held[first]
        assert callable(handler)
        handler(first, None)  # raises KeyboardInterrupt (after SIGTERM, saying so)


# In a worker: the build it works for. A worker whose build was killed would otherwise
# wait for work forever, holding the build's stdout and stderr open.
_PARENT: int | None = None
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def _start_worker(parent: int) -> None:
    """A worker's first step: die with the build, and leave Ctrl-C and SIGTERM to it (they
    reach the whole process group; a worker interrupted while idle would die with a
    traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """Ask Linux to send this worker `signum` when its parent (`parent`: the build, or
    `serve`'s supervisor) dies; elsewhere, or if that fails, watch the parent from a thread
    and exit when it is gone."""
    global _PARENT
    _PARENT = parent
    asked = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            asked = libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    exit_if_orphaned()  # the parent may have died before prctl took effect
    if not asked:
        import threading

        threading.Thread(target=_watch_parent, name="bulletin-watch-build", daemon=True).start()


def _watch_parent() -> None:
    while True:
        time.sleep(0.5)
        exit_if_orphaned()


def exit_if_orphaned() -> None:
    """In a worker: exit if the build it works for is gone (checked between chunks too)."""
    if _PARENT is not None and os.getppid() != _PARENT:
        os._exit(1)
