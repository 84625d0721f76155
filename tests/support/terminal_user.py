"""Tests play both kinds of process in one: the command line's, whose options are its terminal
user's (``trust_terminal_user()``, as the CLI marks itself), and a deployment run's, which the
CLI never marks. The package has no way back from the mark, since no process of its own needs
one: this is the tests' way back."""

from __future__ import annotations

from gallery_snapshot import run_policy


def forget_terminal_user() -> None:
    """This process's runs are a deployment run's again, as in a process the CLI did not start."""
    run_policy._terminal_user = False
