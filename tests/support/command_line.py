"""The CLI run in the test's own process, through its entry point."""

from __future__ import annotations

from cli.main import main


def cli(*argv: str) -> int:
    """``gallery-snapshot ARGV``'s exit status."""
    try:
        main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
