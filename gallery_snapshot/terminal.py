"""A progress bar on the terminal for the command line: images fetched of all, the rate and the
time left, redrawn in place on one line of stderr. It is fed by the progress the flow logs
(records carrying ``PROGRESS_FIELD``), so the flow knows nothing of terminals."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TextIO

# The ``extra`` field of the flow's progress log records: (fetched, validated, total).
PROGRESS_FIELD = "snapshot_progress"
CLEAR_LINE = "\r\x1b[K"


def duration(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(fetched: int, validated: int, total: int, rate: float | None, width: int = 24) -> str:
    """``[#########---------------]  38%  750/2000 fetched  165.2 images/s  ETA 0:07``: the
    share counts fetching and validating alike, as the run's progress artifact does."""
    share = (fetched + validated) / (2 * total) if total else 1.0
    filled = int(share * width)
    speed = f"{rate:.1f} images/s" if rate else "- images/s"
    eta = duration((total - fetched) / rate) if rate and fetched < total else "-"
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {share:4.0%}  {fetched}/{total} fetched  "
        f"{speed}  ETA {eta}"
    )


class ProgressBar:
    """One line redrawn in place. The rate is measured from the first update (when downloads
    are under way), so Prefect's start and the listing do not count."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        self.first: tuple[float, int] | None = None  # (time, fetched) of the first update
        self.shown = False

    def update(self, fetched: int, validated: int, total: int) -> None:
        now = self.clock()
        if self.first is None:
            self.first = (now, fetched)
        since, fetched_then = self.first
        rate = (fetched - fetched_then) / (now - since) if now > since else None
        self.stream.write(CLEAR_LINE + render(fetched, validated, total, rate))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """Clear the bar's line, for whatever is printed next."""
        if self.shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.shown = False


class ProgressHandler(logging.Handler):
    """Hands the progress records of a logger to a bar."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, PROGRESS_FIELD, None)
        if progress is not None:
            self.bar.update(*progress)
