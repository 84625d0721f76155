"""Which task failures are worth a Prefect retry."""

from __future__ import annotations

from typing import Any

from gallery_snapshot.errors import ApiError, ProcessLost, SnapshotError


def is_retryable(exc: BaseException) -> bool:
    """Transient API failures and unexpected errors are; permanent snapshot errors (a rejected
    client id, a missing listing, spent credits, bad options, an unwritable folder) are not:
    retrying them only burns rate-limit credits and time."""
    if isinstance(exc, ApiError):
        return not exc.permanent
    return isinstance(exc, ProcessLost) or not isinstance(exc, SnapshotError)


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` for Prefect tasks."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return True
