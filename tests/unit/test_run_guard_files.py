"""The CLI's watch on the Prefect API when the process itself may open no more files: that is
no evidence the API is gone (its health check cannot even open a socket)."""

from __future__ import annotations

import os
import resource

from gallery_snapshot.run_guard import ApiWatch


def test_a_process_out_of_files_does_not_take_the_api_for_lost() -> None:
    gone = ApiWatch("http://127.0.0.1:9/api")  # nothing listens there
    assert not gone.healthy()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    # Descriptors are numbered below the limit: every number below this one is in use.
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        assert gone.healthy()  # unknown: not lost
        gone.check()
        assert gone.failing_since is None
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
