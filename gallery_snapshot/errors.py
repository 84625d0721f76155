"""Errors that end a snapshot. Each carries a message fit for one line on a terminal."""

from __future__ import annotations


class SnapshotError(Exception):
    """A snapshot cannot go on; ``str(error)`` is a one-line explanation for the user."""


class ConfigError(SnapshotError):
    """The options or the environment are wrong (bad value, missing client id)."""


class ApiError(SnapshotError):
    """The gallery API answered with an error that retrying does not fix, or kept failing."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


class RateLimitExhausted(ApiError):
    """The client's API credits are spent: stop instead of hammering the API."""


class StoreError(SnapshotError):
    """The output folder cannot be written (missing permission, disk full)."""


class ProcessLost(SnapshotError):
    """A process doing part of the work ended abruptly (killed, out of memory): its part
    failed, but may do on a retry, on a new process."""
