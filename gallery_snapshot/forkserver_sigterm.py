"""Imported by the validation pool's forkserver alone, first of its preloads (``cores``): it
ignores SIGTERM, which a Prefect worker sends to a run's whole process group to cancel it.

The caller decides how a run ends. The forkserver's death would break the pool (its processes'
exit statuses reach the pool through it) and fail the batches being validated, mid-write, in a
run being cancelled. It still ends with its caller (its alive pipe closes), and a SIGKILL to
the group ends it at once.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
