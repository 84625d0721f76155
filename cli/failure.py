"""How the command ends on bad input or a failure: one line on stderr and an exit status,
never a traceback (2 for bad options, 1 for a snapshot or store that could not complete)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from gallery_snapshot.errors import ConfigError, SnapshotError
from gallery_snapshot.run_guard import error_line

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TOO_MANY_FAILED = 3


def fail(message: str, code: int) -> NoReturn:
    print(error_line(message), end="", file=sys.stderr)
    raise SystemExit(code)


def guarded(call: Callable[[], T]) -> T:
    """``call()``, its errors as the command's one line and exit status."""
    try:
        return call()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except SnapshotError as exc:
        fail(str(exc), EXIT_FAILED)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)", EXIT_USAGE)
