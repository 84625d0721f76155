"""The ``gallery-snapshot`` command's entry point (pyproject's console script)."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from cli.parser import build_parser

__all__ = ["build_parser", "command", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    handler(args)


def command() -> NoReturn:
    """The ``gallery-snapshot`` command: ``main()``, then an exit that skips tearing down the
    interpreter (freeing Prefect's modules and objects is a noticeable wait after each run;
    the OS frees a process at once). What the interpreter runs at exit still runs first, in its
    order: threads' exit callbacks (Prefect's event worker drains there), then exit handlers
    (its log worker, logging); every file the run wrote was closed and synced."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed before the start
                stream.flush()
        except (OSError, ValueError):  # a pipe nobody reads any more, a closed stream
            pass
    os._exit(code)
