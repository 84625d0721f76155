"""The machine's cores for the step that needs them: validation.

Downloads wait on the network and share one process's threads and connection pools; decoding
and storing an image is CPU under the GIL, and in the downloads' process it takes the GIL
from them (the README's benchmark section has the figures). So a process validates its
batches on a pool of processes, one per core it may use, kept for the life of the process
like its download threads.

The pool's processes are forked from a forkserver that has the validation code (and the
caller's main module) imported: fork without its cost of imports, and without forking the
calling process's threads and the locks they hold. They ignore Ctrl-C (the caller decides how
a run ends) and end as soon as the calling process does, however it ends: none outlives a
killed run, nor keeps writing to its store.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from gallery_snapshot.errors import ProcessLost

P = ParamSpec("P")
T = TypeVar("T")

# Imported once by the forkserver, so each pool process starts with them (the first, for
# the forkserver alone: it ignores SIGTERM).
VALIDATION_MODULES = [
    "gallery_snapshot.forkserver_sigterm",
    "gallery_snapshot.validation",
    "gallery_snapshot.store",
]

_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def usable_cores() -> int:
    """The cores this process may run on (``taskset`` and cgroup cpusets included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def validation_processes(*, in_own_process: bool) -> int:
    """Processes to validate on: one per usable core, where there is more than one core to
    use and the batch's task does not already have a process of its own (the process
    runner's and Dask's workers are processes: they validate in themselves). 0: validate in
    the calling thread."""
    cores = usable_cores()
    return 0 if in_own_process or cores < 2 else cores


def _end_with(caller: int) -> None:
    """In a pool process: ignore Ctrl-C, and end when ``caller`` does. (Not with the
    forkserver: each pool process holds the pipe whose end would tell it that the caller is
    gone, so it outlives the caller as long as they do, blocked on their empty queue.)
    SIGTERM ends it from ``caller`` alone: a broken pool ends its processes so, while a
    Prefect worker's cancel sends it to the run's whole group (``forkserver_sigterm``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # (the threads below inherit it)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ignored, it would not even be pending
    threading.Thread(target=_exit_when_ended, args=(caller,), daemon=True).start()
    threading.Thread(target=_exit_when_terminated_by, args=(caller,), daemon=True).start()


def _exit_when_terminated_by(caller: int) -> None:
    while signal.sigwaitinfo({signal.SIGTERM}).si_pid != caller:
        pass
    os._exit(1)


def _exit_when_ended(pid: int) -> None:
    try:
        ended = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    select.select([ended], [], [])  # readable once the process has ended
    os._exit(1)


def _preload() -> list[str]:
    """The validation code, and the caller's main module (a script, or a module run with
    ``-m``: Prefect's engine, the CLI), which a pool process would otherwise import itself."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return [*VALIDATION_MODULES, "__main__", *([spec.name] if spec is not None else [])]


def start_cores(processes: int) -> None:
    """Start the pool ahead of its first batch, in the background: its forkserver imports
    the code first (a second or two), and a process is started only once it listens. Not a
    daemon thread: a process ending meanwhile (a failed run, Ctrl-C) waits for the processes
    it is starting, or they die reading their start-up data, in tracebacks after its last line."""
    if processes > 0:
        threading.Thread(target=_start, args=(processes,), name="start-cores").start()


def _start(processes: int) -> None:
    # RuntimeError, "cannot schedule new futures after interpreter shutdown": the process
    # ended first. OSError: no process can start now; the first batch says so, or validates
    # in place (``run_on_cores``).
    with contextlib.suppress(RuntimeError, OSError):
        _pool(processes).submit(os.getpid)


def _pool(processes: int) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_preload())
            pool = ProcessPoolExecutor(
                processes, mp_context=context, initializer=_end_with, initargs=(os.getpid(),)
            )
            _pools[processes] = pool
        return pool


def _forget_pools() -> None:
    """In a forked child: the pools belong to the parent."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools)


def run_on_cores(processes: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` in one of the process's ``processes`` pool processes
    (``function``, its arguments and its result travel by pickle), or here when 0."""
    call = functools.partial(function, *args, **kwargs)
    if processes <= 0:
        return call()
    context = (dict(os.environ), os.getcwd())
    try:
        pool = _pool(processes)
        future = pool.submit(_as_caller, context, call)
    except OSError:
        # No process can start (no file descriptor left, no /dev/shm for its semaphores):
        # the batch is validated here, as on one core.
        _drop(processes)
        return call()
    try:
        return future.result()
    except BrokenProcessPool:
        _drop(processes, pool)
        raise ProcessLost(
            "a validation process ended abruptly (killed, or out of memory?): "
            "its batch failed; a retry, or the next batch, gets new validation processes"
        ) from None


def _drop(processes: int, unusable: ProcessPoolExecutor | None = None) -> None:
    """Forget the pool for ``processes`` (``unusable``, when given and still the one kept;
    else whatever pool is kept) so the next call makes a new one: a pool that could not start
    a process, or one whose process died, would fail every later batch too, in a process that
    lives on (a served deployment, a test harness). A broken pool has already ended its
    other processes and failed their batches."""
    with _pools_lock:
        kept = _pools.get(processes)
        if kept is not None and unusable in (None, kept):
            del _pools[processes]
    pool = unusable or kept
    if pool is not None:
        with contextlib.suppress(OSError):
            pool.shutdown(wait=False, cancel_futures=True)


def _as_caller(context: tuple[dict[str, str], str], call: Callable[[], T]) -> T:
    """``call()`` with the caller's environment and folder as of the call, not as of the
    forkserver's start (an object store's credentials are read from the environment)."""
    environment, folder = context
    if os.environ != environment:
        os.environ.clear()
        os.environ.update(environment)
    if os.getcwd() != folder:
        os.chdir(folder)
    return call()
