"""A flow process whose output nobody reads any more carries on.

A process worker starts each flow run in a session of its own, with stdout and stderr piped to
the worker, which copies them to its own output. A worker killed or restarted (a redeploy, a
service restart) leaves the flow process running with pipes nobody reads. Python ignores
SIGPIPE, so the next write raises BrokenPipeError, and rich, which Prefect's console log
handler prints through, answers that with SystemExit: the run crashed, its downloads thrown
away. The run's logs reach the server through Prefect's API log handler, not these pipes, so
the process had better finish its snapshot: once the reader of stdout or stderr is gone, that
descriptor writes to /dev/null instead.
"""

from __future__ import annotations

import functools
import logging
import os
import select
import threading

from rich.console import Console

STANDARD_OUTPUTS = (1, 2)


def output_lost(fd: int) -> bool:
    """Whether writing to ``fd`` can only fail now (a pipe without readers, a hung-up socket
    or terminal), without waiting."""
    poller = select.poll()
    poller.register(fd, 0)  # poll reports these whatever is asked
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def silence_lost_outputs() -> None:
    """Point stdout and stderr at /dev/null where their output is lost."""
    for fd in STANDARD_OUTPUTS:
        if output_lost(fd):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)


def _watch(fds: list[int]) -> None:
    """Wait (asleep, no polling) until the output of each of ``fds`` is lost; silence it."""
    poller = select.poll()
    for fd in fds:
        # No events asked: poll returns only on POLLERR (a pipe's readers all gone), POLLHUP
        # (a socket's or terminal's other end gone) or POLLNVAL (closed).
        poller.register(fd, 0)
    while fds:
        for fd, _ in poller.poll():
            silence_lost_outputs()
            poller.unregister(fd)  # silenced, closed or replaced: watched once
            fds.remove(fd)


def _carry_on(console: Console) -> None:
    """Instead of rich's SystemExit on a broken pipe: this console stops printing (the log
    lines still reach the server), and the lost outputs are silenced for every other writer."""
    console.quiet = True
    silence_lost_outputs()


def tolerate_lost_output() -> None:
    """Once per process, before the run logs: silence stdout and stderr if their output is
    lost already, else watch them; and make the consoles of the logging handlers (Prefect's
    console handler) carry on past a broken pipe."""
    silence_lost_outputs()
    watched = list(STANDARD_OUTPUTS)
    threading.Thread(target=_watch, args=(watched,), name="lost-output", daemon=True).start()
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", ()):  # a PlaceHolder has none
            console = getattr(handler, "console", None)
            if isinstance(console, Console):
                console.on_broken_pipe = functools.partial(_carry_on, console)  # type: ignore[method-assign]
