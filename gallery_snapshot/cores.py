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

import multiprocessing
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Imported once by the forkserver, so each pool process starts with them.
VALIDATION_MODULES = ["gallery_snapshot.validation", "gallery_snapshot.store"]

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
    gone, so it outlives the caller as long as they do, blocked on their empty queue.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_ended, args=(caller,), daemon=True).start()


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
    the code first (a second or two), and a process is started only once it listens."""
    if processes > 0:
        threading.Thread(
            target=lambda: _pool(processes).submit(os.getpid), name="start-cores", daemon=True
        ).start()


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
    if processes <= 0:
        return function(*args, **kwargs)
    return _pool(processes).submit(function, *args, **kwargs).result()
