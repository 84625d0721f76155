"""The command's progress bar, fed by the flow's progress records."""

import io
import logging

from gallery_snapshot.terminal import (
    CLEAR_LINE,
    PROGRESS_FIELD,
    ProgressBar,
    ProgressHandler,
    duration,
    render,
)


def test_durations_read_like_a_clock() -> None:
    assert [duration(s) for s in (7, 750, 3723)] == ["0:07", "12:30", "1:02:03"]


def test_the_bar_shows_share_count_rate_and_time_left() -> None:
    line = render(750, 250, 2000, 125.0, width=20)
    assert line == "[#####---------------]  25%  750/2000 fetched  125.0 images/s  ETA 0:10"
    assert render(0, 0, 0, None, width=4) == "[####] 100%  0/0 fetched  - images/s  ETA -"


def test_rate_and_eta_are_measured_from_the_first_update() -> None:
    ticks = iter([100.0, 102.0])  # a clock the test drives: no real time involved
    stream = io.StringIO()
    bar = ProgressBar(stream, clock=lambda: next(ticks))
    bar.update(40, 0, 1000)  # the downloads were under way before the first update
    bar.update(240, 100, 1000)
    first, second = stream.getvalue().split(CLEAR_LINE)[1:]
    assert "- images/s  ETA -" in first
    assert "100.0 images/s  ETA 0:08" in second  # 200 images in 2 s, 760 to go
    bar.close()
    assert stream.getvalue().endswith(CLEAR_LINE)


def test_only_progress_records_move_the_bar() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.progress")
    logger.setLevel(logging.INFO)
    handler = ProgressHandler(ProgressBar(stream))
    logger.addHandler(handler)
    try:
        logger.info("a line without progress")
        assert stream.getvalue() == ""
        logger.info("19/19 images fetched", extra={PROGRESS_FIELD: (19, 19, 19)})
        assert "19/19 fetched" in stream.getvalue()
    finally:
        logger.removeHandler(handler)
